"""Places and cancels over the Binance websocket API (``/ws-fapi/v1``): the local venue's side
(signed frames, answers by id, rejects with their codes, order counts, faults) and the order
client's (one frame per order, outcomes in input order, unknown when the connection is lost,
REST while it is down, the write stamp). Real venue, real aiohttp client, TLS on loopback.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any

import aiohttp
import pytest
import pytest_asyncio
from marketmaker import RateLimiter, Side
from marketmaker.credentials import ApiCredentials
from marketmaker.exchanges.binance import (
    WS_API_PATH,
    BinanceFuturesClient,
    NewOrder,
    RateLimitedError,
    VenueConnectionError,
)
from marketmaker.sim.binance import RateLimits
from marketmaker.sim.server import LocalVenue, VenueConfig

pytestmark = pytest.mark.asyncio

KEY = ApiCredentials("ws-api-test-api-key-0123456789", "ws-api-test-secret-abcdef", label="trader")
QUIET = VenueConfig(driver="none", credentials=(KEY,))


@pytest.fixture
def venue_config() -> VenueConfig:
    return QUIET


async def open_client(venue: LocalVenue, **options: Any) -> BinanceFuturesClient:
    client = BinanceFuturesClient(venue.rest_url, KEY, **options)
    await client.open()
    await client.sync_time(samples=1)
    await client.instruments(["BTCUSDT"])
    await client.open_order_websocket(venue.ws_url + WS_API_PATH, ssl_context=venue.client_ssl_context)
    return client


@pytest_asyncio.fixture
async def client(local_venue: LocalVenue) -> AsyncIterator[BinanceFuturesClient]:
    opened = await open_client(local_venue)
    try:
        yield opened
    finally:
        await opened.close()


def seed_book(venue: LocalVenue) -> None:
    """Bids 59990.0..59999.0 and asks 60001.0..60010.0, 1 BTC a level."""
    now_ms = time.time_ns() // 1_000_000
    for i in range(10):
        venue.engine.add_background("BTCUSDT", "BUY", Decimal("59999.0") - i, Decimal("1.000"), now_ms)
        venue.engine.add_background("BTCUSDT", "SELL", Decimal("60001.0") + i, Decimal("1.000"), now_ms)


def bid(client_order_id: str, price: float, quantity: float = 0.01, **options: bool) -> NewOrder:
    return NewOrder(client_order_id, Side.BUY, price, quantity, **options)


def rest_requests(venue: LocalVenue) -> int:
    """The IP's request weight used so far (REST requests and websocket API requests alike)."""
    return sum(state.window.used(venue.now_ms()) for state in venue.protocol._ip_weight.values())


# -- the client ----------------------------------------------------------------------------------


async def test_places_and_cancels_answer_each_order_in_input_order(
    local_venue: LocalVenue, client: BinanceFuturesClient
) -> None:
    seed_book(local_venue)
    assert client.order_websocket_open
    orders = [
        bid("w-1", 59_000.0),
        bid("w-2", 60_001.0),  # post-only that would take: -5022
        bid("w-3", 58_000.0, 0.001),  # 58 USDT < 100 min notional: -4164
        NewOrder("w-4", Side.SELL, 61_000.5, 0.02, post_only=False),
        *(bid(f"w-{i}", 58_500.0 - i) for i in range(5, 12)),  # more than a REST batch holds
    ]
    results = await client.place_orders("BTCUSDT", orders)
    assert [(r.client_order_id, r.status, r.code) for r in results] == [
        ("w-1", "accepted", None),
        ("w-2", "rejected", -5022),
        ("w-3", "rejected", -4164),
        ("w-4", "accepted", None),
        *((f"w-{i}", "accepted", None) for i in range(5, 12)),
    ]
    at_venue = {o.client_order_id: o for o in local_venue.engine.open_orders(KEY.key_id)}
    assert {r.client_order_id: r.order_id for r in results if r.order_id} == {
        c: o.order_id for c, o in at_venue.items()
    }
    assert (at_venue["w-1"].time_in_force, at_venue["w-4"].time_in_force) == ("GTX", "GTC")
    assert (at_venue["w-4"].price, at_venue["w-4"].quantity) == (Decimal("61000.5"), Decimal("0.020"))
    cancelled = await client.cancel_orders("BTCUSDT", ["w-1", "w-4", "never-placed"])
    assert [(r.client_order_id, r.status, r.code) for r in cancelled] == [
        ("w-1", "accepted", None),
        ("w-4", "accepted", None),
        ("never-placed", "rejected", -2011),
    ]
    assert sorted(o.client_order_id for o in local_venue.engine.open_orders(KEY.key_id)) == [
        f"w-{i}" for i in range(10, 12)
    ] + [f"w-{i}" for i in range(5, 10)]


