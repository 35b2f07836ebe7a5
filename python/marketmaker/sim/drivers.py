"""The market around the participants' orders: a seeded synthetic market, or a real recording.

Both drivers move an :class:`~marketmaker.sim.engine.Exchange`'s book through its background
liquidity calls and are advanced by ``step(now_ms)``: everything due by ``now_ms`` happens,
in order, at its own engine time. Nothing here reads a clock or sleeps, so a test drives a
market without an event loop and the protocol layer drives it from an asyncio task.

:class:`SyntheticMarket`
    A latent mid price — geometric Brownian motion with drift plus compound Poisson jumps —
    and background order flow around it: Poisson arrivals of limit orders at power-law
    distances (in ticks) from the latent mid, cancels of resting background orders (each at a
    constant rate, so the book holds about ``limit_rate / cancel_rate`` orders), and market
    orders with lognormal sizes whose direction leans toward the latent price when the book
    lags it. Limit orders placed where the book has lagged cross and trade, which keeps the
    book's mid on the latent price.
:class:`ReplayMarket`
    A Binance USDⓈ-M capture (``marketmaker.recordings`` format): the book is seeded from the
    inline REST snapshot and the bridged buffered updates (Binance's procedure), then
    recorded depth updates and trades are applied at their recorded exchange times, with the
    participants' orders queued behind the recorded liquidity (``docs/venue.md``, "Queue
    position in replay").
"""

from __future__ import annotations

import logging
import math
import random
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from marketmaker.errors import MalformedMessageError
from marketmaker.recordings import read_binance_capture
from marketmaker.sim.engine import Exchange

__all__ = ["RecordedStep", "ReplayMarket", "SyntheticMarket"]

logger = logging.getLogger(__name__)

#: Seconds in a year of continuous (crypto, 24/7) trading: annualised rates are per this.
SECONDS_PER_YEAR = 365 * 24 * 60 * 60


