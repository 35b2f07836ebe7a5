"""The local venue's Binance USDⓈ-M protocol, seen from real aiohttp clients on loopback.

Most tests run the venue without a market driver (``driver="none"``) and put the liquidity
they need into the engine themselves, so every figure they check is known in advance.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from marketmaker.credentials import ApiCredentials
from marketmaker.exchanges.signing import binance_signature, bybit_signature
from marketmaker.sim.binance import RateLimits
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
        async with session.post(url, headers={"X-MBX-APIKEY": vector_key.api_key}) as response:
            body = await response.json()
        # signature and timestamp pass: the engine itself refuses 1 BTC at 9000 (below nothing: margin)
        assert body.get("code") not in (-1021, -1022), body
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
    cancel_all = await signed(session, local_venue, "DELETE", "/fapi/v1/allOpenOrders", {"symbol": "BTCUSDT"})
    assert cancel_all.body["code"] == 200
    assert local_venue.engine.open_orders(KEY.key_id) == []


async def test_countdown_cancel_all_cancels_when_not_refreshed(
    local_venue: LocalVenue, session: aiohttp.ClientSession
) -> None:
    await signed(session, local_venue, "POST", "/fapi/v1/order", LIMIT_BUY)
    armed = await signed(
        session, local_venue, "POST", "/fapi/v1/countdownCancelAll", {"symbol": "BTCUSDT", "countdownTime": 300}
    )
    assert armed.body == {"symbol": "BTCUSDT", "countdownTime": "300"}
    await asyncio.sleep(0.15)
    await signed(
        session, local_venue, "POST", "/fapi/v1/countdownCancelAll", {"symbol": "BTCUSDT", "countdownTime": 300}
    )
    await asyncio.sleep(0.2)
    assert len(local_venue.engine.open_orders(KEY.key_id)) == 1  # refreshed in time
    await asyncio.sleep(0.25)
    assert local_venue.engine.open_orders(KEY.key_id) == []
    await signed(session, local_venue, "POST", "/fapi/v1/order", LIMIT_BUY)
    await signed(
        session, local_venue, "POST", "/fapi/v1/countdownCancelAll", {"symbol": "BTCUSDT", "countdownTime": 200}
    )
    await signed(session, local_venue, "POST", "/fapi/v1/countdownCancelAll", {"symbol": "BTCUSDT", "countdownTime": 0})
    await asyncio.sleep(0.3)
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
