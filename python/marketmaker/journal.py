"""The trading journal: runs, orders, fills, position/PnL snapshots and halts in SQLite.

One writer (the live loop) appends records to an in-memory buffer — cheap enough to call from
the event loop on every action — and the buffer is handed to the journal's writer thread, which
writes it in one transaction, when it holds ``max_pending`` records or when
``flush_interval_ms`` has passed since the last hand-over: the event loop never waits for
SQLite (a transaction of ~70 records took 1–3 ms on the loop before). :meth:`Journal.flush`,
the reads and :meth:`Journal.close` wait until everything recorded is in the file. The database is in WAL mode, so ``marketmaker-cli report``
can read it while a run is writing. The schema is versioned with ``PRAGMA user_version``.

Fills are unique by (run, symbol, trade id): venues can deliver a fill twice (REST and the
user stream, or after a reconnect), and inserting it again is a no-op. No secret is ever
written; runs are identified by the client order id prefix and the configuration's hash.
"""

from __future__ import annotations

import logging
import os
import sqlite3
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from marketmaker._core import Account, Side
from marketmaker.errors import MarketMakerError

__all__ = [
    "SCHEMA_VERSION",
    "FillRecord",
    "HaltRecord",
    "Journal",
    "JournalError",
    "JournalSummary",
    "OrderRecord",
    "PositionSnapshot",
    "RunRecord",
    "SymbolSummary",
    "plot_run",
    "summarise",
]

logger = logging.getLogger(__name__)

#: ``PRAGMA user_version`` of the schema this module writes and reads.
SCHEMA_VERSION = 1

_SCHEMA = """
CREATE TABLE runs (
    run_id INTEGER PRIMARY KEY,
    started_ns INTEGER NOT NULL,
    ended_ns INTEGER,
    exchange TEXT NOT NULL,
    client_id_prefix TEXT NOT NULL,
    config_hash TEXT NOT NULL,
    symbols TEXT NOT NULL
);
CREATE TABLE orders (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    symbol TEXT NOT NULL,
    client_order_id TEXT NOT NULL,
    kind TEXT NOT NULL CHECK (kind IN ('place', 'cancel', 'amend')),
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    price REAL,
    size REAL,
    status TEXT NOT NULL,
    venue_order_id TEXT,
    reject_code INTEGER,
    reject_reason TEXT,
    sent_ns INTEGER NOT NULL,
    answered_ns INTEGER
);
CREATE INDEX orders_by_run ON orders (run_id, symbol);
CREATE TABLE fills (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    symbol TEXT NOT NULL,
    trade_id TEXT NOT NULL,
    client_order_id TEXT,
    side TEXT NOT NULL CHECK (side IN ('buy', 'sell')),
    price REAL NOT NULL,
    size REAL NOT NULL,
    fee REAL NOT NULL,
    is_maker INTEGER NOT NULL,
    time_ns INTEGER NOT NULL,
    UNIQUE (run_id, symbol, trade_id)
);
CREATE TABLE snapshots (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    symbol TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    position REAL NOT NULL,
    entry_price REAL NOT NULL,
    mid REAL,
    balance REAL NOT NULL,
    realized_pnl REAL NOT NULL,
    unrealized_pnl REAL NOT NULL,
    fees REAL NOT NULL
);
CREATE INDEX snapshots_by_run ON snapshots (run_id, symbol, time_ns);
CREATE TABLE halts (
    id INTEGER PRIMARY KEY,
    run_id INTEGER NOT NULL REFERENCES runs(run_id),
    symbol TEXT NOT NULL,
    reason TEXT NOT NULL,
    detail TEXT NOT NULL,
    time_ns INTEGER NOT NULL,
    reset_ns INTEGER
);
"""


class JournalError(MarketMakerError):
    """The journal file cannot be used (another schema version, not a journal, no run open)."""


SideText = Literal["buy", "sell"]


def _side_text(side: Side | str) -> SideText:
    if isinstance(side, Side):
        return "buy" if side == Side.BUY else "sell"
    if side in ("buy", "sell"):
        return "buy" if side == "buy" else "sell"
    raise ValueError(f"side must be Side.BUY, Side.SELL, 'buy' or 'sell', got {side!r}")


@dataclass(frozen=True)
class RunRecord:
    """One run of the market maker."""

    run_id: int
    started_ns: int
    ended_ns: int | None
    exchange: str
    client_id_prefix: str
    config_hash: str
    symbols: tuple[str, ...]


