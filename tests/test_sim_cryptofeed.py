"""The real cryptofeed ``BinanceFutures`` feed against the local venue.

The feed is subclassed only to point its endpoints at the venue (REST on http, websockets on
the 2026 routes over TLS that it trusts through ``options={"ssl": ...}``). cryptofeed 2.4.1
builds one address from its first websocket endpoint for all channels (``Binance._address``),
so a per-route ``channel_filter`` cannot split one feed over routes: one feed per route, as
a client must do since the route split.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from decimal import Decimal
from typing import Any

import pytest
from cryptofeed.connection import RestEndpoint, WebsocketEndpoint
from cryptofeed.defines import L2_BOOK, TRADES
from cryptofeed.exchanges import BinanceFutures
from cryptofeed.types import OrderBook, Trade
from marketmaker.sim.engine import Event, TradePrint
from marketmaker.sim.server import LocalVenue

pytestmark = pytest.mark.asyncio

SYMBOL = "BTC-USDT-PERP"


def feed_class(venue: LocalVenue, websocket_base: str) -> type[BinanceFutures]:
    """``BinanceFutures`` with its websocket endpoint at ``websocket_base`` and REST at the venue."""
    routes = BinanceFutures.rest_endpoints[0].routes
    return type(
        "LocalVenueBinanceFutures",
        (BinanceFutures,),
        {
            "websocket_endpoints": [
                WebsocketEndpoint(websocket_base, options={"compression": None, "ssl": venue.client_ssl_context})
            ],
            "rest_endpoints": [RestEndpoint(venue.rest_url, routes=routes)],
        },
    )


async def make_feed(
    venue: LocalVenue, websocket_base: str, channel: str, callback: Callable[..., Awaitable[None]]
) -> BinanceFutures:
    feed_type = feed_class(venue, websocket_base)
    # cryptofeed reads exchangeInfo with a blocking HTTP call: make it off the loop the venue runs in.
    await asyncio.to_thread(feed_type.symbol_mapping, True)
    feed: BinanceFutures = await asyncio.to_thread(
        feed_type, symbols=[SYMBOL], channels=[channel], callbacks={channel: callback}, timeout=-1
    )
    return feed


def start_feed(feed: BinanceFutures) -> set[asyncio.Task[Any]]:
    """Starts the feed in the running loop; returns the tasks it created (its connection handlers)."""
    before = asyncio.all_tasks()
    feed.start(asyncio.get_running_loop())
    return asyncio.all_tasks() - before


async def stop_feed(feed: BinanceFutures, tasks: set[asyncio.Task[Any]]) -> None:
    """Stops the feed and waits for its connection handlers to end."""
    feed.stop()
    await feed.shutdown()
    await asyncio.wait_for(asyncio.gather(*tasks), timeout=10)


async def wait_until(condition: Callable[[], bool], timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_cryptofeed_syncs_the_book_and_it_equals_the_venues(local_venue: LocalVenue) -> None:
    books: list[OrderBook] = []
    deltas = 0

    async def on_book(book: OrderBook, receipt_timestamp: float) -> None:
        nonlocal deltas
        books.append(book)
        if book.delta is not None:
            deltas += 1

    feed = await make_feed(local_venue, local_venue.ws_url + "/public", L2_BOOK, on_book)
    tasks = start_feed(feed)
    try:
        await wait_until(lambda: deltas >= 20, timeout=15)
        local_venue.market_paused = True
        await asyncio.sleep(0.5)  # the 100 ms stream flushes what is left; the feed applies it
        last_update_id, bids, asks = local_venue.engine.depth("BTCUSDT", 1000)
        book = books[-1]
        assert book.sequence_number == last_update_id
        assert book.book.bids.to_dict() == dict(bids)
        assert book.book.asks.to_dict() == dict(asks)
        assert len(bids) > 50 and len(asks) > 50
        assert all(isinstance(price, Decimal) for price in book.book.bids.to_dict())
    finally:
        await stop_feed(feed, tasks)


async def test_cryptofeed_receives_the_venues_trades_on_the_market_route(local_venue: LocalVenue) -> None:
    prints: dict[int, TradePrint] = {}

    def record(event: Event) -> None:
        if isinstance(event, TradePrint):
            prints[event.trade_id] = event

    local_venue.engine.subscribe(record)
    trades: list[Trade] = []

    async def on_trade(trade: Trade, receipt_timestamp: float) -> None:
        trades.append(trade)

    feed = await make_feed(local_venue, local_venue.ws_url + "/market", TRADES, on_trade)
    tasks = start_feed(feed)
    try:
        await wait_until(lambda: len(trades) >= 5, timeout=15)
    finally:
        await stop_feed(feed, tasks)
    for trade in trades:
        raw: dict[str, Any] = trade.raw  # type: ignore[assignment]
        matched = [prints[i] for i in range(raw["f"], raw["l"] + 1)]
        assert all(p.price == trade.price for p in matched)
        assert sum(p.qty for p in matched) == trade.amount
        assert trade.side == ("buy" if matched[0].taker_side == "BUY" else "sell")
        assert trade.symbol == SYMBOL


async def test_the_unrouted_base_delivers_depth_but_no_trades(local_venue: LocalVenue) -> None:
    """cryptofeed's own (unrouted) base, as on the real venue since the 2026 route split."""
    trades: list[Trade] = []
    books: list[OrderBook] = []

    async def on_trade(trade: Trade, receipt_timestamp: float) -> None:
        trades.append(trade)

    async def on_book(book: OrderBook, receipt_timestamp: float) -> None:
        books.append(book)

    trade_feed = await make_feed(local_venue, local_venue.ws_url, TRADES, on_trade)
    book_feed = await make_feed(local_venue, local_venue.ws_url, L2_BOOK, on_book)
    executed: list[TradePrint] = []
    local_venue.engine.subscribe(lambda event: executed.append(event) if isinstance(event, TradePrint) else None)
    trade_tasks = start_feed(trade_feed)
    book_tasks = start_feed(book_feed)
    try:
        await wait_until(lambda: len(books) >= 5 and len(executed) >= 5, timeout=15)
        await asyncio.sleep(0.3)
    finally:
        await stop_feed(trade_feed, trade_tasks)
        await stop_feed(book_feed, book_tasks)
    assert trades == []


async def test_a_skipped_depth_update_makes_cryptofeed_resync_to_the_venues_book(local_venue: LocalVenue) -> None:
    snapshots = 0
    deltas = 0
    books: list[OrderBook] = []

    async def on_book(book: OrderBook, receipt_timestamp: float) -> None:
        nonlocal snapshots, deltas
        books.append(book)
        if book.delta is None:
            snapshots += 1
        else:
            deltas += 1

    feed = await make_feed(local_venue, local_venue.ws_url + "/public", L2_BOOK, on_book)
    tasks = start_feed(feed)
    try:
        await wait_until(lambda: deltas >= 5, timeout=15)
        assert snapshots == 1
        local_venue.faults.update({"skip_depth_messages": 1})
        await wait_until(lambda: snapshots == 2, timeout=15)  # pu did not match: cryptofeed starts again
        assert local_venue.faults.skip_depth_messages == 0
        synced_again = deltas
        await wait_until(lambda: deltas >= synced_again + 5, timeout=15)
        local_venue.market_paused = True
        await asyncio.sleep(0.5)
        last_update_id, bids, asks = local_venue.engine.depth("BTCUSDT", 1000)
        assert books[-1].sequence_number == last_update_id
        assert books[-1].book.bids.to_dict() == dict(bids)
        assert books[-1].book.asks.to_dict() == dict(asks)
    finally:
        await stop_feed(feed, tasks)
