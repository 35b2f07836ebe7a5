"""The Binance USDⓈ-M futures protocol over the simulated exchange.

:class:`BinanceProtocol` turns an :class:`~marketmaker.sim.engine.Exchange` into the venue
clients know: REST on plain HTTP (public ``exchangeInfo``/``depth``/``time``; SIGNED order,
batch, cancel, cancel-all, open orders, position risk, balance, leverage, countdownCancelAll;
listenKeys) with request weights, order counts, 429 then 418; and websockets on TLS on the 2026
routes ``/public`` (depth, bookTicker), ``/market`` (aggTrade, markPrice) and ``/private`` (user
data), each as ``/ws/<stream>`` or ``/stream?streams=``, plus the old unrouted base, which (as
on the real venue) delivers only ``/public`` streams; and the websocket API ``/ws-fapi/v1``
(``order.place``, ``order.cancel``, ``order.status``: one signed JSON request per text frame,
answered on the same connection). The rules are those of exchanges.md.

Signed requests are verified over the exact bytes received — the query string as sent followed
by the body — with :func:`marketmaker.exchanges.signing.binance_signature`, the function our
order clients sign with.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import secrets
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from typing import Any, Literal
from urllib.parse import parse_qsl

from aiohttp import WSMsgType, web

from marketmaker.credentials import ApiCredentials
from marketmaker.exchanges.signing import binance_signature, signature_matches
from marketmaker.sim.engine import (
    AccountEvent,
    BookDelta,
    Event,
    Exchange,
    MarkPriceEvent,
    OrderEvent,
    OrderReport,
    TradePrint,
    VenueError,
)
from marketmaker.sim.faults import ROUTES, Route, VenueFaults

__all__ = ["DEPTH_SPEEDS_MS", "BinanceProtocol", "RateLimits"]

logger = logging.getLogger(__name__)

#: Depth stream names (after ``<symbol>@``) and the interval each coalesces deltas over;
#: ``0`` sends every engine delta as its own message. ``depth`` alone is the 250 ms stream.
DEPTH_SPEEDS_MS: dict[str, int] = {
    "depth": 250,
    "depth@250ms": 250,
    "depth@500ms": 500,
    "depth@100ms": 100,
    "depth@0ms": 0,
}
#: ``markPrice`` streams and their intervals.
MARK_PRICE_SPEEDS_MS: dict[str, int] = {"markPrice": 3000, "markPrice@1s": 1000}
STREAM_ROUTES: dict[str, Route] = {
    **dict.fromkeys(DEPTH_SPEEDS_MS, "public"),
    "bookTicker": "public",
    "aggTrade": "market",
    **dict.fromkeys(MARK_PRICE_SPEEDS_MS, "market"),
}
MAX_BATCH_ORDERS = 5
MAX_BATCH_CANCELS = 10
DEFAULT_RECV_WINDOW_MS = 5000
MAX_RECV_WINDOW_MS = 60000
#: A connection whose unsent messages pile up beyond this is closed (the venue drops slow readers).
MAX_QUEUED_MESSAGES = 50_000
#: Trades of each account kept for ``GET /fapi/v1/userTrades`` (the latest).
USER_TRADES_KEPT = 10_000
Security = Literal["NONE", "USER_STREAM", "SIGNED"]
#: The websocket API's path (Binance: ``wss://ws-fapi.binance.com/ws-fapi/v1``).
WS_API_PATH = "/ws-fapi/v1"
#: Weight of opening a websocket API connection (counted against the IP's request weight).
WS_API_CONNECT_WEIGHT = 5


@dataclass(frozen=True)
class RateLimits:
    """The limits published in ``exchangeInfo.rateLimits`` and enforced (sliding windows).

    Request weight is counted per IP; orders per account. A request beyond a limit is answered
    429; a further request while still beyond it earns 418 and an IP ban of ``ban_s``.

    Examples
    --------
    >>> RateLimits(request_weight_per_minute=20).orders_per_10s
    300
    """

    request_weight_per_minute: int = 2400
    orders_per_minute: int = 1200
    orders_per_10s: int = 300
    ban_s: float = 120.0

    def __post_init__(self) -> None:
        for name in ("request_weight_per_minute", "orders_per_minute", "orders_per_10s"):
            if getattr(self, name) <= 0:
                raise ValueError(f"RateLimits.{name} must be positive, got {getattr(self, name)}")
        if self.ban_s < 0:
            raise ValueError(f"RateLimits.ban_s must be >= 0, got {self.ban_s}")

    def as_exchange_info(self) -> list[dict[str, Any]]:
        """The ``rateLimits`` list of ``exchangeInfo``."""
        return [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self.request_weight_per_minute,
            },
            {"rateLimitType": "ORDERS", "interval": "MINUTE", "intervalNum": 1, "limit": self.orders_per_minute},
            {"rateLimitType": "ORDERS", "interval": "SECOND", "intervalNum": 10, "limit": self.orders_per_10s},
        ]


class _SlidingWindow:
    """The sum of amounts added during the last ``length_ms``."""

    __slots__ = ("entries", "length_ms", "total")

    def __init__(self, length_ms: int) -> None:
        self.length_ms = length_ms
        self.entries: deque[tuple[int, int]] = deque()
        self.total = 0

    def used(self, now_ms: int) -> int:
        entries = self.entries
        while entries and entries[0][0] <= now_ms - self.length_ms:
            self.total -= entries.popleft()[1]
        return self.total

    def add(self, now_ms: int, amount: int) -> int:
        if amount:
            self.entries.append((now_ms, amount))
            self.total += amount
        return self.used(now_ms)


@dataclass
class _LimitState:
    """One limit's window and whether its holder was already told 429 while beyond it."""

    window: _SlidingWindow
    limit: int
    warned: bool = False


