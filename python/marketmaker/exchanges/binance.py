"""The Binance USDⓈ-M futures order client and user-data stream.

:class:`BinanceFuturesClient` signs and sends orders, cancels and account reads over one
keep-alive :class:`aiohttp.ClientSession`; :class:`BinanceUserStream` turns the private
websocket into typed events (:mod:`marketmaker.exchanges.events`) and keeps its listen key alive.
Both work the same against the real venue and the local one (:mod:`marketmaker.sim`).

Outcomes, in the trade's terms:

- A place or cancel answers one :class:`OrderResult` per order, in input order: ``accepted``,
  ``rejected`` (definitely not done, with the venue's code) or ``unknown`` (the answer was lost:
  a timeout, a dropped connection, 503 "Unknown error", ``-1006``/``-1007``; the order may
  exist). An unknown place is never retried: Binance client order ids are unique only among
  open orders, so a blind retry of an order that filled can fill twice. The caller reconciles
  with :meth:`BinanceFuturesClient.open_orders` or the user stream.
- ``-1021`` (timestamp outside the window): the client re-syncs its server-time offset once and
  retries that request once; the request was refused before execution, so this is safe.
- HTTP 429/418: :class:`RateLimitedError`, and the client sends nothing more until the back-off
  it implies is over (a 418 ban from the message's ``banned until``, a 429 the window it names; a ``Retry-After`` header when there is one)
  — Binance answers a client that keeps going after 429 with a 418 IP ban.
- Every other reject of a whole read or admin request: :class:`VenueError`. No message, log line
  or repr carries the API key, the secret or the listen key.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import re
import socket
import ssl
import statistics
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from types import SimpleNamespace, TracebackType
from typing import Any, Final, Literal
from urllib.parse import quote_plus

import aiohttp
from yarl import URL

from marketmaker._core import RateLimiter, Side
from marketmaker.credentials import ApiCredentials
from marketmaker.errors import MalformedMessageError, MarketMakerError
from marketmaker.exchanges.events import (
    AccountUpdate,
    BalanceUpdate,
    OrderUpdate,
    PositionUpdate,
    StreamRestarted,
    UserStreamEvent,
)
from marketmaker.exchanges.signing import binance_signature

__all__ = [
    "AccountUpdate",
    "BalanceUpdate",
    "BinanceFuturesClient",
    "BinanceUserStream",
    "InstrumentInfo",
    "NewOrder",
    "OpenOrder",
    "OrderResult",
    "OrderUpdate",
    "PositionInfo",
    "PositionUpdate",
    "RateLimitedError",
    "StreamRestarted",
    "UserStreamEvent",
    "UserTrade",
    "VenueConnectionError",
    "VenueError",
    "account_update_from_json",
    "order_update_from_json",
]

logger = logging.getLogger(__name__)

#: Codes whose answer says the outcome is not known: the request may have been executed.
UNKNOWN_OUTCOME_CODES: Final = frozenset({-1000, -1006, -1007})
#: A cancel of an order that is not open (unknown, filled, cancelled, expired).
UNKNOWN_ORDER: Final = -2011
TIMESTAMP_OUTSIDE_WINDOW: Final = -1021
#: The websocket API's path, and Binance's own websocket API for USDⓈ-M futures.
WS_API_PATH: Final = "/ws-fapi/v1"
BINANCE_WS_API_URL: Final = "wss://ws-fapi.binance.com" + WS_API_PATH
LISTEN_KEY_DOES_NOT_EXIST: Final = -1125
TOO_MANY_REQUESTS: Final = -1003
TOO_MANY_ORDERS: Final = -1015
#: Back-off when a 429/418 names no end (Binance promises no ``Retry-After`` on futures): the
#: length of the window that was exceeded, and the shortest IP ban.
WEIGHT_WINDOW_S: Final = 60.0
ORDERS_10S_WINDOW_S: Final = 10.0
SHORTEST_BAN_S: Final = 120.0
_BANNED_UNTIL = re.compile(r"banned until (\d+)")

_SIDES: Final = {"BUY": Side.BUY, "SELL": Side.SELL}
#: What ``urlencode`` leaves as is, and its escape of every other ASCII character.
_QUERY_SAFE: Final = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-~")
_QUERY_ESCAPES: Final = {
    chr(code): ("+" if code == 32 else f"%{code:02X}") for code in range(128) if chr(code) not in _QUERY_SAFE
}

# -- errors ------------------------------------------------------------------------------------


class VenueError(MarketMakerError):
    """The venue definitely refused a whole request (nothing was done).

    Attributes
    ----------
    code : int | None
        Binance's error code (``-1022``, ``-2011``, ...); None when the answer had none.
    message : str
        The venue's message (never contains credentials: the venue does not echo them).
    http_status : int | None
        The HTTP status; None when the client refused to send (see :class:`RateLimitedError`).
    """

    def __init__(self, code: int | None, message: str, http_status: int | None) -> None:
        self.code = code
        self.message = message
        self.http_status = http_status
        super().__init__(f"venue refused the request: HTTP {http_status} code {code}: {message}")


class RateLimitedError(VenueError):
    """HTTP 429 or 418, or a request the client refused to send because the venue's back-off is
    not over.

    Attributes
    ----------
    retry_after_s : float
        How long from when this was raised the client will refuse requests of this kind.
    """

    def __init__(self, code: int | None, message: str, http_status: int | None, retry_after_s: float) -> None:
        self.retry_after_s = retry_after_s
        super().__init__(code, message, http_status)


class VenueConnectionError(MarketMakerError):
    """A read or admin request got no usable answer (timeout, connection lost, 5xx).

    Places and cancels do not raise this: their orders are reported ``unknown`` instead.
    """


# -- value objects -----------------------------------------------------------------------------


@dataclass(frozen=True)
class InstrumentInfo:
    """An instrument's trading filters from ``exchangeInfo``.

    Attributes
    ----------
    symbol : str
    tick_size : str
        ``PRICE_FILTER.tickSize`` as the venue writes it (e.g. ``"0.1"``): prices are formatted
        with its number of decimals.
    step_size : str
        ``LOT_SIZE.stepSize`` (e.g. ``"0.001"``).
    min_qty : float
        ``LOT_SIZE.minQty``.
    min_notional : float
        ``MIN_NOTIONAL.notional`` (price × quantity, reduce-only exempt).
    """

    symbol: str
    tick_size: str
    step_size: str
    min_qty: float
    min_notional: float

    @property
    def price_decimals(self) -> int:
        """Decimals of the tick size: ``"0.10"`` → 1, ``"1"`` → 0."""
        return _decimals(self.tick_size)

    @property
    def quantity_decimals(self) -> int:
        """Decimals of the step size."""
        return _decimals(self.step_size)


@dataclass(frozen=True)
class NewOrder:
    """A limit order to place. ``post_only`` sends ``timeInForce=GTX`` (rejected ``-5022`` when
    it would take), otherwise GTC.

    Examples
    --------
    >>> NewOrder("mm-b-1", Side.BUY, 59999.5, 0.01).post_only
    True
    """

    client_order_id: str
    side: Side
    price: float
    quantity: float
    post_only: bool = True
    reduce_only: bool = False


@dataclass(frozen=True)
class OrderResult:
    """What the venue said about one order of a place or cancel.

    Attributes
    ----------
    client_order_id : str
    status : "accepted", "rejected" or "unknown"
        ``unknown``: the answer was lost (timeout, 503 "Unknown error", ``-1006``/``-1007``,
        connection dropped after sending): the order may exist (a place) or may be cancelled
        (a cancel).
    order_id : int | None
        The venue's order id when accepted.
    code : int | None
        The venue's error code when rejected (``-5022`` post-only would take, ``-4164`` below
        min notional, ``-2011`` cancel of an order that is not open, ...).
    message : str
        The venue's message, or what happened to the request.
    """

    client_order_id: str
    status: Literal["accepted", "rejected", "unknown"]
    order_id: int | None = None
    code: int | None = None
    message: str = ""


@dataclass(frozen=True)
class OpenOrder:
    """An order resting on the book (``GET /fapi/v1/openOrders``)."""

    symbol: str
    client_order_id: str
    order_id: int
    side: Side
    price: float
    quantity: float
    filled: float

    @property
    def remaining(self) -> float:
        """Quantity still resting."""
        return self.quantity - self.filled


@dataclass(frozen=True)
class PositionInfo:
    """The one-way position of a symbol (``GET /fapi/v2/positionRisk``); ``size`` is signed
    (negative = short)."""

    symbol: str
    size: float
    entry_price: float
    unrealized_pnl: float
    leverage: int


@dataclass(frozen=True)
class UserTrade:
    """One of the account's trades (``GET /fapi/v1/userTrades``): what a fill event said, for
    fills whose event was missed. It names the venue's ``order_id``, not the client id."""

    symbol: str
    trade_id: int
    order_id: int
    side: Side
    price: float
    quantity: float
    commission: float
    commission_asset: str
    realized_pnl: float
    is_maker: bool
    time_ms: int


