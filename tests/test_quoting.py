"""The quoting part of the core against ``docs/quoting.md``: ``QuoteGenerator``/``Quotes``,
``OrderPlanner``/``OrderAction``, ``RateLimiter`` and ``RiskGate``.

Every expected value is computed here from the document's formulas (or worked out by hand in the
comments), never read back from the implementation:

* closed forms: Avellaneda–Stoikov with the paper's parameters (S0 = 100, T = 1, σ = 2,
  γ = 0.1, κ = 1.5) over a grid of inventories and times, finite and rolling horizon; GLFT's
  c1/c2, half-spread and skew, and both models' inventory bound;
* the ladder model on hand-worked examples (spacing, vol widening, anchor, inventory adjustment,
  centre shift, sizes, side stop);
* Hypothesis properties of every fitted ladder over random books, models and parameters, of the
  order diff applied to a plain Python model of the venue, and of the halted risk gate;
* the rate limiter's buckets, reserve, venue usage and 429 pause; the risk gate's limits and
  latched halts; parameter validation; ``quote_from`` against an explicit ``quote``.

Rounding: a model price ``x`` is expected at ``floor(x / tick)`` ticks for a bid and
``ceil(x / tick)`` for an ask, except that a value within a millionth of a tick of the grid
counts as on it (``x`` is a float: ``99.8 / 0.01`` is ``9980.000000000002``). The expected
price is then ``ticks × tick`` computed exactly with ``decimal`` and rounded once to a float,
and compared with ``==``. Model quantities (reservation price, half-spread) are compared to
1e-12 relative.
"""

from __future__ import annotations

import math
import random
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from marketmaker import (
    Account,
    FeatureEngine,
    OrderAction,
    OrderBook,
    OrderPlanner,
    QuoteGenerator,
    Quotes,
    RateLimiter,
    RiskGate,
    Side,
)
from marketmaker.errors import InvalidInputError, InvalidParameterError, MarketMakerError

PROPERTY = settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
#: The planner and gate properties draw a whole ladder and live orders per example.
PLANNER_PROPERTY = settings(PROPERTY, max_examples=200)

# ---------------------------------------------------------------------------------------------
# Independent helpers: grid rounding, tolerance, one-to-one matching
# ---------------------------------------------------------------------------------------------

#: A float within this many ticks of a grid point is on it (float noise, not a price).
GRID_TOLERANCE = 1e-6


def _ticks(value: float, step: str, rounding: Any) -> int:
    exact = value / float(Decimal(step))
    nearest = round(exact)
    return nearest if abs(exact - nearest) <= GRID_TOLERANCE else rounding(exact)


def grid(ticks: int, step: str) -> float:
    """``ticks × step`` computed exactly, rounded once to the nearest float."""
    return float(ticks * Decimal(step))


def down(value: float, step: str) -> float:
    """The grid point at or below ``value`` (bids, sizes)."""
    return grid(_ticks(value, step, math.floor), step)


def up(value: float, step: str) -> float:
    """The grid point at or above ``value`` (asks)."""
    return grid(_ticks(value, step, math.ceil), step)


def on_grid(value: float, step: str) -> bool:
    return grid(round(value / float(Decimal(step))), step) == value


def close(actual: float, expected: float, rel: float = 1e-12) -> bool:
    return math.isclose(actual, expected, rel_tol=rel, abs_tol=0.0)


def perfect_matching(left: int, right: int, fits: Any) -> bool:
    """Whether every one of ``left`` items can get its own ``right`` item with ``fits(i, j)``
    (Kuhn's augmenting paths; the sizes here are a few dozen)."""
    owner: list[int | None] = [None] * right

    def augment(i: int, seen: set[int]) -> bool:
        for j in range(right):
            if j not in seen and fits(i, j):
                seen.add(j)
                if owner[j] is None or augment(owner[j], seen):  # type: ignore[arg-type]
                    owner[j] = i
                    return True
        return False

    return all(augment(i, set()) for i in range(left))


def base36(value: int) -> str:
    digits = "0123456789abcdefghijklmnopqrstuvwxyz"
    out = ""
    while True:
        value, rest = divmod(value, 36)
        out = digits[rest] + out
        if value == 0:
            return out


# ---------------------------------------------------------------------------------------------
# 1. Closed forms: Avellaneda–Stoikov and GLFT
# ---------------------------------------------------------------------------------------------

# Avellaneda & Stoikov (2008), section 4: S0 = 100, T = 1, σ = 2, γ = 0.1, κ = 1.5, A = 140.
S0, T, SIGMA, GAMMA, KAPPA, A = 100.0, 1.0, 2.0, 0.1, 1.5, 140.0
TIMES = (0.0, 0.1, 0.25, 0.5, 0.75, 0.9, 0.995, 1.0)


def as_expected(mid: float, q: float, sigma: float, gamma: float, kappa: float, tau: float) -> tuple[float, float]:
    """(reservation price, total spread) from the document's formulas."""
    reservation = mid - q * gamma * sigma**2 * tau
    spread = gamma * sigma**2 * tau + (2.0 / gamma) * math.log(1.0 + gamma / kappa)
    return reservation, spread


def avellaneda_stoikov(**params: Any) -> QuoteGenerator:
    base: dict[str, Any] = dict(
        gamma=GAMMA, kappa=KAPPA, horizon=T, rolling=False, order_size=1.0, orders_per_side=1, max_inventory=10.0
    )
    base.update(params)
    return QuoteGenerator("avellaneda_stoikov", tick_size="0.01", lot_size="1", **base)


@pytest.mark.parametrize("q", [-5, -3, -2, -1, -0.5, 0, 0.5, 1, 2, 3, 5])
def test_avellaneda_stoikov_finite_horizon_matches_the_closed_form(q: float) -> None:
    generator = avellaneda_stoikov()
    for t in TIMES:
        tau = T - t
        quotes = generator.quote(S0, inventory=q, volatility=SIGMA, time_left=tau)
        r, spread = as_expected(S0, q, SIGMA, GAMMA, KAPPA, tau)
        assert close(quotes.reservation_price, r), (t, quotes.reservation_price, r)
        assert close(quotes.half_spread, spread / 2), (t, quotes.half_spread, spread / 2)
        # r ± spread/2, bids rounded down and asks up to the 0.01 tick.
        assert quotes.bids == ((down(r - spread / 2, "0.01"), 1.0),), t
        assert quotes.asks == ((up(r + spread / 2, "0.01"), 1.0),), t


def test_avellaneda_stoikov_hand_worked_point() -> None:
    # q = 2, T − t = 0.5: r = 100 − 2·0.1·4·0.5 = 99.6;
    # spread = 0.1·4·0.5 + 20·ln(1 + 0.1/1.5) = 0.2 + 1.290770 = 1.490770, half 0.745385;
    # bid 98.854615 → 98.85 (down), ask 100.345385 → 100.35 (up).
    quotes = avellaneda_stoikov().quote(100.0, inventory=2, volatility=2.0, time_left=0.5)
    assert close(quotes.reservation_price, 99.6)
    assert abs(quotes.half_spread - 0.745385) < 1e-6
    assert quotes.bids == ((98.85, 1.0),)
    assert quotes.asks == ((100.35, 1.0),)


def test_avellaneda_stoikov_time_left_is_capped_at_the_horizon() -> None:
    generator = avellaneda_stoikov(horizon=0.5)
    for q in (-3, 0, 2):
        capped = generator.quote(S0, inventory=q, volatility=SIGMA, time_left=4.0)
        r, spread = as_expected(S0, q, SIGMA, GAMMA, KAPPA, 0.5)
        assert close(capped.reservation_price, r)
        assert close(capped.half_spread, spread / 2)
        assert capped == generator.quote(S0, inventory=q, volatility=SIGMA, time_left=0.5)


@pytest.mark.parametrize("horizon", [1.0, 0.5, 0.05])
def test_avellaneda_stoikov_rolling_horizon_keeps_t_minus_t_at_the_horizon(horizon: float) -> None:
    generator = avellaneda_stoikov(rolling=True, horizon=horizon)
    for q in (-4, -1, 0, 1, 3):
        r, spread = as_expected(S0, q, SIGMA, GAMMA, KAPPA, horizon)
        for time_left in (0.0, 0.3, 1.0, 7.0):  # ignored with rolling=True
            quotes = generator.quote(S0, inventory=q, volatility=SIGMA, time_left=time_left)
            assert close(quotes.reservation_price, r)
            assert close(quotes.half_spread, spread / 2)
            assert quotes.bids == ((down(r - spread / 2, "0.01"), 1.0),)
            assert quotes.asks == ((up(r + spread / 2, "0.01"), 1.0),)


def test_avellaneda_stoikov_further_levels_every_level_spacing_bps() -> None:
    # 10 bps of the mid 100 is 0.1 per level; q = 1, T − t = 0.25:
    # r = 100 − 0.1·4·0.25 = 99.9; spread = 0.1 + 1.290770 = 1.390770, half 0.695385.
    generator = avellaneda_stoikov(orders_per_side=3, level_spacing_bps=10.0, order_size=2.0)
    quotes = generator.quote(S0, inventory=1, volatility=SIGMA, time_left=0.25)
    r, spread = as_expected(S0, 1, SIGMA, GAMMA, KAPPA, 0.25)
    assert [p for p, _ in quotes.bids] == [down(r - spread / 2 - 0.1 * j, "0.01") for j in range(3)]
    assert [p for p, _ in quotes.asks] == [up(r + spread / 2 + 0.1 * j, "0.01") for j in range(3)]
    assert [p for p, _ in quotes.bids] == [99.2, 99.1, 99.0]  # 99.204615, 99.104615, 99.004615
    assert [p for p, _ in quotes.asks] == [100.6, 100.7, 100.8]  # 100.595385, ...
    assert all(size == 2.0 for _, size in quotes.bids + quotes.asks)


def glft_expected(gamma: float, kappa: float, arrival: float, sigma: float) -> tuple[float, float]:
    """(half-spread, skew per unit of inventory) from the document's formulas."""
    c1 = (1.0 / gamma) * math.log(1.0 + gamma / kappa)
    c2 = math.sqrt(gamma / (2.0 * arrival * kappa) * (1.0 + gamma / kappa) ** (1.0 + kappa / gamma))
    return c1 + sigma * c2 / 2.0, sigma * c2


GLFT_CASES = [
    (GAMMA, KAPPA, A, SIGMA),  # the paper's market
    (0.05, 1.2, 140.0, 2.0),
    (0.5, 0.8, 20.0, 0.7),
    (2.0, 5.0, 300.0, 3.0),
]


