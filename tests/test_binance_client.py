"""The Binance USDⓈ-M order client against the local venue on loopback: signed requests, batch
round trips, rejects with their codes, rate-limit back-off, clock re-sync and unknown outcomes.

The venue runs without a market driver: the book holds only what a test puts there, so every
figure is known in advance. No part of the client or the venue is mocked.
"""

from __future__ import annotations

import asyncio
import doctest
import logging
import time
from collections.abc import AsyncIterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

import aiohttp
import pytest
import pytest_asyncio
from hypothesis import given
from hypothesis import strategies as st
from marketmaker import RateLimiter, Side
from marketmaker.credentials import ApiCredentials
from marketmaker.exchanges import binance
from marketmaker.exchanges.binance import (
    BinanceFuturesClient,
    BinanceUserStream,
    NewOrder,
    OrderResult,
    RateLimitedError,
    VenueConnectionError,
    VenueError,
)
from marketmaker.sim.binance import RateLimits
from marketmaker.sim.server import LocalVenue, VenueConfig

pytestmark = pytest.mark.asyncio

KEY = ApiCredentials("client-test-api-key-0123456789", "client-test-secret-abcdef", label="trader")
QUIET = VenueConfig(driver="none", credentials=(KEY,))


@pytest.fixture
def venue_config() -> VenueConfig:
    return QUIET


@pytest_asyncio.fixture
async def client(local_venue: LocalVenue) -> AsyncIterator[BinanceFuturesClient]:
    async with BinanceFuturesClient(local_venue.rest_url, KEY) as opened:
        await opened.sync_time()
        await opened.instruments(["BTCUSDT"])
        yield opened


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def seed_book(venue: LocalVenue) -> None:
    """Bids 59990.0..59999.0 and asks 60001.0..60010.0, 1 BTC a level (background liquidity)."""
    for i in range(10):
        venue.engine.add_background("BTCUSDT", "BUY", Decimal("59999.0") - i, Decimal("1.000"), now_ms())
        venue.engine.add_background("BTCUSDT", "SELL", Decimal("60001.0") + i, Decimal("1.000"), now_ms())


def bid(client_order_id: str, price: float, quantity: float = 0.01, **options: bool) -> NewOrder:
    return NewOrder(client_order_id, Side.BUY, price, quantity, **options)


def outcome(result: OrderResult) -> tuple[str, str, int | None]:
    return (result.client_order_id, result.status, result.code)


# -- time and instruments ------------------------------------------------------------------------


async def test_sync_time_measures_the_venue_clock_offset(local_venue: LocalVenue, client: BinanceFuturesClient) -> None:
    assert abs(client.time_offset_ms) < 50
    local_venue.faults.update({"clock_skew_ms": 7_000})
    offset = await client.sync_time(samples=3)
    assert 6_950 < offset < 7_050 and client.time_offset_ms == offset


async def test_instruments_read_the_filters(client: BinanceFuturesClient) -> None:
    (btc,) = (await client.instruments(["BTCUSDT"])).values()
    assert (btc.symbol, btc.tick_size, btc.step_size, btc.min_qty, btc.min_notional) == (
        "BTCUSDT",
        "0.1",
        "0.001",
        0.001,
        100.0,
    )
    assert (btc.price_decimals, btc.quantity_decimals) == (1, 3)
    with pytest.raises(VenueError, match="DOGEUSDT") as unknown:
        await client.instruments(["DOGEUSDT"])
    assert unknown.value.code == -1121


# -- places and cancels ---------------------------------------------------------------------------