# -- the client --------------------------------------------------------------------------------


class _OrderRequest:
    """The trace context of a place or cancel request: tells aiohttp's trace hook it is an
    order request, and whom to tell, once, when its bytes were written."""

    __slots__ = ("is_place", "on_written")

    def __init__(self, on_written: Callable[[int], None] | None = None) -> None:
        self.on_written = on_written
        self.is_place = False


class _WriteStamps:
    """Stamps an order request when its bytes enter the kernel, not when aiohttp is about to
    serialise them.

    aiohttp's ``on_request_headers_sent`` hook runs just before the request is serialised and
    handed to the transport; for a request without a body (all of ours) the transport's
    ``sock.send`` follows in the same synchronous step. The hook arms this object with the
    request, and the connection's socket (a :class:`_StampingSocket`, made by the connector's
    ``socket_factory``) stamps the armed request when ``send`` returns. If the transport held
    the bytes back (its buffer was not empty), nothing is sent in that step: the arm is taken
    back at the loop's next pass and the request stamped then (counted in ``deferred``).
    """

    __slots__ = ("armed", "client", "deferred")

    def __init__(self, client: BinanceFuturesClient) -> None:
        self.client = client
        self.armed: _OrderRequest | None = None
        self.deferred = 0

    def socket(self, addr_info: tuple[Any, ...]) -> socket.socket:
        """aiohttp's ``socket_factory``: an unconnected socket that reports its writes."""
        family, kind, proto = addr_info[0], addr_info[1], addr_info[2]
        sock = _StampingSocket(family, kind, proto)
        sock.stamps = self
        return sock

    def arm(self, request: _OrderRequest) -> None:
        self.armed = request
        asyncio.get_running_loop().call_soon(self.take_back, request)

    def sent(self) -> None:
        request = self.armed
        if request is not None:
            self.armed = None
            self.client._written(request, time.perf_counter_ns())

    def take_back(self, request: _OrderRequest) -> None:
        if self.armed is request:
            self.armed = None
            self.deferred += 1
            self.client._written(request, time.perf_counter_ns())


class _StampingSocket(socket.socket):
    """A client socket that tells :class:`_WriteStamps` when a write has entered the kernel."""

    __slots__ = ("stamps",)
    stamps: _WriteStamps

    def send(self, data: Any, flags: int = 0) -> int:
        sent = super().send(data, flags)
        self.stamps.sent()
        return sent

    def sendmsg(self, buffers: Any, *args: Any) -> int:
        sent = super().sendmsg(buffers, *args)
        self.stamps.sent()
        return sent


@dataclass
class _Answer:
    status: int
    body: Any
    code: int | None
    message: str
    retry_after_s: float | None = None


class _OutcomeUnknown(Exception):
    """The request was (perhaps) sent and no answer came back."""


class _NotSent(Exception):
    """The request could not be sent at all (no connection)."""


class _OrderSocket:
    """The websocket API connection that carries our places and cancels (``order.place``,
    ``order.cancel``: one signed request per text frame) and the answers it awaits, by request
    id. When it closes, every request still waiting gets an unknown outcome."""

    __slots__ = ("closed_because", "next_id", "pending", "reader", "url", "ws")

    def __init__(self, ws: aiohttp.ClientWebSocketResponse[Any], url: str) -> None:
        self.ws = ws
        self.url = url
        self.pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self.next_id = 1
        self.closed_because = ""
        self.reader = asyncio.create_task(self._read(), name="order-websocket")

    @property
    def is_open(self) -> bool:
        return not self.ws.closed and not self.closed_because

    def request(self, method: str, params: Mapping[str, str]) -> tuple[str, asyncio.Future[dict[str, Any]]]:
        """The frame of one request, and the future of its answer (registered)."""
        request_id = self.next_id
        self.next_id += 1
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self.pending[request_id] = future
        return json.dumps({"id": request_id, "method": method, "params": params}, separators=(",", ":")), future

    def forget(self, future: asyncio.Future[dict[str, Any]]) -> None:
        for request_id, waiting in list(self.pending.items()):
            if waiting is future:
                del self.pending[request_id]

    async def _read(self) -> None:
        try:
            async for message in self.ws:
                if message.type != aiohttp.WSMsgType.TEXT:
                    continue
                try:
                    answer = json.loads(message.data)
                except ValueError:
                    logger.warning("websocket API: an answer that is not JSON: %.200s", message.data)
                    continue
                request_id = answer.get("id") if isinstance(answer, dict) else None
                future = self.pending.pop(request_id, None) if isinstance(request_id, int) else None
                if future is None:
                    logger.warning("websocket API: an answer to no request of ours: %.200s", message.data)
                elif not future.done():
                    future.set_result(answer)
            self.closed_because = f"the venue closed the websocket API connection (code {self.ws.close_code})"
        except (aiohttp.ClientError, ConnectionError) as error:
            self.closed_because = f"the websocket API connection was lost ({type(error).__name__})"
        finally:
            self.closed_because = self.closed_because or "the websocket API connection was closed"
            for future in self.pending.values():
                if not future.done():
                    future.set_exception(_OutcomeUnknown(f"{self.closed_because} before the answer"))
            self.pending.clear()

    async def close(self) -> None:
        await self.ws.close()
        await self.reader