@pytest.mark.parametrize(("gamma", "kappa", "arrival", "sigma"), GLFT_CASES)
def test_glft_matches_the_closed_form(gamma: float, kappa: float, arrival: float, sigma: float) -> None:
    generator = QuoteGenerator(
        "glft",
        tick_size="0.01",
        lot_size="1",
        gamma=gamma,
        kappa=kappa,
        arrival_rate=arrival,
        order_size=1,
        max_inventory=10,
    )
    half, skew = glft_expected(gamma, kappa, arrival, sigma)
    for q in (-6, -3, -1, -0.5, 0, 0.5, 1, 2, 4, 9.5):
        quotes = generator.quote(S0, inventory=q, volatility=sigma)
        bid = S0 - (half + skew * q)
        ask = S0 + (half - skew * q)
        assert close(quotes.half_spread, half), q
        # The centre of bid and ask: S − skew·q.
        assert close(quotes.reservation_price, S0 - skew * q), q
        assert quotes.bids == ((down(bid, "0.01"), 1.0),), q
        assert quotes.asks == ((up(ask, "0.01"), 1.0),), q


def test_glft_paper_parameters_by_hand() -> None:
    # c1 = 10·ln(1 + 1/15) = 0.645385; (1 + 1/15)^16 = 2.808..., c2 = sqrt(0.1/420 · 2.808) = 0.025858;
    # half = 0.645385 + 2·0.025858/2 = 0.671243, skew = 0.051716; q = 2:
    # bid = 100 − (0.671243 + 0.103432) = 99.225325 → 99.22; ask = 100 + 0.567811 → 100.57.
    quotes = QuoteGenerator(
        "glft", tick_size="0.01", lot_size="1", gamma=0.1, kappa=1.5, arrival_rate=140, max_inventory=10
    ).quote(100.0, inventory=2, volatility=2.0)
    assert abs(quotes.half_spread - 0.671243) < 1e-6
    assert quotes.bids == ((99.22, 1.0),)
    assert quotes.asks == ((100.57, 1.0),)


@pytest.mark.parametrize("model", ["avellaneda_stoikov", "glft"])
def test_inventory_bound_stops_the_side_that_would_breach_it(model: str) -> None:
    generator = QuoteGenerator(
        model, tick_size="0.01", lot_size="1", max_inventory=3, orders_per_side=2, level_spacing_bps=5
    )
    kwargs: dict[str, Any] = dict(volatility=0.5, time_left=0.5)
    for q, has_bids, has_asks in [
        (0, True, True),
        (2.999, True, True),
        (3, False, True),  # q ≥ max_inventory: no bids
        (7, False, True),
        (-2.999, True, True),
        (-3, True, False),  # q ≤ −max_inventory: no asks
        (-7, True, False),
    ]:
        quotes = generator.quote(S0, inventory=q, **kwargs)
        assert len(quotes.bids) == (2 if has_bids else 0), (q, quotes)
        assert len(quotes.asks) == (2 if has_asks else 0), (q, quotes)


# ---------------------------------------------------------------------------------------------
# 2. The ladder model, hand-worked
# ---------------------------------------------------------------------------------------------


def ladder(lot: str = "0.01", **params: Any) -> QuoteGenerator:
    base: dict[str, Any] = dict(bps=20.0, orders_per_side=1, leverage=1.0, size_fraction=0.1)
    base.update(params)
    return QuoteGenerator("ladder", tick_size="0.01", lot_size=lot, **base)


def test_ladder_geometric_spacing_and_budget_split() -> None:
    # h = 100 × 10 / 10⁴ = 0.1; r = 8^(1/3) = 2: levels at 0.1, 0.2, 0.4, 0.8 from the centre 100.
    # Size per level = 10 000 × 3 × 0.2 / 100 / 4 = 15.
    quotes = ladder(
        lot="0.001", bps=10, orders_per_side=4, final_order_distance=8, leverage=3, size_fraction=0.2
    ).quote(100.0, balance=10_000)
    assert quotes.bids == ((99.9, 15.0), (99.8, 15.0), (99.6, 15.0), (99.2, 15.0))
    assert quotes.asks == ((100.1, 15.0), (100.2, 15.0), (100.4, 15.0), (100.8, 15.0))
    assert close(quotes.half_spread, 0.1)
    assert close(quotes.reservation_price, 100.0)


def test_ladder_spacing_rounds_outward() -> None:
    # h = 0.1, 3 levels out to 5 half-spreads: r = √5 = 2.236068, distances 0.1, 0.2236068, 0.5.
    # Bids 99.9, 99.7763932 → 99.77 (down), 99.5; asks 100.1, 100.2236068 → 100.23 (up), 100.5.
    # Size 10 000 × 1 × 0.1 / 100 / 3 = 3.3333 → 3.33 (down to the lot).
    quotes = ladder(bps=10, orders_per_side=3, final_order_distance=5).quote(100.0, balance=10_000)
    assert quotes.bids == ((99.9, 3.33), (99.77, 3.33), (99.5, 3.33))
    assert quotes.asks == ((100.1, 3.33), (100.23, 3.33), (100.5, 3.33))


def test_ladder_final_order_distance_one_puts_every_level_at_the_touch_and_merges_them() -> None:
    # r = 1^(1/2) = 1: three levels at 99.8 merge into one of 3 × 3.33 = 9.99 (lot 0.01).
    quotes = ladder(orders_per_side=3, final_order_distance=1).quote(100.0, balance=10_000)
    assert quotes.bids == ((99.8, 9.99),)
    assert quotes.asks == ((100.2, 9.99),)


def test_ladder_volatility_widening() -> None:
    # σ = 0.0004 per √s = 4 bps; h = 100 × 10/10⁴ × (1 + 0.5 × 4) = 0.1 × 3 = 0.3.
    generator = ladder(bps=10, vol_widening=0.5)
    quotes = generator.quote(100.0, volatility=0.0004, balance=10_000)
    assert close(quotes.half_spread, 0.3)
    assert quotes.bids == ((99.7, 10.0),) and quotes.asks == ((100.3, 10.0),)
    calm = generator.quote(100.0, volatility=0.0, balance=10_000)
    assert close(calm.half_spread, 0.1)
    assert calm.bids == ((99.9, 10.0),) and calm.asks == ((100.1, 10.0),)


def test_ladder_anchor_mid_or_microprice() -> None:
    # Microprice 100.2: h = 100.2 × 10/10⁴ = 0.1002; bid 100.0998 → 100.09, ask 100.3002 → 100.31;
    # size 10 000 × 0.1 / 100.2 = 9.98004 → 9.98.
    micro = ladder(bps=10, anchor="microprice").quote(100.0, microprice=100.2, balance=10_000)
    assert close(micro.reservation_price, 100.2)
    assert close(micro.half_spread, 0.1002)
    assert micro.bids == ((100.09, 9.98),) and micro.asks == ((100.31, 9.98),)
    # The mid anchor ignores the microprice: h = 0.1, size 10.
    mid = ladder(bps=10, anchor="mid").quote(100.0, microprice=100.2, balance=10_000)
    assert close(mid.reservation_price, 100.0)
    assert mid.bids == ((99.9, 10.0),) and mid.asks == ((100.1, 10.0),)


def doc_skew(skew: float, ratio: float, c: float) -> float:
    """``skew' = clip(skew·(1 − |f|) − c·f, −1, 1)``, ``f = sign(Δ)·√|Δ|`` clipped to [−1, 1]
    (docs/quoting.md)."""
    f = max(-1.0, min(1.0, math.copysign(math.sqrt(abs(ratio)), ratio))) if ratio else 0.0
    return min(1.0, max(-1.0, skew * (1 - abs(f)) - c * f))


def test_ladder_inventory_adjustment_long() -> None:
    # Δ = 25 × 100 / 10 000 = 0.25, f = 0.5; skew' = 0.4 × 0.5 − 0.63 × 0.5 = −0.115.
    # h = 0.2; centre = 100 − 0.115 × 0.5 × 0.2 = 99.9885; bid 99.7885 → 99.78, ask 100.1885 → 100.19.
    # Sizes: 10 × (1 − 0.115) = 8.85 bid, 10 × 1.115 = 11.15 ask.
    assert close(doc_skew(0.4, 0.25, 0.63), -0.115)
    quotes = ladder().quote(100.0, inventory=25, skew=0.4, balance=10_000)
    assert close(quotes.reservation_price, 99.9885)
    assert quotes.bids == ((99.78, 8.85),)
    assert quotes.asks == ((100.19, 11.15),)


def test_ladder_inventory_adjustment_short() -> None:
    # Δ = −0.25, f = −0.5; skew' = 0.4 × 0.5 + 0.63 × 0.5 = 0.515.
    # centre = 100 + 0.515 × 0.5 × 0.2 = 100.0515; bid 99.8515 → 99.85, ask 100.2515 → 100.26.
    # Sizes 10 × 1.515 = 15.15 bid, 10 × 0.485 = 4.85 ask.
    quotes = ladder().quote(100.0, inventory=-25, skew=0.4, balance=10_000)
    assert close(quotes.reservation_price, 100.0515)
    assert quotes.bids == ((99.85, 15.15),)
    assert quotes.asks == ((100.26, 4.85),)


def test_ladder_inventory_ratio_uses_leverage() -> None:
    # Leverage 2: budget 20 000, Δ = 25 × 100 / 20 000 = 0.125, f = 0.353553;
    # skew' = 0.4 × 0.646447 − 0.63 × 0.353553 = 0.258579 − 0.222739 = 0.035840.
    # Sizes 20 000 × 0.1 / 100 = 20 × 1.035840 = 20.7168 → 20.71; 20 × 0.964160 = 19.2832 → 19.28.
    # centre 100 + 0.035840 × 0.5 × 0.2 = 100.003584: bid 99.803584 → 99.80, ask 100.203584 → 100.21.
    s = doc_skew(0.4, 0.125, 0.63)
    assert abs(s - 0.035840) < 1e-6
    quotes = ladder(leverage=2).quote(100.0, inventory=25, skew=0.4, balance=10_000)
    assert close(quotes.reservation_price, 100.0 + s * 0.5 * 0.2)
    assert quotes.bids == ((99.8, 20.71),)
    assert quotes.asks == ((100.21, 19.28),)


def test_ladder_skew_shift_moves_the_centre_and_resizes_the_sides() -> None:
    # Flat: skew' = 0.6; skew_shift 1.5: centre = 100 + 0.6 × 1.5 × 0.2 = 100.18;
    # bid 99.98, ask 100.38; sizes 10 × 1.6 = 16 and 10 × 0.4 = 4.
    quotes = ladder(skew_shift=1.5).quote(100.0, skew=0.6, balance=10_000)
    assert close(quotes.reservation_price, 100.18)
    assert quotes.bids == ((99.98, 16.0),)
    assert quotes.asks == ((100.38, 4.0),)
    # skew_shift 0 resizes without moving the centre.
    still = ladder(skew_shift=0).quote(100.0, skew=0.6, balance=10_000)
    assert still.bids == ((99.8, 16.0),) and still.asks == ((100.2, 4.0),)