@dataclass(frozen=True)
class OrderRecord:
    """One action sent to the venue and its outcome.

    ``status`` is the outcome as the loop knows it (``accepted``, ``rejected``, ``canceled``,
    ``unknown`` when no answer came); a rejection carries the venue's ``reject_code`` and text.
    ``price`` and ``size`` are None for a cancel.
    """

    symbol: str
    client_order_id: str
    kind: Literal["place", "cancel", "amend"]
    side: SideText
    price: float | None
    size: float | None
    status: str
    sent_ns: int
    answered_ns: int | None = None
    venue_order_id: str | None = None
    reject_code: int | None = None
    reject_reason: str | None = None


@dataclass(frozen=True)
class FillRecord:
    """One fill of our order (``trade_id`` is the venue's, unique per symbol)."""

    symbol: str
    trade_id: str
    side: SideText
    price: float
    size: float
    fee: float
    is_maker: bool
    time_ns: int
    client_order_id: str | None = None


@dataclass(frozen=True)
class PositionSnapshot:
    """Position and PnL of one symbol at one time (the account's figures, fees separate)."""

    symbol: str
    time_ns: int
    position: float
    entry_price: float
    mid: float | None
    balance: float
    realized_pnl: float
    unrealized_pnl: float
    fees: float


@dataclass(frozen=True)
class HaltRecord:
    """A halt of the risk gate: why, when, and when it was reset (None while latched)."""

    symbol: str
    reason: str
    detail: str
    time_ns: int
    reset_ns: int | None = None


