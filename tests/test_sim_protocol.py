"""The local venue's Binance USDⓈ-M protocol, seen from real aiohttp clients on loopback.

Most tests run the venue without a market driver (``driver="none"``) and put the liquidity
they need into the engine themselves, so every figure they check is known in advance.
"""

from __future__ import annotations

import asyncio
import doctest
import json
import signal
import ssl
import sys
import time
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from marketmaker.credentials import ApiCredentials
from marketmaker.exchanges import signing
from marketmaker.exchanges.signing import binance_signature, bybit_signature
from marketmaker.sim import binance, faults, server, tls
from marketmaker.sim.binance import RateLimits
from marketmaker.sim.faults import VenueFaults
from marketmaker.sim.server import LocalVenue, VenueConfig
from yarl import URL

pytestmark = pytest.mark.asyncio

BINANCE_VECTOR_SECRET = "2b5eb11e18796d12d88f13dc27dbbd02c2cc51ff7059765ed9821957d82bb4d9"
BINANCE_VECTOR_PARAMS = (
    "symbol=BTCUSDT&side=BUY&type=LIMIT&quantity=1&price=9000&timeInForce=GTC&recvWindow=5000&timestamp=1591702613943"
)
BINANCE_VECTOR_SIGNATURE = "3c661234138461fcc7a7d8746c6558c9842d4e10870d2ecbedf7777cad694af9"
KEY = ApiCredentials("test-api-key-0123456789", "test-secret-abcdef", label="trader")
QUIET = VenueConfig(driver="none", credentials=(KEY,), ws_ping_interval_s=180.0)


@pytest.fixture
def venue_config() -> VenueConfig:
    return QUIET


@pytest_asyncio.fixture
async def session() -> AsyncIterator[aiohttp.ClientSession]:
    async with aiohttp.ClientSession() as client:
        yield client


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class Answer:
    def __init__(self, status: int, body: Any, headers: Any) -> None:
        self.status = status
        self.body = body
        self.headers = headers

    @property
    def code(self) -> int | None:
        return self.body.get("code") if isinstance(self.body, dict) else None


async def signed(
    session: aiohttp.ClientSession,
    venue: LocalVenue,
    method: str,
    path: str,
    params: dict[str, Any],
    *,
    in_body: bool = False,
    timestamp: int | None = None,
    credentials: ApiCredentials = KEY,
    timeout: float | None = None,
) -> Answer:
    """A SIGNED request as an order client sends it: sign the exact encoded text, append the signature."""
    text = urlencode({**params, "timestamp": now_ms() if timestamp is None else timestamp})
    text += "&signature=" + binance_signature(credentials.secret, text)
    url = venue.rest_url + path + ("" if in_body else "?" + text)
    headers = {"X-MBX-APIKEY": credentials.api_key}
    if in_body:
        headers["Content-Type"] = "application/x-www-form-urlencoded"
    client_timeout = aiohttp.ClientTimeout(total=timeout)
    async with session.request(
        method, URL(url, encoded=True), data=text if in_body else None, headers=headers, timeout=client_timeout
    ) as response:
        return Answer(response.status, await response.json(), response.headers)


async def public(session: aiohttp.ClientSession, venue: LocalVenue, path: str) -> Answer:
    async with session.get(venue.rest_url + path) as response:
        return Answer(response.status, await response.json(), response.headers)


def seed_book(venue: LocalVenue) -> None:
    """Bids 59990.0..59999.0 and asks 60001.0..60010.0, 1 BTC a level."""
    for i in range(10):
        venue.engine.add_background("BTCUSDT", "BUY", Decimal("59999.0") - i, Decimal("1.000"), now_ms())
        venue.engine.add_background("BTCUSDT", "SELL", Decimal("60001.0") + i, Decimal("1.000"), now_ms())


LIMIT_BUY = {
    "symbol": "BTCUSDT",
    "side": "BUY",
    "type": "LIMIT",
    "timeInForce": "GTC",
    "quantity": "0.010",
    "price": "59000.0",
}


# -- signing ----------------------------------------------------------------------------------


async def test_binance_signature_matches_the_published_vector() -> None:
    assert binance_signature(BINANCE_VECTOR_SECRET, BINANCE_VECTOR_PARAMS) == BINANCE_VECTOR_SIGNATURE
    assert binance_signature(BINANCE_VECTOR_SECRET.encode(), BINANCE_VECTOR_PARAMS.encode()) == BINANCE_VECTOR_SIGNATURE


async def test_bybit_signature_signs_timestamp_key_window_and_payload_in_that_order() -> None:
    body = '{"category":"linear","symbol":"BTCUSDT"}'
    one = bybit_signature("s", timestamp_ms=1700000000000, api_key="k", recv_window_ms=5000, payload=body)
    assert one == binance_signature("s", "1700000000000k5000" + body)
    assert one != bybit_signature("s", timestamp_ms=1700000000000, api_key="k", recv_window_ms=5001, payload=body)


