"""The live market-making engine: the original bot's ``main`` as an asyncio program.

Read the config, build the shared state (one :class:`~marketmaker.MarketMaker` per symbol:
book, trade tape, feature engine, quote generator, order planner, account, risk gate), set the
spreads from ``bps``, start loading market data into it, and run the market-maker loop on every
update:

- Market data (:mod:`marketmaker.feeds`) arrives through cryptofeed's connections. Every depth
  message is applied to the core's book in the feed callback (its raw text, parsed in Rust), and
  the symbol is marked dirty. Nothing queues: the loop ticks each dirty symbol once on the
  latest book, however many messages arrived while it was busy (coalescing, no backlog).
- A tick (one call into the core) updates the features, passes the risk gate, quotes and diffs
  against our live orders. The actions go through the rate limiter to the signed order client
  (:mod:`marketmaker.exchanges.binance`); their answers and the user-data stream's fills update
  the account, and every order, fill, position snapshot and halt goes to the SQLite journal.
- The config file is watched: spreads, strategy, feature weights, risk limits and the ladder's
  shape apply within a second without touching feeds or orders; keys that need a restart are
  reported as such; an invalid edit is rejected whole.
- Startup sets leverage, reads the instruments' rules, cancels orders an earlier run left (by
  client-id prefix), reads the position, and syncs every book to a REST snapshot before quoting.
  Shutdown stops quoting, cancels all our orders, confirms that none remain and prints a summary.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
import math
import secrets
import sys
import time
from array import array
from collections import OrderedDict
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TextIO

from marketmaker._core import (
    Account,
    BookStatus,
    FillOutcome,
    MarketMaker,
    OrderAction,
    OrderBook,
    OrderStatus,
    RateLimiter,
    Side,
    TradeTape,
    UpdateOutcome,
)
from marketmaker.config import Config
from marketmaker.config_reload import ConfigDiff
from marketmaker.credentials import ApiCredentials
from marketmaker.exchanges.binance import (
    WS_API_PATH,
    BinanceFuturesClient,
    BinanceUserStream,
    InstrumentInfo,
    NewOrder,
    OrderResult,
    VenueConnectionError,
    VenueError,
)
from marketmaker.exchanges.events import AccountUpdate, OrderUpdate, StreamRestarted
from marketmaker.feeds.binance import BinanceMarketData
from marketmaker.journal import FillRecord, HaltRecord, Journal, OrderRecord, PositionSnapshot

__all__ = ["LiveEngine", "RunSummary", "SymbolStatus", "SymbolSummary", "tick_to_order_percentiles"]

logger = logging.getLogger(__name__)

#: How long shutdown waits for the venue to confirm that none of our orders remain.
CONFIRM_TIMEOUT_S = 10.0
#: The venue cancels all our orders this long after the last refresh (Binance's dead-man switch).
DEAD_MAN_COUNTDOWN_MS = 120_000
DEAD_MAN_REFRESH_S = 30.0
#: How often the order client's connections are touched (aiohttp closes one idle for 60 s).
WARM_CONNECTIONS_EVERY_S = 20.0
#: Venue order ids remembered per symbol, to name the orders of backfilled trades.
ORDER_IDS_KEPT = 20_000
#: A backfill after a user-stream restart starts this long before the last event received.
BACKFILL_MARGIN_MS = 5_000


class LatencySamples:
    """The latest ``capacity`` latencies (ns) in a preallocated ring of 64-bit integers, so that
    keeping them costs the same memory at the first sample and at the millionth."""

    __slots__ = ("_capacity", "_ring", "total")

    def __init__(self, capacity: int) -> None:
        self._ring = array("q", bytes(8 * capacity))
        self._capacity = capacity
        #: How many were ever added (the ring keeps the latest ``capacity``).
        self.total = 0

    def append(self, value_ns: int) -> None:
        self._ring[self.total % self._capacity] = value_ns
        self.total += 1

    def __len__(self) -> int:
        return min(self.total, self._capacity)

    def __iter__(self) -> Iterator[int]:
        return iter(self._ring[: len(self)])


@dataclass
class SymbolCounters:
    """What happened on one symbol during the run (for the dashboard and the summary)."""

    depth_messages: int = 0
    trades: int = 0
    ticks: int = 0
    quoted_ticks: int = 0
    places_sent: int = 0
    cancels_sent: int = 0
    rejects: int = 0
    unknown_outcomes: int = 0
    rate_limited: int = 0
    #: Cancels held back with their replacements while the rate limiter held the new orders.
    requotes_held: int = 0
    #: Ticks whose requote of a side waited for its orders' `min_order_life_ms`.
    young_orders_kept: int = 0
    resyncs: int = 0
    fills: int = 0
    #: Fills the user stream missed, applied from ``userTrades`` after it restarted.
    backfilled_fills: int = 0
    last_depth_ns: int = 0
    #: For ticks a depth message caused: ns from the message's arrival to the tick's first order
    #: request (cancel or place) written to the socket, and to its first place written.
    tick_to_order_ns: LatencySamples = field(default_factory=lambda: LatencySamples(100_000))
    tick_to_place_ns: LatencySamples = field(default_factory=lambda: LatencySamples(100_000))


@dataclass(frozen=True)
class SymbolSummary:
    """One symbol at the end of a run."""

    symbol: str
    fills: int
    volume: float
    fees: float
    realized_pnl: float
    unrealized_pnl: float
    position: float
    open_orders_at_venue: int
    places_sent: int
    cancels_sent: int
    rejects: int

    @property
    def net_pnl(self) -> float:
        """Realized plus unrealized PnL less fees."""
        return self.realized_pnl + self.unrealized_pnl - self.fees


@dataclass(frozen=True)
class RunSummary:
    """The run's figures, per symbol; ``open_orders_at_venue`` must be 0 after a clean exit."""

    symbols: tuple[SymbolSummary, ...]
    duration_s: float
    run_id: int | None

    @property
    def open_orders_at_venue(self) -> int:
        return sum(symbol.open_orders_at_venue for symbol in self.symbols)

    def render(self) -> str:
        lines = [f"run summary ({self.duration_s:.1f} s, journal run {self.run_id}):"]
        for s in self.symbols:
            lines.append(
                f"  {s.symbol}: fills {s.fills}, volume {s.volume:.2f}, fees {s.fees:.4f}, "
                f"realized PnL {s.realized_pnl:.4f}, unrealized {s.unrealized_pnl:.4f}, net {s.net_pnl:.4f}, "
                f"position {s.position:g}, orders placed {s.places_sent}, cancels {s.cancels_sent}, "
                f"rejects {s.rejects}, our orders still open at the venue: {s.open_orders_at_venue}"
            )
        return "\n".join(lines)


