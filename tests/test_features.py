"""The feature engine (``marketmaker.FeatureEngine``) against the definitions in
``docs/features.md``.

Three kinds of check:

* hand-built books and trades whose features are worked out by hand in the comments;
* the two recorded Binance captures replayed tick by tick from Python, every feature at every
  message compared with ``features_reference.py`` — an independent, plain Python computation
  written from the document's formulas (dict book, windows re-summed from scratch with
  ``math.fsum``, two-pass sample standard deviation) — and the batch path ``run_levels``
  compared with the per-tick path;
* the prediction's scoring (hit rate, matured predictions only, tick and millisecond horizons)
  and parameter validation.

Tolerance: relative error ≤ 1e-9 where the arithmetic is the same. A quantity that is a
difference of sums (order flow, imbalances, basis, volatility) can be near zero while its terms
are not; it is compared with 1e-9 relative to the sum of the absolute values of its terms
instead (what rounding in any summation order is bounded by), as each check's comment says.
The volatility is compared as its square (the variance is the sum; a square root turns a
rounding residue of 1e-16 into 1e-8), relative to Σr² over the returns of the last two windows
(the engine's rolling sums are re-summed once per window length, so the rounding of returns
that already left the window can linger that long).
"""

from __future__ import annotations

import functools
import math
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import marketmaker
import numpy as np
import pytest
from features_reference import DictBook, TickInput, reference_features
from features_reference import skew as reference_skew
from marketmaker import FeatureEngine, OrderBook, Side, TradeTape
from marketmaker.errors import InvalidParameterError, MarketMakerError
from marketmaker.recordings import binance_feature_stream

REL = 1e-9
approx = functools.partial(pytest.approx, rel=REL, abs=1e-12)

DATA_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data"

DEFAULT_WEIGHTS = {
    "imbalance": 0.25,
    "deep_imbalance": 0.10,
    "trade_imbalance": 0.30,
    "voi": 0.10,
    "deep_ofi": 0.10,
    "prediction": 0.15,
}

SECOND = 1_000_000_000
MS = 1_000_000


def make_book(
    bids: Sequence[tuple[float, float]],
    asks: Sequence[tuple[float, float]],
    tick_size: float = 0.1,
) -> OrderBook:
    """A book holding exactly these levels."""
    book = OrderBook("TEST", tick_size)
    book.apply_levels(bids=[list(level) for level in bids], asks=[list(level) for level in asks])
    return book


def all_finite(features: marketmaker.Features) -> bool:
    return all(math.isfinite(value) for value in features.as_dict().values())


# ---- prices at one tick ------------------------------------------------------------------------


def test_touch_prices_by_hand() -> None:
    # bid 100.0 × 3, 99.9 × 1; ask 100.2 × 5, 100.3 × 2; weighted mid over depths[0] = 2 levels.
    engine = FeatureEngine(depths=[2, 4], tick_window=10)
    book = make_book([(100.0, 3), (99.9, 1)], [(100.2, 5), (100.3, 2)])
    assert engine.update(book, time_ns=1)
    f = engine.features
    # mid = (100.2 + 100.0) / 2
    assert f.mid == approx(100.1)
    # microprice = (a·Vb + b·Va) / (Vb + Va) = (100.2·3 + 100.0·5) / 8 = 800.6 / 8
    assert f.microprice == approx(100.075)
    # B = (100.0·3 + 99.9·1) / 4 = 399.9 / 4 = 99.975;  A = (100.2·5 + 100.3·2) / 7 = 701.6 / 7
    # weighted mid = (B·ΣVa + A·ΣVb) / (ΣVb + ΣVa) = (99.975·7 + (701.6/7)·4) / 11
    assert f.weighted_mid == approx((99.975 * 7 + 701.6 / 7 * 4) / 11)
    assert f.weighted_mid == approx(100.06720779220779)
    # spread = (100.2 − 100.0) / 100.1 × 10⁴ = 19.98001998… bps
    assert f.spread_bps == approx(0.2 / 100.1 * 1e4)
    assert f.spread_bps == approx(19.980019980019980)


def test_weighted_mid_reads_only_the_first_depth() -> None:
    # depths[0] = 1: the weighted mid is then the touch microprice; a deeper level changes nothing.
    engine = FeatureEngine(depths=[1, 2], tick_window=10)
    engine.update(make_book([(100.0, 3), (90.0, 1000)], [(100.2, 5)]), time_ns=1)
    assert engine.features.weighted_mid == approx(100.075)
    assert engine.features.microprice == approx(100.075)


@pytest.mark.parametrize(
    ("level_decay", "expected"),
    [
        # bids 3, 4, 1, 2; asks 5, 2, 6 (three levels only).
        # depth 1: (3 − 5)/8 = −0.25; depth 2: (7 − 7)/14 = 0;
        # depth 4: bids 3+4+1+2 = 10, asks 5+2+6 = 13 (the missing level counts 0): −3/23.
        (0.0, [-0.25, 0.0, -3 / 23]),
        # w_i = exp(−ln2·i) = 1, 1/2, 1/4, 1/8.
        # depth 2: bids 3 + 4/2 = 5, asks 5 + 2/2 = 6: −1/11;
        # depth 4: bids 3 + 2 + 1/4 + 2/8 = 5.5, asks 5 + 1 + 6/4 = 7.5: −2/13.
        (math.log(2), [-0.25, -1 / 11, -2 / 13]),
    ],
    ids=["equal-weights", "decay-ln2"],
)
def test_imbalances_by_hand(level_decay: float, expected: list[float]) -> None:
    engine = FeatureEngine(depths=[1, 2, 4], tick_window=10, level_decay=level_decay)
    book = make_book([(100.0, 3), (99.9, 4), (99.8, 1), (99.7, 2)], [(100.2, 5), (100.3, 2), (100.4, 6)])
    assert engine.update(book, time_ns=1)
    f = engine.features
    assert list(f.imbalances) == [approx(value) for value in expected]
    assert [f.imbalance(depth) for depth in (1, 2, 4)] == list(f.imbalances)
    assert f.as_dict()["imbalance_4"] == f.imbalances[2]


# ---- order flow ----------------------------------------------------------------------------------

# Previous tick: bid 100.0 × 3, ask 100.4 × 5. This tick: bid × 7 and ask × 2 at a moved price.
# OFI e = 1[b' ≥ b]·Vb' − 1[b' ≤ b]·Vb − 1[a' ≤ a]·Va' + 1[a' ≥ a]·Va:
#   bid part: up +7, same 7 − 3 = +4, down −3;  ask part: up +5, same −2 + 5 = +3, down −2.
# VOI δVb − δVa with δVb: up 7, same 7 − 3 = 4, down 0;  δVa: down 2, same 2 − 5 = −3, up 0:
#   bid part: up +7, same +4, down 0;  ask part (−δVa): up 0, same +3, down −2.
BID_MOVES = {"bid-up": (100.1, 7, 7), "bid-same": (100.0, 4, 4), "bid-down": (99.9, -3, 0)}
ASK_MOVES = {"ask-up": (100.5, 5, 0), "ask-same": (100.4, 3, 3), "ask-down": (100.3, -2, -2)}


