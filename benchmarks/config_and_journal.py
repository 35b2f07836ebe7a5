"""Hot-reload latency and journal write cost, on real files in a temporary folder.

    python benchmarks/config_and_journal.py

1. ``ConfigWatcher``: 20 edits of ``bps`` written to a real config file; the time from the write
   to ``on_change`` being called. Target (the issue's): under one second.
2. ``Journal``: the cost of one ``record_order`` call as the event loop pays it (an append to
   the buffer; no flush inside the timed calls), and the time of one ``flush()`` writing a
   200 ms batch (50 orders, 10 fills, 2 snapshots: a busy symbol) and of a 1000-record batch.
"""

from __future__ import annotations

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

from marketmaker.config import load_config
from marketmaker.config_reload import ConfigWatcher
from marketmaker.journal import FillRecord, Journal, OrderRecord, PositionSnapshot

CONFIG = 'exchange = "sim"\nsymbols = ["BTCUSDT"]\nbalances = [["BTCUSDT", 1.0]]\nbps = [["BTCUSDT", {}]]\n'


async def reload_delays(folder: Path, edits: int = 20) -> list[float]:
    path = folder / "config.toml"
    path.write_text(CONFIG.format(5.0))
    arrived: asyncio.Queue[float] = asyncio.Queue()
    watcher = ConfigWatcher(path, lambda _c, _d: arrived.put_nowait(time.monotonic()), print, config=load_config(path))
    delays = []
    async with watcher:
        await watcher.ready.wait()
        for edit in range(edits):
            written = time.monotonic()
            path.write_text(CONFIG.format(6.0 + edit))
            delays.append(await asyncio.wait_for(arrived.get(), 2.0) - written)
            await asyncio.sleep(0.05)
    return delays


def order(index: int) -> OrderRecord:
    return OrderRecord(
        "BTCUSDT", f"mm{index}", "place", "buy", 60000.0 - index, 0.01, "accepted", index, index + 1, str(index)
    )


def journal_costs(folder: Path) -> tuple[float, float, float]:
    with Journal(folder / "journal.sqlite", flush_interval_ms=1e9, max_pending=10**9) as journal:
        journal.start_run(exchange="sim", client_id_prefix="mm", config_hash="0", symbols=["BTCUSDT"])
        journal.flush()
        orders = [order(index) for index in range(20_000)]
        started = time.perf_counter_ns()
        for record in orders:
            journal.record_order(record)
        record_ns = (time.perf_counter_ns() - started) / len(orders)
        journal.flush()
        batches = []
        for batch in range(50):
            for index in range(50):
                journal.record_order(order(index))
            for index in range(10):
                journal.record_fill(FillRecord("BTCUSDT", f"{batch}-{index}", "buy", 60000.0, 0.01, 0.01, True, index))
            for index in range(2):
                journal.record_snapshot(PositionSnapshot("BTCUSDT", index, 0.1, 60000.0, 60000.0, 1e4, 1.0, 0.5, 0.1))
            started = time.perf_counter_ns()
            journal.flush()
            batches.append(time.perf_counter_ns() - started)
        large = []
        for _ in range(10):
            for index in range(1000):
                journal.record_order(order(index))
            started = time.perf_counter_ns()
            journal.flush()
            large.append(time.perf_counter_ns() - started)
    return record_ns, statistics.median(batches) / 1e6, statistics.median(large) / 1e6


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        delays = asyncio.run(reload_delays(Path(folder)))
        print(
            f"config reload: {len(delays)} edits, median {statistics.median(delays) * 1e3:.0f} ms, "
            f"max {max(delays) * 1e3:.0f} ms from write to on_change"
        )
        record_ns, batch_ms, large_ms = journal_costs(Path(folder))
        print(f"journal: record_order {record_ns:.0f} ns per call (buffered)")
        print(f"journal: flush of a 62-record batch {batch_ms:.2f} ms median, of 1000 records {large_ms:.2f} ms median")


if __name__ == "__main__":
    main()