class BinanceFuturesClient:
    """Signed REST client of Binance USDⓈ-M futures.

    Parameters
    ----------
    rest_url
        ``https://fapi.binance.com`` or a local venue's ``rest_url``.
    credentials
        The API key and secret.
    recv_window_ms
        ``recvWindow`` of signed requests (the venue refuses a request older than this).
    rate_limiter
        Optional core :class:`~marketmaker.RateLimiter` to feed with the venue's usage headers
        (``observe_usage``) and with 429/418 back-offs (``block_for``), on the
        :func:`time.monotonic_ns` clock.
    timeout_s
        Total time allowed for one request; beyond it a place or cancel is ``unknown``.

    Notes
    -----
    ``last_request_written_ns`` is :func:`time.perf_counter_ns` when the last place or cancel
    request's bytes entered the kernel (``sock.send`` returned); ``place_orders`` also reports
    the stamp of its own first request to an ``on_written`` callback (the stamp of *this* call,
    not of a request another task wrote meanwhile). The client puts every parameter in the
    query (no body), so aiohttp writes the whole request inline in its ``send()``, with no await
    between its ``on_request_headers_sent`` trace hook and the socket write; the hook arms a
    stamp that the connection's socket takes when the write returns (see :class:`_WriteStamps`).
    On event loops that write past Python's socket object (uvloop, Windows' proactor) the stamp
    is the hook's, a serialisation and a ``send`` early. A request with a body would be written
    by a task one loop iteration later (Python < 3.12), which is why there is none.

    Examples
    --------
    >>> async def main(rest_url: str, credentials: ApiCredentials) -> None:  # doctest: +SKIP
    ...     async with BinanceFuturesClient(rest_url, credentials) as client:
    ...         await client.sync_time()
    ...         results = await client.place_orders("BTCUSDT", [NewOrder("b1", Side.BUY, 59000.0, 0.01)])
    """

    ORDER_PATH: Final = "/fapi/v1/order"
    BATCH_ORDERS_PATH: Final = "/fapi/v1/batchOrders"
    ALL_OPEN_ORDERS_PATH: Final = "/fapi/v1/allOpenOrders"
    OPEN_ORDERS_PATH: Final = "/fapi/v1/openOrders"
    POSITION_RISK_PATH: Final = "/fapi/v2/positionRisk"
    USER_TRADES_PATH: Final = "/fapi/v1/userTrades"
    BALANCE_PATH: Final = "/fapi/v2/balance"
    LEVERAGE_PATH: Final = "/fapi/v1/leverage"
    COUNTDOWN_CANCEL_ALL_PATH: Final = "/fapi/v1/countdownCancelAll"
    LISTEN_KEY_PATH: Final = "/fapi/v1/listenKey"
    TIME_PATH: Final = "/fapi/v1/time"
    EXCHANGE_INFO_PATH: Final = "/fapi/v1/exchangeInfo"
    MAX_BATCH_PLACE: Final = 5
    MAX_BATCH_CANCEL: Final = 10

    def __init__(
        self,
        rest_url: str,
        credentials: ApiCredentials,
        recv_window_ms: int = 5000,
        rate_limiter: RateLimiter | None = None,
        timeout_s: float = 5.0,
    ) -> None:
        if not 0 < recv_window_ms <= 60000:
            raise ValueError(f"recv_window_ms must be in 1..60000, got {recv_window_ms}")
        if timeout_s <= 0:
            raise ValueError(f"timeout_s must be positive, got {timeout_s}")
        self.rest_url = rest_url.rstrip("/")
        self.credentials = credentials
        self.recv_window_ms = recv_window_ms
        self.rate_limiter = rate_limiter
        self.timeout_s = timeout_s
        #: Server time minus local time, ms (from :meth:`sync_time`).
        self.time_offset_ms = 0.0
        #: perf_counter_ns just before the last place/cancel request's bytes went to the socket.
        self.last_request_written_ns = 0
        #: The same stamp for the last request that placed orders (POST order or batchOrders).
        self.last_place_written_ns = 0
        self.instruments_by_symbol: dict[str, InstrumentInfo] = {}
        self._session: aiohttp.ClientSession | None = None
        self._headers = {"X-MBX-APIKEY": credentials.api_key}
        self._recv_window = f"&recvWindow={recv_window_ms}&timestamp="
        # monotonic seconds until which nothing (weight, ban) or no new order (order count) goes out
        self._blocked_until = 0.0
        self._orders_blocked_until = 0.0
        self._order_request = _OrderRequest()
        self._write_stamps: _WriteStamps | None = None
        self._order_socket: _OrderSocket | None = None
        self._order_socket_url = ""
        self._order_socket_ssl: ssl.SSLContext | None = None
        self._reopening: asyncio.Task[None] | None = None

    def __repr__(self) -> str:
        return f"BinanceFuturesClient(rest_url={self.rest_url!r}, key_id={self.credentials.key_id!r})"

    # -- lifecycle ---------------------------------------------------------------------------

    async def __aenter__(self) -> BinanceFuturesClient:
        await self.open()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def open(self) -> None:
        """Opens the HTTP session (``async with`` does it)."""
        if self._session is not None:
            return
        trace = aiohttp.TraceConfig()
        trace.on_request_headers_sent.append(self._on_request_headers_sent)
        # The socket's own writes are stamped on asyncio's selector loops, where the transport
        # calls sock.send; other loops (uvloop, Windows' proactor) write past the Python socket
        # and get the trace hook's stamp.
        loop = asyncio.get_running_loop()
        self._write_stamps = _WriteStamps(self) if isinstance(loop, asyncio.SelectorEventLoop) else None
        connector = aiohttp.TCPConnector(
            limit=0,
            keepalive_timeout=60.0,
            socket_factory=None if self._write_stamps is None else self._write_stamps.socket,
        )
        self._session = aiohttp.ClientSession(
            timeout=aiohttp.ClientTimeout(total=self.timeout_s),
            trace_configs=[trace],
            connector=connector,
            cookie_jar=aiohttp.DummyCookieJar(),  # the venue sets none; skips filtering per request
        )

    async def close(self) -> None:
        """Closes the order websocket, the HTTP session and its connections."""
        if self._reopening is not None:
            self._reopening.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reopening
        if self._order_socket is not None:
            await self._order_socket.close()
            self._order_socket = None
        if self._session is not None:
            await self._session.close()
            self._session = None

    @property
    def session(self) -> aiohttp.ClientSession:
        """The client's session (the user stream opens its websocket on it)."""
        if self._session is None:
            raise RuntimeError("BinanceFuturesClient is not open: use 'async with BinanceFuturesClient(...)'")
        return self._session

    async def open_order_websocket(self, url: str, *, ssl_context: ssl.SSLContext | None = None) -> None:
        """Sends places and cancels over the venue's websocket API from now on: one signed
        ``order.place`` or ``order.cancel`` text frame per order on a connection that stays
        open (``wss://ws-fapi.binance.com/ws-fapi/v1``; a local venue's ``ws_url`` +
        ``/ws-fapi/v1``), instead of one HTTP request per batch — a frame costs the client a
        fraction of a request's time between the call and the write.

        While that connection is down (lost, or closed by the venue), places and cancels go
        over REST, and the next one reopens it in the background. Reads, leverage and
        cancel-all stay on REST.

        Raises
        ------
        VenueConnectionError
            When the connection cannot be opened.
        """
        self._order_socket_url = url
        self._order_socket_ssl = ssl_context
        self._order_socket = await self._connect_order_socket()

    @property
    def order_websocket_open(self) -> bool:
        """True while places and cancels go over the websocket API."""
        return self._order_socket is not None and self._order_socket.is_open

    async def _connect_order_socket(self) -> _OrderSocket:
        url = self._order_socket_url
        try:
            ws = await self.session.ws_connect(
                url,
                ssl=self._order_socket_ssl if self._order_socket_ssl is not None else True,
                heartbeat=30.0,
                compress=0,
                timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=self.timeout_s),
            )
        except (aiohttp.ClientError, OSError, asyncio.TimeoutError) as error:
            raise VenueConnectionError(f"websocket API {url}: cannot connect ({_describe(error)})") from None
        logger.info("order requests go over the websocket API at %s", url)
        return _OrderSocket(ws, url)

    def _order_socket_or_reopen(self) -> _OrderSocket | None:
        """The open order websocket, or None (the request goes over REST) while it is down,
        reopening it in the background once at a time."""
        socket = self._order_socket
        if socket is None or socket.is_open:
            return socket
        if self._reopening is None:
            logger.warning("%s: orders go over REST until it is reopened", socket.closed_because)
            self._reopening = asyncio.create_task(self._reopen_order_socket(), name="reopen-order-websocket")
        return None

    async def _reopen_order_socket(self) -> None:
        try:
            for attempt in range(1_000_000):
                try:
                    self._order_socket = await self._connect_order_socket()
                    return
                except VenueConnectionError as error:
                    logger.warning("%s (attempt %d)", error, attempt + 1)
                    await asyncio.sleep(min(0.5 * 2**attempt, 10.0))
        finally:
            self._reopening = None

    async def _on_request_headers_sent(
        self, session: aiohttp.ClientSession, context: SimpleNamespace, params: aiohttp.TraceRequestHeadersSentParams
    ) -> None:
        request = context.trace_request_ctx
        if isinstance(request, _OrderRequest):
            request.is_place = params.method == "POST"  # a place (cancels are DELETEs)
            if self._write_stamps is not None:
                self._write_stamps.arm(request)
            else:
                self._written(request, time.perf_counter_ns())

    def _written(self, request: _OrderRequest, written_ns: int) -> None:
        self.last_request_written_ns = written_ns
        if request.is_place:
            self.last_place_written_ns = written_ns
        if request.on_written is not None:
            on_written, request.on_written = request.on_written, None  # a -1021 resend is not a new write
            on_written(written_ns)

    # -- time --------------------------------------------------------------------------------

    async def sync_time(self, samples: int = 5) -> float:
        """Measures the server-time offset (median of ``samples`` round trips, each taken at its
        midpoint) and uses it for every signed timestamp from now on.

        Returns
        -------
        float
            Server time minus local time, ms.
        """
        if samples < 1:
            raise ValueError(f"samples must be >= 1, got {samples}")
        offsets = []
        for _ in range(samples):
            sent_ns = time.time_ns()
            answer = await self._public("GET", self.TIME_PATH)
            received_ns = time.time_ns()
            server_ms = _field(answer, "serverTime", int, "GET /fapi/v1/time")
            offsets.append(server_ms - (sent_ns + received_ns) / 2e6)
        self.time_offset_ms = statistics.median(offsets)
        logger.info("server time offset %.1f ms (median of %d)", self.time_offset_ms, samples)
        return self.time_offset_ms

    async def warm_connections(self, count: int) -> int:
        """Opens (or touches) ``count`` keep-alive connections to the venue by sending ``count``
        ``GET /fapi/v1/time`` at once (weight 1 each), so that the next ``count`` concurrent
        order requests find an open connection in the pool: a new TCP connection (and on a real
        venue a TLS handshake) costs one or more round trips that would otherwise fall on an
        order's path. aiohttp closes a connection idle for 60 s; calling this more often keeps
        them.

        Returns
        -------
        int
            How many of the requests were answered.
        """
        if count < 1:
            return 0
        answers = await asyncio.gather(
            *(self._public("GET", self.TIME_PATH) for _ in range(count)), return_exceptions=True
        )
        return sum(1 for answer in answers if not isinstance(answer, BaseException))

    def server_time_ms(self) -> int:
        """Local time plus the measured offset: the ``timestamp`` of a signed request."""
        return int(time.time_ns() / 1e6 + self.time_offset_ms)

    # -- reads and admin ---------------------------------------------------------------------

    async def instruments(self, symbols: Sequence[str]) -> dict[str, InstrumentInfo]:
        """The filters of ``symbols`` from ``exchangeInfo`` (also kept to format order prices).

        Raises
        ------
        VenueError
            When a symbol is not listed (code ``-1121``).
        """
        answer = await self._public("GET", self.EXCHANGE_INFO_PATH)
        listed = {item.get("symbol"): item for item in _field(answer, "symbols", list, "exchangeInfo")}
        found: dict[str, InstrumentInfo] = {}
        for symbol in symbols:
            item = listed.get(symbol)
            if item is None:
                raise VenueError(-1121, f"symbol {symbol!r} is not listed in exchangeInfo", None)
            filters = {f.get("filterType"): f for f in item.get("filters", [])}
            where = f"exchangeInfo {symbol}"
            try:
                found[symbol] = InstrumentInfo(
                    symbol=symbol,
                    tick_size=str(filters["PRICE_FILTER"]["tickSize"]),
                    step_size=str(filters["LOT_SIZE"]["stepSize"]),
                    min_qty=float(filters["LOT_SIZE"]["minQty"]),
                    min_notional=float(filters.get("MIN_NOTIONAL", {}).get("notional", 0.0)),
                )
            except (KeyError, TypeError, ValueError) as error:
                raise MalformedMessageError(f"{where}: filter field {error} missing or not a number") from None
        self.instruments_by_symbol.update(found)
        return found

    async def set_leverage(self, symbol: str, leverage: int) -> None:
        """Sets the symbol's leverage (``-4028`` outside the allowed range)."""
        await self._signed_or_raise("POST", self.LEVERAGE_PATH, [("symbol", symbol), ("leverage", str(leverage))])

    async def cancel_all(self, symbol: str) -> None:
        """Cancels every open order of ``symbol``."""
        await self._signed_or_raise("DELETE", self.ALL_OPEN_ORDERS_PATH, [("symbol", symbol)], order_request=True)

    async def open_orders(self, symbol: str) -> list[OpenOrder]:
        """The account's open orders on ``symbol``, oldest first."""
        answer = await self._signed_or_raise("GET", self.OPEN_ORDERS_PATH, [("symbol", symbol)])
        if not isinstance(answer, list):
            raise MalformedMessageError(f"GET {self.OPEN_ORDERS_PATH}: expected a list, got {type(answer).__name__}")
        orders = []
        for item in answer:
            where = f"GET {self.OPEN_ORDERS_PATH} order"
            orders.append(
                OpenOrder(
                    symbol=_field(item, "symbol", str, where),
                    client_order_id=_field(item, "clientOrderId", str, where),
                    order_id=_field(item, "orderId", int, where),
                    side=_side(_field(item, "side", str, where), where),
                    price=_field(item, "price", float, where),
                    quantity=_field(item, "origQty", float, where),
                    filled=_field(item, "executedQty", float, where),
                )
            )
        return orders

    async def user_trades(
        self, symbol: str, *, start_time_ms: int | None = None, from_id: int | None = None, limit: int = 1000
    ) -> list[UserTrade]:
        """The account's trades on ``symbol``, oldest first: from trade id ``from_id`` on, or
        from ``start_time_ms`` on (the venue allows at most 7 days from it), at most ``limit``
        (1..1000) per call."""
        params = [("symbol", symbol), ("limit", str(limit))]
        if from_id is not None:
            params.append(("fromId", str(from_id)))
        elif start_time_ms is not None:
            params.append(("startTime", str(start_time_ms)))
        answer = await self._signed_or_raise("GET", self.USER_TRADES_PATH, params)
        if not isinstance(answer, list):
            raise MalformedMessageError(f"GET {self.USER_TRADES_PATH}: expected a list, got {type(answer).__name__}")
        where = f"GET {self.USER_TRADES_PATH} trade"
        return [
            UserTrade(
                symbol=_field(item, "symbol", str, where),
                trade_id=_field(item, "id", int, where),
                order_id=_field(item, "orderId", int, where),
                side=_side(_field(item, "side", str, where), where),
                price=_field(item, "price", float, where),
                quantity=_field(item, "qty", float, where),
                commission=_field(item, "commission", float, where),
                commission_asset=_field(item, "commissionAsset", str, where),
                realized_pnl=_field(item, "realizedPnl", float, where),
                is_maker=_field(item, "maker", bool, where),
                time_ms=_field(item, "time", int, where),
            )
            for item in answer
        ]

    async def position(self, symbol: str) -> PositionInfo:
        """The one-way position of ``symbol`` (size 0 when flat)."""
        answer = await self._signed_or_raise("GET", self.POSITION_RISK_PATH, [("symbol", symbol)])
        where = f"GET {self.POSITION_RISK_PATH}"
        for item in answer if isinstance(answer, list) else []:
            if item.get("symbol") == symbol and item.get("positionSide", "BOTH") == "BOTH":
                return PositionInfo(
                    symbol=symbol,
                    size=_field(item, "positionAmt", float, where),
                    entry_price=_field(item, "entryPrice", float, where),
                    unrealized_pnl=_field(item, "unRealizedProfit", float, where),
                    leverage=_field(item, "leverage", int, where),
                )
        raise MalformedMessageError(f"{where}: no one-way (BOTH) position for {symbol}")

    async def balance(self, asset: str = "USDT") -> float:
        """The wallet balance of ``asset`` (0 when the account has none)."""
        answer = await self._signed_or_raise("GET", self.BALANCE_PATH, [])
        for item in answer if isinstance(answer, list) else []:
            if item.get("asset") == asset:
                return float(_field(item, "balance", float, f"GET {self.BALANCE_PATH} {asset}"))
        return 0.0

    async def countdown_cancel_all(self, symbol: str, countdown_ms: int) -> None:
        """Arms (or re-arms) the dead-man switch: every open order of ``symbol`` is cancelled
        ``countdown_ms`` from now unless called again; 0 disarms it."""
        await self._signed_or_raise(
            "POST", self.COUNTDOWN_CANCEL_ALL_PATH, [("symbol", symbol), ("countdownTime", str(countdown_ms))]
        )

    async def new_listen_key(self) -> str:
        """Creates (or returns and extends) the account's listen key for the user stream."""
        answer = await self._keyed("POST")
        return str(_field(answer, "listenKey", str, f"POST {self.LISTEN_KEY_PATH}"))

    async def keep_alive_listen_key(self) -> None:
        """Extends the listen key by 60 minutes (``-1125`` when it expired: make a new one)."""
        await self._keyed("PUT")

    async def close_listen_key(self) -> None:
        """Closes the listen key (its user-stream connections end)."""
        await self._keyed("DELETE")

    # -- orders ------------------------------------------------------------------------------

    async def place_orders(
        self, symbol: str, orders: Sequence[NewOrder], *, on_written: Callable[[int], None] | None = None
    ) -> list[OrderResult]:
        """Places limit orders: ``POST /fapi/v1/batchOrders`` in chunks of 5 (a single order
        goes to ``/fapi/v1/order``), one after the other.

        ``on_written(perf_counter_ns)`` is called once, when the first request's bytes are
        written to the socket (before its answer), if it is written at all.

        Returns
        -------
        list[OrderResult]
            One per order, in input order. A whole chunk refused (bad signature, 503 "Service
            Unavailable", -1008, ...) rejects each of its orders with that code; a chunk whose
            answer was lost makes each of its orders ``unknown``. After a 429/418 the remaining
            chunks are not sent and their orders are rejected with that code.

        Raises
        ------
        RateLimitedError
            When nothing could be sent: the first chunk got 429/418, or the venue's back-off was
            not over (then no request was sent).
        """
        if not orders:
            return []
        instrument = self.instruments_by_symbol.get(symbol)
        socket = self._order_socket_or_reopen()
        if socket is not None:
            self._refuse_while_blocked(orders_too=True)
            request = _OrderRequest(on_written)
            request.is_place = True
            places = [dict(_order_params(symbol, order, instrument)) for order in orders]
            return await self._ws_orders(socket, "order.place", places, [o.client_order_id for o in orders], request)
        results: list[OrderResult] = []
        for start in range(0, len(orders), self.MAX_BATCH_PLACE):
            chunk = orders[start : start + self.MAX_BATCH_PLACE]
            if len(chunk) == 1:
                params = _order_params(symbol, chunk[0], instrument)
                path = self.ORDER_PATH
            else:
                params = [("batchOrders", _batch_orders_value(symbol, chunk, instrument))]
                path = self.BATCH_ORDERS_PATH
            try:
                self._refuse_while_blocked(orders_too=True)  # another task may have met a 429 meanwhile
                ids = [o.client_order_id for o in chunk]
                request = _OrderRequest(on_written if start == 0 else None)
                results.extend(await self._send_orders("POST", path, params, ids, request))
            except RateLimitedError as error:
                if not results:
                    raise
                for order in orders[len(results) :]:
                    results.append(OrderResult(order.client_order_id, "rejected", code=error.code, message=str(error)))
                break
        return results

    async def cancel_orders(
        self, symbol: str, client_order_ids: Sequence[str], *, on_written: Callable[[int], None] | None = None
    ) -> list[OrderResult]:
        """Cancels orders by client id: ``DELETE /fapi/v1/batchOrders`` with
        ``origClientOrderIdList``, at most 10 per request; ``on_written`` as in
        :meth:`place_orders`.

        Returns
        -------
        list[OrderResult]
            One per id, in input order: ``accepted`` (cancelled), ``rejected`` (``-2011``: the
            order is not open — filled, cancelled, expired or unknown) or ``unknown``.

        Raises
        ------
        RateLimitedError
            As :meth:`place_orders` (cancels are not held back by an order-count 429).
        """
        if not client_order_ids:
            return []
        socket = self._order_socket_or_reopen()
        if socket is not None:
            self._refuse_while_blocked(orders_too=False)
            cancels = [{"symbol": symbol, "origClientOrderId": c} for c in client_order_ids]
            return await self._ws_orders(
                socket, "order.cancel", cancels, list(client_order_ids), _OrderRequest(on_written)
            )
        results: list[OrderResult] = []
        for start in range(0, len(client_order_ids), self.MAX_BATCH_CANCEL):
            chunk = list(client_order_ids[start : start + self.MAX_BATCH_CANCEL])
            params = [
                ("symbol", symbol),
                ("origClientOrderIdList", json.dumps(chunk, separators=(",", ":"))),
            ]
            try:
                self._refuse_while_blocked(orders_too=False)
                request = _OrderRequest(on_written if start == 0 else None)
                results.extend(await self._send_orders("DELETE", self.BATCH_ORDERS_PATH, params, chunk, request))
            except RateLimitedError as error:
                if not results:
                    raise
                for client_order_id in client_order_ids[len(results) :]:
                    results.append(OrderResult(client_order_id, "rejected", code=error.code, message=str(error)))
                break
        return results

    async def _send_orders(
        self, method: str, path: str, params: list[tuple[str, str]], client_order_ids: list[str], request: _OrderRequest
    ) -> list[OrderResult]:
        try:
            answer = await self._signed(method, path, params, request)
        except _OutcomeUnknown as lost:
            logger.warning("%s %s: outcome unknown for %d orders (%s)", method, path, len(client_order_ids), lost)
            return [OrderResult(c, "unknown", message=str(lost)) for c in client_order_ids]
        except _NotSent as not_sent:
            return [OrderResult(c, "rejected", message=str(not_sent)) for c in client_order_ids]
        if answer.status == 200 and isinstance(answer.body, list):
            results = [_order_result(c, item) for c, item in zip(client_order_ids, answer.body)]
            missing = "the venue's answer has no item for this order"
            return results + [OrderResult(c, "unknown", message=missing) for c in client_order_ids[len(results) :]]
        if answer.status == 200 and isinstance(answer.body, dict):
            return [_order_result(client_order_ids[0], answer.body)]
        self._raise_if_rate_limited(answer)
        if answer.code in UNKNOWN_OUTCOME_CODES or (answer.status >= 500 and answer.code not in (-1001, -1008)):
            logger.warning("%s %s: outcome unknown (HTTP %d code %s)", method, path, answer.status, answer.code)
            return [OrderResult(c, "unknown", code=answer.code, message=answer.message) for c in client_order_ids]
        return [OrderResult(c, "rejected", code=answer.code, message=answer.message) for c in client_order_ids]

    async def _ws_orders(
        self,
        socket: _OrderSocket,
        method: str,
        param_sets: list[dict[str, str]],
        client_order_ids: list[str],
        request: _OrderRequest,
        *,
        resend_on_clock_error: bool = True,
    ) -> list[OrderResult]:
        """One websocket API request per order, all written before any answer is awaited; the
        first one's write is stamped for ``request``. An order whose frame could not be written
        is rejected (not sent); one whose answer does not come within ``timeout_s``, or whose
        connection closes first, is unknown."""
        results: list[OrderResult | None] = [None] * len(param_sets)
        waiting: list[tuple[int, asyncio.Future[dict[str, Any]]]] = []
        for index, params in enumerate(param_sets):
            frame, future = socket.request(method, self._ws_signed(params))
            if index == 0 and self._write_stamps is not None:
                self._write_stamps.arm(request)
            try:
                await socket.ws.send_str(frame)
            except (ConnectionError, RuntimeError, aiohttp.ClientError) as error:
                socket.forget(future)
                for later in range(index, len(param_sets)):
                    message = f"not sent: the websocket API connection is closing ({type(error).__name__})"
                    results[later] = OrderResult(client_order_ids[later], "rejected", message=message)
                break
            if index == 0 and self._write_stamps is None:
                self._written(request, time.perf_counter_ns())
            waiting.append((index, future))
        if waiting:
            await asyncio.wait([future for _, future in waiting], timeout=self.timeout_s)
        clock_errors: list[int] = []
        for index, future in waiting:
            client_order_id = client_order_ids[index]
            if not future.done():
                socket.forget(future)
                future.cancel()
                results[index] = OrderResult(client_order_id, "unknown", message=f"no answer within {self.timeout_s} s")
            elif (lost := future.exception()) is not None:
                results[index] = OrderResult(client_order_id, "unknown", message=str(lost))
            else:
                results[index] = self._ws_result(client_order_id, future.result())
                if results[index].code == TIMESTAMP_OUTSIDE_WINDOW:  # type: ignore[union-attr]
                    clock_errors.append(index)
        if clock_errors and resend_on_clock_error and socket.is_open:
            logger.warning(
                "%s: -1021 for %d orders: re-syncing server time and resending them once", method, len(clock_errors)
            )
            await self.sync_time()
            again = await self._ws_orders(
                socket,
                method,
                [param_sets[i] for i in clock_errors],
                [client_order_ids[i] for i in clock_errors],
                _OrderRequest(),
                resend_on_clock_error=False,
            )
            for index, result in zip(clock_errors, again):
                results[index] = result
        return [r for r in results if r is not None]

    def _ws_signed(self, params: Mapping[str, str]) -> dict[str, Any]:
        """A websocket API request's parameters with ``apiKey``, ``recvWindow``, ``timestamp``
        and the ``signature`` over all of them, sorted by name, as ``name=value&...``."""
        signed: dict[str, Any] = dict(params)
        signed["apiKey"] = self.credentials.api_key
        signed["recvWindow"] = self.recv_window_ms
        signed["timestamp"] = self.server_time_ms()
        payload = "&".join(f"{name}={signed[name]}" for name in sorted(signed))
        signed["signature"] = binance_signature(self.credentials.secret, payload)
        return signed

    def _ws_result(self, client_order_id: str, answer: Mapping[str, Any]) -> OrderResult:
        """One order's outcome from its websocket API answer (rate limits observed, 429/418
        backed off as over REST)."""
        self._observe_ws_usage(answer.get("rateLimits"))
        status = answer.get("status")
        if status == 200:
            return _order_result(client_order_id, answer.get("result"))
        error = answer.get("error")
        code = error.get("code") if isinstance(error, dict) and isinstance(error.get("code"), int) else None
        message = (
            str(error.get("msg", "")) if isinstance(error, dict) else f"an answer without an error: {answer!r:.200}"
        )
        status = status if isinstance(status, int) else 0
        if status in (418, 429):
            self._back_off(_Answer(status, None, code, message))
            return OrderResult(client_order_id, "rejected", code=code, message=message)
        if code in UNKNOWN_OUTCOME_CODES or (status >= 500 and code not in (-1001, -1008)):
            return OrderResult(client_order_id, "unknown", code=code, message=message)
        return OrderResult(client_order_id, "rejected", code=code, message=message)

    def _observe_ws_usage(self, rate_limits: Any) -> None:
        if self.rate_limiter is None or not isinstance(rate_limits, list):
            return
        weight = orders = orders_1m = None
        for limit in rate_limits:
            if not isinstance(limit, dict) or not isinstance(limit.get("count"), int):
                continue
            kind, interval, number = limit.get("rateLimitType"), limit.get("interval"), limit.get("intervalNum")
            if kind == "REQUEST_WEIGHT" and interval == "MINUTE" and number == 1:
                weight = float(limit["count"])
            elif kind == "ORDERS" and interval == "SECOND" and number == 10:
                orders = float(limit["count"])
            elif kind == "ORDERS" and interval == "MINUTE" and number == 1:
                orders_1m = float(limit["count"])
        if weight is not None or orders is not None or orders_1m is not None:
            self.rate_limiter.observe_usage(
                time.monotonic_ns(), used_weight_1m=weight, order_count_10s=orders, order_count_1m=orders_1m
            )

    # -- requests ----------------------------------------------------------------------------

    def _refuse_while_blocked(self, *, orders_too: bool) -> None:
        now = time.monotonic()
        until = max(self._blocked_until, self._orders_blocked_until) if orders_too else self._blocked_until
        if until > now:
            raise RateLimitedError(
                TOO_MANY_ORDERS if self._blocked_until <= now else TOO_MANY_REQUESTS,
                f"not sent: the venue's rate-limit back-off lasts {until - now:.1f} s more",
                None,
                until - now,
            )

    async def _signed_or_raise(
        self, method: str, path: str, params: list[tuple[str, str]], *, order_request: bool = False
    ) -> Any:
        self._refuse_while_blocked(orders_too=False)
        try:
            answer = await self._signed(method, path, params, self._order_request if order_request else None)
        except (_OutcomeUnknown, _NotSent) as error:
            raise VenueConnectionError(f"{method} {path}: {error}") from None
        return self._body_or_raise(method, path, answer)

    async def _keyed(self, method: str) -> Any:
        """A USER_STREAM request: API key, no signature."""
        self._refuse_while_blocked(orders_too=False)
        try:
            answer = await self._request(method, self.rest_url + self.LISTEN_KEY_PATH, self._headers, None)
        except (_OutcomeUnknown, _NotSent) as error:
            raise VenueConnectionError(f"{method} {self.LISTEN_KEY_PATH}: {error}") from None
        return self._body_or_raise(method, self.LISTEN_KEY_PATH, answer)

    async def _public(self, method: str, path: str) -> Any:
        self._refuse_while_blocked(orders_too=False)
        try:
            answer = await self._request(method, self.rest_url + path, None, None)
        except (_OutcomeUnknown, _NotSent) as error:
            raise VenueConnectionError(f"{method} {path}: {error}") from None
        return self._body_or_raise(method, path, answer)

    def _body_or_raise(self, method: str, path: str, answer: _Answer) -> Any:
        if answer.status == 200:
            return answer.body
        self._raise_if_rate_limited(answer)
        if answer.status >= 500 and answer.code not in (-1001, -1008):
            raise VenueConnectionError(f"{method} {path}: HTTP {answer.status} code {answer.code}: {answer.message}")
        raise VenueError(answer.code, answer.message, answer.status)

    async def _signed(
        self, method: str, path: str, params: list[tuple[str, str]], order_request: _OrderRequest | None = None
    ) -> _Answer:
        """Signs and sends; on ``-1021`` re-syncs the clock once and sends once more."""
        answer = await self._send_signed(method, path, params, order_request)
        if answer.code == TIMESTAMP_OUTSIDE_WINDOW:
            logger.warning("%s %s: -1021 (%s): re-syncing server time and retrying once", method, path, answer.message)
            await self.sync_time()
            answer = await self._send_signed(method, path, params, order_request)
        return answer

    async def _send_signed(
        self, method: str, path: str, params: list[tuple[str, str]], order_request: _OrderRequest | None
    ) -> _Answer:
        text = _query(params) + self._recv_window + str(self.server_time_ms())
        if text[0] == "&":
            text = text[1:]
        text += "&signature=" + binance_signature(self.credentials.secret, text)
        # In the query, for every method: with no body aiohttp writes the request inline in its
        # send(), with a body it schedules a writer task (a loop iteration later before 3.12).
        return await self._request(method, self.rest_url + path + "?" + text, self._headers, order_request)

    async def _request(
        self, method: str, url: str, headers: Mapping[str, str] | None, order_request: _OrderRequest | None
    ) -> _Answer:
        session = self.session
        try:
            async with session.request(
                method,
                URL(url, encoded=True),  # signed bytes = sent bytes: yarl must not re-quote
                headers=headers,
                trace_request_ctx=order_request,
            ) as response:
                raw = await response.read()
                self._observe_usage(response.headers)
                status = response.status
                retry_after = response.headers.get("Retry-After")
        except aiohttp.ClientConnectorError as error:
            raise _NotSent(f"not sent: cannot connect ({type(error).__name__})") from None
        except asyncio.TimeoutError:
            raise _OutcomeUnknown(f"no answer within {self.timeout_s} s") from None
        except aiohttp.ClientError as error:
            raise _OutcomeUnknown(f"connection lost before the answer ({type(error).__name__})") from None
        try:
            body_json = json.loads(raw) if raw else None
        except ValueError:
            body_json = None
        code, message = None, ""
        if isinstance(body_json, dict) and isinstance(body_json.get("code"), int) and status != 200:
            code, message = body_json["code"], str(body_json.get("msg", ""))
        elif status != 200:
            message = raw[:200].decode(errors="replace")
        if status == 200 and body_json is None:
            raise _OutcomeUnknown("an answer that is not JSON")
        answer = _Answer(status, body_json, code, message)
        if status in (418, 429):
            if retry_after is not None and retry_after.isdigit():
                answer.retry_after_s = float(retry_after)
            self._back_off(answer)
        return answer

    def _observe_usage(self, headers: Mapping[str, str]) -> None:
        if self.rate_limiter is None:
            return
        weight = headers.get("X-MBX-USED-WEIGHT-1M")
        orders = headers.get("X-MBX-ORDER-COUNT-10S")
        orders_1m = headers.get("X-MBX-ORDER-COUNT-1M")
        if weight is None and orders is None and orders_1m is None:
            return
        self.rate_limiter.observe_usage(
            time.monotonic_ns(),
            used_weight_1m=float(weight) if weight is not None else None,
            order_count_10s=float(orders) if orders is not None else None,
            order_count_1m=float(orders_1m) if orders_1m is not None else None,
        )

    def _back_off(self, answer: _Answer) -> None:
        """Holds requests back after a 429/418 for as long as it implies."""
        pause_s = WEIGHT_WINDOW_S
        if answer.retry_after_s is not None:
            pause_s = answer.retry_after_s
        elif answer.status == 418:
            banned_until = _BANNED_UNTIL.search(answer.message)
            if banned_until is not None:
                pause_s = (int(banned_until.group(1)) - self.server_time_ms()) / 1000 + 0.05
            else:
                pause_s = SHORTEST_BAN_S
        elif answer.code == TOO_MANY_ORDERS and "10 SECOND" in answer.message:
            pause_s = ORDERS_10S_WINDOW_S
        pause_s = max(pause_s, 0.0)
        until = time.monotonic() + pause_s
        if answer.code == TOO_MANY_ORDERS and answer.status == 429:
            self._orders_blocked_until = max(self._orders_blocked_until, until)
        else:
            self._blocked_until = max(self._blocked_until, until)
        if self.rate_limiter is not None:
            self.rate_limiter.block_for(time.monotonic_ns(), int(pause_s * 1e9))
        logger.warning(
            "HTTP %d code %s from the venue: holding back %s for %.1f s",
            answer.status,
            answer.code,
            "new orders" if answer.code == TOO_MANY_ORDERS and answer.status == 429 else "every request",
            pause_s,
        )

    def _raise_if_rate_limited(self, answer: _Answer) -> None:
        if answer.status in (418, 429):
            until = self._orders_blocked_until if answer.code == TOO_MANY_ORDERS else self._blocked_until
            raise RateLimitedError(
                answer.code, answer.message, answer.status, max(until, self._blocked_until) - time.monotonic()
            )


