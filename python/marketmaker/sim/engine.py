"""The local venue's exchange: instruments, L3 order books, accounts, fees, mark price, funding.

Everything here is synchronous and deterministic. There is no I/O, no event loop and no wall
clock: every call that changes state takes the engine time ``now_ms`` as an argument, and timed
things (funding, mark price events) run when a call's ``now_ms`` reaches them, or through
:meth:`Exchange.advance`.

Arithmetic is exact. Prices and quantities are :class:`~decimal.Decimal` at the boundary and
integers inside the books (ticks of ``tick_size``, lots of ``step_size``); money (balances, fees,
realised PnL, funding) is ``Decimal`` rounded half-up to 8 decimals (``MONEY_QUANTUM``), the
precision Binance reports, so an account balances exactly:
``initial + Σ realised PnL − Σ commission + Σ funding == wallet balance``.

The rules follow Binance USDⓈ-M futures (one-way position mode, cross margin, USDT margined)
and reject with Binance's codes (:class:`VenueError`), as listed on its USDⓈ-M "Error Codes"
page (developers.binance.com/docs/derivatives/usds-margined-futures/error-code):

=======  ====================================================================
code     when
=======  ====================================================================
-1100    client order id with characters outside ``^[\\.A-Z\\:/a-z0-9_-]{1,36}$``
-1102    LIMIT without a price
-1106    MARKET with a price
-1109    unknown account
-1111    price or quantity with more decimals than the instrument's precision
-1115    unknown time in force
-1116    unknown order type
-1117    unknown side
-1121    unknown symbol
-2011    cancel of an order that is not open (unknown, filled, cancelled)
-2013    query of an order that never existed
-2019    margin insufficient
-2022    reduce-only order that would not reduce the position
-4001    price not above zero
-4003    quantity not above zero
-4004    quantity below the minimum quantity
-4014    price not a multiple of the tick size
-4015    client order id longer than 36 characters
-4023    quantity not a multiple of the step size
-4028    leverage outside 1..max_leverage
-4116    client order id already used by an open order of the account
-4164    notional below the minimum (reduce-only orders are exempt)
-5021    FOK order that cannot fill entirely at once
-5022    GTX (post-only) order that would take liquidity
=======  ====================================================================

Examples
--------
>>> from decimal import Decimal as D
>>> venue = Exchange([Instrument("BTCUSDT", tick_size=D("0.1"), step_size=D("0.001"))])
>>> venue.add_account("alice", D("10000"))
>>> handle = venue.add_background("BTCUSDT", "SELL", D("60000.0"), D("1.000"), now_ms=0)
>>> report = venue.place_order("alice", "BTCUSDT", side="BUY", order_type="LIMIT",
...                            quantity=D("0.010"), price=D("60000.0"), now_ms=1)
>>> report.status, report.executed_qty
('FILLED', Decimal('0.010'))
>>> venue.balances("alice").wallet_balance   # 0.01 × 60000 × 0.0005 taker fee paid
Decimal('9999.70000000')
"""

from __future__ import annotations

import logging
import re
from bisect import bisect_left, bisect_right, insort
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from marketmaker.errors import MarketMakerError

__all__ = [
    "MONEY_QUANTUM",
    "AccountEvent",
    "BalanceReport",
    "BookDelta",
    "Event",
    "Exchange",
    "Instrument",
    "MarkPriceEvent",
    "OrderEvent",
    "OrderReport",
    "PositionReport",
    "TradePrint",
    "VenueError",
]

logger = logging.getLogger(__name__)

#: Money (balances, commissions, realised PnL, funding) is rounded half-up to this quantum.
MONEY_QUANTUM = Decimal("1E-8")
ZERO = Decimal(0)
CLIENT_ORDER_ID_PATTERN = re.compile(r"^[\.A-Z\:/a-z0-9_-]{1,36}$")
ORDER_TYPES = ("LIMIT", "MARKET")
TIMES_IN_FORCE = ("GTC", "IOC", "FOK", "GTX")
SIDES = ("BUY", "SELL")
EIGHT_HOURS_MS = 8 * 60 * 60 * 1000


class VenueError(MarketMakerError):
    """An order or account request the venue rejects, with Binance's error code.

    Attributes
    ----------
    code : int
        The Binance error code (negative), e.g. ``-2019`` for insufficient margin.
    msg : str
        The message, worded like Binance's and naming the offending field.
    """

    def __init__(self, code: int, msg: str) -> None:
        super().__init__(f"{code}: {msg}")
        self.code = code
        self.msg = msg


def _money(value: Decimal) -> Decimal:
    return value.quantize(MONEY_QUANTUM, rounding=ROUND_HALF_UP)


def _decimals(value: Decimal) -> int:
    exponent = value.normalize().as_tuple().exponent
    assert isinstance(exponent, int)
    return max(0, -exponent)


@dataclass(frozen=True)
class Instrument:
    """A USDT-margined perpetual and its trading rules (Binance ``exchangeInfo`` filters).

    Parameters
    ----------
    symbol : str
        e.g. ``"BTCUSDT"``.
    tick_size, step_size : Decimal
        ``PRICE_FILTER.tickSize`` and ``LOT_SIZE.stepSize``.
    min_qty : Decimal
        ``LOT_SIZE.minQty``; defaults to one step.
    min_notional : Decimal
        ``MIN_NOTIONAL.notional`` (price × quantity), default 5 USDT like Binance.
    maker_fee, taker_fee : Decimal
        Commission rates charged on each fill's notional, in USDT (Binance's base tier:
        0.0002 / 0.0005).
    max_leverage, default_leverage : int
        Leverage bounds for :meth:`Exchange.set_leverage` and the leverage a new account starts at.
    price_precision, quantity_precision : int or None
        The most decimals a price / quantity may carry (``pricePrecision``/``quantityPrecision``);
        more is ``-1111``, on-precision but off the grid is ``-4014``/``-4023``. ``None``: the
        decimals of the tick / step size.
    """

    symbol: str
    tick_size: Decimal
    step_size: Decimal
    min_qty: Decimal | None = None
    min_notional: Decimal = Decimal("5")
    maker_fee: Decimal = Decimal("0.0002")
    taker_fee: Decimal = Decimal("0.0005")
    max_leverage: int = 125
    default_leverage: int = 20
    price_precision: int | None = None
    quantity_precision: int | None = None
    base_asset: str = ""
    quote_asset: str = "USDT"

    def __post_init__(self) -> None:
        for name in ("tick_size", "step_size"):
            value = getattr(self, name)
            if not isinstance(value, Decimal) or not value.is_finite() or value <= 0:
                raise ValueError(f"Instrument {self.symbol!r}: {name} must be a positive Decimal, got {value!r}")
        if self.min_qty is None:
            object.__setattr__(self, "min_qty", self.step_size)
        if self.price_precision is None:
            object.__setattr__(self, "price_precision", _decimals(self.tick_size))
        if self.quantity_precision is None:
            object.__setattr__(self, "quantity_precision", _decimals(self.step_size))
        if not self.base_asset:
            base = self.symbol[: -len(self.quote_asset)] if self.symbol.endswith(self.quote_asset) else self.symbol
            object.__setattr__(self, "base_asset", base)
        if not 1 <= self.default_leverage <= self.max_leverage:
            raise ValueError(
                f"Instrument {self.symbol!r}: default_leverage {self.default_leverage} outside 1..{self.max_leverage}"
            )

    def price_of(self, ticks: int) -> Decimal:
        """The price of a whole number of ticks."""
        return ticks * self.tick_size

    def quantity_of(self, lots: int) -> Decimal:
        """The quantity of a whole number of lots (steps)."""
        return lots * self.step_size