def test_ladder_adjusted_skew_is_clipped() -> None:
    # c = 2, skew 1, Δ = −0.25 (f = −0.5): 1 × 0.5 + 2 × 0.5 = 1.5 → clipped to 1.
    # Asks × (1 − 1) = 0 are dropped; bids × 2 = 20; centre 100 + 1 × 0.5 × 0.2 = 100.1 → bid 99.9.
    quotes = ladder(inventory_adjustment=2.0).quote(100.0, inventory=-25, skew=1.0, balance=10_000)
    assert close(quotes.reservation_price, 100.1)
    assert quotes.bids == ((99.9, 20.0),)
    assert quotes.asks == ()
    # Mirrored: skew −1, Δ = 0.25: −0.5 − 1 = −1.5 → −1: no bids, asks 20 at 99.9 + 0.2 = 100.1.
    mirrored = ladder(inventory_adjustment=2.0).quote(100.0, inventory=25, skew=-1.0, balance=10_000)
    assert mirrored.bids == ()
    assert mirrored.asks == ((100.1, 20.0),)


def test_ladder_side_stops_at_the_inventory_limit() -> None:
    generator = ladder(inventory_limit=0.5, orders_per_side=2, final_order_distance=2)
    # Δ = 49 × 100 / 10 000 = 0.49 < 0.5: both sides.
    below = generator.quote(100.0, inventory=49, balance=10_000)
    assert len(below.bids) == 2 and len(below.asks) == 2
    # Δ = 0.5: bids stop. skew' = −0.63 × √0.5 = −0.445477; asks 5 × 1.445477 = 7.227 → 7.22;
    # centre 100 − 0.445477 × 0.5 × 0.2 = 99.955452: asks 100.155452 → 100.16, 100.355452 → 100.36.
    at_limit = generator.quote(100.0, inventory=50, balance=10_000)
    assert at_limit.bids == ()
    assert at_limit.asks == ((100.16, 7.22), (100.36, 7.22))
    # Short at the limit: asks stop.
    short = generator.quote(100.0, inventory=-50, balance=10_000)
    assert short.asks == () and len(short.bids) == 2


def test_ladder_inventory_adjustment_beyond_one_follows_the_documented_formula() -> None:
    # inventory_limit 2 keeps both sides at Δ = 144 × 100 / 10 000 = 1.44: f = √1.44 = 1.2 is
    # clipped to 1 (docs/quoting.md), so skew' = clip(0 × (1 − 1) − 0.63 × 1) = −0.63.
    # centre = 100 − 0.63 × 0.5 × 0.2 = 99.937: bid 99.737 → 99.73, ask 100.137 → 100.14;
    # sizes 10 × 0.37 = 3.7 bid and 10 × 1.63 = 16.3 ask.
    assert close(doc_skew(0.0, 1.44, 0.63), -0.63)
    quotes = ladder(inventory_limit=2.0).quote(100.0, inventory=144, balance=10_000)
    assert close(quotes.reservation_price, 99.937)
    assert quotes.bids == ((99.73, 3.7),)
    assert quotes.asks == ((100.14, 16.3),)


# ---------------------------------------------------------------------------------------------
# 3. Properties of every fitted ladder
# ---------------------------------------------------------------------------------------------

TICKS = ["0.01", "0.1", "0.5", "1", "0.0001", "0.25", "5"]
LOTS = ["0.001", "0.01", "1", "0.5", "0.0001"]


@dataclass
class QuoteCase:
    """Everything to build one generator and ask it for one ladder."""

    model: str
    tick: str
    lot: str
    params: dict[str, Any]
    rules: dict[str, float]
    inputs: dict[str, Any]

    def generator(self) -> QuoteGenerator:
        return QuoteGenerator(self.model, tick_size=self.tick, lot_size=self.lot, **self.rules, **self.params)

    def quote(self) -> Quotes:
        return self.generator().quote(**self.inputs)


def log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(math.log10(low), math.log10(high)).map(lambda e: 10.0**e)


@st.composite
def quote_cases(draw: st.DrawFn) -> QuoteCase:
    tick = draw(st.sampled_from(TICKS))
    lot = draw(st.sampled_from(LOTS))
    target = draw(log_uniform(2.0, 1e5))
    bid_ticks = max(1, int(target / float(tick)))
    spread_ticks = draw(st.integers(1, 40))
    best_bid = grid(bid_ticks, tick)
    best_ask = grid(bid_ticks + spread_ticks, tick)
    mid = (best_bid + best_ask) / 2
    inputs: dict[str, Any] = dict(best_bid=best_bid, best_ask=best_ask)
    if draw(st.booleans()):
        inputs["mid"] = mid
    inputs["microprice"] = best_bid + (best_ask - best_bid) * draw(st.floats(0, 1))
    model = draw(st.sampled_from(["ladder", "avellaneda_stoikov", "glft"]))
    if model == "ladder":
        params: dict[str, Any] = dict(
            bps=draw(log_uniform(0.05, 300)),
            vol_widening=draw(st.sampled_from([0.0, 0.1, 1.0, 3.0])),
            anchor=draw(st.sampled_from(["mid", "microprice"])),
            orders_per_side=draw(st.integers(1, 12)),
            final_order_distance=draw(st.floats(1, 40)),
            leverage=draw(log_uniform(0.1, 50)),
            size_fraction=draw(st.floats(0.01, 1)),
            inventory_adjustment=draw(st.floats(0, 2)),
            inventory_limit=draw(st.floats(0.05, 3)),
            skew_shift=draw(st.floats(0, 2)),
        )
        # The simplest draw (0) is a funded account; one in ten has no balance (nothing to quote).
        balance = 0.0 if draw(st.integers(0, 9)) == 9 else mid * draw(log_uniform(10, 1e5))
        inputs.update(
            volatility=draw(st.floats(0, 0.005)),
            skew=draw(st.floats(-1, 1)),
            balance=balance,
            inventory=draw(st.floats(-1.5, 1.5)) * balance * params["leverage"] / mid,
        )
    else:
        # γ and κ scaled by the price so that the spreads are a sensible share of it.
        params = dict(
            gamma=draw(log_uniform(1e-3, 10)) / mid,
            kappa=draw(log_uniform(10, 1e5)) / mid,
            order_size=float(Decimal(lot)) * draw(log_uniform(1, 1e4)),
            orders_per_side=draw(st.integers(1, 10)),
            level_spacing_bps=draw(st.one_of(st.just(0.0), log_uniform(0.01, 100))),
            max_inventory=draw(log_uniform(0.5, 50)),
        )
        if model == "avellaneda_stoikov":
            params.update(horizon=draw(st.floats(0, 2)), rolling=draw(st.booleans()))
            inputs["time_left"] = draw(st.floats(0, 3))
        else:
            params["arrival_rate"] = draw(log_uniform(1, 1000))
        inputs.update(
            volatility=mid * draw(st.floats(0, 0.01)),
            inventory=draw(st.floats(-1.2, 1.2)) * params["max_inventory"],
        )
    rules: dict[str, float] = {}
    if draw(st.booleans()):
        rules["min_size"] = draw(st.sampled_from([float(Decimal(lot)), float(Decimal(lot)) * 3, 0.05, 1.0]))
    if draw(st.integers(0, 2)) == 2:
        rules["min_notional"] = draw(st.floats(0, 100))
    if draw(st.integers(0, 2)) == 2:
        rules["price_band"] = draw(log_uniform(1e-3, 0.05))
        inputs["reference_price"] = mid * (1 + draw(st.floats(-0.002, 0.002)))
    return QuoteCase(model, tick, lot, params, rules, inputs)


def size_budget(case: QuoteCase) -> tuple[float, float]:
    """(largest total size of one side, largest total of both sides) the model may quote."""
    if case.model == "ladder":
        p, i = case.params, case.inputs
        anchor = (
            i["microprice"]
            if p["anchor"] == "microprice" and i["microprice"] > 0
            else i.get("mid", (i["best_bid"] + i["best_ask"]) / 2)
        )
        per_side = i["balance"] * p["leverage"] * p["size_fraction"] / anchor
        # (1 + skew') + (1 − skew') = 2 whatever the skew: one side ≤ 2×, both sides ≤ 2×.
        return 2 * per_side, 2 * per_side
    side = case.params["orders_per_side"] * case.params["order_size"]
    return side, 2 * side


def check_fitted(case: QuoteCase, quotes: Quotes) -> None:
    rules, inputs = case.rules, case.inputs
    best_bid, best_ask = inputs["best_bid"], inputs["best_ask"]
    for side, levels in (("bid", quotes.bids), ("ask", quotes.asks)):
        for price, size in levels:
            # Post-only: never at or through the other side of the book.
            if side == "bid":
                assert price < best_ask, (price, best_ask)
            else:
                assert price > best_bid, (price, best_bid)
            assert price > 0
            assert on_grid(price, case.tick), (price, case.tick)
            assert size > 0 and on_grid(size, case.lot), (size, case.lot)
            assert size >= rules.get("min_size", 0.0)
            assert price * size >= rules.get("min_notional", 0.0)
            if rules.get("price_band", 0.0) > 0:
                assert abs(price / inputs["reference_price"] - 1) <= rules["price_band"] + 1e-12
        prices = [price for price, _ in levels]
        # Strictly monotone, best first.
        if side == "bid":
            assert all(a > b for a, b in zip(prices, prices[1:])), prices
        else:
            assert all(a < b for a, b in zip(prices, prices[1:])), prices
    side_budget, total_budget = size_budget(case)
    slack = 1 + 1e-9
    bid_total = sum(size for _, size in quotes.bids)
    ask_total = sum(size for _, size in quotes.asks)
    assert bid_total <= side_budget * slack and ask_total <= side_budget * slack
    assert bid_total + ask_total <= total_budget * slack
    if quotes.bids and quotes.asks:
        assert quotes.bids[0][0] < quotes.asks[0][0]


def test_every_fitted_ladder_obeys_the_instrument_rules() -> None:
    sides_quoted: list[int] = []

    @PROPERTY
    @given(case=quote_cases())
    def run(case: QuoteCase) -> None:
        quotes = case.quote()
        check_fitted(case, quotes)
        sides_quoted.append(bool(quotes.bids) + bool(quotes.asks))

    run()
    # Not vacuous: most drawn cases quote, and many quote both sides.
    assert sum(n > 0 for n in sides_quoted) >= 0.4 * len(sides_quoted)
    assert sum(n == 2 for n in sides_quoted) >= 0.2 * len(sides_quoted)