async def test_the_venue_accepts_the_published_vector_request(session: aiohttp.ClientSession) -> None:
    """The vector's own key and request text: the venue recomputes the published signature."""
    vector_key = ApiCredentials("vector-api-key", BINANCE_VECTOR_SECRET)
    config = VenueConfig(driver="none", credentials=(vector_key,))
    async with LocalVenue(config) as venue:
        venue.faults.update({"clock_skew_ms": 1591702613943 + 10 - now_ms()})  # the vector's moment
        url = f"{venue.rest_url}/fapi/v1/order?{BINANCE_VECTOR_PARAMS}&signature={BINANCE_VECTOR_SIGNATURE}"
        async with session.post(URL(url, encoded=True), headers={"X-MBX-APIKEY": vector_key.api_key}) as response:
            body = await response.json()
        # signature and timestamp pass: a 1 BTC bid at 9000 rests (9000 USDT at 20x fits the wallet)
        assert (response.status, body["status"], body["price"], body["origQty"]) == (200, "NEW", "9000.0", "1.000")
        tampered = BINANCE_VECTOR_PARAMS.replace("quantity=1", "quantity=2")
        url = f"{venue.rest_url}/fapi/v1/order?{tampered}&signature={BINANCE_VECTOR_SIGNATURE}"
        async with session.post(url, headers={"X-MBX-APIKEY": vector_key.api_key}) as response:
            assert response.status == 400
            assert (await response.json())["code"] == -1022


async def test_signed_order_in_query_or_body_is_accepted(
    local_venue: LocalVenue, session: aiohttp.ClientSession
) -> None:
    in_query = await signed(session, local_venue, "POST", "/fapi/v1/order", LIMIT_BUY)
    in_body = await signed(
        session, local_venue, "POST", "/fapi/v1/order", {**LIMIT_BUY, "price": "58000.0"}, in_body=True
    )
    assert in_query.status == 200 and in_query.body["status"] == "NEW"
    assert in_body.status == 200 and in_body.body["price"] == "58000.0"


async def test_signature_is_checked_over_the_exact_bytes_sent(
    local_venue: LocalVenue, session: aiohttp.ClientSession
) -> None:
    """A client id with ':' and '/' travels percent-encoded: the signature must cover that text.

    (yarl re-quotes URLs unless told they are encoded: an aiohttp client must send
    ``URL(url, encoded=True)`` or it sends other bytes than it signed.)
    """
    params = {**LIMIT_BUY, "newClientOrderId": "mm:bid/1", "timestamp": now_ms()}
    sent = urlencode(params)
    assert "mm%3Abid%2F1" in sent
    decoded = sent.replace("%3A", ":").replace("%2F", "/")
    headers = {"X-MBX-APIKEY": KEY.api_key}
    wrong = f"{local_venue.rest_url}/fapi/v1/order?{sent}&signature={binance_signature(KEY.secret, decoded)}"
    async with session.post(URL(wrong, encoded=True), headers=headers) as response:
        assert (await response.json())["code"] == -1022
    right = f"{local_venue.rest_url}/fapi/v1/order?{sent}&signature={binance_signature(KEY.secret, sent)}"
    async with session.post(URL(right, encoded=True), headers=headers) as response:
        body = await response.json()
        assert response.status == 200 and body["clientOrderId"] == "mm:bid/1"


async def test_a_tampered_request_is_rejected_1022(local_venue: LocalVenue, session: aiohttp.ClientSession) -> None:
    text = urlencode({**LIMIT_BUY, "timestamp": now_ms()})
    signature = binance_signature(KEY.secret, text)
    tampered = text.replace("quantity=0.010", "quantity=0.020")
    url = f"{local_venue.rest_url}/fapi/v1/order?{tampered}&signature={signature}"
    async with session.post(url, headers={"X-MBX-APIKEY": KEY.api_key}) as response:
        assert response.status == 400
        assert (await response.json()) == {"code": -1022, "msg": "Signature for this request is not valid."}
    assert local_venue.engine.open_orders(KEY.key_id) == []


async def test_stale_or_future_timestamps_are_rejected_1021(
    local_venue: LocalVenue, session: aiohttp.ClientSession
) -> None:
    stale = await signed(session, local_venue, "GET", "/fapi/v1/openOrders", {}, timestamp=now_ms() - 6000)
    assert (stale.status, stale.code) == (400, -1021)
    within = await signed(
        session, local_venue, "GET", "/fapi/v1/openOrders", {"recvWindow": 10000}, timestamp=now_ms() - 6000
    )
    assert within.status == 200
    ahead = await signed(session, local_venue, "GET", "/fapi/v1/openOrders", {}, timestamp=now_ms() + 2000)
    assert (ahead.status, ahead.code) == (400, -1021)


async def test_unknown_key_missing_signature_and_bad_recv_window(
    local_venue: LocalVenue, session: aiohttp.ClientSession
) -> None:
    stranger = ApiCredentials("someone-else", KEY.secret)
    unknown = await signed(session, local_venue, "GET", "/fapi/v1/openOrders", {}, credentials=stranger)
    assert (unknown.status, unknown.code) == (401, -2015)
    url = f"{local_venue.rest_url}/fapi/v1/openOrders?timestamp={now_ms()}"
    async with session.get(url, headers={"X-MBX-APIKEY": KEY.api_key}) as response:
        assert (await response.json())["code"] == -1102
    too_wide = await signed(session, local_venue, "GET", "/fapi/v1/openOrders", {"recvWindow": 70000})
    assert too_wide.code == -1131


# -- public endpoints -----------------------------------------------------------------------------


