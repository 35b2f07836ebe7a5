"""Binance USDⓈ-M market data through cryptofeed, with the raw depth text handed to the core.

cryptofeed keeps what it is good at: the websocket connections, reconnecting with back-off
(``retries=-1``: never give up), the websocket pings, the stream subscription in the address.
What it does with a ``depthUpdate`` is skipped: it would parse the message into ``Decimal``,
keep its own Python book (and fetch its own REST snapshots), which costs far more than the whole
tick of the compiled core. Instead, each depth message's text goes, unparsed and in arrival
order, to ``on_depth``; the core parses it in Rust (``MarketMaker.on_depth_message``,
``OrderBook.apply_binance_json``) and keeps the book with the venue's ``U``/``u``/``pu`` rules.
The caller fetches a REST snapshot (:meth:`BinanceMarketData.fetch_snapshot`) when the book
asks for one (at start, and when it turns ``NEEDS_RESYNC`` after a gap).

What is overridden in cryptofeed (checked against cryptofeed 2.4.1; pinned ``>=2.4.1,<2.5``):

- ``Feed._address()`` — cryptofeed's documented hook for computing the address before
  connecting. Ours puts the route into the address (``/public`` for depth, ``/market`` for
  trades, the venue's split) and names the streams itself: ``<symbol>@depth@0ms`` is not among
  cryptofeed's depth intervals, and cryptofeed 2.4.1 builds one address for all channels of a
  feed, so depth and trades need one feed each.
- ``Binance.message_handler(msg, conn, timestamp)`` — the per-message entry point that
  cryptofeed's connection handler awaits for every websocket message. cryptofeed has no public
  hook that sees a message before its own book processing (``raw_data_callback`` is a global
  class attribute of every connection, meant for recording, and still lets the book run), so
  the handler is replaced: it stamps ``time.perf_counter_ns()``, reads the stream name from the
  combined-stream envelope with two string searches and calls ``on_depth``/``on_trade``
  synchronously. Nothing is queued on our side: a message is handed over before the next one is
  read.
- ``Binance.subscribe(conn)`` — still calls cryptofeed's (which resets its unused book state);
  additionally counts connections (a second one on the same connection object is a reconnect)
  and tells :meth:`BinanceMarketData.start` that the stream is up.
- The symbol table is read from the venue's ``exchangeInfo`` with our aiohttp session and
  stored with ``cryptofeed.symbols.Symbols.set`` through ``BinanceFutures._parse_symbol_data``,
  instead of cryptofeed's blocking ``requests`` call at construction. ``Symbols`` is global per
  exchange id: the table of the last venue started is the one every ``BinanceFutures`` of the
  process sees.
- cryptofeed starts its connection tasks without returning them; :meth:`start` takes the tasks
  created by ``Feed.start`` (the difference of ``asyncio.all_tasks()``) so that :meth:`stop` can
  wait for them, and cancel any still sleeping in a reconnect back-off.
- cryptofeed's own silence watchdog (``timeout``) is switched off: it runs as a task nobody
  can wait for. :class:`BinanceMarketData` has its own (``silence_timeout_s``): a connection with
  no message for that long is closed and cryptofeed opens it again.

Websocket options: pings every 10 s with a 10 s timeout (a dead TCP connection is noticed; the
cryptofeed default has no timeout), and at most ``max_queued_messages`` received frames waiting
in the websocket library: when the reader falls that far behind, the library stops reading the
socket (TCP back-pressure) rather than growing a backlog in memory, and the venue eventually
closes the connection, which reconnects and resyncs.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import ssl
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import aiohttp
from cryptofeed.connection import AsyncConnection, RestEndpoint, WebsocketEndpoint
from cryptofeed.defines import BINANCE_FUTURES, L2_BOOK, TRADES
from cryptofeed.exchanges import BinanceFutures
from cryptofeed.symbols import Symbols

from marketmaker.errors import MarketMakerError

logger = logging.getLogger(__name__)

#: ``depth_speed`` values: the stream name's suffix after ``<symbol>@depth``.
DEPTH_SPEEDS: Final = ("@0ms", "@100ms", "@250ms", "@500ms", "")
#: ``limit`` values the venue accepts for ``GET /fapi/v1/depth``.
SNAPSHOT_LIMITS: Final = (5, 10, 20, 50, 100, 500, 1000)
#: Streams per connection (the venue's limit is 200 per connection).
STREAMS_PER_CONNECTION: Final = 200

_ENVELOPE_PREFIX: Final = '{"stream":"'

DepthCallback = Callable[[str, str, int], object]
TradeCallback = Callable[[str, Mapping[str, Any], int], None]


class MarketDataError(MarketMakerError):
    """The market data could not be set up or read: an unknown symbol, a venue that does not
    answer, a REST error. The message names the symbol, the address and the venue's answer."""