def test_post_only_clamps_to_one_tick_inside_the_book() -> None:
    # h = 100 × 0.1 / 10⁴ = 0.001 around the given mid 100: raw levels 99.999 / 100.001 (one level)
    # round outward to 99.99 / 100.01.
    generator = ladder(bps=0.1, orders_per_side=1)
    assert generator.quote(100.0, balance=10_000).bids == ((99.99, 10.0),)
    # The book is lower than the mid says (99.50 / 99.60): the bid 99.99 would cross the ask,
    # so it goes one tick under it, 99.59; the ask 100.01 is above the bid 99.50 already.
    low = generator.quote(100.0, best_bid=99.5, best_ask=99.6, balance=10_000)
    assert low.bids == ((99.59, 10.0),) and low.asks == ((100.01, 10.0),)
    # The book is higher (100.40 / 100.50): the ask goes one tick over the bid, 100.41.
    high = generator.quote(100.0, best_bid=100.4, best_ask=100.5, balance=10_000)
    assert high.bids == ((99.99, 10.0),) and high.asks == ((100.41, 10.0),)
    # Three levels (distances h, √3·h, 3h) all clamped to 99.59 merge into one:
    # 3 × (10 000 × 0.1 / 100 / 3 = 3.333 → 3.33) = 9.99.
    three = ladder(bps=0.1, orders_per_side=3, final_order_distance=3)
    assert three.quote(100.0, best_bid=99.5, best_ask=99.6, balance=10_000).bids == ((99.59, 9.99),)


def test_price_band_drops_levels_outside_it() -> None:
    # h = 0.2, 3 levels out to 4 half-spreads: distances 0.2, 0.4, 0.8 around 100.
    # Band 0.5 % of 100 = ±0.5: the 0.8 levels (99.2, 100.8) are dropped.
    generator = QuoteGenerator(
        "ladder", tick_size="0.01", lot_size="0.01", price_band=0.005, bps=20, orders_per_side=3, final_order_distance=4
    )
    quotes = generator.quote(100.0, balance=10_000, reference_price=100.0)
    assert [p for p, _ in quotes.bids] == [99.8, 99.6]
    assert [p for p, _ in quotes.asks] == [100.2, 100.4]
    # Without a reference price the band is not applied.
    assert len(generator.quote(100.0, balance=10_000).bids) == 3


def test_min_size_and_min_notional_drop_levels() -> None:
    # Sizes: 10 000 × 0.1 / 100 / 2 = 5 per level, bids × (1 + 0.5) = 7.5, asks × 0.5 = 2.5.
    base: dict[str, Any] = dict(tick_size="0.01", lot_size="0.01", bps=20, orders_per_side=2, final_order_distance=2)
    quotes = QuoteGenerator("ladder", **base).quote(100.0, balance=10_000, skew=0.5)
    assert [s for _, s in quotes.bids] == [7.5, 7.5] and [s for _, s in quotes.asks] == [2.5, 2.5]
    assert QuoteGenerator("ladder", min_size=3, **base).quote(100.0, balance=10_000, skew=0.5).asks == ()
    # Notional of an ask level: ~100.2 × 2.5 = 250.5 and ~100.4 × 2.5 = 251: a 250.8 minimum keeps one.
    kept = QuoteGenerator("ladder", min_notional=250.8, **base).quote(100.0, balance=10_000, skew=0.5)
    assert len(kept.asks) == 1 and kept.asks[0][0] * kept.asks[0][1] >= 250.8
    assert len(kept.bids) == 2


# ---------------------------------------------------------------------------------------------
# 4. OrderPlanner
# ---------------------------------------------------------------------------------------------

ID_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,36}")


def side_name(side: Side) -> str:
    return "buy" if side == Side.BUY else "sell"


@dataclass
class PlannerCase:
    quote: QuoteCase
    live: list[tuple[str, str, float, float]]
    prefix: str
    requote_tolerance_bps: float
    size_tolerance: float
    supports_amend: bool
    as_account: bool
    partial_fills: list[float] = field(default_factory=list)


@st.composite
def planner_cases(draw: st.DrawFn) -> PlannerCase:
    case = draw(quote_cases())
    quotes = case.quote()
    levels = [("buy", p, s) for p, s in quotes.bids] + [("sell", p, s) for p, s in quotes.asks]
    tick = Decimal(case.tick)
    ref = case.inputs["best_bid"]
    live: list[tuple[str, str, float, float]] = []
    for i in range(draw(st.integers(0, 14))):
        kind = draw(st.sampled_from(["near", "near", "near", "duplicate", "far"]))
        if kind == "duplicate" and live:
            _, side, price, size = live[draw(st.integers(0, len(live) - 1))]
        elif kind == "near" and levels:
            side, price, size = levels[draw(st.integers(0, len(levels) - 1))]
            offset = draw(st.integers(-3, 3))
            ticks = round(Decimal(str(price)) / tick) + offset
            price = float(max(1, ticks) * tick)
            size = size * draw(st.sampled_from([1.0, 1.0, 0.9, 1.2, 0.5, 2.0, 0.76]))
        else:
            side = draw(st.sampled_from(["buy", "sell"]))
            ticks = max(1, round(Decimal(str(ref)) / tick * Decimal(str(draw(st.floats(0.97, 1.03))))))
            price = float(ticks * tick)
            size = draw(log_uniform(1e-3, 100))
        live.append((f"old-{i}", side, price, size))
    # New ids are the prefix and a base-36 counter (no "-"), so only a prefix "old-…" could
    # collide with the live ids "old-<i>".
    prefix = draw(st.from_regex(r"[A-Za-z0-9_-]{1,22}", fullmatch=True).filter(lambda p: not p.startswith("old-")))
    as_account = draw(st.booleans())
    fills = [draw(st.sampled_from([0.0, 0.0, 0.5])) for _ in live] if as_account else []
    return PlannerCase(
        case,
        live,
        prefix,
        draw(st.sampled_from([0.0, 0.5, 1.0, 2.0, 10.0])),
        draw(st.sampled_from([0.0, 0.1, 0.25, 0.5])),
        draw(st.booleans()),
        as_account,
        fills,
    )


def live_input(case: PlannerCase) -> tuple[Any, dict[str, list[Any]]]:
    """What to pass to ``plan`` and the venue's view of the same orders: id → [side, price, size]."""
    if not case.as_account:
        return list(case.live), {cid: [side, price, size] for cid, side, price, size in case.live}
    account = Account(1_000_000.0)
    for (cid, side, price, size), fill in zip(case.live, case.partial_fills):
        account.add_order(cid, side, price, size)
        if fill:
            account.apply_fill(f"t-{cid}", side, price, size * fill, client_order_id=cid)
    venue = {o.client_order_id: [side_name(o.side), o.price, o.remaining] for o in account.open_orders}
    return account, venue


def planner_for(case: PlannerCase, supports_amend: bool | None = None) -> OrderPlanner:
    return OrderPlanner(
        case.prefix,
        requote_tolerance_bps=case.requote_tolerance_bps,
        size_tolerance=case.size_tolerance,
        supports_amend=case.supports_amend if supports_amend is None else supports_amend,
    )


KIND_RANK = {"cancel": 0, "amend": 1, "place": 2}


def apply_actions(venue: dict[str, list[Any]], actions: Sequence[OrderAction]) -> None:
    """The venue: cancels remove, amends move, places add (an unknown id is an error)."""
    for action in actions:
        cid = action.client_order_id
        if action.kind == "cancel":
            assert cid in venue, f"cancel of an order that is not live: {action!r}"
            assert venue[cid][0] == side_name(action.side)
            del venue[cid]
        elif action.kind == "amend":
            assert cid in venue, f"amend of an order that is not live: {action!r}"
            assert venue[cid][0] == side_name(action.side)
            venue[cid][1:] = [action.price, action.size]
        else:
            assert action.kind == "place", action
            assert cid not in venue, f"client order id reused: {action!r}"
            venue[cid] = [side_name(action.side), action.price, action.size]


def check_new_ids(planner: OrderPlanner, actions: Iterable[OrderAction], seen: set[str]) -> None:
    for action in actions:
        if action.kind != "place":
            continue
        cid = action.client_order_id
        assert ID_PATTERN.fullmatch(cid), cid
        assert cid.startswith(planner.prefix) and planner.is_ours(cid)
        assert cid not in seen, cid
        seen.add(cid)


def within(order: Sequence[Any], level: tuple[str, float, float], bps: float, size_tolerance: float) -> bool:
    side, price, size = level
    return (
        order[0] == side
        and abs(order[1] - price) / price * 1e4 <= bps + 1e-9
        and abs(order[2] - size) / size <= size_tolerance + 1e-12
    )


@PLANNER_PROPERTY
@given(case=planner_cases(), venue_order=st.randoms(use_true_random=False))
def test_planner_actions_leave_one_order_per_price_and_are_stable(
    case: PlannerCase, venue_order: random.Random
) -> None:
    quotes = case.quote.quote()
    planner = planner_for(case)
    live, venue = live_input(case)
    actions = planner.plan(quotes, live)
    kinds = [KIND_RANK[a.kind] for a in actions]
    assert kinds == sorted(kinds), [a.kind for a in actions]  # cancels, then amends, then places
    seen = set(venue)
    check_new_ids(planner, actions, seen)
    apply_actions(venue, actions)
    # No two of our orders share a side and price.
    keys = [(side, price) for side, price, _ in venue.values()]
    for side in ("buy", "sell"):
        prices = sorted(price for s, price in keys if s == side)
        assert all(b - a > 1e-9 * b for a, b in zip(prices, prices[1:])), prices
    # Planning again changes nothing, in whatever order the venue lists the orders.
    listed = [(cid, side, price, size) for cid, (side, price, size) in venue.items()]
    venue_order.shuffle(listed)
    again = planner.plan(quotes, listed)
    assert again == [], again
    # Amending in place never takes more actions than cancel + place.
    with_amend = planner_for(case, supports_amend=True).plan(quotes, live_input(case)[0])
    without_amend = planner_for(case, supports_amend=False).plan(quotes, live_input(case)[0])
    assert len(with_amend) <= len(without_amend)
    assert not any(a.kind == "amend" for a in without_amend)


# Desired bids (99.95, 1) and (99.94, 2) (levels 0 and 1 of the ladder round to one price and merge)
# and one live bid (99.94, 1). The live bid is 100 % off the size wanted at its own price, but
# within 2 bps and 25 % of (99.95, 1), so it is kept for that level; the level (99.94, 2) is then
# never placed, because an order of ours already rests at 99.94. After the actions one bid rests
# for two wanted levels, and planning again returns nothing, so the ladder stays incomplete.
SAME_PRICE_CASE = PlannerCase(
    quote=QuoteCase(
        "avellaneda_stoikov",
        "0.01",
        "1",
        dict(
            gamma=1e-6,
            kappa=1 / 0.0475,
            horizon=0.0,
            rolling=True,
            order_size=1,
            orders_per_side=3,
            level_spacing_bps=0.5,
        ),
        {},
        dict(best_bid=99.0, best_ask=101.0, mid=100.0, microprice=100.0),
    ),
    live=[("old-0", "buy", 99.94, 1.0)],
    prefix="t-",
    requote_tolerance_bps=2.0,
    size_tolerance=0.25,
    supports_amend=False,
    as_account=False,
)


