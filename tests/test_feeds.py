"""``marketmaker.feeds.BinanceMarketData`` against the real local venue: the core's book built
from the raw depth texts and a REST snapshot equals the venue's; every depth message arrives once
and in order; gaps, dropped and silent routes recover; trades carry the venue's prints; stop
leaves nothing running."""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

import pytest
from marketmaker import BookStatus, OrderBook, UpdateOutcome
from marketmaker.feeds import BinanceMarketData, MarketDataError
from marketmaker.sim.engine import BookDelta, Event, TradePrint
from marketmaker.sim.server import LocalVenue, VenueConfig

pytestmark = pytest.mark.asyncio

SYMBOL = "BTCUSDT"


class LiveLoopStandIn:
    """What the live loop does with the feed: every depth text into the core's book, the
    outcome of each kept; trades kept as they came."""

    def __init__(self, tick_size: str = "0.1") -> None:
        self.book = OrderBook(SYMBOL, tick_size, sequencing="binance")
        self.texts: list[str] = []
        self.receive_ns: list[int] = []
        self.outcomes: list[UpdateOutcome] = []
        self.trades: list[Mapping[str, Any]] = []

    def on_depth(self, symbol: str, text: str, receive_ns: int) -> None:
        assert symbol == SYMBOL
        self.texts.append(text)
        self.receive_ns.append(receive_ns)
        self.outcomes.append(self.book.apply_binance_json(text, receive_time_ns=receive_ns))

    def on_trade(self, symbol: str, event: Mapping[str, Any], receive_ns: int) -> None:
        assert symbol == SYMBOL
        self.trades.append(event)

    async def resync(self, feed: BinanceMarketData) -> None:
        """The loop's answer to ``NEEDS_RESYNC`` (and its start): a snapshot over the buffered diffs."""
        applied = self.book.apply_binance_snapshot(await feed.fetch_snapshot(SYMBOL))
        assert applied.status == BookStatus.LIVE


def make_feed(venue: LocalVenue, loop_stand_in: LiveLoopStandIn, **options: Any) -> BinanceMarketData:
    return BinanceMarketData(
        [SYMBOL],
        rest_url=venue.rest_url,
        ws_url=venue.ws_url,
        on_depth=loop_stand_in.on_depth,
        on_trade=loop_stand_in.on_trade,
        ssl_context=venue.client_ssl_context,
        **options,
    )