async def test_a_batch_place_answers_each_order_in_input_order(
    local_venue: LocalVenue, client: BinanceFuturesClient
) -> None:
    """7 orders go as a batch of 5 and a single order; rejects keep their codes."""
    seed_book(local_venue)
    orders = [
        bid("b-1", 59_000.0),
        bid("b-2", 60_001.0),  # post-only that would take: -5022
        bid("b-3", 58_999.9),
        bid("b-4", 58_000.0, 0.001),  # 58 USDT < 100 min notional: -4164
        NewOrder("s-1", Side.SELL, 61_000.0, 0.02),
        NewOrder("s-2", Side.SELL, 61_000.5, 0.02, post_only=False),
        bid("b-5", 57_000.0),  # the second request: /fapi/v1/order
    ]
    results = await client.place_orders("BTCUSDT", orders)
    assert [outcome(r) for r in results] == [
        ("b-1", "accepted", None),
        ("b-2", "rejected", -5022),
        ("b-3", "accepted", None),
        ("b-4", "rejected", -4164),
        ("s-1", "accepted", None),
        ("s-2", "accepted", None),
        ("b-5", "accepted", None),
    ]
    engine_orders = {r.client_order_id: r for r in local_venue.engine.open_orders(KEY.key_id)}
    assert {r.client_order_id: r.order_id for r in results if r.order_id} == {
        c: r.order_id for c, r in engine_orders.items()
    }
    assert (engine_orders["b-3"].price, engine_orders["b-3"].quantity) == (Decimal("58999.9"), Decimal("0.010"))
    assert (engine_orders["b-1"].time_in_force, engine_orders["s-2"].time_in_force) == ("GTX", "GTC")
    listed = await client.open_orders("BTCUSDT")
    assert sorted((o.client_order_id, o.side, o.price, o.quantity, o.filled) for o in listed) == sorted(
        [
            ("b-1", Side.BUY, 59_000.0, 0.01, 0.0),
            ("b-3", Side.BUY, 58_999.9, 0.01, 0.0),
            ("b-5", Side.BUY, 57_000.0, 0.01, 0.0),
            ("s-1", Side.SELL, 61_000.0, 0.02, 0.0),
            ("s-2", Side.SELL, 61_000.5, 0.02, 0.0),
        ]
    )


async def test_single_order_rejects_carry_their_codes(local_venue: LocalVenue, client: BinanceFuturesClient) -> None:
    seed_book(local_venue)
    (post_only,) = await client.place_orders("BTCUSDT", [bid("x-1", 60_001.0)])
    assert (post_only.status, post_only.code) == ("rejected", -5022)
    (notional,) = await client.place_orders("BTCUSDT", [bid("x-2", 59_000.0, 0.001)])
    assert (notional.status, notional.code) == ("rejected", -4164)
    (reduce_only,) = await client.place_orders("BTCUSDT", [bid("x-3", 59_000.0, reduce_only=True)])
    assert (reduce_only.status, reduce_only.code) == ("rejected", -2022)  # nothing to reduce
    assert local_venue.engine.open_orders(KEY.key_id) == []


async def test_cancels_go_ten_per_request_and_unknown_orders_are_2011(
    local_venue: LocalVenue, client: BinanceFuturesClient
) -> None:
    placed = await client.place_orders("BTCUSDT", [bid(f"c-{i}", 59_000.0 - i) for i in range(12)])
    assert [r.status for r in placed] == ["accepted"] * 12
    ids = [f"c-{i}" for i in range(12)]
    cancelled = await client.cancel_orders("BTCUSDT", [*ids[:6], "never-placed", *ids[6:]])
    assert [outcome(r) for r in cancelled] == [
        *[(c, "accepted", None) for c in ids[:6]],
        ("never-placed", "rejected", -2011),
        *[(c, "accepted", None) for c in ids[6:]],
    ]
    assert [r.order_id for r in cancelled if r.order_id] == [r.order_id for r in placed]
    assert local_venue.engine.open_orders(KEY.key_id) == []


async def test_cancel_of_a_filled_order_is_2011(local_venue: LocalVenue, client: BinanceFuturesClient) -> None:
    (placed,) = await client.place_orders("BTCUSDT", [bid("f-1", 59_000.0)])
    assert placed.status == "accepted"
    assert local_venue.engine.market_order_background("BTCUSDT", "SELL", Decimal("0.010"), now_ms()) == Decimal("0.010")
    (cancelled,) = await client.cancel_orders("BTCUSDT", ["f-1"])
    assert (cancelled.status, cancelled.code, cancelled.order_id) == ("rejected", -2011, None)
    position = await client.position("BTCUSDT")
    assert (position.size, position.entry_price) == (0.01, 59_000.0)


async def test_cancel_all_and_the_dead_man_switch(local_venue: LocalVenue, client: BinanceFuturesClient) -> None:
    await client.place_orders("BTCUSDT", [bid("d-1", 59_000.0), bid("d-2", 58_000.0)])
    await client.cancel_all("BTCUSDT")
    assert local_venue.engine.open_orders(KEY.key_id) == []
    await client.place_orders("BTCUSDT", [bid("d-3", 59_000.0)])
    await client.countdown_cancel_all("BTCUSDT", 300)
    await asyncio.sleep(0.15)
    assert len(await client.open_orders("BTCUSDT")) == 1
    await asyncio.sleep(0.35)
    assert await client.open_orders("BTCUSDT") == []


