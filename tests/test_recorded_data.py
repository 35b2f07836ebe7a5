"""Playback of real exchange recordings through the core (``../shared/data``, read-only).

Binance USDⓈ-M: the depth stream is bridged onto the inline REST snapshot and the rebuilt
book is checked against the independent ``bookTicker`` stream wherever both describe the same
update id. Bybit v5: snapshot + deltas against a dict model. Trades: the tape's windows
against a plain Python computation over the same trades.
"""

from __future__ import annotations

import gc
import gzip
import io
import json
import math
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from marketmaker import BookStatus, OrderBook, Side, TradeTape, UpdateOutcome
from marketmaker.errors import SequenceGapError

pytestmark = pytest.mark.data

BTCUSDT = "binance-usdm/btcusdt_20240808.gz"
ETHUSDT = "binance-usdm/ethusdt_20240808.gz"
XRPUSDT = "bybit-v5/xrpusdt-ob500.data.zip"


# ---- loading ------------------------------------------------------------------------------------


@dataclass
class BinanceRecording:
    """One Binance capture, parsed: ``(receive time ns, kind, message)`` in file order."""

    messages: list[tuple[int, str, dict[str, Any]]]

    def of_kind(self, kind: str) -> list[dict[str, Any]]:
        return [message for _, found, message in self.messages if found == kind]

    @property
    def snapshot_position(self) -> int:
        return next(i for i, (_, kind, _) in enumerate(self.messages) if kind == "snapshot")


def load_binance(path: Path) -> BinanceRecording:
    messages: list[tuple[int, str, dict[str, Any]]] = []
    # Hundreds of thousands of small dicts: the cyclic GC only slows the parse down.
    gc.disable()
    try:
        with gzip.open(path, "rt", encoding="utf-8") as lines:
            for line in lines:
                stamp, raw = line.split(" ", 1)
                message = json.loads(raw)
                if "lastUpdateId" in message:
                    kind = "snapshot"
                else:
                    kind = message["data"]["e"]
                messages.append((int(stamp), kind, message))
    finally:
        gc.enable()
    return BinanceRecording(messages)


_RECORDINGS: dict[Path, BinanceRecording] = {}


@pytest.fixture(scope="module")
def binance(data_file: Callable[[str], Path]) -> Callable[[str], BinanceRecording]:
    """``binance(BTCUSDT)``: the parsed recording (parsed once per session)."""

    def get(relative: str) -> BinanceRecording:
        path = data_file(relative)
        if path not in _RECORDINGS:
            _RECORDINGS[path] = load_binance(path)
        return _RECORDINGS[path]

    return get


def bybit_messages(data_file: Callable[[str], Path]) -> list[dict[str, Any]]:
    with zipfile.ZipFile(data_file(XRPUSDT)) as archive:
        names = archive.namelist()
        assert len(names) == 1, names
        text = io.TextIOWrapper(archive.open(names[0]), encoding="utf-8")
        return [json.loads(line) for line in text if line.strip()]


def top_of(book: OrderBook) -> tuple[float | None, float, float | None, float]:
    return (book.best_bid, book.best_bid_size, book.best_ask, book.best_ask_size)


# ---- Binance: rebuild against bookTicker ------------------------------------------------------


@dataclass
class Replay:
    """What a replay saw."""

    book: OrderBook
    top_after_update: dict[int, tuple[float | None, float, float | None, float]]
    outcomes: list[UpdateOutcome]