async def test_exchange_info_lists_filters_and_rate_limits(session: aiohttp.ClientSession) -> None:
    limits = RateLimits(request_weight_per_minute=100, orders_per_minute=50, orders_per_10s=10)
    async with LocalVenue(VenueConfig(driver="none", symbols=("BTCUSDT", "ETHUSDT"), rate_limits=limits)) as venue:
        info = (await public(session, venue, "/fapi/v1/exchangeInfo")).body
    assert {(r["rateLimitType"], r["intervalNum"], r["interval"], r["limit"]) for r in info["rateLimits"]} == {
        ("REQUEST_WEIGHT", 1, "MINUTE", 100),
        ("ORDERS", 1, "MINUTE", 50),
        ("ORDERS", 10, "SECOND", 10),
    }
    btc = next(s for s in info["symbols"] if s["symbol"] == "BTCUSDT")
    filters = {f["filterType"]: f for f in btc["filters"]}
    assert filters["PRICE_FILTER"]["tickSize"] == "0.1"
    assert (filters["LOT_SIZE"]["stepSize"], filters["LOT_SIZE"]["minQty"]) == ("0.001", "0.001")
    assert filters["MIN_NOTIONAL"]["notional"] == "100"
    assert btc["contractType"] == "PERPETUAL" and btc["status"] == "TRADING"
    assert [s["symbol"] for s in info["symbols"]] == ["BTCUSDT", "ETHUSDT"]


async def test_depth_and_time(local_venue: LocalVenue, session: aiohttp.ClientSession) -> None:
    seed_book(local_venue)
    depth = await public(session, local_venue, "/fapi/v1/depth?symbol=BTCUSDT&limit=5")
    assert depth.body["lastUpdateId"] == local_venue.engine.update_id("BTCUSDT") == 20
    assert depth.body["bids"] == [[f"{59999 - i}.0", "1.000"] for i in range(5)]
    assert depth.body["asks"] == [[f"{60001 + i}.0", "1.000"] for i in range(5)]
    assert depth.headers["X-MBX-USED-WEIGHT-1M"] == "2"
    bad_limit = await public(session, local_venue, "/fapi/v1/depth?symbol=BTCUSDT&limit=7")
    assert bad_limit.code == -1130
    before = now_ms()
    server_time = (await public(session, local_venue, "/fapi/v1/time")).body["serverTime"]
    assert before <= server_time <= now_ms()


# -- orders, account ---------------------------------------------------------------------------


async def test_order_lifecycle_over_rest(local_venue: LocalVenue, session: aiohttp.ClientSession) -> None:
    seed_book(local_venue)
    placed = await signed(session, local_venue, "POST", "/fapi/v1/order", {**LIMIT_BUY, "newClientOrderId": "bid-1"})
    assert placed.headers["X-MBX-ORDER-COUNT-10S"] == "1" and placed.headers["X-MBX-ORDER-COUNT-1M"] == "1"
    duplicate = await signed(session, local_venue, "POST", "/fapi/v1/order", {**LIMIT_BUY, "newClientOrderId": "bid-1"})
    assert duplicate.code == -4116
    open_orders = await signed(session, local_venue, "GET", "/fapi/v1/openOrders", {"symbol": "BTCUSDT"})
    assert [o["clientOrderId"] for o in open_orders.body] == ["bid-1"]
    queried = await signed(
        session, local_venue, "GET", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": placed.body["orderId"]}
    )
    assert queried.body["status"] == "NEW"
    cancelled = await signed(
        session, local_venue, "DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "bid-1"}
    )
    assert cancelled.body["status"] == "CANCELED"
    again = await signed(
        session, local_venue, "DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": "bid-1"}
    )
    assert (again.status, again.code) == (400, -2011)
    post_only = await signed(
        session, local_venue, "POST", "/fapi/v1/order", {**LIMIT_BUY, "price": "60001.0", "timeInForce": "GTX"}
    )
    assert post_only.code == -5022
    off_tick = await signed(session, local_venue, "POST", "/fapi/v1/order", {**LIMIT_BUY, "price": "59000.05"})
    assert off_tick.code == -1111
    malformed = await signed(session, local_venue, "POST", "/fapi/v1/order", {**LIMIT_BUY, "quantity": "1e-3"})
    assert malformed.code == -1100 and "quantity" in malformed.body["msg"]


async def test_a_fill_shows_in_position_risk_and_balance(
    local_venue: LocalVenue, session: aiohttp.ClientSession
) -> None:
    seed_book(local_venue)
    leverage = await signed(session, local_venue, "POST", "/fapi/v1/leverage", {"symbol": "BTCUSDT", "leverage": 10})
    assert leverage.body == {"leverage": 10, "maxNotionalValue": "1000000000", "symbol": "BTCUSDT"}
    taken = await signed(
        session,
        local_venue,
        "POST",
        "/fapi/v1/order",
        {"symbol": "BTCUSDT", "side": "BUY", "type": "MARKET", "quantity": "0.100"},
    )
    assert taken.body["status"] == "FILLED" and taken.body["avgPrice"] == "60001.0"
    positions = await signed(session, local_venue, "GET", "/fapi/v2/positionRisk", {"symbol": "BTCUSDT"})
    (position,) = positions.body
    assert (position["positionAmt"], position["entryPrice"], position["leverage"]) == ("0.100", "60001.0", "10")
    assert (
        positions.headers["X-MBX-USED-WEIGHT-1M"] == "6"
    )  # leverage 1 + order 0 (orders count apart) + positionRisk 5
    balance = await signed(session, local_venue, "GET", "/fapi/v2/balance", {})
    (usdt,) = balance.body
    fee = Decimal("0.100") * Decimal("60001.0") * Decimal("0.0005")
    assert Decimal(usdt["balance"]) == Decimal("10000") - fee