async def test_position_balance_and_leverage(local_venue: LocalVenue, client: BinanceFuturesClient) -> None:
    seed_book(local_venue)
    await client.set_leverage("BTCUSDT", 10)
    (taken,) = await client.place_orders("BTCUSDT", [NewOrder("t-1", Side.BUY, 60_001.0, 0.1, post_only=False)])
    assert taken.status == "accepted"
    position = await client.position("BTCUSDT")
    (engine_position,) = local_venue.engine.positions(KEY.key_id)
    assert (position.symbol, position.size, position.entry_price, position.leverage) == (
        "BTCUSDT",
        0.1,
        60_001.0,
        10,
    )
    assert position.unrealized_pnl == float(engine_position.unrealized_pnl)
    fee = Decimal("0.1") * Decimal("60001.0") * Decimal("0.0005")
    assert await client.balance() == float(Decimal("10000") - fee)
    assert await client.balance("BTC") == 0.0
    with pytest.raises(VenueError) as refused:
        await client.set_leverage("BTCUSDT", 500)
    assert (refused.value.code, refused.value.http_status) == (-4028, 400)


# -- rate limits ---------------------------------------------------------------------------------


async def test_usage_headers_reach_the_core_rate_limiter(local_venue: LocalVenue) -> None:
    """The venue's X-MBX-USED-WEIGHT-1M and X-MBX-ORDER-COUNT-10S take the limiter's tokens."""
    limiter = RateLimiter(100.0, weight_per_min=100.0, orders_per_10s=20.0)
    async with BinanceFuturesClient(local_venue.rest_url, KEY, rate_limiter=limiter) as client:
        await client.sync_time(samples=5)  # weight 5
        await client.position("BTCUSDT")  # weight 5
        await client.place_orders("BTCUSDT", [bid(f"h-{i}", 59_000.0 - i) for i in range(3)])  # 5 orders, weight 5
        _, weight_headroom, order_headroom = limiter.headroom(time.monotonic_ns())
    assert weight_headroom == pytest.approx((100 - 15) / 100, abs=0.01)
    assert order_headroom == pytest.approx((20 - 5) / 20, abs=0.01)


async def test_429_raises_and_nothing_is_sent_while_backed_off(
    local_venue: LocalVenue, client: BinanceFuturesClient
) -> None:
    """The venue counts what arrives: its injected 429s are used up one per request received."""
    limiter = RateLimiter(100.0)
    client.rate_limiter = limiter
    local_venue.faults.update({"rest_error": "429", "rest_error_count": 3})
    with pytest.raises(RateLimitedError) as first:
        await client.place_orders("BTCUSDT", [bid("r-1", 59_000.0)])
    assert (first.value.http_status, first.value.code) == (429, -1003)
    assert 55 < first.value.retry_after_s <= 60  # a weight 429 names no end: the minute window
    for refused_call in (
        client.place_orders("BTCUSDT", [bid("r-2", 59_000.0)]),
        client.cancel_orders("BTCUSDT", ["r-1"]),
        client.open_orders("BTCUSDT"),
    ):
        with pytest.raises(RateLimitedError) as held_back:
            await refused_call
        assert held_back.value.http_status is None and "not sent" in str(held_back.value)
    assert local_venue.faults.rest_error_count == 2  # one request reached the venue
    assert not limiter.try_send(time.monotonic_ns(), "cancel")  # the core limiter was told too
    assert local_venue.engine.open_orders(KEY.key_id) == []


