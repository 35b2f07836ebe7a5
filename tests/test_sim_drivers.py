"""The venue's market drivers: a replayed recording reproduces the recorded book and queues our
orders behind the recorded liquidity; the synthetic market is seeded, realistic and calibrated."""

from __future__ import annotations

import doctest
import gzip
import json
import math
import statistics
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import marketmaker.sim.drivers
import pytest
from marketmaker.errors import MalformedMessageError
from marketmaker.sim import BookDelta, Event, Exchange, Instrument, OrderEvent, TradePrint
from marketmaker.sim.drivers import ReplayMarket, SyntheticMarket

D = Decimal


# ----------------------------------------------------------------------------------------------
# Replay: a small hand-built capture


def depth(
    u: int, pu: int, bids: list[list[str]], asks: list[list[str]], time_ms: int, first: int | None = None
) -> dict[str, Any]:
    data = {
        "e": "depthUpdate",
        "E": time_ms,
        "T": time_ms,
        "s": "TESTUSDT",
        "U": first or pu + 1,
        "u": u,
        "pu": pu,
        "b": bids,
        "a": asks,
    }
    return {"stream": "testusdt@depth@0ms", "data": data}


def trade(price: str, qty: str, buyer_is_maker: bool, time_ms: int) -> dict[str, Any]:
    data = {
        "e": "trade",
        "E": time_ms,
        "T": time_ms,
        "s": "TESTUSDT",
        "t": time_ms,
        "p": price,
        "q": qty,
        "X": "MARKET",
        "m": buyer_is_maker,
    }
    return {"stream": "testusdt@trade", "data": data}


def write_capture(path: Path, messages: list[dict[str, Any]]) -> Path:
    with gzip.open(path, "wt") as capture:
        for number, message in enumerate(messages):
            capture.write(f"{1_000_000_000 + number} {json.dumps(message)}\n")
    return path


def test_venue() -> tuple[Exchange, list[Event]]:
    venue = Exchange([Instrument("TESTUSDT", tick_size=D("0.1"), step_size=D("0.001"))])
    venue.add_account("us", D("100000"))
    events: list[Event] = []
    venue.subscribe(events.append)
    return venue, events


test_venue.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


SNAPSHOT = {"lastUpdateId": 100, "E": 10_000, "T": 10_000, "bids": [["100.0", "5.000"]], "asks": [["100.1", "3.000"]]}