def replay_binance(recording: BinanceRecording, tick: str) -> Replay:
    book = OrderBook("X", tick, sequencing="binance")
    top_after_update: dict[int, tuple[float | None, float, float | None, float]] = {}
    outcomes: list[UpdateOutcome] = []
    buffered = 0
    snapshot_seen = False
    for stamp, kind, message in recording.messages:
        if kind == "snapshot":
            assert book.status == BookStatus.AWAITING_SNAPSHOT
            applied = book.apply_binance_snapshot(message, receive_time_ns=stamp)
            # The diffs received before it were kept and bridged: some were older than the
            # snapshot, the rest were replayed onto it.
            assert applied.status == BookStatus.LIVE
            assert applied.replayed >= 1
            assert applied.replayed + applied.dropped == buffered
            assert book.buffered_count == 0
            snapshot_seen = True
        elif kind == "depthUpdate":
            event = message["data"]
            outcome = book.apply_binance_event(message, receive_time_ns=stamp)
            if not snapshot_seen:
                assert outcome == UpdateOutcome.BUFFERED
                buffered += 1
                continue
            outcomes.append(outcome)
            assert outcome == UpdateOutcome.APPLIED, (event["U"], event["u"], event["pu"], book.last_gap)
            assert book.last_update_id == event["u"]
            assert book.exchange_time_ns == event["E"] * 1_000_000
            assert book.receive_time_ns == stamp
            assert not book.is_crossed, (event["u"], top_of(book))
            top_after_update[event["u"]] = top_of(book)
    assert snapshot_seen
    assert book.status == BookStatus.LIVE
    return Replay(book, top_after_update, outcomes)


@pytest.mark.parametrize(
    ("relative", "tick", "expected_points"),
    [
        # The data README: "629 of 629 such points for BTCUSDT".
        pytest.param(BTCUSDT, "0.1", 629, id="BTCUSDT"),
        pytest.param(ETHUSDT, "0.01", None, id="ETHUSDT"),
    ],
)
def test_rebuilt_book_equals_book_ticker_wherever_update_ids_meet(
    binance: Callable[[str], BinanceRecording], relative: str, tick: str, expected_points: int | None
) -> None:
    recording = binance(relative)
    replay = replay_binance(recording, tick)
    assert len(replay.outcomes) > 6_000
    assert set(replay.outcomes) == {UpdateOutcome.APPLIED}

    points = 0
    mismatches = []
    for ticker in recording.of_kind("bookTicker"):
        data = ticker["data"]
        top = replay.top_after_update.get(data["u"])
        if top is None:
            continue
        points += 1
        expected = (float(data["b"]), float(data["B"]), float(data["a"]), float(data["A"]))
        if top != expected:
            mismatches.append((data["u"], top, expected))
    assert mismatches == []
    if expected_points is not None:
        assert points == expected_points
    assert points > 500

    book = replay.book
    assert book.level_count(Side.BUY) > 1_000 and book.level_count(Side.SELL) > 1_000
    assert book.best_bid is not None and book.best_ask is not None
    assert book.best_bid < book.best_ask


def test_recording_has_the_documented_message_counts(
    binance: Callable[[str], BinanceRecording],
) -> None:
    """Guards the loader: the data README's counts for BTCUSDT."""
    recording = binance(BTCUSDT)
    assert len(recording.of_kind("depthUpdate")) == 6_551
    assert len(recording.of_kind("trade")) == 21_313
    assert len(recording.of_kind("bookTicker")) == 66_089
    assert len(recording.of_kind("snapshot")) == 1
    assert 0 < recording.snapshot_position < 100


def depth_messages_after_snapshot(recording: BinanceRecording) -> tuple[list[Any], list[Any]]:
    """Depth messages (with receive stamps) before and after the inline snapshot."""
    position = recording.snapshot_position
    before = [(s, m) for s, k, m in recording.messages[:position] if k == "depthUpdate"]
    after = [(s, m) for s, k, m in recording.messages[position + 1 :] if k == "depthUpdate"]
    return before, after


def book_levels(book: OrderBook) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    return book.bids(), book.asks()