async def test_an_order_count_429_holds_back_new_orders_but_not_cancels() -> None:
    config = VenueConfig(driver="none", credentials=(KEY,), rate_limits=RateLimits(orders_per_10s=3))
    async with LocalVenue(config) as venue, BinanceFuturesClient(venue.rest_url, KEY) as client:
        await client.sync_time(samples=1)
        for i in range(3):  # one at a time: a batch counts 5 orders whatever its size
            (accepted,) = await client.place_orders("BTCUSDT", [bid(f"o-{i}", 59_000.0 - i)])
            assert accepted.status == "accepted"
        with pytest.raises(RateLimitedError) as limited:
            await client.place_orders("BTCUSDT", [bid("o-3", 58_000.0)])
        assert (limited.value.http_status, limited.value.code) == (429, -1015)
        assert 9 < limited.value.retry_after_s <= 10  # "3 orders per 10 SECOND"
        with pytest.raises(RateLimitedError, match="not sent"):
            await client.place_orders("BTCUSDT", [bid("o-4", 58_000.0)])
        # Had the refused place gone out, the venue would have banned the IP (418) and refused this:
        cancelled = await client.cancel_orders("BTCUSDT", ["o-0", "o-1"])
        assert [r.status for r in cancelled] == ["accepted", "accepted"]


async def test_a_429_on_a_later_chunk_keeps_the_earlier_results() -> None:
    config = VenueConfig(driver="none", credentials=(KEY,), rate_limits=RateLimits(orders_per_10s=5))
    async with LocalVenue(config) as venue, BinanceFuturesClient(venue.rest_url, KEY) as client:
        await client.sync_time(samples=1)
        results = await client.place_orders("BTCUSDT", [bid(f"l-{i}", 59_000.0 - i) for i in range(7)])
        assert [(r.status, r.code) for r in results] == [("accepted", None)] * 5 + [("rejected", -1015)] * 2
        assert sorted(o.client_order_id for o in venue.engine.open_orders(KEY.key_id)) == [f"l-{i}" for i in range(5)]
        with pytest.raises(RateLimitedError, match="not sent"):
            await client.place_orders("BTCUSDT", [bid("l-7", 58_000.0)])


async def test_a_418_ban_is_kept_until_the_time_the_venue_names() -> None:
    ban_s = 0.6
    limits = RateLimits(request_weight_per_minute=20, ban_s=ban_s)
    config = VenueConfig(driver="none", credentials=(KEY,), rate_limits=limits)
    async with LocalVenue(config) as venue, BinanceFuturesClient(venue.rest_url, KEY) as client:
        await client.sync_time(samples=2)
        async with aiohttp.ClientSession() as other_process:  # the same IP, another program
            statuses = []
            while not statuses or statuses[-1] != 418:
                async with other_process.get(venue.rest_url + "/fapi/v1/time") as response:
                    statuses.append(response.status)
        assert statuses[-2:] == [429, 418]
        with pytest.raises(RateLimitedError) as banned:
            await client.open_orders("BTCUSDT")
        assert banned.value.http_status == 418
        assert 0 < banned.value.retry_after_s <= ban_s + 0.1
        with pytest.raises(RateLimitedError, match="not sent"):
            await client.cancel_orders("BTCUSDT", ["any"])


# -- timestamps ----------------------------------------------------------------------------------


async def test_a_1021_resyncs_the_clock_and_retries_once(
    local_venue: LocalVenue, client: BinanceFuturesClient, caplog: pytest.LogCaptureFixture
) -> None:
    local_venue.faults.update({"clock_skew_ms": 20_000})
    with caplog.at_level(logging.WARNING, logger="marketmaker.exchanges.binance"):
        (placed,) = await client.place_orders("BTCUSDT", [bid("k-1", 59_000.0)])
    assert placed.status == "accepted"
    assert 19_950 < client.time_offset_ms < 20_050
    assert "-1021" in caplog.text
    assert [o.client_order_id for o in local_venue.engine.open_orders(KEY.key_id)] == ["k-1"]
    assert [o.client_order_id for o in await client.open_orders("BTCUSDT")] == ["k-1"]  # no resync needed now


# -- unknown outcomes ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "code"),
    [
        ({"order_answer": "drop"}, None),
        ({"order_answer": "503-unknown"}, -1000),
        ({"order_answer": "delay", "order_answer_delay_s": 1.0}, None),
    ],
    ids=["dropped", "503-unknown", "timeout"],
)
async def test_a_lost_answer_is_unknown_and_the_order_is_found_open(
    local_venue: LocalVenue, fault: dict[str, object], code: int | None
) -> None:
    async with BinanceFuturesClient(local_venue.rest_url, KEY, timeout_s=0.4) as client:
        await client.sync_time(samples=1)
        local_venue.faults.update({**fault, "order_answer_count": 1})
        results = await client.place_orders("BTCUSDT", [bid("u-1", 59_000.0), bid("u-2", 58_000.0)])
        assert [(r.status, r.code) for r in results] == [("unknown", code), ("unknown", code)]
        assert local_venue.faults.order_answer is None  # the one request reached the venue: no retry
        found = await client.open_orders("BTCUSDT")
        assert sorted(o.client_order_id for o in found) == ["u-1", "u-2"]