_INSERT_ORDER = (
    "INSERT INTO orders (run_id, symbol, client_order_id, kind, side, price, size, status, venue_order_id,"
    " reject_code, reject_reason, sent_ns, answered_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_FILL = (
    "INSERT OR IGNORE INTO fills (run_id, symbol, trade_id, client_order_id, side, price, size, fee, is_maker,"
    " time_ns) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_SNAPSHOT = (
    "INSERT INTO snapshots (run_id, symbol, time_ns, position, entry_price, mid, balance, realized_pnl,"
    " unrealized_pnl, fees) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
_INSERT_HALT = "INSERT INTO halts (run_id, symbol, reason, detail, time_ns, reset_ns) VALUES (?, ?, ?, ?, ?, ?)"
_RESET_HALTS = "UPDATE halts SET reset_ns = ? WHERE run_id = ? AND symbol = ? AND reset_ns IS NULL"


class Journal:
    """The SQLite journal of a market maker (one writer; readers may open it at any time).

    Parameters
    ----------
    path : str | Path
        The database file, created (with its folder) with the schema when missing.
    flush_interval_ms : float
        Buffered records are written when this much time has passed since the last write.
    max_pending : int
        ... or when this many records are buffered.

    Examples
    --------
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "journal.sqlite"
    >>> with Journal(path) as journal:
    ...     run_id = journal.start_run(exchange="sim", client_id_prefix="mm0", config_hash="ab12", symbols=["BTCUSDT"])
    ...     journal.record_fill(FillRecord("BTCUSDT", "7", "buy", 60000.0, 0.01, 0.12, True, 1_000))
    ...     journal.record_fill(FillRecord("BTCUSDT", "7", "buy", 60000.0, 0.01, 0.12, True, 1_000))
    ...     len(journal.fills(run_id))
    1
    """

    def __init__(self, path: str | Path, *, flush_interval_ms: float = 200.0, max_pending: int = 1000) -> None:
        self.path = Path(path)
        self.flush_interval_ms = flush_interval_ms
        self.max_pending = max_pending
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            # Used by this thread and the writer thread, one at a time (``_lock``).
            self._connection = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        except (OSError, sqlite3.Error) as error:
            raise JournalError(f"{self.path}: cannot open the journal ({error})") from None
        self._pending: list[tuple[str, tuple[Any, ...]]] = []
        self._last_flush = time.monotonic()
        self._run_id: int | None = None
        self._lock = threading.Lock()
        # One worker: batches are written in the order they were handed over.
        self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="journal-writer")
        self._write_error: BaseException | None = None
        self._closed = False
        try:
            self._prepare()
        except (sqlite3.DatabaseError, JournalError):
            self._writer.shutdown()
            self._connection.close()
            raise

    def _prepare(self) -> None:
        connection = self._connection
        try:
            version = connection.execute("PRAGMA user_version").fetchone()[0]
            tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        except sqlite3.DatabaseError as error:
            raise JournalError(f"{self.path} is not a journal ({error})") from None
        if version == 0 and not tables:
            connection.executescript(f"BEGIN; {_SCHEMA} PRAGMA user_version = {SCHEMA_VERSION}; COMMIT;")
        elif version != SCHEMA_VERSION:
            raise JournalError(
                f"{self.path} has journal schema version {version}, this marketmaker reads and writes {SCHEMA_VERSION}"
            )
        connection.execute("PRAGMA journal_mode = WAL")
        connection.execute("PRAGMA synchronous = NORMAL")
        connection.execute("PRAGMA foreign_keys = ON")

    # -- writing -------------------------------------------------------------------------------

    @property
    def run_id(self) -> int | None:
        """The open run, None before :meth:`start_run` and after :meth:`end_run`."""
        return self._run_id

    def start_run(
        self,
        *,
        exchange: str,
        client_id_prefix: str,
        config_hash: str,
        symbols: Sequence[str],
        started_ns: int | None = None,
    ) -> int:
        """Opens a run (written at once) and returns its id; later records belong to it."""
        if self._run_id is not None:
            self.end_run()
        self.flush()
        with self._lock:
            cursor = self._connection.execute(
                "INSERT INTO runs (started_ns, exchange, client_id_prefix, config_hash, symbols) VALUES (?, ?, ?, ?, ?)",
                (
                    time.time_ns() if started_ns is None else started_ns,
                    exchange,
                    client_id_prefix,
                    config_hash,
                    ",".join(symbols),
                ),
            )
        assert cursor.lastrowid is not None  # an INSERT into a rowid table always sets it
        self._run_id = cursor.lastrowid
        return self._run_id

    def end_run(self, ended_ns: int | None = None) -> None:
        """Writes what is buffered and closes the open run."""
        if self._run_id is None:
            return
        self._append(
            "UPDATE runs SET ended_ns = ? WHERE run_id = ?",
            (time.time_ns() if ended_ns is None else ended_ns, self._run_id),
        )
        self.flush()
        self._run_id = None

    def _open_run(self) -> int:
        if self._run_id is None:
            raise JournalError("no run is open: call start_run() first")
        return self._run_id

    def _append(self, statement: str, values: tuple[Any, ...]) -> None:
        self._pending.append((statement, values))
        if (
            len(self._pending) >= self.max_pending
            or (time.monotonic() - self._last_flush) * 1000 >= self.flush_interval_ms
        ):
            self._hand_over()

    def record_order(self, order: OrderRecord) -> None:
        """Buffers an action sent and its outcome."""
        self._append(
            _INSERT_ORDER,
            (
                self._open_run(),
                order.symbol,
                order.client_order_id,
                order.kind,
                _side_text(order.side),
                order.price,
                order.size,
                order.status,
                order.venue_order_id,
                order.reject_code,
                order.reject_reason,
                order.sent_ns,
                order.answered_ns,
            ),
        )

    def record_fill(self, fill: FillRecord) -> None:
        """Buffers a fill; a fill already journaled in this run (same symbol and trade id) is ignored."""
        self._append(
            _INSERT_FILL,
            (
                self._open_run(),
                fill.symbol,
                fill.trade_id,
                fill.client_order_id,
                _side_text(fill.side),
                fill.price,
                fill.size,
                fill.fee,
                int(fill.is_maker),
                fill.time_ns,
            ),
        )

    def record_snapshot(self, snapshot: PositionSnapshot) -> None:
        """Buffers a position and PnL snapshot."""
        self._append(
            _INSERT_SNAPSHOT,
            (
                self._open_run(),
                snapshot.symbol,
                snapshot.time_ns,
                snapshot.position,
                snapshot.entry_price,
                snapshot.mid,
                snapshot.balance,
                snapshot.realized_pnl,
                snapshot.unrealized_pnl,
                snapshot.fees,
            ),
        )

    def record_halt(self, halt: HaltRecord) -> None:
        """Buffers a halt of the risk gate."""
        self._append(
            _INSERT_HALT, (self._open_run(), halt.symbol, halt.reason, halt.detail, halt.time_ns, halt.reset_ns)
        )

    def record_halt_reset(self, symbol: str, reset_ns: int) -> None:
        """Marks ``symbol``'s latched halts of this run as reset at ``reset_ns``."""
        self._append(_RESET_HALTS, (reset_ns, self._open_run(), symbol))

    def _hand_over(self) -> None:
        """Gives the buffer to the writer thread and returns at once."""
        self._last_flush = time.monotonic()
        self._raise_write_error()
        if self._pending:
            if self._closed:
                raise JournalError(f"{self.path}: the journal is closed; {len(self._pending)} records not written")
            pending, self._pending = self._pending, []
            self._writer.submit(self._write, pending)

    def flush(self) -> None:
        """Writes every record recorded so far and returns when they are in the file."""
        self._hand_over()
        self.wait_for_writes()

    def pin_writer(self, cpus: set[int]) -> None:
        """Moves the writer thread to ``cpus`` (Linux): keep it off the event loop's CPU when that
        is pinned — on one CPU together, a write of ~70 records (1-3 ms of CPU, 4 times a second)
        preempted the loop and delayed ticks. ``marketmaker-cli run --cpu N`` does this."""
        if not cpus:
            raise ValueError("pin_writer: no CPU given")
        # Linux applies the affinity of pid 0 to the calling thread: run it on the writer.
        self._writer.submit(os.sched_setaffinity, 0, cpus).result()

    def wait_for_writes(self) -> None:
        """Returns when every batch handed to the writer thread is in the file (what is still
        buffered stays buffered: :meth:`flush` hands it over first)."""
        if not self._closed:
            self._writer.submit(lambda: None).result()  # one worker: every earlier batch is done
        self._raise_write_error()

    def _raise_write_error(self) -> None:
        if self._write_error is not None:
            error, self._write_error = self._write_error, None
            raise JournalError(f"{self.path}: records could not be written ({error})") from error

    def _write(self, pending: list[tuple[str, tuple[Any, ...]]]) -> None:
        """In the writer thread: one transaction, runs of one statement batched."""
        with self._lock:
            connection = self._connection
            try:
                connection.execute("BEGIN")
                try:
                    start = 0
                    while start < len(pending):
                        statement = pending[start][0]
                        end = start
                        while end < len(pending) and pending[end][0] == statement:
                            end += 1
                        connection.executemany(statement, [values for _statement, values in pending[start:end]])
                        start = end
                    connection.execute("COMMIT")
                except BaseException:
                    connection.execute("ROLLBACK")
                    raise
            except Exception as error:  # kept for the owner's next call: a thread has no caller
                logger.error("%s: %d journal records could not be written: %s", self.path, len(pending), error)
                if self._write_error is None:
                    self._write_error = error

    def close(self) -> None:
        """Ends the open run, writes what is buffered and closes the file."""
        try:
            self.end_run()
            self.flush()
        finally:
            self._closed = True
            self._writer.shutdown(wait=True)
            self._connection.close()

    def __enter__(self) -> Journal:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- reading -------------------------------------------------------------------------------

    def _rows(self, query: str, values: tuple[Any, ...]) -> list[tuple[Any, ...]]:
        self.flush()
        with self._lock:
            return self._connection.execute(query, values).fetchall()

    def runs(self) -> list[RunRecord]:
        """Every run, oldest first."""
        return [
            RunRecord(row[0], row[1], row[2], row[3], row[4], row[5], tuple(filter(None, row[6].split(","))))
            for row in self._rows(
                "SELECT run_id, started_ns, ended_ns, exchange, client_id_prefix, config_hash, symbols FROM runs"
                " ORDER BY run_id",
                (),
            )
        ]

    def orders(self, run_id: int) -> list[OrderRecord]:
        """The run's actions, in the order they were recorded."""
        return [
            OrderRecord(
                symbol=row[0],
                client_order_id=row[1],
                kind=row[2],
                side=row[3],
                price=row[4],
                size=row[5],
                status=row[6],
                venue_order_id=row[7],
                reject_code=row[8],
                reject_reason=row[9],
                sent_ns=row[10],
                answered_ns=row[11],
            )
            for row in self._rows(
                "SELECT symbol, client_order_id, kind, side, price, size, status, venue_order_id, reject_code,"
                " reject_reason, sent_ns, answered_ns FROM orders WHERE run_id = ? ORDER BY id",
                (run_id,),
            )
        ]

    def fills(self, run_id: int) -> list[FillRecord]:
        """The run's fills, in the order they were recorded (each trade id once)."""
        return [
            FillRecord(
                symbol=row[0],
                trade_id=row[1],
                side=row[2],
                price=row[3],
                size=row[4],
                fee=row[5],
                is_maker=bool(row[6]),
                time_ns=row[7],
                client_order_id=row[8],
            )
            for row in self._rows(
                "SELECT symbol, trade_id, side, price, size, fee, is_maker, time_ns, client_order_id FROM fills"
                " WHERE run_id = ? ORDER BY id",
                (run_id,),
            )
        ]

    def snapshots(self, run_id: int) -> list[PositionSnapshot]:
        """The run's position/PnL snapshots by time."""
        return [
            PositionSnapshot(*row)
            for row in self._rows(
                "SELECT symbol, time_ns, position, entry_price, mid, balance, realized_pnl, unrealized_pnl, fees"
                " FROM snapshots WHERE run_id = ? ORDER BY time_ns, id",
                (run_id,),
            )
        ]

    def halts(self, run_id: int) -> list[HaltRecord]:
        """The run's halts by time."""
        return [
            HaltRecord(*row)
            for row in self._rows(
                "SELECT symbol, reason, detail, time_ns, reset_ns FROM halts WHERE run_id = ? ORDER BY time_ns, id",
                (run_id,),
            )
        ]