@pytest.mark.parametrize("ask_move", list(ASK_MOVES))
@pytest.mark.parametrize("bid_move", list(BID_MOVES))
def test_ofi_and_voi_for_each_price_move(bid_move: str, ask_move: str) -> None:
    bid_price, bid_ofi, bid_voi = BID_MOVES[bid_move]
    ask_price, ask_ofi, ask_voi = ASK_MOVES[ask_move]
    engine = FeatureEngine(depths=[1], tick_window=10, ofi_levels=1)
    assert engine.update(make_book([(100.0, 3)], [(100.4, 5)]), time_ns=1)
    assert engine.features.ofi == 0.0 and engine.features.voi == 0.0  # no previous tick
    assert engine.update(make_book([(bid_price, 7)], [(ask_price, 2)]), time_ns=2)
    f = engine.features
    assert f.ofi == approx(bid_ofi + ask_ofi)
    assert f.voi == approx(bid_voi + ask_voi)
    # One level: the multi-level OFI is the touch OFI.
    assert f.deep_ofi == approx(bid_ofi + ask_ofi)
    # Mean touch depth over the window's two ticks: ((3 + 5)/2 + (7 + 2)/2) / 2 = 4.25.
    assert f.ofi_normalized == approx((bid_ofi + ask_ofi) / 4.25)
    assert f.voi_normalized == approx((bid_voi + ask_voi) / 4.25)
    assert f.deep_ofi_normalized == approx((bid_ofi + ask_ofi) / 4.25)


PREVIOUS_BIDS = [(100.0, 3), (99.9, 4), (99.8, 1)]
PREVIOUS_ASKS = [(100.4, 5), (100.5, 2), (100.6, 6)]
# Level 0: bid same 3 → 3: 3 − 3 = 0; ask down 100.4 → 100.3 × 1: −1.            e0 = −1
# Level 1: bid same 4 → 6: +2; ask down 100.5 → 100.4 × 5: −5.                    e1 = −3
# Level 2: bid down 99.8 → 99.7: −1 (the old size); ask same 6 → 6: −6 + 6 = 0.   e2 = −1
NEXT_BIDS = [(100.0, 3), (99.9, 6), (99.7, 2)]
NEXT_ASKS = [(100.3, 1), (100.4, 5), (100.6, 6)]


@pytest.mark.parametrize(
    ("ofi_levels", "next_asks", "deep_ofi", "deep_depths"),
    [
        # Σ e0..e2 = −5; deep depths: (3+4+1 + 5+2+6)/2 = 10.5 and (3+6+2 + 1+5+6)/2 = 11.5.
        (3, NEXT_ASKS, -5.0, (10.5, 11.5)),
        # Two levels: e0 + e1 = −4; depths (3+4 + 5+2)/2 = 7 and (3+6 + 1+5)/2 = 7.5.
        (2, NEXT_ASKS, -4.0, (7.0, 7.5)),
        # Ten levels asked for, three present on every side at both ticks: still −5.
        (10, NEXT_ASKS, -5.0, (10.5, 11.5)),
        # The ask side now has two levels: level 2 is not present on both sides at both ticks,
        # so only e0 + e1 = −4 counts; the depth sums what is there: (3+6+2 + 1+5)/2 = 8.5.
        (3, NEXT_ASKS[:2], -4.0, (10.5, 8.5)),
    ],
    ids=["three-levels", "two-levels", "ten-levels-three-present", "missing-ask-level"],
)
def test_deep_ofi_by_hand(
    ofi_levels: int, next_asks: list[tuple[float, float]], deep_ofi: float, deep_depths: tuple[float, float]
) -> None:
    engine = FeatureEngine(depths=[1], tick_window=10, ofi_levels=ofi_levels)
    engine.update(make_book(PREVIOUS_BIDS, PREVIOUS_ASKS), time_ns=1)
    engine.update(make_book(NEXT_BIDS, next_asks), time_ns=2)
    f = engine.features
    assert f.ofi == approx(-1.0)  # the touch only (e0)
    assert f.deep_ofi == approx(deep_ofi)
    assert f.deep_ofi_normalized == approx(deep_ofi / (sum(deep_depths) / 2))


def test_order_flow_window_expires_after_tick_window_ticks() -> None:
    # Ask fixed at 100.2 × 5, bid fixed at 100.0 with sizes 1, 2, 4, 7, 11: each tick's
    # e = Vb' − Vb (ask part −5 + 5 = 0) = 1, 2, 3, 4, and VOI the same (prices unchanged).
    # Window of 3 ticks: the first tick contributes 0, then the oldest tick drops out:
    # ofi after each tick = 0, 1, 1+2 = 3, (ticks 2..4) 1+2+3 = 6, (ticks 3..5) 2+3+4 = 9.
    engine = FeatureEngine(depths=[1], tick_window=3, ofi_levels=1)
    seen = []
    for tick, bid_size in enumerate([1, 2, 4, 7, 11], start=1):
        assert engine.update(make_book([(100.0, bid_size)], [(100.2, 5)]), time_ns=tick * SECOND)
        f = engine.features
        seen.append((f.ofi, f.voi, f.deep_ofi, f.ready, f.tick_count))
    assert seen == [
        (0.0, 0.0, 0.0, False, 1),
        (1.0, 1.0, 1.0, False, 2),
        (3.0, 3.0, 3.0, True, 3),
        (6.0, 6.0, 6.0, True, 4),
        (9.0, 9.0, 9.0, True, 5),
    ]
    # Touch depth (Vb + 5)/2 at ticks 3..5: 4.5, 6, 8 → mean 18.5/3; ofi_normalized = 9·3/18.5.
    assert f.ofi_normalized == approx(27 / 18.5)
    assert f.voi_normalized == approx(27 / 18.5)
    assert f.deep_ofi_normalized == approx(27 / 18.5)


# ---- trades --------------------------------------------------------------------------------------


def test_trade_flow_by_hand_and_its_window() -> None:
    # The book stays bid 100.0 × 1 / ask 100.2 × 1 (mid 100.1); window of 3 ticks.
    engine = FeatureEngine(depths=[1], tick_window=3)
    book = make_book([(100.0, 1)], [(100.2, 1)])
    tape = TradeTape(100)

    # Tick 1, no trades yet: VWAP is the mid, basis 0, imbalance 0.
    engine.update(book, tape, time_ns=1 * SECOND)
    f = engine.features
    assert (f.trade_count, f.trade_imbalance, f.vwap, f.basis_bps) == (0, 0.0, approx(100.1), 0.0)

    # Tick 2 after a buy 100.1 × 2 and a sell 100.0 × 1: imbalance (2 − 1)/3;
    # VWAP (100.1·2 + 100.0·1)/3 = 300.2/3; basis (300.2/3 − 100.1)/100.1 × 10⁴.
    tape.push(100.1, 2.0, Side.BUY, exchange_time_ns=1 * SECOND + 1)
    tape.push(100.0, 1.0, Side.SELL, exchange_time_ns=1 * SECOND + 2)
    engine.update(book, tape, time_ns=2 * SECOND)
    f = engine.features
    assert f.trade_count == 2
    assert f.trade_imbalance == approx(1 / 3)
    assert f.vwap == approx(300.2 / 3)
    assert f.basis_bps == approx((300.2 / 3 - 100.1) / 100.1 * 1e4)

    # Tick 3 after a sell 99.9 × 3: buys 2, sells 4 → −2/6; VWAP (300.2 + 299.7)/6 = 599.9/6.
    tape.push(99.9, 3.0, Side.SELL, exchange_time_ns=2 * SECOND + 1)
    engine.update(book, tape, time_ns=3 * SECOND)
    f = engine.features
    assert (f.trade_count, f.trade_imbalance, f.vwap) == (3, approx(-1 / 3), approx(599.9 / 6))
    assert f.basis_bps == approx((599.9 / 6 - 100.1) / 100.1 * 1e4)

    # Tick 4, no new trades: the window (ticks 2..4) still holds all three.
    engine.update(book, tape, time_ns=4 * SECOND)
    f = engine.features
    assert (f.trade_count, f.trade_imbalance, f.vwap) == (3, approx(-1 / 3), approx(599.9 / 6))

    # Tick 5: tick 2's trades left the window; only the sell 99.9 × 3 remains.
    engine.update(book, tape, time_ns=5 * SECOND)
    f = engine.features
    assert (f.trade_count, f.trade_imbalance, f.vwap) == (1, -1.0, approx(99.9))
    assert f.basis_bps == approx((99.9 - 100.1) / 100.1 * 1e4)

    # Tick 6: no trades left in the window — back to the neutral values.
    engine.update(book, tape, time_ns=6 * SECOND)
    f = engine.features
    assert (f.trade_count, f.trade_imbalance, f.vwap, f.basis_bps) == (0, 0.0, approx(100.1), 0.0)