async def test_service_unavailable_and_throttle_are_definite_rejects(
    local_venue: LocalVenue, client: BinanceFuturesClient
) -> None:
    local_venue.faults.update({"rest_error": "503-unavailable", "rest_error_count": 1})
    (unavailable,) = await client.place_orders("BTCUSDT", [bid("v-1", 59_000.0)])
    assert (unavailable.status, unavailable.code) == ("rejected", -1001)
    local_venue.faults.update({"rest_error": "-1008", "rest_error_count": 1})
    (throttled,) = await client.place_orders("BTCUSDT", [bid("v-2", 59_000.0)])
    assert (throttled.status, throttled.code) == ("rejected", -1008)
    assert local_venue.engine.open_orders(KEY.key_id) == []


async def test_a_venue_that_is_not_there() -> None:
    async with LocalVenue(QUIET) as venue:
        rest_url = venue.rest_url
    async with BinanceFuturesClient(rest_url, KEY, timeout_s=1.0) as client:
        (not_sent,) = await client.place_orders("BTCUSDT", [bid("n-1", 59_000.0)])
        assert (not_sent.status, not_sent.code) == ("rejected", None) and "not sent" in not_sent.message
        with pytest.raises(VenueConnectionError, match="cannot connect"):
            await client.open_orders("BTCUSDT")


# -- secrets and timing --------------------------------------------------------------------------


async def test_secrets_stay_out_of_logs_reprs_and_errors(
    local_venue: LocalVenue, caplog: pytest.LogCaptureFixture
) -> None:
    """A run that hits -1022, -2015, 429, an unknown outcome and a listen key expiry."""
    caplog.set_level(logging.DEBUG)
    texts: list[str] = []
    wrong_secret = ApiCredentials(KEY.api_key, "not-the-secret-xyz")
    stranger = ApiCredentials("stranger-api-key-987654", "stranger-secret-456")
    listen_key = ""
    async with BinanceFuturesClient(local_venue.rest_url, KEY, timeout_s=0.5) as client:
        await client.sync_time(samples=1)
        texts += [repr(client), str(client), repr(client.credentials)]
        async with BinanceUserStream(
            client, local_venue.ws_url, local_venue.client_ssl_context, reconnect_delay_s=0.05
        ) as stream:
            listen_key = await client.new_listen_key()
            texts.append(repr(stream))
            local_venue.faults.update({"order_answer": "drop", "order_answer_count": 1})
            texts += [r.message for r in await client.place_orders("BTCUSDT", [bid("z-1", 59_000.0)])]
            local_venue.expire_listen_keys()
            texts.append(repr(await asyncio.wait_for(anext(stream), 5)))
        local_venue.faults.update({"rest_error": "429", "rest_error_count": 1})
        for call in (client.open_orders("BTCUSDT"), client.open_orders("BTCUSDT")):
            with pytest.raises(RateLimitedError) as limited:
                await call
            texts.append(str(limited.value))
    async with BinanceFuturesClient(local_venue.rest_url, wrong_secret) as wrong:
        texts += [r.message for r in await wrong.place_orders("BTCUSDT", [bid("z-2", 59_000.0)])]
        assert "-1022" in repr(await wrong.cancel_orders("BTCUSDT", ["z-1"]))
    async with BinanceFuturesClient(local_venue.rest_url, stranger) as unknown:
        with pytest.raises(VenueError) as refused:
            await unknown.open_orders("BTCUSDT")
        assert (refused.value.code, refused.value.http_status) == (-2015, 401)
        texts += [str(refused.value), repr(refused.value)]
    everything = "\n".join([*texts, caplog.text, *(repr(r.args) for r in caplog.records)])
    assert "HTTP 429" in everything and "outcome unknown" in everything  # the errors were hit and logged
    for secret in (KEY.api_key, KEY.secret, wrong_secret.secret, stranger.api_key, stranger.secret, listen_key):
        assert secret and secret not in everything