# -- the summary ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class SymbolSummary:
    """One symbol's figures over a run.

    ``realized_pnl``, ``fees``, ``volume`` and ``final_position`` are the run's fills replayed
    through the core's :class:`~marketmaker.Account` from a flat position (``realized_pnl`` is
    before fees; ``net_pnl`` after). ``last_snapshot`` is the account as the loop last
    recorded it (None without snapshots).
    """

    symbol: str
    fills: int
    maker_fills: int
    volume: float
    notional: float
    fees: float
    realized_pnl: float
    final_position: float
    orders_sent: int
    orders_rejected: int
    halts: int
    last_snapshot: PositionSnapshot | None

    @property
    def net_pnl(self) -> float:
        """Realised PnL after fees."""
        return self.realized_pnl - self.fees


@dataclass(frozen=True)
class JournalSummary:
    """A run's summary, by symbol."""

    run: RunRecord
    symbols: tuple[SymbolSummary, ...]
    halts: tuple[HaltRecord, ...]

    def render(self) -> str:
        """A readable table."""
        run = self.run
        duration = "" if run.ended_ns is None else f", {(run.ended_ns - run.started_ns) / 1e9:.1f} s"
        lines = [
            f"run {run.run_id} on {run.exchange}{duration} (client ids {run.client_id_prefix}*, config {run.config_hash[:12]})",
            f"{'symbol':<12}{'fills':>7}{'maker':>7}{'volume':>14}{'notional':>16}{'fees':>12}"
            f"{'realised':>14}{'net':>14}{'position':>14}{'sent':>7}{'rejected':>9}{'halts':>6}",
        ]
        for entry in self.symbols:
            lines.append(
                f"{entry.symbol:<12}{entry.fills:>7}{entry.maker_fills:>7}{entry.volume:>14.6g}{entry.notional:>16.2f}"
                f"{entry.fees:>12.4f}{entry.realized_pnl:>14.4f}{entry.net_pnl:>14.4f}{entry.final_position:>14.6g}"
                f"{entry.orders_sent:>7}{entry.orders_rejected:>9}{entry.halts:>6}"
            )
        for entry in self.symbols:
            snapshot = entry.last_snapshot
            if snapshot is not None:
                lines.append(
                    f"{entry.symbol} last snapshot: position {snapshot.position:g}, balance {snapshot.balance:.2f}, "
                    f"realised {snapshot.realized_pnl:.4f}, unrealised {snapshot.unrealized_pnl:.4f}, fees {snapshot.fees:.4f}"
                )
        for halt in self.halts:
            reset = (
                "still latched"
                if halt.reset_ns is None
                else f"reset after {(halt.reset_ns - halt.time_ns) / 1e9:.1f} s"
            )
            lines.append(f"halt {halt.symbol}: {halt.reason} ({halt.detail}), {reset}")
        return "\n".join(lines)