@dataclass(slots=True)
class SymbolFeedStats:
    """Live counters of one symbol's market data, for the feed-health display.

    Attributes
    ----------
    depth_messages, trades
        Depth messages and trade messages handed to the callbacks.
    depth_reconnects, trade_reconnects
        Times the connection carrying the symbol's depth (trades) was opened again after the
        first time.
    last_depth_receive_ns, last_trade_receive_ns
        ``time.perf_counter_ns()`` at the last depth (trade) message's arrival; 0 before any.
    callback_errors
        Messages whose callback raised (logged with the traceback; the stream goes on).
    """

    depth_messages: int = 0
    trades: int = 0
    depth_reconnects: int = 0
    trade_reconnects: int = 0
    last_depth_receive_ns: int = 0
    last_trade_receive_ns: int = 0
    callback_errors: int = 0

    @property
    def last_receive_ns(self) -> int:
        """The later of the two arrival times (0 before any message)."""
        return max(self.last_depth_receive_ns, self.last_trade_receive_ns)


class _RouteFeed(BinanceFutures):  # type: ignore[misc]  # cryptofeed ships no type information
    """One cryptofeed connection set on one route of the venue, messages handed over raw."""

    def __init__(
        self,
        market_data: BinanceMarketData,
        *,
        route: str,
        channel: str,
        streams: Sequence[str],
        std_symbols: Sequence[str],
        websocket_options: Mapping[str, Any],
    ) -> None:
        super().__init__(symbols=list(std_symbols), channels=[channel], timeout=-1, retries=-1)
        self.websocket_endpoints = [WebsocketEndpoint(f"{market_data.ws_url}/{route}", options=dict(websocket_options))]
        self.rest_endpoints = [RestEndpoint(market_data.rest_url, routes=BinanceFutures.rest_endpoints[0].routes)]
        self._market_data = market_data
        self._route = route
        self._channel = channel
        self._streams = list(streams)
        self._connections_seen: set[str] = set()
        self.subscribed = asyncio.Event()

    def _address(self) -> str | list[str]:
        base = f"{self.websocket_endpoints[0].address}/stream?streams="
        chunks = [
            self._streams[i : i + STREAMS_PER_CONNECTION] for i in range(0, len(self._streams), STREAMS_PER_CONNECTION)
        ]
        addresses = [base + "/".join(chunk) for chunk in chunks]
        return addresses[0] if len(addresses) == 1 else addresses

    async def subscribe(self, conn: AsyncConnection) -> None:
        await super().subscribe(conn)
        reconnect = conn.uuid in self._connections_seen
        self._connections_seen.add(conn.uuid)
        self._market_data._on_connected(self._channel, reconnect)
        if reconnect:
            logger.info("market data: /%s reconnected (%s)", self._route, conn.uuid)
        else:
            logger.info("market data: /%s connected (%s)", self._route, conn.uuid)
        self.subscribed.set()

    async def message_handler(self, msg: str | bytes, conn: AsyncConnection, timestamp: float) -> None:
        receive_ns = time.perf_counter_ns()
        if isinstance(msg, bytes):
            msg = msg.decode()
        if self._market_data._on_message(msg, receive_ns):
            await asyncio.sleep(0)  # on_depth started tasks: let them run before the next message