class _Reject(Exception):
    """An answer other than success: HTTP status, Binance code and message."""

    def __init__(self, status: int, code: int, msg: str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {msg}")
        self.status = status
        self.code = code
        self.msg = msg
        self.headers = dict(headers or {})


@dataclass
class _Call:
    """One REST request after admission: its parameters, account (signed) and venue time."""

    request: web.Request
    params: dict[str, str]
    account_id: str | None
    now_ms: int

    def required(self, name: str) -> str:
        value = self.params.get(name)
        if not value:
            raise _Reject(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
        return value

    def integer(self, name: str) -> int | None:
        return _integer_param(self.params, name)


@dataclass(frozen=True)
class _Endpoint:
    method: str
    path: str
    security: Security
    weight: int | Callable[[dict[str, str]], int]
    handler: Callable[[_Call], Awaitable[Any]]
    orders_10s: int = 0
    orders_1m: int = 0


@dataclass(frozen=True)
class _WsApiMethod:
    """A websocket API method: its request weight, its handler ``(account, params, venue time)
    -> result`` and the orders it counts against the order limits."""

    weight: int
    handler: Callable[[str, Mapping[str, str], int], Any]
    orders: int = 0


async def _no_handler(call: _Call) -> Any:
    raise AssertionError("the order count of a websocket API place has no REST handler")


#: What an ``order.place`` counts against the order limits (as ``POST /fapi/v1/order``).
_WS_API_ORDER_COUNT = _Endpoint("WS", WS_API_PATH, "SIGNED", 0, _no_handler, orders_10s=1, orders_1m=1)


@dataclass(eq=False)
class _Connection:
    """One websocket client: its route, subscriptions and outgoing queue."""

    ws: web.WebSocketResponse
    transport: asyncio.BaseTransport | None
    route: Route
    combined: bool
    #: canonical stream key → the name the client subscribed with (used in combined envelopes)
    streams: dict[tuple[str, str, int], str] = field(default_factory=dict)
    #: subscribed names this route does not deliver (kept for LIST_SUBSCRIPTIONS)
    silent: list[str] = field(default_factory=list)
    account_id: str | None = None
    listen_key: str | None = None
    queue: asyncio.Queue[str | None] = field(default_factory=asyncio.Queue)
    closing: bool = False

    def send(self, text: str) -> None:
        if self.closing:
            return
        if self.queue.qsize() >= MAX_QUEUED_MESSAGES:
            logger.warning("websocket on /%s falls behind by %d messages: closing it", self.route, MAX_QUEUED_MESSAGES)
            self.close_after_queued()
            return
        self.queue.put_nowait(text)

    def close_after_queued(self) -> None:
        """The writer sends what is queued, then closes the websocket; later sends are dropped."""
        if not self.closing:
            self.closing = True
            self.queue.put_nowait(None)


@dataclass
class _DepthStream:
    """A ``<symbol>@depth...`` stream: the deltas since its last message, coalesced."""

    symbol: str
    speed_ms: int
    last_u: int
    first_u: int | None = None
    u: int = 0
    time_ms: int = 0
    bids: dict[Decimal, Decimal] = field(default_factory=dict)
    asks: dict[Decimal, Decimal] = field(default_factory=dict)

    def add(self, delta: BookDelta) -> None:
        if self.first_u is None:
            self.first_u = delta.update_id
        self.u = delta.update_id
        self.time_ms = delta.time_ms
        for price, qty in delta.bids:
            self.bids[price] = qty
        for price, qty in delta.asks:
            self.asks[price] = qty

    def take(self, event_time_ms: int) -> dict[str, Any] | None:
        """The ``depthUpdate`` of what accumulated (None when nothing did); ``pu`` chains on."""
        if self.first_u is None:
            return None
        message = {
            "e": "depthUpdate",
            "E": event_time_ms,
            "T": self.time_ms,
            "s": self.symbol,
            "U": self.first_u,
            "u": self.u,
            "pu": self.last_u,
            "b": [[_text(p), _text(q)] for p, q in sorted(self.bids.items(), reverse=True)],
            "a": [[_text(p), _text(q)] for p, q in sorted(self.asks.items())],
        }
        self.last_u = self.u
        self.first_u = None
        self.bids = {}
        self.asks = {}
        return message


@dataclass
class _AggTrade:
    symbol: str
    taker_order_id: int
    price: Decimal
    qty: Decimal
    first_trade_id: int
    last_trade_id: int
    buyer_is_maker: bool
    time_ms: int


@dataclass
class _ListenKey:
    account_id: str
    key: str
    expires_at: float


def _text(value: Decimal) -> str:
    return f"{value:f}"


def _integer_param(params: Mapping[str, str], name: str) -> int | None:
    text = params.get(name)
    if text is None or text == "":
        return None
    if not re.fullmatch(r"-?[0-9]{1,19}", text):
        raise _Reject(
            400, -1100, f"Illegal characters found in parameter '{name}'; legal range is '^-?[0-9]{{1,19}}$'."
        )
    return int(text)


def _check_time_window(params: Mapping[str, str], now_ms: int) -> None:
    """A signed request's ``timestamp`` and ``recvWindow`` against the venue's time: ``-1102``
    without a timestamp, ``-1131`` for a window beyond 60 s, ``-1021`` when it is 1 s ahead of
    the venue or older than its window."""
    timestamp = _integer_param(params, "timestamp")
    if timestamp is None:
        raise _Reject(400, -1102, "Mandatory parameter 'timestamp' was not sent, was empty/null, or malformed.")
    recv_window = _integer_param(params, "recvWindow")
    recv_window = DEFAULT_RECV_WINDOW_MS if recv_window is None else recv_window
    if not 0 < recv_window <= MAX_RECV_WINDOW_MS:
        raise _Reject(400, -1131, f"recvWindow must be less than {MAX_RECV_WINDOW_MS}.")
    if timestamp >= now_ms + 1000:
        raise _Reject(400, -1021, "Timestamp for this request was 1000ms ahead of the server's time.")
    if now_ms - timestamp > recv_window:
        raise _Reject(400, -1021, "Timestamp for this request is outside of the recvWindow.")


def _order_reference(params: Mapping[str, str]) -> tuple[str, int | None, str | None]:
    """``(symbol, orderId, origClientOrderId)`` of a request naming one order."""
    symbol = params.get("symbol")
    if not symbol:
        raise _Reject(400, -1102, "Mandatory parameter 'symbol' was not sent, was empty/null, or malformed.")
    order_id = _integer_param(params, "orderId")
    client_order_id = params.get("origClientOrderId") or None
    if order_id is None and client_order_id is None:
        raise _Reject(400, -1102, "Either orderId or origClientOrderId must be sent.")
    return symbol, order_id, client_order_id


def _decimal_param(name: str, text: str) -> Decimal:
    if not re.fullmatch(r"[0-9]{1,20}(\.[0-9]{1,20})?", text):
        raise _Reject(
            400,
            -1100,
            f"Illegal characters found in parameter '{name}'; legal range is '^([0-9]{{1,20}})(\\.[0-9]{{1,20}})?$'.",
        )
    try:
        return Decimal(text)
    except InvalidOperation as error:  # the pattern above admits only valid decimals
        raise _Reject(400, -1100, f"Illegal characters found in parameter '{name}'.") from error


def _dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))


def _order_json(report: OrderReport) -> dict[str, Any]:
    return {
        "orderId": report.order_id,
        "symbol": report.symbol,
        "status": report.status,
        "clientOrderId": report.client_order_id,
        "price": _text(report.price),
        "avgPrice": _text(report.average_price),
        "origQty": _text(report.quantity),
        "executedQty": _text(report.executed_qty),
        "cumQty": _text(report.executed_qty),
        "cumQuote": _text(report.cumulative_quote),
        "timeInForce": report.time_in_force,
        "type": report.order_type,
        "origType": report.order_type,
        "reduceOnly": report.reduce_only,
        "closePosition": False,
        "side": report.side,
        "positionSide": "BOTH",
        "stopPrice": "0",
        "workingType": "CONTRACT_PRICE",
        "priceProtect": False,
        "priceMatch": "NONE",
        "selfTradePreventionMode": "NONE",
        "goodTillDate": 0,
        "time": report.time_ms,
        "updateTime": report.update_time_ms,
    }


def _order_update_json(event: OrderEvent, event_time_ms: int) -> dict[str, Any]:
    return {
        "e": "ORDER_TRADE_UPDATE",
        "E": event_time_ms,
        "T": event.time_ms,
        "o": {
            "s": event.symbol,
            "c": event.client_order_id,
            "S": event.side,
            "o": event.order_type,
            "f": event.time_in_force,
            "q": _text(event.quantity),
            "p": _text(event.price),
            "ap": _text(event.average_price),
            "sp": "0",
            "x": event.execution_type,
            "X": event.status,
            "i": event.order_id,
            "l": _text(event.last_filled_qty),
            "z": _text(event.cumulative_filled_qty),
            "L": _text(event.last_filled_price),
            "N": event.commission_asset,
            "n": _text(event.commission),
            "T": event.time_ms,
            "t": event.trade_id,
            "b": "0",
            "a": "0",
            "m": event.is_maker,
            "R": event.reduce_only,
            "wt": "CONTRACT_PRICE",
            "ot": event.order_type,
            "ps": "BOTH",
            "cp": False,
            "rp": _text(event.realized_pnl),
            "pP": False,
            "si": 0,
            "ss": 0,
            "V": "NONE",
            "pm": "NONE",
            "gtd": 0,
        },
    }


def _account_update_json(event: AccountEvent, event_time_ms: int) -> dict[str, Any]:
    balance = event.balance
    return {
        "e": "ACCOUNT_UPDATE",
        "E": event_time_ms,
        "T": event.time_ms,
        "a": {
            "m": event.reason,
            "B": [
                {
                    "a": balance.asset,
                    "wb": _text(balance.wallet_balance),
                    "cw": _text(balance.wallet_balance),
                    "bc": _text(event.balance_change),
                }
            ],
            "P": [
                {
                    "s": position.symbol,
                    "pa": _text(position.size),
                    "ep": _text(position.entry_price),
                    "bep": _text(position.entry_price),
                    "cr": _text(position.accumulated_realized),
                    "up": _text(position.unrealized_pnl),
                    "mt": "cross",
                    "iw": "0",
                    "ps": "BOTH",
                }
                for position in event.positions
            ],
        },
    }


def _depth_weight(params: dict[str, str]) -> int:
    limit = params.get("limit", "500")
    number = int(limit) if limit.isdigit() else 500
    if number <= 50:
        return 2
    if number <= 100:
        return 5
    if number <= 500:
        return 10
    return 20