def test_replay_queues_us_behind_the_recorded_level_and_fills_us_only_once_the_queue_ahead_is_traded(
    tmp_path: Path,
) -> None:
    """The queue at 100.0, front first (A ahead of us, B behind), by hand:

    ======================  ======================  =========  ===========
    recorded                queue after             published  our fills
    ======================  ======================  =========  ===========
    snapshot+101: 4.0       A4                      4.0
    (we place 1.0)          A4 US1                  5.0
    102: 6.0                A4 US1 B2               7.0
    103: 5.0                A4 US1 B1 (from back)   6.0
    trade 3.0               A1 US1 B1               3.0
    104: 2.0                unchanged (2 = 2)       3.0
    trade 1.5               US0.5 B1                1.5        0.5
    105: 0.5                US0.5 B0.5              1.0
    trade 0.6               B0.5 (B not consumed)   0.5        0.5 FILLED
    (we place 0.3)          B0.5 US0.3              0.8
    trade 0.01 at 99.9      B0.5                    0.5        0.3 FILLED
    ======================  ======================  =========  ===========
    """
    path = write_capture(
        tmp_path / "queue.gz",
        [
            depth(99, 94, [["100.0", "9.000"]], [], 9_990, first=95),  # older than the snapshot: dropped
            depth(101, 99, [["100.0", "4.000"]], [], 9_995, first=99),  # bridges lastUpdateId 100
            SNAPSHOT,
            depth(102, 101, [["100.0", "6.000"]], [], 10_010),
            depth(103, 102, [["100.0", "5.000"]], [], 10_015),
            trade("100.0", "3.000", True, 10_020),
            depth(104, 103, [["100.0", "2.000"]], [], 10_021),
            trade("100.0", "1.500", True, 10_030),
            depth(105, 104, [["100.0", "0.500"]], [], 10_031),
            trade("100.0", "0.600", True, 10_040),
            trade("99.9", "0.010", True, 10_050),
        ],
    )
    venue, events = test_venue()
    replay = ReplayMarket(venue, path, speed=math.inf)
    assert replay.symbol == "TESTUSDT" and replay.last_depth_update_id == 101
    assert venue.best_bid_ask("TESTUSDT") == ((D("100.0"), D("4.000")), (D("100.1"), D("3.000")))

    def bid_at_100() -> Decimal:
        bids = venue.depth("TESTUSDT")[1]
        assert [price for price, _ in bids] == [D("100.0")]
        return bids[0][1]

    def our_fills() -> list[tuple[int, Decimal, Decimal, str]]:
        return [
            (e.order_id, e.last_filled_qty, e.cumulative_filled_qty, e.status)
            for e in events
            if isinstance(e, OrderEvent) and e.execution_type == "TRADE"
        ]

    first = venue.place_order(
        "us",
        "TESTUSDT",
        side="BUY",
        order_type="LIMIT",
        quantity=D("1.000"),
        price=D("100.0"),
        time_in_force="GTX",
        now_ms=1,
    )
    assert bid_at_100() == D("5.000")  # the published book includes us
    expected_published = ["7.000", "6.000", "3.000", "3.000"]
    for published in expected_published:
        replay.apply_next()
        assert bid_at_100() == D(published)
    assert our_fills() == []  # 3.0 traded, all of it ahead of us
    replay.apply_next()  # trade 1.5: the last 1.0 ahead, then 0.5 of ours
    assert our_fills() == [(first.order_id, D("0.500"), D("0.500"), "PARTIALLY_FILLED")]
    prints = [(e.qty, e.maker_order_id == first.order_id) for e in events if isinstance(e, TradePrint)]
    assert prints == [(D("3.000"), False), (D("0.500"), True), (D("1.000"), False)]
    assert bid_at_100() == D("1.500")
    replay.apply_next()  # depth 105
    assert bid_at_100() == D("1.000")
    replay.apply_next()  # trade 0.6: fills the rest of ours, leaves the background behind us
    assert our_fills()[-1] == (first.order_id, D("0.500"), D("1.000"), "FILLED")
    assert bid_at_100() == D("0.500")
    second = venue.place_order(
        "us", "TESTUSDT", side="BUY", order_type="LIMIT", quantity=D("0.300"), price=D("100.0"), now_ms=2
    )
    assert bid_at_100() == D("0.800")
    replay.apply_next()  # a trade at 99.9 went through our price
    assert our_fills()[-1] == (second.order_id, D("0.300"), D("0.300"), "FILLED")
    assert bid_at_100() == D("0.500")
    assert venue.positions("us")[0].size == D("1.300")
    assert all(e.is_maker for e in events if isinstance(e, OrderEvent) and e.execution_type == "TRADE")
    assert replay.finished and replay.apply_next() is None
    assert replay.last_depth_update_id == 105


