"""Latency of the market data feed: from the venue writing a depth message to ``on_depth``.

    python benchmarks/feed_latency.py
    python benchmarks/feed_latency.py --rate 1000 --seconds 10 --venue loop thread --client feed raw

The local venue and the client run in one process, so one monotonic clock
(``time.perf_counter_ns``) stamps both ends: the venue's websocket write is wrapped to stamp each
depth message (by its ``u``) just before ``WebSocketResponse.send_str``; the client stamps it when
``on_depth`` is called. The market is driven at ``--rate`` book changes a second by adding and
cancelling background orders that never cross (each is exactly one engine update, so one
``@0ms`` depth message). Reported: messages matched, delivered rate, and the latency's p50, p99,
p99.9 and maximum; whether every ``pu`` chained; and how late a 1 ms sleep in the client's loop
wakes (p99, max): the jitter of the machine and of the loop itself, which every message waiting
in that loop also sees.

``--venue loop``: venue and client share one event loop (the venue's work runs between the
client's reads). ``--venue thread``: the venue runs in its own thread and loop
(``LocalVenue.in_thread``); the two threads then contend for the GIL, which adds its own wait.
Neither is a remote venue: the figure is what our side adds (TLS read, websocket framing,
cryptofeed's connection handler, our dispatch), plus the venue's write.

``--client feed``: :class:`marketmaker.feeds.BinanceMarketData` (cryptofeed underneath);
``--client raw``: a bare ``websockets`` client on the same stream, the floor for comparison.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import random
import ssl
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import asdict, dataclass
from decimal import Decimal

from aiohttp import web
from marketmaker.feeds import BinanceMarketData
from marketmaker.sim.server import LocalVenue, VenueConfig
from websockets.asyncio.client import connect

SYMBOL = "BTCUSDT"
STREAM = "btcusdt@depth@0ms"

#: perf_counter_ns at the venue's write, by the message's last update id ``u``.
sent_ns: dict[int, int] = {}


def stamp_depth_writes() -> None:
    """Wraps aiohttp's websocket ``send_str`` (only the venue uses aiohttp's server here) to stamp
    each depth message just before it is written."""
    original = web.WebSocketResponse.send_str

    async def send_str(self: web.WebSocketResponse, data: str, compress: int | None = None) -> None:
        if '"depthUpdate"' in data:
            start = data.index('"u":') + 4
            sent_ns[int(data[start : data.index(",", start)])] = time.perf_counter_ns()
        await original(self, data, compress)

    web.WebSocketResponse.send_str = send_str  # type: ignore[method-assign]


async def drive(venue: LocalVenue, rate: float, stop: asyncio.Event) -> None:
    """Book changes at ``rate`` a second: background bids and asks that never cross, added and
    cancelled in turn (each one engine update)."""
    rng = random.Random(7)
    resting: list[int] = []
    tick = Decimal("0.1")
    for i in range(200):  # a book to change
        resting.append(
            venue.engine.add_background(SYMBOL, "BUY", Decimal(59_990) - i * tick, Decimal("0.010"), venue.now_ms())
        )
        resting.append(
            venue.engine.add_background(SYMBOL, "SELL", Decimal(60_010) + i * tick, Decimal("0.010"), venue.now_ms())
        )
    loop = asyncio.get_running_loop()
    interval = 1.0 / rate
    next_time = loop.time()
    step = 0
    while not stop.is_set():
        now = loop.time()
        while next_time <= now:
            step += 1
            if step % 2:
                side = rng.choice(("BUY", "SELL"))
                distance = rng.randrange(0, 200) * tick
                price = Decimal(59_990) - distance if side == "BUY" else Decimal(60_010) + distance
                qty = Decimal(rng.randrange(1, 50)) * Decimal("0.001")
                resting.append(venue.engine.add_background(SYMBOL, side, price, qty, venue.now_ms()))
            else:
                venue.engine.cancel_background(resting.pop(rng.randrange(0, len(resting) // 2)), venue.now_ms())
            next_time += interval
        await asyncio.sleep(max(0.0, next_time - loop.time()))


@dataclass
class Result:
    venue: str
    client: str
    rate: float
    seconds: float
    messages: int
    delivered_per_s: float
    p50_us: float
    p99_us: float
    p999_us: float
    max_us: float
    pu_chained: bool
    loop_late_p99_us: float
    loop_late_max_us: float


def percentile(values: list[int], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] / 1000 if ordered else float("nan")


class Receiver:
    def __init__(self) -> None:
        self.received: list[tuple[int, int, int]] = []  # (u, pu, on_depth perf_counter_ns)

    def on_depth(self, symbol: str, text: str, receive_ns: int) -> None:
        now = time.perf_counter_ns()
        start = text.index('"u":') + 4
        u = int(text[start : text.index(",", start)])
        start = text.index('"pu":') + 5
        pu = int(text[start : text.index(",", start)])
        self.received.append((u, pu, now))


@contextlib.asynccontextmanager
async def feed_client(rest_url: str, ws_url: str, context: ssl.SSLContext, receiver: Receiver) -> AsyncIterator[None]:
    feed = BinanceMarketData(
        [SYMBOL],
        rest_url=rest_url,
        ws_url=ws_url,
        on_depth=receiver.on_depth,
        on_trade=lambda symbol, event, receive_ns: None,
        ssl_context=context,
    )
    async with feed:
        yield


@contextlib.asynccontextmanager
async def raw_client(rest_url: str, ws_url: str, context: ssl.SSLContext, receiver: Receiver) -> AsyncIterator[None]:
    async def read() -> None:
        async with connect(f"{ws_url}/public/stream?streams={STREAM}", ssl=context, compression=None) as socket:
            async for text in socket:
                assert isinstance(text, str)
                receiver.on_depth(SYMBOL, text, time.perf_counter_ns())

    task = asyncio.create_task(read())
    await asyncio.sleep(0.5)
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


CLIENTS: dict[str, Callable[..., contextlib.AbstractAsyncContextManager[None]]] = {
    "feed": feed_client,
    "raw": raw_client,
}


async def probe_loop(late_ns: list[int], stop: asyncio.Event) -> None:
    """How late a 1 ms sleep wakes up in the client's loop: the machine's and the loop's own
    jitter, which every message waiting in that loop also sees."""
    while not stop.is_set():
        before = time.perf_counter_ns()
        await asyncio.sleep(0.001)
        late_ns.append(time.perf_counter_ns() - before - 1_000_000)


def summarise(
    venue_mode: str, client: str, rate: float, seconds: float, receiver: Receiver, late_ns: list[int]
) -> Result:
    received = receiver.received[int(rate * 0.5) :]  # the first half second warms up
    latencies = [at - sent_ns[u] for u, _, at in received if u in sent_ns]
    chained = all(later[1] == earlier[0] for earlier, later in zip(receiver.received, receiver.received[1:]))
    duration = (received[-1][2] - received[0][2]) / 1e9 if len(received) > 1 else float("nan")
    return Result(
        venue_mode,
        client,
        rate,
        seconds,
        len(latencies),
        round(len(received) / duration, 1),
        percentile(latencies, 0.5),
        percentile(latencies, 0.99),
        percentile(latencies, 0.999),
        max(latencies) / 1000,
        chained,
        percentile(late_ns, 0.99),
        max(late_ns) / 1000,
    )


async def run_in_loop(client: str, rate: float, seconds: float) -> Result:
    receiver = Receiver()
    late_ns: list[int] = []
    async with LocalVenue(VenueConfig(driver="none")) as venue:
        async with CLIENTS[client](venue.rest_url, venue.ws_url, venue.client_ssl_context, receiver):
            stop = asyncio.Event()
            driver = asyncio.create_task(drive(venue, rate, stop))
            probe = asyncio.create_task(probe_loop(late_ns, stop))
            await asyncio.sleep(seconds)
            stop.set()
            await asyncio.gather(driver, probe)
            await asyncio.sleep(0.3)
    return summarise("loop", client, rate, seconds, receiver, late_ns)


async def run_in_thread(client: str, rate: float, seconds: float) -> Result:
    receiver = Receiver()
    late_ns: list[int] = []
    with LocalVenue.in_thread(VenueConfig(driver="none")) as venue:
        async with CLIENTS[client](venue.rest_url, venue.ws_url, venue.client_ssl_context, receiver):
            stop = asyncio.Event()

            def start_driver(v: LocalVenue) -> asyncio.Task[None]:
                return asyncio.get_running_loop().create_task(drive(v, rate, stop))

            driver = venue.call(start_driver)
            probe_stop = asyncio.Event()
            probe = asyncio.create_task(probe_loop(late_ns, probe_stop))
            await asyncio.sleep(seconds)
            probe_stop.set()
            await probe
            venue.call(lambda v: stop.set())
            while not venue.call(lambda v: driver.done()):
                await asyncio.sleep(0.05)
            await asyncio.sleep(0.3)
    return summarise("thread", client, rate, seconds, receiver, late_ns)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--rate", type=float, default=1000.0, help="book changes (depth messages) a second")
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--venue", nargs="+", choices=("loop", "thread"), default=["loop", "thread"])
    parser.add_argument("--client", nargs="+", choices=tuple(CLIENTS), default=["feed", "raw"])
    parser.add_argument("--json", help="write the results to this file")
    arguments = parser.parse_args()
    stamp_depth_writes()
    results = []
    for venue_mode in arguments.venue:
        for client in arguments.client:
            sent_ns.clear()
            run = run_in_loop if venue_mode == "loop" else run_in_thread
            result = asyncio.run(run(client, arguments.rate, arguments.seconds))
            results.append(result)
            print(
                f"venue={result.venue:6} client={result.client:4} messages={result.messages:6} "
                f"delivered={result.delivered_per_s:7.1f}/s latency p50={result.p50_us:7.1f} µs "
                f"p99={result.p99_us:7.1f} µs p99.9={result.p999_us:7.1f} µs max={result.max_us:8.1f} µs "
                f"pu chained={'yes' if result.pu_chained else 'NO'} "
                f"loop late p99={result.loop_late_p99_us:7.1f} µs max={result.loop_late_max_us:8.1f} µs",
                flush=True,
            )
    load = os.getloadavg()
    print(f"python {platform.python_version()}, load {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
    if arguments.json:
        with open(arguments.json, "w") as out:
            json.dump({"results": [asdict(r) for r in results], "load": load}, out, indent=1)


if __name__ == "__main__":
    main()