class SyntheticMarket:
    """A seeded synthetic market on one symbol of ``exchange``.

    Parameters
    ----------
    exchange : Exchange
        The venue; ``symbol`` must be one of its instruments.
    symbol : str
    seed : int
        Seeds ``random.Random``: the same seed and the same sequence of ``step`` times give
        the same market, event for event.
    initial_price : Decimal
        The latent mid at the start (rounded to the tick).
    volatility : float
        Annualised volatility of the latent mid's diffusion (e.g. 0.6 = 60 %/year, over a
        365-day year of seconds; per second it is ``volatility / sqrt(31_536_000)``).
    drift : float
        Annualised drift μ of the log price (``d log S = (μ − σ²/2) dt + σ dW``).
    jump_intensity : float
        Jumps per second (compound Poisson); each jump adds ``N(0, jump_size²)`` to the log
        price.
    jump_size : float
        Standard deviation of a jump in log price (0.002 = 0.2 %).
    limit_rate : float
        Background limit orders per second.
    cancel_rate : float
        Cancels per second per resting background order.
    market_rate : float
        Background market orders per second.
    placement_exponent : float
        μ of the limit orders' distance from the latent mid, in ticks: ``P(Δ ≥ d) = d^-μ``
        for ``d ≥ 1`` (a Pareto law, truncated at ``max_distance_ticks``). Bouchaud, Mézard
        and Potters (2002), "Statistical properties of stock order books: empirical results
        and models", measured placement densities ``∝ Δ^-(1+μ)`` with μ ≈ 0.6 on stocks: most
        orders near the touch, a heavy tail that keeps levels deep on both sides. The default
        0.4 has a heavier tail: at ~130 book changes a second it keeps hundreds of levels a
        side while the price moves tens of ticks a second.
    max_distance_ticks : int
        The farthest a new limit order is placed from the latent mid.
    median_order_lots, median_market_lots : float
        Medians of the lognormal sizes (in lots of ``step_size``) of limit and market orders.
    size_dispersion : float
        The lognormal sizes' σ (of log size).
    initial_levels : int
        Levels per side seeded at the start (one order each, one tick apart from ``initial_price``
        ± 1 tick).
    start_ms : int or None
        The engine time the market starts at (default: the exchange's clock).

    Notes
    -----
    With the defaults, on a 0.1 tick at 60,000 (BTCUSDT), seconds 20–140 of seeds 1–3 measured
    about 133 book changes and 105 trade prints per second, never fewer than 75 levels on the
    thinner side (median 200–260), a median spread of 4–5 ticks, and a realised volatility of
    the mid (1 s returns) of 0.78–1.04 × the configured one. The book holds a few hundred to a
    thousand background orders: most limit orders near the touch are traded, not cancelled.

    Examples
    --------
    >>> from decimal import Decimal as D
    >>> from marketmaker.sim import Exchange, Instrument
    >>> venue = Exchange([Instrument("BTCUSDT", tick_size=D("0.1"), step_size=D("0.001"))])
    >>> market = SyntheticMarket(venue, "BTCUSDT", seed=7, initial_price=D("60000"))
    >>> market.step(10_000)
    >>> bid, ask = venue.best_bid_ask("BTCUSDT")
    >>> bid[0] < ask[0]
    True
    """

    def __init__(
        self,
        exchange: Exchange,
        symbol: str,
        *,
        seed: int,
        initial_price: Decimal,
        volatility: float = 0.5,
        drift: float = 0.0,
        jump_intensity: float = 1 / 600,
        jump_size: float = 0.002,
        limit_rate: float = 120.0,
        cancel_rate: float = 0.01,
        market_rate: float = 4.0,
        placement_exponent: float = 0.4,
        max_distance_ticks: int = 1000,
        median_order_lots: float = 10.0,
        median_market_lots: float = 10.0,
        size_dispersion: float = 1.0,
        initial_levels: int = 200,
        start_ms: int | None = None,
    ) -> None:
        if symbol not in exchange.instruments:
            raise ValueError(f"SyntheticMarket: symbol {symbol!r} is not an instrument of the exchange")
        checks: dict[str, tuple[float, bool]] = {
            "volatility": (volatility, volatility >= 0),
            "jump_intensity": (jump_intensity, jump_intensity >= 0),
            "jump_size": (jump_size, jump_size >= 0),
            "limit_rate": (limit_rate, limit_rate > 0),
            "cancel_rate": (cancel_rate, cancel_rate > 0),
            "market_rate": (market_rate, market_rate >= 0),
            "placement_exponent": (placement_exponent, placement_exponent > 0),
            "max_distance_ticks": (max_distance_ticks, max_distance_ticks >= 1),
            "median_order_lots": (median_order_lots, median_order_lots >= 1),
            "median_market_lots": (median_market_lots, median_market_lots >= 1),
            "size_dispersion": (size_dispersion, size_dispersion >= 0),
            "initial_levels": (initial_levels, initial_levels >= 1),
        }
        for name, (value, valid) in checks.items():
            if not valid:
                raise ValueError(f"SyntheticMarket: {name} out of range: {value!r}")
        self.exchange = exchange
        self.symbol = symbol
        self.instrument = exchange.instruments[symbol]
        if initial_price <= 0:
            raise ValueError(f"SyntheticMarket: initial_price must be positive, got {initial_price}")
        self.random = random.Random(seed)
        self.volatility_per_second = volatility / math.sqrt(SECONDS_PER_YEAR)
        self.drift_per_second = drift / SECONDS_PER_YEAR
        self.jump_intensity = jump_intensity
        self.jump_size = jump_size
        self.limit_rate = limit_rate
        self.cancel_rate = cancel_rate
        self.market_rate = market_rate
        self.placement_exponent = placement_exponent
        self.max_distance_ticks = max_distance_ticks
        self.order_size_mu = math.log(median_order_lots)
        self.market_size_mu = math.log(median_market_lots)
        self.size_dispersion = size_dispersion
        self.stale_depth_levels = 50
        #: The latent mid, in ticks (a float: the price the book is pulled toward).
        initial_ticks = round(initial_price / self.instrument.tick_size)
        self.latent_ticks = float(initial_ticks)
        #: How many jumps the latent price has taken (for checking the configured intensity).
        self.jump_count = 0
        self._handles: list[int] = []  # background orders placed, resting or (until pruned) filled
        self._arrivals = 0
        self.now_ms = exchange.now_ms if start_ms is None else start_ms
        self._time_s = self.now_ms / 1000.0
        for distance in range(1, initial_levels + 1):
            self._add_limit("BUY", initial_ticks - distance)
            self._add_limit("SELL", initial_ticks + distance)
        self._next_event_s = self._time_s + self._wait()

    @property
    def latent_price(self) -> float:
        """The latent mid price (the level the synthetic flow is centred on)."""
        return self.latent_ticks * float(self.instrument.tick_size)

    def _wait(self) -> float:
        self._arrivals += 1
        if self._arrivals % 256 == 0:  # forget filled orders, so the cancel rate counts resting ones
            self._handles = [h for h in self._handles if self.exchange.background_resting(h)]
        total = self.limit_rate + self.cancel_rate * len(self._handles) + self.market_rate + self.jump_intensity
        return self.random.expovariate(total)

    def step(self, now_ms: int) -> None:
        """Runs the market up to ``now_ms``: every arrival due by then, each at its own time."""
        now_s = now_ms / 1000.0
        while self._next_event_s <= now_s:
            self._diffuse(self._next_event_s - self._time_s)
            self._time_s = self._next_event_s
            self.now_ms = max(self.now_ms, int(self._time_s * 1000))
            self._arrival()
            self._next_event_s = self._time_s + self._wait()
        self.now_ms = max(self.now_ms, now_ms)

    def _diffuse(self, dt: float) -> None:
        if dt <= 0:
            return
        sigma = self.volatility_per_second
        log_return = (self.drift_per_second - sigma * sigma / 2) * dt + sigma * math.sqrt(dt) * self.random.gauss(0, 1)
        self.latent_ticks *= math.exp(log_return)

    def _arrival(self) -> None:
        rates = (
            self.limit_rate,
            self.cancel_rate * len(self._handles),
            self.market_rate,
            self.jump_intensity,
        )
        pick = self.random.random() * sum(rates)
        if pick < rates[0]:
            side = "BUY" if self.random.random() < 0.5 else "SELL"
            distance = self._placement_distance()
            anchor = math.floor(self.latent_ticks) if side == "BUY" else math.ceil(self.latent_ticks)
            self._add_limit(side, anchor - distance + 1 if side == "BUY" else anchor + distance - 1)
        elif pick < rates[0] + rates[1]:
            while self._handles:  # a random resting order; filled ones are dropped on the way
                index = self.random.randrange(len(self._handles))
                handle = self._handles[index]
                self._handles[index] = self._handles[-1]
                self._handles.pop()
                if self.exchange.cancel_background(handle, self.now_ms):
                    break
        elif pick < rates[0] + rates[1] + rates[2]:
            self._market_order()
        else:
            self.latent_ticks *= math.exp(self.random.gauss(0, self.jump_size))
            self.jump_count += 1

    def _placement_distance(self) -> int:
        """A distance in ticks from the Pareto law ``P(Δ ≥ d) = d^-μ`` conditioned on
        ``Δ < max_distance_ticks + 1``."""
        tail = (self.max_distance_ticks + 1) ** -self.placement_exponent  # P(Δ ≥ max + 1)
        u = self.random.random()  # [0, 1): the truncated law's inverse CDF
        return int((1.0 - u * (1.0 - tail)) ** (-1.0 / self.placement_exponent))

    def _lots(self, mu: float) -> int:
        return max(1, round(self.random.lognormvariate(mu, self.size_dispersion)))

    def _add_limit(self, side: str, ticks: int) -> None:
        if ticks < 1:
            return
        instrument = self.instrument
        handle = self.exchange.add_background(
            self.symbol,
            side,
            instrument.price_of(ticks),
            instrument.quantity_of(self._lots(self.order_size_mu)),
            self.now_ms,
        )
        self._handles.append(handle)

    def _market_order(self) -> None:
        """A background market order. Its side leans toward the latent price when the book
        lags it, and a taker on that side also takes every stale quote between the touch and
        the latent price (the arbitrageurs that keep a real book on its price)."""
        bid, ask = self.exchange.best_bid_ask(self.symbol)
        lots = self._lots(self.market_size_mu)
        if bid is None or ask is None:
            side = "BUY" if self.random.random() < 0.5 else "SELL"
        else:
            tick = self.instrument.tick_size
            lag = self.latent_ticks - float((bid[0] + ask[0]) / 2 / tick)  # > 0: the book is below
            buy_probability = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, lag / 2.0))))
            side = "BUY" if self.random.random() < buy_probability else "SELL"
            lots = max(lots, self._stale_lots(side))
        self.exchange.market_order_background(self.symbol, side, self.instrument.quantity_of(lots), self.now_ms)

    def _stale_lots(self, side: str) -> int:
        """The lots a taker on ``side`` would find quoted on the wrong side of the latent price."""
        _, bids, asks = self.exchange.depth(self.symbol, self.stale_depth_levels)
        latent_price = Decimal(self.latent_ticks) * self.instrument.tick_size
        step = self.instrument.step_size
        stale = 0
        for price, qty in asks if side == "BUY" else bids:
            if (price >= latent_price) if side == "BUY" else (price <= latent_price):
                break
            stale += int(qty / step)
        return stale


