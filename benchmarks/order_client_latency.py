"""The Binance order client's own cost and its round trips to the local venue.

    python benchmarks/order_client_latency.py
    python benchmarks/order_client_latency.py --requotes 2000 --orders 4
    python benchmarks/order_client_latency.py --api websocket   # order.place / order.cancel frames

The venue runs in a child process without a market driver (only our orders on the book), the
client in this one; on Linux with two or more CPUs each is pinned to a CPU of its own
(``--no-pin``: not), as in ``tick_to_order.py``. Each "requote" is what the live loop does on a quote change:
``place_orders`` of ``--orders`` post-only orders (one batch of up to 5, or ``/fapi/v1/order``
for one) then ``cancel_orders`` of the same ids (one ``DELETE /fapi/v1/batchOrders``). With
``--api websocket`` the client sends them over the venue's websocket API instead (``/ws-fapi/v1``,
TLS): one ``order.place`` frame per order, then one ``order.cancel`` frame per order;
``--api both`` measures REST then the websocket API in the same run.

Reported (p50 / p99 over the requotes, µs):

- ``call→write``: from the ``place_orders`` call to the first request's write (``on_written``:
  signing, encoding, aiohttp up to the socket write): the client's share of tick-to-order
  latency;
- ``write→answer``: from the write to the call's return (the venue's work plus loopback);
- ``place`` and ``cancel``: whole calls.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import platform
import ssl
import statistics
import time
from multiprocessing.connection import Connection

from marketmaker import Side
from marketmaker.credentials import ApiCredentials
from marketmaker.exchanges.binance import BinanceFuturesClient, NewOrder
from marketmaker.sim.binance import RateLimits
from marketmaker.sim.server import LocalVenue, VenueConfig

KEY = ApiCredentials("benchmark-order-client-key", "benchmark-order-client-secret")
#: Limits far above what the run sends: the benchmark measures latency, not the limiter.
UNLIMITED = RateLimits(request_weight_per_minute=10_000_000, orders_per_minute=10_000_000, orders_per_10s=10_000_000)


def cpu_pair() -> tuple[int, int] | None:
    """Two CPUs (client, venue) to pin to, as ``tick_to_order.py`` does; None where it cannot."""
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        return None
    client_cpu, venue_cpu = sorted(os.sched_getaffinity(0))[:2]
    return client_cpu, venue_cpu


def serve(pipe: Connection, cpu: int | None) -> None:
    if cpu is not None:
        os.sched_setaffinity(0, {cpu})

    async def run() -> None:
        config = VenueConfig(driver="none", credentials=(KEY,), rate_limits=UNLIMITED)
        async with LocalVenue(config) as venue:
            pipe.send((venue.rest_url, venue.ws_url, venue.certificate_pem.decode()))
            loop = asyncio.get_running_loop()
            await loop.run_in_executor(None, pipe.recv)

    asyncio.run(run())


def percentiles(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return f"{statistics.median(ordered):8.0f} {p99:8.0f}"


async def measure(venue: tuple[str, str, str], api: str, requotes: int, orders: int, warmup: int) -> None:
    rest_url, ws_url, certificate = venue
    call_to_write: list[float] = []
    write_to_answer: list[float] = []
    place: list[float] = []
    cancel: list[float] = []
    async with BinanceFuturesClient(rest_url, KEY) as client:
        await client.sync_time()
        await client.instruments(["BTCUSDT"])
        if api == "websocket":
            context = ssl.create_default_context(cadata=certificate)
            await client.open_order_websocket(ws_url + "/ws-fapi/v1", ssl_context=context)
        for n in range(warmup + requotes):
            batch = [NewOrder(f"q{n}-{i}", Side.BUY, 50_000.0 - i * 0.5, 0.01) for i in range(orders)]
            written_at: list[int] = []
            started = time.perf_counter_ns()
            results = await client.place_orders("BTCUSDT", batch, on_written=written_at.append)
            placed = time.perf_counter_ns()
            written = written_at[0]
            cancelled = await client.cancel_orders("BTCUSDT", [o.client_order_id for o in batch])
            done = time.perf_counter_ns()
            if any(r.status != "accepted" for r in [*results, *cancelled]):
                raise RuntimeError(f"requote {n}: {results} {cancelled}")
            if n >= warmup:
                call_to_write.append((written - started) / 1000)
                write_to_answer.append((placed - written) / 1000)
                place.append((placed - started) / 1000)
                cancel.append((done - placed) / 1000)
    print(f"{api}: {orders} orders per requote, {requotes} requotes   p50(µs)  p99(µs)")
    print(f"  place_orders call→write                 {percentiles(call_to_write)}")
    print(f"  place_orders write→answer               {percentiles(write_to_answer)}")
    print(f"  place_orders whole call                 {percentiles(place)}")
    print(f"  cancel_orders whole call                {percentiles(cancel)}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requotes", type=int, default=1000)
    parser.add_argument("--orders", type=int, nargs="*", default=[1, 4])
    parser.add_argument("--warmup", type=int, default=50)
    parser.add_argument("--api", choices=("rest", "websocket", "both"), default="both", help="how orders are sent")
    parser.add_argument("--no-pin", action="store_true", help="leave the client and the venue to the scheduler")
    args = parser.parse_args()
    pinned = None if args.no_pin else cpu_pair()
    if pinned:
        os.sched_setaffinity(0, {pinned[0]})
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"load {os.getloadavg()[0]:.2f}, Python {platform.python_version()}, "
        + (f"client on CPU {pinned[0]}, venue on CPU {pinned[1]}" if pinned else "not pinned")
    )
    context = multiprocessing.get_context("spawn")
    pipe, child = context.Pipe()
    process = context.Process(target=serve, args=(child, pinned[1] if pinned else None), daemon=True)
    process.start()
    try:
        if not pipe.poll(60):
            raise RuntimeError("the venue process did not start")
        venue = pipe.recv()
        for api in ("rest", "websocket") if args.api == "both" else (args.api,):
            for orders in args.orders:
                asyncio.run(measure(venue, api, args.requotes, orders, args.warmup))
    finally:
        pipe.send("stop")
        process.join(30)


if __name__ == "__main__":
    main()