@PLANNER_PROPERTY
@example(case=SAME_PRICE_CASE)
@given(case=planner_cases())
def test_planner_leaves_every_desired_level_with_its_own_order(case: PlannerCase) -> None:
    quotes = case.quote.quote()
    planner = planner_for(case)
    live, venue = live_input(case)
    apply_actions(venue, planner.plan(quotes, live))
    levels = [("buy", p, s) for p, s in quotes.bids] + [("sell", p, s) for p, s in quotes.asks]
    resting = list(venue.values())
    # Nothing rests that is not wanted, and each wanted level has an order of its own within the
    # requote and size tolerances.
    assert len(resting) == len(levels), (levels, resting)
    assert perfect_matching(
        len(levels),
        len(resting),
        lambda i, j: within(resting[j], levels[i], case.requote_tolerance_bps, case.size_tolerance),
    ), (levels, resting)


def simple_quotes(size: float = 1.0, mid: float = 100.0, levels: int = 1, **inputs: Any) -> Quotes:
    """A bid one tick under ``mid`` and an ask one tick over (κ large: half-spread ≈ 1/κ = 0.01),
    ``levels`` per side 0.2 apart."""
    generator = QuoteGenerator(
        "avellaneda_stoikov",
        tick_size="0.01",
        lot_size="0.001",
        gamma=1e-6,
        kappa=100.0,
        horizon=0.0,
        rolling=True,
        order_size=size,
        orders_per_side=levels,
        level_spacing_bps=20.0,
        max_inventory=1e9,
    )
    return generator.quote(mid, **inputs)


def test_planner_keeps_within_tolerance_and_replaces_the_rest() -> None:
    quotes = simple_quotes(size=2.0)  # bid (99.99, 2), ask (100.01, 2)
    assert quotes.bids == ((99.99, 2.0),) and quotes.asks == ((100.01, 2.0),)
    planner = OrderPlanner("mm1-", requote_tolerance_bps=1.5, size_tolerance=0.25)
    # 0.01 from 99.99 is 1.0001 bps ≤ 1.5 and 1.6 is 20 % off 2: kept.
    # The ask at 100.04 is 2.9997 bps away: cancelled and replaced.
    actions = planner.plan(quotes, [("a", "buy", 99.98, 1.6), ("b", "sell", 100.04, 2.0)])
    assert [(a.kind, a.client_order_id, a.price, a.size) for a in actions] == [
        ("cancel", "b", 100.04, None),
        ("place", "mm1-0", 100.01, 2.0),
    ]
    # A size 30 % off is outside size_tolerance 0.25: cancelled, and the level placed again.
    actions = planner.plan(quotes, [("a", "buy", 99.99, 1.4), ("b", "sell", 100.01, 2.0)])
    assert [(a.kind, a.client_order_id) for a in actions] == [("cancel", "a"), ("place", "mm1-1")]
    # A second order at one price and side is always cancelled, even when it matches.
    actions = planner.plan(quotes, [("a", "buy", 99.99, 2.0), ("c", "buy", 99.99, 2.0), ("b", "sell", 100.01, 2.0)])
    assert [(a.kind, a.client_order_id) for a in actions] == [("cancel", "c")]


def test_planner_prefers_the_exact_price_then_the_nearest() -> None:
    quotes = simple_quotes()
    planner = OrderPlanner("p-", requote_tolerance_bps=5.0)
    # Both 99.98 and 99.99 are within 5 bps of the bid 99.99: the exact one is kept.
    actions = planner.plan(
        quotes, [("near", "buy", 99.98, 1.0), ("exact", "buy", 99.99, 1.0), ("ask", "sell", 100.01, 1.0)]
    )
    assert [(a.kind, a.client_order_id) for a in actions] == [("cancel", "near")]
    # Neither exact: the nearer (99.98, 1 bps) is kept, the farther (99.96, 3 bps) cancelled.
    actions = planner.plan(
        quotes, [("far", "buy", 99.96, 1.0), ("near", "buy", 99.98, 1.0), ("ask", "sell", 100.01, 1.0)]
    )
    assert [(a.kind, a.client_order_id) for a in actions] == [("cancel", "far")]


def test_planner_amends_in_place_where_supported() -> None:
    quotes = simple_quotes(size=2.0)
    live = [("a", "buy", 99.5, 2.0), ("b", "sell", 100.5, 1.0)]
    amend = OrderPlanner("x-", supports_amend=True).plan(quotes, live)
    assert [(a.kind, a.client_order_id, side_name(a.side), a.price, a.size) for a in amend] == [
        ("amend", "a", "buy", 99.99, 2.0),
        ("amend", "b", "sell", 100.01, 2.0),
    ]
    replace = OrderPlanner("x-", supports_amend=False).plan(quotes, live)
    assert [(a.kind, a.client_order_id) for a in replace] == [
        ("cancel", "a"),
        ("cancel", "b"),
        ("place", "x-0"),
        ("place", "x-1"),
    ]


def test_planner_reads_an_accounts_open_orders_by_remaining_size() -> None:
    quotes = simple_quotes(size=2.0)
    account = Account(10_000.0)
    account.add_order("a", "buy", 99.99, 4.0)
    account.add_order("b", "sell", 100.01, 2.0)
    planner = OrderPlanner("acc-")
    # 4 open is 100 % off the wanted 2: replaced.
    assert [a.kind for a in planner.plan(quotes, account)] == ["cancel", "place"]
    # After a fill of 2, the remaining 2 matches: nothing to do.
    account.apply_fill("t1", "buy", 99.99, 2.0, client_order_id="a")
    assert planner.plan(quotes, account) == []
    # Order objects work as live orders too.
    assert planner.plan(quotes, account.open_orders) == []


def test_client_order_ids() -> None:
    planner = OrderPlanner("mm1-")
    ids = [planner.next_client_order_id() for _ in range(1400)]
    # <prefix><counter in base 36>, unique.
    assert ids[:3] == ["mm1-0", "mm1-1", "mm1-2"]
    assert ids == [f"mm1-{base36(i)}" for i in range(1400)]
    assert len(set(ids)) == len(ids)
    assert all(ID_PATTERN.fullmatch(cid) and planner.is_ours(cid) for cid in ids)
    # Places draw from the same counter.
    place = planner.plan(simple_quotes(), [])[0]
    assert place.client_order_id == f"mm1-{base36(1400)}"
    # The next run with the same prefix recognises this run's orders; others are not ours.
    assert OrderPlanner("mm1-").is_ours(ids[-1])
    assert not planner.is_ours("web_12345") and not planner.is_ours("mm2-0")
    # The longest prefix still leaves ids of at most 36 characters.
    longest = OrderPlanner("A" * 22)
    assert all(len(longest.next_client_order_id()) <= 36 for _ in range(2000))


@pytest.mark.parametrize("prefix", ["", "A" * 23, "mm 1", "mm.1", "mm/1", "mmé", "a:b"])
def test_client_order_id_prefix_must_be_valid_on_both_venues(prefix: str) -> None:
    with pytest.raises(InvalidParameterError, match="prefix"):
        OrderPlanner(prefix)


def test_batches_are_venue_sized_and_ordered() -> None:
    # 7 cancels: an empty ladder (no balance) against seven live orders.
    empty = QuoteGenerator("ladder", tick_size="0.01", lot_size="0.01").quote(100.0)
    assert empty.bids == () and empty.asks == ()
    cancels = OrderPlanner("c-").plan(empty, [(f"o{i}", "buy", 90.0 + i, 1.0) for i in range(7)])
    # 3 amends: three ask levels (no bids at the inventory bound) and three far asks.
    asks_only = QuoteGenerator(
        "avellaneda_stoikov",
        tick_size="0.01",
        lot_size="1",
        gamma=1e-6,
        kappa=100.0,
        horizon=0.0,
        rolling=True,
        orders_per_side=3,
        level_spacing_bps=20.0,
        max_inventory=1,
    ).quote(100.0, inventory=1)
    amends = OrderPlanner("a-", supports_amend=True).plan(
        asks_only, [(f"s{i}", "sell", 110.0 + i, 1.0) for i in range(3)]
    )
    # 12 places: a 6-level ladder on each side.
    places = OrderPlanner("p-").plan(
        QuoteGenerator("ladder", tick_size="0.01", lot_size="0.01", orders_per_side=6).quote(100.0, balance=10_000), []
    )
    assert ([a.kind for a in cancels], [a.kind for a in amends], [a.kind for a in places]) == (
        ["cancel"] * 7,
        ["amend"] * 3,
        ["place"] * 12,
    )
    mixed = places[:4] + amends[:1] + cancels[:3] + places[4:] + cancels[3:] + amends[1:]
    for batch_size, sizes in [(5, [5, 2, 3, 5, 5, 2]), (10, [7, 3, 10, 2])]:
        planner = OrderPlanner("b-", batch_size=batch_size)
        batches = planner.batches(mixed)
        assert [len(b) for b in batches] == sizes
        assert all(len({a.kind for a in b}) == 1 for b in batches)
        # Cancels first, then amends, then places, each kind in its given order.
        assert [a for b in batches for a in b] == cancels + amends + places
    assert OrderPlanner("b-").batches(places[:5]) == [places[:5]]  # Binance's 5 is the default
    assert OrderPlanner("b-").batches([]) == []


# ---------------------------------------------------------------------------------------------
# 5. RateLimiter
# ---------------------------------------------------------------------------------------------

SECOND = 1_000_000_000