async def test_batch_orders_answer_in_request_order_and_cap_at_five(
    local_venue: LocalVenue, session: aiohttp.ClientSession
) -> None:
    batch = [
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.010",
            "price": "59000.0",
        },
        {
            "symbol": "BTCUSDT",
            "side": "BUY",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.010",
            "price": "59000.03",
        },
        {
            "symbol": "BTCUSDT",
            "side": "SELL",
            "type": "LIMIT",
            "timeInForce": "GTC",
            "quantity": "0.010",
            "price": "61000.0",
        },
    ]
    answer = await signed(session, local_venue, "POST", "/fapi/v1/batchOrders", {"batchOrders": json.dumps(batch)})
    assert answer.status == 200
    assert [item.get("status", item.get("code")) for item in answer.body] == ["NEW", -1111, "NEW"]
    assert answer.headers["X-MBX-ORDER-COUNT-10S"] == "5"
    six = await signed(
        session, local_venue, "POST", "/fapi/v1/batchOrders", {"batchOrders": json.dumps([batch[0]] * 6)}
    )
    assert six.code == -1130
    first_id = answer.body[0]["orderId"]
    cancel_two = await signed(
        session,
        local_venue,
        "DELETE",
        "/fapi/v1/batchOrders",
        {"symbol": "BTCUSDT", "orderIdList": json.dumps([first_id, 999999])},
    )
    assert [item.get("status", item.get("code")) for item in cancel_two.body] == ["CANCELED", -2011]
    cancel_all = await signed(session, local_venue, "DELETE", "/fapi/v1/allOpenOrders", {"symbol": "BTCUSDT"})
    assert cancel_all.body["code"] == 200
    assert local_venue.engine.open_orders(KEY.key_id) == []


async def test_countdown_cancel_all_cancels_when_not_refreshed(
    local_venue: LocalVenue, session: aiohttp.ClientSession
) -> None:
    countdown = {"symbol": "BTCUSDT", "countdownTime": 500}
    await signed(session, local_venue, "POST", "/fapi/v1/order", LIMIT_BUY)
    armed = await signed(session, local_venue, "POST", "/fapi/v1/countdownCancelAll", countdown)
    assert armed.body == {"symbol": "BTCUSDT", "countdownTime": "500"}
    await asyncio.sleep(0.3)
    await signed(session, local_venue, "POST", "/fapi/v1/countdownCancelAll", countdown)  # refreshed in time
    await asyncio.sleep(0.3)
    assert len(local_venue.engine.open_orders(KEY.key_id)) == 1
    await asyncio.sleep(0.5)
    assert local_venue.engine.open_orders(KEY.key_id) == []
    await signed(session, local_venue, "POST", "/fapi/v1/order", LIMIT_BUY)
    await signed(
        session, local_venue, "POST", "/fapi/v1/countdownCancelAll", {"symbol": "BTCUSDT", "countdownTime": 300}
    )
    await signed(session, local_venue, "POST", "/fapi/v1/countdownCancelAll", {"symbol": "BTCUSDT", "countdownTime": 0})
    await asyncio.sleep(0.4)
    assert len(local_venue.engine.open_orders(KEY.key_id)) == 1  # disarmed


# -- rate limits ---------------------------------------------------------------------------------


async def test_429_then_418_for_a_client_that_keeps_going(session: aiohttp.ClientSession) -> None:
    config = VenueConfig(
        driver="none", credentials=(KEY,), rate_limits=RateLimits(request_weight_per_minute=10, ban_s=0.5)
    )
    async with LocalVenue(config) as venue:
        statuses = []
        for _ in range(12):
            answer = await public(session, venue, "/fapi/v1/time")
            statuses.append((answer.status, answer.headers["X-MBX-USED-WEIGHT-1M"]))
        assert statuses[:10] == [(200, str(i)) for i in range(1, 11)]
        assert statuses[10] == (429, "11")
        assert statuses[11][0] == 418
        banned = await public(session, venue, "/fapi/v1/exchangeInfo")
        assert banned.status == 418 and "banned until" in banned.body["msg"]
        assert banned.headers["X-MBX-USED-WEIGHT-1M"] == "12"  # requests refused during a ban weigh nothing
        await asyncio.sleep(0.6)
        assert (await public(session, venue, "/fapi/v1/time")).status == 429  # ban over, weight still spent


async def test_order_count_limit_answers_429_1015(session: aiohttp.ClientSession) -> None:
    config = VenueConfig(driver="none", credentials=(KEY,), rate_limits=RateLimits(orders_per_10s=3))
    async with LocalVenue(config) as venue:
        answers = [
            await signed(session, venue, "POST", "/fapi/v1/order", {**LIMIT_BUY, "price": f"{59000 - i}.0"})
            for i in range(4)
        ]
    assert [a.status for a in answers] == [200, 200, 200, 429]
    assert answers[3].code == -1015 and answers[3].headers["X-MBX-ORDER-COUNT-10S"] == "4"


# -- websockets ----------------------------------------------------------------------------------


async def connect(
    session: aiohttp.ClientSession, venue: LocalVenue, path: str, **options: Any
) -> aiohttp.ClientWebSocketResponse:
    return await session.ws_connect(venue.ws_url + path, ssl=venue.client_ssl_context, **options)


WsOpen = Callable[[str], Awaitable[aiohttp.ClientWebSocketResponse]]


@pytest_asyncio.fixture
async def ws_open(local_venue: LocalVenue, session: aiohttp.ClientSession) -> AsyncIterator[WsOpen]:
    """Opens websockets to ``local_venue`` (``await ws_open("/public/ws/...")``); closes them after the test."""
    opened: list[aiohttp.ClientWebSocketResponse] = []

    async def open_path(path: str) -> aiohttp.ClientWebSocketResponse:
        ws = await connect(session, local_venue, path)
        opened.append(ws)
        return ws

    yield open_path
    for ws in opened:
        await ws.close()