@pytest.mark.parametrize("strict", [False, True], ids=["outcome", "strict"])
def test_dropped_depth_message_is_a_gap_and_a_snapshot_resyncs(
    binance: Callable[[str], BinanceRecording], strict: bool
) -> None:
    recording = binance(BTCUSDT)
    snapshot = recording.messages[recording.snapshot_position][2]
    before, after = depth_messages_after_snapshot(recording)
    lost = len(after) // 2
    resync_at = lost + 300

    book = OrderBook("BTCUSDT", "0.1", sequencing="binance", strict=strict)
    reference = OrderBook("BTCUSDT", "0.1", sequencing="binance")
    for each in (book, reference):
        for stamp, message in before:
            assert each.apply_binance_event(message, receive_time_ns=stamp) == UpdateOutcome.BUFFERED
        each.apply_binance_snapshot(snapshot)
        for stamp, message in after[:lost]:
            assert each.apply_binance_event(message, receive_time_ns=stamp) == UpdateOutcome.APPLIED
    assert book_levels(book) == book_levels(reference)
    levels_before_gap = book_levels(book)
    update_count = book.update_count
    last_update_id = book.last_update_id

    # Message `lost` never arrives; the next one does not follow it.
    assert reference.apply_binance_event(after[lost][1]) == UpdateOutcome.APPLIED
    stamp, message = after[lost + 1]
    if strict:
        with pytest.raises(SequenceGapError, match="pu="):
            book.apply_binance_event(message, receive_time_ns=stamp)
    else:
        assert book.apply_binance_event(message, receive_time_ns=stamp) == UpdateOutcome.GAP
    assert book.status == BookStatus.NEEDS_RESYNC
    assert str(message["data"]["pu"]) in (book.last_gap or "")
    assert book_levels(book) == levels_before_gap
    assert reference.apply_binance_event(message) == UpdateOutcome.APPLIED

    # Nothing after the gap is applied: the diffs wait for a new snapshot.
    snapshot_point = resync_at - 100
    rest_snapshot: dict[str, Any] = {}
    for index in range(lost + 2, resync_at):
        stamp, message = after[index]
        assert book.apply_binance_event(message, receive_time_ns=stamp) == UpdateOutcome.BUFFERED
        assert reference.apply_binance_event(message) == UpdateOutcome.APPLIED
        if index == snapshot_point - 1:
            rest_snapshot = {
                "lastUpdateId": message["data"]["u"],
                "bids": [[repr(price), repr(size)] for price, size in reference.bids()],
                "asks": [[repr(price), repr(size)] for price, size in reference.asks()],
            }
    assert book.status == BookStatus.NEEDS_RESYNC
    assert book_levels(book) == levels_before_gap
    assert book.update_count == update_count
    assert book.last_update_id == last_update_id
    assert book.buffered_count == resync_at - lost - 1

    # A REST snapshot is older than the stream when it arrives: take it from the reference
    # book as it was 100 messages ago; the buffered diffs after it are bridged on top.
    applied = book.apply_binance_snapshot(rest_snapshot)
    assert applied.status == BookStatus.LIVE
    assert applied.replayed == resync_at - snapshot_point + 1
    assert applied.dropped == snapshot_point - lost - 2
    assert book.status == BookStatus.LIVE
    assert book_levels(book) == book_levels(reference)
    for stamp, message in after[resync_at : resync_at + 500]:
        assert book.apply_binance_event(message, receive_time_ns=stamp) == UpdateOutcome.APPLIED
        reference.apply_binance_event(message)
        assert top_of(book) == top_of(reference)
    assert book_levels(book) == book_levels(reference)


# ---- Bybit v5 -----------------------------------------------------------------------------------


def bybit_model(messages: list[dict[str, Any]]) -> dict[str, dict[Fraction, float]]:
    """The book the messages describe: snapshots replace, deltas set absolute sizes."""
    sides: dict[str, dict[Fraction, float]] = {"b": {}, "a": {}}
    for message in messages:
        apply_bybit_to_model(sides, message)
    return sides


def apply_bybit_to_model(sides: dict[str, dict[Fraction, float]], message: dict[str, Any]) -> None:
    if message["type"] == "snapshot":
        sides["b"].clear()
        sides["a"].clear()
    for key in ("b", "a"):
        for price, size in message["data"][key]:
            if float(size) == 0:
                sides[key].pop(Fraction(price), None)
            else:
                sides[key][Fraction(price)] = float(size)