def summarise(path: str | Path, run_id: int | None = None) -> JournalSummary:
    """Summarises one run of a journal (the latest by default).

    Raises
    ------
    JournalError
        When the file is not a journal, has no run, or has no run ``run_id``.
    """
    path = Path(path)
    if not path.is_file():
        raise JournalError(f"{path}: no such journal file")
    with Journal(path) as journal:
        runs = journal.runs()
        if not runs:
            raise JournalError(f"{path}: the journal has no run")
        chosen = runs[-1] if run_id is None else next((run for run in runs if run.run_id == run_id), None)
        if chosen is None:
            raise JournalError(f"{path}: no run {run_id} (runs: {', '.join(str(run.run_id) for run in runs)})")
        fills = journal.fills(chosen.run_id)
        orders = journal.orders(chosen.run_id)
        snapshots = journal.snapshots(chosen.run_id)
        halts = journal.halts(chosen.run_id)
    symbols = list(chosen.symbols)
    for recorded in (
        (fill.symbol for fill in fills),
        (order.symbol for order in orders),
        (halt.symbol for halt in halts),
        (snapshot.symbol for snapshot in snapshots),
    ):
        symbols.extend(symbol for symbol in dict.fromkeys(recorded) if symbol not in symbols)
    summaries = []
    for symbol in symbols:
        account = Account()
        notional = 0.0
        maker = 0
        for fill in fills:
            if fill.symbol == symbol:
                account.apply_fill(
                    fill.trade_id, fill.side, fill.price, fill.size, fee=fill.fee, is_maker=fill.is_maker
                )
                notional += fill.price * fill.size
                maker += fill.is_maker
        symbol_orders = [order for order in orders if order.symbol == symbol]
        symbol_snapshots = [snapshot for snapshot in snapshots if snapshot.symbol == symbol]
        summaries.append(
            SymbolSummary(
                symbol=symbol,
                fills=account.fill_count,
                maker_fills=maker,
                volume=account.volume,
                notional=notional,
                fees=account.fees_paid,
                realized_pnl=account.realized_pnl,
                final_position=account.position,
                orders_sent=len(symbol_orders),
                orders_rejected=sum(order.status == "rejected" for order in symbol_orders),
                halts=sum(halt.symbol == symbol for halt in halts),
                last_snapshot=symbol_snapshots[-1] if symbol_snapshots else None,
            )
        )
    return JournalSummary(chosen, tuple(summaries), tuple(halts))


