"""An independent, deliberately plain Python reference of the feature definitions in
``docs/features.md``, used by ``tests/test_features.py``.

It is written from the document's formulas, not from the Rust engine: a dict book keyed by
integer ticks, every window recomputed from scratch on every tick with exactly rounded sums
(``math.fsum``), the volatility as a two-pass sample standard deviation, the EWMA return taken
as one log ratio of mids. Slow (O(window) per tick) and simple on purpose.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

# A level: (price in integer ticks, price, size); best level first.
Level = tuple[int, float, float]


class DictBook:
    """An L2 book as two dicts ``ticks -> (price, size)`` (a size of 0 deletes the level), with
    each side's ticks also kept in an ascending list so that reading the top is a slice."""

    def __init__(self, tick_size: float) -> None:
        self.tick_size = tick_size
        self.levels: dict[bool, dict[int, tuple[float, float]]] = {True: {}, False: {}}
        self.sorted_ticks: dict[bool, list[int]] = {True: [], False: []}

    def set_level(self, is_bid: bool, price: float, size: float) -> None:
        ticks = round(price / self.tick_size)
        levels, keys = self.levels[is_bid], self.sorted_ticks[is_bid]
        if size == 0.0:
            if levels.pop(ticks, None) is not None:
                del keys[bisect.bisect_left(keys, ticks)]
        else:
            if ticks not in levels:
                bisect.insort(keys, ticks)
            levels[ticks] = (price, size)

    def top(self, is_bid: bool, depth: int) -> list[Level]:
        """The best ``depth`` levels, best first: the highest bids, the lowest asks."""
        levels, keys = self.levels[is_bid], self.sorted_ticks[is_bid]
        best_first = keys[::-1][:depth] if is_bid else keys[:depth]
        return [(key, *levels[key]) for key in best_first]


@dataclass
class TickInput:
    """What the engine sees at one tick: the top levels of each side (best first), the tick's
    time, and the trades that reached the tape since the previous tick as
    ``(price, size, aggressor_bought)``."""

    bids: list[Level]
    asks: list[Level]
    time_ns: int
    trades: list[tuple[float, float, bool]] = field(default_factory=list)


def ofi_e(bid: Level, prev_bid: Level, ask: Level, prev_ask: Level) -> tuple[float, float]:
    """CKS: ``e = 1[b' >= b] Vb' - 1[b' <= b] Vb - 1[a' <= a] Va' + 1[a' >= a] Va``, and the
    sum of its terms' absolute values."""
    b1, vb1 = bid[0], bid[2]
    b0, vb0 = prev_bid[0], prev_bid[2]
    a1, va1 = ask[0], ask[2]
    a0, va0 = prev_ask[0], prev_ask[2]
    terms = []
    if b1 >= b0:
        terms.append(vb1)
    if b1 <= b0:
        terms.append(-vb0)
    if a1 <= a0:
        terms.append(-va1)
    if a1 >= a0:
        terms.append(va0)
    return math.fsum(terms), math.fsum(abs(term) for term in terms)


def voi_e(bid: Level, prev_bid: Level, ask: Level, prev_ask: Level) -> tuple[float, float]:
    """Shen: ``dVb - dVa``, and the sum of its terms' absolute values."""
    if bid[0] < prev_bid[0]:
        d_bid: list[float] = []
    elif bid[0] == prev_bid[0]:
        d_bid = [bid[2], -prev_bid[2]]
    else:
        d_bid = [bid[2]]
    if ask[0] < prev_ask[0]:
        d_ask = [ask[2]]
    elif ask[0] == prev_ask[0]:
        d_ask = [ask[2], -prev_ask[2]]
    else:
        d_ask = []
    terms = d_bid + [-term for term in d_ask]
    return math.fsum(terms), math.fsum(abs(term) for term in terms)


def imbalance(bids: Sequence[Level], asks: Sequence[Level], depth: int, level_decay: float) -> float:
    weights = [math.exp(-level_decay * i) for i in range(depth)]
    bid = math.fsum(w * level[2] for w, level in zip(weights, bids[:depth]))
    ask = math.fsum(w * level[2] for w, level in zip(weights, asks[:depth]))
    total = bid + ask
    return (bid - ask) / total if total > 0 else 0.0


