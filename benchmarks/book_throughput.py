"""Order-book throughput: marketmaker's book against its peers, side by side (issue 2).

A seeded synthetic stream of L2 level updates (default 1,000,000: ~1,000 levels a side, tick
0.1, most updates within 20 ticks of the touch, ~10% deletes, the mid a slow random walk) is
applied to every implementation, and after every update each one reads six values: best bid,
best ask, summed size of the top 5 levels per side and of the top 20 levels per side.

Peers are optional and never project dependencies. Install them with one command (a venv that
still sees the installed ``marketmaker``; ``benchmarks/.peers/`` is git-ignored)::

    python -m venv --system-site-packages benchmarks/.peers && benchmarks/.peers/bin/pip install sortedcontainers cryptofeed hftbacktest nautilus_trader

(``pip install sortedcontainers cryptofeed hftbacktest nautilus_trader`` into the current
environment works too, but it downgrades numpy to 2.2.x for numba.) Then::

    benchmarks/.peers/bin/python benchmarks/book_throughput.py            # everything, ~5 min
    python benchmarks/book_throughput.py --only ours,ours_batch --updates 200000
    python benchmarks/book_throughput.py --json /tmp/book.json

Options: ``--updates N``, ``--repeats K`` (timed runs per implementation; default 6 for the
fast ones, 3 for the slow peers), ``--rounds R`` (default 3), ``--only NAME[,NAME]``,
``--json PATH``, ``--seed S``, ``--py-prefix N`` (updates the pure-Python peer runs, default
200,000). The rate reported is the median of the timed runs.

Each implementation runs in its own subprocess (``--in-process --only NAME``), so that its peak
RSS is its own. The runs are spread over R rounds that each go through every implementation
in turn, so that the load of a shared, noisy machine falls on all of them alike. A peer that is
not installed is reported as such and skipped; one that fails is reported as failed. In the
first round every implementation's six values are checked against ours after every update
(relative tolerance 1e-9), and in every round its state after each timed run, so that a wrong
peer cannot produce a number.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import gc
import importlib.util
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from itertools import islice
from typing import Any, ClassVar

import numpy as np

TICK = 0.1
LEVELS = 1_000  # initial levels a side
NEAR_TICKS = 20  # "near the touch"
NEAR_SHARE = 0.85  # share of updates within NEAR_TICKS of the touch
DELETE_SHARE = 0.08  # random deletes; mid moves add ~2% forced deletes (total ~10%)
MOVE_SHARE = 0.02  # updates at which the mid moves one tick (each is the delete of the
# level the mid moved into, so the book never crosses)
MID0_TICKS = 600_000  # 60,000.0
MAX_LOTS = 5_000  # sizes are lots of 0.001, 0.001 .. 5.000
RTOL = 1e-9
PY_PREFIX = 200_000

SYMBOL = "BTCUSDT"
DEPTHS = (5, 20)
WIDTH = 6  # best bid, best ask, bid top5, ask top5, bid top20, ask top20


# ------------------------------------------------------------------------------------------
# The stream
# ------------------------------------------------------------------------------------------


@dataclass
class Stream:
    """The update stream as arrays, plus the initial snapshot (applied before timing)."""

    is_bid: np.ndarray  # bool
    ticks: np.ndarray  # int64
    price: np.ndarray  # float64, exact decimal floats on the 0.1 grid
    size: np.ndarray  # float64, multiples of 0.001 (0 deletes)
    snap_bid_ticks: np.ndarray
    snap_bid_size: np.ndarray
    snap_ask_ticks: np.ndarray
    snap_ask_size: np.ndarray

    def __len__(self) -> int:
        return len(self.is_bid)

    def prefix(self, n: int) -> Stream:
        return Stream(
            self.is_bid[:n],
            self.ticks[:n],
            self.price[:n],
            self.size[:n],
            self.snap_bid_ticks,
            self.snap_bid_size,
            self.snap_ask_ticks,
            self.snap_ask_size,
        )

    def updates(self) -> list[tuple[bool, float, float]]:
        """``(is_bid, price, size)`` tuples of Python objects."""
        return list(zip(self.is_bid.tolist(), self.price.tolist(), self.size.tolist()))

    def snapshot_levels(self) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
        bids = list(zip(to_price(self.snap_bid_ticks).tolist(), self.snap_bid_size.tolist()))
        asks = list(zip(to_price(self.snap_ask_ticks).tolist(), self.snap_ask_size.tolist()))
        return bids, asks


def to_price(ticks: np.ndarray) -> np.ndarray:
    """Ticks to prices: the nearest float to ``ticks × 0.1`` (exact decimal floats)."""
    return np.round(ticks / 10, 1)


def make_stream(n: int, seed: int) -> Stream:
    """A seeded stream that never crosses the book.

    The mid ``M`` is a random walk in ticks: bids live at ticks <= M, asks at ticks >= M + 1.
    An update is a bid at ``M - d + 1`` or an ask at ``M + d`` (``d`` in 1..20 for 85% of them,
    21..1000 otherwise), with a size of 1..5000 lots of 0.001 or, 8% of the time, 0 (delete).
    At 2% of the updates the mid moves one tick instead; that update deletes the level the mid
    moved into (the bid at the old M when it moves down, the ask at the old M + 1 when it moves
    up), so no bid ever sits at or above an ask.
    """
    rng = np.random.default_rng(seed)
    u = rng.random(n)
    moves = np.where(u < MOVE_SHARE / 2, -1, np.where(u < MOVE_SHARE, 1, 0)).astype(np.int64)
    mid_before = MID0_TICKS + np.concatenate(([0], np.cumsum(moves)[:-1]))
    is_bid = rng.random(n) < 0.5
    near = rng.random(n) < NEAR_SHARE
    distance = np.where(near, rng.integers(1, NEAR_TICKS + 1, n), rng.integers(NEAR_TICKS + 1, LEVELS + 1, n))
    ticks = np.where(is_bid, mid_before - distance + 1, mid_before + distance)
    lots = rng.integers(1, MAX_LOTS + 1, n)
    lots[rng.random(n) < DELETE_SHARE] = 0
    down, up = moves < 0, moves > 0
    is_bid[down] = True
    ticks[down] = mid_before[down]
    is_bid[up] = False
    ticks[up] = mid_before[up] + 1
    lots[down | up] = 0
    snap_offsets = np.arange(LEVELS, dtype=np.int64)
    return Stream(
        is_bid=is_bid,
        ticks=ticks.astype(np.int64),
        price=to_price(ticks),
        size=lots / 1000.0,
        snap_bid_ticks=MID0_TICKS - snap_offsets,
        snap_bid_size=rng.integers(1, MAX_LOTS + 1, LEVELS) / 1000.0,
        snap_ask_ticks=MID0_TICKS + 1 + snap_offsets,
        snap_ask_size=rng.integers(1, MAX_LOTS + 1, LEVELS) / 1000.0,
    )


def stream_stats(stream: Stream) -> dict[str, Any]:
    """Facts about the stream (deletes hitting levels, depth, mid range), simulated in Python."""
    bids = set(stream.snap_bid_ticks.tolist())
    asks = set(stream.snap_ask_ticks.tolist())
    deletes = hits = 0
    min_levels = [len(bids), len(asks)]
    for is_bid, ticks, size in zip(stream.is_bid.tolist(), stream.ticks.tolist(), stream.size.tolist()):
        side = bids if is_bid else asks
        if size == 0.0:
            deletes += 1
            if ticks in side:
                hits += 1
                side.discard(ticks)
                min_levels[0 if is_bid else 1] = min(min_levels[0 if is_bid else 1], len(side))
        else:
            side.add(ticks)
    # Distance of each update from its side's touch before it (0 = at the touch, negative =
    # improving it), from ours' reads.
    reads = reference(stream)
    first = [[to_price(stream.snap_bid_ticks.max()), to_price(stream.snap_ask_ticks.min())]]
    best_before = np.vstack([first, reads[:-1, :2]])
    touch_ticks = np.round(np.where(stream.is_bid, best_before[:, 0], best_before[:, 1]) * 10)
    distance = np.where(stream.is_bid, touch_ticks - stream.ticks, stream.ticks - touch_ticks)
    return {
        "updates": len(stream),
        "within_20_ticks_of_touch_share": float(np.mean(distance < NEAR_TICKS)),
        "crossed_reads": int(np.sum(reads[:, 0] >= reads[:, 1])),
        "bid_updates": int(stream.is_bid.sum()),
        "deletes": deletes,
        "delete_share": deletes / max(len(stream), 1),
        "deletes_of_existing_levels": hits,
        "deletes_of_existing_share": hits / max(deletes, 1),
        "levels_at_end": [len(bids), len(asks)],
        "min_levels": min_levels,
        "price_range": [float(stream.price.min()), float(stream.price.max())],
    }


# ------------------------------------------------------------------------------------------
# Implementations
# ------------------------------------------------------------------------------------------


class Impl:
    """One implementation: how to build its input and book, run it, and read its outputs."""

    name = ""
    label = ""
    how = ""
    module = ""  # what must be importable
    packages: tuple[str, ...] = ()
    extra_modules: tuple[str, ...] = ()
    slow = False  # 3 repeats by default instead of 5
    python_prefix = False  # runs only the first --py-prefix updates

    def available(self) -> bool:
        return importlib.util.find_spec(self.module) is not None

    def load(self) -> None:
        """Imports the implementation (before the RSS baseline: library code is not book)."""
        importlib.import_module(self.module)
        for extra in self.extra_modules:
            importlib.import_module(extra)

    def warm_up(self, stream: Stream, data: Any) -> None:
        """Anything to do once before the timed runs (after the input's RSS is read)."""

    def prepare(self, stream: Stream) -> Any:
        """The implementation's input, built before timing (its RSS is reported apart)."""
        return stream.updates()

    def new_book(self, stream: Stream) -> Any:
        raise NotImplementedError

    def run(self, book: Any, data: Any) -> Any:
        """The timed loop: apply every update and read the six values after each."""
        raise NotImplementedError

    def record(self, book: Any, data: Any) -> np.ndarray:
        """The same as run, keeping every read as an (n, 6) array (untimed, for the check)."""
        raise NotImplementedError

    def final(self, book: Any, run_result: Any) -> list[float]:
        """The six values after a timed run."""
        raise NotImplementedError

    def close(self, book: Any) -> None:
        """Releases a book after a run."""

    def versions(self) -> dict[str, str]:
        return {pkg: package_version(pkg) for pkg in self.packages}


def _ours_book(stream: Stream) -> Any:
    import marketmaker

    book = marketmaker.OrderBook(SYMBOL, tick_size=TICK, watch_depths=list(DEPTHS))
    bids, asks = stream.snapshot_levels()
    book.apply_levels(bids=bids, asks=asks)
    return book


class OursPerUpdate(Impl):
    name = "ours"
    label = "ours, per update from Python"
    how = "`watch = book.set_level_and_watch`; `for b, p, s in updates: watch(b, p, s)`"
    module = "marketmaker"
    packages = ("marketmaker",)

    def new_book(self, stream: Stream) -> Any:
        return _ours_book(stream)

    def run(self, book: Any, data: Any) -> None:
        watch = book.set_level_and_watch
        for b, p, s in data:
            watch(b, p, s)

    def record(self, book: Any, data: Any) -> np.ndarray:
        watch = book.set_level_and_watch
        return np.array([watch(b, p, s) for b, p, s in data], dtype=np.float64)

    def final(self, book: Any, run_result: Any) -> list[float]:
        return list(book.watch())


class OursBatch(Impl):
    name = "ours_batch"
    label = "ours, batch (float prices)"
    how = "`book.apply_levels_batch(is_bid, prices_f64, sizes)` -> (n, 6) array, GIL released"
    module = "marketmaker"
    packages = ("marketmaker",)
    ticks = False

    def prepare(self, stream: Stream) -> Any:
        return (stream.is_bid, stream.ticks if self.ticks else stream.price, stream.size)

    def new_book(self, stream: Stream) -> Any:
        return _ours_book(stream)

    def run(self, book: Any, data: Any) -> Any:
        return book.apply_levels_batch(*data)

    def record(self, book: Any, data: Any) -> np.ndarray:
        return book.apply_levels_batch(*data)

    def final(self, book: Any, run_result: Any) -> list[float]:
        return list(book.watch())


class OursBatchTicks(OursBatch):
    name = "ours_batch_ticks"
    label = "ours, batch (int64 ticks)"
    how = "`book.apply_levels_batch(is_bid, ticks_i64, sizes)` -> (n, 6) array, GIL released"
    ticks = True


class PySortedDict(Impl):
    name = "sortedcontainers"
    label = "pure Python, sortedcontainers.SortedDict"
    how = "two SortedDicts; `d[p] = s` / `d.pop(p, None)`; top levels by `islice` over the keys from the best end"
    module = "sortedcontainers"
    packages = ("sortedcontainers",)
    slow = True
    python_prefix = True

    def new_book(self, stream: Stream) -> Any:
        from sortedcontainers import SortedDict

        bids, asks = stream.snapshot_levels()
        return SortedDict(bids), SortedDict(asks)

    def run(self, book: Any, data: Any) -> None:
        bids, asks = book
        for b, p, s in data:
            side = bids if b else asks
            if s:
                side[p] = s
            else:
                side.pop(p, None)
            bid_prices = list(islice(reversed(bids), 20))
            ask_prices = list(islice(asks, 20))
            bid_sizes = [bids[k] for k in bid_prices]
            ask_sizes = [asks[k] for k in ask_prices]
            _ = (
                bid_prices[0],
                ask_prices[0],
                sum(bid_sizes[:5]),
                sum(ask_sizes[:5]),
                sum(bid_sizes),
                sum(ask_sizes),
            )

    def record(self, book: Any, data: Any) -> np.ndarray:
        bids, asks = book
        out = []
        for b, p, s in data:
            side = bids if b else asks
            if s:
                side[p] = s
            else:
                side.pop(p, None)
            bid_prices = list(islice(reversed(bids), 20))
            ask_prices = list(islice(asks, 20))
            bid_sizes = [bids[k] for k in bid_prices]
            ask_sizes = [asks[k] for k in ask_prices]
            out.append(
                (
                    bid_prices[0],
                    ask_prices[0],
                    sum(bid_sizes[:5]),
                    sum(ask_sizes[:5]),
                    sum(bid_sizes),
                    sum(ask_sizes),
                )
            )
        return np.array(out, dtype=np.float64)

    def final(self, book: Any, run_result: Any) -> list[float]:
        bids, asks = book
        bid_prices = list(islice(reversed(bids), 20))
        ask_prices = list(islice(asks, 20))
        bid_sizes = [bids[k] for k in bid_prices]
        ask_sizes = [asks[k] for k in ask_prices]
        return [
            bid_prices[0],
            ask_prices[0],
            sum(bid_sizes[:5]),
            sum(ask_sizes[:5]),
            sum(bid_sizes),
            sum(ask_sizes),
        ]


class Cryptofeed(Impl):
    name = "cryptofeed"
    label = "cryptofeed `order_book` (C extension)"
    how = (
        "`OrderBook()`; `side[p] = s` / `del side[p]` (a size of 0 would stay as a level); "
        "top 20 a side by `side.index(i)` (40 calls an update)"
    )
    module = "order_book"
    packages = ("order_book", "cryptofeed")
    slow = True

    def new_book(self, stream: Stream) -> Any:
        from order_book import OrderBook

        book = OrderBook()
        bids, asks = stream.snapshot_levels()
        for p, s in bids:
            book.bids[p] = s
        for p, s in asks:
            book.asks[p] = s
        return book

    def run(self, book: Any, data: Any) -> None:
        bids, asks = book.bids, book.asks
        bid_at, ask_at = bids.index, asks.index
        depth = range(20)
        for b, p, s in data:
            side = bids if b else asks
            if s:
                side[p] = s
            else:
                try:
                    del side[p]
                except KeyError:
                    pass
            bid_levels = [bid_at(i) for i in depth]
            ask_levels = [ask_at(i) for i in depth]
            bid_sizes = [level[1] for level in bid_levels]
            ask_sizes = [level[1] for level in ask_levels]
            _ = (
                bid_levels[0][0],
                ask_levels[0][0],
                sum(bid_sizes[:5]),
                sum(ask_sizes[:5]),
                sum(bid_sizes),
                sum(ask_sizes),
            )

    def record(self, book: Any, data: Any) -> np.ndarray:
        bids, asks = book.bids, book.asks
        bid_at, ask_at = bids.index, asks.index
        depth = range(20)
        out = []
        for b, p, s in data:
            side = bids if b else asks
            if s:
                side[p] = s
            else:
                try:
                    del side[p]
                except KeyError:
                    pass
            bid_levels = [bid_at(i) for i in depth]
            ask_levels = [ask_at(i) for i in depth]
            bid_sizes = [level[1] for level in bid_levels]
            ask_sizes = [level[1] for level in ask_levels]
            out.append(
                (
                    bid_levels[0][0],
                    ask_levels[0][0],
                    sum(bid_sizes[:5]),
                    sum(ask_sizes[:5]),
                    sum(bid_sizes),
                    sum(ask_sizes),
                )
            )
        return np.array(out, dtype=np.float64)

    def final(self, book: Any, run_result: Any) -> list[float]:
        bid_sizes = [book.bids.index(i)[1] for i in range(20)]
        ask_sizes = [book.asks.index(i)[1] for i in range(20)]
        return [
            book.bids.index(0)[0],
            book.asks.index(0)[0],
            sum(bid_sizes[:5]),
            sum(ask_sizes[:5]),
            sum(bid_sizes),
            sum(ask_sizes),
        ]


class Nautilus(Impl):
    name = "nautilus"
    label = "NautilusTrader PyO3 `OrderBook` (L2_MBP)"
    how = (
        "`book.update(BookOrder, 0, 0, 0)` with pre-built `BookOrder`s (size 0 deletes); "
        "`best_bid_price().as_double()`, sizes from `bids(20)`/`asks(20)` `BookLevel.size()`"
    )
    module = "nautilus_trader"
    extra_modules = ("nautilus_trader.core.nautilus_pyo3",)
    packages = ("nautilus_trader",)
    slow = True

    def _n(self) -> Any:
        from nautilus_trader.core import nautilus_pyo3

        return nautilus_pyo3

    def prepare(self, stream: Stream) -> Any:
        n = self._n()
        buy, sell, price, quantity, order = (
            n.OrderSide.BUY,
            n.OrderSide.SELL,
            n.Price,
            n.Quantity,
            n.BookOrder,
        )
        return [
            order(buy if b else sell, price(p, 1), quantity(s, 3), 0)
            for b, p, s in zip(stream.is_bid.tolist(), stream.price.tolist(), stream.size.tolist())
        ]

    def new_book(self, stream: Stream) -> Any:
        n = self._n()
        book = n.OrderBook(n.InstrumentId.from_str(f"{SYMBOL}-PERP.BINANCE"), n.BookType.L2_MBP)
        bids, asks = stream.snapshot_levels()
        for side, levels in ((n.OrderSide.BUY, bids), (n.OrderSide.SELL, asks)):
            for p, s in levels:
                book.update(n.BookOrder(side, n.Price(p, 1), n.Quantity(s, 3), 0), 0, 0, 0)
        return book

    @staticmethod
    def _read(book: Any) -> tuple[float, float, float, float, float, float]:
        bid_sizes = [level.size() for level in book.bids(20)]
        ask_sizes = [level.size() for level in book.asks(20)]
        return (
            book.best_bid_price().as_double(),
            book.best_ask_price().as_double(),
            sum(bid_sizes[:5]),
            sum(ask_sizes[:5]),
            sum(bid_sizes),
            sum(ask_sizes),
        )

    def run(self, book: Any, data: Any) -> None:
        update = book.update
        best_bid, best_ask, bids, asks = (
            book.best_bid_price,
            book.best_ask_price,
            book.bids,
            book.asks,
        )
        for order in data:
            update(order, 0, 0, 0)
            bid_sizes = [level.size() for level in bids(20)]
            ask_sizes = [level.size() for level in asks(20)]
            _ = (
                best_bid().as_double(),
                best_ask().as_double(),
                sum(bid_sizes[:5]),
                sum(ask_sizes[:5]),
                sum(bid_sizes),
                sum(ask_sizes),
            )

    def record(self, book: Any, data: Any) -> np.ndarray:
        update = book.update
        best_bid, best_ask, bids, asks = (
            book.best_bid_price,
            book.best_ask_price,
            book.bids,
            book.asks,
        )
        out = []
        for order in data:
            update(order, 0, 0, 0)
            bid_sizes = [level.size() for level in bids(20)]
            ask_sizes = [level.size() for level in asks(20)]
            out.append(
                (
                    best_bid().as_double(),
                    best_ask().as_double(),
                    sum(bid_sizes[:5]),
                    sum(ask_sizes[:5]),
                    sum(bid_sizes),
                    sum(ask_sizes),
                )
            )
        return np.array(out, dtype=np.float64)

    def final(self, book: Any, run_result: Any) -> list[float]:
        return list(self._read(book))


class HftBacktest(Impl):
    name = "hftbacktest"
    label = "hftbacktest ROIVectorMarketDepth, numba loop"
    how = (
        "`ROIVectorMarketDepthBacktest` over a prepared event array (DEPTH_EVENT | LOCAL_EVENT "
        "| BUY/SELL_EVENT, 1 µs apart); an `@njit` loop calls `hbt.wait_next_feed` once per "
        "event, reads `depth.best_bid`/`best_ask` and sums the top 5/20 non-empty ticks of the "
        "`depth.bid_depth`/`ask_depth` arrays scanning out from the best tick"
    )
    module = "hftbacktest"
    extra_modules = ("numba",)
    packages = ("hftbacktest", "numba")

    _drives: ClassVar[dict[str, Callable[..., int]]] = {}  # compiled numba drivers, shared

    def prepare(self, stream: Stream) -> Any:
        from hftbacktest import BUY_EVENT, DEPTH_EVENT, LOCAL_EVENT, SELL_EVENT
        from hftbacktest.binding import event_dtype

        # One more event than updates: hftbacktest answers the last event of the data with
        # "end of data" rather than "market feed", so a no-op event (a price far outside the
        # range of interest, which the depth ignores) closes the data.
        n = len(stream)
        events = np.zeros(n + 1, dtype=event_dtype)
        events["ev"][:n] = np.where(
            stream.is_bid,
            np.uint64(DEPTH_EVENT | LOCAL_EVENT | BUY_EVENT),
            np.uint64(DEPTH_EVENT | LOCAL_EVENT | SELL_EVENT),
        )
        events["ev"][n] = DEPTH_EVENT | LOCAL_EVENT | BUY_EVENT
        stamps = 1_000_000_000 + 1_000 * np.arange(1, n + 2, dtype=np.int64)
        events["exch_ts"] = stamps
        events["local_ts"] = stamps
        events["px"][:n] = stream.price
        events["px"][n] = TICK
        events["qty"][:n] = stream.size
        return events

    def _snapshot(self, stream: Stream) -> np.ndarray:
        from hftbacktest import (
            BUY_EVENT,
            DEPTH_SNAPSHOT_EVENT,
            EXCH_EVENT,
            LOCAL_EVENT,
            SELL_EVENT,
        )
        from hftbacktest.binding import event_dtype

        flags = DEPTH_SNAPSHOT_EVENT | EXCH_EVENT | LOCAL_EVENT
        k = len(stream.snap_bid_ticks)
        snap = np.zeros(2 * k, dtype=event_dtype)
        snap["ev"][:k] = flags | BUY_EVENT
        snap["ev"][k:] = flags | SELL_EVENT
        snap["px"][:k] = to_price(stream.snap_bid_ticks)
        snap["px"][k:] = to_price(stream.snap_ask_ticks)
        snap["qty"][:k] = stream.snap_bid_size
        snap["qty"][k:] = stream.snap_ask_size
        return snap

    def new_book(self, stream: Stream, events: Any = None) -> Any:
        from hftbacktest import BacktestAsset, ROIVectorMarketDepthBacktest

        if events is None:
            events = self._events
        lo = min(int(stream.ticks.min()), int(stream.snap_bid_ticks.min())) - 10
        hi = max(int(stream.ticks.max()), int(stream.snap_ask_ticks.max())) + 10
        # hftbacktest keeps raw pointers to both arrays: they must outlive the backtest.
        self._snapshot_array = self._snapshot(stream)
        asset = (
            BacktestAsset()
            .data(events)
            .initial_snapshot(self._snapshot_array)
            .linear_asset(1.0)
            .constant_order_latency(0, 0)
            .risk_adverse_queue_model()
            .no_partial_fill_exchange()
            .trading_value_fee_model(0.0, 0.0)
            .tick_size(TICK)
            .lot_size(0.001)
            .roi_lb(lo * TICK)
            .roi_ub(hi * TICK)
            .last_trades_capacity(0)
        )
        return ROIVectorMarketDepthBacktest([asset]), len(events) - 1

    def _compile(self) -> Callable[..., int]:
        if self.name not in self._drives:
            self._drives[self.name] = self._make_drive()
        return self._drives[self.name]

    def _make_drive(self) -> Callable[..., int]:
        from numba import njit

        @njit
        def drive(hbt, out):  # type: ignore[no-untyped-def]
            depth = hbt.depth(0)
            bid_qty = depth.bid_depth
            ask_qty = depth.ask_depth
            lb = depth.roi_lb_tick
            top = len(ask_qty)
            n = out.shape[0]
            i = 0
            while i < n:
                if hbt.wait_next_feed(False, 1_000_000_000_000) != 2:
                    break
                out[i, 0] = depth.best_bid
                out[i, 1] = depth.best_ask
                t = depth.best_bid_tick - lb
                count = 0
                total = 0.0
                while count < 20 and t >= 0:
                    q = bid_qty[t]
                    if q > 0.0:
                        total += q
                        count += 1
                        if count == 5:
                            out[i, 2] = total
                    t -= 1
                if count < 5:
                    out[i, 2] = total
                out[i, 4] = total
                t = depth.best_ask_tick - lb
                count = 0
                total = 0.0
                while count < 20 and t < top:
                    q = ask_qty[t]
                    if q > 0.0:
                        total += q
                        count += 1
                        if count == 5:
                            out[i, 3] = total
                    t += 1
                if count < 5:
                    out[i, 3] = total
                out[i, 5] = total
                i += 1
            return i

        return drive

    def warm_up(self, stream: Stream, data: Any) -> None:
        """Compiles the numba loop (and hftbacktest's jitclasses) on a short prefix."""
        self._events = data
        small = stream.prefix(min(len(stream), 2_000))
        small_events = self.prepare(small)
        hbt, n = self.new_book(small, small_events)
        done = self._compile()(hbt, np.empty((n, WIDTH)))
        assert done == n, (done, n)
        hbt.close()

    def run(self, book: Any, data: Any) -> Any:
        hbt, n = book
        out = np.empty((n, WIDTH))
        done = self._compile()(hbt, out)
        if done != n:
            raise AssertionError(f"hftbacktest stopped after {done} of {n} events")
        return out

    def record(self, book: Any, data: Any) -> np.ndarray:
        return self.run(book, data)

    def final(self, book: Any, run_result: Any) -> list[float]:
        return list(run_result[-1])

    def close(self, book: Any) -> None:
        book[0].close()


class HftBacktestQtyAtTick(HftBacktest):
    name = "hftbacktest_qty_at_tick"
    label = "hftbacktest ROIVectorMarketDepth, numba loop, `bid_qty_at_tick`"
    how = (
        "as above, but the top 5/20 are summed by calling `depth.bid_qty_at_tick(t)` / "
        "`ask_qty_at_tick(t)` tick by tick from the best tick outward (an FFI call a tick)"
    )

    def _make_drive(self) -> Callable[..., int]:
        from numba import njit

        @njit
        def drive(hbt, out):  # type: ignore[no-untyped-def]
            depth = hbt.depth(0)
            lb = depth.roi_lb_tick
            ub = depth.roi_ub_tick
            n = out.shape[0]
            i = 0
            while i < n:
                if hbt.wait_next_feed(False, 1_000_000_000_000) != 2:
                    break
                out[i, 0] = depth.best_bid
                out[i, 1] = depth.best_ask
                t = depth.best_bid_tick
                count = 0
                total = 0.0
                while count < 20 and t >= lb:
                    q = depth.bid_qty_at_tick(t)
                    if q > 0.0:
                        total += q
                        count += 1
                        if count == 5:
                            out[i, 2] = total
                    t -= 1
                if count < 5:
                    out[i, 2] = total
                out[i, 4] = total
                t = depth.best_ask_tick
                count = 0
                total = 0.0
                while count < 20 and t <= ub:
                    q = depth.ask_qty_at_tick(t)
                    if q > 0.0:
                        total += q
                        count += 1
                        if count == 5:
                            out[i, 3] = total
                    t += 1
                if count < 5:
                    out[i, 3] = total
                out[i, 5] = total
                i += 1
            return i

        return drive


IMPLS: list[Impl] = [
    OursPerUpdate(),
    OursBatch(),
    OursBatchTicks(),
    PySortedDict(),
    Cryptofeed(),
    Nautilus(),
    HftBacktest(),
    HftBacktestQtyAtTick(),
]
BY_NAME = {impl.name: impl for impl in IMPLS}


# ------------------------------------------------------------------------------------------
# Measuring one implementation (in its own process)
# ------------------------------------------------------------------------------------------


def current_rss_mb() -> float:
    with open("/proc/self/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def peak_rss_mb() -> float:
    """This process's peak RSS: ``VmHWM``, the high-water mark of its own address space.

    ``getrusage(RUSAGE_SELF).ru_maxrss`` would be the same number but for one trap: Linux
    carries it over fork and exec, so a child started from a big parent reports at least the
    parent's RSS at the fork. ``VmHWM`` starts afresh with the new program.
    """
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024  # kB
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def reference(stream: Stream) -> np.ndarray:
    """Ours, batch over int64 ticks: the six values after every update."""
    book = _ours_book(stream)
    return book.apply_levels_batch(stream.is_bid, stream.ticks, stream.size)


def check(name: str, got: np.ndarray, want: np.ndarray) -> dict[str, Any]:
    """Asserts that ``got`` matches ``want`` everywhere (rtol 1e-9)."""
    if got.shape != want.shape:
        raise AssertionError(f"{name}: outputs have shape {got.shape}, expected {want.shape}")
    close = np.isclose(got, want, rtol=RTOL, atol=0.0) | (np.isnan(got) & np.isnan(want))
    if not close.all():
        row, col = np.argwhere(~close)[0]
        raise AssertionError(
            f"{name}: {int((~close).any(axis=1).sum())} of {len(got)} updates disagree with ours; "
            f"first at update {row}, value {col}: got {got[row, col]!r}, ours {want[row, col]!r}"
        )
    exact = int(np.all(got == want, axis=1).sum())
    return {"rows_checked": len(got), "rows_bit_identical": exact}


def measure(impl: Impl, n: int, repeats: int, seed: int, py_prefix: int, verify: bool = True) -> dict[str, Any]:
    impl.load()
    full = make_stream(n, seed)
    used = min(n, py_prefix) if impl.python_prefix else n
    stream = full.prefix(used) if used < n else full
    gc.collect()
    rss_arrays = current_rss_mb()
    data = impl.prepare(stream)
    gc.collect()
    rss_prepared = current_rss_mb()
    impl.warm_up(stream, data)
    times = []
    finals = []
    last = None
    for _ in range(repeats):
        book = impl.new_book(stream)
        gc.collect()
        start = time.perf_counter()
        result = impl.run(book, data)
        elapsed = time.perf_counter() - start
        times.append(elapsed)
        finals.append(impl.final(book, result))
        impl.close(book)
        if isinstance(impl, HftBacktest):
            last = result
        del book, result
    peak = peak_rss_mb()
    ru_maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    # Correctness: every update's six values against ours (untimed, after the memory reading);
    # the state after every timed run against ours' final state in any case.
    want = reference(stream)
    for final in finals:
        check(impl.name + " (final state after a timed run)", np.array([final]), want[-1:])
    checked: dict[str, Any] = {"rows_checked": 0, "rows_bit_identical": 0}
    if verify:
        got = last if last is not None else impl.record(impl.new_book(stream), data)
        checked = check(impl.name, got, want)

    median = float(np.median(times))
    return {
        "name": impl.name,
        "label": impl.label,
        "how": impl.how,
        "versions": impl.versions(),
        "updates_timed": used,
        "repeats": repeats,
        "seconds": times,
        "updates_per_s": used / median,
        "updates_per_s_runs": [used / t for t in times],
        "rss_after_arrays_mb": rss_arrays,
        "rss_after_input_mb": rss_prepared,
        "peak_rss_mb": peak,
        "ru_maxrss_mb": ru_maxrss,  # inflated by the parent's RSS at fork; see peak_rss_mb
        "peak_minus_arrays_mb": peak - rss_arrays,
        "input_mb": rss_prepared - rss_arrays,
        **checked,
    }


# ------------------------------------------------------------------------------------------
# The driver: one subprocess per implementation, a Markdown table
# ------------------------------------------------------------------------------------------


def package_version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def machine() -> dict[str, Any]:
    cpu: dict[str, str] = {}
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                key, _, value = line.partition(":")
                cpu.setdefault(key.strip(), value.strip())
    except OSError:
        pass
    model = cpu.get("model name", "unknown")
    details = (
        f"family {cpu.get('cpu family', '?')} model {cpu.get('model', '?')}, "
        f"{float(cpu.get('cpu MHz', 'nan')):.0f} MHz"
        + (", virtualised" if "hypervisor" in cpu.get("flags", "").split() else "")
    )
    repo = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    try:
        commit = subprocess.run(
            ["git", "-C", repo, "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", repo, "status", "--porcelain", "--", "rust", "python"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        commit += " (rust/ or python/ modified)" if dirty else ""
    except (OSError, subprocess.CalledProcessError):
        commit = "unknown"
    core = importlib.util.find_spec("marketmaker._core")
    built = (
        _dt.datetime.fromtimestamp(os.path.getmtime(core.origin), _dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
        if core and core.origin
        else "unknown"
    )
    packages = [
        "marketmaker",
        "numpy",
        "sortedcontainers",
        "order_book",
        "cryptofeed",
        "nautilus_trader",
        "hftbacktest",
        "numba",
    ]
    return {
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": model,
        "cpu_details": details,
        "repo_commit": commit,
        "core_built": built,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {name: package_version(name) for name in packages},
    }


def fmt_rate(rate: float) -> str:
    if rate >= 1e6:
        return f"{rate / 1e6:.2f}M"
    return f"{rate / 1e3:.0f}k"


def fmt_ratio(ratio: float) -> str:
    if ratio >= 10:
        return f"{ratio:.0f}×"
    if ratio >= 1:
        return f"{ratio:.2f}×"
    return f"{ratio:.2g}×"


def table(results: list[dict[str, Any]]) -> str:
    ours = next((r for r in results if r["name"] == "ours" and "updates_per_s" in r), None)
    batch = next((r for r in results if r["name"] == "ours_batch_ticks" and "updates_per_s" in r), None)
    lines = [
        "| implementation | updates/s (median) | runs min–max | vs ours per update "
        "| vs ours batch (ticks) | peak RSS − stream arrays | of which input | total peak RSS "
        "| checked against ours |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in results:
        if "updates_per_s" not in r:
            lines.append(f"| {r['label']} | {r['status']} | | | | | | | |")
            continue
        runs = r["updates_per_s_runs"]
        prefix = f" ({r['updates_timed'] // 1000}k-update prefix)" if r["updates_timed"] < r["updates_total"] else ""
        vs_ours = fmt_ratio(r["updates_per_s"] / ours["updates_per_s"]) if ours else "–"
        vs_batch = fmt_ratio(r["updates_per_s"] / batch["updates_per_s"]) if batch else "–"
        lines.append(
            f"| {r['label']}{prefix} | **{fmt_rate(r['updates_per_s'])}** "
            f"| {fmt_rate(min(runs))}–{fmt_rate(max(runs))} ({r['repeats']} runs) "
            f"| {vs_ours} | {vs_batch} | {r['peak_minus_arrays_mb']:.0f} MB "
            f"| {r['input_mb']:.0f} MB | {r['peak_rss_mb']:.0f} MB "
            f"| all {r['rows_checked']:,} updates ✓ |"
        )
    return "\n".join(lines)


def targets(results: list[dict[str, Any]]) -> list[str]:
    found = {r["name"]: r for r in results if "updates_per_s" in r}
    lines = []
    for name, goal in (("ours", 3e6), ("ours_batch", 10e6), ("ours_batch_ticks", 10e6)):
        if name in found:
            rate = found[name]["updates_per_s"]
            verdict = "met" if rate >= goal else f"MISSED by {100 * (1 - rate / goal):.0f}%"
            lines.append(f"- {found[name]['label']}: {fmt_rate(rate)}/s against {fmt_rate(goal)}/s: {verdict}")
    return lines


def run_child(name: str, args: argparse.Namespace, repeats: int, verify: bool) -> dict[str, Any]:
    """Runs one implementation in a fresh interpreter and returns its measurement."""
    impl = BY_NAME[name]
    base = {"name": name, "label": impl.label, "how": impl.how, "updates_total": args.updates}
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "result.json")
        command = [
            sys.executable,
            os.path.abspath(__file__),
            "--in-process",
            "--only",
            name,
            "--updates",
            str(args.updates),
            "--repeats",
            str(repeats),
            "--seed",
            str(args.seed),
            "--py-prefix",
            str(args.py_prefix),
            "--json",
            out,
        ] + ([] if verify else ["--no-verify"])
        started = time.perf_counter()
        load_before = os.getloadavg()[0]
        proc = subprocess.run(command, capture_output=True, text=True)
        load_after = os.getloadavg()[0]
        wall = time.perf_counter() - started
        if proc.returncode != 0 or not os.path.exists(out):
            tail = (proc.stderr or proc.stdout).strip().splitlines()[-1:] or ["no output"]
            print(proc.stderr, file=sys.stderr)
            return {**base, "status": f"failed: {tail[0]}"}
        with open(out) as handle:
            result = json.load(handle)
    return {
        **base,
        **result,
        "wall_seconds": wall,
        "load_before": [load_before],
        "load_after": [load_after],
    }


def merge(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """One implementation's rounds as one result: all timed runs, the highest peaks."""
    failed = [r for r in rounds if "status" in r]
    if failed:
        return failed[0]
    merged = dict(rounds[0])
    runs = [rate for r in rounds for rate in r["updates_per_s_runs"]]
    merged["updates_per_s_runs"] = runs
    merged["seconds"] = [t for r in rounds for t in r["seconds"]]
    merged["updates_per_s"] = float(np.median(runs))
    merged["repeats"] = len(runs)
    merged["rounds"] = len(rounds)
    for key in ("peak_rss_mb", "peak_minus_arrays_mb", "input_mb", "ru_maxrss_mb"):
        merged[key] = max(r[key] for r in rounds)
    merged["rows_checked"] = sum(r["rows_checked"] for r in rounds)
    merged["rows_bit_identical"] = sum(r["rows_bit_identical"] for r in rounds)
    merged["load_before"] = [load for r in rounds for load in r["load_before"]]
    merged["load_after"] = [load for r in rounds for load in r["load_after"]]
    merged["wall_seconds"] = sum(r["wall_seconds"] for r in rounds)
    return merged


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--updates", type=int, default=1_000_000)
    parser.add_argument(
        "--repeats",
        type=int,
        default=None,
        help="timed runs per implementation (default 6, or 3 for the slow peers)",
    )
    parser.add_argument("--only", default=None, help="comma-separated: " + ",".join(BY_NAME))
    parser.add_argument("--json", default=None, help="write the results here")
    parser.add_argument("--seed", type=int, default=20_240_602)
    parser.add_argument("--py-prefix", type=int, default=PY_PREFIX)
    parser.add_argument(
        "--rounds",
        type=int,
        default=3,
        help="passes through all implementations, interleaved in time, that share the repeats",
    )
    parser.add_argument("--in-process", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--no-verify", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)

    names = list(BY_NAME) if not args.only else [n.strip() for n in args.only.split(",")]
    unknown = [n for n in names if n not in BY_NAME]
    if unknown:
        parser.error(f"unknown implementation(s) {unknown}; choose from {list(BY_NAME)}")

    if args.in_process:
        if len(names) != 1:
            parser.error("--in-process runs exactly one implementation")
        result = measure(
            BY_NAME[names[0]],
            args.updates,
            args.repeats or 5,
            args.seed,
            args.py_prefix,
            verify=not args.no_verify,
        )
        text = json.dumps(result, indent=2)
        if args.json:
            with open(args.json, "w") as handle:
                handle.write(text)
        else:
            print(text)
        return 0

    info = machine()
    started = _dt.datetime.now(_dt.timezone.utc)
    print(f"# Order book throughput, {started:%Y-%m-%d %H:%M} UTC\n")
    print(
        f"machine: {info['nproc']} cores, {info['cpu']} ({info['cpu_details']}), "
        f"Python {info['python']}, {info['platform']}"
    )
    print(
        f"repository at {info['repo_commit']}, marketmaker._core built {info['core_built']}; "
        f"load average at start {os.getloadavg()[0]:.2f}"
    )
    print("packages: " + ", ".join(f"{k} {v}" for k, v in info["packages"].items()))
    stats = stream_stats(make_stream(args.updates, args.seed))
    print(
        f"stream: {stats['updates']:,} updates (seed {args.seed}), "
        f"{stats['deletes']:,} deletes ({100 * stats['delete_share']:.1f}%, "
        f"{100 * stats['deletes_of_existing_share']:.1f}% of them hit a level), "
        f"{100 * stats['within_20_ticks_of_touch_share']:.0f}% within 20 ticks of the touch, "
        f"{stats['crossed_reads']} crossed reads, "
        f"levels a side at the end {stats['levels_at_end']}, prices "
        f"{stats['price_range'][0]:.1f}–{stats['price_range'][1]:.1f}\n",
        flush=True,
    )
    # Round-robin: each round runs every implementation once, in its own subprocess, with a
    # share of its repeats, so that a change in the machine's load (it is shared and noisy)
    # falls on every implementation alike. Round 1 also checks every update's values.
    rounds = max(1, args.rounds)
    runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}
    missing: dict[str, dict[str, Any]] = {}
    for name in names:
        impl = BY_NAME[name]
        if not impl.available():
            missing[name] = {
                "name": name,
                "label": impl.label,
                "how": impl.how,
                "status": "not installed",
            }
    for round_no in range(rounds):
        # Each round starts one implementation further on, so none always runs first.
        shift = round_no % len(names)
        for name in names[shift:] + names[:shift]:
            if name in missing:
                continue
            impl = BY_NAME[name]
            total = args.repeats or (3 if impl.slow else 6)
            share = total // rounds + (1 if round_no < total % rounds else 0)
            if share == 0:
                continue
            print(f"round {round_no + 1}/{rounds}: {name} ...", file=sys.stderr, flush=True)
            result = run_child(name, args, share, verify=round_no == 0)
            runs[name].append(result)
            status = f"{fmt_rate(result['updates_per_s'])}/s" if "updates_per_s" in result else result["status"]
            print(f"  {status}", file=sys.stderr, flush=True)
            if "status" in result:
                missing[name] = result  # failed: reported as such, not run again
    results = [missing[name] if name in missing else merge(runs[name]) for name in names]
    print(table(results))
    print()
    for line in targets(results):
        print(line)
    elapsed = (_dt.datetime.now(_dt.timezone.utc) - started).total_seconds()
    load = ", ".join(
        f"{r['name']} " + " ".join(f"{a:.1f}→{b:.1f}" for a, b in zip(r["load_before"], r["load_after"]))
        for r in results
        if "load_before" in r
    )
    print(f"\n1-minute load average before→after each subprocess, by round: {load}")
    print(f"(total {elapsed:.0f} s)")
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {
                    "started_utc": started.isoformat(),
                    "argv": sys.argv,
                    "machine": info,
                    "stream": stats,
                    "results": results,
                    "total_seconds": elapsed,
                },
                handle,
                indent=2,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