def test_trades_are_counted_once_when_the_tape_wraps_around() -> None:
    # A tape holding 4 trades receives 3 new trades before every tick, so it wraps from the
    # second tick on; the window (2 ticks) must hold exactly the last two ticks' 6 trades.
    engine = FeatureEngine(depths=[1], tick_window=2)
    book = make_book([(100.0, 1)], [(100.2, 1)])
    tape = TradeTape(4)
    engine.update(book, tape, time_ns=-5)  # the first tick marks the engine's place on the tape
    per_tick: list[list[tuple[float, float, bool]]] = []
    for tick in range(6):
        trades = [(100.0 + 0.1 * j + tick, 1.0 + j + 10 * tick, j != 1) for j in range(3)]
        for j, (price, size, bought) in enumerate(trades):
            tape.push(price, size, Side.BUY if bought else Side.SELL, exchange_time_ns=tick * 10 + j)
        per_tick.append(trades)
        engine.update(book, tape, time_ns=tick * 10 + 5)
        window = [trade for trades_of_tick in per_tick[-2:] for trade in trades_of_tick]
        buy = sum(size for _, size, bought in window if bought)
        sell = sum(size for _, size, bought in window if not bought)
        f = engine.features
        assert f.trade_count == len(window)
        assert f.trade_imbalance == approx((buy - sell) / (buy + sell))
        assert f.vwap == approx(sum(p * s for p, s, _ in window) / (buy + sell))


def test_reset_does_not_count_trades_that_were_already_on_the_tape() -> None:
    # update() uses "the trades that reached tape since the last call". After reset() (e.g. a
    # book resync) a trade pushed — and counted — before the reset must not re-enter the window.
    engine = FeatureEngine(depths=[1], tick_window=5)
    book = make_book([(100.0, 1)], [(100.2, 1)])
    tape = TradeTape(100)
    engine.update(book, tape, time_ns=0)  # the first tick marks the engine's place on the tape
    tape.push(100.1, 2.0, Side.BUY, exchange_time_ns=1)
    engine.update(book, tape, time_ns=10)
    assert engine.features.trade_count == 1
    engine.reset()
    assert engine.features.tick_count == 0 and engine.features.trade_count == 0
    engine.update(book, tape, time_ns=20)  # no trade reached the tape since the last call
    f = engine.features
    assert (f.trade_count, f.trade_imbalance, f.vwap, f.basis_bps) == (0, 0.0, approx(100.1), 0.0)


# ---- volatility ----------------------------------------------------------------------------------


def mid_book(mid: float) -> OrderBook:
    """Bid mid − 0.1, ask mid + 0.1 (tick 0.1), one unit each."""
    return make_book([(round(mid - 0.1, 1), 1)], [(round(mid + 0.1, 1), 1)])