def ratio_or_zero(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else 0.0


# Columns the reference computes, and for the order-flow sums the sum of the absolute values of
# their terms (the scale a near-zero sum is compared against).
SUM_SCALES = {"ofi": "ofi_abs", "deep_ofi": "deep_ofi_abs", "voi": "voi_abs"}


def reference_features(
    ticks: Iterable[TickInput],
    *,
    depths: Sequence[int] = (5, 50),
    tick_window: int = 100,
    level_decay: float = 0.0,
    ofi_levels: int = 5,
    volatility_half_life_s: float = 30.0,
) -> dict[str, list[float]]:
    """The features after every tick, by name (imbalances as ``imbalance_<depth>``), plus
    ``ofi_abs``/``deep_ofi_abs``/``voi_abs`` (Σ|terms| of the window's order-flow sums),
    ``var_scale`` (the volatility² computed with Σr² instead of Σ(r − r̄)², the r running over
    the last 2 × ``tick_window`` ticks: the returns whose rounding a rolling sum re-summed once
    per window length can still carry), ``touch_depth_mean`` and
    ``deep_depth_mean`` (the normalisations' denominators)."""
    out: dict[str, list[float]] = {}

    def put(name: str, value: float) -> None:
        out.setdefault(name, []).append(value)

    # Per-tick records; index k is the k-th tick (0-based).
    e_ofi: list[float] = []
    e_ofi_abs: list[float] = []
    e_deep: list[float] = []
    e_deep_abs: list[float] = []
    e_voi: list[float] = []
    e_voi_abs: list[float] = []
    touch_depth: list[float] = []
    deep_depth: list[float] = []
    returns: list[float | None] = []  # None: the first tick has no return
    gaps_s: list[float] = []
    # The trades, flattened in arrival order, and where each tick's trades start.
    buy_sizes: list[float] = []
    sell_sizes: list[float] = []
    notionals: list[float] = []
    trades_before_tick: list[int] = []
    previous: TickInput | None = None
    # EWMA state: the mid and time of the last tick at which v was updated (or the first tick).
    variance: float | None = None
    anchor_mid = 0.0
    anchor_time = 0

    for tick in ticks:
        bids, asks = tick.bids, tick.asks
        assert bids and asks, "the reference is fed two-sided ticks only"
        b, vb = bids[0][1], bids[0][2]
        a, va = asks[0][1], asks[0][2]
        mid = (a + b) / 2
        put("mid", mid)
        put("microprice", (a * vb + b * va) / (vb + va))
        top_b, top_a = bids[: depths[0]], asks[: depths[0]]
        sum_vb = math.fsum(level[2] for level in top_b)
        sum_va = math.fsum(level[2] for level in top_a)
        big_b = math.fsum(level[1] * level[2] for level in top_b) / sum_vb
        big_a = math.fsum(level[1] * level[2] for level in top_a) / sum_va
        put("weighted_mid", (big_b * sum_va + big_a * sum_vb) / (sum_vb + sum_va))
        put("spread_bps", (a - b) / mid * 1e4)
        for depth in depths:
            put(f"imbalance_{depth}", imbalance(bids, asks, depth, level_decay))

        touch_depth.append((vb + va) / 2)
        deep_depth.append(
            math.fsum([level[2] for level in bids[:ofi_levels]] + [level[2] for level in asks[:ofi_levels]]) / 2
        )
        trades_before_tick.append(len(buy_sizes))
        for price, size, bought in tick.trades:
            buy_sizes.append(size if bought else 0.0)
            sell_sizes.append(0.0 if bought else size)
            notionals.append(price * size)
        if previous is None:
            for record in (e_ofi, e_ofi_abs, e_deep, e_deep_abs, e_voi, e_voi_abs):
                record.append(0.0)
            returns.append(None)
            gaps_s.append(0.0)
            anchor_mid, anchor_time = mid, tick.time_ns
        else:
            pb, pa = previous.bids, previous.asks
            e, e_abs = ofi_e(bids[0], pb[0], asks[0], pa[0])
            e_ofi.append(e)
            e_ofi_abs.append(e_abs)
            # Levels present on both sides at both ticks.
            shared = min(len(bids), len(asks), len(pb), len(pa), ofi_levels)
            deep_terms = [ofi_e(bids[i], pb[i], asks[i], pa[i]) for i in range(shared)]
            e_deep.append(math.fsum(term for term, _ in deep_terms))
            e_deep_abs.append(math.fsum(term_abs for _, term_abs in deep_terms))
            e, e_abs = voi_e(bids[0], pb[0], asks[0], pa[0])
            e_voi.append(e)
            e_voi_abs.append(e_abs)
            previous_mid = (pa[0][1] + pb[0][1]) / 2
            returns.append(math.log(mid / previous_mid))
            gaps_s.append((tick.time_ns - previous.time_ns) / 1e9)
            # EWMA: only on ticks with elapsed time; R and Δt are measured from the last such
            # tick, so same-time ticks accumulate into the next update.
            elapsed_s = (tick.time_ns - anchor_time) / 1e9
            if elapsed_s > 0:
                rate = math.log(mid / anchor_mid) ** 2 / elapsed_s
                alpha = 1 - 2 ** (-elapsed_s / volatility_half_life_s)
                variance = rate if variance is None else (1 - alpha) * variance + alpha * rate
                anchor_mid, anchor_time = mid, tick.time_ns
        previous = tick

        # The window: the last `tick_window` ticks.
        start = max(0, len(e_ofi) - tick_window)
        window = range(start, len(e_ofi))
        n_ticks = len(window)
        ofi = math.fsum(e_ofi[start:])
        deep_ofi = math.fsum(e_deep[start:])
        voi = math.fsum(e_voi[start:])
        put("ofi", ofi)
        put("deep_ofi", deep_ofi)
        put("voi", voi)
        put("ofi_abs", math.fsum(e_ofi_abs[start:]))
        put("deep_ofi_abs", math.fsum(e_deep_abs[start:]))
        put("voi_abs", math.fsum(e_voi_abs[start:]))
        mean_touch = math.fsum(touch_depth[start:]) / n_ticks
        mean_deep = math.fsum(deep_depth[start:]) / n_ticks
        put("touch_depth_mean", mean_touch)
        put("deep_depth_mean", mean_deep)
        put("ofi_normalized", ratio_or_zero(ofi, mean_touch))
        put("deep_ofi_normalized", ratio_or_zero(deep_ofi, mean_deep))
        put("voi_normalized", ratio_or_zero(voi, mean_touch))

        first_trade = trades_before_tick[start]
        buy = math.fsum(buy_sizes[first_trade:])
        sell = math.fsum(sell_sizes[first_trade:])
        put("trade_imbalance", ratio_or_zero(buy - sell, buy + sell))
        put("trade_count", float(len(buy_sizes) - first_trade))
        volume = math.fsum(buy_sizes[first_trade:] + sell_sizes[first_trade:])
        vwap = math.fsum(notionals[first_trade:]) / volume if volume > 0 else mid
        put("vwap", vwap)
        put("basis_bps", (vwap - mid) / mid * 1e4)

        window_returns = [r for k in window if (r := returns[k]) is not None]
        window_gaps = [gaps_s[k] for k in window if returns[k] is not None]
        n = len(window_returns)
        elapsed = math.fsum(window_gaps)
        if n < 2 or elapsed <= 0:
            put("volatility", 0.0)
            put("var_scale", 0.0)
        else:
            mean = math.fsum(window_returns) / n
            squares = math.fsum((r - mean) ** 2 for r in window_returns)
            put("volatility", math.sqrt(squares / (n - 1) * n / elapsed))
            recent = [r for r in returns[max(0, len(returns) - 2 * tick_window) :] if r is not None]
            put("var_scale", math.fsum(r * r for r in recent) / (n - 1) * n / elapsed)
        put("volatility_ewma", math.sqrt(variance) if variance is not None else 0.0)
    return out


def dead_band(signal: float, band: float) -> float:
    """``d(s) = sign(s) · max(0, |s| − band) / (1 − band)``."""
    return math.copysign(max(0.0, abs(signal) - band) / (1 - band), signal)


SKEW_SIGNALS = ("imbalance", "deep_imbalance", "trade_imbalance", "voi", "deep_ofi", "prediction")


def skew(
    *,
    imbalances: Sequence[float],
    trade_imbalance: float,
    voi_normalized: float,
    deep_ofi_normalized: float,
    prediction_bps: float,
    weights: dict[str, float],
    band: float,
    prediction_scale_bps: float = 1.0,
) -> float:
    """``clip(Σ_k w_k · d(s_k), −1, 1)`` over the documented signals."""
    signals = {
        "imbalance": imbalances[0],
        "deep_imbalance": imbalances[-1],
        "trade_imbalance": trade_imbalance,
        "voi": math.tanh(voi_normalized),
        "deep_ofi": math.tanh(deep_ofi_normalized),
        "prediction": math.tanh(prediction_bps / prediction_scale_bps),
    }
    total = sum(weights[name] * dead_band(signals[name], band) for name in SKEW_SIGNALS)
    return min(1.0, max(-1.0, total))