# -- the user-data stream ----------------------------------------------------------------------


class BinanceUserStream:
    """The account's user-data stream as typed events.

    ``async with BinanceUserStream(client, ws_url) as stream: async for event in stream:``
    yields :class:`~marketmaker.exchanges.events.OrderUpdate`,
    :class:`~marketmaker.exchanges.events.AccountUpdate` and, after the stream was down
    (``listenKeyExpired``, a dropped connection, a failed keepalive),
    :class:`~marketmaker.exchanges.events.StreamRestarted` once it is connected again on a fresh
    listen key: events in between may be lost, so backfill over REST then.

    Parameters
    ----------
    client
        An open :class:`BinanceFuturesClient` (listen keys are made and kept alive through it;
        the websocket uses its session).
    ws_url
        The websocket base, e.g. ``wss://fstream.binance.com``; the stream is
        ``ws_url + "/private/ws?listenKey=..."``.
    ssl_context
        Trust for the websocket (the local venue's ``client_ssl_context``); None = the default.
    keep_alive_interval_s
        How often the listen key is extended (``PUT``); Binance wants at least every 60 min.
    reconnect_delay_s
        First wait before reconnecting after a failed attempt (doubles up to 30 s).
    """

    PRIVATE_PATH: Final = "/private/ws?listenKey="

    def __init__(
        self,
        client: BinanceFuturesClient,
        ws_url: str,
        ssl_context: Any = None,
        *,
        keep_alive_interval_s: float = 1800.0,
        reconnect_delay_s: float = 0.5,
    ) -> None:
        self.client = client
        self.ws_url = ws_url.rstrip("/")
        self.ssl_context = ssl_context
        self.keep_alive_interval_s = keep_alive_interval_s
        self.reconnect_delay_s = reconnect_delay_s
        self._ws: aiohttp.ClientWebSocketResponse[bool] | None = None
        self._keep_alive: asyncio.Task[None] | None = None
        self._restart_reason: str | None = None
        self._closed = False

    def __repr__(self) -> str:
        return f"BinanceUserStream(ws_url={self.ws_url!r}, key_id={self.client.credentials.key_id!r})"

    async def __aenter__(self) -> BinanceUserStream:
        await self._connect()
        self._keep_alive = asyncio.create_task(self._keep_alive_every_interval())
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    async def close(self) -> None:
        """Stops the keepalive, closes the websocket and the listen key."""
        self._closed = True
        if self._keep_alive is not None:
            self._keep_alive.cancel()
            try:
                await self._keep_alive
            except asyncio.CancelledError:
                pass
            self._keep_alive = None
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        try:
            await self.client.close_listen_key()
        except (VenueError, VenueConnectionError, RuntimeError) as error:
            logger.info("closing the listen key failed: %s", error)

    def __aiter__(self) -> BinanceUserStream:
        return self

    async def __anext__(self) -> UserStreamEvent:
        while not self._closed:
            if self._restart_reason is not None:
                reason, self._restart_reason = self._restart_reason, None
                await self._reconnect(reason)
                return StreamRestarted(reason)
            ws = self._ws
            if ws is None:
                self._restart_reason = "not connected"
                continue
            message = await ws.receive()
            if message.type == aiohttp.WSMsgType.TEXT:
                event = self._event(message.data)
                if event is not None:
                    return event
            elif message.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                if self._restart_reason is None:
                    self._restart_reason = "connection closed"
            elif message.type == aiohttp.WSMsgType.ERROR:
                self._restart_reason = f"connection error ({type(ws.exception()).__name__})"
        raise StopAsyncIteration

    def _event(self, text: str) -> OrderUpdate | AccountUpdate | None:
        try:
            payload = json.loads(text)
        except ValueError:
            raise MalformedMessageError(f"user stream: a message that is not JSON: {text[:80]!r}") from None
        if isinstance(payload, dict) and "data" in payload and "stream" in payload:
            payload = payload["data"]  # combined-stream envelope
        kind = payload.get("e") if isinstance(payload, dict) else None
        if kind == "ORDER_TRADE_UPDATE":
            return order_update_from_json(payload)
        if kind == "ACCOUNT_UPDATE":
            return account_update_from_json(payload)
        if kind == "listenKeyExpired":
            logger.warning("user stream: the listen key expired; reconnecting with a new one")
            self._restart_reason = "listenKeyExpired"
            return None
        logger.debug("user stream: %s ignored", kind)
        return None

    async def _connect(self) -> None:
        """A listen key and the websocket on it.

        Raises
        ------
        VenueConnectionError
            When the websocket cannot be opened; the message leaves out the URL, which carries
            the listen key (aiohttp's own errors print it).
        """
        listen_key = await self.client.new_listen_key()
        try:
            self._ws = await self.client.session.ws_connect(
                self.ws_url + self.PRIVATE_PATH + listen_key, ssl=self.ssl_context, heartbeat=None, autoping=True
            )
        except (aiohttp.ClientError, asyncio.TimeoutError) as error:
            raise VenueConnectionError(f"user stream: cannot connect ({_describe(error)})") from None

    async def _reconnect(self, reason: str) -> None:
        if self._ws is not None:
            await self._ws.close()
            self._ws = None
        delay = self.reconnect_delay_s
        while not self._closed:
            try:
                await self._connect()
                logger.info("user stream reconnected (%s)", reason)
                return
            except (VenueError, VenueConnectionError) as error:
                logger.warning("user stream: reconnecting failed (%s); next try in %.1f s", _describe(error), delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 30.0)

    async def _keep_alive_every_interval(self) -> None:
        while True:
            await asyncio.sleep(self.keep_alive_interval_s)
            try:
                await self.client.keep_alive_listen_key()
            except VenueError as error:
                if error.code != LISTEN_KEY_DOES_NOT_EXIST:
                    logger.warning("user stream: keepalive refused (%s); trying again next interval", error)
                    continue
                logger.warning("user stream: the listen key is gone (%s); restarting the stream", error)
                self._restart_reason = f"keepalive failed: code {error.code}"
                if self._ws is not None:
                    await self._ws.close()  # wakes the reader, which restarts
            except VenueConnectionError as error:
                logger.warning("user stream: keepalive failed (%s); trying again next interval", error)