@dataclass(frozen=True)
class RecordedStep:
    """One recorded message ready to apply: its exchange time and what it does.

    ``kind`` is ``"depthUpdate"`` (``levels`` = ``(bids, asks)``, ``update_id`` = recorded
    ``u``), ``"trade"`` (``price``, ``qty``, ``taker_side``) or ``"bookTicker"`` (``data``: the
    recorded message, which changes nothing).
    """

    time_ms: int
    kind: str
    line: int
    update_id: int = 0
    bids: tuple[tuple[Decimal, Decimal], ...] = ()
    asks: tuple[tuple[Decimal, Decimal], ...] = ()
    price: Decimal = Decimal(0)
    qty: Decimal = Decimal(0)
    taker_side: str = ""
    data: dict[str, Any] | None = None


def _levels(raw: list[list[str]]) -> tuple[tuple[Decimal, Decimal], ...]:
    return tuple((Decimal(price), Decimal(qty)) for price, qty in raw)


class ReplayMarket:
    """Replays a recorded Binance USDⓈ-M capture into ``exchange`` (one symbol).

    Parameters
    ----------
    exchange : Exchange
        The venue; the capture's symbol must be one of its instruments (with the recording's
        tick and step sizes).
    path : str or Path
        A capture in the ``marketmaker.recordings`` format.
    symbol : str, optional
        The symbol to replay; default: the symbol of the capture's first depth update.
    speed : float
        Recorded time runs ``speed`` times faster than engine time; ``math.inf`` makes
        everything due at once.
    start_ms : int, optional
        The engine time the replay starts at (default: the exchange's clock). The snapshot
        and the bridged buffered updates are applied then.

    Raises
    ------
    MalformedMessageError
        When the capture has no snapshot, no update bridging it, or a gap (``pu`` not the
        previous ``u``); the message names the file and line.

    Notes
    -----
    Recorded times (``E`` of depth updates, ``T`` of trades and bookTickers) are rebased to the
    snapshot's ``E``: a message is due when ``(time − snapshot E) / speed ≤ now − start``.
    Only ``X == "MARKET"`` trades are replayed (liquidation and ADL prints do not take the
    book's liquidity).
    """

    def __init__(
        self,
        exchange: Exchange,
        path: str | Path,
        *,
        symbol: str | None = None,
        speed: float = 1.0,
        start_ms: int | None = None,
    ) -> None:
        if not speed > 0:
            raise ValueError(f"ReplayMarket: speed must be positive, got {speed}")
        self.exchange = exchange
        self.path = Path(path)
        self.speed = speed
        self.start_ms = exchange.now_ms if start_ms is None else start_ms
        self.now_ms = self.start_ms
        #: The recorded ``u`` of the last depth update applied (the snapshot's lastUpdateId first).
        self.last_depth_update_id = 0
        #: Every recorded bookTicker after the snapshot, in file order (the recording's own
        #: best bid/ask, for checking the replayed book against).
        self.book_tickers: list[dict[str, Any]] = []
        self._steps: list[RecordedStep] = []
        self._position = 0
        snapshot, buffered = self._load(symbol)
        self.symbol: str = snapshot["symbol"]
        if self.symbol not in exchange.instruments:
            raise ValueError(f"ReplayMarket: {self.path}: symbol {self.symbol!r} is not an instrument of the exchange")
        self.origin_ms: int = snapshot["E"]
        exchange.replay_depth_update(self.symbol, snapshot["bids"], snapshot["asks"], self.start_ms)
        self.last_depth_update_id = snapshot["lastUpdateId"]
        for step in buffered:
            self._apply(step)
        logger.info(
            "replaying %s from %s: %d bridged and %d later messages (%d bookTickers), speed %s",
            self.symbol,
            self.path,
            len(buffered),
            len(self._steps),
            len(self.book_tickers),
            speed,
        )

    def _load(self, symbol: str | None) -> tuple[dict[str, Any], list[RecordedStep]]:
        """Reads the capture: the snapshot, the buffered updates that bridge it (applied at
        once), and the steps after it (into ``self._steps``), following Binance's procedure:
        drop updates with ``u < lastUpdateId``, the first kept has ``U ≤ lastUpdateId ≤ u``,
        each next one has ``pu`` = the previous ``u``."""
        snapshot: dict[str, Any] | None = None
        buffered: list[RecordedStep] = []
        previous_u: int | None = None  # the last kept update's u, once bridged
        for message in read_binance_capture(self.path):
            data = message.data
            if message.kind == "snapshot":
                if snapshot is None:  # the first snapshot seeds the book; later ones are redundant
                    snapshot = {
                        "E": int(data.get("E", 0)),
                        "lastUpdateId": int(data["lastUpdateId"]),
                        "bids": _levels(data["bids"]),
                        "asks": _levels(data["asks"]),
                    }
                    pending, buffered = buffered, []
                    for step in pending:
                        if self._keep(snapshot["lastUpdateId"], previous_u, step):
                            buffered.append(step)
                            previous_u = step.update_id
                continue
            if message.kind not in ("depthUpdate", "trade", "bookTicker"):
                continue
            if symbol is None and message.kind == "depthUpdate":
                symbol = str(data["s"])
            if data.get("s") != symbol:
                continue
            if message.kind == "depthUpdate":
                step = RecordedStep(
                    int(data["E"]),
                    "depthUpdate",
                    message.line,
                    update_id=int(data["u"]),
                    bids=_levels(data["b"]),
                    asks=_levels(data["a"]),
                    data={"U": int(data["U"]), "pu": int(data["pu"])},
                )
                if snapshot is None:
                    buffered.append(step)
                elif self._keep(snapshot["lastUpdateId"], previous_u, step):
                    self._steps.append(step)
                    previous_u = step.update_id
            elif snapshot is None:
                continue  # trades and tickers before the book exists
            elif message.kind == "trade":
                if data.get("X", "MARKET") == "MARKET":  # liquidation/ADL prints take no book liquidity
                    self._steps.append(
                        RecordedStep(
                            int(data["T"]),
                            "trade",
                            message.line,
                            price=Decimal(data["p"]),
                            qty=Decimal(data["q"]),
                            taker_side="SELL" if data["m"] else "BUY",
                        )
                    )
            else:
                self.book_tickers.append(data)
                self._steps.append(RecordedStep(int(data["T"]), "bookTicker", message.line, data=data))
        if snapshot is None:
            raise MalformedMessageError(f"{self.path}: no depth snapshot (an object with lastUpdateId) in the capture")
        if previous_u is None or symbol is None:
            raise MalformedMessageError(
                f"{self.path}: no {symbol or ''} depth update bridges the snapshot (lastUpdateId {snapshot['lastUpdateId']})"
            )
        snapshot["symbol"] = symbol
        return snapshot, buffered

    def _keep(self, last_update_id: int, previous_u: int | None, step: RecordedStep) -> bool:
        """Whether a depth update after the snapshot is applied (False: older than it)."""
        assert step.data is not None
        if previous_u is None:
            if step.update_id < last_update_id:
                return False
            if not step.data["U"] <= last_update_id <= step.update_id:
                raise MalformedMessageError(
                    f"{self.path}:{step.line}: the first update after the snapshot (U {step.data['U']}, "
                    f"u {step.update_id}) does not bridge lastUpdateId {last_update_id}"
                )
            return True
        if step.data["pu"] != previous_u:
            raise MalformedMessageError(
                f"{self.path}:{step.line}: gap in the depth stream (pu {step.data['pu']} after u {previous_u})"
            )
        return True

    @property
    def finished(self) -> bool:
        """True when every recorded message has been applied."""
        return self._position >= len(self._steps)

    def _due(self, step: RecordedStep, now_ms: int) -> bool:
        if math.isinf(self.speed):
            return True
        return (step.time_ms - self.origin_ms) / self.speed <= now_ms - self.start_ms

    def step(self, now_ms: int) -> int:
        """Applies every recorded message due by ``now_ms`` (in file order); returns how many."""
        self.now_ms = max(self.now_ms, now_ms)
        applied = 0
        while self._position < len(self._steps) and self._due(self._steps[self._position], self.now_ms):
            self.apply_next()
            applied += 1
        return applied

    def apply_next(self) -> RecordedStep | None:
        """Applies the next recorded message whatever its time; None at the end."""
        if self._position >= len(self._steps):
            return None
        step = self._steps[self._position]
        self._position += 1
        self._apply(step)
        return step

    def _apply(self, step: RecordedStep) -> None:
        if step.kind == "depthUpdate":
            self.exchange.replay_depth_update(self.symbol, step.bids, step.asks, self.now_ms)
            self.last_depth_update_id = step.update_id
        elif step.kind == "trade":
            self.exchange.replay_trade(self.symbol, step.price, step.qty, step.taker_side, self.now_ms)