async def next_json(ws: aiohttp.ClientWebSocketResponse, timeout: float = 2.0) -> Any:
    message = await ws.receive(timeout=timeout)
    assert message.type == aiohttp.WSMsgType.TEXT, message
    return json.loads(message.data)


async def nothing_arrives(ws: aiohttp.ClientWebSocketResponse, seconds: float) -> bool:
    try:
        message = await ws.receive(timeout=seconds)
    except asyncio.TimeoutError:
        return True
    raise AssertionError(f"unexpected message {message}")


async def test_depth_streams_raw_and_combined_chain_pu(
    local_venue: LocalVenue, session: aiohttp.ClientSession, ws_open: WsOpen
) -> None:
    seed_book(local_venue)
    raw = await ws_open("/public/ws/btcusdt@depth@0ms")
    combined = await ws_open("/public/stream?streams=btcusdt@depth@0ms/btcusdt@depth@100ms")
    await asyncio.sleep(0.05)
    for i in range(5):
        local_venue.engine.add_background("BTCUSDT", "BUY", Decimal("59000.0") + i, Decimal("0.5"), now_ms())
    raw_messages = [await next_json(raw) for _ in range(5)]
    assert [(m["U"], m["u"], m["pu"]) for m in raw_messages] == [(21 + i, 21 + i, 20 + i) for i in range(5)]
    assert raw_messages[2]["b"] == [["59002.0", "0.500"]] and raw_messages[2]["a"] == []
    assert raw_messages[0]["e"] == "depthUpdate" and raw_messages[0]["s"] == "BTCUSDT"
    envelopes = [await next_json(combined) for _ in range(6)]
    by_stream: dict[str, list[Any]] = {}
    for envelope in envelopes:
        by_stream.setdefault(envelope["stream"], []).append(envelope["data"])
    assert [m["u"] for m in by_stream["btcusdt@depth@0ms"]] == [21, 22, 23, 24, 25]
    (coalesced,) = by_stream["btcusdt@depth@100ms"]
    assert (coalesced["U"], coalesced["u"], coalesced["pu"]) == (21, 25, 20)
    assert coalesced["b"] == [[f"{59004 - i}.0", "0.500"] for i in range(5)]


async def test_a_coalesced_depth_message_carries_the_net_change(
    local_venue: LocalVenue, session: aiohttp.ClientSession, ws_open: WsOpen
) -> None:
    seed_book(local_venue)
    ws = await ws_open("/ws/btcusdt@depth")  # the unrouted base serves /public streams; 250 ms
    await asyncio.sleep(0.3)
    handle = local_venue.engine.add_background("BTCUSDT", "SELL", Decimal("60050.0"), Decimal("2.000"), now_ms())
    local_venue.engine.cancel_background(handle, now_ms())
    message = await next_json(ws)
    assert (message["U"], message["u"], message["pu"]) == (21, 22, 20)
    assert message["a"] == [["60050.0", "0.000"]]


async def test_book_ticker_and_agg_trades(
    local_venue: LocalVenue, session: aiohttp.ClientSession, ws_open: WsOpen
) -> None:
    seed_book(local_venue)
    ticker = await ws_open("/public/ws/btcusdt@bookTicker")
    trades = await ws_open("/market/ws/btcusdt@aggTrade")
    await asyncio.sleep(0.05)
    local_venue.engine.add_background("BTCUSDT", "BUY", Decimal("59999.5"), Decimal("0.300"), now_ms())
    best = await next_json(ticker)
    assert (best["b"], best["B"], best["a"], best["A"]) == ("59999.5", "0.300", "60001.0", "1.000")
    local_venue.engine.add_background(
        "BTCUSDT", "SELL", Decimal("60001.0"), Decimal("1.000"), now_ms()
    )  # a second maker
    local_venue.engine.market_order_background("BTCUSDT", "BUY", Decimal("2.500"), now_ms())
    first, second = await next_json(trades), await next_json(trades)
    assert (first["p"], first["q"], first["m"], first["l"] - first["f"]) == ("60001.0", "2.000", False, 1)
    assert (second["p"], second["q"], second["f"], second["a"]) == ("60002.0", "0.500", first["l"] + 1, first["a"] + 1)


async def test_mark_price_stream(local_venue: LocalVenue, session: aiohttp.ClientSession, ws_open: WsOpen) -> None:
    seed_book(local_venue)
    ws = await ws_open("/market/stream?streams=btcusdt@markPrice@1s")
    envelope = await next_json(ws, timeout=3)
    assert envelope["stream"] == "btcusdt@markPrice@1s"
    update = envelope["data"]
    assert (update["e"], update["s"], update["p"], update["r"]) == ("markPriceUpdate", "BTCUSDT", "60000.0", "0.0001")
    assert update["T"] == local_venue.engine.next_funding_time_ms


async def test_streams_on_another_route_are_silent_and_subscriptions_are_listed(
    local_venue: LocalVenue, session: aiohttp.ClientSession, ws_open: WsOpen
) -> None:
    seed_book(local_venue)
    wrong = await ws_open("/public/ws/btcusdt@aggTrade")
    unrouted = await ws_open("/stream?streams=btcusdt@aggTrade")
    market = await ws_open("/market/ws")
    await market.send_json({"method": "SUBSCRIBE", "params": ["btcusdt@aggTrade"], "id": 7})
    assert await next_json(market) == {"result": None, "id": 7}
    await wrong.send_json({"method": "LIST_SUBSCRIPTIONS", "id": 8})
    assert await next_json(wrong) == {"result": ["btcusdt@aggTrade"], "id": 8}
    local_venue.engine.market_order_background("BTCUSDT", "SELL", Decimal("0.100"), now_ms())
    assert (await next_json(market))["p"] == "59999.0"
    assert await nothing_arrives(wrong, 0.2)
    assert await nothing_arrives(unrouted, 0.01)