# -- wire formats ------------------------------------------------------------------------------


def order_update_from_json(payload: Mapping[str, Any]) -> OrderUpdate:
    """An :class:`~marketmaker.exchanges.events.OrderUpdate` from an ``ORDER_TRADE_UPDATE``.

    Raises
    ------
    MalformedMessageError
        Naming the field that is missing or not of its type (``ORDER_TRADE_UPDATE o.l``).
    """
    where = "ORDER_TRADE_UPDATE"
    order = _field(payload, "o", dict, where)
    where_o = where + " o"
    commission_asset = order.get("N")
    return OrderUpdate(
        symbol=_field(order, "s", str, where_o),
        client_order_id=_field(order, "c", str, where_o),
        order_id=_field(order, "i", int, where_o),
        side=_side(_field(order, "S", str, where_o), where_o + ".S"),
        order_status=_field(order, "X", str, where_o),
        execution_type=_field(order, "x", str, where_o),
        price=_field(order, "p", float, where_o),
        quantity=_field(order, "q", float, where_o),
        last_fill_quantity=_field(order, "l", float, where_o),
        last_fill_price=_field(order, "L", float, where_o),
        cumulative_filled=_field(order, "z", float, where_o),
        average_price=_field(order, "ap", float, where_o),
        commission=float(order.get("n", 0.0) or 0.0),
        commission_asset=str(commission_asset) if commission_asset else None,
        trade_id=_field(order, "t", int, where_o),
        is_maker=_field(order, "m", bool, where_o),
        realized_pnl=_field(order, "rp", float, where_o),
        order_type=_field(order, "o", str, where_o),
        time_in_force=_field(order, "f", str, where_o),
        reduce_only=bool(order.get("R", False)),
        event_time_ms=_field(payload, "E", int, where),
        transaction_time_ms=_field(payload, "T", int, where),
    )