async def test_last_request_written_is_stamped_between_the_call_and_the_answer(client: BinanceFuturesClient) -> None:
    before = time.perf_counter_ns()
    await client.place_orders("BTCUSDT", [bid("w-1", 59_000.0)])
    after = time.perf_counter_ns()
    placed_written = client.last_request_written_ns
    assert before < placed_written < after
    await client.open_orders("BTCUSDT")  # a read is not an order request
    assert client.last_request_written_ns == placed_written
    await client.cancel_orders("BTCUSDT", ["w-1"])
    assert client.last_request_written_ns > after


async def test_on_written_reports_this_calls_first_request_once(client: BinanceFuturesClient) -> None:
    placed: list[int] = []
    before = time.perf_counter_ns()
    # 7 orders: two requests (5 + 2), one after the other; only the first is reported.
    results = await client.place_orders(
        "BTCUSDT", [bid(f"ow-{i}", 59_000.0 - i) for i in range(7)], on_written=placed.append
    )
    assert [r.status for r in results] == ["accepted"] * 7
    assert len(placed) == 1 and before < placed[0] < client.last_place_written_ns
    cancelled: list[int] = []
    results = await client.cancel_orders("BTCUSDT", [f"ow-{i}" for i in range(7)], on_written=cancelled.append)
    assert [r.status for r in results] == ["accepted"] * 7
    assert cancelled == [client.last_request_written_ns]  # one request of up to 10


async def test_an_order_request_is_stamped_when_its_bytes_enter_the_kernel(local_venue: LocalVenue) -> None:
    client = BinanceFuturesClient(local_venue.rest_url, KEY)
    hook_ns: list[int] = []
    hook = client._on_request_headers_sent

    async def timed_hook(*args: Any) -> None:
        await hook(*args)
        hook_ns.append(time.perf_counter_ns())  # the hook has returned: nothing is written yet

    client._on_request_headers_sent = timed_hook  # type: ignore[method-assign]
    async with client:
        written: list[int] = []
        await client.place_orders("BTCUSDT", [bid("k-1", 59_000.0)], on_written=written.append)
        await client.cancel_orders("BTCUSDT", ["k-1"], on_written=written.append)
        # After aiohttp's hook returned (serialisation and sock.send come next), before the answer.
        assert len(written) == 2 and hook_ns[0] < written[0] < hook_ns[1] < written[1]
        assert client._write_stamps is not None and client._write_stamps.deferred == 0
        assert client.last_request_written_ns == written[1] and client.last_place_written_ns == written[0]


async def test_warm_connections_opens_that_many_and_later_requests_reuse_them(local_venue: LocalVenue) -> None:
    async with BinanceFuturesClient(local_venue.rest_url, KEY) as client:
        assert await client.warm_connections(0) == 0
        assert await client.warm_connections(6) == 6

        def idle_connections() -> int:
            pools = client.session.connector._conns  # type: ignore[union-attr]  # aiohttp's pool: key -> idle
            return sum(len(idle) for idle in pools.values())

        assert idle_connections() == 6
        # Six requests at once find six open connections: none is opened, all go back idle.
        await asyncio.gather(*(client.open_orders("BTCUSDT") for _ in range(6)))
        assert idle_connections() == 6


async def test_user_trades_checks_its_parameters(client: BinanceFuturesClient) -> None:
    assert await client.user_trades("BTCUSDT", start_time_ms=0) == []  # nothing traded yet
    for symbol, limit, code in (("BTCUSDT", 0, -1130), ("BTCUSDT", 1001, -1130), ("NOSUCHUSDT", 500, -1121)):
        with pytest.raises(VenueError) as refused:
            await client.user_trades(symbol, limit=limit)
        assert refused.value.code == code


async def test_docstring_examples_run() -> None:
    result = doctest.testmod(binance, optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


async def test_the_query_encoding_is_urlencode() -> None:
    """What is signed is what urlencode would send (the venue checks it over the bytes)."""

    @given(st.lists(st.tuples(st.sampled_from(["symbol", "batchOrders"]), st.text(max_size=40)), max_size=4))
    def encodes_as_urlencode(params: list[tuple[str, str]]) -> None:
        assert binance._query(params) == urlencode(params)

    encodes_as_urlencode()