async def test_server_pings_and_answers_pings() -> None:
    async with (
        LocalVenue(VenueConfig(driver="none", ws_ping_interval_s=0.2)) as venue,
        aiohttp.ClientSession() as session,
    ):
        ws = await connect(session, venue, "/public/ws/btcusdt@depth", autoping=False)
        message = await ws.receive(timeout=2)
        assert message.type == aiohttp.WSMsgType.PING
        await ws.pong(message.data)
        await ws.ping(b"are you there")
        message = await ws.receive(timeout=2)
        while message.type == aiohttp.WSMsgType.PING:
            await ws.pong(message.data)
            message = await ws.receive(timeout=2)
        assert (message.type, message.data) == (aiohttp.WSMsgType.PONG, b"are you there")
        await ws.close()


# -- user data ---------------------------------------------------------------------------------


async def test_user_data_stream_delivers_order_and_account_updates(
    local_venue: LocalVenue, session: aiohttp.ClientSession, ws_open: WsOpen
) -> None:
    seed_book(local_venue)
    key = (await signed(session, local_venue, "POST", "/fapi/v1/listenKey", {})).body["listenKey"]
    private = await ws_open(f"/private/ws?listenKey={key}")
    legacy = await ws_open(f"/ws/{key}")  # the unrouted base: silent since the split
    placed = await signed(session, local_venue, "POST", "/fapi/v1/order", {**LIMIT_BUY, "newClientOrderId": "bid-7"})
    new = await next_json(private)
    assert new["e"] == "ORDER_TRADE_UPDATE"
    assert (new["o"]["c"], new["o"]["x"], new["o"]["X"], new["o"]["i"]) == (
        "bid-7",
        "NEW",
        "NEW",
        placed.body["orderId"],
    )
    await signed(
        session,
        local_venue,
        "POST",
        "/fapi/v1/order",
        {"symbol": "BTCUSDT", "side": "SELL", "type": "MARKET", "quantity": "0.200"},
    )
    events = [await next_json(private) for _ in range(3)]
    kinds = [(e["e"], e.get("o", {}).get("x")) for e in events]
    assert kinds == [("ORDER_TRADE_UPDATE", "NEW"), ("ORDER_TRADE_UPDATE", "TRADE"), ("ACCOUNT_UPDATE", None)]
    fill = events[1]["o"]
    assert (fill["X"], fill["l"], fill["L"], fill["m"]) == ("FILLED", "0.200", "59999.0", False)
    assert events[2]["a"]["P"][0]["pa"] == "-0.200"
    assert await nothing_arrives(legacy, 0.1)
    kept = await signed(session, local_venue, "PUT", "/fapi/v1/listenKey", {})
    assert kept.body == {"listenKey": key}
    await signed(session, local_venue, "DELETE", "/fapi/v1/listenKey", {})
    assert (await private.receive(timeout=2)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)


async def test_expired_listen_key(local_venue: LocalVenue, session: aiohttp.ClientSession, ws_open: WsOpen) -> None:
    key = (await signed(session, local_venue, "POST", "/fapi/v1/listenKey", {})).body["listenKey"]
    private = await ws_open(f"/private/ws/{key}")
    async with session.post(local_venue.rest_url + "/sim/listen-keys/expire") as response:
        assert await response.json() == {"expired": 1}
    expired = await next_json(private)
    assert (expired["e"], expired["listenKey"]) == ("listenKeyExpired", key)
    assert (await private.receive(timeout=2)).type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED)
    keepalive = await signed(session, local_venue, "PUT", "/fapi/v1/listenKey", {})
    assert (keepalive.status, keepalive.code) == (400, -1125)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await ws_open(f"/private/ws?listenKey={key}")
    assert refused.value.status == 400
    fresh = (await signed(session, local_venue, "POST", "/fapi/v1/listenKey", {})).body["listenKey"]
    assert fresh != key


# -- faults ------------------------------------------------------------------------------------


async def test_dropped_route_closes_and_refuses_connections(
    local_venue: LocalVenue, session: aiohttp.ClientSession, ws_open: WsOpen
) -> None:
    market = await ws_open("/market/ws/btcusdt@aggTrade")
    public_ws = await ws_open("/public/ws/btcusdt@depth@0ms")
    local_venue.faults.update({"dropped_routes": ["market"]})
    closed = await market.receive(timeout=2)
    assert closed.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED, aiohttp.WSMsgType.ERROR)
    with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
        await ws_open("/market/ws/btcusdt@aggTrade")
    assert refused.value.status == 503
    local_venue.engine.add_background("BTCUSDT", "BUY", Decimal("59000.0"), Decimal("1.000"), now_ms())
    assert (await next_json(public_ws))["u"] == 1  # the other routes carry on
    local_venue.faults.update({"dropped_routes": []})
    again = await ws_open("/market/ws/btcusdt@aggTrade")
    await again.close()


