"""The SQLite journal: a real file, buffered writes, duplicate fills ignored, a versioned schema
and the summary ``report`` prints."""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from pathlib import Path

import marketmaker
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from marketmaker.config import parse_config
from marketmaker.journal import (
    SCHEMA_VERSION,
    FillRecord,
    HaltRecord,
    Journal,
    JournalError,
    OrderRecord,
    PositionSnapshot,
    summarise,
)


def open_run(path: Path, **options: float) -> Journal:
    journal = Journal(path, **options)  # type: ignore[arg-type]
    journal.start_run(exchange="sim", client_id_prefix="mmA", config_hash="f" * 64, symbols=["BTCUSDT", "ETHUSDT"])
    return journal


def count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as reader:
        rows: int = reader.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
    return rows


def fill(
    trade_id: str, side: str, price: float, size: float, *, symbol: str = "BTCUSDT", fee: float = 0.0
) -> FillRecord:
    return FillRecord(symbol, trade_id, "buy" if side == "buy" else "sell", price, size, fee, True, 1_000)


def test_a_new_journal_has_the_versioned_schema_in_wal_mode(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    with sqlite3.connect(path) as reader:
        assert reader.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
        assert reader.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        tables = {row[0] for row in reader.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables == {"runs", "orders", "fills", "snapshots", "halts"}


def test_another_schema_version_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    Journal(path).close()
    with sqlite3.connect(path) as writer:
        writer.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    with pytest.raises(
        JournalError, match=f"schema version {SCHEMA_VERSION + 1}, this marketmaker reads and writes {SCHEMA_VERSION}"
    ):
        Journal(path)


def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as writer:
        writer.execute("CREATE TABLE t (x)")
    with pytest.raises(JournalError, match="schema version 0"):
        Journal(other)
    garbage = tmp_path / "garbage.sqlite"
    garbage.write_bytes(b"this is not a database at all" * 100)
    with pytest.raises(JournalError, match="is not a journal"):
        Journal(garbage)


def test_records_need_an_open_run(tmp_path: Path) -> None:
    with Journal(tmp_path / "journal.sqlite") as journal, pytest.raises(JournalError, match="no run is open"):
        journal.record_fill(fill("1", "buy", 100.0, 1.0))


def test_a_fill_delivered_twice_is_journaled_once(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with open_run(path) as journal:
        run_id = journal.start_run(exchange="sim", client_id_prefix="mmB", config_hash="0", symbols=["BTCUSDT"])
        journal.record_fill(fill("77", "buy", 100.0, 1.0))
        journal.flush()
        journal.record_fill(fill("77", "buy", 100.0, 1.0))  # again, after it was written
        journal.record_fill(fill("77", "sell", 3000.0, 1.0, symbol="ETHUSDT"))  # same id, other symbol
        assert [(f.symbol, f.trade_id) for f in journal.fills(run_id)] == [("BTCUSDT", "77"), ("ETHUSDT", "77")]
        next_run = journal.start_run(exchange="sim", client_id_prefix="mmC", config_hash="0", symbols=["BTCUSDT"])
        journal.record_fill(fill("77", "buy", 100.0, 1.0))  # a new run (the sim venue numbers trades anew)
        assert len(journal.fills(next_run)) == 1
    assert count(path, "fills") == 3


def test_writes_are_buffered_until_the_flush_interval(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_run(path, flush_interval_ms=150.0)
    journal.flush()
    journal.record_fill(fill("1", "buy", 100.0, 1.0))
    assert count(path, "fills") == 0  # buffered: another reader does not see it yet
    time.sleep(0.2)
    journal.record_fill(fill("2", "buy", 100.0, 1.0))  # the interval has passed: both handed over
    journal.wait_for_writes()  # (written by the writer thread)
    assert count(path, "fills") == 2
    journal.close()


def test_writes_are_flushed_when_max_pending_records_are_buffered(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_run(path, flush_interval_ms=60_000.0, max_pending=10)
    journal.flush()
    for trade in range(9):
        journal.record_fill(fill(str(trade), "buy", 100.0, 1.0))
    assert count(path, "fills") == 0
    journal.record_fill(fill("9", "buy", 100.0, 1.0))
    journal.wait_for_writes()
    assert count(path, "fills") == 10
    journal.close()


def test_records_are_written_by_the_writer_thread_not_the_caller(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_run(path, flush_interval_ms=0.0)  # every record handed over at once
    writers: set[int] = set()
    journal._connection.set_trace_callback(
        lambda statement: writers.add(threading.get_ident()) if statement.startswith("INSERT") else None
    )
    for trade in range(20):
        journal.record_fill(fill(str(trade), "buy", 100.0, 1.0))
    journal.flush()
    assert count(path, "fills") == 20
    assert writers and threading.get_ident() not in writers
    journal.close()


def test_the_writer_thread_can_be_kept_off_the_event_loops_cpu(tmp_path: Path) -> None:
    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs a platform that pins threads and two CPUs")
    cpus = os.sched_getaffinity(0)
    loop_cpu = min(cpus)
    journal = open_run(tmp_path / "journal.sqlite")
    journal.pin_writer(cpus - {loop_cpu})
    assert journal._writer.submit(os.sched_getaffinity, 0).result() == cpus - {loop_cpu}
    assert os.sched_getaffinity(0) == cpus  # the caller's thread is not moved
    journal.record_fill(fill("1", "buy", 100.0, 1.0))
    journal.flush()
    assert count(tmp_path / "journal.sqlite", "fills") == 1
    journal.close()


def test_a_failed_write_is_reported_at_the_next_call_and_the_run_goes_on(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_run(path, flush_interval_ms=60_000.0)
    with sqlite3.connect(path) as other:
        other.execute("DROP TABLE halts")
    journal.record_halt(HaltRecord("BTCUSDT", "stale_book", "no book update for 5000 ms", 10))
    with pytest.raises(JournalError, match=r"records could not be written.*no such table: halts"):
        journal.flush()
    journal.record_fill(fill("1", "buy", 100.0, 1.0))  # later records are still written
    journal.flush()
    assert count(path, "fills") == 1
    journal.close()


def test_close_writes_the_buffer_and_ends_the_run(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_run(path, flush_interval_ms=60_000.0)
    journal.record_halt(HaltRecord("BTCUSDT", "stale_book", "no book update for 5000 ms", 10))
    journal.close()
    assert count(path, "halts") == 1
    with Journal(path) as reader:
        (run,) = reader.runs()
    assert run.ended_ns is not None and run.ended_ns >= run.started_ns
    assert run.symbols == ("BTCUSDT", "ETHUSDT") and run.client_id_prefix == "mmA"


def test_records_read_back_as_written(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    order = OrderRecord(
        "BTCUSDT", "mmA1", "place", "buy", 60000.0, 0.01, "rejected", 5, 9, None, -5022, "post-only would take"
    )
    cancel = OrderRecord("BTCUSDT", "mmA0", "cancel", "sell", None, None, "accepted", 6, 8, "123")
    snapshot = PositionSnapshot("ETHUSDT", 7, -0.5, 3000.0, 3001.5, 9999.0, 1.25, -0.75, 0.1)
    halt = HaltRecord("ETHUSDT", "max_drawdown", "equity 95.0 is 5.0 below its peak", 8)
    with open_run(path) as journal:
        run_id = journal.run_id
        assert run_id is not None
        journal.record_order(order)
        journal.record_order(cancel)
        journal.record_snapshot(snapshot)
        journal.record_halt(halt)
        journal.record_halt_reset("ETHUSDT", 20)
        assert journal.orders(run_id) == [order, cancel]
        assert journal.snapshots(run_id) == [snapshot]
        assert journal.halts(run_id) == [HaltRecord("ETHUSDT", "max_drawdown", halt.detail, 8, reset_ns=20)]


def test_core_sides_are_accepted(tmp_path: Path) -> None:
    with open_run(tmp_path / "journal.sqlite") as journal:
        run_id = journal.run_id
        assert run_id is not None
        journal.record_fill(FillRecord("BTCUSDT", "1", marketmaker.Side.SELL, 100.0, 1.0, 0.0, True, 1))  # type: ignore[arg-type]
        assert journal.fills(run_id)[0].side == "sell"
        with pytest.raises(ValueError, match="side must be"):
            journal.record_fill(FillRecord("BTCUSDT", "2", "bid", 100.0, 1.0, 0.0, True, 1))  # type: ignore[arg-type]


fills_strategy = st.lists(
    st.builds(
        FillRecord,
        symbol=st.sampled_from(["BTCUSDT", "ETHUSDT"]),
        trade_id=st.text(alphabet="0123456789abcdef", min_size=1, max_size=12),
        side=st.sampled_from(["buy", "sell"]),
        price=st.floats(min_value=0.01, max_value=1e6, allow_nan=False),
        size=st.floats(min_value=1e-6, max_value=1e3, allow_nan=False),
        fee=st.floats(min_value=-10.0, max_value=10.0, allow_nan=False),
        is_maker=st.booleans(),
        time_ns=st.integers(min_value=0, max_value=2**62),
        client_order_id=st.none() | st.text(alphabet="abcXYZ019_-", min_size=1, max_size=36),
    ),
    max_size=30,
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(fills=fills_strategy)
def test_fills_round_trip_once_each(tmp_path: Path, fills: list[FillRecord]) -> None:
    path = tmp_path / f"journal-{time.monotonic_ns()}.sqlite"
    with open_run(path) as journal:
        run_id = journal.run_id
        assert run_id is not None
        for record in fills + fills:  # every fill delivered twice
            journal.record_fill(record)
        first_of_each: dict[tuple[str, str], FillRecord] = {}
        for record in fills:
            first_of_each.setdefault((record.symbol, record.trade_id), record)
        assert journal.fills(run_id) == list(first_of_each.values())
    path.unlink()


def test_summary_figures(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with open_run(path) as journal:
        journal.record_fill(fill("1", "buy", 100.0, 2.0, fee=0.02))
        journal.record_fill(fill("2", "sell", 110.0, 1.0, fee=0.011))
        journal.record_fill(fill("2", "sell", 110.0, 1.0, fee=0.011))  # the duplicate counts once
        journal.record_fill(fill("3", "sell", 2000.0, 0.5, symbol="ETHUSDT", fee=0.1))
        journal.record_order(OrderRecord("BTCUSDT", "mmA0", "place", "buy", 100.0, 2.0, "accepted", 1))
        journal.record_order(
            OrderRecord("BTCUSDT", "mmA1", "place", "buy", 99.0, 2.0, "rejected", 2, reject_code=-2019)
        )
        journal.record_halt(HaltRecord("ETHUSDT", "crossed_book", "best bid 2001 >= best ask 2000", 3))
        journal.record_snapshot(PositionSnapshot("BTCUSDT", 4, 1.0, 100.0, 105.0, 10010.0, 10.0, 5.0, 0.031))
    summary = summarise(path)
    btc, eth = summary.symbols
    assert (btc.symbol, btc.fills, btc.volume, btc.notional) == ("BTCUSDT", 2, 3.0, 310.0)
    assert btc.fees == pytest.approx(0.031)
    assert btc.realized_pnl == pytest.approx(10.0)  # 1 of the 2 bought at 100 sold at 110
    assert btc.net_pnl == pytest.approx(10.0 - 0.031)
    assert btc.final_position == 1.0
    assert (btc.orders_sent, btc.orders_rejected, btc.halts) == (2, 1, 0)
    assert btc.last_snapshot is not None and btc.last_snapshot.unrealized_pnl == 5.0
    assert (eth.fills, eth.final_position, eth.realized_pnl, eth.halts) == (1, -0.5, 0.0, 1)
    text = summary.render()
    assert "BTCUSDT" in text and "crossed_book" in text and "still latched" in text


def test_summary_picks_a_run_and_names_missing_ones(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    with open_run(path) as journal:
        first = journal.run_id
        journal.record_fill(fill("1", "buy", 100.0, 1.0))
        journal.start_run(exchange="sim", client_id_prefix="mmZ", config_hash="0", symbols=["BTCUSDT"])
    assert summarise(path).run.client_id_prefix == "mmZ"
    assert summarise(path, first).symbols[0].fills == 1
    with pytest.raises(JournalError, match="no run 99"):
        summarise(path, 99)
    with pytest.raises(JournalError, match="no such journal file"):
        summarise(tmp_path / "missing.sqlite")
    empty = tmp_path / "empty.sqlite"
    Journal(empty).close()
    with pytest.raises(JournalError, match="has no run"):
        summarise(empty)


def test_no_secret_reaches_the_journal(tmp_path: Path) -> None:
    secret = "literal-secret-5f1d"
    config = parse_config(
        'exchange = "sim"\nsymbols = ["BTCUSDT"]\nbalances = [["BTCUSDT", 1.0]]\nbps = [["BTCUSDT", 5.0]]\n'
        f'api_keys = [["literal-key-9a7c", "{secret}", "BTCUSDT"]]\n'
    )
    path = tmp_path / "journal.sqlite"
    with Journal(path) as journal:
        journal.start_run(
            exchange=config.exchange,
            client_id_prefix=config.orders.client_id_prefix,
            config_hash=config.fingerprint(),
            symbols=config.symbol_names,
        )
        journal.record_fill(fill("1", "buy", 100.0, 1.0))
    data = b"".join(file.read_bytes() for file in tmp_path.iterdir())
    assert secret.encode() not in data and b"literal-key-9a7c" not in data
    assert config.fingerprint().encode() in data


def test_reading_while_a_run_writes(tmp_path: Path) -> None:
    path = tmp_path / "journal.sqlite"
    journal = open_run(path)
    journal.record_fill(fill("1", "buy", 100.0, 1.0))
    journal.flush()
    summary = summarise(path)  # another connection, while the writer's is open
    assert summary.symbols[0].fills == 1 and summary.run.ended_ns is None
    journal.close()


def test_the_journal_folder_is_made_and_an_unusable_path_is_a_journal_error(tmp_path: Path) -> None:
    path = tmp_path / "runs" / "today" / "journal.sqlite"
    Journal(path).close()
    assert path.is_file()
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    with pytest.raises(JournalError, match="cannot open the journal"):
        Journal(blocker / "journal.sqlite")
