"""Property tests: the Rust order book against a small, independent pure-Python model.

The model keeps each side as ``{exact price: size}`` (prices as ``Fraction``, so no tick
arithmetic is shared with the core) and computes every read the obvious way: best prices with
``max``/``min``, depth sums over ``sorted`` levels added best-first, mid and spread from exact
prices. Hypothesis drives random operation sequences (single-level sets including deletes of
absent levels and re-sets, level messages, snapshots) and venue streams (Binance ``U``/``u``/
``pu`` with a REST snapshot, Bybit snapshot + deltas) through both and compares after every step.
"""

from __future__ import annotations

import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, note, settings
from hypothesis import strategies as st
from marketmaker import BookStatus, OrderBook, Side, UpdateOutcome
from marketmaker.errors import (
    InvalidPriceError,
    InvalidSizeError,
    MalformedMessageError,
    MarketMakerError,
    OffTickError,
    SequenceGapError,
)

#: Examples per property test; raise it (``MARKETMAKER_HYPOTHESIS_EXAMPLES=5000``) for a long
#: hunt, the default keeps the suite quick on a 2-core machine.
EXAMPLES = int(os.environ.get("MARKETMAKER_HYPOTHESIS_EXAMPLES", "150"))
PROPERTY = settings(
    max_examples=EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
#: For the tests whose examples are whole streams, checked after every message.
STREAM_PROPERTY = settings(PROPERTY, max_examples=max(1, EXAMPLES * 2 // 3))

#: Tick sizes as exchanges write them (decimal text), including non-powers of ten.
TICK_SIZES = ["0.1", "0.01", "0.0001", "0.5", "0.25", "1", "5"]
#: Depths read with ``top_size`` after every step (0 and far past the book's size included).
DEPTHS = (0, 1, 2, 3, 5, 10, 1_000)
#: Basis-point bands read with ``size_within_bps``.
BPS = (0.0, 0.5, 1.0, 5.0, 25.0, 100.0, 2_500.0)
#: How far the core may snap a float price onto the grid, in ticks (documented: a millionth),
#: doubled to cover the rounding of ``mid × (1 ± bps / 10⁴)`` itself.
GRID_TOLERANCE_TICKS = Fraction(2, 1_000_000)

#: ``draw`` of ``@st.composite`` or ``data.draw`` of ``st.data()``.
Draw = Callable[..., Any]

BID_SPELLINGS: list[Any] = [Side.BUY, "bid", "buy", "BID", "Buy", "b", "bids", True]
ASK_SPELLINGS: list[Any] = [Side.SELL, "ask", "sell", "ASK", "Sell", "a", "s", "asks", False]


# ---- the model ------------------------------------------------------------------------------


def decimal_text(value: Fraction) -> str:
    """Exact decimal text of a terminating fraction, e.g. ``Fraction(618003, 10) -> "61800.3"``."""
    return format(Decimal(value.numerator) / Decimal(value.denominator), "f")


class ModelBook:
    """Both sides as ``{exact price: size}``; every read computed the obvious way."""

    def __init__(self, tick: str) -> None:
        self.tick = Fraction(tick)
        self.sides: dict[bool, dict[Fraction, float]] = {True: {}, False: {}}
        self.update_count = 0
        self.exchange_time_ns: int | None = None
        self.receive_time_ns: int | None = None
        self._sorted: dict[bool, list[tuple[Fraction, float]]] = {}
        self._best: dict[bool, Fraction] = {}

    def copy(self) -> ModelBook:
        other = ModelBook("1")
        other.tick = self.tick
        other.sides = {True: dict(self.sides[True]), False: dict(self.sides[False])}
        other.update_count = self.update_count
        other.exchange_time_ns = self.exchange_time_ns
        other.receive_time_ns = self.receive_time_ns
        other._sorted = {}
        other._best = {}
        return other

    def set_level(self, is_bid: bool, price: Fraction, size: float) -> None:
        self._sorted = {}
        self._best = {}
        levels = self.sides[is_bid]
        if size == 0:
            levels.pop(price, None)
        else:
            levels[price] = size

    def apply(self, bids: list[Level], asks: list[Level]) -> None:
        for level in bids:
            self.set_level(True, level.price, level.size)
        for level in asks:
            self.set_level(False, level.price, level.size)

    def replace(self, bids: list[Level], asks: list[Level]) -> None:
        self._sorted = {}
        self._best = {}
        self.sides = {True: {}, False: {}}
        self.apply(bids, asks)

    def stamp(self, exchange_time_ns: int | None, receive_time_ns: int | None) -> None:
        if exchange_time_ns is not None:
            self.exchange_time_ns = exchange_time_ns
        if receive_time_ns is not None:
            self.receive_time_ns = receive_time_ns

    # reads

    def levels(self, is_bid: bool) -> list[tuple[Fraction, float]]:
        """Best first: bids descending, asks ascending."""
        if is_bid not in self._sorted:
            self._sorted[is_bid] = sorted(self.sides[is_bid].items(), reverse=is_bid)
        return self._sorted[is_bid]

    def float_levels(self, is_bid: bool) -> list[tuple[float, float]]:
        return [(float(price), size) for price, size in self.levels(is_bid)]

    def best(self, is_bid: bool) -> Fraction | None:
        levels = self.sides[is_bid]
        if not levels:
            return None
        if is_bid not in self._best:
            self._best[is_bid] = max(levels) if is_bid else min(levels)
        return self._best[is_bid]

    def best_size(self, is_bid: bool) -> float:
        best = self.best(is_bid)
        return 0.0 if best is None else self.sides[is_bid][best]

    def top_size(self, is_bid: bool, depth: int) -> float:
        total = 0.0
        for _, size in self.levels(is_bid)[:depth]:
            total += size
        return total

    def size_within_bps_choices(self, is_bid: bool, bps: float) -> set[float]:
        """The acceptable results of ``size_within_bps``.

        Levels inside the band around the mid (boundary included) must be counted, levels
        clearly outside must not; a level within the grid tolerance outside the boundary may
        go either way. The levels counted are always a best-first prefix, summed best-first.
        """
        bid, ask = self.best(True), self.best(False)
        if bid is None or ask is None:
            return {0.0}
        mid = (bid + ask) / 2
        band = Fraction(bps) / 10_000
        threshold = mid * (1 - band) if is_bid else mid * (1 + band)
        slack = GRID_TOLERANCE_TICKS * self.tick
        inside = ambiguous = 0
        choices = set()
        total = 0.0
        for price, size in self.levels(is_bid):
            distance = (price - threshold) if is_bid else (threshold - price)
            if distance >= 0:
                inside += 1
            elif -distance <= slack:
                choices.add(total)  # the book may stop before this level ...
                ambiguous += 1
            else:
                break
            total += size
        choices.add(total)  # ... or after it
        return choices

    def watch(self, depths: list[int]) -> tuple[float, ...]:
        bid, ask = self.best(True), self.best(False)
        values = [math.nan if bid is None else float(bid), math.nan if ask is None else float(ask)]
        for depth in sorted(set(depths)):
            values += [self.top_size(True, depth), self.top_size(False, depth)]
        return tuple(values)


@dataclass(frozen=True)
class Level:
    """One level as the model sees it (exact price, float size) and as it is sent (wire)."""

    price: Fraction
    size: float
    wire_price: Any
    wire_size: Any

    def pair(self, as_tuple: bool = False) -> Any:
        return (self.wire_price, self.wire_size) if as_tuple else [self.wire_price, self.wire_size]


def same_float(a: float | None, b: float | None) -> bool:
    if a is None or b is None:
        return a is b
    return (math.isnan(a) and math.isnan(b)) or a == b


def same_tuple(got: tuple[float, ...], expected: tuple[float, ...]) -> bool:
    return len(got) == len(expected) and all(same_float(g, e) for g, e in zip(got, expected))


def snapshot_of(book: OrderBook) -> dict[str, Any]:
    """Everything observable about a book's contents and counters."""
    return {
        "bids": book.bids(),
        "asks": book.asks(),
        "update_count": book.update_count,
        "level_update_count": book.level_update_count,
        "status": book.status,
        "last_update_id": book.last_update_id,
        "buffered_count": book.buffered_count,
        "exchange_time_ns": book.exchange_time_ns,
        "receive_time_ns": book.receive_time_ns,
        "last_gap": book.last_gap,
    }


def assert_book_matches(book: OrderBook, model: ModelBook) -> None:
    """Compares every read of the book with the model."""
    bid, ask = model.best(True), model.best(False)
    assert book.best_bid == (None if bid is None else float(bid))
    assert book.best_ask == (None if ask is None else float(ask))
    assert book.best_bid_size == model.best_size(True)
    assert book.best_ask_size == model.best_size(False)
    assert book.level_count(Side.BUY) == len(model.sides[True])
    assert book.level_count("ask") == len(model.sides[False])

    assert book.levels(Side.BUY) == model.float_levels(True)
    assert book.levels("sell") == model.float_levels(False)
    assert book.bids() == model.float_levels(True)
    assert book.asks() == model.float_levels(False)
    assert book.bids(3) == model.float_levels(True)[:3]
    assert book.levels(Side.SELL, 2) == model.float_levels(False)[:2]

    for depth in DEPTHS:
        assert book.top_size(Side.BUY, depth) == model.top_size(True, depth), depth
        assert book.top_size(Side.SELL, depth) == model.top_size(False, depth), depth

    for bps in BPS:
        got_bid = book.size_within_bps(Side.BUY, bps)
        got_ask = book.size_within_bps(Side.SELL, bps)
        assert got_bid in model.size_within_bps_choices(True, bps), ("bid", bps, got_bid)
        assert got_ask in model.size_within_bps_choices(False, bps), ("ask", bps, got_ask)

    for is_bid in (True, False):
        for price, size in model.levels(is_bid)[:3]:
            assert book.size_at(is_bid, decimal_text(price)) == size
    if bid is not None:
        assert book.size_at(Side.SELL, decimal_text(bid)) == model.sides[False].get(bid, 0.0)

    if bid is None or ask is None:
        assert book.mid is None
        assert book.spread is None
        assert book.spread_ticks is None
        assert book.microprice is None
        assert book.is_crossed is False
    else:
        assert book.mid == float((bid + ask) / 2)
        assert book.spread == float(ask - bid)
        spread_ticks = (ask - bid) / model.tick
        assert spread_ticks.denominator == 1
        assert book.spread_ticks == int(spread_ticks)
        bid_size, ask_size = model.best_size(True), model.best_size(False)
        microprice = (float(bid) * ask_size + float(ask) * bid_size) / (bid_size + ask_size)
        assert book.microprice is not None
        assert math.isclose(book.microprice, microprice, rel_tol=1e-12)
        low, high = sorted((float(bid), float(ask)))
        # A weighted average of the touch prices (to within float rounding of the formula).
        assert low * (1 - 1e-15) <= book.microprice <= high * (1 + 1e-15)
        assert book.is_crossed is (bid >= ask)

    watch, expected = book.watch(), model.watch(book.watch_depths)
    assert same_tuple(watch, expected), (watch, expected)


# ---- strategies -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Grid:
    """One example's price grid: tick size, and the tick counts where bids and asks live."""

    tick: str
    base: int
    ask_shift: int

    def price(self, offset: int) -> Fraction:
        return (self.base + offset) * Fraction(self.tick)

    def ticks(self, offset: int) -> int:
        return self.base + offset


@st.composite
def grids(draw: st.DrawFn) -> Grid:
    tick = draw(st.sampled_from(TICK_SIZES))
    base = draw(st.integers(1, 2_000_000))
    # Asks start around 40 ticks above the bids' range start; a shift below 0 lets the sides
    # overlap, so both crossed and normal books occur.
    return Grid(tick=tick, base=base, ask_shift=draw(st.integers(-45, 10)))


def _size(number: int) -> tuple[float, Any]:
    """A size in thousandths (like exchange quantities; the top of the range is scaled up to
    large sizes) and its wire form: text, float or int, picked from the number itself."""
    thousandths = number if number <= 4_900 else number * 1_000_003
    value = thousandths / 1000
    form = number % 3
    if form == 0:
        return value, f"{thousandths // 1000}.{thousandths % 1000:03d}"
    if form == 1 and thousandths % 1000 == 0:
        return value, thousandths // 1000
    return value, value


@functools.cache
def levels(grid: Grid, is_bid: bool, allow_zero: bool = True) -> st.SearchStrategy[Level]:
    """Levels on ``grid``'s side: 41 neighbouring ticks, so that levels are often re-set; the
    wire form of the price (text, zero-padded text or float) varies with the draw."""
    shift = 0 if is_bid else 40 + grid.ask_shift

    def make(offset: int, number: int) -> Level:
        number = max(number, 0)  # about one level in five is a delete
        price = grid.price(max(offset + shift, 1 - grid.base))  # keep the price positive
        size, wire_size = _size(number)
        form = (offset * 7 + number) % 4
        if form == 3:
            return Level(price, size, float(price), wire_size)
        text = decimal_text(price)
        if form == 2:
            text += ("" if "." in text else ".") + "0" * (1 + number % 3)
        return Level(price, size, text, wire_size)

    return st.builds(make, st.integers(0, 40), st.integers(-1_200 if allow_zero else 1, 5_000))


@functools.cache
def level_lists(grid: Grid, is_bid: bool, max_size: int) -> st.SearchStrategy[list[Level]]:
    return st.lists(levels(grid, is_bid), max_size=max_size)


def message(draw: Draw, grid: Grid, max_size: int) -> tuple[list[Level], list[Level]]:
    return draw(level_lists(grid, True, max_size)), draw(level_lists(grid, False, max_size))


def wire(levels_: list[Level], draw: Draw) -> list[Any]:
    """The levels as a venue message: ``[[price, size], ...]`` or a list of tuples."""
    as_tuple = draw(st.booleans())
    return [level.pair(as_tuple) for level in levels_]


watch_depth_lists = st.lists(st.integers(1, 30), min_size=1, max_size=10)


# ---- unsequenced operations -------------------------------------------------------------------


@STREAM_PROPERTY
@given(data=st.data(), grid=grids(), watch_depths=watch_depth_lists)
def test_random_operations_match_the_model(data: st.DataObject, grid: Grid, watch_depths: list[int]) -> None:
    book = OrderBook("TESTUSDT", grid.tick, watch_depths=watch_depths)
    model = ModelBook(grid.tick)
    assert book.watch_depths == sorted(set(watch_depths))
    assert_book_matches(book, model)
    clock = 0
    for _ in range(data.draw(st.integers(1, 25), label="steps")):
        kind = data.draw(st.sampled_from(["set", "set", "set", "levels", "snapshot"]))
        clock += 1
        exchange_time = data.draw(st.sampled_from([None, clock * 1_000]))
        receive_time = data.draw(st.sampled_from([None, clock * 1_000 + 7]))
        before_levels = book.level_update_count
        if kind == "set":
            is_bid = data.draw(st.booleans())
            level = data.draw(levels(grid, is_bid))
            side = data.draw(st.sampled_from(BID_SPELLINGS if is_bid else ASK_SPELLINGS))
            note(f"set_level({side!r}, {level.wire_price!r}, {level.wire_size!r})")
            model.set_level(is_bid, level.price, level.size)
            if data.draw(st.booleans()):
                book.set_level(side, level.wire_price, level.wire_size)
            else:
                returned = book.set_level_and_watch(side, level.wire_price, level.wire_size)
                assert same_tuple(returned, model.watch(watch_depths))
            entries = 1
        elif kind == "levels":
            bids, asks = message(data.draw, grid, 6)
            wire_bids, wire_asks = wire(bids, data.draw), wire(asks, data.draw)
            note(f"apply_levels({wire_bids!r}, {wire_asks!r})")
            model.apply(bids, asks)
            model.stamp(exchange_time, receive_time)
            book.apply_levels(wire_bids, wire_asks, exchange_time_ns=exchange_time, receive_time_ns=receive_time)
            entries = len(bids) + len(asks)
        else:
            bids, asks = message(data.draw, grid, 25)
            note(f"apply_snapshot({len(bids)} bids, {len(asks)} asks)")
            model.replace(bids, asks)
            model.stamp(exchange_time, receive_time)
            applied = book.apply_snapshot(
                wire(bids, data.draw),
                wire(asks, data.draw),
                exchange_time_ns=exchange_time,
                receive_time_ns=receive_time,
            )
            # An unsequenced book replays and drops nothing and stays live.
            assert (applied.replayed, applied.dropped, applied.status) == (0, 0, BookStatus.LIVE)
            entries = len(bids) + len(asks)
        model.update_count += 1
        assert book.update_count == model.update_count
        assert before_levels <= book.level_update_count <= before_levels + entries
        assert book.exchange_time_ns == model.exchange_time_ns
        assert book.receive_time_ns == model.receive_time_ns
        assert book.status == BookStatus.LIVE
        assert_book_matches(book, model)


# ---- invalid input leaves the book unchanged --------------------------------------------------


def invalid_entry(kind: str, level: Level, tick: Fraction) -> tuple[Any, type[Exception]]:
    """A malformed version of ``level`` and the exception class it must raise."""
    text_price = decimal_text(level.price)
    size = level.size if level.size > 0 else 1.5
    return {
        "nan price": ([math.nan, size], InvalidPriceError),
        "nan price text": (["NaN", size], InvalidPriceError),
        "inf price": ([math.inf, size], InvalidPriceError),
        "inf price text": (["inf", size], InvalidPriceError),
        "negative price": ([-float(level.price), size], InvalidPriceError),
        "negative price text": (["-" + text_price, size], InvalidPriceError),
        "zero price": ([0.0, size], InvalidPriceError),
        "zero price text": (["0.000", size], InvalidPriceError),
        "off-tick price text": ([decimal_text(level.price + tick / 2), size], OffTickError),
        "off-tick price float": ([float(level.price + tick / 4), size], OffTickError),
        "non-numeric price": (["61800.30.1", size], InvalidPriceError),
        "empty price": (["", size], InvalidPriceError),
        "negative size": ([text_price, -size], InvalidSizeError),
        "negative size text": ([text_price, "-0.001"], InvalidSizeError),
        "nan size": ([text_price, math.nan], InvalidSizeError),
        "nan size text": ([text_price, "nan"], InvalidSizeError),
        "inf size": ([text_price, math.inf], InvalidSizeError),
        "inf size text": ([text_price, "-inf"], InvalidSizeError),
        "non-numeric size": ([text_price, "1,5"], InvalidSizeError),
        "short pair": ([text_price], MalformedMessageError),
        "long pair": ([text_price, size, size], MalformedMessageError),
        "bare price": (text_price, MalformedMessageError),
        "object": ({"price": text_price, "size": size}, MalformedMessageError),
    }[kind]


INVALID_KINDS = [
    "nan price",
    "nan price text",
    "inf price",
    "inf price text",
    "negative price",
    "negative price text",
    "zero price",
    "zero price text",
    "off-tick price text",
    "off-tick price float",
    "non-numeric price",
    "empty price",
    "negative size",
    "negative size text",
    "nan size",
    "nan size text",
    "inf size",
    "inf size text",
    "non-numeric size",
    "short pair",
    "long pair",
    "bare price",
    "object",
]


@PROPERTY
@given(
    data=st.data(),
    grid=grids(),
    kind=st.sampled_from(INVALID_KINDS),
    method=st.sampled_from(
        ["apply_levels", "apply_snapshot", "binance_diff", "binance_event", "bybit", "bybit_message"]
    ),
)
def test_an_invalid_level_anywhere_raises_and_changes_nothing(
    data: st.DataObject, grid: Grid, kind: str, method: str
) -> None:
    sequencing = {"binance_diff": "binance", "binance_event": "binance"}.get(
        method, "bybit" if method.startswith("bybit") else "unsequenced"
    )
    book = OrderBook("TESTUSDT", grid.tick, sequencing=sequencing)
    model = ModelBook(grid.tick)
    start_bids, start_asks = message(data.draw, grid, 15)
    model.replace(start_bids, start_asks)
    if sequencing == "binance":
        book.apply_snapshot(wire(start_bids, data.draw), wire(start_asks, data.draw), last_update_id=100)
        # Bridge the snapshot so that the next diff, if valid, would be applied.
        assert book.apply_binance_diff(90, 100, 89, [], []) == UpdateOutcome.APPLIED
    elif sequencing == "bybit":
        outcome = book.apply_bybit(True, 100, wire(start_bids, data.draw), wire(start_asks, data.draw))
        assert outcome == UpdateOutcome.APPLIED
    else:
        book.apply_snapshot(wire(start_bids, data.draw), wire(start_asks, data.draw))
    assert book.status == BookStatus.LIVE

    bids, asks = message(data.draw, grid, 8)
    corrupt_bids = data.draw(st.booleans(), label="corrupt bids")
    target = bids if corrupt_bids else asks
    victim = data.draw(levels(grid, corrupt_bids), label="victim")
    bad, error = invalid_entry(kind, victim, Fraction(grid.tick))
    position = data.draw(st.integers(0, len(target)), label="position")
    wire_bids, wire_asks = wire(bids, data.draw), wire(asks, data.draw)
    (wire_bids if corrupt_bids else wire_asks).insert(position, bad)
    note(f"{method}: bids={wire_bids!r} asks={wire_asks!r}")

    before = snapshot_of(book)

    def send(send_bids: list[Any], send_asks: list[Any]) -> Any:
        if method == "apply_levels":
            return book.apply_levels(send_bids, send_asks, exchange_time_ns=5)
        if method == "apply_snapshot":
            return book.apply_snapshot(send_bids, send_asks, exchange_time_ns=5)
        if method == "binance_diff":
            return book.apply_binance_diff(101, 110, 100, send_bids, send_asks, exchange_time_ns=5)
        if method == "binance_event":
            event = {"e": "depthUpdate", "E": 5, "U": 101, "u": 110, "pu": 100, "b": send_bids, "a": send_asks}
            return book.apply_binance_event({"stream": "testusdt@depth", "data": event})
        if method == "bybit":
            return book.apply_bybit(False, 101, send_bids, send_asks, exchange_time_ns=5)
        return book.apply_bybit_message(
            {"type": "delta", "ts": 5, "data": {"s": "TESTUSDT", "b": send_bids, "a": send_asks, "u": 101}}
        )

    with pytest.raises(MarketMakerError) as raised:
        send(wire_bids, wire_asks)
    assert type(raised.value) is error, (kind, raised.value)
    assert snapshot_of(book) == before
    assert_book_matches(book, model)

    # The same message without the bad entry goes through.
    result = send(wire(bids, data.draw), wire(asks, data.draw))
    if method == "apply_snapshot":
        model.replace(bids, asks)
    else:
        assert result in (None, UpdateOutcome.APPLIED)
        model.apply(bids, asks)
    expected_time = 5_000_000 if method in ("binance_event", "bybit_message") else 5
    assert book.exchange_time_ns == expected_time
    assert_book_matches(book, model)


@PROPERTY
@given(data=st.data(), grid=grids(), kind=st.sampled_from(INVALID_KINDS[:19]))
def test_an_invalid_single_level_raises_and_changes_nothing(data: st.DataObject, grid: Grid, kind: str) -> None:
    book = OrderBook("TESTUSDT", grid.tick)
    model = ModelBook(grid.tick)
    bids, asks = message(data.draw, grid, 10)
    book.apply_levels(wire(bids, data.draw), wire(asks, data.draw))
    model.apply(bids, asks)
    is_bid = data.draw(st.booleans())
    (price, size), error = invalid_entry(kind, data.draw(levels(grid, is_bid)), Fraction(grid.tick))
    before = snapshot_of(book)
    for call in (book.set_level, book.set_level_and_watch):
        with pytest.raises(MarketMakerError) as raised:
            call(is_bid, price, size)
        assert type(raised.value) is error, (kind, raised.value)
        assert snapshot_of(book) == before
    assert_book_matches(book, model)


@pytest.mark.parametrize(
    "price",
    [
        "100.1000000000000000000000001",  # 28 significant digits, 25 decimals
        "100.10000000000000000000001",  # 23 decimals
        "100.0999999999999999999999999999",
        "1.001000000000000000000000001e2",  # exponent form
        " 100.1000000000000001",  # surrounding blanks
    ],
)
def test_long_off_tick_text_is_rejected(price: str) -> None:
    """Exchange text is converted exactly: text that is not a whole number of ticks, however
    many digits it has, must not be rounded onto the grid and accepted."""
    book = OrderBook("BTCUSDT", "0.1")
    book.apply_levels([["100.0", "1"]], [["100.5", "1"]])
    before = snapshot_of(book)
    with pytest.raises(InvalidPriceError):
        book.set_level(Side.BUY, price, "2")
    with pytest.raises(InvalidPriceError):
        book.apply_levels([[price, "2"]], [])
    assert snapshot_of(book) == before


def test_size_within_bps_includes_levels_on_the_boundary() -> None:
    book = OrderBook("BTCUSDT", "0.1")
    book.apply_levels([["99.0", "1"], ["98.9", "2"]], [["101.0", "3"], ["101.1", "4"]])
    assert book.mid == 100.0
    # 100 bp of a mid of 100 is 1.0: the band is [99.0, 101.0], both ends included.
    assert book.size_within_bps(Side.BUY, 100) == 1.0
    assert book.size_within_bps(Side.SELL, 100) == 3.0
    assert book.size_within_bps(Side.BUY, 110) == 3.0  # [98.9, 101.1]
    assert book.size_within_bps(Side.SELL, 110) == 7.0
    assert book.size_within_bps(Side.BUY, 99) == 0.0
    assert book.size_within_bps(Side.SELL, 0) == 0.0
    book.set_level(Side.BUY, "101.0", "5")  # locked: the mid is a level on both sides
    assert book.size_within_bps(Side.BUY, 0) == 5.0
    assert book.size_within_bps(Side.SELL, 0) == 3.0
    one_sided = OrderBook("BTCUSDT", "0.1")
    one_sided.apply_levels([["99.0", "1"]], [])
    assert one_sided.size_within_bps(Side.BUY, 10_000) == 0.0


def test_on_tick_text_in_other_spellings_is_accepted() -> None:
    book = OrderBook("BTCUSDT", "0.1")
    for spelling in ("100.1", "100.10000", "+100.1", " 100.1 ", "1.001e2", 100.1):
        book.set_level(Side.BUY, spelling, "1")
        assert book.bids() == [(100.1, 1.0)], spelling


def test_exchange_text_is_converted_exactly() -> None:
    book = OrderBook("BTCUSDT", "0.10")
    assert book.tick_size == 0.1
    book.apply_levels(bids=[["61800.20", "2.507"]], asks=[["61800.30", "3.330"]])
    assert book.best_bid == 61800.2 == float("61800.20")
    assert book.best_ask == 61800.3 == float("61800.30")
    assert book.spread_ticks == 1
    assert book.price_to_ticks("61800.30") == 618_003
    assert book.price_to_ticks(61800.3) == 618_003
    assert book.ticks_to_price(618_003) == 61800.3
    # The same level written as text, padded text and a float is one level.
    book.set_level("bid", "61800.2000", "1")
    book.set_level("bid", 61800.2, 1.25)
    assert book.bids() == [(61800.2, 1.25)]


# ---- Binance sequencing -----------------------------------------------------------------------


@dataclass
class Diff:
    first: int  # U
    last: int  # u
    prev: int  # pu
    bids: list[Level]
    asks: list[Level]
    time_ns: int

    def send(self, book: OrderBook, draw: Draw) -> UpdateOutcome:
        bids, asks = wire(self.bids, draw), wire(self.asks, draw)
        if draw(st.booleans()):
            return book.apply_binance_diff(self.first, self.last, self.prev, bids, asks, exchange_time_ns=self.time_ns)
        event = {
            "e": "depthUpdate",
            "E": self.time_ns // 1_000_000,
            "T": self.time_ns // 1_000_000,
            "s": "TESTUSDT",
            "U": self.first,
            "u": self.last,
            "pu": self.prev,
            "b": bids,
            "a": asks,
        }
        if draw(st.booleans()):
            return book.apply_binance_event({"stream": "testusdt@depth@0ms", "data": event})
        return book.apply_binance_event(event)


@dataclass
class BinanceStream:
    diffs: list[Diff]
    #: ``states[0]`` is the book before the first diff, ``states[i + 1]`` the book after diff i.
    states: list[ModelBook]

    def after(self, index: int) -> ModelBook:
        """The true book after diff ``index`` (-1: before the first)."""
        return self.states[index + 1]

    def bridging_snapshot(self, draw: Draw, index: int) -> tuple[int, list[Any], list[Any], ModelBook]:
        """A REST snapshot whose ``lastUpdateId`` lies inside diff ``index``'s ``[U, u]``.

        Its contents are the book after diff ``index - 1`` or after diff ``index``: applying
        diff ``index`` (absolute sizes) on top gives the same book either way. At ``u`` itself
        the snapshot holds all of diff ``index``.
        """
        diff = self.diffs[index]
        last_update_id = draw(st.integers(diff.first, diff.last))
        held = index if last_update_id == diff.last else draw(st.sampled_from([index - 1, index]))
        state = self.after(held)
        bids = [[decimal_text(price), repr(size)] for price, size in state.levels(True)]
        asks = [[decimal_text(price), repr(size)] for price, size in state.levels(False)]
        return last_update_id, bids, asks, state


@st.composite
def binance_streams(draw: st.DrawFn, grid: Grid) -> BinanceStream:
    count = draw(st.integers(6, 18))
    previous = draw(st.integers(1, 10**13))
    model = ModelBook(grid.tick)
    model.replace(*message(draw, grid, 12))
    states = [model.copy()]
    diffs: list[Diff] = []
    for index in range(count):
        # USD-M ids are not contiguous across events; only pu links an event to the previous.
        first = previous + 1 + draw(st.integers(0, 3))
        last = first + draw(st.integers(0, 5))
        bids, asks = message(draw, grid, 5)
        time_ns = (1_700_000_000_000 + index) * 1_000_000
        diffs.append(Diff(first, last, previous, bids, asks, time_ns))
        model.apply(bids, asks)
        states.append(model.copy())
        previous = last
    return BinanceStream(diffs=diffs, states=states)


@STREAM_PROPERTY
@given(data=st.data(), grid=grids(), strict=st.booleans())
def test_binance_bridging_gap_and_resync(data: st.DataObject, grid: Grid, strict: bool) -> None:
    stream = data.draw(binance_streams(grid), label="stream")
    diffs = stream.diffs
    count = len(diffs)
    book = OrderBook("TESTUSDT", grid.tick, sequencing="binance", strict=strict)
    assert book.status == BookStatus.AWAITING_SNAPSHOT

    # Diffs that arrive before the REST snapshot are buffered, not applied.
    buffered = data.draw(st.integers(1, count - 3), label="diffs before the snapshot")
    for index in range(buffered):
        assert diffs[index].send(book, data.draw) == UpdateOutcome.BUFFERED
        assert book.buffered_count == index + 1
        assert book.bids() == [] and book.asks() == []
    assert book.status == BookStatus.AWAITING_SNAPSHOT
    assert book.update_count == 0

    # The snapshot's lastUpdateId lies inside diff `bridge`'s [U, u]; older diffs are stale.
    bridge = data.draw(st.integers(0, count - 3), label="bridging diff")
    last_update_id, snap_bids, snap_asks, snap_state = stream.bridging_snapshot(data.draw, bridge)
    applied = book.apply_snapshot(snap_bids, snap_asks, last_update_id=last_update_id)
    assert applied.status == BookStatus.LIVE
    assert applied.dropped == min(buffered, bridge)
    assert applied.replayed == max(0, buffered - bridge)
    assert book.buffered_count == 0
    if buffered > bridge:
        assert_book_matches(book, stream.after(buffered - 1))
        assert book.last_update_id == diffs[buffered - 1].last
        assert book.exchange_time_ns == diffs[buffered - 1].time_ns
    else:
        assert_book_matches(book, snap_state)
        assert book.last_update_id == last_update_id

    # Live diffs until one is lost. (Losing the bridging diff loses nothing when the snapshot
    # holds all of it, lastUpdateId = its u: the next diff's pu links to the snapshot.)
    lost = data.draw(st.integers(max(buffered, bridge), count - 3), label="lost diff")
    assume(not (lost == bridge and last_update_id == diffs[bridge].last))
    for index in range(buffered, lost):
        expected = UpdateOutcome.STALE if index < bridge else UpdateOutcome.APPLIED
        assert diffs[index].send(book, data.draw) == expected
        if expected == UpdateOutcome.APPLIED:
            assert book.last_update_id == diffs[index].last
            assert book.exchange_time_ns == diffs[index].time_ns
            assert_book_matches(book, stream.after(index))
    before_gap = snapshot_of(book)

    # The diff after the lost one is a gap: not applied, and the book needs a resync.
    if strict:
        with pytest.raises(SequenceGapError):
            diffs[lost + 1].send(book, data.draw)
    else:
        assert diffs[lost + 1].send(book, data.draw) == UpdateOutcome.GAP
    assert book.status == BookStatus.NEEDS_RESYNC
    assert not book.is_live
    assert book.last_gap
    for key in ("bids", "asks", "update_count", "last_update_id", "exchange_time_ns"):
        assert snapshot_of(book)[key] == before_gap[key], key

    # Nothing that comes after the gap is applied until a new snapshot.
    resume = data.draw(st.integers(lost + 1, count - 1), label="last diff before the resync")
    for index in range(lost + 2, resume + 1):
        assert diffs[index].send(book, data.draw) == UpdateOutcome.BUFFERED
        assert book.status == BookStatus.NEEDS_RESYNC
    for key in ("bids", "asks", "update_count", "last_update_id", "exchange_time_ns"):
        assert snapshot_of(book)[key] == before_gap[key], key
    assert book.buffered_count == resume - lost

    # A new snapshot inside a later diff's range resyncs; the buffered diffs are bridged to it.
    bridge2 = data.draw(st.integers(lost + 1, count - 1), label="bridging diff after the gap")
    last_update_id, snap_bids, snap_asks, snap_state = stream.bridging_snapshot(data.draw, bridge2)
    applied = book.apply_snapshot(snap_bids, snap_asks, last_update_id=last_update_id)
    assert applied.status == BookStatus.LIVE
    assert book.status == BookStatus.LIVE
    assert applied.dropped == min(resume, bridge2 - 1) - lost
    assert applied.replayed == max(0, resume - bridge2 + 1)
    assert book.buffered_count == 0
    assert_book_matches(book, stream.after(resume) if resume >= bridge2 else snap_state)
    for index in range(resume + 1, count):
        expected = UpdateOutcome.STALE if index < bridge2 else UpdateOutcome.APPLIED
        assert diffs[index].send(book, data.draw) == expected
        if expected == UpdateOutcome.APPLIED:
            assert_book_matches(book, stream.after(index))
    assert_book_matches(book, stream.after(count - 1))
    assert book.last_update_id == diffs[-1].last
    assert book.exchange_time_ns == diffs[-1].time_ns


def test_binance_snapshot_older_than_the_buffer_needs_another_snapshot() -> None:
    book = OrderBook("BTCUSDT", "0.1", sequencing="binance")
    assert book.apply_binance_diff(10, 12, 9, [["100.0", "1"]], []) == UpdateOutcome.BUFFERED
    assert book.apply_binance_diff(13, 15, 12, [["100.1", "2"]], []) == UpdateOutcome.BUFFERED
    # lastUpdateId 5 < U=10 of the oldest buffered diff: the buffer cannot bridge it.
    applied = book.apply_snapshot([["99.0", "5"]], [["101.0", "5"]], last_update_id=5)
    assert applied.status == BookStatus.NEEDS_RESYNC
    assert applied.replayed == 0
    assert book.status == BookStatus.NEEDS_RESYNC
    assert book.buffered_count == 2
    assert "lastUpdateId=5" in (book.last_gap or "")
    # A newer snapshot bridges the kept diffs.
    applied = book.apply_snapshot([["99.0", "6"]], [["101.0", "5"]], last_update_id=11)
    assert (applied.replayed, applied.dropped, applied.status) == (2, 0, BookStatus.LIVE)
    assert book.bids() == [(100.1, 2.0), (100.0, 1.0), (99.0, 6.0)]
    assert book.last_update_id == 15


def test_binance_first_diff_right_after_the_snapshot_is_applied_and_one_past_it_is_a_gap() -> None:
    """A snapshot taken between two diffs: its lastUpdateId is the last diff's u, and the next
    diff starts after it (U = lastUpdateId + 1, pu = lastUpdateId). The venue's literal rule
    (U <= lastUpdateId <= u) fails, yet nothing is missing: pu links it. A diff whose pu is
    not the snapshot's id is a gap."""
    book = OrderBook("BTCUSDT", "0.1", sequencing="binance")
    assert book.apply_binance_diff(438, 439, 437, [["100.0", "1"]], []) == UpdateOutcome.BUFFERED
    applied = book.apply_snapshot([["100.0", "1"]], [["101.0", "5"]], last_update_id=440)
    assert (applied.status, applied.dropped, applied.replayed) == (BookStatus.LIVE, 1, 0)
    assert book.apply_binance_diff(441, 441, 440, [["100.1", "2"]], []) == UpdateOutcome.APPLIED
    assert book.bids() == [(100.1, 2.0), (100.0, 1.0)]
    assert book.last_update_id == 441

    missed = OrderBook("BTCUSDT", "0.1", sequencing="binance")
    missed.apply_snapshot([["100.0", "1"]], [["101.0", "5"]], last_update_id=440)
    # The diff 441 never came: this one follows it, not the snapshot.
    assert missed.apply_binance_diff(442, 442, 441, [["100.1", "2"]], []) == UpdateOutcome.GAP
    assert missed.status == BookStatus.NEEDS_RESYNC
    assert "lastUpdateId=440 starts at U=442 with pu=441" in (missed.last_gap or "")
    assert missed.bids() == [(100.0, 1.0)]


def test_binance_hole_in_the_buffer_before_the_snapshot() -> None:
    """A diff lost while waiting for the REST snapshot: the replay stops at the hole, the book
    needs another snapshot, and the diffs after the hole are kept for it."""
    book = OrderBook("BTCUSDT", "0.1", sequencing="binance")
    assert book.apply_binance_diff(10, 12, 9, [["100.0", "1"]], []) == UpdateOutcome.BUFFERED
    assert book.apply_binance_diff(13, 15, 12, [["100.1", "1"]], []) == UpdateOutcome.BUFFERED
    # U=16..u=18 is lost.
    assert book.apply_binance_diff(19, 20, 18, [["100.2", "1"]], []) == UpdateOutcome.BUFFERED
    assert book.apply_binance_diff(21, 22, 20, [["100.3", "1"]], []) == UpdateOutcome.BUFFERED
    applied = book.apply_snapshot([["99.0", "1"]], [], last_update_id=11)
    assert (applied.replayed, applied.status) == (2, BookStatus.NEEDS_RESYNC)
    assert book.status == BookStatus.NEEDS_RESYNC
    assert book.buffered_count == 2
    assert "pu=18" in (book.last_gap or "")
    assert book.last_update_id == 15
    assert book.apply_binance_diff(23, 24, 22, [["100.4", "1"]], []) == UpdateOutcome.BUFFERED
    applied = book.apply_snapshot([["98.0", "1"]], [], last_update_id=21)
    assert (applied.replayed, applied.dropped, applied.status) == (2, 1, BookStatus.LIVE)
    assert book.bids() == [(100.4, 1.0), (100.3, 1.0), (98.0, 1.0)]
    assert book.last_update_id == 24


def test_binance_invalidate_and_wrong_messages() -> None:
    book = OrderBook("BTCUSDT", "0.1", sequencing="binance")
    with pytest.raises(MalformedMessageError):
        book.apply_snapshot([], [])  # a sequenced snapshot needs its update id
    with pytest.raises(MalformedMessageError):
        book.apply_bybit(True, 1, [], [])
    with pytest.raises(MalformedMessageError):
        book.apply_binance_event({"e": "depthUpdate", "U": 1, "u": 2, "b": [], "a": []})
    with pytest.raises(MalformedMessageError):
        book.apply_binance_event({"U": -1, "u": 2, "pu": 0, "b": [], "a": []})
    with pytest.raises(MalformedMessageError):
        book.apply_binance_snapshot({"bids": [], "asks": []})
    applied = book.apply_binance_snapshot({"lastUpdateId": 10, "E": 7, "bids": [["1.0", "1"]], "asks": []})
    assert applied.status == BookStatus.LIVE
    assert book.exchange_time_ns == 7_000_000
    assert book.apply_binance_diff(9, 11, 8, [["1.1", "1"]], []) == UpdateOutcome.APPLIED
    book.invalidate("reconnected")
    assert book.status == BookStatus.NEEDS_RESYNC
    assert book.last_gap == "reconnected"
    assert book.apply_binance_diff(12, 13, 11, [["1.2", "1"]], []) == UpdateOutcome.BUFFERED
    assert book.bids() == [(1.1, 1.0), (1.0, 1.0)]
    # Unsequenced books have nothing to resync.
    plain = OrderBook("BTCUSDT", "0.1")
    plain.invalidate("ignored")
    assert plain.status == BookStatus.LIVE
    with pytest.raises(MalformedMessageError):
        plain.apply_binance_diff(1, 2, 0, [], [])


# ---- Bybit sequencing -------------------------------------------------------------------------


@STREAM_PROPERTY
@given(data=st.data(), grid=grids(), strict=st.booleans())
def test_bybit_deltas_gap_and_resnapshot(data: st.DataObject, grid: Grid, strict: bool) -> None:
    count = data.draw(st.integers(4, 14), label="deltas")
    first_u = data.draw(st.integers(2, 10**9), label="snapshot u")
    snapshot = message(data.draw, grid, 15)
    deltas = [message(data.draw, grid, 6) for _ in range(count)]
    true_states = []
    model = ModelBook(grid.tick)
    model.replace(*snapshot)
    true_states.append(model.copy())
    for bids, asks in deltas:
        model.apply(bids, asks)
        true_states.append(model.copy())

    book = OrderBook("TESTUSDT", grid.tick, sequencing="bybit", strict=strict)

    def send(is_snapshot: bool, u: int, bids: list[Level], asks: list[Level]) -> UpdateOutcome:
        if data.draw(st.booleans()):
            return book.apply_bybit(is_snapshot, u, wire(bids, data.draw), wire(asks, data.draw))
        return book.apply_bybit_message(
            {
                "topic": "orderbook.50.TESTUSDT",
                "type": "snapshot" if is_snapshot else "delta",
                "ts": 1_700_000_000_000 + u,
                "data": {"s": "TESTUSDT", "b": wire(bids, data.draw), "a": wire(asks, data.draw), "u": u},
            }
        )

    # A delta before any snapshot is dropped.
    assert send(False, first_u + 1, *deltas[0]) == UpdateOutcome.DROPPED
    assert book.status == BookStatus.AWAITING_SNAPSHOT
    assert send(True, first_u, *snapshot) == UpdateOutcome.APPLIED
    assert book.last_update_id == first_u
    assert_book_matches(book, true_states[0])

    lost = data.draw(st.integers(1, count - 2), label="lost delta")  # 1-based delta number
    for number in range(1, lost):
        assert send(False, first_u + number, *deltas[number - 1]) == UpdateOutcome.APPLIED
        assert book.last_update_id == first_u + number
        assert_book_matches(book, true_states[number])
        if data.draw(st.booleans()):
            # A repeated older delta is stale and changes nothing.
            old = data.draw(st.integers(1, number))
            assert send(False, first_u + old, *deltas[old - 1]) == UpdateOutcome.STALE
            assert_book_matches(book, true_states[number])
    before_gap = snapshot_of(book)

    if strict:
        with pytest.raises(SequenceGapError):
            send(False, first_u + lost + 1, *deltas[lost])
    else:
        assert send(False, first_u + lost + 1, *deltas[lost]) == UpdateOutcome.GAP
    assert book.status == BookStatus.NEEDS_RESYNC
    assert book.last_gap
    resnapshot_at = data.draw(st.integers(lost + 1, count), label="resnapshot after delta")
    for number in range(lost + 2, resnapshot_at + 1):
        assert send(False, first_u + number, *deltas[number - 1]) == UpdateOutcome.DROPPED
    after = snapshot_of(book)
    assert after["bids"] == before_gap["bids"] and after["asks"] == before_gap["asks"]
    assert after["update_count"] == before_gap["update_count"]
    assert after["last_update_id"] == before_gap["last_update_id"]

    # The venue's next snapshot replaces the book; deltas continue from it.
    state = true_states[resnapshot_at]
    resnapshot = (
        [Level(p, s, decimal_text(p), repr(s)) for p, s in state.levels(True)],
        [Level(p, s, decimal_text(p), repr(s)) for p, s in state.levels(False)],
    )
    assert send(True, first_u + resnapshot_at, *resnapshot) == UpdateOutcome.APPLIED
    assert book.status == BookStatus.LIVE
    assert_book_matches(book, state)
    for number in range(resnapshot_at + 1, count + 1):
        assert send(False, first_u + number, *deltas[number - 1]) == UpdateOutcome.APPLIED
        assert_book_matches(book, true_states[number])
    assert book.last_update_id == first_u + count
    assert_book_matches(book, true_states[-1])


def test_bybit_restart_with_u_1_replaces_the_book() -> None:
    book = OrderBook("XRPUSDT", "0.0001", sequencing="bybit")
    assert book.apply_bybit(True, 500, [["1.9531", "100"]], [["1.9535", "50"]]) == UpdateOutcome.APPLIED
    assert book.apply_bybit(False, 501, [["1.9530", "7"]], []) == UpdateOutcome.APPLIED
    # u == 1 means the venue restarted: the message replaces the book even as a delta.
    assert book.apply_bybit(False, 1, [["1.9000", "3"]], [["1.9100", "4"]]) == UpdateOutcome.APPLIED
    assert book.bids() == [(1.9, 3.0)]
    assert book.asks() == [(1.91, 4.0)]
    assert book.last_update_id == 1
    assert book.apply_bybit(False, 2, [["1.9001", "1"]], []) == UpdateOutcome.APPLIED
    with pytest.raises(MalformedMessageError):
        book.apply_bybit_message({"type": "update", "data": {"u": 3, "b": [], "a": []}})
    with pytest.raises(MalformedMessageError):
        book.apply_bybit_message({"type": "delta", "data": {"b": [], "a": []}})
    with pytest.raises(MalformedMessageError):
        book.apply_binance_diff(1, 2, 0, [], [])


# ---- the batch path ---------------------------------------------------------------------------


@functools.cache
def batch_updates(grid: Grid) -> st.SearchStrategy[list[tuple[bool, Level]]]:
    """Up to 60 single-level updates, ``(is_bid, level)``."""
    bid = levels(grid, True).map(lambda level: (True, level))
    ask = levels(grid, False).map(lambda level: (False, level))
    return st.lists(bid | ask, max_size=60)


def ticks_of(grid: Grid, price: Fraction) -> int:
    ticks = price / Fraction(grid.tick)
    assert ticks.denominator == 1
    return int(ticks)


@PROPERTY
@given(data=st.data(), grid=grids(), watch_depths=watch_depth_lists)
def test_batch_equals_per_update_set_level_and_watch(data: st.DataObject, grid: Grid, watch_depths: list[int]) -> None:
    start_bids, start_asks = message(data.draw, grid, 10)
    books = [OrderBook("TESTUSDT", grid.tick, watch_depths=watch_depths) for _ in range(3)]
    for book in books:
        book.apply_levels([level.pair() for level in start_bids], [level.pair() for level in start_asks])
    model = ModelBook(grid.tick)
    model.apply(start_bids, start_asks)
    updates = data.draw(batch_updates(grid), label="updates")
    width = 2 + 2 * len(set(watch_depths))

    one_by_one, by_price, by_ticks = books
    expected_rows = []
    for is_bid, level in updates:
        row = one_by_one.set_level_and_watch(is_bid, float(level.price), level.size)
        model.set_level(is_bid, level.price, level.size)
        assert same_tuple(row, model.watch(watch_depths))
        expected_rows.append(row)
    expected = np.array(expected_rows, dtype=np.float64).reshape(len(updates), width)

    bid_flags = np.array([side for side, _ in updates], dtype=bool)
    sizes_ = np.array([level.size for _, level in updates], dtype=np.float64)
    prices = np.array([float(level.price) for _, level in updates], dtype=np.float64)
    ticks = np.array([ticks_of(grid, level.price) for _, level in updates], dtype=np.int64)

    out = by_price.apply_levels_batch(bid_flags, prices, sizes_)
    assert out.shape == (len(updates), width)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, expected)
    out = by_ticks.apply_levels_batch(bid_flags, ticks, sizes_)
    np.testing.assert_array_equal(out, expected)

    for book in books:
        assert_book_matches(book, model)
        assert book.update_count == one_by_one.update_count


BATCH_INVALID = [
    ("price", math.nan, InvalidPriceError),
    ("price", math.inf, InvalidPriceError),
    ("price", -100.0, InvalidPriceError),
    ("price", 0.0, InvalidPriceError),
    ("price", "off-tick", OffTickError),
    ("ticks", 0, InvalidPriceError),
    ("ticks", -5, InvalidPriceError),
    ("size", math.nan, InvalidSizeError),
    ("size", math.inf, InvalidSizeError),
    ("size", -0.5, InvalidSizeError),
]


@PROPERTY
@given(data=st.data(), grid=grids(), bad=st.sampled_from(BATCH_INVALID))
def test_batch_with_an_invalid_entry_applies_nothing(
    data: st.DataObject, grid: Grid, bad: tuple[str, Any, type[Exception]]
) -> None:
    what, value, error = bad
    book = OrderBook("TESTUSDT", grid.tick)
    start_bids, start_asks = message(data.draw, grid, 10)
    book.apply_levels([level.pair() for level in start_bids], [level.pair() for level in start_asks])
    updates = data.draw(batch_updates(grid), label="updates")
    is_bid = [side for side, _ in updates]
    sizes_ = [level.size for _, level in updates]
    prices: list[Any] = [float(level.price) for _, level in updates]
    ticks = [ticks_of(grid, level.price) for _, level in updates]
    position = data.draw(st.integers(0, len(updates)), label="position")
    is_bid.insert(position, data.draw(st.booleans()))
    reference = data.draw(levels(grid, is_bid[position], allow_zero=False))
    sizes_.insert(position, reference.size)
    prices.insert(position, float(reference.price))
    ticks.insert(position, ticks_of(grid, reference.price))
    use_ticks = what == "ticks" or (what == "size" and data.draw(st.booleans()))
    if what == "price":
        prices[position] = float(reference.price + Fraction(grid.tick) / 2) if value == "off-tick" else value
    elif what == "ticks":
        ticks[position] = value
    else:
        sizes_[position] = value

    before = snapshot_of(book)
    with pytest.raises(MarketMakerError) as raised:
        book.apply_levels_batch(
            np.array(is_bid, dtype=bool),
            np.array(ticks, dtype=np.int64) if use_ticks else np.array(prices, dtype=np.float64),
            np.array(sizes_, dtype=np.float64),
        )
    assert type(raised.value) is error
    assert snapshot_of(book) == before


def test_batch_shape_errors_apply_nothing() -> None:
    book = OrderBook("BTCUSDT", "0.1", watch_depths=[5])
    book.apply_levels([["100.0", "1"]], [["100.1", "1"]])
    before = snapshot_of(book)
    with pytest.raises(ValueError, match="same length"):
        book.apply_levels_batch(np.array([True, False]), np.array([100.0, 100.1]), np.array([1.0]))
    with pytest.raises(TypeError):
        book.apply_levels_batch(
            np.array([True]),
            np.array([100.0], dtype=np.float32),
            np.array([1.0]),  # type: ignore[arg-type]
        )
    assert snapshot_of(book) == before
    empty = book.apply_levels_batch(
        np.array([], dtype=bool), np.array([], dtype=np.float64), np.array([], dtype=np.float64)
    )
    assert empty.shape == (0, 4)
    assert snapshot_of(book) == before


def test_batch_takes_strided_arrays() -> None:
    """Columns of a 2-d array (or any other strided view) are 1-d arrays like any other."""
    rows = np.array([[1.0, 100.0, 1.0], [0.0, 100.2, 2.0], [1.0, 100.1, 3.0]])
    expected = OrderBook("BTCUSDT", "0.1", watch_depths=[5])
    expected_out = expected.apply_levels_batch(
        rows[:, 0].astype(bool), np.ascontiguousarray(rows[:, 1]), np.ascontiguousarray(rows[:, 2])
    )
    book = OrderBook("BTCUSDT", "0.1", watch_depths=[5])
    out = book.apply_levels_batch(rows[:, 0].astype(bool), rows[:, 1], rows[:, 2])
    np.testing.assert_array_equal(out, expected_out)
    assert book.bids() == expected.bids() == [(100.1, 3.0), (100.0, 1.0)]


def test_reads_reject_bad_arguments() -> None:
    book = OrderBook("BTCUSDT", "0.1")
    book.apply_levels([["100.0", "1"]], [["100.1", "1"]])
    for bps in (-1.0, math.nan, math.inf):
        with pytest.raises(ValueError):
            book.size_within_bps(Side.BUY, bps)
    with pytest.raises(TypeError):
        book.top_size("middle", 1)
    with pytest.raises(ValueError):
        OrderBook("BTCUSDT", "0.1", watch_depths=[0])
    with pytest.raises(ValueError):
        OrderBook("BTCUSDT", "0.1", sequencing="okx")
    assert "BTCUSDT" in repr(book) and "0.1" in repr(book)