# ----------------------------------------------------------------------------------------------
# Events and reports (the values subscribers and callers see)


@dataclass(frozen=True)
class BookDelta:
    """The aggregated levels one engine step changed (a new quantity of zero removes the level).

    ``update_id`` strictly increases per symbol and ``prev_update_id`` is the symbol's previous
    delta's id, so deltas can be coalesced into Binance depth messages (``U``, ``u``, ``pu``).
    """

    symbol: str
    update_id: int
    prev_update_id: int
    bids: tuple[tuple[Decimal, Decimal], ...]
    asks: tuple[tuple[Decimal, Decimal], ...]
    time_ms: int


@dataclass(frozen=True)
class TradePrint:
    """One match between a taker and a maker (Binance ``trade``; coalesce by ``taker_order_id``
    and price for ``aggTrade``). ``taker_side`` BUY means the buyer took (``m`` false)."""

    symbol: str
    trade_id: int
    price: Decimal
    qty: Decimal
    taker_side: str
    taker_order_id: int
    maker_order_id: int
    time_ms: int


@dataclass(frozen=True)
class OrderEvent:
    """A participant order's change, with the fields of Binance's ``ORDER_TRADE_UPDATE``.

    ``execution_type`` (``x``) is NEW, TRADE, CANCELED or EXPIRED; ``status`` (``X``) NEW,
    PARTIALLY_FILLED, FILLED, CANCELED or EXPIRED. ``last_filled_qty``/``last_filled_price``
    (``l``/``L``), ``cumulative_filled_qty`` (``z``), ``commission`` (``n``, in
    ``commission_asset`` ``N``), ``trade_id`` (``t``, 0 when not a trade), ``is_maker`` (``m``),
    ``realized_pnl`` (``rp``) describe the fill of a TRADE event and are zero otherwise.
    """

    account_id: str
    symbol: str
    order_id: int
    client_order_id: str
    side: str
    order_type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal
    average_price: Decimal
    execution_type: str
    status: str
    last_filled_qty: Decimal
    last_filled_price: Decimal
    cumulative_filled_qty: Decimal
    commission: Decimal
    commission_asset: str
    trade_id: int
    is_maker: bool
    realized_pnl: Decimal
    reduce_only: bool
    time_ms: int


@dataclass(frozen=True)
class BalanceReport:
    """An account's USDT balance: wallet (deposits + realised PnL − commission + funding),
    unrealised PnL at mark, and what is available for new margin."""

    asset: str
    wallet_balance: Decimal
    unrealized_pnl: Decimal
    available_balance: Decimal


@dataclass(frozen=True)
class PositionReport:
    """A one-way position: ``size`` signed (long > 0), average-cost ``entry_price``, unrealised
    PnL at ``mark_price``, the position's initial margin (notional / leverage) and the realised
    PnL accumulated on this symbol."""

    symbol: str
    size: Decimal
    entry_price: Decimal
    mark_price: Decimal
    unrealized_pnl: Decimal
    leverage: int
    notional: Decimal
    initial_margin: Decimal
    accumulated_realized: Decimal


@dataclass(frozen=True)
class AccountEvent:
    """An account change (Binance ``ACCOUNT_UPDATE``): ``reason`` ORDER or FUNDING_FEE, the
    balance after it, the positions it changed, and ``balance_change`` — the wallet change not
    due to realised PnL or commission (the funding amount for FUNDING_FEE, else zero)."""

    account_id: str
    reason: str
    balance: BalanceReport
    positions: tuple[PositionReport, ...]
    balance_change: Decimal
    time_ms: int


@dataclass(frozen=True)
class MarkPriceEvent:
    """The mark price (Binance ``markPriceUpdate``); the index price equals the mark here."""

    symbol: str
    mark_price: Decimal
    funding_rate: Decimal
    next_funding_time_ms: int
    time_ms: int


Event = BookDelta | TradePrint | OrderEvent | AccountEvent | MarkPriceEvent


@dataclass(frozen=True)
class OrderReport:
    """A participant order as REST returns it (``POST``/``GET``/``DELETE /fapi/v1/order``).
    ``price`` is zero for MARKET orders; ``average_price`` is zero until a fill."""

    symbol: str
    order_id: int
    client_order_id: str
    side: str
    order_type: str
    time_in_force: str
    quantity: Decimal
    price: Decimal
    average_price: Decimal
    executed_qty: Decimal
    cumulative_quote: Decimal
    status: str
    reduce_only: bool
    time_ms: int
    update_time_ms: int


# ----------------------------------------------------------------------------------------------
# Books


class _Order:
    """A resting or incoming order. ``account_id`` None is background liquidity (the drivers')."""

    __slots__ = (
        "account_id",
        "client_order_id",
        "cumulative_quote",
        "filled_lots",
        "order_id",
        "order_type",
        "price_ticks",
        "quantity_lots",
        "reduce_only",
        "remaining_lots",
        "side",
        "status",
        "symbol",
        "time_in_force",
        "time_ms",
        "update_time_ms",
    )

    def __init__(
        self,
        order_id: int,
        account_id: str | None,
        symbol: str,
        side: str,
        price_ticks: int,
        quantity_lots: int,
        time_ms: int,
        *,
        order_type: str = "LIMIT",
        time_in_force: str = "GTC",
        client_order_id: str = "",
        reduce_only: bool = False,
    ) -> None:
        self.order_id = order_id
        self.account_id = account_id
        self.symbol = symbol
        self.side = side
        self.price_ticks = price_ticks
        self.quantity_lots = quantity_lots
        self.remaining_lots = quantity_lots
        self.filled_lots = 0
        self.cumulative_quote = ZERO
        self.order_type = order_type
        self.time_in_force = time_in_force
        self.client_order_id = client_order_id
        self.reduce_only = reduce_only
        self.status = "NEW"
        self.time_ms = time_ms
        self.update_time_ms = time_ms

    def is_open(self) -> bool:
        return self.status in ("NEW", "PARTIALLY_FILLED")


class _Level:
    """One price level: a FIFO of orders. Orders removed from the middle stay in the deque with
    ``remaining_lots == 0`` (lazy deletion) and are dropped when they reach the front or when
    the dead outnumber the live."""

    __slots__ = ("dead", "own_lots", "queue", "total_lots")

    def __init__(self) -> None:
        self.queue: deque[_Order] = deque()
        self.total_lots = 0
        self.own_lots = 0  # participants' part of total_lots
        self.dead = 0

    def compact(self) -> None:
        self.queue = deque(order for order in self.queue if order.remaining_lots > 0)
        self.dead = 0


class _BookSide:
    __slots__ = ("is_bid", "levels", "own_lots", "prices")

    def __init__(self, is_bid: bool) -> None:
        self.is_bid = is_bid
        self.levels: dict[int, _Level] = {}
        self.prices: list[int] = []  # ascending
        self.own_lots = 0  # participants' resting lots on this side

    def best(self) -> int | None:
        if not self.prices:
            return None
        return self.prices[-1] if self.is_bid else self.prices[0]

    def level(self, ticks: int) -> _Level:
        level = self.levels.get(ticks)
        if level is None:
            level = self.levels[ticks] = _Level()
            insort(self.prices, ticks)
        return level

    def drop(self, ticks: int) -> None:
        del self.levels[ticks]
        del self.prices[bisect_left(self.prices, ticks)]

    def through(self, ticks: int | None) -> list[int]:
        """Prices from the best outward down to (bids) or up to (asks) ``ticks`` inclusive, all
        with None; a copy, so levels may be removed while walking it."""
        if ticks is None:
            return self.prices[::-1] if self.is_bid else self.prices[:]
        if self.is_bid:
            return self.prices[bisect_left(self.prices, ticks) :][::-1]
        return self.prices[: bisect_right(self.prices, ticks)]