def model_levels(sides: dict[str, dict[Fraction, float]]) -> tuple[list[Any], list[Any]]:
    bids = [(float(price), size) for price, size in sorted(sides["b"].items(), reverse=True)]
    asks = [(float(price), size) for price, size in sorted(sides["a"].items())]
    return bids, asks


def test_bybit_recording_rebuilds_the_book(data_file: Callable[[str], Path]) -> None:
    messages = bybit_messages(data_file)
    assert len(messages) == 50
    assert [m["type"] for m in messages] == ["snapshot"] + ["delta"] * 49
    first_u = messages[0]["data"]["u"]
    assert [m["data"]["u"] for m in messages] == list(range(first_u, first_u + 50))

    book = OrderBook("XRPUSDT", "0.0001", sequencing="bybit")
    model: dict[str, dict[Fraction, float]] = {"b": {}, "a": {}}
    for index, message in enumerate(messages):
        assert book.apply_bybit_message(message, receive_time_ns=index) == UpdateOutcome.APPLIED
        apply_bybit_to_model(model, message)
        assert book.last_update_id == message["data"]["u"]
        assert book.exchange_time_ns == message["ts"] * 1_000_000
        assert book.receive_time_ns == index
        best_bid, best_ask = max(model["b"]), min(model["a"])
        assert top_of(book) == (float(best_bid), model["b"][best_bid], float(best_ask), model["a"][best_ask])
        assert book.level_count(Side.BUY) == len(model["b"])
        assert book.level_count(Side.SELL) == len(model["a"])
        assert not book.is_crossed
    bids, asks = model_levels(bybit_model(messages))
    assert book.bids() == bids
    assert book.asks() == asks
    assert book.level_count("bid") == len(bids) and book.level_count("ask") == len(asks)
    assert book.status == BookStatus.LIVE


@pytest.mark.parametrize("strict", [False, True], ids=["outcome", "strict"])
def test_bybit_dropped_delta_is_a_gap_then_dropped(data_file: Callable[[str], Path], strict: bool) -> None:
    messages = bybit_messages(data_file)
    lost = 25
    book = OrderBook("XRPUSDT", "0.0001", sequencing="bybit", strict=strict)
    for message in messages[:lost]:
        assert book.apply_bybit_message(message) == UpdateOutcome.APPLIED
    levels_before_gap = book_levels(book)
    if strict:
        with pytest.raises(SequenceGapError):
            book.apply_bybit_message(messages[lost + 1])
    else:
        assert book.apply_bybit_message(messages[lost + 1]) == UpdateOutcome.GAP
    assert book.status == BookStatus.NEEDS_RESYNC
    for message in messages[lost + 2 :]:
        assert book.apply_bybit_message(message) == UpdateOutcome.DROPPED
    assert book_levels(book) == levels_before_gap
    assert book.last_update_id == messages[lost - 1]["data"]["u"]

    # The venue's next snapshot (here: the full book at the last message) resyncs.
    bids, asks = model_levels(bybit_model(messages))
    resnapshot = {
        "topic": messages[0]["topic"],
        "type": "snapshot",
        "ts": messages[-1]["ts"] + 1,
        "data": {
            "s": "XRPUSDT",
            "b": [[repr(p), repr(s)] for p, s in bids],
            "a": [[repr(p), repr(s)] for p, s in asks],
            "u": messages[-1]["data"]["u"] + 1,
        },
    }
    assert book.apply_bybit_message(resnapshot) == UpdateOutcome.APPLIED
    assert book.status == BookStatus.LIVE
    assert book_levels(book) == (bids, asks)
    assert book.apply_bybit_message(messages[-1]) == UpdateOutcome.STALE


# ---- trades ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PlainTrade:
    price: float
    size: float
    buyer_aggressor: bool
    time_ns: int
    trade_id: int


def plain_trades(recording: BinanceRecording) -> list[PlainTrade]:
    trades = []
    for message in recording.of_kind("trade"):
        data = message["data"]
        trades.append(
            PlainTrade(
                price=float(data["p"]),
                size=float(data["q"]),
                buyer_aggressor=not data["m"],
                time_ns=data["T"] * 1_000_000,
                trade_id=data["t"],
            )
        )
    return trades