async def test_the_first_frame_is_stamped_once_between_the_call_and_the_answers(client: BinanceFuturesClient) -> None:
    written: list[int] = []
    before = time.perf_counter_ns()
    results = await client.place_orders(
        "BTCUSDT", [bid(f"s-{i}", 59_000.0 - i) for i in range(3)], on_written=written.append
    )
    after = time.perf_counter_ns()
    assert [r.status for r in results] == ["accepted"] * 3
    assert len(written) == 1 and before < written[0] < after
    assert client.last_place_written_ns == written[0] and client.last_request_written_ns == written[0]
    assert client._write_stamps is not None and client._write_stamps.deferred == 0  # stamped at sock.send
    cancelled: list[int] = []
    await client.cancel_orders("BTCUSDT", ["s-0", "s-1"], on_written=cancelled.append)
    assert len(cancelled) == 1 and cancelled[0] > after and client.last_place_written_ns == written[0]


async def test_the_venues_rate_limits_reach_the_core_limiter(local_venue: LocalVenue) -> None:
    limiter = RateLimiter(100.0, weight_per_min=100.0, orders_per_10s=20.0)
    client = await open_client(local_venue, rate_limiter=limiter)
    try:
        await client.place_orders("BTCUSDT", [bid(f"h-{i}", 59_000.0 - i) for i in range(4)])  # 4 orders, weight 0
        used_weight = rest_requests(local_venue)
        _, weight_headroom, order_headroom = limiter.headroom(time.monotonic_ns())
    finally:
        await client.close()
    assert order_headroom == pytest.approx((20 - 4) / 20, abs=0.01)
    assert weight_headroom == pytest.approx((100 - used_weight) / 100, abs=0.01)


async def test_an_order_count_429_rejects_and_holds_back_places_but_not_cancels() -> None:
    config = VenueConfig(driver="none", credentials=(KEY,), rate_limits=RateLimits(orders_per_10s=3))
    async with LocalVenue(config) as venue:
        client = await open_client(venue)
        try:
            results = await client.place_orders("BTCUSDT", [bid(f"o-{i}", 59_000.0 - i) for i in range(4)])
            assert [(r.status, r.code) for r in results] == [("accepted", None)] * 3 + [("rejected", -1015)]
            with pytest.raises(RateLimitedError, match="not sent"):
                await client.place_orders("BTCUSDT", [bid("o-4", 58_000.0)])
            cancelled = await client.cancel_orders("BTCUSDT", ["o-0", "o-1"])
            assert [r.status for r in cancelled] == ["accepted", "accepted"]
        finally:
            await client.close()


async def test_a_1021_resyncs_the_clock_and_resends_once(
    local_venue: LocalVenue, client: BinanceFuturesClient, caplog: pytest.LogCaptureFixture
) -> None:
    local_venue.faults.update({"clock_skew_ms": 20_000})
    with caplog.at_level(logging.WARNING, logger="marketmaker.exchanges.binance"):
        results = await client.place_orders("BTCUSDT", [bid("k-1", 59_000.0), bid("k-2", 58_000.0)])
    assert [r.status for r in results] == ["accepted", "accepted"]
    assert "-1021" in caplog.text and 19_950 < client.time_offset_ms < 20_050
    assert sorted(o.client_order_id for o in local_venue.engine.open_orders(KEY.key_id)) == ["k-1", "k-2"]