class BinanceMarketData:
    """Depth and trades of Binance USDⓈ-M symbols (or the local venue), delivered raw and early.

    Depth comes from ``<symbol>@depth<depth_speed>`` on the ``/public`` route, trades from
    ``<symbol>@aggTrade`` on ``/market``: one cryptofeed feed per route. Every depth message is
    handed to ``on_depth`` unparsed, synchronously and in arrival order; the caller applies it to
    the core's book and asks :meth:`fetch_snapshot` for a snapshot when the book needs one.

    Parameters
    ----------
    symbols
        Venue symbols, e.g. ``["BTCUSDT"]``; each must be listed in the venue's
        ``exchangeInfo``.
    rest_url
        The REST base, e.g. ``"https://fapi.binance.com"`` or the local venue's
        ``"http://127.0.0.1:PORT"``.
    ws_url
        The websocket base without route, e.g. ``"wss://fstream.binance.com"`` or
        ``"wss://127.0.0.1:PORT"``; ``/public`` and ``/market`` are appended.
    on_depth
        ``on_depth(symbol, text, receive_ns)``: the raw message text (the combined-stream
        envelope ``{"stream": ..., "data": {"e": "depthUpdate", ...}}``, which the core's
        parsers accept) and ``time.perf_counter_ns()`` at its arrival. A true return value
        means it started tasks (order requests): the connection lets them run before it reads
        its next message.
    on_trade
        ``on_trade(symbol, event, receive_ns)``: the parsed ``aggTrade`` event (``p``, ``q``
        as strings, ``m`` true when the buyer was the maker).
    ssl_context
        Trust for the websocket TLS (the local venue's ``client_ssl_context``); None uses the
        system's.
    depth_speed
        One of :data:`DEPTH_SPEEDS`; ``"@0ms"`` (one message per book change) by default.
    silence_timeout_s
        A connection with no message for this long is closed and opened again (None: never).
    max_queued_messages
        Received frames the websocket library may hold before it stops reading the socket.
    connect_timeout_s
        How long :meth:`start` waits for both routes to be subscribed.

    Examples
    --------
    >>> async def run(book: OrderBook) -> None:  # doctest: +SKIP
    ...     feed = BinanceMarketData(["BTCUSDT"], rest_url=venue.rest_url, ws_url=venue.ws_url,
    ...                              on_depth=lambda s, text, ns: book.apply_binance_json(text, receive_time_ns=ns),
    ...                              on_trade=lambda s, event, ns: None,
    ...                              ssl_context=venue.client_ssl_context)
    ...     await feed.start()
    ...     book.apply_binance_snapshot(await feed.fetch_snapshot("BTCUSDT"))
    ...     await feed.stop()
    """

    def __init__(
        self,
        symbols: Sequence[str],
        *,
        rest_url: str,
        ws_url: str,
        on_depth: DepthCallback,
        on_trade: TradeCallback,
        ssl_context: ssl.SSLContext | None = None,
        depth_speed: str = "@0ms",
        silence_timeout_s: float | None = 60.0,
        max_queued_messages: int = 4096,
        connect_timeout_s: float = 10.0,
    ) -> None:
        if isinstance(symbols, str) or not symbols:
            raise ValueError(f"symbols: give a list of venue symbols such as ['BTCUSDT'], not {symbols!r}")
        bad = [s for s in symbols if not isinstance(s, str) or not s.isalnum() or s != s.upper()]
        if bad:
            raise ValueError(f"symbols: {bad!r} are not venue symbols (upper-case letters and digits, e.g. 'BTCUSDT')")
        if len(set(symbols)) != len(symbols):
            raise ValueError(f"symbols: {list(symbols)!r} lists a symbol twice")
        if depth_speed not in DEPTH_SPEEDS:
            raise ValueError(f"depth_speed: {depth_speed!r} is not one of {DEPTH_SPEEDS!r}")
        if not ws_url.startswith("wss://"):
            raise ValueError(f"ws_url: {ws_url!r} must start with wss:// (cryptofeed accepts only TLS websockets)")
        if not rest_url.startswith(("http://", "https://")):
            raise ValueError(f"rest_url: {rest_url!r} must start with http:// or https://")
        if silence_timeout_s is not None and silence_timeout_s <= 0:
            raise ValueError(f"silence_timeout_s: {silence_timeout_s!r} must be positive (or None)")
        if max_queued_messages < 1:
            raise ValueError(f"max_queued_messages: {max_queued_messages!r} must be at least 1")
        self.symbols: tuple[str, ...] = tuple(symbols)
        self.rest_url = rest_url.rstrip("/")
        self.ws_url = ws_url.rstrip("/")
        self.depth_speed = depth_speed
        self.silence_timeout_s = silence_timeout_s
        self.max_queued_messages = max_queued_messages
        self.connect_timeout_s = connect_timeout_s
        self._on_depth = on_depth
        self._on_trade = on_trade
        self._ssl_context = ssl_context
        #: Live counters per symbol (see :class:`SymbolFeedStats`).
        self.stats: dict[str, SymbolFeedStats] = {symbol: SymbolFeedStats() for symbol in self.symbols}
        self._by_stream_symbol = {symbol.lower(): symbol for symbol in self.symbols}
        self._session: aiohttp.ClientSession | None = None
        self._feeds: list[_RouteFeed] = []
        self._tasks: set[asyncio.Task[Any]] = set()
        self._watchdog: asyncio.Task[None] | None = None
        self._tick_sizes: dict[str, str] = {}

    def __repr__(self) -> str:
        state = "started" if self._session is not None else "stopped"
        return f"BinanceMarketData({list(self.symbols)!r}, rest_url={self.rest_url!r}, ws_url={self.ws_url!r}, {state})"

    @property
    def tick_sizes(self) -> Mapping[str, str]:
        """The venue's tick size of each symbol (``PRICE_FILTER.tickSize`` as written), known
        after :meth:`start`."""
        return dict(self._tick_sizes)

    async def start(self) -> None:
        """Reads the venue's symbols, opens the depth and trade connections and waits until
        both are subscribed.

        Raises
        ------
        MarketDataError
            A symbol the venue does not list, ``exchangeInfo`` not answered, or the websockets
            not up within ``connect_timeout_s`` (everything opened is closed again).
        """
        if self._session is not None:
            raise RuntimeError("BinanceMarketData.start: already started")
        self._session = aiohttp.ClientSession()
        try:
            std_symbols = await self._load_symbols()
            options: dict[str, Any] = {
                "compression": None,
                "ping_interval": 10,
                "ping_timeout": 10,
                "max_queue": self.max_queued_messages,
            }
            if self._ssl_context is not None:
                options["ssl"] = self._ssl_context
            lower = [symbol.lower() for symbol in self.symbols]
            self._feeds = [
                _RouteFeed(
                    self,
                    route="public",
                    channel=L2_BOOK,
                    streams=[f"{s}@depth{self.depth_speed}" for s in lower],
                    std_symbols=std_symbols,
                    websocket_options=options,
                ),
                _RouteFeed(
                    self,
                    route="market",
                    channel=TRADES,
                    streams=[f"{s}@aggTrade" for s in lower],
                    std_symbols=std_symbols,
                    websocket_options=options,
                ),
            ]
            loop = asyncio.get_running_loop()
            before = asyncio.all_tasks()
            for feed in self._feeds:
                feed.start(loop)
            self._tasks = asyncio.all_tasks() - before
            if self.silence_timeout_s is not None:
                self._watchdog = asyncio.create_task(self._watch_silence(self.silence_timeout_s))
            try:
                await asyncio.wait_for(
                    asyncio.gather(*(feed.subscribed.wait() for feed in self._feeds)), self.connect_timeout_s
                )
            except asyncio.TimeoutError:
                down = [f"/{feed._route}" for feed in self._feeds if not feed.subscribed.is_set()]
                raise MarketDataError(
                    f"market data: {self.ws_url} {', '.join(down)} not connected within {self.connect_timeout_s} s"
                ) from None
        except BaseException:
            await self.stop()
            raise

    async def stop(self) -> None:
        """Closes the connections and the REST session; returns when no task of the feed is
        left (one still waiting for a reconnect is cancelled)."""
        for feed in self._feeds:
            feed.stop()
        if self._watchdog is not None:
            self._watchdog.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watchdog
            self._watchdog = None
        for feed in self._feeds:
            await feed.shutdown()
        if self._tasks:
            _, pending = await asyncio.wait(self._tasks, timeout=2.0)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending)
            for task in self._tasks:
                if not task.cancelled() and task.exception() is not None:
                    logger.error("market data: a connection task ended with %r", task.exception())
        self._tasks = set()
        self._feeds = []
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> BinanceMarketData:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    async def fetch_snapshot(self, symbol: str, limit: int = 1000) -> dict[str, Any]:
        """``GET /fapi/v1/depth``: the venue's book of ``symbol`` for
        ``OrderBook.apply_binance_snapshot``.

        Parameters
        ----------
        symbol
            One of the feed's symbols.
        limit
            Levels per side, one of :data:`SNAPSHOT_LIMITS`.

        Returns
        -------
        dict
            The parsed answer: ``lastUpdateId``, ``bids`` and ``asks`` (``[price, qty]``
            strings, best first), ``E``, ``T``.

        Raises
        ------
        MarketDataError
            The venue answered an error (its status and message are in the error), or the
            answer is not a depth snapshot.
        """
        if symbol not in self.stats:
            raise ValueError(f"fetch_snapshot: {symbol!r} is not one of this feed's symbols {list(self.symbols)!r}")
        if limit not in SNAPSHOT_LIMITS:
            raise ValueError(f"fetch_snapshot: limit {limit!r} is not one of {SNAPSHOT_LIMITS!r}")
        answer = await self._get_json("/fapi/v1/depth", {"symbol": symbol, "limit": str(limit)})
        if not isinstance(answer, dict) or not {"lastUpdateId", "bids", "asks"} <= answer.keys():
            raise MarketDataError(
                f"GET {self.rest_url}/fapi/v1/depth?symbol={symbol}: not a depth snapshot "
                f"(lastUpdateId, bids, asks): {str(answer)[:200]}"
            )
        return answer

    # -- inside ---------------------------------------------------------------------------------

    async def _get_json(self, path: str, params: Mapping[str, str]) -> Any:
        if self._session is None:
            raise RuntimeError("BinanceMarketData: call start() first")
        url = f"{self.rest_url}{path}"
        try:
            async with self._session.get(url, params=params) as response:
                text = await response.text()
                status = response.status
        except aiohttp.ClientError as error:
            raise MarketDataError(f"GET {url}: {error}") from error
        if status != 200:
            raise MarketDataError(f"GET {url} {dict(params)}: HTTP {status}: {text[:200]}")
        try:
            return json.loads(text)
        except json.JSONDecodeError as error:
            raise MarketDataError(f"GET {url}: the answer is not JSON ({error}): {text[:200]}") from None

    async def _load_symbols(self) -> list[str]:
        """Reads ``exchangeInfo``, gives cryptofeed its symbol table, returns our symbols in
        cryptofeed's names."""
        info = await self._get_json("/fapi/v1/exchangeInfo", {})
        try:
            std_to_venue, details = BinanceFutures._parse_symbol_data(info)
        except (KeyError, IndexError, TypeError) as error:
            raise MarketDataError(f"GET {self.rest_url}/fapi/v1/exchangeInfo: unexpected answer ({error!r})") from None
        Symbols.set(BINANCE_FUTURES, std_to_venue, details)
        venue_to_std = {venue: std for std, venue in std_to_venue.items()}
        missing = [s for s in self.symbols if s not in venue_to_std]
        if missing:
            listed = sorted(v for v in venue_to_std if not v.startswith("p"))
            raise MarketDataError(
                f"symbols {missing!r} are not listed by the venue at {self.rest_url} (listed: {', '.join(listed)})"
            )
        self._tick_sizes = {s: str(details["tick_size"][venue_to_std[s]]) for s in self.symbols}
        return [venue_to_std[s] for s in self.symbols]

    def _on_connected(self, channel: str, reconnect: bool) -> None:
        if not reconnect:
            return
        for stats in self.stats.values():
            if channel == L2_BOOK:
                stats.depth_reconnects += 1
            else:
                stats.trade_reconnects += 1

    def _on_message(self, text: str, receive_ns: int) -> bool:
        """Routes one websocket message: depth text to ``on_depth`` untouched, trades parsed.
        True when ``on_depth`` returned a true value: it started tasks that should run before
        the connection's next message is read."""
        if text.startswith(_ENVELOPE_PREFIX):
            end = text.find('"', len(_ENVELOPE_PREFIX))
            stream = text[len(_ENVELOPE_PREFIX) : end]
        else:
            found = self._stream_of(text)
            if found is None:
                return False
            stream = found
        stream_symbol, _, kind = stream.partition("@")
        symbol = self._by_stream_symbol.get(stream_symbol)
        if symbol is None:
            logger.warning("market data: a message of an unknown stream %r", stream)
            return False
        stats = self.stats[symbol]
        if kind.startswith("depth"):
            stats.depth_messages += 1
            stats.last_depth_receive_ns = receive_ns
            try:
                return bool(self._on_depth(symbol, text, receive_ns))
            except Exception:
                stats.callback_errors += 1
                logger.exception("market data: on_depth raised for %s (message %.200s)", symbol, text)
        elif kind == "aggTrade":
            stats.trades += 1
            stats.last_trade_receive_ns = receive_ns
            try:
                event = json.loads(text)["data"]
                self._on_trade(symbol, event, receive_ns)
            except Exception:
                stats.callback_errors += 1
                logger.exception("market data: on_trade failed for %s (message %.200s)", symbol, text)
        else:
            logger.warning("market data: a message of an unexpected stream %r", stream)
        return False

    @staticmethod
    def _stream_of(text: str) -> str | None:
        """The stream of a message not in the exact envelope form (spacing, key order); None
        (logged) for anything else, such as an answer to a request."""
        try:
            message = json.loads(text)
        except json.JSONDecodeError:
            logger.warning("market data: a message that is not JSON: %.200s", text)
            return None
        stream = message.get("stream") if isinstance(message, dict) else None
        if not isinstance(stream, str):
            logger.warning("market data: a message without a stream: %.200s", text)
            return None
        return stream

    async def _watch_silence(self, timeout_s: float) -> None:
        """Closes a connection that has had no message for ``timeout_s``: cryptofeed then opens it
        again."""
        interval = min(1.0, timeout_s / 4)
        while True:
            await asyncio.sleep(interval)
            now = time.time()
            for feed in self._feeds:
                for handler in feed.connection_handlers:
                    conn = handler.conn
                    last = conn.last_message
                    if handler.running and conn.is_open and last is not None and now - last > timeout_s:
                        logger.warning(
                            "market data: /%s silent for %.1f s: reconnecting (%s)", feed._route, now - last, conn.uuid
                        )
                        await conn.close()