class _Book:
    __slots__ = ("asks", "bids", "changed_asks", "changed_bids", "instrument", "last_trade_ticks", "update_id")

    def __init__(self, instrument: Instrument) -> None:
        self.instrument = instrument
        self.bids = _BookSide(is_bid=True)
        self.asks = _BookSide(is_bid=False)
        self.changed_bids: set[int] = set()
        self.changed_asks: set[int] = set()
        self.update_id = 0
        self.last_trade_ticks: int | None = None

    def side(self, side: str) -> _BookSide:
        return self.bids if side == "BUY" else self.asks

    def changed(self, book_side: _BookSide) -> set[int]:
        return self.changed_bids if book_side.is_bid else self.changed_asks

    def crosses(self, taker_side: str, limit_ticks: int | None, level_ticks: int) -> bool:
        if limit_ticks is None:
            return True
        return level_ticks <= limit_ticks if taker_side == "BUY" else level_ticks >= limit_ticks

    def mid_ticks2(self) -> int | None:
        """Twice the mid in ticks (exact), or None with a side empty."""
        bid, ask = self.bids.best(), self.asks.best()
        if bid is None or ask is None:
            return None
        return bid + ask


# ----------------------------------------------------------------------------------------------
# Accounts


class _Position:
    __slots__ = ("accumulated_realized", "entry_price", "lots")

    def __init__(self) -> None:
        self.lots = 0  # signed
        self.entry_price = ZERO
        self.accumulated_realized = ZERO


class _Account:
    __slots__ = ("account_id", "leverage", "open_by_client_id", "open_orders", "orders", "positions", "wallet")

    def __init__(self, account_id: str, wallet: Decimal) -> None:
        self.account_id = account_id
        self.wallet = wallet
        self.positions: dict[str, _Position] = {}
        self.leverage: dict[str, int] = {}
        self.orders: dict[int, _Order] = {}  # every order ever placed, by id
        self.open_orders: dict[int, _Order] = {}  # the open ones, oldest first
        self.open_by_client_id: dict[tuple[str, str], _Order] = {}  # (symbol, client id) → open order


# ----------------------------------------------------------------------------------------------
# The exchange