@dataclass(frozen=True)
class SymbolStatus:
    """What the dashboard shows of one symbol."""

    symbol: str
    decision: str
    best_bid: float | None
    best_ask: float | None
    our_bid: float | None
    our_ask: float | None
    position: float
    net_pnl: float
    skew: float
    volatility: float
    imbalance: float
    ready: bool
    open_orders: int
    fills: int
    orders_per_s: float
    fills_per_min: float
    depth_per_s: float
    last_depth_ms: float
    book_status: str
    headroom: tuple[float, float, float]

    def line(self) -> str:
        def price(value: float | None) -> str:
            return "-" if value is None else f"{value:g}"

        return (
            f"{self.symbol} {self.decision}: book {price(self.best_bid)}/{price(self.best_ask)} "
            f"ours {price(self.our_bid)}/{price(self.our_ask)} pos {self.position:g} pnl {self.net_pnl:.4f} "
            f"skew {self.skew:+.2f} vol {self.volatility:.2e} open {self.open_orders} fills {self.fills} "
            f"orders/s {self.orders_per_s:.1f} depth/s {self.depth_per_s:.0f} last {self.last_depth_ms:.0f} ms "
            f"headroom {self.headroom[0]:.0%}/{self.headroom[1]:.0%}/{self.headroom[2]:.0%}"
        )


class SymbolRuntime:
    """One symbol's market maker and the loop's bookkeeping around it."""

    def __init__(self, symbol: str, maker: MarketMaker, instrument: InstrumentInfo) -> None:
        self.symbol = symbol
        self.maker = maker
        self.instrument = instrument
        self.book: OrderBook = maker.book
        self.account: Account = maker.account
        self.tape: TradeTape = maker.tape  # type: ignore[assignment]  # always given a tape
        self.counters = SymbolCounters()
        #: The book changed since the last tick.
        self.dirty = False
        #: A snapshot fetch is under way.
        self.resyncing = False
        #: Client ids whose cancel is in flight: not cancelled again meanwhile.
        self.cancelling: set[str] = set()
        #: When each order still thought open was sent (monotonic ns), for `min_order_life_ms`.
        self.placed_ns: dict[str, int] = {}
        #: Places whose outcome is unknown (answer lost): reconciled against open orders.
        self.unknown: set[str] = set()
        self.halted: str | None = None
        #: The venue's order id -> our client id, for the latest orders (a backfilled trade
        #: names only the venue's id).
        self.client_ids: OrderedDict[int, str] = OrderedDict()

    def remember_order_id(self, order_id: int | None, client_order_id: str) -> None:
        if order_id is None or order_id in self.client_ids:
            return
        self.client_ids[order_id] = client_order_id
        if len(self.client_ids) > ORDER_IDS_KEPT:
            self.client_ids.popitem(last=False)


