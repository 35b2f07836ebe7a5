"""The Binance user-data stream against the local venue: typed events whose fields equal the
venue engine's own fills, restarts after a listen key expiry or a dropped connection, and the
listen key kept alive.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from decimal import Decimal

import pytest
import pytest_asyncio
from marketmaker import Side
from marketmaker.credentials import ApiCredentials
from marketmaker.errors import MalformedMessageError
from marketmaker.exchanges.binance import (
    BinanceFuturesClient,
    BinanceUserStream,
    NewOrder,
    VenueConnectionError,
    account_update_from_json,
    order_update_from_json,
)
from marketmaker.exchanges.events import AccountUpdate, OrderUpdate, StreamRestarted, UserStreamEvent
from marketmaker.sim.engine import AccountEvent, Event, OrderEvent
from marketmaker.sim.server import LocalVenue, VenueConfig

pytestmark = pytest.mark.asyncio

KEY = ApiCredentials("stream-test-api-key-0123456789", "stream-test-secret-abcdef", label="trader")


@pytest.fixture
def venue_config() -> VenueConfig:
    return VenueConfig(driver="none", credentials=(KEY,))


@pytest_asyncio.fixture
async def client(local_venue: LocalVenue) -> AsyncIterator[BinanceFuturesClient]:
    async with BinanceFuturesClient(local_venue.rest_url, KEY) as opened:
        await opened.sync_time(samples=2)
        await opened.instruments(["BTCUSDT"])
        yield opened


def now_ms() -> int:
    return time.time_ns() // 1_000_000


async def next_event(stream: BinanceUserStream, timeout: float = 5.0) -> UserStreamEvent:
    return await asyncio.wait_for(anext(stream), timeout)


async def next_events(stream: BinanceUserStream, count: int) -> list[UserStreamEvent]:
    return [await next_event(stream) for _ in range(count)]


def open_stream(client: BinanceFuturesClient, venue: LocalVenue, **options: float) -> BinanceUserStream:
    return BinanceUserStream(client, venue.ws_url, venue.client_ssl_context, **options)


def as_engine_fields(update: OrderUpdate) -> tuple[object, ...]:
    return (
        update.symbol,
        update.order_id,
        update.client_order_id,
        "BUY" if update.side == Side.BUY else "SELL",
        update.execution_type,
        update.order_status,
        update.price,
        update.quantity,
        update.last_fill_quantity,
        update.last_fill_price,
        update.cumulative_filled,
        update.average_price,
        update.commission,
        update.commission_asset,
        update.trade_id,
        update.is_maker,
        update.realized_pnl,
        update.order_type,
        update.time_in_force,
        update.reduce_only,
        update.transaction_time_ms,
    )


def engine_fields(event: OrderEvent) -> tuple[object, ...]:
    return (
        event.symbol,
        event.order_id,
        event.client_order_id,
        event.side,
        event.execution_type,
        event.status,
        float(event.price),
        float(event.quantity),
        float(event.last_filled_qty),
        float(event.last_filled_price),
        float(event.cumulative_filled_qty),
        float(event.average_price),
        float(event.commission),
        event.commission_asset or None,
        event.trade_id,
        event.is_maker,
        float(event.realized_pnl),
        event.order_type,
        event.time_in_force,
        event.reduce_only,
        event.time_ms,
    )


async def test_order_and_account_updates_equal_the_engine_fills(
    local_venue: LocalVenue, client: BinanceFuturesClient
) -> None:
    engine_events: list[Event] = []
    local_venue.engine.subscribe(engine_events.append)
    async with open_stream(client, local_venue) as stream:
        placed = await client.place_orders(
            "BTCUSDT", [NewOrder("mm-b-1", Side.BUY, 59_000.0, 0.03), NewOrder("mm-a-1", Side.SELL, 61_000.0, 0.02)]
        )
        assert [r.status for r in placed] == ["accepted", "accepted"]
        local_venue.engine.market_order_background("BTCUSDT", "SELL", Decimal("0.010"), now_ms())
        local_venue.engine.market_order_background("BTCUSDT", "SELL", Decimal("0.020"), now_ms())
        cancelled = await client.cancel_orders("BTCUSDT", ["mm-a-1"])
        assert cancelled[0].status == "accepted"
        received = await next_events(stream, 7)
    ours = [e for e in engine_events if isinstance(e, (OrderEvent, AccountEvent)) and e.account_id == KEY.key_id]
    assert [type(e).__name__ for e in received] == [
        "OrderUpdate",
        "OrderUpdate",
        "OrderUpdate",
        "AccountUpdate",
        "OrderUpdate",
        "AccountUpdate",
        "OrderUpdate",
    ]
    assert len(ours) == len(received)
    for event, engine_event in zip(received, ours):
        if isinstance(event, OrderUpdate):
            assert isinstance(engine_event, OrderEvent)
            assert as_engine_fields(event) == engine_fields(engine_event)
        else:
            assert isinstance(event, AccountUpdate) and isinstance(engine_event, AccountEvent)
            assert event.reason == engine_event.reason == "ORDER"
            ((position,), (engine_position,)) = (event.positions, engine_event.positions)
            assert (position.symbol, position.size, position.entry_price) == (
                engine_position.symbol,
                float(engine_position.size),
                float(engine_position.entry_price),
            )
            (balance,) = event.balances
            assert (balance.asset, balance.wallet_balance) == ("USDT", float(engine_event.balance.wallet_balance))
    partial, filled = (e for e in received if isinstance(e, OrderUpdate) and e.is_fill)
    assert (partial.order_status, partial.last_fill_quantity, partial.cumulative_filled) == (
        "PARTIALLY_FILLED",
        0.01,
        0.01,
    )
    assert (filled.order_status, filled.last_fill_price, filled.cumulative_filled, filled.is_maker) == (
        "FILLED",
        59_000.0,
        0.03,
        True,
    )
    assert filled.commission == pytest.approx(0.02 * 59_000.0 * 0.0002) and filled.commission_asset == "USDT"
    assert partial.trade_id != filled.trade_id
    last = received[-1]
    assert isinstance(last, OrderUpdate) and (last.client_order_id, last.execution_type) == ("mm-a-1", "CANCELED")
    final_account = received[5]
    assert isinstance(final_account, AccountUpdate) and final_account.positions[0].size == 0.03


async def test_a_listen_key_expiry_restarts_the_stream_and_events_flow_again(
    local_venue: LocalVenue, client: BinanceFuturesClient
) -> None:
    async with open_stream(client, local_venue) as stream:
        first_key = await client.new_listen_key()
        assert local_venue.expire_listen_keys() == 1
        restarted = await next_event(stream)
        assert restarted == StreamRestarted("listenKeyExpired")
        assert await client.new_listen_key() != first_key
        await client.place_orders("BTCUSDT", [NewOrder("after-expiry", Side.BUY, 59_000.0, 0.01)])
        new = await next_event(stream)
        assert isinstance(new, OrderUpdate) and (new.client_order_id, new.execution_type) == ("after-expiry", "NEW")


async def test_a_dropped_connection_restarts_once_the_route_is_back(
    local_venue: LocalVenue, client: BinanceFuturesClient
) -> None:
    async with open_stream(client, local_venue, reconnect_delay_s=0.05) as stream:
        local_venue.faults.update({"dropped_routes": ["private"]})
        waiting = asyncio.ensure_future(next_event(stream))
        await asyncio.sleep(0.4)  # cut, and reconnects refused (503) meanwhile
        assert not waiting.done()
        local_venue.faults.update({"dropped_routes": []})
        assert isinstance(await waiting, StreamRestarted)
        await client.place_orders("BTCUSDT", [NewOrder("after-drop", Side.BUY, 59_000.0, 0.01)])
        new = await next_event(stream)
        assert isinstance(new, OrderUpdate) and new.client_order_id == "after-drop"


async def test_a_refused_connection_says_so_without_the_listen_key(
    local_venue: LocalVenue, client: BinanceFuturesClient
) -> None:
    local_venue.faults.update({"dropped_routes": ["private"]})
    with pytest.raises(VenueConnectionError, match="HTTP 503") as refused:
        async with open_stream(client, local_venue):
            pass
    listen_key = await client.new_listen_key()
    assert listen_key not in str(refused.value) and refused.value.__cause__ is None
    assert refused.value.__suppress_context__


async def test_the_listen_key_is_kept_alive() -> None:
    """Keys live 0.6 s here; a keepalive every 0.2 s keeps the stream up for 1.5 s."""
    config = VenueConfig(driver="none", credentials=(KEY,), listen_key_lifetime_s=0.6)
    # a REST timeout shorter than the wait: it must not cut the websocket
    async with LocalVenue(config) as venue, BinanceFuturesClient(venue.rest_url, KEY, timeout_s=0.5) as own_client:
        await own_client.sync_time(samples=1)
        async with open_stream(own_client, venue, keep_alive_interval_s=0.2) as stream:
            await asyncio.sleep(1.5)
            await own_client.place_orders("BTCUSDT", [NewOrder("alive", Side.BUY, 59_000.0, 0.01)])
            new = await next_event(stream)
            assert isinstance(new, OrderUpdate) and new.client_order_id == "alive"
        async with open_stream(own_client, venue, keep_alive_interval_s=60.0) as unkept:
            await asyncio.sleep(0.8)  # no keepalive: the key expires
            assert await next_event(unkept) == StreamRestarted("listenKeyExpired")


async def test_malformed_messages_name_the_field() -> None:
    good = {
        "e": "ORDER_TRADE_UPDATE",
        "E": 2,
        "T": 1,
        "o": {
            "s": "BTCUSDT",
            "c": "b",
            "S": "BUY",
            "o": "LIMIT",
            "f": "GTX",
            "q": "0.010",
            "p": "59000.0",
            "ap": "0",
            "x": "NEW",
            "X": "NEW",
            "i": 7,
            "l": "0",
            "z": "0",
            "L": "0",
            "n": "0",
            "t": 0,
            "m": False,
            "R": False,
            "rp": "0",
        },
    }
    update = order_update_from_json(good)
    assert (update.side, update.quantity, update.commission_asset, update.is_fill) == (Side.BUY, 0.01, None, False)
    without_fill_quantity = {**good, "o": {k: v for k, v in good["o"].items() if k != "l"}}  # type: ignore[attr-defined]
    with pytest.raises(MalformedMessageError, match="ORDER_TRADE_UPDATE o: field 'l' is missing"):
        order_update_from_json(without_fill_quantity)
    with pytest.raises(MalformedMessageError, match="side 'HOLD'"):
        order_update_from_json({**good, "o": {**good["o"], "S": "HOLD"}})  # type: ignore[dict-item]
    with pytest.raises(MalformedMessageError, match=r"ACCOUNT_UPDATE a.P: field 'pa' is not a float: 'lots'"):
        account_update_from_json(
            {"e": "ACCOUNT_UPDATE", "E": 1, "T": 1, "a": {"m": "ORDER", "B": [], "P": [{"s": "X", "pa": "lots"}]}}
        )