async def test_stalled_route_stays_open_silent_and_leaves_a_gap(
    local_venue: LocalVenue, session: aiohttp.ClientSession, ws_open: WsOpen
) -> None:
    ws = await ws_open("/public/ws/btcusdt@depth@0ms")
    local_venue.faults.update({"stalled_routes": ["public"]})
    local_venue.engine.add_background("BTCUSDT", "BUY", Decimal("59000.0"), Decimal("1.000"), now_ms())
    await ws.ping()  # answered: the connection is alive
    assert await nothing_arrives(ws, 0.2)
    local_venue.faults.update({"stalled_routes": []})
    local_venue.engine.add_background("BTCUSDT", "BUY", Decimal("59001.0"), Decimal("1.000"), now_ms())
    after = await next_json(ws)
    assert (after["u"], after["pu"]) == (2, 1)  # the client never saw u=1


async def test_skipped_depth_update_breaks_the_pu_chain(
    local_venue: LocalVenue, session: aiohttp.ClientSession, ws_open: WsOpen
) -> None:
    ws = await ws_open("/public/ws/btcusdt@depth@0ms")
    await asyncio.sleep(0.05)
    local_venue.faults.update({"skip_depth_messages": 1})
    for i in range(3):
        local_venue.engine.add_background("BTCUSDT", "BUY", Decimal("59000.0") + i, Decimal("1.000"), now_ms())
    messages = [await next_json(ws) for _ in range(2)]
    assert [(m["pu"], m["u"]) for m in messages] == [(1, 2), (2, 3)]


@pytest.mark.parametrize(
    ("kind", "status", "code"), [("429", 429, -1003), ("418", 418, -1003), ("503-unavailable", 503, -1001)]
)
async def test_injected_rest_errors(
    local_venue: LocalVenue, session: aiohttp.ClientSession, kind: str, status: int, code: int
) -> None:
    local_venue.faults.update({"rest_error": kind, "rest_error_count": 2, "rest_error_paths": ["/fapi/v1/order"]})
    assert (await public(session, local_venue, "/fapi/v1/time")).status == 200  # another path
    for _ in range(2):
        answer = await signed(session, local_venue, "POST", "/fapi/v1/order", LIMIT_BUY)
        assert (answer.status, answer.code) == (status, code)
    assert local_venue.engine.open_orders(KEY.key_id) == []  # not executed
    assert (await signed(session, local_venue, "POST", "/fapi/v1/order", LIMIT_BUY)).status == 200
    assert local_venue.faults.rest_error is None


async def test_system_throttle_spares_cancels_and_reduce_only(
    local_venue: LocalVenue, session: aiohttp.ClientSession
) -> None:
    placed = await signed(session, local_venue, "POST", "/fapi/v1/order", LIMIT_BUY)
    local_venue.faults.update({"rest_error": "-1008", "rest_error_count": 1})
    cancel = await signed(
        session, local_venue, "DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "orderId": placed.body["orderId"]}
    )
    assert cancel.status == 200
    reduce_only = await signed(session, local_venue, "POST", "/fapi/v1/order", {**LIMIT_BUY, "reduceOnly": "true"})
    assert reduce_only.code == -2022  # reached the engine (nothing to reduce)
    throttled = await signed(session, local_venue, "POST", "/fapi/v1/order", LIMIT_BUY)
    assert (throttled.status, throttled.code) == (503, -1008)
    assert local_venue.engine.open_orders(KEY.key_id) == []


async def test_unknown_outcome_faults_leave_the_order_accepted(
    local_venue: LocalVenue, session: aiohttp.ClientSession
) -> None:
    local_venue.faults.update({"order_answer": "503-unknown", "order_answer_count": 1})
    unknown = await signed(session, local_venue, "POST", "/fapi/v1/order", {**LIMIT_BUY, "newClientOrderId": "a"})
    assert (unknown.status, unknown.code) == (503, -1000)
    local_venue.faults.update({"order_answer": "delay", "order_answer_count": 1, "order_answer_delay_s": 1.0})
    with pytest.raises(asyncio.TimeoutError):
        await signed(
            session, local_venue, "POST", "/fapi/v1/order", {**LIMIT_BUY, "newClientOrderId": "b"}, timeout=0.3
        )
    local_venue.faults.update({"order_answer": "drop", "order_answer_count": 1})
    with pytest.raises(aiohttp.ClientConnectionError):
        await signed(session, local_venue, "POST", "/fapi/v1/order", {**LIMIT_BUY, "newClientOrderId": "c"})
    open_orders = await signed(session, local_venue, "GET", "/fapi/v1/openOrders", {})
    assert sorted(o["clientOrderId"] for o in open_orders.body) == ["a", "b", "c"]


async def test_clock_skew(local_venue: LocalVenue, session: aiohttp.ClientSession) -> None:
    local_venue.faults.update({"clock_skew_ms": 10_000})
    server_time = (await public(session, local_venue, "/fapi/v1/time")).body["serverTime"]
    assert server_time - now_ms() > 9_000
    behind = await signed(session, local_venue, "GET", "/fapi/v1/openOrders", {})
    assert behind.code == -1021
    offset = server_time - now_ms()
    synced = await signed(session, local_venue, "GET", "/fapi/v1/openOrders", {}, timestamp=now_ms() + offset)
    assert synced.status == 200


async def test_admin_route_switches_faults_all_or_nothing(
    local_venue: LocalVenue, session: aiohttp.ClientSession
) -> None:
    async with session.post(
        local_venue.rest_url + "/sim/faults", json={"skip_depth_messages": 2, "rest_error": "420"}
    ) as response:
        assert response.status == 400
        assert "faults.rest_error: '420'" in (await response.json())["error"]
    assert local_venue.faults.skip_depth_messages == 0
    async with session.post(
        local_venue.rest_url + "/sim/faults", json={"rest_error": "429", "rest_error_count": 1}
    ) as response:
        assert (await response.json())["rest_error"] == "429"
    assert (await public(session, local_venue, "/fapi/v1/time")).status == 429
    async with session.get(local_venue.rest_url + "/sim/faults") as response:
        assert (await response.json())["rest_error"] is None