def account_update_from_json(payload: Mapping[str, Any]) -> AccountUpdate:
    """An :class:`~marketmaker.exchanges.events.AccountUpdate` from an ``ACCOUNT_UPDATE``.

    Raises
    ------
    MalformedMessageError
        Naming the field that is missing or not of its type.
    """
    where = "ACCOUNT_UPDATE"
    account = _field(payload, "a", dict, where)
    balances = tuple(
        BalanceUpdate(
            asset=_field(item, "a", str, where + " a.B"),
            wallet_balance=_field(item, "wb", float, where + " a.B"),
            cross_wallet_balance=_field(item, "cw", float, where + " a.B"),
            balance_change=float(item.get("bc", 0.0)),
        )
        for item in account.get("B", [])
    )
    positions = tuple(
        PositionUpdate(
            symbol=_field(item, "s", str, where + " a.P"),
            size=_field(item, "pa", float, where + " a.P"),
            entry_price=_field(item, "ep", float, where + " a.P"),
            breakeven_price=float(item.get("bep", 0.0)),
            accumulated_realized=float(item.get("cr", 0.0)),
            unrealized_pnl=_field(item, "up", float, where + " a.P"),
            margin_type=str(item.get("mt", "cross")),
            position_side=str(item.get("ps", "BOTH")),
        )
        for item in account.get("P", [])
    )
    return AccountUpdate(
        reason=_field(account, "m", str, where + " a"),
        balances=balances,
        positions=positions,
        event_time_ms=_field(payload, "E", int, where),
        transaction_time_ms=_field(payload, "T", int, where),
    )