class LiveEngine:
    """Runs the market maker against one venue until :meth:`stop`.

    Parameters
    ----------
    config : Config
        The running configuration.
    rest_url, ws_url : str
        The venue's REST base (``http(s)://host:port``) and websocket base (``wss://host:port``).
    ws_api_url : str, optional
        The venue's websocket API, where places and cancels go when ``[venue] order_api`` is
        ``"websocket"`` (default: ``ws_url`` + ``/ws-fapi/v1``, the local venue's layout).
    credentials : ApiCredentials
        The account's key (one account for every symbol).
    ssl_context : ssl.SSLContext, optional
        Trust for the venue's websockets (the local venue's self-signed certificate).
    journal : Journal, optional
        Where orders, fills, snapshots and halts are written.
    out : text stream, optional
        Where status lines go (None: only the log).
    """

    def __init__(
        self,
        config: Config,
        *,
        rest_url: str,
        ws_url: str,
        credentials: ApiCredentials,
        ws_api_url: str | None = None,
        ssl_context: Any = None,
        journal: Journal | None = None,
        out: TextIO | None = None,
        run_tag: str | None = None,
    ) -> None:
        self.config = config
        self.rest_url = rest_url
        self.ws_url = ws_url
        self.ws_api_url = ws_api_url if ws_api_url is not None else ws_url.rstrip("/") + WS_API_PATH
        self.credentials = credentials
        self.ssl_context = ssl_context
        self.journal = journal
        self.out = out
        self.run_tag = run_tag if run_tag is not None else secrets.token_hex(3)
        self.prefix = config.orders.client_id_prefix + self.run_tag
        self.limiter: RateLimiter = config.rate_limiter()
        self.runtimes: dict[str, SymbolRuntime] = {}
        self.client: BinanceFuturesClient | None = None
        self.feed: BinanceMarketData | None = None
        self.quoting = False
        self.started_s = time.monotonic()
        self._wake = asyncio.Event()
        self._stopped = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._background: set[asyncio.Task[None]] = set()
        #: Wall-clock ms of the user stream's last event (where a backfill after a restart starts).
        self._user_stream_seen_ms = time.time_ns() // 1_000_000

    # -- startup ------------------------------------------------------------------------------

    async def start(self) -> None:
        """Connects, reconciles, syncs the books and starts quoting."""
        config = self.config
        symbols = config.symbol_names
        self.client = BinanceFuturesClient(
            self.rest_url,
            self.credentials,
            recv_window_ms=config.venue.recv_window_ms,
            rate_limiter=self.limiter,
        )
        await self.client.__aenter__()
        await self.client.warm_connections(config.venue.http_connections)
        if config.venue.order_api == "websocket":
            try:
                await self.client.open_order_websocket(self.ws_api_url, ssl_context=self.ssl_context)
            except VenueConnectionError as error:
                logger.warning("%s: places and cancels go over REST", error)
        await self.client.sync_time()
        instruments = await self.client.instruments(symbols)
        for symbol in symbols:
            await self.client.set_leverage(symbol, max(1, int(config.leverage)))
            await self._reconcile_at_start(symbol)
            self.runtimes[symbol] = await self._build_runtime(symbol, instruments[symbol])
        if self.journal is not None:
            self.journal.start_run(
                exchange=config.exchange,
                client_id_prefix=self.prefix,
                config_hash=config.fingerprint(),
                symbols=symbols,
            )
        self.feed = BinanceMarketData(
            symbols,
            rest_url=self.rest_url,
            ws_url=self.ws_url,
            on_depth=self._on_depth,
            on_trade=self._on_trade,
            ssl_context=self.ssl_context,
        )
        await self.feed.start()
        for runtime in self.runtimes.values():
            await self._resync(runtime)
        # What startup built (modules, sessions, feeds, books) lives as long as the run: out of
        # the cyclic collector's sight, a full collection no longer walks it, so one that
        # lands on a tick is short. Garbage from startup is collected first.
        gc.collect()
        gc.freeze()
        self.quoting = True
        self.started_s = time.monotonic()
        self._tasks = [
            asyncio.create_task(self._maker_loop(), name="maker-loop"),
            asyncio.create_task(self._user_stream(), name="user-stream"),
            asyncio.create_task(self._snapshots(), name="snapshots"),
            asyncio.create_task(self._dead_man_switch(), name="dead-man-switch"),
            asyncio.create_task(self._warm_connections(), name="warm-connections"),
        ]
        if self.out is not None and config.dashboard.status_line_s > 0:
            self._tasks.append(asyncio.create_task(self._status_lines(), name="status-lines"))

    async def _reconcile_at_start(self, symbol: str) -> None:
        """Cancels the orders an earlier run of ours left (client ids with our prefix)."""
        assert self.client is not None
        ours = [
            order.client_order_id
            for order in await self.client.open_orders(symbol)
            if order.client_order_id.startswith(self.config.orders.client_id_prefix)
        ]
        if ours:
            logger.warning("%s: cancelling %d orders an earlier run left", symbol, len(ours))
            await self.client.cancel_orders(symbol, ours)

    async def _build_runtime(self, symbol: str, instrument: InstrumentInfo) -> SymbolRuntime:
        assert self.client is not None
        config = self.config
        book = OrderBook(symbol, instrument.tick_size, sequencing="binance")
        account = Account(balance=config.symbol(symbol).balance)
        position = await self.client.position(symbol)
        account.set_position(position.size, position.entry_price)
        generator = config.quote_generator(
            symbol,
            tick_size=instrument.tick_size,
            lot_size=instrument.step_size,
            min_size=instrument.min_qty,
            min_notional=instrument.min_notional,
        )
        maker = MarketMaker(
            book,
            config.feature_engine(),
            generator,
            config.order_planner(self.run_tag),
            account,
            tape=TradeTape(10_000),
            risk=config.risk_gate(symbol),
        )
        return SymbolRuntime(symbol, maker, instrument)

    # -- market data ----------------------------------------------------------------------------

    def _on_depth(self, symbol: str, text: str, receive_ns: int) -> bool:
        """One depth message, as it arrives: while quoting, the core applies it and runs the
        tick in one call, and the tick's orders go out before the next message is read — no
        queue between the message and the order. The messages of a burst are each applied and
        ticked in turn; the diff keeps orders within tolerance and the rate limiter bounds what
        goes out, so a burst does not turn into a burst of orders."""
        runtime = self.runtimes.get(symbol)
        if runtime is None:
            return False
        if self.quoting:
            actions = runtime.maker.on_depth_message(text, receive_time_ns=time.time_ns())
            outcome = runtime.maker.last_outcome
        else:
            actions = []
            outcome = runtime.book.apply_binance_json(text, receive_time_ns=time.time_ns())
        runtime.counters.depth_messages += 1
        runtime.counters.last_depth_ns = receive_ns
        if outcome == UpdateOutcome.GAP or runtime.book.status == BookStatus.NEEDS_RESYNC:
            self._spawn(self._resync(runtime))
        if self.quoting and outcome not in (UpdateOutcome.BUFFERED, UpdateOutcome.STALE):
            runtime.dirty = False  # this tick saw everything an earlier mark asked for
            self._after_tick(runtime, actions, receive_ns)
            # Before 3.12 the order requests are tasks not yet started: the feed lets them run
            # before it reads the next message.
            return bool(actions) and sys.version_info < (3, 12)
        return False

    def _on_trade(self, symbol: str, trade: Mapping[str, Any], receive_ns: int) -> None:
        runtime = self.runtimes.get(symbol)
        if runtime is not None:
            runtime.tape.push_binance_trade(dict(trade))
            runtime.counters.trades += 1

    async def _resync(self, runtime: SymbolRuntime) -> None:
        """Fetches a snapshot for a book that has none or saw a gap; the buffered diffs bridge it."""
        if runtime.resyncing or self.feed is None:
            return
        runtime.resyncing = True
        try:
            for attempt in range(5):
                snapshot = await self.feed.fetch_snapshot(runtime.symbol)
                runtime.book.apply_binance_snapshot(snapshot, receive_time_ns=time.time_ns())
                if runtime.book.is_live:
                    break
                await asyncio.sleep(0.05 * (attempt + 1))
            runtime.counters.resyncs += 1
            gate = runtime.maker.risk
            if runtime.book.is_live and gate is not None and gate.halted == "book_resync":
                gate.reset()
                self._note_halt_reset(runtime)
            self._mark_dirty(runtime)
            self._wake.set()
        finally:
            runtime.resyncing = False

    # -- the market-maker loop ------------------------------------------------------------------

    @staticmethod
    def _mark_dirty(runtime: SymbolRuntime) -> None:
        """Asks the maker loop for a tick that no depth message caused (a fill, an answer, a
        reload): it is not counted in the tick-to-order latency, which runs from a depth
        message's arrival."""
        runtime.dirty = True

    async def _maker_loop(self) -> None:
        """Ticks a symbol that something other than a depth message changed (a fill, an answer,
        a reload, a resync): many such marks between two passes make one tick."""
        while True:
            await self._wake.wait()
            self._wake.clear()
            for runtime in self.runtimes.values():
                if runtime.dirty and self.quoting:
                    runtime.dirty = False
                    actions = runtime.maker.tick(now_ns=time.time_ns())
                    self._after_tick(runtime, actions, 0)

    def _after_tick(self, runtime: SymbolRuntime, actions: Sequence[OrderAction], arrived_ns: int) -> None:
        runtime.counters.ticks += 1
        self._note_decision(runtime)
        if actions:
            self._send(runtime, actions, arrived_ns)

    def _note_decision(self, runtime: SymbolRuntime) -> None:
        decision = runtime.maker.decision or ""
        if decision == "quoted":
            runtime.counters.quoted_ticks += 1
        halted = decision.removeprefix("halted:") if decision.startswith("halted:") else None
        if halted is not None and runtime.halted is None:
            gate = runtime.maker.risk
            detail = (gate.halt_detail if gate is not None else None) or halted
            if halted == "book_resync" and runtime.book.last_gap:
                detail += f" ({runtime.book.last_gap})"
            logger.warning("%s: halted (%s): %s", runtime.symbol, halted, detail)
            if self.journal is not None:
                self.journal.record_halt(HaltRecord(runtime.symbol, halted, detail, time.time_ns()))
        runtime.halted = halted

    def _note_halt_reset(self, runtime: SymbolRuntime) -> None:
        runtime.halted = None
        if self.journal is not None:
            self.journal.record_halt_reset(runtime.symbol, time.time_ns())

    def _send(self, runtime: SymbolRuntime, actions: Sequence[OrderAction], arrived_ns: int) -> None:
        """Hands a tick's actions to the order client without waiting for the venue: places and
        cancels go out at once, concurrently, and the loop goes on ticking. The account already
        holds the new orders (pending) and the cancels are marked in flight, so the next tick's
        diff sees them and sends nothing twice.

        A requote is a cancel and its replacement: when the rate limiter holds the new orders
        back, the cancels of that side's orders that are no more aggressive than the new quote
        are held back with them, so that the side is not left empty until the budget returns;
        an order priced inside the new quote (one the market could now pick off) is cancelled
        regardless, as are the cancels of a side with nothing to place (a halt, a side that
        stopped at its inventory limit)."""
        places = [a for a in actions if a.kind == "place"] if self.quoting else []
        cancels = [a for a in actions if a.kind == "cancel" and a.client_order_id not in runtime.cancelling]
        clock = _TickToOrder(runtime.counters, arrived_ns) if arrived_ns else None
        now = time.monotonic_ns()
        min_life_ns = int(self.config.orders.min_order_life_ms * 1_000_000)
        if min_life_ns and places and cancels:
            places, cancels = self._keep_young_orders(runtime, places, cancels, now - min_life_ns)
        places_allowed = False
        if places:
            # The venue counts an order.place frame once per minute each, a batchOrders request once.
            over_websocket = self.client is not None and self.client.order_websocket_open
            per_minute = len(places) if over_websocket else -(-len(places) // BinanceFuturesClient.MAX_BATCH_PLACE)
            places_allowed = self.limiter.try_send(
                now, "orders", orders=len(places), weight=float(len(places)), orders_1m=per_minute
            )
            if not places_allowed:
                runtime.counters.rate_limited += 1
                runtime.dirty = True  # tried again at the next tick
                cancels = self._cancels_that_cannot_wait(runtime, cancels, places)
        if cancels:  # first on the wire: what is withdrawn matters more than what is added
            if self.limiter.try_send(now, "cancels", orders=len(cancels), weight=1.0):
                runtime.cancelling.update(a.client_order_id for a in cancels)
                for action in cancels:
                    runtime.placed_ns.pop(action.client_order_id, None)
                runtime.counters.cancels_sent += len(cancels)
                self._spawn_now(self._send_cancels(runtime, cancels, clock))
            else:
                runtime.counters.rate_limited += 1
                runtime.dirty = True
        if places_allowed:
            orders = []
            for action in places:
                size = action.size or 0.0
                runtime.account.add_order(action.client_order_id, action.side, action.price, size)
                orders.append(NewOrder(action.client_order_id, action.side, action.price, size, post_only=True))
            runtime.counters.places_sent += len(orders)
            if min_life_ns:
                if len(runtime.placed_ns) > 4 * len(runtime.account.open_orders) + 64:  # filled and expired ones
                    runtime.placed_ns = {
                        cid: at for cid, at in runtime.placed_ns.items() if runtime.account.order(cid) is not None
                    }
                for action in places:
                    runtime.placed_ns[action.client_order_id] = now
            self._spawn_now(self._send_places(runtime, places, orders, clock))

    def _keep_young_orders(
        self, runtime: SymbolRuntime, places: list[OrderAction], cancels: list[OrderAction], placed_before_ns: int
    ) -> tuple[list[OrderAction], list[OrderAction]]:
        """``[orders] min_order_life_ms``: a side whose requote would cancel an order placed after
        ``placed_before_ns`` keeps its orders and holds its new ones back (the next tick after
        the order has aged tries again), except for orders priced inside the new quote, which go
        as before. A side with nothing to place is not held."""
        young_sides = set()
        for action in cancels:
            placed = runtime.placed_ns.get(action.client_order_id)
            if placed is not None and placed > placed_before_ns:
                young_sides.add(action.side)
        young_sides &= {action.side for action in places}
        if not young_sides:
            return places, cancels
        held_places = [action for action in places if action.side in young_sides]
        held_cancels = [action for action in cancels if action.side in young_sides]
        runtime.counters.young_orders_kept += 1
        runtime.dirty = True
        return (
            [action for action in places if action.side not in young_sides],
            [action for action in cancels if action.side not in young_sides]
            + self._cancels_that_cannot_wait(runtime, held_cancels, held_places),
        )

    @staticmethod
    def _cancels_that_cannot_wait(
        runtime: SymbolRuntime, cancels: list[OrderAction], held_places: list[OrderAction]
    ) -> list[OrderAction]:
        """Of a tick's cancels whose replacements the rate limiter held back: those that go
        anyway. On a side with new orders held back, an order stays (its cancel waits for the
        next tick that can also place) if its price is no more aggressive than the side's
        innermost new quote; a side with nothing to place cancels everything it was asked to."""
        innermost: dict[Side, float] = {}
        for action in held_places:
            price, best = action.price, innermost.get(action.side)
            if price is None:
                continue
            if best is None or (price > best if action.side == Side.BUY else price < best):
                innermost[action.side] = price
        going = []
        for action in cancels:
            order = runtime.account.order(action.client_order_id)
            quote = innermost.get(action.side)
            if order is None or quote is None:
                going.append(action)
                continue
            inside = order.price > quote if action.side == Side.BUY else order.price < quote
            if inside:
                going.append(action)
            else:
                runtime.counters.requotes_held += 1
        return going

    async def _send_places(
        self, runtime: SymbolRuntime, places: list[OrderAction], orders: list[NewOrder], clock: _TickToOrder | None
    ) -> None:
        assert self.client is not None
        sent_ns = time.time_ns()
        on_written = clock.place_written if clock is not None else None
        try:
            results = await self.client.place_orders(runtime.symbol, orders, on_written=on_written)
        except VenueError as error:
            # Nothing went out (the venue's back-off is not over).
            logger.warning("%s: %d orders not placed: %s", runtime.symbol, len(orders), error)
            results = [
                OrderResult(order.client_order_id, "rejected", code=error.code, message=error.message)
                for order in orders
            ]
        for action, result in zip(places, results):
            self._after_place(runtime, action, result, sent_ns)

    async def _send_cancels(
        self, runtime: SymbolRuntime, cancels: list[OrderAction], clock: _TickToOrder | None = None
    ) -> None:
        assert self.client is not None
        ids = [a.client_order_id for a in cancels]
        sent_ns = time.time_ns()
        on_written = clock.cancel_written if clock is not None else None
        try:
            results = await self.client.cancel_orders(runtime.symbol, ids, on_written=on_written)
        except VenueError as error:
            # Nothing known to be cancelled: the orders stay live and the next tick retries.
            logger.warning("%s: cancel of %d orders not sent: %s", runtime.symbol, len(ids), error)
            self._mark_dirty(runtime)
            self._wake.set()
            return
        finally:
            runtime.cancelling.difference_update(ids)
        for action, result in zip(cancels, results):
            self._after_cancel(runtime, action, result, sent_ns)
        self._mark_dirty(runtime)
        self._wake.set()

    def _after_cancel(self, runtime: SymbolRuntime, action: OrderAction, result: OrderResult, sent_ns: int) -> None:
        cid = action.client_order_id
        gone = result.status == "accepted" or (result.status == "rejected" and result.code == -2011)
        if gone:
            # Closed here; a fill that raced the cancel still reaches the account (it remembers
            # closed orders) when the user stream delivers it.
            runtime.account.close_order(cid, OrderStatus.CANCELED)
        elif result.status == "rejected":
            runtime.counters.rejects += 1
        self._journal_order(runtime, action, "cancel", result, sent_ns)

    def _after_place(self, runtime: SymbolRuntime, action: OrderAction, result: OrderResult, sent_ns: int) -> None:
        cid = action.client_order_id
        if result.status == "accepted":
            runtime.account.acknowledge_order(cid, result.order_id)
            runtime.remember_order_id(result.order_id, cid)
        elif result.status == "rejected":
            runtime.counters.rejects += 1
            runtime.account.close_order(cid, OrderStatus.REJECTED)
            if result.code not in (-5022,):  # a post-only that would take is routine
                logger.warning("%s: order %s rejected: %s %s", runtime.symbol, cid, result.code, result.message)
        else:
            runtime.counters.unknown_outcomes += 1
            runtime.unknown.add(cid)
            self._spawn(self._reconcile_unknown(runtime))
        self._journal_order(runtime, action, "place", result, sent_ns)

    def _journal_order(
        self, runtime: SymbolRuntime, action: OrderAction, kind: str, result: OrderResult, sent_ns: int
    ) -> None:
        if self.journal is None:
            return
        status = {"accepted": "accepted" if kind == "place" else "canceled"}.get(result.status, result.status)
        self.journal.record_order(
            OrderRecord(
                symbol=runtime.symbol,
                client_order_id=action.client_order_id,
                kind="place" if kind == "place" else "cancel",
                side="buy" if action.side == Side.BUY else "sell",
                price=action.price if kind == "place" else None,
                size=action.size if kind == "place" else None,
                status=status,
                sent_ns=sent_ns,
                answered_ns=time.time_ns(),
                venue_order_id=None if result.order_id is None else str(result.order_id),
                reject_code=result.code if result.status == "rejected" else None,
                reject_reason=result.message if result.status == "rejected" else None,
            )
        )

    async def _reconcile_unknown(self, runtime: SymbolRuntime) -> None:
        """Orders whose answer was lost: those open at the venue are acknowledged, the others
        closed (a fill of one still reaches the account through the user stream)."""
        assert self.client is not None
        await asyncio.sleep(0.2)
        if not runtime.unknown:
            return
        open_ids = {order.client_order_id: order for order in await self.client.open_orders(runtime.symbol)}
        for cid in list(runtime.unknown):
            runtime.unknown.discard(cid)
            if cid in open_ids:
                runtime.account.acknowledge_order(cid, open_ids[cid].order_id)
                runtime.remember_order_id(open_ids[cid].order_id, cid)
            elif runtime.account.order(cid) is not None:
                runtime.account.close_order(cid, OrderStatus.EXPIRED)
        self._mark_dirty(runtime)
        self._wake.set()

    # -- private stream -------------------------------------------------------------------------

    async def _user_stream(self) -> None:
        assert self.client is not None
        async with BinanceUserStream(self.client, self.ws_url, ssl_context=self.ssl_context) as stream:
            async for event in stream:
                if isinstance(event, OrderUpdate):
                    self._user_stream_seen_ms = time.time_ns() // 1_000_000
                    self._on_order_update(event)
                elif isinstance(event, StreamRestarted):
                    logger.warning(
                        "user stream restarted (%s): backfilling fills, reconciling open orders", event.reason
                    )
                    since_ms = self._user_stream_seen_ms - BACKFILL_MARGIN_MS
                    for runtime in self.runtimes.values():
                        self._spawn(self._catch_up(runtime, since_ms))
                elif isinstance(event, AccountUpdate):
                    self._user_stream_seen_ms = time.time_ns() // 1_000_000

    async def _catch_up(self, runtime: SymbolRuntime, since_ms: int) -> None:
        """After the user stream was down: the fills it missed (``userTrades`` from shortly
        before its last event), then our open orders against the venue's."""
        try:
            await self._backfill_fills(runtime, since_ms)
        except Exception as error:  # the reconciliation below still runs; the next restart retries
            logger.warning("%s: backfilling fills failed: %s", runtime.symbol, error)
        runtime.unknown.update(order.client_order_id for order in runtime.account.open_orders)
        await self._reconcile_unknown(runtime)

    async def _backfill_fills(self, runtime: SymbolRuntime, since_ms: int) -> int:
        """Applies our trades since ``since_ms`` that the account has not seen (the account
        drops a trade id it already has); returns how many were new."""
        assert self.client is not None
        new = 0
        trades = await self.client.user_trades(runtime.symbol, start_time_ms=since_ms)
        while trades:
            for trade in trades:
                cid = runtime.client_ids.get(trade.order_id)
                if cid is None:
                    continue  # not one of this run's orders
                new += self._apply_fill(
                    runtime,
                    trade.trade_id,
                    trade.side,
                    trade.price,
                    trade.quantity,
                    cid,
                    trade.commission,
                    trade.is_maker,
                    trade.time_ms * 1_000_000,
                )
            if len(trades) < 1000:
                break
            trades = await self.client.user_trades(runtime.symbol, from_id=trades[-1].trade_id + 1)
        runtime.counters.backfilled_fills += new
        if new:
            logger.warning("%s: %d fills the user stream missed were backfilled", runtime.symbol, new)
            self._mark_dirty(runtime)
            self._wake.set()
        return new

    def _apply_fill(
        self,
        runtime: SymbolRuntime,
        trade_id: int,
        side: Side,
        price: float,
        quantity: float,
        client_order_id: str,
        fee: float,
        is_maker: bool,
        time_ns: int,
    ) -> bool:
        """One fill into the account and the journal; False for a trade id already applied."""
        outcome = runtime.account.apply_fill(
            trade_id,
            side,
            price,
            quantity,
            client_order_id=client_order_id,
            fee=fee,
            is_maker=is_maker,
            exchange_time_ns=time_ns,
        )
        if outcome == FillOutcome.DUPLICATE:
            return False
        runtime.counters.fills += 1
        if self.journal is not None:
            self.journal.record_fill(
                FillRecord(
                    symbol=runtime.symbol,
                    trade_id=str(trade_id),
                    side="buy" if side == Side.BUY else "sell",
                    price=price,
                    size=quantity,
                    fee=fee,
                    is_maker=is_maker,
                    time_ns=time_ns,
                    client_order_id=client_order_id,
                )
            )
        return True

    def _on_order_update(self, event: OrderUpdate) -> None:
        runtime = self.runtimes.get(event.symbol)
        if runtime is None or not event.client_order_id.startswith(self.prefix):
            return
        runtime.remember_order_id(event.order_id, event.client_order_id)
        if event.execution_type == "TRADE" and event.last_fill_quantity > 0:
            self._apply_fill(
                runtime,
                event.trade_id,
                event.side,
                event.last_fill_price,
                event.last_fill_quantity,
                event.client_order_id,
                event.commission,
                event.is_maker,
                event.transaction_time_ms * 1_000_000,
            )
        if event.order_status in ("FILLED", "CANCELED", "EXPIRED", "REJECTED"):
            runtime.account.close_order(event.client_order_id, event.order_status)
        self._mark_dirty(runtime)
        self._wake.set()

    # -- periodic -------------------------------------------------------------------------------

    async def _dead_man_switch(self) -> None:
        """Keeps the venue's countdown cancel-all armed (120 s, refreshed every 30 s): if this
        process dies or loses the venue, the venue cancels our orders itself."""
        assert self.client is not None
        while True:
            for symbol in self.runtimes:
                try:
                    await self.client.countdown_cancel_all(symbol, DEAD_MAN_COUNTDOWN_MS)
                except Exception as error:  # the next refresh tries again; the countdown is still running
                    logger.warning("%s: refreshing the countdown cancel-all failed: %s", symbol, error)
            await asyncio.sleep(DEAD_MAN_REFRESH_S)

    async def _warm_connections(self) -> None:
        """Keeps ``[venue] http_connections`` connections open to the venue (aiohttp drops one
        idle for 60 s), so that an order request never waits for a new connection."""
        assert self.client is not None
        while True:
            await asyncio.sleep(WARM_CONNECTIONS_EVERY_S)
            await self.client.warm_connections(self.config.venue.http_connections)

    async def _snapshots(self) -> None:
        interval = max(0.1, self.config.journal.snapshot_interval_s)
        while True:
            await asyncio.sleep(interval)
            if self.journal is None:
                continue
            now = time.time_ns()
            for runtime in self.runtimes.values():
                account = runtime.account
                mid = runtime.book.mid
                self.journal.record_snapshot(
                    PositionSnapshot(
                        symbol=runtime.symbol,
                        time_ns=now,
                        position=account.position,
                        entry_price=account.entry_price,
                        mid=mid,
                        balance=account.balance,
                        realized_pnl=account.realized_pnl,
                        unrealized_pnl=account.unrealized_pnl(mid) if mid else 0.0,
                        fees=account.fees_paid,
                    )
                )

    def symbol_status(self) -> list[SymbolStatus]:
        """Each symbol's state now: book, our quotes, position, PnL, features, rates, health."""
        statuses = []
        elapsed = max(1e-9, time.monotonic() - self.started_s)
        headroom = self.limiter.headroom(time.monotonic_ns())
        for runtime in self.runtimes.values():
            book, account, counters = runtime.book, runtime.account, runtime.counters
            mid = book.mid
            quotes = runtime.maker.quotes
            features = runtime.maker.engine.features
            statuses.append(
                SymbolStatus(
                    symbol=runtime.symbol,
                    decision=runtime.maker.decision or "starting",
                    best_bid=book.best_bid,
                    best_ask=book.best_ask,
                    our_bid=quotes.bids[0][0] if quotes is not None and quotes.bids else None,
                    our_ask=quotes.asks[0][0] if quotes is not None and quotes.asks else None,
                    position=account.position,
                    net_pnl=account.realized_pnl + (account.unrealized_pnl(mid) if mid else 0.0) - account.fees_paid,
                    skew=features.skew,
                    volatility=features.volatility,
                    imbalance=features.imbalances[0] if features.imbalances else 0.0,
                    ready=features.ready,
                    open_orders=len(account.open_orders),
                    fills=counters.fills,
                    orders_per_s=counters.places_sent / elapsed,
                    fills_per_min=counters.fills / elapsed * 60,
                    depth_per_s=counters.depth_messages / elapsed,
                    last_depth_ms=(time.perf_counter_ns() - counters.last_depth_ns) / 1e6
                    if counters.last_depth_ns
                    else math.inf,
                    book_status=str(book.status).rsplit(".", 1)[-1],
                    headroom=headroom,
                )
            )
        return statuses

    def status_lines(self) -> list[str]:
        """One line per symbol (the dashboard's content, for logs and non-terminals)."""
        return [status.line() for status in self.symbol_status()]

    async def _status_lines(self) -> None:
        assert self.out is not None
        while True:
            await asyncio.sleep(self.config.dashboard.status_line_s)
            for line in self.status_lines():
                print(line, file=self.out, flush=True)

    # -- hot reload -----------------------------------------------------------------------------

    def apply_config(self, new: Config, diff: ConfigDiff) -> None:
        """Applies a valid edit's live keys; reports the keys that need a restart."""
        for change in diff.needs_restart:
            logger.warning("config: %s changed; it applies after a restart", change)
            if self.out is not None:
                print(f"config: {change} (needs a restart)", file=self.out, flush=True)
        if not diff.live:
            return
        for symbol, runtime in self.runtimes.items():
            runtime.maker.generator.set_params(new.strategy.model, **new.quote_params(symbol))
            runtime.maker.engine.set_skew(weights=dict(new.features.weights), dead_band=new.features.dead_band)
            runtime.maker.planner.set_tolerances(
                requote_tolerance_bps=new.orders.requote_tolerance_bps,
                size_tolerance=new.orders.size_tolerance,
            )
            gate = runtime.maker.risk
            if gate is not None:
                gate.take_limits(new.risk_gate(runtime.symbol))  # a latched halt stays
            self._mark_dirty(runtime)
        self.config = new
        self._wake.set()
        keys = ", ".join(str(change) for change in diff.live)
        logger.info("config reloaded: %s", keys)
        if self.out is not None:
            print(f"config reloaded: {keys}", file=self.out, flush=True)

    # -- shutdown -------------------------------------------------------------------------------

    async def stop(self) -> RunSummary:
        """Stops quoting, cancels all our orders, confirms none remain, and sums up the run."""
        self.quoting = False
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        if self._background:
            # In-flight orders get their answers (so the account knows them) before the cancels.
            await asyncio.wait(list(self._background), timeout=2.0)
        for task in list(self._background):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
        summaries = []
        for symbol, runtime in self.runtimes.items():
            remaining = await self._cancel_everything(symbol)
            await self._final_fills(runtime)
            account = runtime.account
            mid = runtime.book.mid
            summaries.append(
                SymbolSummary(
                    symbol=symbol,
                    fills=account.fill_count,
                    volume=account.volume,
                    fees=account.fees_paid,
                    realized_pnl=account.realized_pnl,
                    unrealized_pnl=account.unrealized_pnl(mid) if mid else 0.0,
                    position=account.position,
                    open_orders_at_venue=remaining,
                    places_sent=runtime.counters.places_sent,
                    cancels_sent=runtime.counters.cancels_sent,
                    rejects=runtime.counters.rejects,
                )
            )
        if self.feed is not None:
            await self.feed.stop()
        if self.client is not None:
            await self.client.__aexit__(None, None, None)
        run_id = None
        if self.journal is not None:
            run_id = self.journal.run_id
            self.journal.end_run()
            self.journal.flush()
        gc.unfreeze()  # what the run held can be collected again
        return RunSummary(tuple(summaries), time.monotonic() - self.started_s, run_id)

    async def _final_fills(self, runtime: SymbolRuntime) -> None:
        """Our fills from the user stream's last event until every order was cancelled: the
        stream is stopped before the cancels, and an order can fill in between."""
        since_ms = self._user_stream_seen_ms - BACKFILL_MARGIN_MS
        try:
            await self._backfill_fills(runtime, since_ms)
        except Exception as error:  # the summary still comes; the journal may lack these fills
            logger.warning("%s: fetching the last fills at shutdown failed: %s", runtime.symbol, error)

    async def _cancel_everything(self, symbol: str) -> int:
        """Cancels all orders of the symbol until the venue lists none; returns how many remain."""
        assert self.client is not None
        deadline = time.monotonic() + CONFIRM_TIMEOUT_S
        remaining = -1
        while time.monotonic() < deadline:
            try:
                await self.client.cancel_all(symbol)
                remaining = len(
                    [o for o in await self.client.open_orders(symbol) if o.client_order_id.startswith(self.prefix)]
                )
            except Exception as error:  # a rate limit or a lost answer: try again until the deadline
                logger.warning("%s: cancel-all at shutdown: %s", symbol, error)
                await asyncio.sleep(0.5)
                continue
            if remaining == 0:
                with contextlib.suppress(Exception):  # disarm: nothing of ours is left to cancel
                    await self.client.countdown_cancel_all(symbol, 0)
                break
            await asyncio.sleep(0.2)
        return max(remaining, 0) if remaining >= 0 else len(self.runtimes[symbol].account.open_orders)

    def _spawn(self, coroutine: Any) -> None:
        task: asyncio.Task[None] = asyncio.create_task(coroutine)
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _spawn_now(self, coroutine: Any) -> None:
        """Starts an order request's task and, on Python 3.12+, runs it at once up to its first
        wait — the request's bytes are written before this returns (aiohttp writes a request
        with no body inline, on a pooled connection). Before 3.12 the task starts at the loop's
        next pass."""
        if sys.version_info >= (3, 12):
            task: asyncio.Task[None] = asyncio.Task(coroutine, loop=asyncio.get_running_loop(), eager_start=True)
            if task.done():
                task.result()  # an error is raised here, as it would be from the task
                return
            self._background.add(task)
            task.add_done_callback(self._background.discard)
        else:
            self._spawn(coroutine)


class _TickToOrder:
    """Times one tick's order requests from the arrival of the depth message that caused it."""

    __slots__ = ("arrived_ns", "counters", "first_written")

    def __init__(self, counters: SymbolCounters, arrived_ns: int) -> None:
        self.counters = counters
        self.arrived_ns = arrived_ns
        self.first_written = False

    def cancel_written(self, written_ns: int) -> None:
        if not self.first_written:
            self.first_written = True
            self.counters.tick_to_order_ns.append(written_ns - self.arrived_ns)

    def place_written(self, written_ns: int) -> None:
        self.cancel_written(written_ns)
        self.counters.tick_to_place_ns.append(written_ns - self.arrived_ns)


def tick_to_order_percentiles(engine: LiveEngine, *, places_only: bool = False) -> dict[str, float]:
    """count, p50, p90, p99 and max (µs) of the time from a depth message's arrival to the first
    order request (cancel or place; ``places_only``: the first place) of the tick it caused."""
    values = sorted(
        v
        for r in engine.runtimes.values()
        for v in (r.counters.tick_to_place_ns if places_only else r.counters.tick_to_order_ns)
        if v > 0
    )
    if not values:
        return {}

    def pick(share: float) -> float:
        return values[min(len(values) - 1, int(share * len(values)))] / 1000

    return {
        "count": float(len(values)),
        "p50_us": pick(0.50),
        "p90_us": pick(0.90),
        "p99_us": pick(0.99),
        "max_us": values[-1] / 1000,
    }