class Exchange:
    """The venue: books, accounts and timed events for a set of instruments.

    Parameters
    ----------
    instruments : iterable of Instrument
        The tradable symbols.
    funding_interval_ms : int
        Funding is paid at every multiple of this interval (epoch-aligned, like Binance's
        00:00/08:00/16:00 UTC for the default 8 h).
    funding_rate : Decimal
        The rate applied at each funding time to every position's notional at mark
        (positive: longs pay shorts).
    mark_price_interval_ms : int
        How often a :class:`MarkPriceEvent` is emitted per symbol with a mark price (when one
        call's ``now_ms`` passes several slots, only the last is emitted: they would repeat).
    start_ms : int
        The engine time at creation; funding and mark times are scheduled from it.

    Notes
    -----
    The mark price is the unsmoothed mid of the best bid and ask (the last trade price while a
    side is empty, None before any). Subscribers (:meth:`subscribe`) receive events
    synchronously, in the order they happened, at the end of the call that caused them (so
    they see the state after it); a subscriber may call back into the exchange. A subscriber
    that raises is logged (``logger.exception``) and the others still get the event.
    """

    def __init__(
        self,
        instruments: Iterable[Instrument],
        *,
        funding_interval_ms: int = EIGHT_HOURS_MS,
        funding_rate: Decimal = Decimal("0.0001"),
        mark_price_interval_ms: int = 1000,
        start_ms: int = 0,
    ) -> None:
        if funding_interval_ms <= 0 or mark_price_interval_ms <= 0:
            raise ValueError("funding_interval_ms and mark_price_interval_ms must be positive")
        self.instruments: dict[str, Instrument] = {}
        for instrument in instruments:
            if instrument.symbol in self.instruments:
                raise ValueError(f"instrument {instrument.symbol!r} listed twice")
            self.instruments[instrument.symbol] = instrument
        self.funding_interval_ms = funding_interval_ms
        self.funding_rate = funding_rate
        self.mark_price_interval_ms = mark_price_interval_ms
        self._books = {symbol: _Book(instrument) for symbol, instrument in self.instruments.items()}
        self._accounts: dict[str, _Account] = {}
        self._subscribers: list[Callable[[Event], None]] = []
        self._pending: deque[Event] = deque()
        self._dispatching = False
        self._touched: set[str] = set()
        self._background: dict[int, _Order] = {}
        self._next_order_id = 1
        self._next_trade_id = 1
        self.now_ms = start_ms
        self.next_funding_time_ms = (start_ms // funding_interval_ms + 1) * funding_interval_ms
        self._next_mark_ms = start_ms + mark_price_interval_ms

    # -- subscriptions and time --------------------------------------------------------------

    def subscribe(self, callback: Callable[[Event], None]) -> None:
        """Calls ``callback(event)`` for every event from now on, in the order they happened."""
        self._subscribers.append(callback)

    def unsubscribe(self, callback: Callable[[Event], None]) -> None:
        """Stops calling ``callback``."""
        self._subscribers.remove(callback)

    def advance(self, now_ms: int) -> None:
        """Runs what is due by ``now_ms``: funding payments and mark price events."""
        self._clock(now_ms)
        self._finish()

    def _clock(self, now_ms: int) -> None:
        self.now_ms = max(self.now_ms, now_ms)
        while self.next_funding_time_ms <= self.now_ms or self._next_mark_ms <= self.now_ms:
            if self._next_mark_ms <= self.next_funding_time_ms:
                # Mark slots skipped by one call would all repeat the same mark: emit the last
                # one before the next funding time (or now).
                last = min(self.now_ms, self.next_funding_time_ms)
                self._next_mark_ms += (
                    (last - self._next_mark_ms) // self.mark_price_interval_ms * self.mark_price_interval_ms
                )
                self._emit_mark_prices(self._next_mark_ms)
                self._next_mark_ms += self.mark_price_interval_ms
            else:
                self._pay_funding(self.next_funding_time_ms)
                self.next_funding_time_ms += self.funding_interval_ms

    def _emit_mark_prices(self, time_ms: int) -> None:
        for symbol in self._books:
            mark = self.mark_price(symbol)
            if mark is not None:
                self._pending.append(
                    MarkPriceEvent(symbol, mark, self.funding_rate, self.next_funding_time_ms, time_ms)
                )

    def _pay_funding(self, time_ms: int) -> None:
        for account in self._accounts.values():
            for symbol, position in account.positions.items():
                if position.lots == 0:
                    continue
                mark = self.mark_price(symbol)
                if mark is None:
                    mark = position.entry_price
                size = self.instruments[symbol].quantity_of(position.lots)
                # longs pay shorts when the rate is positive
                funding = _money(-size * mark * self.funding_rate)
                account.wallet += funding
                self._pending.append(
                    AccountEvent(
                        account.account_id,
                        "FUNDING_FEE",
                        self._balance(account),
                        (self._position_report(account, symbol),),
                        funding,
                        time_ms,
                    )
                )

    def _finish(self) -> None:
        """Ends a step: one BookDelta per touched symbol, then delivery of pending events."""
        for symbol in sorted(self._touched):
            book = self._books[symbol]
            instrument = book.instrument
            bids = tuple(
                (instrument.price_of(t), instrument.quantity_of(self._level_lots(book.bids, t)))
                for t in sorted(book.changed_bids, reverse=True)
            )
            asks = tuple(
                (instrument.price_of(t), instrument.quantity_of(self._level_lots(book.asks, t)))
                for t in sorted(book.changed_asks)
            )
            book.changed_bids.clear()
            book.changed_asks.clear()
            previous = book.update_id
            book.update_id += 1
            self._pending.append(BookDelta(symbol, book.update_id, previous, bids, asks, self.now_ms))
        self._touched.clear()
        if self._dispatching:
            return  # a subscriber called in: the outer loop delivers in order
        self._dispatching = True
        try:
            while self._pending:
                event = self._pending.popleft()
                for callback in list(self._subscribers):
                    try:
                        callback(event)
                    except Exception:
                        # a failing subscriber must not turn an accepted order into an error
                        # for its sender, nor keep the event from the other subscribers
                        logger.exception("venue subscriber %r failed on %r", callback, event)
        finally:
            self._dispatching = False

    @staticmethod
    def _level_lots(side: _BookSide, ticks: int) -> int:
        level = side.levels.get(ticks)
        return 0 if level is None else level.total_lots

    # -- lookups and validation ---------------------------------------------------------------

    def _book(self, symbol: str) -> _Book:
        book = self._books.get(symbol)
        if book is None:
            raise VenueError(-1121, f"Invalid symbol {symbol!r}.")
        return book

    def _account(self, account_id: str) -> _Account:
        account = self._accounts.get(account_id)
        if account is None:
            raise VenueError(-1109, f"Invalid account {account_id!r}.")
        return account

    @staticmethod
    def _check_side(side: str) -> None:
        if side not in SIDES:
            raise VenueError(-1117, f"Invalid side {side!r}.")

    def _ticks(self, instrument: Instrument, price: Decimal, field: str = "price") -> int:
        if not isinstance(price, Decimal) or not price.is_finite():
            raise VenueError(-1102, f"Mandatory parameter '{field}' was not sent, was empty/null, or malformed.")
        if price <= 0:
            raise VenueError(-4001, f"Price less than or equal to 0 in '{field}': {price}.")
        ticks = price / instrument.tick_size
        if ticks != ticks.to_integral_value():
            assert instrument.price_precision is not None
            if _decimals(price) > instrument.price_precision:
                raise VenueError(-1111, f"Precision is over the maximum defined for this asset ('{field}' {price}).")
            raise VenueError(
                -4014, f"Price not increased by tick size ('{field}' {price}, tick {instrument.tick_size})."
            )
        return int(ticks)

    def _lots(self, instrument: Instrument, quantity: Decimal) -> int:
        if not isinstance(quantity, Decimal) or not quantity.is_finite():
            raise VenueError(-1102, "Mandatory parameter 'quantity' was not sent, was empty/null, or malformed.")
        if quantity <= 0:
            raise VenueError(-4003, f"Quantity less than or equal to zero ('quantity' {quantity}).")
        lots = quantity / instrument.step_size
        if lots != lots.to_integral_value():
            assert instrument.quantity_precision is not None
            if _decimals(quantity) > instrument.quantity_precision:
                raise VenueError(
                    -1111, f"Precision is over the maximum defined for this asset ('quantity' {quantity})."
                )
            raise VenueError(
                -4023, f"Quantity not increased by step size ('quantity' {quantity}, step {instrument.step_size})."
            )
        assert instrument.min_qty is not None
        if quantity < instrument.min_qty:
            raise VenueError(-4004, f"Quantity less than min quantity ('quantity' {quantity} < {instrument.min_qty}).")
        return int(lots)

    # -- accounts ------------------------------------------------------------------------------

    def add_account(self, account_id: str, balance: Decimal) -> None:
        """Opens an account with a USDT wallet balance (no event: it is a deposit before trading)."""
        if account_id in self._accounts:
            raise ValueError(f"account {account_id!r} exists")
        if not isinstance(balance, Decimal) or not balance.is_finite() or balance < 0:
            raise ValueError(f"account {account_id!r}: balance must be a non-negative Decimal, got {balance!r}")
        self._accounts[account_id] = _Account(account_id, balance)

    def set_leverage(self, account_id: str, symbol: str, leverage: int) -> int:
        """Sets the account's leverage on ``symbol`` (``-4028`` outside ``1..max_leverage``).

        Returns the leverage now in force.
        """
        account = self._account(account_id)
        instrument = self._book(symbol).instrument
        if isinstance(leverage, bool) or not isinstance(leverage, int) or not 1 <= leverage <= instrument.max_leverage:
            raise VenueError(-4028, f"Leverage {leverage} is not valid (1..{instrument.max_leverage}).")
        account.leverage[symbol] = leverage
        return leverage

    def leverage(self, account_id: str, symbol: str) -> int:
        """The account's leverage on ``symbol``."""
        account = self._account(account_id)
        return account.leverage.get(symbol, self._book(symbol).instrument.default_leverage)

    def balances(self, account_id: str) -> BalanceReport:
        """The account's USDT balance (wallet, unrealised PnL at mark, available)."""
        return self._balance(self._account(account_id))

    def positions(self, account_id: str) -> list[PositionReport]:
        """The account's position on every instrument (size zero where flat), by symbol."""
        account = self._account(account_id)
        return [self._position_report(account, symbol) for symbol in self.instruments]

    def _position(self, account: _Account, symbol: str) -> _Position:
        position = account.positions.get(symbol)
        if position is None:
            position = account.positions[symbol] = _Position()
        return position

    def _mark_or_entry(self, symbol: str, position: _Position) -> Decimal:
        mark = self.mark_price(symbol)
        return position.entry_price if mark is None else mark

    def _position_report(self, account: _Account, symbol: str) -> PositionReport:
        instrument = self.instruments[symbol]
        position = account.positions.get(symbol) or _Position()
        size = instrument.quantity_of(position.lots)
        mark = self._mark_or_entry(symbol, position)
        leverage = account.leverage.get(symbol, instrument.default_leverage)
        notional = size * mark
        return PositionReport(
            symbol=symbol,
            size=size,
            entry_price=position.entry_price,
            mark_price=mark,
            unrealized_pnl=_money(size * (mark - position.entry_price)),
            leverage=leverage,
            notional=notional,
            initial_margin=_money(abs(notional) / leverage),
            accumulated_realized=position.accumulated_realized,
        )

    def _unrealized(self, account: _Account) -> Decimal:
        total = ZERO
        for symbol, position in account.positions.items():
            if position.lots:
                size = self.instruments[symbol].quantity_of(position.lots)
                total += _money(size * (self._mark_or_entry(symbol, position) - position.entry_price))
        return total

    def _order_margin(self, account: _Account, symbol: str, extra: _Order | None = None) -> Decimal:
        """Initial margin of the open orders on ``symbol`` (plus ``extra``): per side, the part
        of the side's open quantity beyond what would close the position, at the side's
        average price, over leverage. Reduce-only orders need none."""
        instrument = self.instruments[symbol]
        position = account.positions.get(symbol)
        position_lots = 0 if position is None else position.lots
        lots = {"BUY": 0, "SELL": 0}
        notional = {"BUY": ZERO, "SELL": ZERO}
        orders = [o for o in account.open_orders.values() if o.symbol == symbol]
        if extra is not None:
            orders.append(extra)
        for order in orders:
            if order.reduce_only:
                continue
            lots[order.side] += order.remaining_lots
            notional[order.side] += instrument.price_of(order.price_ticks) * instrument.quantity_of(
                order.remaining_lots
            )
        leverage = account.leverage.get(symbol, instrument.default_leverage)
        margin = ZERO
        for side, closable in (("BUY", max(0, -position_lots)), ("SELL", max(0, position_lots))):
            if lots[side] > closable:
                margin += notional[side] * (lots[side] - closable) / lots[side] / leverage
        return margin

    def _available(self, account: _Account) -> Decimal:
        used = ZERO
        for symbol, position in account.positions.items():
            if position.lots:
                leverage = account.leverage.get(symbol, self.instruments[symbol].default_leverage)
                size = self.instruments[symbol].quantity_of(abs(position.lots))
                used += size * self._mark_or_entry(symbol, position) / leverage
        for symbol in {order.symbol for order in account.open_orders.values()}:
            used += self._order_margin(account, symbol)
        return account.wallet + self._unrealized(account) - used

    def _balance(self, account: _Account) -> BalanceReport:
        return BalanceReport(
            asset="USDT",
            wallet_balance=account.wallet,
            unrealized_pnl=self._unrealized(account),
            available_balance=_money(self._available(account)),
        )

    # -- participants' orders ------------------------------------------------------------------

    def place_order(
        self,
        account_id: str,
        symbol: str,
        *,
        side: str,
        order_type: str,
        quantity: Decimal,
        price: Decimal | None = None,
        time_in_force: str = "GTC",
        client_order_id: str | None = None,
        reduce_only: bool = False,
        now_ms: int,
    ) -> OrderReport:
        """Places an order; it matches at once against the book and rests if it may.

        Parameters
        ----------
        side : {"BUY", "SELL"}
        order_type : {"LIMIT", "MARKET"}
        quantity, price : Decimal
            ``price`` is required for LIMIT and refused for MARKET.
        time_in_force : {"GTC", "IOC", "FOK", "GTX"}
            For LIMIT; GTX is post-only. MARKET orders are IOC.
        client_order_id : str, optional
            Must match ``^[\\.A-Z\\:/a-z0-9_-]{1,36}$`` and be unique among the account's open
            orders on the symbol; generated (``sim-<order id>``) when absent.
        reduce_only : bool
            Rejected (``-2022``) unless it reduces the position; a fill never goes beyond flat
            (the rest expires).

        Returns
        -------
        OrderReport
            The order after matching (status NEW, PARTIALLY_FILLED, FILLED or EXPIRED).

        Raises
        ------
        VenueError
            With the Binance code of the reject (see the module's table); nothing changes.
        """
        self._clock(now_ms)
        try:
            order = self._accept(
                account_id, symbol, side, order_type, quantity, price, time_in_force, client_order_id, reduce_only
            )
            self._execute(order)
            return self._report(order)
        except VenueError as error:
            logger.debug("%s %s %s %s rejected: %s", account_id, symbol, side, order_type, error)
            raise
        finally:
            self._finish()

    def _accept(
        self,
        account_id: str,
        symbol: str,
        side: str,
        order_type: str,
        quantity: Decimal,
        price: Decimal | None,
        time_in_force: str,
        client_order_id: str | None,
        reduce_only: bool,
    ) -> _Order:
        """Validates an order (every check before any change) and registers it."""
        account = self._account(account_id)
        book = self._book(symbol)
        instrument = book.instrument
        self._check_side(side)
        if order_type not in ORDER_TYPES:
            raise VenueError(-1116, f"Invalid orderType {order_type!r}.")
        if order_type == "LIMIT":
            if time_in_force not in TIMES_IN_FORCE:
                raise VenueError(-1115, f"Invalid timeInForce {time_in_force!r}.")
            if price is None:
                raise VenueError(-1102, "Mandatory parameter 'price' was not sent, was empty/null, or malformed.")
            price_ticks: int | None = self._ticks(instrument, price)
        else:
            if price is not None:
                raise VenueError(-1106, "Parameter 'price' sent when not required.")
            time_in_force = "IOC"
            price_ticks = None
        lots = self._lots(instrument, quantity)
        if client_order_id is None:
            client_order_id = f"sim-{self._next_order_id}"
        elif len(client_order_id) > 36:
            raise VenueError(
                -4015,
                f"Client order id is not valid: length should not be more than 36 chars ({len(client_order_id)}).",
            )
        elif not CLIENT_ORDER_ID_PATTERN.match(client_order_id):
            raise VenueError(
                -1100,
                f"Illegal characters found in parameter 'newClientOrderId' ({client_order_id!r}); "
                "legal range is '^[\\.A-Z\\:/a-z0-9_-]{1,36}$'.",
            )
        if (symbol, client_order_id) in account.open_by_client_id:
            raise VenueError(-4116, f"ClientOrderId is duplicated ({client_order_id!r} is open).")
        opposite = book.asks if side == "BUY" else book.bids
        best_opposite = opposite.best()
        # the price margin and notional are judged at: the limit, or for MARKET the touch
        judged_ticks = price_ticks if price_ticks is not None else best_opposite
        if reduce_only:
            position = account.positions.get(symbol)
            position_lots = 0 if position is None else position.lots
            if (side == "BUY" and position_lots >= 0) or (side == "SELL" and position_lots <= 0):
                raise VenueError(-2022, "ReduceOnly Order is rejected (it would not reduce the position).")
        elif judged_ticks is not None:
            notional = instrument.price_of(judged_ticks) * instrument.quantity_of(lots)
            if notional < instrument.min_notional:
                raise VenueError(
                    -4164,
                    f"Order's notional must be no smaller than {instrument.min_notional} (unless you choose reduce "
                    f"only); got {notional}.",
                )
        if time_in_force == "GTX" and best_opposite is not None and book.crosses(side, price_ticks, best_opposite):
            raise VenueError(
                -5022,
                "Due to the order could not be executed as maker, the Post Only order will be "
                "rejected. The order will not be recorded in the order history",
            )
        if time_in_force == "FOK" and self._fillable_lots(opposite, side, price_ticks, lots) < lots:
            raise VenueError(
                -5021,
                "Due to the order could not be filled immediately, the FOK order has been "
                "rejected. The order will not be recorded in the order history",
            )
        order = _Order(
            self._next_order_id,
            account_id,
            symbol,
            side,
            judged_ticks if judged_ticks is not None else 0,
            lots,
            self.now_ms,
            order_type=order_type,
            time_in_force=time_in_force,
            client_order_id=client_order_id,
            reduce_only=reduce_only,
        )
        if not reduce_only and judged_ticks is not None:
            added = self._order_margin(account, symbol, extra=order) - self._order_margin(account, symbol)
            if added > 0 and added > self._available(account):
                raise VenueError(-2019, f"Margin is insufficient (needs {_money(added)} USDT).")
        if price_ticks is None:
            order.price_ticks = 0  # a MARKET order has no price of its own
        self._next_order_id += 1
        account.orders[order.order_id] = order
        account.open_orders[order.order_id] = order
        account.open_by_client_id[(symbol, client_order_id)] = order
        self._order_event(order, "NEW")
        return order

    @staticmethod
    def _fillable_lots(opposite: _BookSide, side: str, limit_ticks: int | None, wanted: int) -> int:
        found = 0
        for ticks in opposite.through(limit_ticks):
            found += opposite.levels[ticks].total_lots
            if found >= wanted:
                break
        return found

    def _execute(self, order: _Order) -> None:
        """Matches a newly accepted participant order and rests or expires the rest."""
        book = self._books[order.symbol]
        limit = order.price_ticks if order.order_type == "LIMIT" else None
        self._match(book, order, limit)
        if order.remaining_lots == 0:
            return
        if order.reduce_only and self._reducible_lots(order) == 0:
            self._expire(order)  # the position it reduced is closed: nothing left to reduce
        elif order.order_type == "LIMIT" and order.time_in_force in ("GTC", "GTX"):
            self._rest(book, order)
        else:
            self._expire(order)

    def _expire(self, order: _Order) -> None:
        order.remaining_lots = 0
        order.status = "EXPIRED"
        self._close(order)
        self._order_event(order, "EXPIRED")

    def _close(self, order: _Order) -> None:
        """Forgets an order that is no longer open (its client id may be reused)."""
        if order.account_id is None:
            self._background.pop(order.order_id, None)
            return
        account = self._accounts[order.account_id]
        account.open_orders.pop(order.order_id, None)
        key = (order.symbol, order.client_order_id)
        if account.open_by_client_id.get(key) is order:
            del account.open_by_client_id[key]

    def _rest(self, book: _Book, order: _Order) -> None:
        book_side = book.side(order.side)
        level = book_side.level(order.price_ticks)
        level.queue.append(order)
        level.total_lots += order.remaining_lots
        if order.account_id is not None:
            level.own_lots += order.remaining_lots
            book_side.own_lots += order.remaining_lots
        book.changed(book_side).add(order.price_ticks)
        self._touched.add(order.symbol)

    def _take_from_level(self, book: _Book, book_side: _BookSide, level: _Level, order: _Order, lots: int) -> None:
        """Removes ``lots`` of a resting order from its level (a fill or a cancel)."""
        order.remaining_lots -= lots
        level.total_lots -= lots
        if order.account_id is not None:
            level.own_lots -= lots
            book_side.own_lots -= lots
        if order.remaining_lots == 0:
            if order.account_id is None:
                self._background.pop(order.order_id, None)  # filled or cancelled: no longer resting
            if level.queue and level.queue[0] is order:
                level.queue.popleft()
            else:
                level.dead += 1
        book.changed(book_side).add(order.price_ticks)
        self._touched.add(book.instrument.symbol)
        if level.total_lots == 0:
            book_side.drop(order.price_ticks)
        elif level.dead > 32 and level.dead * 2 > len(level.queue):
            level.compact()

    def _match(self, book: _Book, taker: _Order, limit_ticks: int | None) -> None:
        """Fills ``taker`` against the opposite side in price-time priority."""
        opposite = book.asks if taker.side == "BUY" else book.bids
        while taker.remaining_lots > 0:
            best = opposite.best()
            if best is None or not book.crosses(taker.side, limit_ticks, best):
                return
            level = opposite.levels[best]
            while level.queue and level.queue[0].remaining_lots == 0:
                level.queue.popleft()
                level.dead -= 1
            maker = level.queue[0]
            if taker.reduce_only and self._reducible_lots(taker) == 0:
                return
            lots = min(taker.remaining_lots, maker.remaining_lots)
            if taker.reduce_only:
                lots = min(lots, self._reducible_lots(taker))
            if maker.reduce_only:
                allowed = self._reducible_lots(maker)
                if allowed == 0:
                    self._take_from_level(book, opposite, level, maker, maker.remaining_lots)
                    maker.status = "EXPIRED"
                    self._close(maker)
                    self._order_event(maker, "EXPIRED")
                    continue
                lots = min(lots, allowed)
            self._trade(book, opposite, level, maker, taker, best, lots)

    def _reducible_lots(self, order: _Order) -> int:
        """How much of a reduce-only order's side would still reduce the position."""
        assert order.account_id is not None
        position = self._accounts[order.account_id].positions.get(order.symbol)
        lots = 0 if position is None else position.lots
        return max(0, -lots) if order.side == "BUY" else max(0, lots)

    def _trade(
        self,
        book: _Book,
        maker_side: _BookSide,
        level: _Level,
        maker: _Order,
        taker: _Order,
        price_ticks: int,
        lots: int,
    ) -> None:
        """One match of ``lots`` at ``price_ticks``: the maker leaves the book by that much."""
        trade_id = self._next_trade_id
        self._next_trade_id += 1
        self._take_from_level(book, maker_side, level, maker, lots)
        taker.remaining_lots -= lots
        book.last_trade_ticks = price_ticks
        instrument = book.instrument
        self._pending.append(
            TradePrint(
                instrument.symbol,
                trade_id,
                instrument.price_of(price_ticks),
                instrument.quantity_of(lots),
                taker.side,
                taker.order_id,
                maker.order_id,
                self.now_ms,
            )
        )
        if maker.account_id is not None:
            self._fill(maker, price_ticks, lots, trade_id, is_maker=True)
        if taker.account_id is not None:
            self._fill(taker, price_ticks, lots, trade_id, is_maker=False)

    def _fill(self, order: _Order, price_ticks: int, lots: int, trade_id: int, *, is_maker: bool) -> None:
        """Books a participant's fill: position, realised PnL, commission, events."""
        assert order.account_id is not None
        account = self._accounts[order.account_id]
        instrument = self.instruments[order.symbol]
        price = instrument.price_of(price_ticks)
        qty = instrument.quantity_of(lots)
        commission = _money(price * qty * (instrument.maker_fee if is_maker else instrument.taker_fee))
        realized = self._book_position(self._position(account, order.symbol), instrument, order.side, lots, price)
        account.wallet += realized - commission
        order.filled_lots += lots
        order.cumulative_quote += price * qty
        order.update_time_ms = self.now_ms
        if order.filled_lots == order.quantity_lots:
            order.status = "FILLED"
            self._close(order)
        else:
            order.status = "PARTIALLY_FILLED"
        self._order_event(
            order,
            "TRADE",
            last_lots=lots,
            last_price=price,
            commission=commission,
            trade_id=trade_id,
            is_maker=is_maker,
            realized=realized,
        )
        self._pending.append(
            AccountEvent(
                account.account_id,
                "ORDER",
                self._balance(account),
                (self._position_report(account, order.symbol),),
                ZERO,
                self.now_ms,
            )
        )

    @staticmethod
    def _book_position(position: _Position, instrument: Instrument, side: str, lots: int, price: Decimal) -> Decimal:
        """Applies a fill to a one-way position (average cost) and returns the realised PnL."""
        signed = lots if side == "BUY" else -lots
        before = position.lots
        if before == 0 or (before > 0) == (signed > 0):
            total = abs(before) + lots
            position.entry_price = (abs(before) * position.entry_price + lots * price) / total
            position.lots = before + signed
            return ZERO
        closing = min(abs(before), lots)
        direction = 1 if before > 0 else -1
        realized = _money((price - position.entry_price) * instrument.quantity_of(closing) * direction)
        position.lots = before + signed
        if position.lots == 0:
            position.entry_price = ZERO
        elif (position.lots > 0) != (before > 0):
            position.entry_price = price  # flipped through zero: the rest opens at the fill price
        position.accumulated_realized += realized
        return realized

    def _order_event(
        self,
        order: _Order,
        execution_type: str,
        *,
        last_lots: int = 0,
        last_price: Decimal = ZERO,
        commission: Decimal = ZERO,
        trade_id: int = 0,
        is_maker: bool = False,
        realized: Decimal = ZERO,
    ) -> None:
        assert order.account_id is not None
        instrument = self.instruments[order.symbol]
        self._pending.append(
            OrderEvent(
                account_id=order.account_id,
                symbol=order.symbol,
                order_id=order.order_id,
                client_order_id=order.client_order_id,
                side=order.side,
                order_type=order.order_type,
                time_in_force=order.time_in_force,
                quantity=instrument.quantity_of(order.quantity_lots),
                price=instrument.price_of(order.price_ticks),
                average_price=self._average_price(order),
                execution_type=execution_type,
                status=order.status,
                last_filled_qty=instrument.quantity_of(last_lots),
                last_filled_price=last_price,
                cumulative_filled_qty=instrument.quantity_of(order.filled_lots),
                commission=commission,
                commission_asset=instrument.quote_asset,
                trade_id=trade_id,
                is_maker=is_maker,
                realized_pnl=realized,
                reduce_only=order.reduce_only,
                time_ms=self.now_ms,
            )
        )

    def _average_price(self, order: _Order) -> Decimal:
        if order.filled_lots == 0:
            return ZERO
        return order.cumulative_quote / self.instruments[order.symbol].quantity_of(order.filled_lots)

    def _report(self, order: _Order) -> OrderReport:
        instrument = self.instruments[order.symbol]
        return OrderReport(
            symbol=order.symbol,
            order_id=order.order_id,
            client_order_id=order.client_order_id,
            side=order.side,
            order_type=order.order_type,
            time_in_force=order.time_in_force,
            quantity=instrument.quantity_of(order.quantity_lots),
            price=instrument.price_of(order.price_ticks),
            average_price=self._average_price(order),
            executed_qty=instrument.quantity_of(order.filled_lots),
            cumulative_quote=order.cumulative_quote,
            status=order.status,
            reduce_only=order.reduce_only,
            time_ms=order.time_ms,
            update_time_ms=order.update_time_ms,
        )

    def _find_order(
        self, account: _Account, symbol: str, order_id: int | None, client_order_id: str | None
    ) -> _Order | None:
        if order_id is not None:
            order = account.orders.get(order_id)
            return order if order is not None and order.symbol == symbol else None
        if client_order_id is not None:
            open_order = account.open_by_client_id.get((symbol, client_order_id))
            if open_order is not None:
                return open_order
            for order in reversed(account.orders.values()):
                if order.symbol == symbol and order.client_order_id == client_order_id:
                    return order
            return None
        raise VenueError(-1102, "Either 'orderId' or 'origClientOrderId' must be sent.")

    def cancel_order(
        self,
        account_id: str,
        symbol: str,
        *,
        order_id: int | None = None,
        client_order_id: str | None = None,
        now_ms: int,
    ) -> OrderReport:
        """Cancels an open order by id or client id; ``-2011`` when it is not open."""
        self._clock(now_ms)
        try:
            account = self._account(account_id)
            book = self._book(symbol)
            order = self._find_order(account, symbol, order_id, client_order_id)
            if order is None or not order.is_open():
                raise VenueError(-2011, "Unknown order sent.")
            self._cancel(book, order)
            return self._report(order)
        finally:
            self._finish()

    def _cancel(self, book: _Book, order: _Order) -> None:
        book_side = book.side(order.side)
        self._take_from_level(book, book_side, book_side.levels[order.price_ticks], order, order.remaining_lots)
        order.status = "CANCELED"
        order.update_time_ms = self.now_ms
        self._close(order)
        self._order_event(order, "CANCELED")

    def cancel_all(self, account_id: str, symbol: str, now_ms: int) -> list[OrderReport]:
        """Cancels every open order of the account on ``symbol``; returns them (oldest first)."""
        self._clock(now_ms)
        try:
            account = self._account(account_id)
            book = self._book(symbol)
            cancelled = [o for o in account.open_orders.values() if o.symbol == symbol]
            for order in cancelled:
                self._cancel(book, order)
            return [self._report(order) for order in cancelled]
        finally:
            self._finish()

    def open_orders(self, account_id: str, symbol: str | None = None) -> list[OrderReport]:
        """The account's open orders (on ``symbol``, or all), oldest first."""
        account = self._account(account_id)
        if symbol is not None:
            self._book(symbol)
        return [
            self._report(order) for order in account.open_orders.values() if symbol is None or order.symbol == symbol
        ]

    def query_order(
        self, account_id: str, symbol: str, *, order_id: int | None = None, client_order_id: str | None = None
    ) -> OrderReport:
        """Any order the account placed (open or not); ``-2013`` when there is none."""
        account = self._account(account_id)
        self._book(symbol)
        order = self._find_order(account, symbol, order_id, client_order_id)
        if order is None:
            raise VenueError(-2013, "Order does not exist.")
        return self._report(order)

    # -- background liquidity (the market drivers) ---------------------------------------------

    def add_background(self, symbol: str, side: str, price: Decimal, qty: Decimal, now_ms: int) -> int:
        """Adds a background limit order (the market around the participants).

        It matches first, like a GTC order, against whatever it crosses (participants' orders
        included), and rests the remainder at the back of its level's queue.

        Returns
        -------
        int
            The order's handle (its order id) for :meth:`cancel_background`.
        """
        self._clock(now_ms)
        book = self._book(symbol)
        self._check_side(side)
        instrument = book.instrument
        order = _Order(
            self._next_order_id,
            None,
            symbol,
            side,
            self._ticks(instrument, price),
            self._background_lots(instrument, qty),
            self.now_ms,
        )
        self._next_order_id += 1
        self._match(book, order, order.price_ticks)
        if order.remaining_lots:
            self._rest(book, order)
            self._background[order.order_id] = order
        self._finish()
        return order.order_id

    def cancel_background(self, handle: int, now_ms: int) -> bool:
        """Removes what is left of a background order; False when nothing is left of it."""
        self._clock(now_ms)
        order = self._background.pop(handle, None)
        if order is not None and order.remaining_lots > 0:
            book = self._books[order.symbol]
            book_side = book.side(order.side)
            self._take_from_level(book, book_side, book_side.levels[order.price_ticks], order, order.remaining_lots)
        self._finish()
        return order is not None

    def background_resting(self, handle: int) -> bool:
        """Whether the background order ``handle`` still rests (neither filled nor cancelled)."""
        return handle in self._background

    def market_order_background(self, symbol: str, side: str, qty: Decimal, now_ms: int) -> Decimal:
        """A background market order: takes up to ``qty`` from the opposite side.

        Returns the quantity filled (less than ``qty`` when the side runs out).
        """
        self._clock(now_ms)
        book = self._book(symbol)
        self._check_side(side)
        order = _Order(
            self._next_order_id,
            None,
            symbol,
            side,
            0,
            self._background_lots(book.instrument, qty),
            self.now_ms,
            order_type="MARKET",
            time_in_force="IOC",
        )
        self._next_order_id += 1
        self._match(book, order, None)
        self._finish()
        return book.instrument.quantity_of(order.quantity_lots - order.remaining_lots)

    def _background_lots(self, instrument: Instrument, qty: Decimal) -> int:
        lots = qty / instrument.step_size
        if qty <= 0 or lots != lots.to_integral_value():
            raise ValueError(
                f"{instrument.symbol}: background quantity {qty} is not a positive multiple of {instrument.step_size}"
            )
        return int(lots)

    # -- replay (recorded aggregated book and trades) -------------------------------------------

    def replay_depth_update(
        self,
        symbol: str,
        bids: Iterable[tuple[Decimal, Decimal]],
        asks: Iterable[tuple[Decimal, Decimal]],
        now_ms: int,
    ) -> None:
        """Sets recorded level sizes (a depth update or snapshot, quantities absolute, 0 removes).

        The recorded size is the background's share of the level; participants' orders come on
        top of it (the published size is recorded + ours). An increase joins the back of the
        queue; a decrease takes background from the back first, so it never improves a
        participant's place. Participants' orders that a recorded level now crosses (the market
        moved through them) are filled entirely, as makers at their price. One engine step: at
        most one BookDelta.
        """
        self._clock(now_ms)
        book = self._book(symbol)
        instrument = book.instrument
        for book_side, levels in ((book.bids, bids), (book.asks, asks)):
            for price, qty in levels:
                self._set_background_level(
                    book, book_side, self._ticks(instrument, price), self._background_lots_or_zero(instrument, qty)
                )
        self._fill_crossed_participants(book)
        self._finish()

    def _background_lots_or_zero(self, instrument: Instrument, qty: Decimal) -> int:
        return 0 if qty == 0 else self._background_lots(instrument, qty)

    def _set_background_level(self, book: _Book, book_side: _BookSide, ticks: int, recorded_lots: int) -> None:
        level = book_side.levels.get(ticks)
        background = 0 if level is None else level.total_lots - level.own_lots
        if recorded_lots == background:
            return
        if recorded_lots > background:
            last = level.queue[-1] if level is not None and level.queue else None
            if level is not None and last is not None and last.account_id is None and last.remaining_lots > 0:
                # the back of the queue is background already: growing it is the same place
                added = recorded_lots - background
                last.remaining_lots += added
                last.quantity_lots += added
                level.total_lots += added
                book.changed(book_side).add(ticks)
                self._touched.add(book.instrument.symbol)
                return
            order = _Order(
                self._next_order_id,
                None,
                book.instrument.symbol,
                "BUY" if book_side.is_bid else "SELL",
                ticks,
                recorded_lots - background,
                self.now_ms,
            )
            self._next_order_id += 1
            self._rest(book, order)
            return
        assert level is not None
        excess = background - recorded_lots
        for order in list(reversed(level.queue)):
            if order.account_id is None and order.remaining_lots > 0:
                lots = min(excess, order.remaining_lots)
                excess -= lots
                self._take_from_level(book, book_side, level, order, lots)
                if excess == 0:
                    break

    def _fill_crossed_participants(self, book: _Book) -> None:
        for own_side, other in ((book.bids, book.asks), (book.asks, book.bids)):
            best_other = other.best()
            if best_other is None or own_side.own_lots == 0:
                continue
            taker = self._recorded_taker(book, other, best_other, own_side.own_lots)
            for ticks in own_side.through(best_other):
                self._fill_participants_at(book, own_side, ticks, taker, None)

    def _recorded_taker(self, book: _Book, taker_side: _BookSide, ticks: int, lots: int) -> _Order:
        """The recorded market as the taker of participants' fills (one order id per recorded
        event, so its prints coalesce into one aggTrade)."""
        side = "BUY" if taker_side.is_bid else "SELL"
        taker = _Order(self._next_order_id, None, book.instrument.symbol, side, ticks, lots, self.now_ms)
        self._next_order_id += 1
        return taker

    def _fill_participants_at(
        self, book: _Book, own_side: _BookSide, ticks: int, taker: _Order, lots_limit: int | None
    ) -> int:
        """Fills participants' orders at one level, in queue order, against the recorded
        market (they are makers at the level's price), up to ``lots_limit`` (None: all);
        returns the lots filled."""
        level = own_side.levels.get(ticks)
        if level is None or level.own_lots == 0:
            return 0
        filled = 0
        for order in [o for o in level.queue if o.account_id is not None and o.remaining_lots > 0]:
            if lots_limit is not None and filled >= lots_limit:
                break
            lots = order.remaining_lots if lots_limit is None else min(order.remaining_lots, lots_limit - filled)
            self._trade(book, own_side, level, order, taker, ticks, lots)
            filled += lots
        return filled

    def replay_trade(self, symbol: str, price: Decimal, qty: Decimal, taker_side: str, now_ms: int) -> None:
        """A recorded trade: prints it and fills participants by the queue model.

        Participants' orders priced better than the trade (it went through them) fill entirely.
        At the trade's price the trade consumes the queue in order — background ahead first —
        and stops after the last participant order: background behind them is left for the
        recording's next depth update to restate. The recorded quantity not filled against
        participants is printed as one trade. Without participants' orders on the side, the
        book is left alone (the recorded depth stream tells the trade's effect).
        """
        self._clock(now_ms)
        book = self._book(symbol)
        self._check_side(taker_side)
        instrument = book.instrument
        ticks = self._ticks(instrument, price)
        lots = self._background_lots(instrument, qty)
        own_side = book.asks if taker_side == "BUY" else book.bids
        taker_book_side = book.bids if taker_side == "BUY" else book.asks
        taker = self._recorded_taker(book, taker_book_side, ticks, lots + own_side.own_lots)
        remaining = lots
        if own_side.own_lots:
            for level_ticks in own_side.through(ticks):
                if level_ticks == ticks:
                    break
                self._fill_participants_at(book, own_side, level_ticks, taker, None)
            remaining -= self._consume_queue_at(book, own_side, ticks, lots, taker)
        if remaining > 0:
            trade_id = self._next_trade_id
            self._next_trade_id += 1
            book.last_trade_ticks = ticks
            self._pending.append(
                TradePrint(
                    symbol,
                    trade_id,
                    instrument.price_of(ticks),
                    instrument.quantity_of(remaining),
                    taker_side,
                    taker.order_id,
                    0,
                    self.now_ms,
                )
            )
        self._finish()

    def _consume_queue_at(self, book: _Book, own_side: _BookSide, ticks: int, lots: int, taker: _Order) -> int:
        """The queue model at the trade's price; returns the lots that filled participants."""
        level = own_side.levels.get(ticks)
        if level is None or level.own_lots == 0:
            return 0
        remaining = lots
        own_filled = 0
        for order in list(level.queue):
            if remaining == 0 or level.own_lots == 0:
                break
            if order.remaining_lots == 0:
                continue
            take = min(remaining, order.remaining_lots)
            remaining -= take
            if order.account_id is None:
                self._take_from_level(book, own_side, level, order, take)
            else:
                self._trade(book, own_side, level, order, taker, ticks, take)
                own_filled += take
        return own_filled

    # -- reads --------------------------------------------------------------------------------

    def depth(
        self, symbol: str, limit: int = 1000
    ) -> tuple[int, list[tuple[Decimal, Decimal]], list[tuple[Decimal, Decimal]]]:
        """The aggregated book: ``(last_update_id, bids best first, asks best first)``, at most
        ``limit`` levels a side; ``last_update_id`` is the id of the last BookDelta."""
        book = self._book(symbol)
        instrument = book.instrument
        sides = []
        for book_side in (book.bids, book.asks):
            prices = book_side.prices[::-1][:limit] if book_side.is_bid else book_side.prices[:limit]
            sides.append(
                [(instrument.price_of(t), instrument.quantity_of(book_side.levels[t].total_lots)) for t in prices]
            )
        return book.update_id, sides[0], sides[1]

    def best_bid_ask(self, symbol: str) -> tuple[tuple[Decimal, Decimal] | None, tuple[Decimal, Decimal] | None]:
        """``((bid price, bid qty) | None, (ask price, ask qty) | None)``."""
        book = self._book(symbol)
        instrument = book.instrument
        result: list[tuple[Decimal, Decimal] | None] = []
        for book_side in (book.bids, book.asks):
            best = book_side.best()
            result.append(
                None
                if best is None
                else (instrument.price_of(best), instrument.quantity_of(book_side.levels[best].total_lots))
            )
        return result[0], result[1]

    def mark_price(self, symbol: str) -> Decimal | None:
        """The mid of the best bid and ask; the last trade price while a side is empty."""
        book = self._book(symbol)
        twice_mid = book.mid_ticks2()
        if twice_mid is not None:
            if twice_mid % 2 == 0:
                return book.instrument.price_of(twice_mid // 2)
            return book.instrument.price_of(twice_mid) / 2
        if book.last_trade_ticks is not None:
            return book.instrument.price_of(book.last_trade_ticks)
        return None

    def update_id(self, symbol: str) -> int:
        """The id of ``symbol``'s last BookDelta (0 before any)."""
        return self._book(symbol).update_id