def assert_window(window: Any, trades: list[PlainTrade]) -> None:
    buy = math.fsum(t.size for t in trades if t.buyer_aggressor)
    sell = math.fsum(t.size for t in trades if not t.buyer_aggressor)
    notional = math.fsum(t.price * t.size for t in trades)
    assert window.count == len(trades)
    assert window.buy_volume == pytest.approx(buy, rel=1e-9, abs=1e-12)
    assert window.sell_volume == pytest.approx(sell, rel=1e-9, abs=1e-12)
    assert window.volume == pytest.approx(buy + sell, rel=1e-9, abs=1e-12)
    assert window.notional == pytest.approx(notional, rel=1e-9, abs=1e-9)
    if trades:
        assert window.vwap == pytest.approx(notional / (buy + sell), rel=1e-9)
        low, high = min(t.price for t in trades), max(t.price for t in trades)
        assert low * (1 - 1e-12) <= window.vwap <= high * (1 + 1e-12)
        assert window.first_time_ns == trades[0].time_ns
        assert window.last_time_ns == trades[-1].time_ns
        assert window.imbalance == pytest.approx((buy - sell) / (buy + sell), abs=1e-9)
    else:
        assert window.vwap is None
        assert window.first_time_ns is None and window.last_time_ns is None
        assert window.imbalance == 0


def in_span(trades: list[PlainTrade], ms: float, now_ns: int | None = None) -> list[PlainTrade]:
    """Trades with exchange time in ``(now - ms, now]``, ``now`` the newest trade's time."""
    now = trades[-1].time_ns if now_ns is None else now_ns
    return [t for t in trades if now - ms * 1_000_000 < t.time_ns <= now]


@pytest.mark.parametrize("relative", [BTCUSDT, ETHUSDT], ids=["BTCUSDT", "ETHUSDT"])
def test_trade_tape_windows_match_a_plain_computation(
    binance: Callable[[str], BinanceRecording], relative: str
) -> None:
    recording = binance(relative)
    trades = plain_trades(recording)
    assert len(trades) > 10_000
    tape = TradeTape(capacity=len(trades))
    for index, message in enumerate(recording.of_kind("trade")):
        tape.push_binance_trade(message)  # the combined-stream envelope
        if index % 2_500 == 0:
            held = trades[: index + 1]
            assert_window(tape.window(ms=1_000), in_span(held, 1_000))
            assert_window(tape.window(trades=50), held[-50:])
    assert len(tape) == len(trades) == tape.total_count

    last = tape.last
    assert last is not None
    assert (last.price, last.size, last.exchange_time_ns, last.trade_id) == (
        trades[-1].price,
        trades[-1].size,
        trades[-1].time_ns,
        trades[-1].trade_id,
    )
    assert last.aggressor == (Side.BUY if trades[-1].buyer_aggressor else Side.SELL)

    for count in (1, 10, 100, 1_000, len(trades), len(trades) + 5):
        assert_window(tape.window(trades=count), trades[-count:])
    for ms in (0, 1, 100, 1_000, 10_000, 60_000, 10**9):
        assert_window(tape.window(ms=ms), in_span(trades, ms))
    middle = trades[len(trades) // 2].time_ns
    for ms in (500, 5_000):
        assert_window(tape.window(ms=ms, now_ns=middle), in_span(trades, ms, middle))

    # A smaller ring keeps only the newest trades.
    ring = TradeTape(capacity=1_000)
    for message in recording.of_kind("trade"):
        ring.push_binance_trade(message["data"])
    assert len(ring) == 1_000 and ring.total_count == len(trades)
    assert [t.trade_id for t in ring.trades()] == [t.trade_id for t in trades[-1_000:]]
    assert_window(ring.window(trades=5_000), trades[-1_000:])
    assert_window(ring.window(ms=10**9), trades[-1_000:])