def test_rate_limiter_calls_refill_over_time() -> None:
    limiter = RateLimiter(2, cancel_reserve=0.0)
    assert limiter.headroom(0) == (1.0, 1.0, 1.0)
    assert limiter.try_send(0, "orders") and limiter.try_send(0, "orders")
    assert not limiter.try_send(0, "orders")  # two calls per second
    assert limiter.headroom(0)[0] == pytest.approx(0.0, abs=1e-12)
    assert not limiter.try_send(SECOND // 4, "orders")  # half a call refilled
    assert limiter.try_send(SECOND // 2, "orders")  # one call refilled
    assert not limiter.try_send(SECOND // 2, "orders")
    # Refill stops at the capacity: after 10 s, two calls, not twenty.
    assert limiter.headroom(10 * SECOND)[0] == pytest.approx(1.0)
    assert limiter.try_send(10 * SECOND, "orders") and limiter.try_send(10 * SECOND, "orders")
    assert not limiter.try_send(10 * SECOND, "orders")


def test_rate_limiter_weight_and_order_buckets_refill() -> None:
    limiter = RateLimiter(1000, weight_per_min=60, orders_per_10s=10, cancel_reserve=0.0)
    assert limiter.try_send(0, "orders", orders=1, weight=60)
    assert not limiter.try_send(0, "orders", orders=1, weight=1)  # no weight left
    assert limiter.try_send(SECOND, "orders", orders=1, weight=1)  # 60/min = 1 per second
    limiter = RateLimiter(1000, weight_per_min=1e6, orders_per_10s=10, cancel_reserve=0.0)
    assert limiter.try_send(0, "orders", orders=10)
    assert not limiter.try_send(0, "orders", orders=1)  # 10 orders per 10 s used
    assert not limiter.try_send(SECOND // 2, "orders", orders=1)
    assert limiter.try_send(SECOND, "orders", orders=1)  # one order per second refills
    assert limiter.headroom(SECOND)[2] == pytest.approx(0.0, abs=1e-9)
    assert limiter.headroom(6 * SECOND)[2] == pytest.approx(0.5)


def test_rate_limiter_headroom_values() -> None:
    limiter = RateLimiter(4, weight_per_min=2400, orders_per_10s=300, cancel_reserve=0.2)
    assert limiter.try_send(0, "orders", orders=5, weight=5)
    assert limiter.headroom(0) == pytest.approx((3 / 4, 2395 / 2400, 295 / 300), rel=1e-12)
    # A cancel batch takes a call and weight, not orders.
    assert limiter.try_send(0, "cancels", orders=5, weight=1)
    assert limiter.headroom(0) == pytest.approx((2 / 4, 2394 / 2400, 295 / 300), rel=1e-12)
    # 125 ms later: + 4/s × 0.125 = 0.5 call, + 2400/60 × 0.125 = 5 weight, + 300/10 × 0.125 = 3.75 orders.
    assert limiter.headroom(SECOND // 8) == pytest.approx((2.5 / 4, 2399 / 2400, 298.75 / 300), rel=1e-12)
    # One second later everything is back to capacity, and no further.
    assert limiter.headroom(SECOND + SECOND // 8) == pytest.approx((1.0, 1.0, 1.0), rel=1e-12)


def test_cancel_reserve_blocks_orders_but_not_cancels() -> None:
    # Orders bucket 100 with 20 % reserved: four batches of 20 orders take it to the reserve.
    limiter = RateLimiter(1000, weight_per_min=1e6, orders_per_10s=100, cancel_reserve=0.2)
    assert all(limiter.try_send(0, "orders", orders=20) for _ in range(4))
    assert not limiter.try_send(0, "orders", orders=20)
    assert not limiter.try_send(0, "orders", orders=1)
    assert limiter.try_send(0, "cancels", orders=20)  # cancels still pass
    # Weight bucket 100 with 25 % reserved.
    limiter = RateLimiter(1000, weight_per_min=100, orders_per_10s=1e6, cancel_reserve=0.25)
    assert all(limiter.try_send(0, "orders", weight=25) for _ in range(3))
    assert not limiter.try_send(0, "orders", weight=1)
    assert limiter.try_send(0, "cancels", weight=25)  # the reserve is the cancels'
    assert not limiter.try_send(0, "cancels", weight=1)  # and then it is empty
    # Calls bucket 10 per second with 20 % reserved: 8 order calls, then only cancels.
    limiter = RateLimiter(10, cancel_reserve=0.2)
    assert sum(limiter.try_send(0, "orders") for _ in range(20)) == 8
    assert sum(limiter.try_send(0, "cancels") for _ in range(20)) == 2


def test_observe_usage_lowers_the_buckets() -> None:
    limiter = RateLimiter(1000, weight_per_min=2400, orders_per_10s=300, cancel_reserve=0.2)
    limiter.observe_usage(0, used_weight_1m=2000)
    assert limiter.headroom(0)[1] == pytest.approx(400 / 2400)
    assert not limiter.try_send(0, "orders")  # 400 left is under the 480 reserve
    assert limiter.try_send(0, "cancels")
    limiter.observe_usage(0, order_count_10s=290)
    assert limiter.headroom(0)[2] == pytest.approx(10 / 300)
    # Reports of less use than we counted do not raise the buckets.
    limiter = RateLimiter(1000, weight_per_min=2400, orders_per_10s=300)
    assert limiter.try_send(0, "orders", orders=50, weight=100)
    limiter.observe_usage(0, used_weight_1m=10, order_count_10s=5)
    assert limiter.headroom(0)[1:] == pytest.approx((2300 / 2400, 250 / 300))
    # The buckets refill from there.
    limiter.observe_usage(0, used_weight_1m=2400, order_count_10s=300)
    assert limiter.headroom(0)[1:] == pytest.approx((0.0, 0.0), abs=1e-12)
    assert limiter.headroom(30 * SECOND)[1:] == pytest.approx((0.5, 1.0))


def test_block_for_stops_everything_for_the_pause() -> None:
    limiter = RateLimiter(100)
    limiter.block_for(0, 2 * SECOND)
    assert not limiter.try_send(SECOND, "orders")
    assert not limiter.try_send(SECOND, "cancels")
    limiter.block_for(SECOND, SECOND // 2)  # a shorter pause does not end the longer one
    assert not limiter.try_send(2 * SECOND - 1, "cancels")
    assert limiter.try_send(2 * SECOND, "cancels")
    assert limiter.try_send(2 * SECOND, "orders")


def test_rate_limiter_paces_a_rate_below_one_call_per_second() -> None:
    # The seed's rate_limit of 0.5 batch calls per second: one call every two seconds. Tried every
    # 100 ms for 10 s, about five calls go (one more if the bucket starts with a whole call).
    limiter = RateLimiter(0.5, cancel_reserve=0.0)
    sent = [t for t in range(0, 10 * SECOND, SECOND // 10) if limiter.try_send(t, "cancels")]
    assert 4 <= len(sent) <= 6, sent
    assert all(b - a >= 2 * SECOND - 1 for a, b in zip(sent[1:], sent[2:])), sent


def test_rate_limiter_validation() -> None:
    for reserve in (1.0, -0.1, 1.5):
        with pytest.raises(InvalidParameterError, match="cancel_reserve"):
            RateLimiter(5, cancel_reserve=reserve)
    for kwargs in ({"weight_per_min": 0.0}, {"orders_per_10s": -1.0}):
        with pytest.raises(InvalidParameterError):
            RateLimiter(5, **kwargs)
    with pytest.raises(InvalidParameterError):
        RateLimiter(0)
    with pytest.raises(ValueError, match="kind"):
        RateLimiter(5).try_send(0, "everything")


# ---------------------------------------------------------------------------------------------
# 6. RiskGate
# ---------------------------------------------------------------------------------------------


def place(side: str, size: float, mid: float = 100.0) -> OrderAction:
    """A place of ``size`` at one tick from ``mid`` (buy 99.99, sell 100.01 around 100)."""
    actions = OrderPlanner("r-").plan(simple_quotes(size=size, mid=mid), [])
    (action,) = [a for a in actions if side_name(a.side) == side]
    assert action.kind == "place" and action.size == size
    return action


def cancel(side: str = "buy") -> OrderAction:
    (action,) = OrderPlanner("r-").plan(
        QuoteGenerator("ladder", tick_size="0.01", lot_size="0.01").quote(100.0), [("gone", side, 90.0, 1.0)]
    )
    assert action.kind == "cancel"
    return action


def amend(side: str, size: float) -> OrderAction:
    actions = OrderPlanner("r-", supports_amend=True).plan(
        simple_quotes(size=size), [("live", side, 90.0 if side == "buy" else 110.0, 1.0)]
    )
    (action,) = [a for a in actions if a.kind == "amend"]
    return action


def test_max_order_size() -> None:
    gate = RiskGate(max_order_size=1.5)
    big, ok, big_amend = place("buy", 2.0), place("sell", 1.5), amend("buy", 2.0)
    allowed, refused = gate.filter([big, ok, big_amend, cancel()])
    assert allowed == [ok, cancel()]
    assert [a for a, _ in refused] == [big, big_amend]
    assert all("max_order_size" in reason for _, reason in refused)


def test_max_position() -> None:
    gate = RiskGate(max_position=2.0)
    # From +1.5: buying 1 makes 2.5 > 2; buying 0.5 makes 2 (at the limit); selling 1 reduces;
    # selling 4 flips to −2.5 > 2.
    buy_1, buy_half, sell_1, sell_4 = place("buy", 1.0), place("buy", 0.5), place("sell", 1.0), place("sell", 4.0)
    allowed, refused = gate.filter([buy_1, buy_half, sell_1, sell_4], position=1.5)
    assert allowed == [buy_half, sell_1]
    assert [a for a, _ in refused] == [buy_1, sell_4]
    assert all("max_position" in reason for _, reason in refused)
    # Reducing an oversized position is always allowed.
    allowed, _ = gate.filter([sell_1], position=5.0)
    assert allowed == [sell_1]


def test_max_position_notional() -> None:
    gate = RiskGate(max_position_notional=150.0)
    # From +1 at ~100: buy 1 → 2 × 99.99 = 199.98 > 150 refused; sell 1 → 0 allowed;
    # from −1: sell 1 → −2 × 100.01 refused; buy 0.4 → −0.6 allowed.
    allowed, refused = gate.filter([place("buy", 1.0), place("sell", 1.0)], position=1.0, mid=100.0)
    assert allowed == [place("sell", 1.0)]
    assert [a for a, _ in refused] == [place("buy", 1.0)]
    assert "max_position_notional" in refused[0][1]
    allowed, refused = gate.filter([place("sell", 1.0), place("buy", 0.4)], position=-1.0, mid=100.0)
    assert allowed == [place("buy", 0.4)]
    assert "max_position_notional" in refused[0][1]


def test_max_open_orders() -> None:
    gate = RiskGate(max_open_orders=3)
    first, second = place("buy", 1.0), place("sell", 1.0)
    # 2 open: one more fits, the next would be a fourth.
    allowed, refused = gate.filter([first, second], open_orders=2)
    assert allowed == [first]
    assert [a for a, _ in refused] == [second] and "max_open_orders" in refused[0][1]
    # A cancel first frees a slot; an amend is not a new order.
    allowed, refused = gate.filter([cancel(), first, second], open_orders=3)
    assert allowed == [cancel(), first] and len(refused) == 1
    allowed, refused = gate.filter([amend("buy", 1.0)], open_orders=3)
    assert len(allowed) == 1 and refused == []


def test_limits_of_zero_are_off() -> None:
    gate = RiskGate()
    actions = [place("buy", 1e6), place("sell", 5e5)]
    assert gate.filter(actions, position=1e7, open_orders=10_000, mid=100.0) == (actions, [])


HALT_CONDITIONS: list[tuple[str, dict[str, Any], dict[str, Any]]] = [
    # (reason, gate limits, check arguments that trigger it)
    ("book_resync", {}, dict(book_needs_resync=True)),
    ("crossed_book", {}, dict(book_crossed=True)),
    ("stale_book", dict(stale_book_ms=1000.0), dict(now_ns=2 * SECOND, book_updated_ns=SECOND - 1)),
    ("stale_book", dict(stale_book_ms=1000.0), dict(now_ns=2 * SECOND, book_updated_ns=None)),
    ("volatility", dict(max_volatility=0.01), dict(volatility=0.0101)),
]


def healthy(**overrides: Any) -> dict[str, Any]:
    state: dict[str, Any] = dict(now_ns=2 * SECOND, book_updated_ns=2 * SECOND - 1, equity=1000.0, mid=100.0)
    state.update(overrides)
    return state


@pytest.mark.parametrize(("reason", "limits", "trigger"), HALT_CONDITIONS)
def test_halts_latch_until_reset(reason: str, limits: dict[str, Any], trigger: dict[str, Any]) -> None:
    gate = RiskGate(**limits)
    assert gate.check(**healthy()) is None and gate.halted is None
    assert gate.check(**healthy(**trigger)) == reason
    assert gate.halted == reason and gate.halt_detail
    # Reported once; stays set while the condition lasts and after it clears.
    assert gate.check(**healthy(**trigger)) is None
    assert gate.check(**healthy()) is None
    assert gate.halted == reason
    allowed, refused = gate.filter([place("buy", 1.0), cancel(), amend("sell", 1.0)])
    assert allowed == [cancel()]
    assert len(refused) == 2 and all(reason in why for _, why in refused)
    gate.reset()
    assert gate.halted is None and gate.halt_detail is None
    assert gate.filter([place("buy", 1.0)]) == ([place("buy", 1.0)], [])
    assert gate.check(**healthy()) is None
    assert gate.check(**healthy(**trigger)) == reason  # latches again after a reset


def test_no_halt_short_of_the_thresholds() -> None:
    gate = RiskGate(stale_book_ms=1000.0, max_volatility=0.01, max_drawdown=50.0)
    assert gate.check(**healthy(now_ns=2 * SECOND, book_updated_ns=SECOND + 1)) is None  # 0.999999 s
    assert gate.check(**healthy(volatility=0.01)) is None
    assert gate.check(**healthy(equity=1000.0)) is None
    assert gate.check(**healthy(equity=950.0)) is None  # exactly max_drawdown below the peak
    assert gate.halted is None


def test_drawdown_from_the_peak_latches() -> None:
    gate = RiskGate(max_drawdown=50.0)
    assert gate.check(**healthy(equity=1000.0)) is None
    assert gate.check(**healthy(equity=1100.0)) is None  # new peak
    assert gate.check(**healthy(equity=1060.0)) is None  # 40 below the peak
    assert gate.check(**healthy(equity=1049.0)) == "drawdown"  # 51 below
    assert gate.halted == "drawdown"
    assert gate.check(**healthy(equity=1200.0)) is None and gate.halted == "drawdown"
    gate.reset()
    assert gate.halted is None


def test_manual_halt() -> None:
    gate = RiskGate()
    assert gate.halt("operator said stop") is True
    assert gate.halted == "manual" and gate.halt_detail == "operator said stop"
    assert gate.halt("again") is False  # already halted
    assert gate.check(**healthy()) is None and gate.halted == "manual"
    assert gate.filter([place("buy", 1.0), cancel()])[0] == [cancel()]
    gate.reset()
    assert gate.halted is None
    assert gate.halt("vol spike", reason="volatility") is True and gate.halted == "volatility"
    with pytest.raises(ValueError):
        RiskGate().halt("x", reason="lunch")


def test_reduce_only_orders_pass_a_halted_gate_when_allowed() -> None:
    sell_1, buy_1, sell_2, sell_3 = place("sell", 1.0), place("buy", 1.0), place("sell", 2.0), place("sell", 3.0)
    gate = RiskGate(allow_reduce_only_when_halted=True)
    gate.halt("operator")
    # Long 2: selling 1 or 2 reduces; buying adds; selling 3 flips the position.
    allowed, refused = gate.filter([sell_1, buy_1, sell_2, sell_3, cancel()], position=2.0)
    assert allowed == [sell_1, sell_2, cancel()]
    assert [a for a, _ in refused] == [buy_1, sell_3]
    # Flat: nothing reduces.
    assert gate.filter([sell_1, buy_1], position=0.0)[0] == []
    # Not allowed: only cancels.
    strict = RiskGate()
    strict.halt("operator")
    assert strict.filter([sell_1, cancel()], position=2.0)[0] == [cancel()]


@pytest.mark.parametrize("sign", [1.0, -1.0], ids=["long", "short"])
def test_reduce_only_is_symmetric_and_may_close_the_position(sign: float) -> None:
    # Long 2 (short 2): orders on the other side of size 1 or exactly 2 only reduce the position
    # (2 closes it to flat); size 3 flips it; the same side adds.
    reduce_side, add_side = ("sell", "buy") if sign > 0 else ("buy", "sell")
    reduce_1, close_2, flip_3, add_1 = (
        place(reduce_side, 1.0),
        place(reduce_side, 2.0),
        place(reduce_side, 3.0),
        place(add_side, 1.0),
    )
    gate = RiskGate(allow_reduce_only_when_halted=True)
    gate.halt("operator")
    allowed, refused = gate.filter([reduce_1, close_2, flip_3, add_1], position=2.0 * sign)
    assert allowed == [reduce_1, close_2], refused
    assert [a for a, _ in refused] == [flip_3, add_1]


def reduces(position: float, action: OrderAction) -> bool:
    """An order that only brings the position towards zero (never past it)."""
    assert action.size is not None
    return position != 0 and action.side.sign * position < 0 and action.size <= abs(position)


@PLANNER_PROPERTY
@given(
    case=planner_cases(),
    position=st.floats(-50, 50),
    open_orders=st.integers(0, 30),
    reason=st.sampled_from(["manual", "drawdown", "stale_book", "volatility", "crossed_book", "book_resync"]),
    allow_reduce_only=st.booleans(),
    by_check=st.booleans(),
    limits=st.fixed_dictionaries(
        {
            "max_position": st.sampled_from([0.0, 1.0, 100.0]),
            "max_order_size": st.sampled_from([0.0, 0.5, 100.0]),
            "max_open_orders": st.sampled_from([0, 2, 50]),
        }
    ),
)
def test_nothing_but_cancels_and_reduce_only_passes_a_halted_gate(
    case: PlannerCase,
    position: float,
    open_orders: int,
    reason: str,
    allow_reduce_only: bool,
    by_check: bool,
    limits: dict[str, Any],
) -> None:
    actions = planner_for(case).plan(case.quote.quote(), live_input(case)[0])
    gate = RiskGate(
        allow_reduce_only_when_halted=allow_reduce_only,
        max_drawdown=10.0,
        max_volatility=0.01,
        stale_book_ms=1000.0,
        **limits,
    )
    if by_check and reason != "manual":
        # Latched by the market: the trigger of each halt (drawdown: 11 below a peak of 1000).
        triggers: dict[str, dict[str, Any]] = {
            "drawdown": dict(equity=989.0),
            "stale_book": dict(book_updated_ns=0),
            "volatility": dict(volatility=0.02),
            "crossed_book": dict(book_crossed=True),
            "book_resync": dict(book_needs_resync=True),
        }
        trigger = triggers[reason]
        assert gate.check(**healthy()) is None
        assert gate.check(**healthy(**trigger)) == reason
    else:
        assert gate.halt("property", reason=reason)
    assert gate.halted == reason
    allowed, refused = gate.filter(
        actions, position=position, open_orders=open_orders, mid=case.quote.inputs["best_bid"]
    )
    # A partition of the actions, each part in the given order.
    assert sorted(allowed + [a for a, _ in refused], key=actions.index) == actions
    for part in (allowed, [a for a, _ in refused]):
        positions = [actions.index(a) for a in part]
        assert positions == sorted(positions)
    for action in allowed:
        assert action.kind == "cancel" or (allow_reduce_only and reduces(position, action)), action
    assert all(a.kind != "cancel" for a, _ in refused)
    for action, why in refused:
        if not (allow_reduce_only and reduces(position, action)):
            assert "halted" in why and reason in why, why


# ---------------------------------------------------------------------------------------------
# 7. Parameter validation
# ---------------------------------------------------------------------------------------------

BAD_PARAMETERS: list[tuple[str, str, Any]] = [
    ("ladder", "bps", 0.0),
    ("ladder", "bps", -5.0),
    ("ladder", "bps", math.nan),
    ("ladder", "bps", math.inf),
    ("ladder", "vol_widening", -0.1),
    ("ladder", "orders_per_side", 0),
    ("ladder", "orders_per_side", 101),
    ("ladder", "orders_per_side", -1),
    ("ladder", "orders_per_side", 2.5),
    ("ladder", "final_order_distance", 0.99),
    ("ladder", "final_order_distance", math.nan),
    ("ladder", "leverage", 0.0),
    ("ladder", "size_fraction", -0.1),
    ("ladder", "inventory_adjustment", -0.63),
    ("ladder", "inventory_limit", 0.0),
    ("ladder", "skew_shift", -1.0),
    ("ladder", "anchor", "last"),
    ("avellaneda_stoikov", "gamma", 0.0),
    ("avellaneda_stoikov", "gamma", -0.1),
    ("avellaneda_stoikov", "kappa", 0.0),
    ("avellaneda_stoikov", "horizon", -1.0),
    ("avellaneda_stoikov", "order_size", 0.0),
    ("avellaneda_stoikov", "orders_per_side", 0),
    ("avellaneda_stoikov", "level_spacing_bps", -1.0),
    ("avellaneda_stoikov", "max_inventory", 0.0),
    ("avellaneda_stoikov", "rolling", "yes"),
    ("glft", "gamma", -1.0),
    ("glft", "kappa", math.inf),
    ("glft", "arrival_rate", 0.0),
    ("glft", "order_size", -1.0),
    ("glft", "orders_per_side", 0),
    ("glft", "level_spacing_bps", -0.5),
    ("glft", "max_inventory", -3.0),
]


@pytest.mark.parametrize(("model", "name", "value"), BAD_PARAMETERS)
def test_out_of_range_parameters_are_refused_by_name(model: str, name: str, value: Any) -> None:
    with pytest.raises(InvalidParameterError, match=name):
        QuoteGenerator(model, tick_size="0.01", lot_size="0.01", **{name: value})
    generator = QuoteGenerator(model, tick_size="0.01", lot_size="0.01")
    before = generator.params
    with pytest.raises(InvalidParameterError, match=name):
        generator.set_params(**{name: value})
    assert generator.params == before and generator.model == model


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("ladder", "gamma"),
        ("ladder", "bsp"),
        ("avellaneda_stoikov", "arrival_rate"),
        ("avellaneda_stoikov", "bps"),
        ("glft", "horizon"),
        ("glft", "rolling"),
    ],
)
def test_unknown_parameter_names_are_refused(model: str, name: str) -> None:
    with pytest.raises(InvalidParameterError, match=name):
        QuoteGenerator(model, tick_size="0.01", lot_size="0.01", **{name: 1.0})
    generator = QuoteGenerator(model, tick_size="0.01", lot_size="0.01")
    before = generator.params
    with pytest.raises(InvalidParameterError, match=name):
        generator.set_params(**{name: 1.0})  # type: ignore[arg-type]
    assert generator.params == before


def test_unknown_model_is_refused() -> None:
    with pytest.raises(InvalidParameterError, match="stoikov2"):
        QuoteGenerator("stoikov2", tick_size="0.01", lot_size="0.01")
    generator = QuoteGenerator("ladder", tick_size="0.01", lot_size="0.01", bps=7)
    with pytest.raises(InvalidParameterError, match="stoikov2"):
        generator.set_params(model="stoikov2")
    assert generator.model == "ladder" and generator.params["bps"] == 7


def test_set_params_is_all_or_nothing_and_keeps_the_rest() -> None:
    generator = QuoteGenerator("ladder", tick_size="0.01", lot_size="0.01", bps=7, orders_per_side=3)
    before = generator.params
    quotes_before = generator.quote(100.0, balance=10_000)
    # One bad value among good ones: nothing changes.
    with pytest.raises(InvalidParameterError, match="orders_per_side"):
        generator.set_params(bps=12, orders_per_side=0)
    assert generator.params == before
    assert generator.quote(100.0, balance=10_000) == quotes_before
    # A good change keeps the other parameters.
    generator.set_params(bps=12)
    assert generator.params == {**before, "bps": 12.0}
    # Switching model with parameters of the old one is refused; with its own it works.
    with pytest.raises(InvalidParameterError, match="bps"):
        generator.set_params(model="glft", bps=3)
    assert generator.model == "ladder"
    generator.set_params(model="glft", gamma=0.2)
    assert generator.model == "glft" and generator.params["gamma"] == 0.2


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("min_size", -1.0),
        ("min_notional", -5.0),
        ("min_notional", math.nan),
        ("price_band", -0.01),
        ("lot_size", 0),
        ("lot_size", "-1"),
    ],
)
def test_instrument_rules_are_validated(name: str, value: Any) -> None:
    kwargs: dict[str, Any] = dict(tick_size="0.01", lot_size="0.01")
    kwargs[name] = value
    with pytest.raises(InvalidParameterError, match=name):
        QuoteGenerator("ladder", **kwargs)


@pytest.mark.parametrize("model", ["ladder", "avellaneda_stoikov", "glft"])
@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("mid", math.nan),
        ("mid", -100.0),
        ("mid", 0.0),
        ("mid", math.inf),
        ("best_bid", math.nan),
        ("best_bid", -1.0),
        ("best_ask", -1.0),
        ("best_ask", math.inf),
        ("microprice", math.nan),
        ("microprice", -100.0),
        ("volatility", math.nan),
        ("volatility", -0.1),
        ("inventory", math.nan),
        ("inventory", math.inf),
        ("skew", math.nan),
        ("balance", math.nan),
        ("balance", -10.0),
        ("time_left", -0.5),
        ("time_left", math.nan),
        ("reference_price", math.nan),
        ("reference_price", -100.0),
    ],
)
def test_nonsense_market_inputs_raise_instead_of_quoting(model: str, name: str, value: float) -> None:
    generator = QuoteGenerator(model, tick_size="0.01", lot_size="0.01")
    inputs: dict[str, Any] = dict(mid=100.0, best_bid=99.99, best_ask=100.01, balance=10_000.0, volatility=0.1)
    inputs[name] = value
    with pytest.raises(InvalidInputError, match=name):
        generator.quote(**inputs)


def test_quote_needs_a_mid_or_both_sides() -> None:
    generator = QuoteGenerator("ladder", tick_size="0.01", lot_size="0.01")
    with pytest.raises((ValueError, MarketMakerError)):
        generator.quote(best_bid=99.0)
    with pytest.raises((ValueError, MarketMakerError)):
        generator.quote()
    # Both sides give the mid (99 + 101) / 2 = 100.
    assert generator.quote(best_bid=99.0, best_ask=101.0, balance=1e4) == generator.quote(
        100.0, best_bid=99.0, best_ask=101.0, balance=1e4
    )


# ---------------------------------------------------------------------------------------------
# 8. quote_from
# ---------------------------------------------------------------------------------------------


def touch(book: OrderBook) -> tuple[float, float, float, float]:
    """Best bid, best ask, mid and microprice of a book with both sides."""
    values = (book.best_bid, book.best_ask, book.mid, book.microprice)
    assert None not in values
    return values  # type: ignore[return-value]


def live_market() -> tuple[OrderBook, FeatureEngine]:
    """A book that walks a few ticks, and a feature engine that has seen it (σ > 0, skew ≠ 0)."""
    book = OrderBook("TEST", "0.01")
    book.apply_snapshot([(100.0, 5), (99.99, 3)], [(100.01, 1), (100.02, 4)])
    engine = FeatureEngine(depths=[1, 2], tick_window=20, volatility_half_life_s=1.0)
    rng = random.Random(1)
    time_ns = 0
    for _ in range(60):
        time_ns += 100_000_000
        bid = round(touch(book)[0] + rng.choice([-1, 0, 1]) * 0.01, 2)
        book.apply_levels(bids=[(bid, rng.randint(1, 9))], asks=[(round(bid + 0.01, 2), rng.randint(1, 9))])
        for price, _ in book.bids():
            if price > bid:
                book.set_level("buy", price, 0)
        for price, _ in book.asks():
            if price < bid + 0.005:
                book.set_level("sell", price, 0)
        engine.update(book, time_ns=time_ns)
    assert not book.is_crossed and engine.ready
    features = engine.features
    assert features.volatility > 0 and features.skew != 0 and book.microprice != book.mid
    return book, engine


def test_quote_from_uses_the_book_features_and_account() -> None:
    book, engine = live_market()
    features = engine.features
    account = Account(5_000.0)
    account.set_position(7.0, 100.0)
    generator = QuoteGenerator(
        "ladder",
        tick_size="0.01",
        lot_size="0.001",
        bps=3,
        vol_widening=2.0,
        anchor="microprice",
        orders_per_side=3,
        final_order_distance=3,
        inventory_limit=2.0,
    )
    explicit: dict[str, Any] = dict(
        mid=book.mid,
        best_bid=book.best_bid,
        best_ask=book.best_ask,
        microprice=book.microprice,
        inventory=7.0,
        volatility=features.volatility,
        skew=features.skew,
        balance=5_000.0,
    )
    expected = generator.quote(**explicit)
    assert expected.bids and expected.asks
    assert generator.quote_from(book, engine, account) == expected
    assert generator.quote_from(book, features, account) == expected
    # Each input matters, so the equality above says each was taken from the right place.
    for name, other in [
        ("microprice", book.mid),
        ("inventory", 0.0),
        ("volatility", 0.0),
        ("skew", 0.0),
        ("balance", 9_000.0),
    ]:
        changed = generator.quote(**{**explicit, name: other})
        assert changed != expected, name
    # Without features or account: no volatility, skew, position or balance.
    as_model = QuoteGenerator(
        "avellaneda_stoikov", tick_size="0.01", lot_size="1", gamma=0.1, kappa=1.5, horizon=1.0, rolling=False
    )
    best_bid, best_ask, mid, microprice = touch(book)
    bare: dict[str, Any] = dict(mid=mid, best_bid=best_bid, best_ask=best_ask, microprice=microprice)
    assert as_model.quote_from(book) == as_model.quote(**bare)
    assert as_model.quote_from(book) != as_model.quote(**bare, volatility=features.volatility, time_left=1.0)
    # time_left and reference_price pass through.
    assert as_model.quote_from(book, engine, account, time_left=0.4, reference_price=100.0) == as_model.quote(
        **bare,
        inventory=7.0,
        volatility=features.volatility,
        skew=features.skew,
        balance=5_000.0,
        time_left=0.4,
        reference_price=100.0,
    )


@pytest.mark.parametrize("position", [-50.0, 50.0])
def test_quote_from_keeps_the_books_best_prices_for_post_only(position: float) -> None:
    # A large γ with a large position moves the reservation price beyond the book:
    # r = S − q γ σ² (T − t), |q γ σ²| = 50 × 10⁴ × σ² (σ ≈ 2.6e-4 here: ≈ 0.034, several ticks), while
    # κ = 10⁸ keeps the spread tiny. Post-only then holds the inner quote one tick inside the book,
    # which only the book's best bid and ask can tell.
    book, engine = live_market()
    account = Account(5_000.0)
    account.set_position(position, 100.0)
    generator = QuoteGenerator(
        "avellaneda_stoikov",
        tick_size="0.01",
        lot_size="1",
        gamma=1e4,
        kappa=1e8,
        horizon=1.0,
        rolling=True,
        max_inventory=1e6,
    )
    best_bid, best_ask, mid, microprice = touch(book)
    explicit: dict[str, Any] = dict(
        mid=mid,
        best_bid=best_bid,
        best_ask=best_ask,
        microprice=microprice,
        inventory=position,
        volatility=engine.features.volatility,
        balance=5_000.0,
        skew=engine.features.skew,
    )
    expected = generator.quote(**explicit)
    assert generator.quote_from(book, engine, account) == expected
    if position < 0:  # the bid is held just under the best ask
        assert expected.bids[0][0] == grid(round(best_ask / 0.01) - 1, "0.01")
        assert generator.quote(**{**explicit, "best_ask": best_ask + 0.5}) != expected
    else:  # the ask just over the best bid
        assert expected.asks[0][0] == grid(round(best_bid / 0.01) + 1, "0.01")
        assert generator.quote(**{**explicit, "best_bid": best_bid - 0.5}) != expected


def test_quote_from_a_book_with_an_empty_side_raises() -> None:
    book = OrderBook("TEST", "0.01")
    book.apply_snapshot([(100.0, 1.0)], [])
    with pytest.raises((ValueError, MarketMakerError)):
        QuoteGenerator("ladder", tick_size="0.01", lot_size="0.01").quote_from(book)