def _field(container: Any, name: str, kind: type[Any], where: str) -> Any:
    """``container[name]`` as ``kind`` (numbers may come as strings); a clear error otherwise."""
    if not isinstance(container, Mapping) or name not in container:
        raise MalformedMessageError(f"{where}: field {name!r} is missing")
    value = container[name]
    if kind is float and isinstance(value, (str, int, float)) and not isinstance(value, bool):
        try:
            return float(value)
        except ValueError:
            pass
    elif kind is int and isinstance(value, (str, int)) and not isinstance(value, bool):
        try:
            return int(value)
        except ValueError:
            pass
    elif isinstance(value, kind):
        return value
    raise MalformedMessageError(f"{where}: field {name!r} is not a {kind.__name__}: {value!r}")


def _side(text: str, where: str) -> Side:
    side = _SIDES.get(text)
    if side is None:
        raise MalformedMessageError(f"{where}: side {text!r} is neither BUY nor SELL")
    return side


def _decimals(step: str) -> int:
    _, _, fraction = step.partition(".")
    return len(fraction.rstrip("0"))


def _number(value: float, decimals: int | None) -> str:
    if decimals is not None:
        return f"{value:.{decimals}f}"
    text = f"{value:.10f}".rstrip("0")
    return text[:-1] if text.endswith(".") else text


