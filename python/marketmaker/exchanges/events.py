"""What a venue's user-data stream tells the market maker, as typed events.

The Binance names are kept in the docstrings (``ORDER_TRADE_UPDATE.o.l`` is
``last_fill_quantity``) so a field can be traced to the wire; the classes themselves say what a
trader calls them. Numbers are floats: the core works in floats and ticks, and the user stream
is read to update positions and fills, not to do exact accounting (the venue's own
``ACCOUNT_UPDATE`` balances are the accounting).
"""

from __future__ import annotations

from dataclasses import dataclass

from marketmaker._core import Side

__all__ = [
    "AccountUpdate",
    "BalanceUpdate",
    "OrderUpdate",
    "PositionUpdate",
    "StreamRestarted",
    "UserStreamEvent",
]


@dataclass(frozen=True)
class OrderUpdate:
    """One ``ORDER_TRADE_UPDATE``: an order was accepted, filled (in part), cancelled or expired.

    Attributes
    ----------
    symbol : str
        ``o.s``.
    client_order_id : str
        ``o.c``.
    order_id : int
        ``o.i``.
    side : Side
        ``o.S``.
    order_status : str
        ``o.X``: NEW, PARTIALLY_FILLED, FILLED, CANCELED, EXPIRED.
    execution_type : str
        ``o.x``: NEW, TRADE, CANCELED, EXPIRED, AMENDMENT, CALCULATED.
    price : float
        ``o.p``, the order's limit price (0 for a market order).
    quantity : float
        ``o.q``, the order's original quantity.
    last_fill_quantity : float
        ``o.l``, the quantity of this fill (0 unless ``execution_type == "TRADE"``).
    last_fill_price : float
        ``o.L``.
    cumulative_filled : float
        ``o.z``.
    average_price : float
        ``o.ap``, the average fill price so far.
    commission : float
        ``o.n``, the commission of this fill.
    commission_asset : str | None
        ``o.N`` (absent before the first fill).
    trade_id : int
        ``o.t`` (0 when this is no fill). Fills are unique by (symbol, trade_id).
    is_maker : bool
        ``o.m``.
    realized_pnl : float
        ``o.rp``, realised by this fill.
    order_type : str
        ``o.o``: LIMIT, MARKET, ...
    time_in_force : str
        ``o.f``: GTC, IOC, FOK, GTX (post-only).
    reduce_only : bool
        ``o.R``.
    event_time_ms : int
        ``E``, when the venue sent the event.
    transaction_time_ms : int
        ``T``, when the venue's matching engine did it.
    """

    symbol: str
    client_order_id: str
    order_id: int
    side: Side
    order_status: str
    execution_type: str
    price: float
    quantity: float
    last_fill_quantity: float
    last_fill_price: float
    cumulative_filled: float
    average_price: float
    commission: float
    commission_asset: str | None
    trade_id: int
    is_maker: bool
    realized_pnl: float
    order_type: str
    time_in_force: str
    reduce_only: bool
    event_time_ms: int
    transaction_time_ms: int

    @property
    def is_fill(self) -> bool:
        """True for a (partial) fill: ``execution_type == "TRADE"``."""
        return self.execution_type == "TRADE"


@dataclass(frozen=True)
class BalanceUpdate:
    """One asset of an ``ACCOUNT_UPDATE`` (``a.B[]``): ``a``, ``wb``, ``cw``, ``bc``."""

    asset: str
    wallet_balance: float
    cross_wallet_balance: float
    balance_change: float


@dataclass(frozen=True)
class PositionUpdate:
    """One position of an ``ACCOUNT_UPDATE`` (``a.P[]``): ``s``, ``pa`` (signed), ``ep``,
    ``bep``, ``cr``, ``up``, ``mt``, ``ps``."""

    symbol: str
    size: float
    entry_price: float
    breakeven_price: float
    accumulated_realized: float
    unrealized_pnl: float
    margin_type: str
    position_side: str


@dataclass(frozen=True)
class AccountUpdate:
    """One ``ACCOUNT_UPDATE``: balances and positions after a fill, a funding payment, ...

    Attributes
    ----------
    reason : str
        ``a.m``: ORDER, FUNDING_FEE, DEPOSIT, ...
    balances : tuple[BalanceUpdate, ...]
        The assets that changed.
    positions : tuple[PositionUpdate, ...]
        The positions that changed.
    event_time_ms, transaction_time_ms : int
        ``E`` and ``T``.
    """

    reason: str
    balances: tuple[BalanceUpdate, ...]
    positions: tuple[PositionUpdate, ...]
    event_time_ms: int
    transaction_time_ms: int


@dataclass(frozen=True)
class StreamRestarted:
    """The user stream was down and is up again on a new connection (and perhaps a new listen
    key): events in between may be lost, so the caller backfills orders, fills and the position
    over REST.

    Attributes
    ----------
    reason : str
        Why it restarted: ``"listenKeyExpired"``, ``"connection closed"``, ``"keepalive failed: ..."``.
    """

    reason: str


UserStreamEvent = OrderUpdate | AccountUpdate | StreamRestarted