async def test_a_lost_connection_makes_waiting_orders_unknown_then_rest_then_reopens(
    local_venue: LocalVenue, caplog: pytest.LogCaptureFixture
) -> None:
    """The venue drops the connection instead of answering an accepted place: both orders of the
    call are unknown, the next call goes over REST, and the websocket is reopened in the
    background."""
    client = await open_client(local_venue, timeout_s=2.0)
    try:
        local_venue.faults.update({"order_answer": "drop", "order_answer_count": 1})
        with caplog.at_level(logging.WARNING, logger="marketmaker.exchanges.binance"):
            results = await client.place_orders("BTCUSDT", [bid("u-1", 59_000.0), bid("u-2", 58_000.0)])
            assert [r.status for r in results] == ["unknown", "unknown"]
            assert all("connection" in r.message for r in results)
            assert not client.order_websocket_open
            (over_rest,) = await client.place_orders("BTCUSDT", [bid("u-3", 57_000.0)])
        assert over_rest.status == "accepted" and "orders go over REST" in caplog.text
        for _ in range(100):
            if client.order_websocket_open:
                break
            await asyncio.sleep(0.05)
        assert client.order_websocket_open
        found = sorted(o.client_order_id for o in await client.open_orders("BTCUSDT"))
        # u-1 was accepted before the drop; u-2's frame was never read: neither answer could be
        # known, so both were unknown, and only the venue's open orders tell them apart.
        assert found == ["u-1", "u-3"]
        cancelled = await client.cancel_orders("BTCUSDT", found)
        assert [r.status for r in cancelled] == ["accepted"] * 2
    finally:
        await client.close()


@pytest.mark.parametrize(
    ("fault", "status", "code"),
    [
        ({"order_answer": "503-unknown"}, "unknown", -1000),
        ({"order_answer": "delay", "order_answer_delay_s": 1.0}, "unknown", None),
    ],
    ids=["503-unknown", "timeout"],
)
async def test_an_unknown_answer_is_unknown_and_the_order_is_found_open(
    local_venue: LocalVenue, fault: dict[str, object], status: str, code: int | None
) -> None:
    client = await open_client(local_venue, timeout_s=0.4)
    try:
        local_venue.faults.update({**fault, "order_answer_count": 1})
        (result,) = await client.place_orders("BTCUSDT", [bid("d-1", 59_000.0)])
        assert (result.status, result.code) == (status, code)
        assert [o.client_order_id for o in await client.open_orders("BTCUSDT")] == ["d-1"]
        (later,) = await client.place_orders("BTCUSDT", [bid("d-2", 58_000.0)])  # the connection still serves
        assert later.status == "accepted" and client.order_websocket_open
    finally:
        await client.close()


async def test_secrets_stay_out_of_logs_reprs_and_results(
    local_venue: LocalVenue, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    wrong_secret = ApiCredentials(KEY.api_key, "not-the-ws-secret-xyz")
    texts: list[str] = []
    client = await open_client(local_venue, timeout_s=0.5)
    try:
        local_venue.faults.update({"order_answer": "drop", "order_answer_count": 1})
        texts += [repr(r) for r in await client.place_orders("BTCUSDT", [bid("z-1", 59_000.0)])]
        texts.append(repr(client))
    finally:
        await client.close()
    wrong = BinanceFuturesClient(local_venue.rest_url, wrong_secret)
    await wrong.open()
    try:
        await wrong.open_order_websocket(local_venue.ws_url + WS_API_PATH, ssl_context=local_venue.client_ssl_context)
        results = await wrong.place_orders("BTCUSDT", [bid("z-2", 59_000.0)])
        assert [(r.status, r.code) for r in results] == [("rejected", -1022)]
        texts += [repr(r) for r in results]
    finally:
        await wrong.close()
    everything = "\n".join([*texts, caplog.text, *(repr(r.args) for r in caplog.records)])
    assert "unknown" in everything
    for secret in (KEY.api_key, KEY.secret, wrong_secret.secret):
        assert secret not in everything


async def test_a_websocket_api_that_is_not_there(local_venue: LocalVenue) -> None:
    async with BinanceFuturesClient(local_venue.rest_url, KEY) as client:
        with pytest.raises(VenueConnectionError, match=r"websocket API .* cannot connect"):
            await client.open_order_websocket(
                local_venue.ws_url + "/no-such-path", ssl_context=local_venue.client_ssl_context
            )
        assert not client.order_websocket_open  # places and cancels stay on REST
        (placed,) = await client.place_orders("BTCUSDT", [bid("r-1", 59_000.0)])
        assert placed.status == "accepted"


# -- the venue, frame by frame ---------------------------------------------------------------------


#: A post-only bid's ``order.place`` parameters, unsigned.
A_BID = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTX",
    "quantity": "0.010",
    "price": "59000.0",
}