class BinanceProtocol:
    """Binance USDⓈ-M REST and websockets over one :class:`~marketmaker.sim.engine.Exchange`.

    Parameters
    ----------
    exchange
        The engine; the protocol subscribes to its events.
    credentials
        The API keys the venue accepts, each an account of the engine named by its ``key_id``
        (the account must exist in the engine).
    clock
        The venue time in ms (wall clock plus ``faults.clock_skew_ms``, from the caller).
    faults
        The live fault switches.
    rate_limits
        The published and enforced limits.
    listen_key_lifetime_s
        A listenKey expires this long after its creation or last keepalive (60 min on Binance).
    ws_ping_interval_s
        The server pings every websocket this often and drops one that does not answer within
        half of it (Binance: 3 min).

    Notes
    -----
    All methods run in one event loop, the one that runs the engine's callers.
    """

    def __init__(
        self,
        exchange: Exchange,
        *,
        credentials: Iterable[ApiCredentials],
        clock: Callable[[], int],
        faults: VenueFaults,
        rate_limits: RateLimits = RateLimits(),
        listen_key_lifetime_s: float = 3600.0,
        ws_ping_interval_s: float = 180.0,
    ) -> None:
        self.exchange = exchange
        self._credentials = {c.api_key: c for c in credentials}
        self.clock = clock
        self.faults = faults
        self.rate_limits = rate_limits
        self.listen_key_lifetime_s = listen_key_lifetime_s
        self.ws_ping_interval_s = ws_ping_interval_s
        self._ip_weight: dict[str, _LimitState] = {}
        self._ip_banned_until: dict[str, int] = {}
        self._account_orders: dict[str, tuple[_LimitState, _LimitState]] = {}
        self._connections: set[_Connection] = set()
        self._listeners: dict[tuple[str, str, int], set[_Connection]] = {}
        self._private: dict[str, set[_Connection]] = {}
        self._depth_streams: dict[tuple[str, int], _DepthStream] = {}
        self._book_tickers: dict[str, tuple[Any, Any]] = {}
        self._mark_sent_ms: dict[tuple[str, int], int] = {}
        self._agg_trade: _AggTrade | None = None
        self._agg_trade_ids: dict[str, int] = {}
        self._listen_keys: dict[str, _ListenKey] = {}
        self._countdowns: dict[tuple[str, str], asyncio.TimerHandle] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._endpoints = self._endpoint_table()
        self._ws_api_methods = self._ws_api_method_table()
        self._ws_api_sockets: set[web.WebSocketResponse] = set()
        #: account id -> its latest trades (``GET /fapi/v1/userTrades``), oldest first.
        self._user_trades: dict[str, deque[dict[str, Any]]] = {}
        exchange.subscribe(self._on_event)

    # -- lifecycle ------------------------------------------------------------------------------

    def rest_app(self) -> web.Application:
        """The REST application: ``/fapi/...`` and the loopback admin routes ``/sim/...``."""
        app = web.Application()
        for endpoint in self._endpoints:
            app.router.add_route(endpoint.method, endpoint.path, self._rest_handler(endpoint))
        app.router.add_get("/sim/faults", self._get_faults)
        app.router.add_post("/sim/faults", self._post_faults)
        app.router.add_post("/sim/listen-keys/expire", self._post_expire_listen_keys)
        return app

    def websocket_app(self) -> web.Application:
        """The websocket application (serve it over TLS): routed, unrouted, raw and combined."""
        app = web.Application()
        for prefix in ("", "/{route:public|market|private}"):
            app.router.add_get(prefix + "/ws", self._websocket)
            app.router.add_get(prefix + "/ws/{streams:.+}", self._websocket)
            app.router.add_get(prefix + "/stream", self._websocket)
        app.router.add_get(WS_API_PATH, self._websocket_api)
        return app

    def start(self) -> None:
        """Starts the timers: depth coalescing per speed and the maintenance tick."""
        for speed in sorted({s for s in DEPTH_SPEEDS_MS.values() if s > 0}):
            self._tasks.append(asyncio.create_task(self._flush_depth_every(speed)))
        self._tasks.append(asyncio.create_task(self._maintain()))

    async def close(self) -> None:
        """Stops the timers and closes every websocket (code 1001, going away)."""
        self.exchange.unsubscribe(self._on_event)
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            try:
                await task
            except asyncio.CancelledError:
                pass
        self._tasks.clear()
        for handle in self._countdowns.values():
            handle.cancel()
        self._countdowns.clear()
        for connection in list(self._connections):
            connection.close_after_queued()
            await connection.ws.close(code=1001, message=b"venue shutting down")
        for ws in list(self._ws_api_sockets):
            await ws.close(code=1001, message=b"venue shutting down")

    # -- REST admission: bans, injected errors, weights, signatures, order counts --------------

    def _endpoint_table(self) -> list[_Endpoint]:
        return [
            _Endpoint("GET", "/fapi/v1/time", "NONE", 1, self._time),
            _Endpoint("GET", "/fapi/v1/ping", "NONE", 1, self._ping),
            _Endpoint("GET", "/fapi/v1/exchangeInfo", "NONE", 1, self._exchange_info),
            _Endpoint("GET", "/fapi/v1/depth", "NONE", _depth_weight, self._depth),
            _Endpoint("POST", "/fapi/v1/order", "SIGNED", 0, self._new_order, orders_10s=1, orders_1m=1),
            _Endpoint("GET", "/fapi/v1/order", "SIGNED", 1, self._query_order),
            _Endpoint("DELETE", "/fapi/v1/order", "SIGNED", 1, self._cancel_order),
            _Endpoint("POST", "/fapi/v1/batchOrders", "SIGNED", 5, self._batch_orders, orders_10s=5, orders_1m=1),
            _Endpoint("DELETE", "/fapi/v1/batchOrders", "SIGNED", 1, self._cancel_batch),
            _Endpoint("DELETE", "/fapi/v1/allOpenOrders", "SIGNED", 1, self._cancel_all),
            _Endpoint(
                "GET", "/fapi/v1/openOrders", "SIGNED", lambda p: 1 if p.get("symbol") else 40, self._open_orders
            ),
            _Endpoint("GET", "/fapi/v2/positionRisk", "SIGNED", 5, self._position_risk),
            _Endpoint("GET", "/fapi/v1/userTrades", "SIGNED", 5, self._user_trades_answer),
            _Endpoint("GET", "/fapi/v2/balance", "SIGNED", 5, self._balance),
            _Endpoint("POST", "/fapi/v1/leverage", "SIGNED", 1, self._leverage),
            _Endpoint("POST", "/fapi/v1/countdownCancelAll", "SIGNED", 10, self._countdown_cancel_all),
            _Endpoint("POST", "/fapi/v1/listenKey", "USER_STREAM", 1, self._new_listen_key),
            _Endpoint("PUT", "/fapi/v1/listenKey", "USER_STREAM", 1, self._keepalive_listen_key),
            _Endpoint("DELETE", "/fapi/v1/listenKey", "USER_STREAM", 1, self._close_listen_key),
        ]

    def _rest_handler(self, endpoint: _Endpoint) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def handle(request: web.Request) -> web.StreamResponse:
            return await self._admit(request, endpoint)

        return handle

    async def _admit(self, request: web.Request, endpoint: _Endpoint) -> web.StreamResponse:
        now_ms = self.clock()
        ip = request.remote or "unknown"
        headers: dict[str, str] = {}
        raw_query = request.raw_path.partition("?")[2].encode("utf-8", "surrogateescape")
        body = await request.read()
        weight_state = self._ip_weight.setdefault(
            ip, _LimitState(_SlidingWindow(60_000), self.rate_limits.request_weight_per_minute)
        )
        try:
            banned_until = self._ip_banned_until.get(ip, 0)
            if banned_until > now_ms:
                headers["X-MBX-USED-WEIGHT-1M"] = str(weight_state.window.used(now_ms))
                raise _Reject(418, -1003, f"Way too many requests; IP({ip}) banned until {banned_until}.")
            params = _parse_params(raw_query, body)
            weight = endpoint.weight(params) if callable(endpoint.weight) else endpoint.weight
            used = weight_state.window.add(now_ms, weight)
            headers["X-MBX-USED-WEIGHT-1M"] = str(used)
            injected = self.faults.take_rest_error(
                request.path, exempt_from_throttle=_exempt_from_throttle(endpoint, params)
            )
            if injected is not None:
                raise _injected_reject(injected)
            self._check_limit(ip, weight_state, used, now_ms, "request weight", "1 MINUTE")
            account_id = None
            if endpoint.security != "NONE":
                account_id = self._authenticate(request, endpoint.security, raw_query, body, params, now_ms)
            if account_id is not None and (endpoint.orders_10s or endpoint.orders_1m):
                self._count_orders(ip, account_id, endpoint, now_ms, headers)
            result = await endpoint.handler(_Call(request, params, account_id, now_ms))
        except _Reject as reject:
            headers.update(reject.headers)
            return web.json_response({"code": reject.code, "msg": reject.msg}, status=reject.status, headers=headers)
        except VenueError as error:
            return web.json_response({"code": error.code, "msg": error.msg}, status=400, headers=headers)
        if isinstance(result, web.StreamResponse):
            result.headers.update(headers)
            return result
        return web.json_response(result, headers=headers, dumps=_dumps)

    def _check_limit(self, ip: str, state: _LimitState, used: int, now_ms: int, what: str, interval: str) -> None:
        if used <= state.limit:
            state.warned = False
            return
        if state.warned:
            until = now_ms + int(self.rate_limits.ban_s * 1000)
            self._ip_banned_until[ip] = until
            state.warned = False  # after the ban, a request beyond the limit is warned (429) again
            logger.warning("IP %s kept going after 429 (%s): banned until %d", ip, what, until)
            raise _Reject(418, -1003, f"Way too many requests; IP({ip}) banned until {until}.")
        state.warned = True
        if what == "request weight":
            raise _Reject(
                429, -1003, f"Too many requests; current limit of IP({ip}) is {state.limit} requests per minute."
            )
        raise _Reject(429, -1015, f"Too many new orders; current limit is {state.limit} orders per {interval}.")

    def _count_orders(
        self, ip: str, account_id: str, endpoint: _Endpoint, now_ms: int, headers: dict[str, str]
    ) -> None:
        ten_seconds, minute = self._account_orders.setdefault(
            account_id,
            (
                _LimitState(_SlidingWindow(10_000), self.rate_limits.orders_per_10s),
                _LimitState(_SlidingWindow(60_000), self.rate_limits.orders_per_minute),
            ),
        )
        used_10s = ten_seconds.window.add(now_ms, endpoint.orders_10s)
        used_1m = minute.window.add(now_ms, endpoint.orders_1m)
        headers["X-MBX-ORDER-COUNT-10S"] = str(used_10s)
        headers["X-MBX-ORDER-COUNT-1M"] = str(used_1m)
        self._check_limit(ip, ten_seconds, used_10s, now_ms, "orders", "10 SECOND")
        self._check_limit(ip, minute, used_1m, now_ms, "orders", "1 MINUTE")

    def _authenticate(
        self,
        request: web.Request,
        security: Security,
        raw_query: bytes,
        body: bytes,
        params: dict[str, str],
        now_ms: int,
    ) -> str:
        api_key = request.headers.get("X-MBX-APIKEY", "")
        credentials = self._credentials.get(api_key)
        if credentials is None:
            raise _Reject(401, -2015, "Invalid API-key, IP, or permissions for action.")
        if security == "SIGNED":
            _check_time_window(params, now_ms)
            total_params, signature = _signed_part(raw_query, body)
            if signature is None:
                raise _Reject(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
            if not signature_matches(binance_signature(credentials.secret, total_params), signature):
                raise _Reject(400, -1022, "Signature for this request is not valid.")
        return credentials.key_id

    # -- public endpoints ------------------------------------------------------------------------

    async def _time(self, call: _Call) -> Any:
        return {"serverTime": call.now_ms}

    async def _ping(self, call: _Call) -> Any:
        return {}

    async def _exchange_info(self, call: _Call) -> Any:
        symbols = []
        for instrument in self.exchange.instruments.values():
            symbols.append(
                {
                    "symbol": instrument.symbol,
                    "pair": instrument.symbol,
                    "contractType": "PERPETUAL",
                    "deliveryDate": 4133404800000,
                    "onboardDate": 1569398400000,
                    "status": "TRADING",
                    "baseAsset": instrument.base_asset,
                    "quoteAsset": instrument.quote_asset,
                    "marginAsset": instrument.quote_asset,
                    "pricePrecision": instrument.price_precision,
                    "quantityPrecision": instrument.quantity_precision,
                    "baseAssetPrecision": 8,
                    "quotePrecision": 8,
                    "underlyingType": "COIN",
                    "underlyingSubType": [],
                    # PRICE_FILTER first: cryptofeed reads the tick size from filters[0].
                    "filters": [
                        {
                            "filterType": "PRICE_FILTER",
                            "minPrice": _text(instrument.tick_size),
                            "maxPrice": "10000000",
                            "tickSize": _text(instrument.tick_size),
                        },
                        {
                            "filterType": "LOT_SIZE",
                            "minQty": _text(instrument.min_qty or instrument.step_size),
                            "maxQty": "100000",
                            "stepSize": _text(instrument.step_size),
                        },
                        {
                            "filterType": "MARKET_LOT_SIZE",
                            "minQty": _text(instrument.min_qty or instrument.step_size),
                            "maxQty": "100000",
                            "stepSize": _text(instrument.step_size),
                        },
                        {"filterType": "MAX_NUM_ORDERS", "limit": 200},
                        {"filterType": "MIN_NOTIONAL", "notional": _text(instrument.min_notional)},
                    ],
                    "orderTypes": ["LIMIT", "MARKET"],
                    "timeInForce": ["GTC", "IOC", "FOK", "GTX"],
                }
            )
        return {
            "timezone": "UTC",
            "serverTime": call.now_ms,
            "futuresType": "U_MARGINED",
            "rateLimits": self.rate_limits.as_exchange_info(),
            "exchangeFilters": [],
            "assets": [{"asset": "USDT", "marginAvailable": True, "autoAssetExchange": "-10000"}],
            "symbols": symbols,
        }

    async def _depth(self, call: _Call) -> Any:
        symbol = call.required("symbol")
        limit = call.integer("limit")
        limit = 500 if limit is None else limit
        if limit not in (5, 10, 20, 50, 100, 500, 1000):
            raise _Reject(
                400, -1130, f"Data sent for parameter 'limit' is not valid ({limit}: 5, 10, 20, 50, 100, 500 or 1000)."
            )
        last_update_id, bids, asks = self.exchange.depth(symbol, limit)
        return {
            "lastUpdateId": last_update_id,
            "E": call.now_ms,
            "T": self.exchange.now_ms,
            "bids": [[_text(p), _text(q)] for p, q in bids],
            "asks": [[_text(p), _text(q)] for p, q in asks],
        }

    # -- signed endpoints ------------------------------------------------------------------------

    def _place(self, account_id: str, order: Mapping[str, str], now_ms: int) -> OrderReport:
        def required(name: str) -> str:
            value = order.get(name)
            if not value:
                raise _Reject(400, -1102, f"Mandatory parameter '{name}' was not sent, was empty/null, or malformed.")
            return value

        symbol = required("symbol")
        order_type = required("type")
        quantity = _decimal_param("quantity", required("quantity"))
        price_text = order.get("price")
        price = _decimal_param("price", price_text) if price_text else None
        time_in_force = order.get("timeInForce") or ("GTC" if order_type != "LIMIT" else required("timeInForce"))
        reduce_only = order.get("reduceOnly", "false")
        if reduce_only not in ("true", "false"):
            raise _Reject(400, -1130, f"Data sent for parameter 'reduceOnly' is not valid ({reduce_only!r}).")
        position_side = order.get("positionSide", "BOTH")
        if position_side != "BOTH":
            raise _Reject(400, -4061, "Order's position side does not match user's setting (one-way mode: BOTH).")
        return self.exchange.place_order(
            account_id,
            symbol,
            side=required("side"),
            order_type=order_type,
            quantity=quantity,
            price=price,
            time_in_force=time_in_force if order_type == "LIMIT" else "GTC",
            client_order_id=order.get("newClientOrderId") or None,
            reduce_only=reduce_only == "true",
            now_ms=now_ms,
        )

    async def _new_order(self, call: _Call) -> Any:
        assert call.account_id is not None
        report = self._place(call.account_id, call.params, call.now_ms)
        return await self._answer_accepted(call, _order_json(report))

    async def _batch_orders(self, call: _Call) -> Any:
        assert call.account_id is not None
        try:
            orders = json.loads(call.required("batchOrders"))
        except json.JSONDecodeError as error:
            raise _Reject(
                400, -1130, f"Data sent for parameter 'batchOrders' is not valid JSON ({error.msg})."
            ) from error
        if not isinstance(orders, list) or not orders or not all(isinstance(o, dict) for o in orders):
            raise _Reject(400, -1130, "Data sent for parameter 'batchOrders' is not valid (a list of order objects).")
        if len(orders) > MAX_BATCH_ORDERS:
            raise _Reject(
                400, -1130, f"Data sent for parameter 'batchOrders' is not valid (at most {MAX_BATCH_ORDERS} orders)."
            )
        answers: list[dict[str, Any]] = []
        accepted = False
        for order in orders:
            fields = {str(k): v if isinstance(v, str) else _dumps(v) for k, v in order.items()}
            try:
                answers.append(_order_json(self._place(call.account_id, fields, call.now_ms)))
                accepted = True
            except (_Reject, VenueError) as error:
                answers.append({"code": error.code, "msg": error.msg})
        if accepted:
            return await self._answer_accepted(call, answers)
        return answers

    async def _answer_accepted(self, call: _Call, answer: Any) -> Any:
        """Applies the after-acceptance fault, if one is armed, to an accepted order's answer."""
        fault = self.faults.take_order_answer_fault()
        if fault is None:
            return answer
        logger.info("fault: %s the answer to an accepted %s", fault, call.request.path)
        if fault == "503-unknown":
            raise _Reject(503, -1000, "Unknown error, please check your request or try again later.")
        if fault == "drop":
            transport = call.request.transport
            if transport is not None:
                transport.abort()
            raise asyncio.CancelledError  # the connection is gone: nothing is answered
        await asyncio.sleep(self.faults.order_answer_delay_s)
        return answer

    async def _query_order(self, call: _Call) -> Any:
        assert call.account_id is not None
        order_id = call.integer("orderId")
        client_order_id = call.params.get("origClientOrderId")
        if order_id is None and not client_order_id:
            raise _Reject(400, -1102, "Either orderId or origClientOrderId must be sent.")
        report = self.exchange.query_order(
            call.account_id, call.required("symbol"), order_id=order_id, client_order_id=client_order_id
        )
        return _order_json(report)

    async def _cancel_order(self, call: _Call) -> Any:
        assert call.account_id is not None
        order_id = call.integer("orderId")
        client_order_id = call.params.get("origClientOrderId")
        if order_id is None and not client_order_id:
            raise _Reject(400, -1102, "Either orderId or origClientOrderId must be sent.")
        report = self.exchange.cancel_order(
            call.account_id,
            call.required("symbol"),
            order_id=order_id,
            client_order_id=client_order_id,
            now_ms=call.now_ms,
        )
        return _order_json(report)

    async def _cancel_batch(self, call: _Call) -> Any:
        assert call.account_id is not None
        symbol = call.required("symbol")
        by_id, by_client_id = call.params.get("orderIdList"), call.params.get("origClientOrderIdList")
        if (by_id is None) == (by_client_id is None):
            raise _Reject(400, -1102, "Exactly one of orderIdList or origClientOrderIdList must be sent.")
        name = "orderIdList" if by_id is not None else "origClientOrderIdList"
        try:
            wanted = json.loads(by_id if by_id is not None else by_client_id or "")
        except json.JSONDecodeError as error:
            raise _Reject(400, -1130, f"Data sent for parameter '{name}' is not valid JSON ({error.msg}).") from error
        item_type = int if by_id is not None else str
        if (
            not isinstance(wanted, list)
            or not 0 < len(wanted) <= MAX_BATCH_CANCELS
            or not all(type(i) is item_type for i in wanted)
        ):
            raise _Reject(400, -1130, f"Data sent for parameter '{name}' is not valid (1 to {MAX_BATCH_CANCELS} ids).")
        answers: list[dict[str, Any]] = []
        for identifier in wanted:
            try:
                report = self.exchange.cancel_order(
                    call.account_id,
                    symbol,
                    order_id=identifier if by_id is not None else None,
                    client_order_id=identifier if by_client_id is not None else None,
                    now_ms=call.now_ms,
                )
                answers.append(_order_json(report))
            except VenueError as error:
                answers.append({"code": error.code, "msg": error.msg})
        return answers

    async def _cancel_all(self, call: _Call) -> Any:
        assert call.account_id is not None
        self.exchange.cancel_all(call.account_id, call.required("symbol"), call.now_ms)
        return {"code": 200, "msg": "The operation of cancel all open order is done."}

    async def _open_orders(self, call: _Call) -> Any:
        assert call.account_id is not None
        return [_order_json(r) for r in self.exchange.open_orders(call.account_id, call.params.get("symbol") or None)]

    async def _user_trades_answer(self, call: _Call) -> Any:
        """``GET /fapi/v1/userTrades``: the account's trades in one symbol, oldest first; by
        ``fromId`` (trade id and later) or within ``startTime``..``endTime`` (ms; at most 7
        days apart), ``limit`` 1..1000 (default 500). The venue keeps the latest
        ``USER_TRADES_KEPT`` trades of each account."""
        assert call.account_id is not None
        symbol = call.required("symbol")
        if symbol not in self.exchange.instruments:
            raise _Reject(400, -1121, "Invalid symbol.")
        limit = call.integer("limit")
        limit = 500 if limit is None else limit
        if not 1 <= limit <= 1000:
            raise _Reject(400, -1130, f"Data sent for parameter 'limit' is not valid: {limit}")
        from_id, start, end = call.integer("fromId"), call.integer("startTime"), call.integer("endTime")
        if from_id is not None and (start is not None or end is not None):
            raise _Reject(400, -1128, "Combination of optional parameters invalid: fromId with startTime/endTime.")
        if start is not None and end is not None and not 0 <= end - start <= 7 * 86_400_000:
            raise _Reject(400, -1127, "More than 7 days between startTime and endTime.")
        found = []
        for trade in self._user_trades.get(call.account_id, ()):
            if trade["symbol"] != symbol:
                continue
            if from_id is not None and trade["id"] < from_id:
                continue
            if start is not None and trade["time"] < start:
                continue
            if end is not None and trade["time"] > end:
                continue
            found.append(trade)
            if len(found) == limit:
                break
        return found

    def _record_user_trade(self, event: OrderEvent) -> None:
        trades = self._user_trades.setdefault(event.account_id, deque(maxlen=USER_TRADES_KEPT))
        price, quantity = event.last_filled_price, event.last_filled_qty
        trades.append(
            {
                "symbol": event.symbol,
                "id": event.trade_id,
                "orderId": event.order_id,
                "side": event.side,
                "price": _text(price),
                "qty": _text(quantity),
                "realizedPnl": _text(event.realized_pnl),
                "quoteQty": _text(price * quantity),
                "commission": _text(event.commission),
                "commissionAsset": event.commission_asset,
                "time": event.time_ms,
                "positionSide": "BOTH",
                "buyer": event.side == "BUY",
                "maker": event.is_maker,
            }
        )

    async def _position_risk(self, call: _Call) -> Any:
        assert call.account_id is not None
        symbol = call.params.get("symbol") or None
        reports = {p.symbol: p for p in self.exchange.positions(call.account_id)}
        answer = []
        for name in self.exchange.instruments if symbol is None else [symbol]:
            if name not in self.exchange.instruments:
                raise _Reject(400, -1121, f"Invalid symbol {name!r}.")
            position = reports.get(name)
            mark = self.exchange.mark_price(name)
            leverage = self.exchange.leverage(call.account_id, name)
            answer.append(
                {
                    "symbol": name,
                    "positionAmt": _text(position.size) if position else "0",
                    "entryPrice": _text(position.entry_price) if position else "0",
                    "breakEvenPrice": _text(position.entry_price) if position else "0",
                    "markPrice": _text(mark) if mark is not None else "0",
                    "unRealizedProfit": _text(position.unrealized_pnl) if position else "0",
                    "liquidationPrice": "0",
                    "leverage": str(leverage),
                    "maxNotionalValue": "1000000000",
                    "marginType": "cross",
                    "isolatedMargin": "0",
                    "isAutoAddMargin": "false",
                    "positionSide": "BOTH",
                    "notional": _text(position.notional) if position else "0",
                    "isolatedWallet": "0",
                    "updateTime": call.now_ms,
                }
            )
        return answer

    async def _balance(self, call: _Call) -> Any:
        assert call.account_id is not None
        balance = self.exchange.balances(call.account_id)
        return [
            {
                "accountAlias": call.account_id,
                "asset": balance.asset,
                "balance": _text(balance.wallet_balance),
                "crossWalletBalance": _text(balance.wallet_balance),
                "crossUnPnl": _text(balance.unrealized_pnl),
                "availableBalance": _text(balance.available_balance),
                "maxWithdrawAmount": _text(balance.available_balance),
                "marginAvailable": True,
                "updateTime": call.now_ms,
            }
        ]

    async def _leverage(self, call: _Call) -> Any:
        assert call.account_id is not None
        symbol = call.required("symbol")
        leverage = call.integer("leverage")
        if leverage is None:
            raise _Reject(400, -1102, "Mandatory parameter 'leverage' was not sent, was empty/null, or malformed.")
        now_in_force = self.exchange.set_leverage(call.account_id, symbol, leverage)
        return {"leverage": now_in_force, "maxNotionalValue": "1000000000", "symbol": symbol}

    async def _countdown_cancel_all(self, call: _Call) -> Any:
        account_id = call.account_id
        assert account_id is not None
        symbol = call.required("symbol")
        if symbol not in self.exchange.instruments:
            raise _Reject(400, -1121, f"Invalid symbol {symbol!r}.")
        countdown_ms = call.integer("countdownTime")
        if countdown_ms is None or countdown_ms < 0:
            raise _Reject(400, -1102, "Mandatory parameter 'countdownTime' was not sent, was empty/null, or malformed.")
        previous = self._countdowns.pop((account_id, symbol), None)
        if previous is not None:
            previous.cancel()
        if countdown_ms > 0:
            self._countdowns[(account_id, symbol)] = asyncio.get_running_loop().call_later(
                countdown_ms / 1000, self._countdown_fires, account_id, symbol
            )
        return {"symbol": symbol, "countdownTime": str(countdown_ms)}

    def _countdown_fires(self, account_id: str, symbol: str) -> None:
        self._countdowns.pop((account_id, symbol), None)
        cancelled = self.exchange.cancel_all(account_id, symbol, self.clock())
        logger.info("countdownCancelAll fired on %s for %s: %d orders cancelled", symbol, account_id, len(cancelled))

    # -- listenKeys ---------------------------------------------------------------------------

    def _account_listen_key(self, account_id: str) -> _ListenKey | None:
        for listen_key in self._listen_keys.values():
            if listen_key.account_id == account_id:
                return listen_key
        return None

    async def _new_listen_key(self, call: _Call) -> Any:
        assert call.account_id is not None
        existing = self._account_listen_key(call.account_id)
        if existing is None:
            existing = _ListenKey(call.account_id, secrets.token_urlsafe(48), 0.0)
            self._listen_keys[existing.key] = existing
        existing.expires_at = time.monotonic() + self.listen_key_lifetime_s
        return {"listenKey": existing.key}

    async def _keepalive_listen_key(self, call: _Call) -> Any:
        assert call.account_id is not None
        existing = self._account_listen_key(call.account_id)
        if existing is None:
            raise _Reject(400, -1125, "This listenKey does not exist.")
        existing.expires_at = time.monotonic() + self.listen_key_lifetime_s
        return {"listenKey": existing.key}

    async def _close_listen_key(self, call: _Call) -> Any:
        assert call.account_id is not None
        existing = self._account_listen_key(call.account_id)
        if existing is not None:
            del self._listen_keys[existing.key]
            await self._close_private(existing.key, expired=False)
        return {}

    def expire_listen_keys(self) -> int:
        """Expires every listenKey now (the fault): ``listenKeyExpired`` on their connections,
        which are then closed, and ``-1125`` for a keepalive. Returns how many expired."""
        keys = list(self._listen_keys.values())
        for listen_key in keys:
            listen_key.expires_at = 0.0
        self._expire_due_listen_keys()
        return len(keys)

    def _expire_due_listen_keys(self) -> None:
        now = time.monotonic()
        for key, listen_key in list(self._listen_keys.items()):
            if listen_key.expires_at <= now:
                del self._listen_keys[key]
                logger.info("listenKey of %s expired", listen_key.account_id)
                asyncio.get_running_loop().create_task(self._close_private(key, expired=True))

    async def _close_private(self, key: str, *, expired: bool) -> None:
        for connection in [c for c in self._connections if c.listen_key == key]:
            if expired:
                connection.send(_dumps({"e": "listenKeyExpired", "E": self.clock(), "listenKey": key}))
            connection.close_after_queued()

    # -- admin routes (loopback, unauthenticated) ----------------------------------------------

    async def _get_faults(self, request: web.Request) -> web.StreamResponse:
        return web.json_response(self.faults.as_json())

    async def _post_faults(self, request: web.Request) -> web.StreamResponse:
        try:
            changes = await request.json()
        except json.JSONDecodeError as error:
            return web.json_response({"error": f"body is not JSON: {error.msg} at line {error.lineno}"}, status=400)
        if not isinstance(changes, dict):
            return web.json_response({"error": "body must be a JSON object of fault switches"}, status=400)
        try:
            self.faults.update(changes)
        except ValueError as error:
            return web.json_response({"error": str(error)}, status=400)
        return web.json_response(self.faults.as_json())

    async def _post_expire_listen_keys(self, request: web.Request) -> web.StreamResponse:
        return web.json_response({"expired": self.expire_listen_keys()})

    # -- websockets ----------------------------------------------------------------------------

    async def _websocket(self, request: web.Request) -> web.StreamResponse:
        route_name = request.match_info.get("route")
        route: Route = "public"
        for candidate in ROUTES:
            if candidate == route_name:
                route = candidate
        if route in self.faults.dropped_routes:
            return web.json_response({"code": -1001, "msg": f"route /{route} is down"}, status=503)
        combined = request.path.endswith("/stream")
        names = [n for n in request.match_info.get("streams", "").split("/") if n]
        names += [n for n in request.query.get("streams", "").split("/") if n]
        connection_key = request.query.get("listenKey")
        account_id = None
        if route == "private":
            if connection_key is None and len(names) == 1 and not combined:
                connection_key = names.pop()
            elif connection_key is None and names:
                connection_key = names.pop(0)
            listen_key = self._listen_keys.get(connection_key or "")
            if listen_key is None:
                return web.json_response({"code": -1125, "msg": "This listenKey does not exist."}, status=400)
            account_id = listen_key.account_id
        ws = web.WebSocketResponse(timeout=2.0, heartbeat=self.ws_ping_interval_s, autoping=True, compress=False)
        await ws.prepare(request)
        connection = _Connection(
            ws,
            request.transport,
            route,
            combined,
            account_id=account_id,
            listen_key=connection_key if account_id else None,
        )
        self._connections.add(connection)
        if account_id is not None:
            self._private.setdefault(account_id, set()).add(connection)
        self._subscribe(connection, names)
        writer = asyncio.create_task(self._write(connection))
        try:
            async for message in ws:
                if message.type == WSMsgType.TEXT:
                    self._on_client_message(connection, message.data)
        finally:
            self._forget(connection)
            connection.close_after_queued()
            await writer
        return ws

    async def _write(self, connection: _Connection) -> None:
        ws = connection.ws
        try:
            while True:
                text = await connection.queue.get()
                if text is None:
                    break
                await ws.send_str(text)
        except (ConnectionError, RuntimeError) as error:
            logger.debug("websocket on /%s: send failed (%s)", connection.route, error)
        finally:
            self._forget(connection)
            if not ws.closed:
                await ws.close()

    def _forget(self, connection: _Connection) -> None:
        self._connections.discard(connection)
        for key in connection.streams:
            self._listeners.get(key, set()).discard(connection)
        if connection.account_id is not None:
            self._private.get(connection.account_id, set()).discard(connection)

    def _on_client_message(self, connection: _Connection, text: str) -> None:
        try:
            request = json.loads(text)
        except json.JSONDecodeError:
            connection.send(_dumps({"error": {"code": 3, "msg": "Invalid JSON"}}))
            return
        method = request.get("method") if isinstance(request, dict) else None
        request_id = request.get("id") if isinstance(request, dict) else None
        params = request.get("params", []) if isinstance(request, dict) else []
        if (
            method in ("SUBSCRIBE", "UNSUBSCRIBE")
            and isinstance(params, list)
            and all(isinstance(p, str) for p in params)
        ):
            if method == "SUBSCRIBE":
                self._subscribe(connection, params)
            else:
                self._unsubscribe(connection, params)
            connection.send(_dumps({"result": None, "id": request_id}))
        elif method == "LIST_SUBSCRIPTIONS":
            connection.send(_dumps({"result": [*connection.streams.values(), *connection.silent], "id": request_id}))
        else:
            connection.send(_dumps({"error": {"code": 2, "msg": f"Invalid request: {text[:100]}"}, "id": request_id}))

    def _stream_key(self, name: str) -> tuple[str, str, int] | None:
        symbol_part, _, kind = name.partition("@")
        symbol = symbol_part.upper()
        if symbol_part != symbol_part.lower() or symbol not in self.exchange.instruments or kind not in STREAM_ROUTES:
            return None
        if kind in DEPTH_SPEEDS_MS:
            return ("depth", symbol, DEPTH_SPEEDS_MS[kind])
        if kind in MARK_PRICE_SPEEDS_MS:
            return ("markPrice", symbol, MARK_PRICE_SPEEDS_MS[kind])
        return (kind, symbol, 0)

    def _subscribe(self, connection: _Connection, names: Iterable[str]) -> None:
        for name in names:
            key = self._stream_key(name)
            if (
                key is None
                or connection.route == "private"
                or STREAM_ROUTES[name.partition("@")[2]] != connection.route
            ):
                if name not in connection.silent:
                    connection.silent.append(name)
                logger.debug("stream %r is not delivered on /%s", name, connection.route)
                continue
            connection.streams[key] = name
            self._listeners.setdefault(key, set()).add(connection)
            kind, symbol, speed = key
            if kind == "depth" and (symbol, speed) not in self._depth_streams:
                self._depth_streams[(symbol, speed)] = _DepthStream(symbol, speed, self.exchange.update_id(symbol))

    def _unsubscribe(self, connection: _Connection, names: Iterable[str]) -> None:
        for name in names:
            key = self._stream_key(name)
            if key is not None and connection.streams.get(key) == name:
                del connection.streams[key]
                self._listeners.get(key, set()).discard(connection)
            elif name in connection.silent:
                connection.silent.remove(name)

    def _deliver(self, key: tuple[str, str, int], payload: str) -> None:
        stalled = self.faults.stalled_routes
        for connection in self._listeners.get(key, ()):
            if connection.route in stalled:
                continue
            if connection.combined:
                connection.send(f'{{"stream":"{connection.streams[key]}","data":{payload}}}')
            else:
                connection.send(payload)

    def _deliver_private(self, account_id: str, payload: str) -> None:
        if "private" in self.faults.stalled_routes:
            return
        for connection in self._private.get(account_id, ()):
            if connection.combined:
                connection.send(f'{{"stream":"{connection.listen_key}","data":{payload}}}')
            else:
                connection.send(payload)

    # -- engine events → stream messages -------------------------------------------------------

    def _on_event(self, event: Event) -> None:
        if isinstance(event, TradePrint):
            self._on_trade(event)
            return
        if isinstance(event, BookDelta):
            self._on_book_delta(event)
        elif isinstance(event, OrderEvent):
            if event.execution_type == "TRADE":
                self._record_user_trade(event)
            if event.account_id in self._private:
                self._deliver_private(event.account_id, _dumps(_order_update_json(event, self.clock())))
        elif isinstance(event, AccountEvent):
            if event.account_id in self._private:
                self._deliver_private(event.account_id, _dumps(_account_update_json(event, self.clock())))
        elif isinstance(event, MarkPriceEvent):
            self._on_mark_price(event)

    def _on_book_delta(self, delta: BookDelta) -> None:
        for speed in (0, 100, 250, 500):
            stream = self._depth_streams.get((delta.symbol, speed))
            if stream is None:
                continue
            stream.add(delta)
            if speed == 0:
                self._send_depth(stream)
        if self._listeners.get(("bookTicker", delta.symbol, 0)):
            best = self.exchange.best_bid_ask(delta.symbol)
            if best != self._book_tickers.get(delta.symbol):
                self._book_tickers[delta.symbol] = best
                bid, ask = best
                self._deliver(
                    ("bookTicker", delta.symbol, 0),
                    _dumps(
                        {
                            "e": "bookTicker",
                            "u": delta.update_id,
                            "s": delta.symbol,
                            "b": _text(bid[0]) if bid else "0",
                            "B": _text(bid[1]) if bid else "0",
                            "a": _text(ask[0]) if ask else "0",
                            "A": _text(ask[1]) if ask else "0",
                            "T": delta.time_ms,
                            "E": self.clock(),
                        }
                    ),
                )

    def _send_depth(self, stream: _DepthStream) -> None:
        key = ("depth", stream.symbol, stream.speed_ms)
        listened = bool(self._listeners.get(key))
        message = stream.take(self.clock())
        if message is None or not listened:
            return
        if self.faults.take_depth_skip():
            logger.info("fault: depth message %s U=%d u=%d skipped", key, message["U"], message["u"])
            return
        self._deliver(key, _dumps(message))

    async def _flush_depth_every(self, speed_ms: int) -> None:
        while True:
            await asyncio.sleep(speed_ms / 1000)
            for (_, speed), stream in list(self._depth_streams.items()):
                if speed == speed_ms:
                    self._send_depth(stream)

    def _on_trade(self, trade: TradePrint) -> None:
        pending = self._agg_trade
        if (
            pending is not None
            and pending.symbol == trade.symbol
            and pending.taker_order_id == trade.taker_order_id
            and pending.price == trade.price
        ):
            pending.qty += trade.qty
            pending.last_trade_id = trade.trade_id
            pending.time_ms = trade.time_ms
            return
        if pending is None:
            # Prints of one step arrive together: send what is coalesced once the step is over.
            asyncio.get_running_loop().call_soon(self._flush_agg_trade)
        else:
            self._flush_agg_trade()
            asyncio.get_running_loop().call_soon(self._flush_agg_trade)
        self._agg_trade = _AggTrade(
            trade.symbol,
            trade.taker_order_id,
            trade.price,
            trade.qty,
            trade.trade_id,
            trade.trade_id,
            trade.taker_side == "SELL",
            trade.time_ms,
        )

    def _flush_agg_trade(self) -> None:
        trade = self._agg_trade
        if trade is None:
            return
        self._agg_trade = None
        aggregate_id = self._agg_trade_ids.get(trade.symbol, 0) + 1
        self._agg_trade_ids[trade.symbol] = aggregate_id
        key = ("aggTrade", trade.symbol, 0)
        if not self._listeners.get(key):
            return
        self._deliver(
            key,
            _dumps(
                {
                    "e": "aggTrade",
                    "E": self.clock(),
                    "a": aggregate_id,
                    "s": trade.symbol,
                    "p": _text(trade.price),
                    "q": _text(trade.qty),
                    "f": trade.first_trade_id,
                    "l": trade.last_trade_id,
                    "T": trade.time_ms,
                    "m": trade.buyer_is_maker,
                }
            ),
        )

    def _on_mark_price(self, event: MarkPriceEvent) -> None:
        for speed in MARK_PRICE_SPEEDS_MS.values():
            key = ("markPrice", event.symbol, speed)
            if not self._listeners.get(key):
                continue
            last = self._mark_sent_ms.get((event.symbol, speed))
            if last is not None and event.time_ms - last < speed:
                continue
            self._mark_sent_ms[(event.symbol, speed)] = event.time_ms
            mark = _text(event.mark_price)
            self._deliver(
                key,
                _dumps(
                    {
                        "e": "markPriceUpdate",
                        "E": self.clock(),
                        "s": event.symbol,
                        "p": mark,
                        "i": mark,
                        "P": mark,
                        "r": _text(event.funding_rate),
                        "T": event.next_funding_time_ms,
                    }
                ),
            )

    # -- maintenance: dropped routes, listenKey expiry -------------------------------------------

    # -- the websocket API (/ws-fapi/v1) --------------------------------------------------------

    def _ws_api_method_table(self) -> dict[str, _WsApiMethod]:
        return {
            "order.place": _WsApiMethod(0, self._ws_place, orders=1),
            "order.cancel": _WsApiMethod(1, self._ws_cancel),
            "order.status": _WsApiMethod(1, self._ws_status),
        }

    async def _websocket_api(self, request: web.Request) -> web.StreamResponse:
        """One websocket API connection: each text frame is one request ``{"id", "method",
        "params"}``, answered in a frame ``{"id", "status", "result" | "error", "rateLimits"}``
        in the order received (an answer held back by an armed delay fault comes later)."""
        ip = request.remote or "unknown"
        now_ms = self.clock()
        weight_state = self._weight_state(ip)
        if self._ip_banned_until.get(ip, 0) > now_ms:
            banned_until = self._ip_banned_until[ip]
            return web.json_response(
                {"code": -1003, "msg": f"Way too many requests; IP({ip}) banned until {banned_until}."}, status=418
            )
        weight_state.window.add(now_ms, WS_API_CONNECT_WEIGHT)
        ws = web.WebSocketResponse(heartbeat=self.ws_ping_interval_s, autoping=True, compress=False)
        await ws.prepare(request)
        self._ws_api_sockets.add(ws)
        delayed: set[asyncio.Task[None]] = set()
        try:
            async for message in ws:
                if message.type != WSMsgType.TEXT:
                    continue
                answer, fault = self._ws_api_answer(ip, message.data)
                if fault == "drop":
                    logger.info("fault: dropping the websocket API connection instead of answering")
                    if request.transport is not None:
                        request.transport.abort()
                    break
                if fault == "delay":
                    task = asyncio.create_task(self._send_later(ws, answer, self.faults.order_answer_delay_s))
                    delayed.add(task)
                    task.add_done_callback(delayed.discard)
                    continue
                await ws.send_str(answer)
        except ConnectionError as error:
            logger.debug("websocket API: connection lost (%s)", error)
        finally:
            self._ws_api_sockets.discard(ws)
            for task in delayed:
                task.cancel()
        return ws

    @staticmethod
    async def _send_later(ws: web.WebSocketResponse, answer: str, delay_s: float) -> None:
        await asyncio.sleep(delay_s)
        if not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.send_str(answer)

    def _ws_api_answer(self, ip: str, text: str) -> tuple[str, str | None]:
        """The answer to one websocket API request, and the after-acceptance fault to apply to
        it (``"drop"``, ``"delay"`` or None). Admission is the REST one: IP ban, request weight,
        429 then 418, signature and time window, order counts."""
        now_ms = self.clock()
        weight_state = self._weight_state(ip)
        counts: dict[str, str] = {}
        request_id: Any = None
        fault: str | None = None
        try:
            try:
                request = json.loads(text)
            except json.JSONDecodeError as error:
                raise _Reject(400, -1100, f"Illegal characters found in the request: not JSON ({error.msg}).") from None
            if not isinstance(request, dict):
                raise _Reject(400, -1100, "Illegal characters found in the request: not a JSON object.")
            request_id = request.get("id")
            method_name = request.get("method")
            params = request.get("params", {})
            if not isinstance(method_name, str) or not isinstance(params, dict):
                raise _Reject(400, -1102, "A request needs a 'method' (string) and 'params' (object).")
            method = self._ws_api_methods.get(method_name)
            if method is None:
                raise _Reject(400, -1102, f"Unknown method '{method_name[:50]}'.")
            fields = {str(k): v if isinstance(v, str) else _dumps(v) for k, v in params.items()}
            banned_until = self._ip_banned_until.get(ip, 0)
            if banned_until > now_ms:
                raise _Reject(418, -1003, f"Way too many requests; IP({ip}) banned until {banned_until}.")
            used = weight_state.window.add(now_ms, method.weight)
            self._check_limit(ip, weight_state, used, now_ms, "request weight", "1 MINUTE")
            account_id = self._authenticate_ws_api(fields, now_ms)
            if method.orders:
                self._count_orders(ip, account_id, _WS_API_ORDER_COUNT, now_ms, counts)
            result = method.handler(account_id, fields, now_ms)
            if method.orders:
                taken = self.faults.take_order_answer_fault()
                if taken == "503-unknown":
                    raise _Reject(503, -1000, "Unknown error, please check your request or try again later.")
                fault = taken
            answer: dict[str, Any] = {"id": request_id, "status": 200, "result": result}
        except _Reject as reject:
            answer = {"id": request_id, "status": reject.status, "error": {"code": reject.code, "msg": reject.msg}}
        except VenueError as error:
            answer = {"id": request_id, "status": 400, "error": {"code": error.code, "msg": error.msg}}
        answer["rateLimits"] = self._ws_api_rate_limits(weight_state.window.used(now_ms), counts)
        return _dumps(answer), fault

    def _weight_state(self, ip: str) -> _LimitState:
        return self._ip_weight.setdefault(
            ip, _LimitState(_SlidingWindow(60_000), self.rate_limits.request_weight_per_minute)
        )

    def _ws_api_rate_limits(self, weight_used: int, counts: Mapping[str, str]) -> list[dict[str, Any]]:
        limits: list[dict[str, Any]] = [
            {
                "rateLimitType": "REQUEST_WEIGHT",
                "interval": "MINUTE",
                "intervalNum": 1,
                "limit": self.rate_limits.request_weight_per_minute,
                "count": weight_used,
            }
        ]
        if counts:
            limits += [
                {
                    "rateLimitType": "ORDERS",
                    "interval": "SECOND",
                    "intervalNum": 10,
                    "limit": self.rate_limits.orders_per_10s,
                    "count": int(counts["X-MBX-ORDER-COUNT-10S"]),
                },
                {
                    "rateLimitType": "ORDERS",
                    "interval": "MINUTE",
                    "intervalNum": 1,
                    "limit": self.rate_limits.orders_per_minute,
                    "count": int(counts["X-MBX-ORDER-COUNT-1M"]),
                },
            ]
        return limits

    def _authenticate_ws_api(self, params: Mapping[str, str], now_ms: int) -> str:
        """A signed websocket API request: ``apiKey``, ``timestamp`` (and ``recvWindow``) and
        ``signature`` among its parameters; the signature is the HMAC of every other parameter,
        sorted by name, as ``name=value`` joined by ``&``."""
        credentials = self._credentials.get(params.get("apiKey", ""))
        if credentials is None:
            raise _Reject(401, -2015, "Invalid API-key, IP, or permissions for action.")
        _check_time_window(params, now_ms)
        signature = params.get("signature")
        if not signature:
            raise _Reject(400, -1102, "Mandatory parameter 'signature' was not sent, was empty/null, or malformed.")
        payload = "&".join(f"{name}={params[name]}" for name in sorted(params) if name != "signature")
        if not signature_matches(binance_signature(credentials.secret, payload), signature):
            raise _Reject(400, -1022, "Signature for this request is not valid.")
        return credentials.key_id

    def _ws_place(self, account_id: str, params: Mapping[str, str], now_ms: int) -> Any:
        return _order_json(self._place(account_id, params, now_ms))

    def _ws_cancel(self, account_id: str, params: Mapping[str, str], now_ms: int) -> Any:
        symbol, order_id, client_order_id = _order_reference(params)
        report = self.exchange.cancel_order(
            account_id, symbol, order_id=order_id, client_order_id=client_order_id, now_ms=now_ms
        )
        return _order_json(report)

    def _ws_status(self, account_id: str, params: Mapping[str, str], now_ms: int) -> Any:
        symbol, order_id, client_order_id = _order_reference(params)
        return _order_json(
            self.exchange.query_order(account_id, symbol, order_id=order_id, client_order_id=client_order_id)
        )

    async def _maintain(self) -> None:
        while True:
            await asyncio.sleep(0.05)
            dropped = self.faults.dropped_routes
            if dropped:
                for connection in [c for c in self._connections if c.route in dropped]:
                    logger.info("fault: dropping a websocket on /%s", connection.route)
                    self._forget(connection)
                    if isinstance(connection.transport, asyncio.Transport):
                        connection.transport.abort()
                    connection.close_after_queued()
            self._expire_due_listen_keys()


def _parse_params(raw_query: bytes, body: bytes) -> dict[str, str]:
    """Query and form-body parameters; ``-1101`` for a parameter sent twice."""
    params: dict[str, str] = {}
    for part in (raw_query, body):
        if not part:
            continue
        try:
            pairs = parse_qsl(part.decode(), keep_blank_values=True, strict_parsing=False)
        except UnicodeDecodeError as error:
            raise _Reject(400, -1100, "Illegal characters found in a parameter (not UTF-8).") from error
        for name, value in pairs:
            if name in params:
                raise _Reject(400, -1101, f"Duplicate values for parameter '{name}'.")
            params[name] = value
    return params


def _signed_part(raw_query: bytes, body: bytes) -> tuple[bytes, str | None]:
    """``(totalParams, signature)``: the bytes that were signed, and the signature sent last.

    ``signature`` must be the last parameter of the query string or, when the query has none,
    of the body; what precedes it (and the body after a signed query) is what was signed.
    """
    for index, part in enumerate((raw_query, body)):
        position = part.rfind(b"signature=")
        if position == -1 or (position > 0 and part[position - 1 : position] != b"&"):
            continue
        value = part[position + len(b"signature=") :]
        if b"&" in value:
            return b"", None
        signed = part[: max(position - 1, 0)]
        total = signed + body if index == 0 else raw_query + signed
        return total, value.decode("ascii", "replace")
    return b"", None


def _exempt_from_throttle(endpoint: _Endpoint, params: Mapping[str, str]) -> bool:
    """Cancels and reduce-only orders are exempt from ``-1008`` (as on the venue)."""
    if endpoint.method == "DELETE":
        return True
    return endpoint.path == "/fapi/v1/order" and endpoint.method == "POST" and params.get("reduceOnly") == "true"


def _injected_reject(kind: str) -> _Reject:
    if kind == "429":
        return _Reject(429, -1003, "Too many requests (injected).")
    if kind == "418":
        return _Reject(418, -1003, "Way too many requests; IP banned (injected).")
    if kind == "503-unavailable":
        return _Reject(503, -1001, "Service Unavailable.")
    return _Reject(503, -1008, "Server is currently overloaded with other requests. Please try again in a few minutes.")