def test_replay_a_recorded_level_crossing_our_order_fills_it_and_our_takers_take_recorded_liquidity(
    tmp_path: Path,
) -> None:
    path = write_capture(
        tmp_path / "cross.gz",
        [
            depth(101, 99, [], [], 9_995, first=99),
            SNAPSHOT,
            depth(102, 101, [["100.2", "2.000"]], [["100.1", "0"], ["100.3", "1.000"]], 10_010),
        ],
    )
    venue, events = test_venue()
    replay = ReplayMarket(venue, path, speed=math.inf)
    ask = venue.place_order(
        "us", "TESTUSDT", side="SELL", order_type="LIMIT", quantity=D("0.500"), price=D("100.2"), now_ms=1
    )
    taken = venue.place_order(
        "us", "TESTUSDT", side="BUY", order_type="LIMIT", quantity=D("1.000"), price=D("100.1"), now_ms=2
    )
    assert taken.status == "FILLED"  # from the recorded ask at 100.1
    assert venue.depth("TESTUSDT")[2] == [(D("100.1"), D("2.000")), (D("100.2"), D("0.500"))]
    replay.step(0)
    assert venue.query_order("us", "TESTUSDT", order_id=ask.order_id).status == "FILLED"
    assert venue.best_bid_ask("TESTUSDT") == ((D("100.2"), D("2.000")), (D("100.3"), D("1.000")))
    deltas = [e for e in events if isinstance(e, BookDelta)]
    assert [d.update_id for d in deltas] == list(range(1, len(deltas) + 1))


def test_replay_paces_by_recorded_exchange_time_times_speed(tmp_path: Path) -> None:
    path = write_capture(
        tmp_path / "pace.gz",
        [
            depth(101, 99, [], [], 9_995, first=99),
            SNAPSHOT,
            depth(102, 101, [["100.0", "6.000"]], [], 10_100),
            trade("100.1", "0.100", False, 10_400),
            depth(103, 102, [["100.0", "7.000"]], [], 11_000),
        ],
    )
    venue, events = test_venue()
    replay = ReplayMarket(venue, path, speed=2.0, start_ms=5_000)
    assert replay.step(5_049) == 0
    assert replay.step(5_050) == 1 and replay.last_depth_update_id == 102  # 100 ms recorded / 2
    assert replay.step(5_200) == 1  # the trade (400 ms → 200 ms)
    assert [e.price for e in events if isinstance(e, TradePrint)] == [D("100.1")]
    assert not replay.finished
    assert replay.step(5_500) == 1 and replay.finished


@pytest.mark.parametrize(
    ("messages", "problem"),
    [
        ([depth(101, 99, [], [], 9_995, first=99)], "no depth snapshot"),
        ([SNAPSHOT, depth(99, 98, [], [], 10_001, first=98)], "no TESTUSDT depth update bridges"),
        ([SNAPSHOT, depth(105, 104, [], [], 10_001, first=102)], "does not bridge lastUpdateId 100"),
        (
            [SNAPSHOT, depth(101, 99, [], [], 10_001, first=99), depth(103, 102, [], [], 10_002)],
            ":3: gap in the depth stream",
        ),
    ],
)
def test_replay_refuses_a_capture_it_cannot_sequence(
    tmp_path: Path, messages: list[dict[str, Any]], problem: str
) -> None:
    path = write_capture(tmp_path / "bad.gz", messages)
    venue, _ = test_venue()
    with pytest.raises(MalformedMessageError, match=problem):
        ReplayMarket(venue, path)


# ----------------------------------------------------------------------------------------------
# Replay: the real recordings


@pytest.mark.data
@pytest.mark.slow
@pytest.mark.parametrize(
    ("file", "symbol", "tick", "aligned"),
    [("btcusdt_20240808.gz", "BTCUSDT", "0.1", 629), ("ethusdt_20240808.gz", "ETHUSDT", "0.01", 551)],
)
def test_replayed_book_equals_the_recorded_book_ticker_at_every_aligned_point(
    data_file: Callable[[str], Path], file: str, symbol: str, tick: str, aligned: int
) -> None:
    venue = Exchange([Instrument(symbol, tick_size=D(tick), step_size=D("0.001"))])
    replay = ReplayMarket(venue, data_file(f"binance-usdm/{file}"), speed=math.inf)
    tops: dict[int, Any] = {replay.last_depth_update_id: venue.best_bid_ask(symbol)}
    crossed = 0
    while (step := replay.apply_next()) is not None:
        if step.kind == "depthUpdate":
            bid, ask = venue.best_bid_ask(symbol)
            tops[replay.last_depth_update_id] = (bid, ask)
            crossed += bid is not None and ask is not None and bid[0] >= ask[0]
    matched = [ticker for ticker in replay.book_tickers if ticker["u"] in tops]
    mismatched = [
        (t["u"], t["b"], t["B"], t["a"], t["A"], tops[t["u"]])
        for t in matched
        if tops[t["u"]] != ((D(t["b"]), D(t["B"])), (D(t["a"]), D(t["A"])))
    ]
    assert (len(matched), mismatched, crossed) == (aligned, [], 0)