def signed(params: dict[str, Any], credentials: ApiCredentials = KEY) -> dict[str, Any]:
    """Signs as Binance documents it, written here independently of the client: HMAC-SHA256 of
    every parameter but ``signature``, sorted by name, as ``name=value`` joined by ``&``."""
    params = {**params, "apiKey": credentials.api_key, "timestamp": time.time_ns() // 1_000_000}
    payload = "&".join(
        f"{name}={str(params[name]).lower() if isinstance(params[name], bool) else params[name]}"
        for name in sorted(params)
    )
    params["signature"] = hmac.new(credentials.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    return params


async def exchange_frames(venue: LocalVenue, frames: list[str]) -> list[dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(venue.ws_url + WS_API_PATH, ssl=venue.client_ssl_context) as ws,
    ):
        for frame in frames:
            await ws.send_str(frame)
        return [json.loads((await ws.receive(timeout=5)).data) for _ in frames]


async def test_the_venue_answers_each_frame_by_id_with_binance_codes(local_venue: LocalVenue) -> None:
    seed_book(local_venue)
    place = {**A_BID, "newClientOrderId": "f-1"}
    bad_signature = {**signed({**place, "newClientOrderId": "f-2"}), "signature": "0" * 64}
    frames = [
        json.dumps({"id": "a", "method": "order.place", "params": signed(place)}),
        json.dumps(
            {"id": 7, "method": "order.status", "params": signed({"symbol": "BTCUSDT", "origClientOrderId": "f-1"})}
        ),
        json.dumps({"id": 8, "method": "order.place", "params": bad_signature}),
        json.dumps(
            {
                "id": 9,
                "method": "order.place",
                "params": {**place, "apiKey": "nobody", "timestamp": 1, "signature": "x"},
            }
        ),
        json.dumps(
            {"id": 10, "method": "order.cancel", "params": signed({"symbol": "BTCUSDT", "origClientOrderId": "nope"})}
        ),
        json.dumps({"id": 11, "method": "order.teleport", "params": {}}),
        "{not json",
        json.dumps(
            {"id": 12, "method": "order.cancel", "params": signed({"symbol": "BTCUSDT", "origClientOrderId": "f-1"})}
        ),
    ]
    answers = await exchange_frames(local_venue, frames)
    summary = [(a["id"], a["status"], a.get("error", {}).get("code")) for a in answers]
    assert summary == [
        ("a", 200, None),
        (7, 200, None),
        (8, 400, -1022),
        (9, 401, -2015),
        (10, 400, -2011),
        (11, 400, -1102),
        (None, 400, -1100),
        (12, 200, None),
    ]
    placed, status, cancelled = answers[0]["result"], answers[1]["result"], answers[7]["result"]
    assert (placed["clientOrderId"], placed["status"], placed["timeInForce"]) == ("f-1", "NEW", "GTX")
    assert (status["orderId"], status["status"]) == (placed["orderId"], "NEW")
    assert (cancelled["orderId"], cancelled["status"]) == (placed["orderId"], "CANCELED")
    limits = {(r["rateLimitType"], r["interval"], r["intervalNum"]): r for r in answers[0]["rateLimits"]}
    assert limits[("ORDERS", "SECOND", 10)]["count"] == 1 and limits[("REQUEST_WEIGHT", "MINUTE", 1)]["count"] > 0
    assert local_venue.engine.open_orders(KEY.key_id) == []


async def test_the_venue_refuses_a_request_outside_its_time_window(local_venue: LocalVenue) -> None:
    place = dict(A_BID)
    late = signed({**place, "recvWindow": 1000})
    late["timestamp"] -= 5_000  # re-sign with the old timestamp
    payload = "&".join(f"{name}={late[name]}" for name in sorted(late) if name != "signature")
    late["signature"] = hmac.new(KEY.secret.encode(), payload.encode(), hashlib.sha256).hexdigest()
    (answer,) = await exchange_frames(local_venue, [json.dumps({"id": 1, "method": "order.place", "params": late})])
    assert (answer["status"], answer["error"]["code"]) == (400, -1021)
    assert local_venue.engine.open_orders(KEY.key_id) == []