def test_volatility_and_ewma_by_hand() -> None:
    # Mids 100, 101, 100, 102 at 0, 0.5, 1.5, 2.0 s; half-life 1 s.
    engine = FeatureEngine(depths=[1], tick_window=10, volatility_half_life_s=1.0)
    r1, r2, r3 = math.log(101 / 100), math.log(100 / 101), math.log(102 / 100)

    engine.update(mid_book(100.0), time_ns=0)
    assert (engine.features.volatility, engine.features.volatility_ewma) == (0.0, 0.0)

    engine.update(mid_book(101.0), time_ns=SECOND // 2)
    # One return: the window volatility is 0; the EWMA is seeded with R²/Δt = r1²/0.5.
    v = r1**2 / 0.5
    assert engine.features.volatility == 0.0
    assert engine.features.volatility_ewma == approx(math.sqrt(v))

    engine.update(mid_book(100.0), time_ns=3 * SECOND // 2)
    # Two returns over 1.5 s: sample variance Σ(r − r̄)²/(2 − 1) × 2 / 1.5.
    mean = (r1 + r2) / 2
    assert engine.features.volatility == approx(math.sqrt(((r1 - mean) ** 2 + (r2 - mean) ** 2) / 1 * 2 / 1.5))
    # Δt = 1 s = one half-life: α = 1 − 2^−1 = 0.5.
    v = 0.5 * v + 0.5 * r2**2 / 1.0
    assert engine.features.volatility_ewma == approx(math.sqrt(v))

    engine.update(mid_book(102.0), time_ns=2 * SECOND)
    returns = np.array([r1, r2, r3])
    # n = 3 returns over ΣΔt = 2 s: std(ddof=1) × sqrt(3 / 2).
    assert engine.features.volatility == approx(float(np.std(returns, ddof=1)) * math.sqrt(3 / 2.0))
    alpha = 1 - 2 ** (-0.5 / 1.0)
    v = (1 - alpha) * v + alpha * r3**2 / 0.5
    assert engine.features.volatility_ewma == approx(math.sqrt(v))


def test_ewma_accumulates_the_returns_of_same_time_ticks() -> None:
    # Mids 100, 101, 102, 103 at 0, 1, 1, 2 s; half-life 2 s.
    engine = FeatureEngine(depths=[1], tick_window=10, volatility_half_life_s=2.0)
    for mid, time_ns in [(100.0, 0), (101.0, SECOND)]:
        engine.update(mid_book(mid), time_ns=time_ns)
    seeded = math.log(101 / 100) ** 2 / 1.0
    assert engine.features.volatility_ewma == approx(math.sqrt(seeded))
    # A tick at the same time: no elapsed time, no EWMA update.
    engine.update(mid_book(102.0), time_ns=SECOND)
    assert engine.features.volatility_ewma == approx(math.sqrt(seeded))
    # One second later: R is the return since the last tick with elapsed time (mid 101),
    # R = ln(103/101), Δt = 1 s, α = 1 − 2^(−1/2).
    engine.update(mid_book(103.0), time_ns=2 * SECOND)
    alpha = 1 - 2 ** (-1 / 2)
    expected = (1 - alpha) * seeded + alpha * math.log(103 / 101) ** 2 / 1.0
    assert engine.features.volatility_ewma == approx(math.sqrt(expected))
    # The window volatility: 3 returns (one with Δt = 0) over ΣΔt = 1 + 0 + 1 = 2 s.
    returns = [math.log(101 / 100), math.log(102 / 101), math.log(103 / 102)]
    expected_window = float(np.std(returns, ddof=1)) * math.sqrt(3 / 2.0)
    assert engine.features.volatility == approx(expected_window)


def test_volatility_is_zero_without_elapsed_time() -> None:
    engine = FeatureEngine(depths=[1], tick_window=10)
    for mid in (100.0, 101.0, 99.0, 102.0):
        engine.update(mid_book(mid), time_ns=5 * SECOND)  # every tick at the same time
    assert engine.features.volatility == 0.0
    assert engine.features.volatility_ewma == 0.0
    assert all_finite(engine.features)


def test_volatility_forgets_returns_that_left_the_window() -> None:
    # Moves, then a flat mid for longer than the window: the window's returns are all zero.
    engine = FeatureEngine(depths=[1], tick_window=4)
    mids = [100.0, 100.4, 99.9, 100.5, 100.1] + [100.1] * 8
    for tick, mid in enumerate(mids):
        engine.update(mid_book(mid), time_ns=tick * SECOND // 10)
        if tick == 4:
            moving = engine.features.volatility
    assert moving > 1e-3
    # Exactly 0 by the definition; the engine's rolling sums (re-summed once per window
    # length) may leave rounding residue of the returns that left, so allow 1e-9 of that scale.
    assert 0.0 <= engine.features.volatility <= 1e-9 * moving
    assert engine.features.volatility_ewma > 0.0  # the EWMA still remembers


# ---- neutral values and bookkeeping --------------------------------------------------------------


def test_neutral_values_before_any_tick_and_without_trades() -> None:
    engine = FeatureEngine()
    f = engine.features
    assert not f.ready and f.tick_count == 0
    assert (f.mid, f.microprice, f.weighted_mid, f.spread_bps) == (0.0, 0.0, 0.0, 0.0)
    assert f.hit_rate == 0.5 and f.predictions_scored == 0 and f.skew == 0.0
    assert all_finite(f)

    tape = TradeTape(10)  # empty
    for tick in range(1, 6):
        assert engine.update(make_book([(100.0, 2), (99.9, 1)], [(100.2, 1)]), tape, time_ns=tick * SECOND)
        f = engine.features
        assert f.trade_count == 0 and f.trade_imbalance == 0.0
        assert f.vwap == f.mid and f.basis_bps == 0.0
        assert f.hit_rate == 0.5  # nothing matured: the horizon is 10 ticks
        assert all_finite(f)


def test_one_sided_book_changes_nothing() -> None:
    engine = FeatureEngine(depths=[1, 2], tick_window=10, ofi_levels=1)
    fresh = engine.features.as_dict()
    assert engine.update(OrderBook("TEST", 0.1), time_ns=1) is False
    assert engine.update(make_book([(100.0, 3)], []), time_ns=2) is False
    assert engine.features.as_dict() == fresh

    assert engine.update(make_book([(100.0, 3)], [(100.4, 5)]), time_ns=3)
    before = engine.features.as_dict()
    # One-sided books (and the trades that would come with them) are not a tick.
    assert engine.update(make_book([(100.1, 9)], []), time_ns=4) is False
    assert engine.update(make_book([], [(100.3, 9)]), time_ns=5) is False
    assert engine.features.as_dict() == before
    # The next two-sided tick's order flow is measured from the last two-sided tick:
    # bid same 3 → 4: +1; ask same 5 → 5: 0.
    assert engine.update(make_book([(100.0, 4)], [(100.4, 5)]), time_ns=6)
    assert engine.features.ofi == 1.0 and engine.features.voi == 1.0
    assert engine.features.tick_count == 2


def test_no_feature_is_nan_or_infinite_with_sizes_near_the_float_limit() -> None:
    # docs/features.md: "No feature is ever NaN or infinite." The book accepts these sizes.
    size = 1e308
    book = make_book([(100.0, size), (99.9, size)], [(100.2, size), (100.3, size)])
    engine = FeatureEngine(depths=[1, 2], tick_window=10)
    tape = TradeTape(10)
    tape.push(100.1, size, Side.BUY, exchange_time_ns=1)
    tape.push(100.1, size, Side.SELL, exchange_time_ns=1)
    assert engine.update(book, tape, time_ns=5)
    book.set_level(Side.BUY, 100.1, size)
    assert engine.update(book, tape, time_ns=10)
    not_finite = {k: v for k, v in engine.features.as_dict().items() if not math.isfinite(v)}
    assert not_finite == {}


def test_ready_after_tick_window_ticks() -> None:
    engine = FeatureEngine(depths=[1], tick_window=4)
    states = []
    for tick in range(1, 7):
        engine.update(mid_book(100.0), time_ns=tick)
        states.append((engine.ready, engine.features.ready, engine.tick_count))
    assert states == [(False, False, 1), (False, False, 2), (False, False, 3)] + [(True, True, n) for n in (4, 5, 6)]


def test_features_snapshot_is_frozen_and_named() -> None:
    engine = FeatureEngine(depths=[1, 3], tick_window=5)
    engine.update(make_book([(100.0, 3)], [(100.2, 1)]), time_ns=7)
    snapshot = engine.features
    engine.update(make_book([(100.5, 3)], [(100.7, 1)]), time_ns=8)
    assert snapshot.mid == approx(100.1) and snapshot.time_ns == 7  # not the later tick's
    assert engine.features.mid == approx(100.6) and engine.features.time_ns == 8
    with pytest.raises(AttributeError):
        snapshot.mid = 1.0  # type: ignore[misc]
    with pytest.raises(ValueError, match="depth 2"):
        snapshot.imbalance(2)
    names = set(snapshot.as_dict())
    assert {"imbalance_1", "imbalance_3", "ofi", "skew", "hit_rate", "predictions_scored"} <= names
    # The batch columns are the per-tick names (without the per-tick counters).
    assert set(engine.column_names()) <= names


def test_time_defaults_to_the_books_exchange_time() -> None:
    engine = FeatureEngine(depths=[1], tick_window=5)
    book = OrderBook("TEST", 0.1)
    book.apply_levels(bids=[[100.0, 1]], asks=[[100.2, 1]], exchange_time_ns=123_456_789)
    engine.update(book)
    assert engine.features.time_ns == 123_456_789


# ---- skew ----------------------------------------------------------------------------------------


def skew_of(features: marketmaker.Features, weights: dict[str, float], band: float, scale: float = 1.0) -> float:
    return reference_skew(
        imbalances=features.imbalances,
        trade_imbalance=features.trade_imbalance,
        voi_normalized=features.voi_normalized,
        deep_ofi_normalized=features.deep_ofi_normalized,
        prediction_bps=features.prediction_bps,
        weights=weights,
        band=band,
        prediction_scale_bps=scale,
    )


def test_skew_by_hand() -> None:
    # One tick, bid 100.0 × 9 / ask 100.2 × 1 (depths [1, 2], one level a side): both
    # imbalances (9 − 1)/10 = 0.8; a buy on the tape: trade imbalance 1; no order flow yet
    # (voi = deep_ofi = 0) and no prediction (0).
    # d(s) = sign(s)·max(0, |s| − 0.2)/0.8: d(0.8) = 0.75, d(1) = 1.
    # skew = 0.25·0.75 + 0.10·0.75 + 0.30·1 = 0.5625.
    engine = FeatureEngine(depths=[1, 2], tick_window=10)
    tape = TradeTape(10)
    # A first tick on the same book marks the engine's place on the tape (its trades are not
    # counted); the second tick then sees no order flow (same book) and the new buy.
    engine.update(make_book([(100.0, 9)], [(100.2, 1)]), tape, time_ns=1)
    tape.push(100.2, 1.0, Side.BUY, exchange_time_ns=1)
    engine.update(make_book([(100.0, 9)], [(100.2, 1)]), tape, time_ns=2)
    f = engine.features
    assert (f.imbalances, f.trade_imbalance, f.voi_normalized, f.prediction_bps) == ((0.8, 0.8), 1.0, 0.0, 0.0)
    assert f.skew == approx(0.5625)
    assert engine.skew == f.skew
    # A signal inside the dead band does not count: band 0.85 > 0.8 leaves the trade imbalance,
    # d(1) = 1 → skew 0.30.
    engine.set_skew(dead_band=0.85)
    assert engine.features.skew == approx(0.30)
    # Clipped to [−1, 1]: 5·d(0.8) with band 0 = 4 → 1.
    engine.set_skew(weights={"imbalance": 5.0}, dead_band=0.0)
    assert engine.features.skew == 1.0
    engine.set_skew(weights={"imbalance": -5.0})
    assert engine.features.skew == -1.0


def test_set_skew_is_a_hot_reload_that_keeps_the_windows() -> None:
    engine = FeatureEngine(depths=[1, 2], tick_window=10)
    tape = TradeTape(100)
    rng = random.Random(3)
    for tick in range(30):
        tape.push(100.1, rng.uniform(0.1, 2), Side.BUY if rng.random() < 0.7 else Side.SELL, exchange_time_ns=tick)
        bid = 1000 + rng.randint(-3, 3)
        engine.update(
            make_book([(bid / 10, rng.uniform(1, 9)), ((bid - 1) / 10, 2)], [((bid + 2) / 10, rng.uniform(1, 9))]),
            tape,
            time_ns=tick * 10 * MS,
        )
    before = engine.features.as_dict()
    new_weights = {"imbalance": 0.5, "trade_imbalance": 0.05, "prediction": 0.0}
    engine.set_skew(weights=new_weights, dead_band=0.1)
    assert engine.weights == {**DEFAULT_WEIGHTS, **new_weights}
    assert engine.dead_band == 0.1
    after = engine.features.as_dict()
    # Only the skew changed, recomputed with the new weights from the same signals.
    assert {k: v for k, v in after.items() if k != "skew"} == {k: v for k, v in before.items() if k != "skew"}
    assert engine.features.skew == pytest.approx(skew_of(engine.features, engine.weights, 0.1), abs=1e-12)
    assert engine.features.skew != before["skew"]
    # Later ticks use the new weights.
    engine.update(make_book([(100.0, 5)], [(100.2, 1)]), tape, time_ns=10 * SECOND)
    assert engine.features.tick_count == before["tick_count"] + 1
    assert engine.features.skew == pytest.approx(skew_of(engine.features, engine.weights, 0.1), abs=1e-12)


# ---- the prediction ------------------------------------------------------------------------------


@dataclass
class PredictionRun:
    mids: list[float]
    times_ns: list[int]
    predictions: list[float]
    scored: list[int]
    hit_rates: list[float]


def run_imbalance_driven_stream(engine: FeatureEngine, times_ns: Sequence[int], seed: int = 7) -> PredictionRun:
    """One tick per time: the touch is 9 against 1 on a random side, and the next tick's mid
    moves one tick (0.01) towards the larger side — the next move is sign(imbalance)."""
    rng = random.Random(seed)
    bid_ticks = 10_000
    run = PredictionRun([], [], [], [], [])
    for time_ns in times_ns:
        side = rng.choice([1, -1])
        sizes = (9.0, 1.0) if side > 0 else (1.0, 9.0)
        book = make_book([(bid_ticks / 100, sizes[0])], [((bid_ticks + 2) / 100, sizes[1])], tick_size=0.01)
        assert engine.update(book, time_ns=time_ns)
        f = engine.features
        run.mids.append(f.mid)
        run.times_ns.append(time_ns)
        run.predictions.append(f.prediction_bps)
        run.scored.append(f.predictions_scored)
        run.hit_rates.append(f.hit_rate)
        bid_ticks += side
    return run


def expected_scoring(run: PredictionRun, matures_at: Callable[[int], int | None]) -> tuple[list[int], list[float]]:
    """Predictions scored and hit rate after every tick, from the reported predictions and mids:
    the prediction made at tick k is scored at tick ``matures_at(k)`` against the mid change
    since tick k, if both are non-zero."""
    scored_at = [0] * len(run.mids)
    hit_at = [0] * len(run.mids)
    for k, prediction in enumerate(run.predictions):
        j = matures_at(k)
        if j is None or j >= len(run.mids):
            continue
        realised = (run.mids[j] - run.mids[k]) / run.mids[k] * 1e4
        if realised != 0 and prediction != 0:
            scored_at[j] += 1
            hit_at[j] += (realised > 0) == (prediction > 0)
    scored = list(np.cumsum(scored_at))
    hits = list(np.cumsum(hit_at))
    rates = [h / s if s else 0.5 for h, s in zip(hits, scored)]
    return [int(s) for s in scored], rates


def test_hit_rate_is_high_when_the_imbalance_predicts_the_next_move() -> None:
    engine = FeatureEngine(depths=[1], tick_window=20, horizon_updates=1)
    run = run_imbalance_driven_stream(engine, [tick * 10 * MS for tick in range(1500)])
    scored, rates = expected_scoring(run, lambda k: k + 1)
    assert run.scored == scored
    assert run.hit_rates == [pytest.approx(rate, abs=1e-15) for rate in rates]
    assert run.scored[-1] > 1000  # the model predicts (non-zero) once it has learned
    assert run.hit_rates[-1] > 0.9


def test_only_matured_predictions_are_scored() -> None:
    horizon = 3
    engine = FeatureEngine(depths=[1], tick_window=20, horizon_updates=horizon)
    run = run_imbalance_driven_stream(engine, [tick * 10 * MS for tick in range(600)])
    scored, rates = expected_scoring(run, lambda k: k + horizon)
    assert run.scored == scored
    assert run.hit_rates == [pytest.approx(rate, abs=1e-15) for rate in rates]
    # Never more than the predictions made at least `horizon` ticks ago.
    assert all(count <= max(0, tick + 1 - horizon) for tick, count in enumerate(run.scored))
    assert run.scored[-1] > 400
    assert all(0.0 <= rate <= 1.0 for rate in run.hit_rates)


def test_millisecond_horizon_scores_only_after_it_elapsed() -> None:
    rng = random.Random(11)
    times = [0]
    for _ in range(1199):
        times.append(times[-1] + rng.choice([0, 1, 4, 9]) * MS)
    horizon_ms = 10.0
    engine = FeatureEngine(depths=[1], tick_window=20, horizon_ms=horizon_ms)
    run = run_imbalance_driven_stream(engine, times)

    def matures_at(k: int) -> int | None:
        # The first later tick at least the horizon after the prediction.
        return next((j for j in range(k + 1, len(times)) if times[j] - times[k] >= horizon_ms * MS), None)

    scored, rates = expected_scoring(run, matures_at)
    assert run.scored == scored
    assert run.hit_rates == [pytest.approx(rate, abs=1e-15) for rate in rates]
    assert run.scored[-1] > 500


def test_millisecond_horizon_waits_through_a_burst_of_ticks() -> None:
    # 300 ticks 10 ms apart (the model learns), 30 ticks at one instant 5 ms after the last,
    # then one tick 10 ms after the burst. With horizon_ms = 10 nothing matures during the burst
    # (tick 298's prediction matured at tick 299; tick 299's needs 10 ms), and tick 299's and
    # the burst's 30 predictions all mature at the last tick.
    times = [tick * 10 * MS for tick in range(300)] + [2995 * MS] * 30 + [3005 * MS]
    run = run_imbalance_driven_stream(FeatureEngine(depths=[1], tick_window=20, horizon_ms=10.0), times)
    assert all(p != 0 for p in run.predictions[299:330])
    assert run.scored[300:330] == [run.scored[299]] * 30
    changed = sum(1 for k in range(299, 330) if run.mids[330] != run.mids[k])
    assert run.scored[330] == run.scored[329] + changed
    assert changed > 20
    # A horizon in ticks does not wait: the same burst scores a prediction on (nearly) every tick.
    by_ticks = run_imbalance_driven_stream(FeatureEngine(depths=[1], tick_window=20, horizon_updates=1), times)
    assert by_ticks.scored[329] - by_ticks.scored[299] > 20


def test_millisecond_horizon_matches_the_equivalent_tick_horizon() -> None:
    # Ticks exactly 10 ms apart: a 50 ms horizon is 5 ticks, every output identical.
    times = [tick * 10 * MS for tick in range(400)]
    by_ms = run_imbalance_driven_stream(FeatureEngine(depths=[1], tick_window=20, horizon_ms=50.0), times)
    by_ticks = run_imbalance_driven_stream(FeatureEngine(depths=[1], tick_window=20, horizon_updates=5), times)
    assert by_ms == by_ticks
    assert by_ms.scored[-1] > 300


# ---- parameters ----------------------------------------------------------------------------------

NAN = float("nan")
INVALID_PARAMETERS = [
    (dict(depths=[]), "depths"),
    (dict(depths=[50, 5]), "depths"),
    (dict(depths=[5, 5]), "depths"),
    (dict(depths=[0, 5]), "depths"),
    (dict(depths=[1, 2, 3, 4, 5]), "depths"),
    (dict(tick_window=1), "tick_window"),
    (dict(tick_window=0), "tick_window"),
    (dict(level_decay=-0.1), "level_decay"),
    (dict(level_decay=NAN), "level_decay"),
    (dict(ofi_levels=0), "ofi_levels"),
    (dict(ofi_levels=11), "ofi_levels"),
    (dict(volatility_half_life_s=0.0), "volatility_half_life_s"),
    (dict(volatility_half_life_s=math.inf), "volatility_half_life_s"),
    (dict(horizon_updates=0), "horizon_updates"),
    (dict(horizon_ms=0.0), "horizon_ms"),
    (dict(horizon_ms=NAN), "horizon_ms"),
    (dict(horizon_updates=5, horizon_ms=100.0), "horizon_updates or horizon_ms"),
    (dict(forgetting=0.0), "forgetting"),
    (dict(forgetting=-0.5), "forgetting"),
    (dict(forgetting=1.0 + 1e-9), "forgetting"),
    (dict(forgetting=NAN), "forgetting"),
    (dict(prediction_scale_bps=0.0), "prediction_scale_bps"),
    (dict(dead_band=1.0), "dead_band"),
    (dict(dead_band=-0.01), "dead_band"),
    (dict(dead_band=NAN), "dead_band"),
    (dict(weights={"bogus": 0.1}), 'weights has no signal "bogus"'),
    (dict(weights={"voi": NAN}), "weights.voi"),
    (dict(weights={"prediction": math.inf}), "weights.prediction"),
]


@pytest.mark.parametrize(
    ("kwargs", "named"), INVALID_PARAMETERS, ids=[repr(kwargs) for kwargs, _ in INVALID_PARAMETERS]
)
def test_invalid_parameters_are_rejected(kwargs: dict[str, Any], named: str) -> None:
    with pytest.raises(InvalidParameterError) as raised:
        FeatureEngine(**kwargs)
    assert isinstance(raised.value, MarketMakerError)
    assert named in str(raised.value)


@pytest.mark.parametrize(
    "kwargs",
    [dict(tick_window=-1), dict(depths=[-5]), dict(ofi_levels=-1), dict(horizon_updates=-1)],
    ids=repr,
)
def test_negative_counts_are_rejected_as_invalid_parameters(kwargs: dict[str, Any]) -> None:
    # "tick_window < 2", "depths must be positive"...: a negative count is as invalid as 0 and
    # must raise the package's error naming the parameter (errors.py: every error marketmaker
    # raises derives from MarketMakerError), not a bare conversion error.
    with pytest.raises(InvalidParameterError, match=next(iter(kwargs))):
        FeatureEngine(**kwargs)


def test_boundary_parameters_are_accepted() -> None:
    engine = FeatureEngine(
        depths=[1, 2, 3, 4],
        tick_window=2,
        ofi_levels=10,
        forgetting=1.0,
        dead_band=0.0,
        level_decay=0.0,
        horizon_updates=1,
        weights={"voi": -1.0},
    )
    assert engine.depths == [1, 2, 3, 4] and engine.tick_window == 2 and engine.dead_band == 0.0
    assert engine.weights == {**DEFAULT_WEIGHTS, "voi": -1.0}
    assert FeatureEngine(horizon_ms=0.5).update(mid_book(100.0), time_ns=1)


def test_defaults_are_the_documented_ones() -> None:
    engine = FeatureEngine()
    assert engine.depths == [5, 50] and engine.tick_window == 100
    assert engine.weights == DEFAULT_WEIGHTS and engine.dead_band == 0.2


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        (dict(dead_band=1.0), InvalidParameterError),
        (dict(dead_band=-0.5), InvalidParameterError),
        (dict(dead_band=NAN), InvalidParameterError),
        (dict(weights={"voi": NAN}), InvalidParameterError),
        (dict(weights={"imbalance": 0.9, "bogus": 1.0}), InvalidParameterError),
        (dict(weights={"imbalance": 0.9}, dead_band=2.0), InvalidParameterError),
        (dict(weights={"imbalance": "heavy"}), TypeError),
    ],
    ids=repr,
)
def test_set_skew_with_a_bad_value_changes_nothing(kwargs: dict[str, Any], error: type[Exception]) -> None:
    engine = FeatureEngine(depths=[1, 2], tick_window=10)
    tape = TradeTape(10)
    # A first tick on the same book marks the engine's place on the tape (its trades are not
    # counted); the second tick then sees no order flow (same book) and the new buy.
    engine.update(make_book([(100.0, 9)], [(100.2, 1)]), tape, time_ns=1)
    tape.push(100.2, 1.0, Side.BUY, exchange_time_ns=1)
    engine.update(make_book([(100.0, 9)], [(100.2, 1)]), tape, time_ns=2)
    before = (engine.weights, engine.dead_band, engine.features.as_dict())
    assert before[2]["skew"] != 0.0
    with pytest.raises(error):
        engine.set_skew(**kwargs)
    assert (engine.weights, engine.dead_band, engine.features.as_dict()) == before


# ---- recorded data -------------------------------------------------------------------------------

CAPTURES = [
    pytest.param(("binance-usdm/btcusdt_20240808.gz", "0.1"), id="btcusdt"),
    pytest.param(("binance-usdm/ethusdt_20240808.gz", "0.01"), id="ethusdt"),
]
#: Levels the reference keeps per side per tick (the deepest default depth).
REFERENCE_DEPTH = 50


@dataclass
class CaptureRun:
    """A capture replayed message by message through a book, a tape and a default engine."""

    name: str
    tick_size: str
    stream: Any
    rows: list[dict[str, Any]]  # engine.features.as_dict() after every message
    ticks: list[TickInput]  # the same book states and trades, for the reference


@pytest.fixture(scope="module", params=CAPTURES)
def capture(request: pytest.FixtureRequest) -> CaptureRun:
    relative, tick_size = request.param
    path = DATA_DIR / relative
    if not path.is_file():
        pytest.skip(f"recorded market data not found at {path} (../shared/data is absent in a fresh clone)")
    stream = binance_feature_stream(path, tick_size)
    book = OrderBook("CAPTURE", tick_size)
    book.apply_levels(
        bids=[list(level) for level in stream.snapshot_bids], asks=[list(level) for level in stream.snapshot_asks]
    )
    model = DictBook(float(tick_size))
    for is_bid, levels in ((True, stream.snapshot_bids), (False, stream.snapshot_asks)):
        for price, size in levels:
            model.set_level(is_bid, float(price), float(size))
    tape = TradeTape(100_000)
    engine = FeatureEngine()

    ends = np.flatnonzero(stream.message_ends)
    starts = np.concatenate([[0], ends[:-1] + 1])
    times, is_bid, prices, sizes = (
        stream.times_ns.tolist(),
        stream.is_bid.tolist(),
        stream.prices.tolist(),
        stream.sizes.tolist(),
    )
    trade_times = stream.trade_times_ns.tolist()
    trade_rows = list(zip(stream.trade_prices.tolist(), stream.trade_sizes.tolist(), stream.trade_is_buy.tolist()))
    next_trade = 0
    rows: list[dict[str, Any]] = []
    ticks: list[TickInput] = []
    for start, end in zip(starts.tolist(), ends.tolist()):
        now = times[end]
        bids: list[list[float]] = []
        asks: list[list[float]] = []
        for index in range(start, end + 1):
            (bids if is_bid[index] else asks).append([prices[index], sizes[index]])
            model.set_level(is_bid[index], prices[index], sizes[index])
        book.apply_levels(bids=bids, asks=asks)
        arrived = []
        while next_trade < len(trade_times) and trade_times[next_trade] <= now:
            price, size, bought = trade_rows[next_trade]
            tape.push(price, size, Side.BUY if bought else Side.SELL, exchange_time_ns=trade_times[next_trade])
            arrived.append((price, size, bought))
            next_trade += 1
        assert engine.update(book, tape, time_ns=now), "the recorded book is two-sided throughout"
        rows.append(engine.features.as_dict())
        ticks.append(TickInput(model.top(True, REFERENCE_DEPTH), model.top(False, REFERENCE_DEPTH), now, arrived))
    return CaptureRun(relative, tick_size, stream, rows, ticks)


def snapshot_book(capture: CaptureRun) -> OrderBook:
    """A book holding the capture's snapshot (where its feature stream starts)."""
    book = OrderBook("CAPTURE", capture.tick_size)
    book.apply_levels(
        bids=[list(level) for level in capture.stream.snapshot_bids],
        asks=[list(level) for level in capture.stream.snapshot_asks],
    )
    return book


def run_batch(capture: CaptureRun, engine: FeatureEngine) -> dict[str, np.ndarray]:
    """The whole capture through ``engine.run_levels`` from the snapshot."""
    stream = capture.stream
    return engine.run_levels(
        snapshot_book(capture),
        stream.times_ns,
        stream.is_bid,
        stream.prices,
        stream.sizes,
        message_ends=stream.message_ends,
        trade_times_ns=stream.trade_times_ns,
        trade_prices=stream.trade_prices,
        trade_sizes=stream.trade_sizes,
        trade_is_buy=stream.trade_is_buy,
    )


def compare(name: str, actual: np.ndarray, expected: np.ndarray, scale: np.ndarray | None = None) -> str | None:
    """None when |actual − expected| ≤ 1e-9 × scale everywhere (scale |expected| by default),
    else a description of the worst row."""
    scale = np.abs(expected) if scale is None else scale
    error = np.abs(actual - expected)
    bad = error > REL * scale
    if not bad.any():
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        worst = int(np.argmax(np.where(bad, error / scale, 0.0)))
    return (
        f"{name}: {int(bad.sum())} of {len(actual)} rows off; worst row {worst}: "
        f"engine {actual[worst]!r}, reference {expected[worst]!r}, scale {scale[worst]!r}"
    )


def reference_mismatches(
    columns: dict[str, np.ndarray], ref: dict[str, list[float]], depths: Sequence[int]
) -> list[str]:
    """Every feature the reference computes against the engine's columns, with the tolerances
    explained in the module docstring."""
    r = {name: np.asarray(values, dtype=np.float64) for name, values in ref.items()}
    c = {name: np.asarray(values, dtype=np.float64) for name, values in columns.items()}
    problems = []

    def check(name: str, scale: np.ndarray | None = None) -> None:
        problem = compare(name, c[name], r[name], scale)
        if problem:
            problems.append(problem)

    for name in ("mid", "microprice", "weighted_mid", "spread_bps", "vwap", "volatility_ewma"):
        check(name)
    # Imbalance = (ΣVb − ΣVa)/(ΣVb + ΣVa): the numerator's terms sum (in absolute value) to the
    # denominator, so the scale of a near-zero imbalance is 1. The same for the trade imbalance.
    for depth in depths:
        check(f"imbalance_{depth}", np.maximum(np.abs(r[f"imbalance_{depth}"]), 1.0))
    check("trade_imbalance", np.maximum(np.abs(r["trade_imbalance"]), 1.0))
    # Order flow: sums of signed sizes, compared relative to Σ|terms| over the window.
    touch_mean = r["touch_depth_mean"]
    for name, abs_name in (("ofi", "ofi_abs"), ("deep_ofi", "deep_ofi_abs"), ("voi", "voi_abs")):
        check(name, np.maximum(np.abs(r[name]), r[abs_name]))
    check("ofi_normalized", np.maximum(np.abs(r["ofi_normalized"]), r["ofi_abs"] / touch_mean))
    check("voi_normalized", np.maximum(np.abs(r["voi_normalized"]), r["voi_abs"] / touch_mean))
    check("deep_ofi_normalized", np.maximum(np.abs(r["deep_ofi_normalized"]), r["deep_ofi_abs"] / r["deep_depth_mean"]))
    # Basis = (vwap − mid)/mid × 10⁴: a difference of two prices; scale (|vwap| + mid)/mid × 10⁴
    # (VWAP agrees to 1e-14 but the basis is often 1e-3 bps: 1e-7 relative is rounding here).
    basis_scale = (np.abs(r["vwap"]) + r["mid"]) / r["mid"] * 1e4
    check("basis_bps", np.maximum(np.abs(r["basis_bps"]), basis_scale))
    # ... so also pin it to the engine's own VWAP and mid, where the arithmetic is the same.
    own = (c["vwap"] - c["mid"]) / c["mid"] * 1e4
    off = np.abs(c["basis_bps"] - own) > REL * np.abs(own) + 1e-15 * basis_scale
    if off.any():
        problems.append(f"basis_bps is not (vwap − mid)/mid × 10⁴ of the engine's own values at {int(off.sum())} rows")
    # Volatility: compared as the variance (the sum; the square root would turn a rounding
    # residue of 1e-16 into 1e-8). Σ(r − r̄)² is near zero when the mid hardly moved over the
    # window, so its scale is the Σr² form over the returns a rolling sum (re-summed once per
    # window length, docs/features.md) can still carry the rounding of: the last 2 windows.
    problem = compare(
        "volatility²", c["volatility"] ** 2, r["volatility"] ** 2, np.maximum(r["volatility"] ** 2, r["var_scale"])
    )
    if problem:
        problems.append(problem)
    count_mismatch = np.flatnonzero(c["trade_count"] != r["trade_count"])
    if count_mismatch.size:
        problems.append(f"trade_count differs at {count_mismatch.size} rows, first {int(count_mismatch[0])}")
    return problems


@pytest.mark.data
def test_recorded_features_match_the_reference(capture: CaptureRun) -> None:
    rows = capture.rows
    assert len(rows) == capture.stream.message_count > 6000
    columns = {name: np.array([row[name] for row in rows]) for name in rows[0]}
    assert columns["tick_count"].tolist() == list(range(1, len(rows) + 1))
    assert columns["time_ns"].tolist() == [tick.time_ns for tick in capture.ticks]
    assert columns["ready"].tolist() == [n >= 100 for n in range(1, len(rows) + 1)]
    assert columns["trade_count"].sum() > 0 and (columns["ofi"] != 0).any()
    ref = reference_features(capture.ticks)
    assert reference_mismatches(columns, ref, (5, 50)) == []


@pytest.mark.data
def test_recorded_features_with_other_parameters_match_the_reference(capture: CaptureRun) -> None:
    # Every windowed parameter changed (through the batch path), against the reference with the
    # same parameters.
    depths = [1, 3, 10, 20]
    columns = run_batch(
        capture,
        FeatureEngine(depths, 37, level_decay=0.15, ofi_levels=10, volatility_half_life_s=2.5),
    )
    ref = reference_features(
        capture.ticks, depths=depths, tick_window=37, level_decay=0.15, ofi_levels=10, volatility_half_life_s=2.5
    )
    assert reference_mismatches(columns, ref, depths) == []


@pytest.mark.data
def test_batch_replay_matches_the_per_tick_path(capture: CaptureRun) -> None:
    engine = FeatureEngine()
    columns = run_batch(capture, engine)
    assert list(columns) == engine.column_names()
    rows = capture.rows
    assert all(len(values) == len(rows) for values in columns.values())
    for name, values in columns.items():
        per_tick = np.array([row[name] for row in rows])
        if name in ("time_ns", "ready", "trade_count"):
            assert values.tolist() == per_tick.tolist(), name
        else:
            assert np.allclose(values, per_tick, rtol=1e-12, atol=0), name
    # The batch engine ends in the per-tick engine's state.
    assert engine.features.as_dict() == rows[-1]


@pytest.mark.data
def test_recorded_prediction_and_skew(capture: CaptureRun) -> None:
    rows = capture.rows
    for row in rows:
        assert all(math.isfinite(value) for value in row.values())
        assert 0.0 <= row["hit_rate"] <= 1.0
        assert -1.0 <= row["skew"] <= 1.0
        signals = marketmaker_signals(row, (5, 50))
        assert row["skew"] == pytest.approx(reference_skew(**signals, weights=DEFAULT_WEIGHTS, band=0.2), abs=1e-12)
    last = rows[-1]
    # Scored predictions only ever grow, and only matured ones (horizon 10 ticks) count.
    scored = [row["predictions_scored"] for row in rows]
    assert scored == sorted(scored)
    assert all(count <= max(0, n - 10) for n, count in enumerate(scored, start=1))
    assert last["predictions_scored"] > 500
    assert sum(1 for row in rows if row["prediction_bps"] != 0.0) > len(rows) / 2
    assert sum(1 for row in rows if row["skew"] != 0.0) > len(rows) / 10


def marketmaker_signals(row: dict[str, Any], depths: Sequence[int]) -> dict[str, Any]:
    return dict(
        imbalances=[row[f"imbalance_{depth}"] for depth in depths],
        trade_imbalance=row["trade_imbalance"],
        voi_normalized=row["voi_normalized"],
        deep_ofi_normalized=row["deep_ofi_normalized"],
        prediction_bps=row["prediction_bps"],
    )


@pytest.mark.data
def test_recorded_skew_with_other_weights_follows_the_formula(capture: CaptureRun) -> None:
    weights = {
        "imbalance": 0.9,
        "deep_imbalance": -0.4,
        "trade_imbalance": 0.8,
        "voi": 0.7,
        "deep_ofi": 0.6,
        "prediction": 0.5,
    }
    band, scale = 0.35, 0.25
    columns = run_batch(capture, FeatureEngine(weights=weights, dead_band=band, prediction_scale_bps=scale))
    skews = columns["skew"]
    for index, value in enumerate(skews.tolist()):
        row = {name: column[index] for name, column in columns.items()}
        expected = reference_skew(
            **marketmaker_signals(row, (5, 50)), weights=weights, band=band, prediction_scale_bps=scale
        )
        assert value == pytest.approx(expected, abs=1e-12), index
    # The weights sum to more than 1: the clip is exercised, and so is the dead band.
    assert (np.abs(skews) == 1.0).any()
    assert (np.abs(skews) < 1.0).any()
    assert 0.0 <= columns["hit_rate"].min() and columns["hit_rate"].max() <= 1.0


def test_a_new_engine_does_not_count_the_tapes_history() -> None:
    # An engine attached to a tape that already holds trades (a restart mid-session) must not
    # count that history as its first tick's flow; it counts what arrives from then on.
    tape = TradeTape(100)
    for i in range(5):
        tape.push(100.1, 1.0, Side.BUY, exchange_time_ns=i)
    book = make_book([(100.0, 1)], [(100.2, 1)])
    engine = FeatureEngine(depths=[1], tick_window=5)
    engine.update(book, tape, time_ns=10)
    assert engine.features.trade_count == 0
    tape.push(100.1, 2.0, Side.SELL, exchange_time_ns=11)
    engine.update(book, tape, time_ns=20)
    assert (engine.features.trade_count, engine.features.trade_imbalance) == (1, -1.0)