# ----------------------------------------------------------------------------------------------
# Synthetic market

TICK = D("0.1")


def synthetic(seed: int, **options: Any) -> tuple[Exchange, SyntheticMarket, list[Event]]:
    venue = Exchange([Instrument("BTCUSDT", tick_size=TICK, step_size=D("0.001"))])
    events: list[Event] = []
    venue.subscribe(events.append)
    market = SyntheticMarket(venue, "BTCUSDT", seed=seed, initial_price=D("60000"), **options)
    return venue, market, events


def test_same_seed_same_market_whatever_the_step_times_and_another_seed_another() -> None:
    _, coarse, first = synthetic(seed=11)
    for now_ms in range(1_000, 10_001, 1_000):
        coarse.step(now_ms)
    _, fine, second = synthetic(seed=11)
    for now_ms in range(7, 10_001, 7):
        fine.step(now_ms)
    fine.step(10_000)
    assert len(first) > 1_000
    assert first == second
    _, other, third = synthetic(seed=12)
    other.step(10_000)
    assert third != first


def test_synthetic_book_is_never_crossed_two_sided_deep_and_trades() -> None:
    venue, market, events = synthetic(seed=3)
    crossed: list[int] = []

    def check(event: Event) -> None:
        if isinstance(event, BookDelta):
            bid, ask = venue.best_bid_ask("BTCUSDT")
            if bid is not None and ask is not None and bid[0] >= ask[0]:
                crossed.append(event.update_id)

    venue.subscribe(check)
    start = len(events)
    spreads, bid_levels, ask_levels, lags = [], [], [], []
    for second in range(1, 61):
        market.step(second * 1_000)
        _, bids, asks = venue.depth("BTCUSDT", 10_000)
        assert bids and asks
        spreads.append((asks[0][0] - bids[0][0]) / TICK)
        lags.append(abs(float((bids[0][0] + asks[0][0]) / 2) - market.latent_price) / float(TICK))
        bid_levels.append(len(bids))
        ask_levels.append(len(asks))
    window = events[start:]
    changes_per_second = sum(isinstance(e, BookDelta) for e in window) / 60
    trades_per_second = sum(isinstance(e, TradePrint) for e in window) / 60
    assert crossed == []
    assert 50 <= changes_per_second <= 200
    assert trades_per_second >= 5
    assert min(bid_levels) >= 20 and min(ask_levels) >= 20
    assert statistics.median(bid_levels) >= 100 and statistics.median(ask_levels) >= 100
    assert statistics.median(spreads) <= 10
    # the latent price moves ~50 ticks a second; the book follows within about half a second of it
    assert statistics.median(lags) <= 30


@pytest.mark.parametrize("volatility", [0.3, 1.0])
def test_synthetic_mid_realised_volatility_is_near_the_configured_one(volatility: float) -> None:
    """The mid's realised volatility from 1 s log returns over 60 s, without jumps, is within a
    factor 2 of the configured volatility: 59 returns estimate σ with about 9 % standard
    error, and the book's mid lags the latent price by a few ticks, which smooths it a little;
    a factor 2 is far outside both and still catches a wrong unit (per second vs per year)
    or a book that does not follow the price."""
    venue, market, _ = synthetic(seed=5, volatility=volatility, jump_intensity=0.0)
    mids = []
    for second in range(0, 61):
        market.step(second * 1_000)
        bid, ask = venue.best_bid_ask("BTCUSDT")
        assert bid is not None and ask is not None
        mids.append(float((bid[0] + ask[0]) / 2))
    returns = [math.log(b / a) for a, b in zip(mids, mids[1:])]
    realised = statistics.pstdev(returns) * math.sqrt(365 * 24 * 3600)
    assert volatility / 2 <= realised <= volatility * 2