def plot_run(path: str | Path, out: str | Path, run_id: int | None = None) -> Path:
    """Plots a run's PnL and inventory over time to a PNG.

    Each symbol's PnL is realised + unrealised − fees from its snapshots; a symbol without
    snapshots is drawn from its fills (realised − fees, replayed through the core's account).
    Needs matplotlib (``pip install 'marketmaker[plot]'``).

    Raises
    ------
    JournalError
        When matplotlib is not installed, or the journal or run is missing.
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ModuleNotFoundError:
        raise JournalError("plotting needs matplotlib: pip install 'marketmaker[plot]'") from None
    summary = summarise(path, run_id)
    with Journal(path) as journal:
        snapshots = journal.snapshots(summary.run.run_id)
        fills = journal.fills(summary.run.run_id)
    start_ns = summary.run.started_ns
    figure, (pnl_axes, position_axes) = plt.subplots(2, 1, sharex=True, figsize=(10, 6))
    for entry in summary.symbols:
        times: list[float] = []
        pnl: list[float] = []
        positions: list[float] = []
        own = [snapshot for snapshot in snapshots if snapshot.symbol == entry.symbol]
        if own:
            for snapshot in own:
                times.append((snapshot.time_ns - start_ns) / 1e9)
                pnl.append(snapshot.realized_pnl + snapshot.unrealized_pnl - snapshot.fees)
                positions.append(snapshot.position)
        else:
            account = Account()
            for fill in (fill for fill in fills if fill.symbol == entry.symbol):
                account.apply_fill(
                    fill.trade_id, fill.side, fill.price, fill.size, fee=fill.fee, is_maker=fill.is_maker
                )
                times.append((fill.time_ns - start_ns) / 1e9)
                pnl.append(account.realized_pnl - account.fees_paid)
                positions.append(account.position)
        pnl_axes.step(times, pnl, where="post", marker=".", label=entry.symbol)
        position_axes.step(times, positions, where="post", marker=".", label=entry.symbol)
    pnl_axes.set_ylabel("PnL (quote currency, after fees)")
    position_axes.set_ylabel("position (base)")
    position_axes.set_xlabel("seconds since the run started")
    pnl_axes.set_title(f"run {summary.run.run_id} on {summary.run.exchange}")
    pnl_axes.legend(loc="best")
    out = Path(out)
    figure.savefig(out, dpi=100)
    plt.close(figure)
    return out