async def wait_until(condition: Callable[[], bool], timeout: float = 15.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        await asyncio.sleep(0.02)


async def assert_book_equals_the_venues(venue: LocalVenue, book: OrderBook) -> None:
    """Pauses the market, lets the last messages arrive, compares every level."""
    venue.market_paused = True
    last_update_id = venue.engine.update_id(SYMBOL)
    await wait_until(lambda: book.last_update_id == last_update_id, timeout=5)
    venue_update_id, bids, asks = venue.engine.depth(SYMBOL, 100_000)
    assert venue_update_id == last_update_id
    assert book.status == BookStatus.LIVE
    assert book.bids() == [(float(p), float(q)) for p, q in bids]
    assert book.asks() == [(float(p), float(q)) for p, q in asks]
    assert len(bids) > 50 and len(asks) > 50


def update_ids(text: str) -> tuple[int, int, int]:
    data = json.loads(text)["data"]
    return data["U"], data["u"], data["pu"]


def feed_tasks() -> list[asyncio.Task[Any]]:
    """Running tasks whose coroutine is cryptofeed's or the feed module's."""
    found = []
    for task in asyncio.all_tasks():
        code = getattr(task.get_coro(), "cr_code", None)
        filename = code.co_filename if code is not None else ""
        if "cryptofeed" in filename or "marketmaker/feeds" in filename:
            found.append(task)
    return found


async def test_the_core_book_from_raw_depth_texts_and_a_snapshot_equals_the_venues(local_venue: LocalVenue) -> None:
    engine_update_ids: list[int] = []

    def record(event: Event) -> None:
        if isinstance(event, BookDelta) and event.symbol == SYMBOL:
            engine_update_ids.append(event.update_id)

    local_venue.engine.subscribe(record)
    loop = LiveLoopStandIn()
    feed = make_feed(local_venue, loop)
    async with feed:
        assert feed.tick_sizes == {SYMBOL: "0.1"}
        await wait_until(lambda: len(loop.texts) >= 10)
        assert set(loop.outcomes) == {UpdateOutcome.BUFFERED}  # no snapshot yet: the core waits
        await loop.resync(feed)
        await wait_until(lambda: len(loop.texts) >= 80)
        await assert_book_equals_the_venues(local_venue, loop.book)
        assert UpdateOutcome.GAP not in loop.outcomes
        stats = feed.stats[SYMBOL]
        assert stats.depth_messages == len(loop.texts)
        assert stats.last_depth_receive_ns == loop.receive_ns[-1]
        assert stats.depth_reconnects == 0 and stats.callback_errors == 0

    # @0ms: one message per engine update, each exactly once and in order, the pu chain unbroken.
    ids = [update_ids(text) for text in loop.texts]
    assert all(first == last for first, last, _ in ids)
    assert all(later[2] == earlier[1] for earlier, later in zip(ids, ids[1:]))
    first_received = ids[0][0]
    assert [u for _, u, _ in ids] == [u for u in engine_update_ids if u >= first_received]
    assert loop.receive_ns == sorted(loop.receive_ns)


@pytest.mark.parametrize("venue_config", [VenueConfig(symbols=("BTCUSDT", "ETHUSDT"))])
async def test_two_symbols_on_one_connection_each_reach_their_own_book(local_venue: LocalVenue) -> None:
    symbols = ("BTCUSDT", "ETHUSDT")
    books = {
        symbol: OrderBook(symbol, str(local_venue.engine.instruments[symbol].tick_size), sequencing="binance")
        for symbol in symbols
    }
    texts: dict[str, list[str]] = {symbol: [] for symbol in symbols}
    trade_symbols: set[tuple[str, str]] = set()

    def on_depth(symbol: str, text: str, receive_ns: int) -> None:
        texts[symbol].append(text)
        books[symbol].apply_binance_json(text, receive_time_ns=receive_ns)

    def on_trade(symbol: str, event: Mapping[str, Any], receive_ns: int) -> None:
        trade_symbols.add((symbol, event["s"]))

    feed = BinanceMarketData(
        list(symbols),
        rest_url=local_venue.rest_url,
        ws_url=local_venue.ws_url,
        on_depth=on_depth,
        on_trade=on_trade,
        ssl_context=local_venue.client_ssl_context,
    )
    async with feed:
        assert feed.tick_sizes == {"BTCUSDT": "0.1", "ETHUSDT": "0.01"}
        await wait_until(lambda: all(len(texts[s]) >= 5 for s in symbols))
        for symbol in symbols:
            books[symbol].apply_binance_snapshot(await feed.fetch_snapshot(symbol))
        await wait_until(lambda: all(len(texts[s]) >= 30 for s in symbols) and len(trade_symbols) == 2)
        local_venue.market_paused = True
        final = {symbol: local_venue.engine.update_id(symbol) for symbol in symbols}
        await wait_until(lambda: all(books[s].last_update_id == final[s] for s in symbols), timeout=5)
        assert [feed.stats[s].depth_messages for s in symbols] == [len(texts[s]) for s in symbols]
    for symbol in symbols:
        assert all(json.loads(text)["data"]["s"] == symbol for text in texts[symbol])
        _, bids, asks = local_venue.engine.depth(symbol, 100_000)
        assert books[symbol].status == BookStatus.LIVE
        assert books[symbol].bids() == [(float(p), float(q)) for p, q in bids]
        assert books[symbol].asks() == [(float(p), float(q)) for p, q in asks]
    assert trade_symbols == {("BTCUSDT", "BTCUSDT"), ("ETHUSDT", "ETHUSDT")}


@pytest.mark.parametrize("depth_speed", ["@100ms", ""])
async def test_coalesced_depth_speeds_build_the_same_book(local_venue: LocalVenue, depth_speed: str) -> None:
    loop = LiveLoopStandIn()
    async with make_feed(local_venue, loop, depth_speed=depth_speed) as feed:
        await wait_until(lambda: len(loop.texts) >= 2)
        await loop.resync(feed)
        await wait_until(lambda: len(loop.texts) >= 6)
        await assert_book_equals_the_venues(local_venue, loop.book)
    ids = [update_ids(text) for text in loop.texts]
    assert any(first < last for first, last, _ in ids)  # several engine updates in one message
    assert all(later[2] == earlier[1] for earlier, later in zip(ids, ids[1:]))


async def test_a_skipped_depth_message_is_a_gap_and_the_loops_resync_brings_the_book_back(
    local_venue: LocalVenue,
) -> None:
    loop = LiveLoopStandIn()
    async with make_feed(local_venue, loop) as feed:
        await wait_until(lambda: len(loop.texts) >= 5)
        await loop.resync(feed)
        await wait_until(lambda: loop.outcomes.count(UpdateOutcome.APPLIED) >= 5)
        local_venue.faults.update({"skip_depth_messages": 1})
        await wait_until(lambda: loop.book.status == BookStatus.NEEDS_RESYNC)
        assert loop.outcomes.count(UpdateOutcome.GAP) == 1
        assert local_venue.faults.skip_depth_messages == 0
        await loop.resync(feed)
        resynced_at = len(loop.texts)
        await wait_until(lambda: len(loop.texts) >= resynced_at + 10)
        await assert_book_equals_the_venues(local_venue, loop.book)
        assert loop.outcomes.count(UpdateOutcome.GAP) == 1
        assert feed.stats[SYMBOL].depth_reconnects == 0


async def test_a_dropped_public_route_reconnects_and_the_book_resyncs(local_venue: LocalVenue) -> None:
    loop = LiveLoopStandIn()
    async with make_feed(local_venue, loop) as feed:
        await wait_until(lambda: len(loop.texts) >= 5)
        await loop.resync(feed)
        await wait_until(lambda: loop.outcomes.count(UpdateOutcome.APPLIED) >= 5)
        local_venue.faults.update({"dropped_routes": ["public"]})
        await asyncio.sleep(0.3)
        cut_at = len(loop.texts)
        local_venue.faults.update({"dropped_routes": []})
        # cryptofeed waits 1 s before its first reconnect
        await wait_until(lambda: feed.stats[SYMBOL].depth_reconnects == 1, timeout=10)
        await wait_until(lambda: len(loop.texts) >= cut_at + 10)
        # the book missed what was sent while the route was down: the core says so
        assert loop.book.status == BookStatus.NEEDS_RESYNC
        assert loop.outcomes[cut_at] == UpdateOutcome.GAP
        await loop.resync(feed)
        resynced_at = len(loop.texts)
        await wait_until(lambda: len(loop.texts) >= resynced_at + 5)
        await assert_book_equals_the_venues(local_venue, loop.book)
        assert feed.stats[SYMBOL].trade_reconnects == 0
    last_ids = [update_ids(text)[1] for text in loop.texts]
    assert last_ids == sorted(set(last_ids))  # nothing twice, nothing out of order across the reconnect


async def test_a_silent_route_is_reconnected_by_the_watchdog(local_venue: LocalVenue) -> None:
    loop = LiveLoopStandIn()
    async with make_feed(local_venue, loop, silence_timeout_s=0.4) as feed:
        await wait_until(lambda: len(loop.texts) >= 5)
        local_venue.faults.update({"stalled_routes": ["public"]})
        await wait_until(lambda: feed.stats[SYMBOL].depth_reconnects >= 1, timeout=5)
        local_venue.faults.update({"stalled_routes": []})
        resumed_at = len(loop.texts)
        await wait_until(lambda: len(loop.texts) >= resumed_at + 5)


async def test_trades_arrive_with_the_venues_prices_and_sizes(local_venue: LocalVenue) -> None:
    prints: dict[int, TradePrint] = {}

    def record(event: Event) -> None:
        if isinstance(event, TradePrint):
            prints[event.trade_id] = event

    local_venue.engine.subscribe(record)
    loop = LiveLoopStandIn()
    async with make_feed(local_venue, loop) as feed:
        await wait_until(lambda: len(loop.trades) >= 10)
        assert feed.stats[SYMBOL].trades == len(loop.trades)
    aggregate_ids = [trade["a"] for trade in loop.trades]
    assert aggregate_ids == sorted(set(aggregate_ids))
    for trade in loop.trades:
        assert trade["e"] == "aggTrade" and trade["s"] == SYMBOL
        matched = [prints[i] for i in range(trade["f"], trade["l"] + 1)]
        assert all(p.price == Decimal(trade["p"]) for p in matched)
        assert sum(p.qty for p in matched) == Decimal(trade["q"])
        assert trade["m"] == (matched[0].taker_side == "SELL")


async def test_a_callback_that_raises_is_logged_and_the_stream_goes_on(
    local_venue: LocalVenue, caplog: pytest.LogCaptureFixture
) -> None:
    received: list[str] = []

    def on_depth(symbol: str, text: str, receive_ns: int) -> None:
        received.append(text)
        if len(received) == 3:
            raise RuntimeError("the loop's bug")

    feed = BinanceMarketData(
        [SYMBOL],
        rest_url=local_venue.rest_url,
        ws_url=local_venue.ws_url,
        on_depth=on_depth,
        on_trade=lambda symbol, event, receive_ns: None,
        ssl_context=local_venue.client_ssl_context,
    )
    with caplog.at_level(logging.ERROR, logger="marketmaker.feeds.binance"):
        async with feed:
            await wait_until(lambda: len(received) >= 10)
    assert feed.stats[SYMBOL].callback_errors == 1
    assert feed.stats[SYMBOL].depth_reconnects == 0
    assert "on_depth raised for BTCUSDT" in caplog.text and "the loop's bug" in caplog.text


async def test_stop_leaves_no_task_even_during_a_reconnect_back_off(local_venue: LocalVenue) -> None:
    assert feed_tasks() == []
    loop = LiveLoopStandIn()
    feed = make_feed(local_venue, loop)
    await feed.start()
    assert feed_tasks() != []
    local_venue.faults.update({"dropped_routes": ["public"]})  # the handler now sleeps before retrying
    await asyncio.sleep(0.2)
    started = time.monotonic()
    await feed.stop()
    assert time.monotonic() - started < 3
    assert feed_tasks() == []
    await feed.stop()  # twice is harmless


async def test_an_unlisted_symbol_is_refused_at_start_and_nothing_is_left_open(local_venue: LocalVenue) -> None:
    feed = BinanceMarketData(
        ["BTCUSDT", "DOGEUSDT"],
        rest_url=local_venue.rest_url,
        ws_url=local_venue.ws_url,
        on_depth=lambda symbol, text, receive_ns: None,
        on_trade=lambda symbol, event, receive_ns: None,
        ssl_context=local_venue.client_ssl_context,
    )
    with pytest.raises(MarketDataError, match=r"\['DOGEUSDT'\] are not listed by the venue at http://127\.0\.0\.1"):
        await feed.start()
    assert feed_tasks() == []


async def test_a_venue_that_does_not_answer_the_websocket_fails_start_within_the_timeout(
    local_venue: LocalVenue,
) -> None:
    local_venue.faults.update({"dropped_routes": ["public"]})
    loop = LiveLoopStandIn()
    feed = make_feed(local_venue, loop, connect_timeout_s=0.5)
    with pytest.raises(MarketDataError, match=r"/public not connected within 0\.5 s"):
        await feed.start()
    assert feed_tasks() == []


async def test_a_snapshot_error_names_the_venues_answer(local_venue: LocalVenue) -> None:
    loop = LiveLoopStandIn()
    async with make_feed(local_venue, loop) as feed:
        local_venue.faults.update(
            {"rest_error": "503-unavailable", "rest_error_count": 1, "rest_error_paths": ["/fapi/v1/depth"]}
        )
        with pytest.raises(MarketDataError, match=r"/fapi/v1/depth .*HTTP 503.*-1001"):
            await feed.fetch_snapshot(SYMBOL)
        snapshot = await feed.fetch_snapshot(SYMBOL, limit=5)
        assert len(snapshot["bids"]) == 5 and snapshot["lastUpdateId"] > 0
        with pytest.raises(ValueError, match="limit 7 is not one of"):
            await feed.fetch_snapshot(SYMBOL, limit=7)
        with pytest.raises(ValueError, match="'ETHUSDT' is not one of this feed's symbols"):
            await feed.fetch_snapshot("ETHUSDT")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"symbols": []}, "symbols: give a list"),
        ({"symbols": "BTCUSDT"}, "symbols: give a list"),
        ({"symbols": ["btc-usdt"]}, r"symbols: \['btc-usdt'\] are not venue symbols"),
        ({"symbols": ["BTCUSDT", "BTCUSDT"]}, "lists a symbol twice"),
        ({"depth_speed": "@1ms"}, "depth_speed: '@1ms' is not one of"),
        ({"ws_url": "ws://127.0.0.1:1"}, "ws_url: 'ws://127.0.0.1:1' must start with wss://"),
        ({"rest_url": "127.0.0.1:1"}, "rest_url: '127.0.0.1:1' must start with http"),
        ({"silence_timeout_s": 0}, "silence_timeout_s: 0 must be positive"),
    ],
)
async def test_bad_arguments_are_named(options: dict[str, Any], message: str) -> None:
    arguments: dict[str, Any] = {
        "symbols": [SYMBOL],
        "rest_url": "http://127.0.0.1:1",
        "ws_url": "wss://127.0.0.1:1",
        "on_depth": lambda symbol, text, receive_ns: None,
        "on_trade": lambda symbol, event, receive_ns: None,
    }
    arguments.update(options)
    symbols = arguments.pop("symbols")
    with pytest.raises(ValueError, match=message):
        BinanceMarketData(symbols, **arguments)