def _query(params: Sequence[tuple[str, str]]) -> str:
    """``urllib.parse.urlencode(params)``, faster: a batch's JSON is long, and ``quote_plus``
    walks it byte by byte in Python, where a few ``str.replace`` (one per kind of character to
    escape) run in C.

    >>> from urllib.parse import urlencode
    >>> params = [("batchOrders", '[{"id":"mm:b/1 x+y%"}]'), ("symbol", "BTCUSDT"), ("note", "é")]
    >>> _query(params) == urlencode(params)
    True
    """
    return "&".join(f"{name}={_query_value(value)}" for name, value in params)


class _Escaped(str):
    """A query value already percent-encoded (``_query`` leaves it as it is)."""

    __slots__ = ()


def _batch_orders_value(symbol: str, orders: Sequence[NewOrder], instrument: InstrumentInfo | None) -> str:
    """``batchOrders``'s JSON (``[{"symbol":...},...]``, compact, keys in ``_order_params``'s
    order), already percent-encoded as ``_query`` would encode it: built directly when every
    value is made of characters that need no escape, which our own orders' always are (a
    fifth of a batch place's client-side time went to ``json.dumps`` and the escaping).

    >>> from urllib.parse import quote_plus
    >>> orders = [NewOrder("mm1-2", Side.BUY, 59000.1, 0.012, post_only=True), NewOrder("a b", Side.SELL, 1.0, 2.0)]
    >>> for chunk in (orders[:1], orders):
    ...     batch = [dict(_order_params("BTCUSDT", order, None)) for order in chunk]
    ...     assert _batch_orders_value("BTCUSDT", chunk, None) == quote_plus(json.dumps(batch, separators=(",", ":")))
    """
    items = []
    for order in orders:
        params = _order_params(symbol, order, instrument)
        if not all(_QUERY_SAFE.issuperset(value) for _, value in params):
            batch = [dict(_order_params(symbol, o, instrument)) for o in orders]
            return _Escaped(_query_value(json.dumps(batch, separators=(",", ":"))))
        items.append("%2C".join(f"%22{name}%22%3A%22{value}%22" for name, value in params))
    return _Escaped("%5B%7B" + "%7D%2C%7B".join(items) + "%7D%5D")


def _query_value(value: str) -> str:
    if type(value) is _Escaped:
        return value
    to_escape = set(value) - _QUERY_SAFE
    if not to_escape:
        return value
    if not value.isascii():
        return quote_plus(value)
    for first in ("%", "+"):  # before the escapes add '%' and spaces become '+'
        if first in to_escape:
            value = value.replace(first, _QUERY_ESCAPES[first])
            to_escape.discard(first)
    for character in to_escape:
        value = value.replace(character, _QUERY_ESCAPES[character])
    return value


def _order_params(symbol: str, order: NewOrder, instrument: InstrumentInfo | None) -> list[tuple[str, str]]:
    price_decimals = instrument.price_decimals if instrument is not None else None
    quantity_decimals = instrument.quantity_decimals if instrument is not None else None
    params = [
        ("symbol", symbol),
        ("side", "BUY" if order.side == Side.BUY else "SELL"),
        ("type", "LIMIT"),
        ("timeInForce", "GTX" if order.post_only else "GTC"),
        ("quantity", _number(order.quantity, quantity_decimals)),
        ("price", _number(order.price, price_decimals)),
        ("newClientOrderId", order.client_order_id),
    ]
    if order.reduce_only:
        params.append(("reduceOnly", "true"))
    return params


def _order_result(client_order_id: str, item: Any) -> OrderResult:
    if isinstance(item, dict) and "orderId" in item:
        return OrderResult(client_order_id, "accepted", order_id=int(item["orderId"]))
    if isinstance(item, dict) and isinstance(item.get("code"), int):
        code = item["code"]
        status: Literal["rejected", "unknown"] = "unknown" if code in UNKNOWN_OUTCOME_CODES else "rejected"
        return OrderResult(client_order_id, status, code=code, message=str(item.get("msg", "")))
    return OrderResult(client_order_id, "unknown", message=f"an answer item that is neither order nor error: {item!r}")


def _describe(error: BaseException) -> str:
    """The error without its URL (a websocket URL carries the listen key)."""
    if isinstance(error, aiohttp.ClientResponseError):
        return f"{type(error).__name__}: HTTP {error.status}"
    if isinstance(error, (VenueError, VenueConnectionError)):
        return str(error)
    return type(error).__name__