def test_synthetic_jumps_arrive_at_the_configured_intensity() -> None:
    """200 s at 0.5 jumps/s: Poisson with mean 100 and standard deviation 10; 70..130 is ±3 σ."""
    venue, market, _ = synthetic(seed=9, jump_intensity=0.5, jump_size=0.001)
    market.step(200_000)
    assert 70 <= market.jump_count <= 130
    bid, ask = venue.best_bid_ask("BTCUSDT")
    assert bid is not None and ask is not None and bid[0] < ask[0]


def test_a_participant_trades_with_the_synthetic_flow() -> None:
    venue, market, events = synthetic(seed=21)
    venue.add_account("us", D("100000"))
    market.step(1_000)
    bid, _ = venue.best_bid_ask("BTCUSDT")
    assert bid is not None
    ours = venue.place_order(
        "us",
        "BTCUSDT",
        side="BUY",
        order_type="LIMIT",
        quantity=D("0.010"),
        price=bid[0],
        time_in_force="GTX",
        now_ms=1_000,
    )
    market.step(30_000)
    fills = [
        e for e in events if isinstance(e, OrderEvent) and e.order_id == ours.order_id and e.execution_type == "TRADE"
    ]
    assert fills and fills[-1].status == "FILLED" and all(f.is_maker for f in fills)
    assert venue.positions("us")[0].size == D("0.010")


@pytest.mark.parametrize("lag_ticks", [30, -30])
def test_synthetic_market_orders_lean_toward_the_latent_price_when_the_book_lags_it(lag_ticks: int) -> None:
    """With the latent price 30 ticks away and no other flow, the market orders of the next
    second take toward it (a taker that gets the book there also flips the lean, so only the
    first second is looked at)."""
    _, market, events = synthetic(
        seed=13, volatility=0.0, jump_intensity=0.0, limit_rate=1e-9, cancel_rate=1e-9, market_rate=20.0
    )
    market.latent_ticks += lag_ticks  # the price moved; the book has not yet
    start = len(events)
    market.step(1_000)
    takers = {e.taker_order_id: e.taker_side for e in events[start:] if isinstance(e, TradePrint)}
    toward = "BUY" if lag_ticks > 0 else "SELL"
    assert len(takers) >= 10
    assert sum(side == toward for side in takers.values()) >= 0.8 * len(takers)


def test_the_drivers_docstring_examples_run() -> None:
    result = doctest.testmod(marketmaker.sim.drivers, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0 and result.failed == 0


@pytest.mark.parametrize(
    ("option", "problem"),
    [
        ({"limit_rate": 0.0}, "limit_rate out of range: 0.0"),
        ({"volatility": -0.1}, "volatility out of range: -0.1"),
        ({"initial_price": D("0")}, "initial_price must be positive"),
        ({"symbol": "DOGEUSDT"}, "'DOGEUSDT' is not an instrument"),
    ],
)
def test_synthetic_market_refuses_bad_settings_naming_them(option: dict[str, Any], problem: str) -> None:
    venue = Exchange([Instrument("BTCUSDT", tick_size=TICK, step_size=D("0.001"))])
    settings: dict[str, Any] = {"symbol": "BTCUSDT", "seed": 1, "initial_price": D("60000")}
    settings.update(option)
    with pytest.raises(ValueError, match=problem):
        SyntheticMarket(venue, **settings)