async def test_a_venue_in_a_thread_serves_blocking_clients() -> None:
    def blocking_client() -> tuple[int, int]:
        with LocalVenue.in_thread(VenueConfig(driver="none")) as venue:
            with urllib.request.urlopen(venue.rest_url + "/fapi/v1/depth?symbol=BTCUSDT&limit=5") as response:
                depth = json.loads(response.read())
            venue.call(
                lambda v: v.engine.add_background("BTCUSDT", "BUY", Decimal("100.0"), Decimal("1.000"), now_ms())
            )
            return depth["lastUpdateId"], venue.call(lambda v: v.engine.update_id("BTCUSDT"))

    assert await asyncio.to_thread(blocking_client) == (0, 1)


# -- marketmaker-cli sim -------------------------------------------------------------------------


async def test_cli_sim_prints_what_a_client_needs_and_stops_on_sigterm(session: aiohttp.ClientSession) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "marketmaker.cli", "sim", "--duration", "60", stdout=asyncio.subprocess.PIPE
    )
    assert process.stdout is not None
    printed: dict[str, str] = {}
    try:
        while "API secret" not in printed:
            line = (await asyncio.wait_for(process.stdout.readline(), 30)).decode()
            assert line, "the sim exited before printing its credentials"
            name, _, value = line.strip().partition("  ")
            printed[name] = value.strip().split("  ")[0]
        venue_key = ApiCredentials(printed["API key"], printed["API secret"])
        rest_url, ws_url, certificate = printed["REST"], printed["websockets"], printed["TLS trust"]
        text = urlencode({"timestamp": now_ms()})
        url = f"{rest_url}/fapi/v2/balance?{text}&signature={binance_signature(venue_key.secret, text)}"
        async with session.get(URL(url, encoded=True), headers={"X-MBX-APIKEY": venue_key.api_key}) as response:
            assert response.status == 200
            assert (await response.json())[0]["balance"] == "10000"
        trust = ssl.create_default_context(cafile=certificate)
        async with session.ws_connect(ws_url + "/public/ws/btcusdt@depth@0ms", ssl=trust) as ws:
            assert (await next_json(ws, timeout=5))["e"] == "depthUpdate"
        process.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(process.wait(), 30) == 0
        assert not Path(certificate).exists()
    finally:
        if process.returncode is None:
            process.kill()
            await process.wait()


@pytest.mark.parametrize(
    ("arguments", "complaint"),
    [
        (["--driver", "replay"], b"--driver replay needs --recording PATH"),
        (
            ["--faults", '{"clock_skew_ms": "soon"}'],
            b"faults.clock_skew_ms: 'soon' is not an integer number of milliseconds",
        ),
        (["--faults", "{clock"], b"--faults is not JSON"),
    ],
)
async def test_cli_sim_refuses_bad_arguments(arguments: list[str], complaint: bytes) -> None:
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "marketmaker.cli", "sim", *arguments, stderr=asyncio.subprocess.PIPE
    )
    _, stderr = await asyncio.wait_for(process.communicate(), 30)
    assert process.returncode == 2
    assert complaint in stderr


async def test_faults_switched_on_at_start(session: aiohttp.ClientSession) -> None:
    config = VenueConfig(
        driver="none", faults=VenueFaults(rest_error="503-unavailable", rest_error_count=1, clock_skew_ms=5000)
    )
    async with LocalVenue(config) as venue:
        assert (await public(session, venue, "/fapi/v1/time")).status == 503
        server_time = (await public(session, venue, "/fapi/v1/time")).body["serverTime"]
        assert server_time - now_ms() > 4000
    assert config.faults.rest_error_count == 1  # the venue used its own copy


@pytest.mark.parametrize("module", [signing, faults, tls, binance, server], ids=lambda m: m.__name__)
async def test_docstring_examples_run(module: Any) -> None:
    # In a thread: LocalVenue's example runs its own event loop.
    result = await asyncio.to_thread(doctest.testmod, module, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


@pytest.mark.data
@pytest.mark.slow
async def test_replay_venue_streams_the_recording(
    data_file: Callable[[str], Path], session: aiohttp.ClientSession
) -> None:
    config = VenueConfig(driver="replay", recording=data_file("binance-usdm/btcusdt_20240808.gz"))
    async with LocalVenue(config) as venue:
        snapshot = await public(session, venue, "/fapi/v1/depth?symbol=BTCUSDT&limit=1000")
        async with session.ws_connect(
            venue.ws_url + "/public/ws/btcusdt@depth@0ms", ssl=venue.client_ssl_context
        ) as ws:
            messages = [await next_json(ws, timeout=5) for _ in range(20)]
        (bid, _), (ask, _) = venue.engine.best_bid_ask("BTCUSDT")  # type: ignore[misc]
    assert all(b["pu"] == a["u"] for a, b in zip(messages, messages[1:]))
    assert messages[0]["pu"] >= snapshot.body["lastUpdateId"]
    assert len(snapshot.body["bids"]) > 100 and Decimal(snapshot.body["bids"][0][0]) < Decimal(
        snapshot.body["asks"][0][0]
    )
    assert bid < ask
