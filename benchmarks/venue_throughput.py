"""The local venue's throughput: depth messages to one client, and signed order actions.

    python benchmarks/venue_throughput.py
    python benchmarks/venue_throughput.py --runs 5 --seconds 8 --rates 1000 2000 4000 --json /tmp/venue.json

The venue runs in a child process (as ``marketmaker-cli sim`` would), the client in this one,
so the two do not share an interpreter.

1. Depth: a :class:`~marketmaker.sim.drivers.SyntheticMarket` pushed to a target rate of book
   changes (limit arrivals, cancels and market orders; each change is one engine delta), one
   aiohttp websocket client over TLS subscribed to ``btcusdt@depth@0ms`` (one message per
   delta). Reported per target: messages/s delivered, lag from the engine's event time ``T`` to
   the client's receipt (p50, p99), and whether every ``pu`` chained (no message lost). A venue that
   falls behind shows it as lag that grows over the run: "keeps up" means every ``pu`` chained
   and the p99 lag stayed under 100 ms.
2. Orders: signed ``POST /fapi/v1/order`` then ``DELETE /fapi/v1/order`` pairs (a LIMIT buy
   far below the market, so it rests) from one aiohttp session with a few concurrent workers,
   against the venue with the default synthetic market running. Reported: actions/s (each
   request is one action) and request latency p50/p99.

Each figure is the median of ``--runs`` runs (default 3).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import platform
import ssl
import statistics
import time
from dataclasses import asdict, dataclass
from multiprocessing.connection import Connection
from typing import Any
from urllib.parse import urlencode

import aiohttp
from marketmaker.credentials import ApiCredentials
from marketmaker.exchanges.signing import binance_signature
from marketmaker.sim.binance import RateLimits
from marketmaker.sim.drivers import SyntheticMarket
from marketmaker.sim.server import SYNTHETIC_START_PRICES, LocalVenue, VenueConfig
from yarl import URL

KEY = ApiCredentials("benchmark-api-key", "benchmark-secret")
#: Limits high enough not to be what is measured.
UNLIMITED = RateLimits(request_weight_per_minute=10**9, orders_per_minute=10**9, orders_per_10s=10**9)
STEP_S = 0.005


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))] if ordered else float("nan")


# -- the venue process ---------------------------------------------------------------------------


def serve(pipe: Connection, changes_per_second: float | None) -> None:
    """Child process: a venue (with a market pushed to ``changes_per_second`` when given, else the
    default synthetic market), its addresses sent through ``pipe``, until ``pipe`` says stop."""
    asyncio.run(_serve(pipe, changes_per_second))


async def _serve(pipe: Connection, changes_per_second: float | None) -> None:
    driver = "synthetic" if changes_per_second is None else "none"
    async with LocalVenue(VenueConfig(driver=driver, credentials=(KEY,), rate_limits=UNLIMITED)) as venue:
        stepping = None
        if changes_per_second is not None:
            # Arrivals: limit orders L/s, cancels ≈ L/s in steady state, market orders 2 % of the target.
            limit_rate = changes_per_second * 0.49
            market = SyntheticMarket(
                venue.engine,
                "BTCUSDT",
                seed=11,
                initial_price=SYNTHETIC_START_PRICES["BTCUSDT"],
                limit_rate=limit_rate,
                cancel_rate=limit_rate / 1000,
                market_rate=changes_per_second * 0.02,
            )
            stepping = asyncio.create_task(_step(venue, market))
        pipe.send((venue.rest_url, venue.ws_url, venue.certificate_pem))
        await asyncio.to_thread(pipe.recv)
        if stepping is not None:
            stepping.cancel()


async def _step(venue: LocalVenue, market: SyntheticMarket) -> None:
    while True:
        market.step(venue.now_ms())
        await asyncio.sleep(STEP_S)


class VenueProcess:
    def __init__(self, changes_per_second: float | None) -> None:
        context = multiprocessing.get_context("spawn")
        self.pipe, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, changes_per_second), daemon=True)

    def __enter__(self) -> tuple[str, str, ssl.SSLContext]:
        self.process.start()
        if not self.pipe.poll(60):
            raise RuntimeError("the venue process did not start")
        rest_url, ws_url, certificate = self.pipe.recv()
        return rest_url, ws_url, ssl.create_default_context(cadata=certificate.decode())

    def __exit__(self, *exc: object) -> None:
        self.pipe.send("stop")
        self.process.join(30)


# -- depth ---------------------------------------------------------------------------------------


@dataclass
class DepthRun:
    target_per_s: float
    delivered_per_s: float
    lag_p50_ms: float
    lag_p99_ms: float
    chained: bool


async def depth_run(target: float, warmup_s: float, seconds: float) -> DepthRun:
    with VenueProcess(target) as (_, ws_url, trust):
        async with (
            aiohttp.ClientSession() as session,
            session.ws_connect(ws_url + "/public/ws/btcusdt@depth@0ms", ssl=trust) as ws,
        ):
            lags: list[float] = []
            received = 0
            chained = True
            previous_u: int | None = None
            started = time.monotonic()
            measuring_from = started + warmup_s
            measuring = False
            while True:
                message = await ws.receive(timeout=10)
                arrival_ms = time.time_ns() / 1e6
                data = json.loads(message.data)
                if previous_u is not None and data["pu"] != previous_u:
                    chained = False
                previous_u = data["u"]
                clock = time.monotonic()
                if not measuring and clock >= measuring_from:
                    measuring, measuring_from = True, clock
                    continue
                if measuring:
                    received += 1
                    lags.append(arrival_ms - data["T"])
                    if clock - measuring_from >= seconds:
                        break
            elapsed = time.monotonic() - measuring_from
    return DepthRun(target, received / elapsed, percentile(lags, 0.5), percentile(lags, 0.99), chained)


# -- orders --------------------------------------------------------------------------------------


@dataclass
class OrderRun:
    concurrency: int
    actions_per_s: float
    latency_p50_ms: float
    latency_p99_ms: float
    errors: int


async def order_run(concurrency: int, seconds: float) -> OrderRun:
    with VenueProcess(None) as (rest_url, _, _):
        latencies: list[float] = []
        errors = 0
        actions = 0
        headers = {"X-MBX-APIKEY": KEY.api_key}

        async def signed(session: aiohttp.ClientSession, method: str, path: str, params: dict[str, str]) -> Any:
            nonlocal errors, actions
            text = urlencode({**params, "timestamp": now_ms()})
            text += "&signature=" + binance_signature(KEY.secret, text)
            started = time.perf_counter()
            async with session.request(
                method, URL(f"{rest_url}{path}?{text}", encoded=True), headers=headers
            ) as response:
                body = await response.json()
            latencies.append((time.perf_counter() - started) * 1000)
            actions += 1
            if response.status != 200:
                errors += 1
            return body

        async def worker(session: aiohttp.ClientSession, index: int, deadline: float) -> None:
            sequence = 0
            while time.monotonic() < deadline:
                sequence += 1
                client_id = f"bench-{index}-{sequence}"
                order = {
                    "symbol": "BTCUSDT", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC",
                    "quantity": "0.002", "price": "50000.0", "newClientOrderId": client_id,
                }  # fmt: skip
                await signed(session, "POST", "/fapi/v1/order", order)
                await signed(session, "DELETE", "/fapi/v1/order", {"symbol": "BTCUSDT", "origClientOrderId": client_id})

        connector = aiohttp.TCPConnector(limit=concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:
            await worker(session, -1, time.monotonic() + 0.5)  # warm up connections and code paths
            latencies.clear()
            actions = 0
            started = time.monotonic()
            deadline = started + seconds
            await asyncio.gather(*(worker(session, i, deadline) for i in range(concurrency)))
            elapsed = time.monotonic() - started
    return OrderRun(concurrency, actions / elapsed, percentile(latencies, 0.5), percentile(latencies, 0.99), errors)


# -- main ----------------------------------------------------------------------------------------


def median_of(runs: list[Any], name: str) -> float:
    return statistics.median(getattr(run, name) for run in runs)


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=5.0, help="measured seconds per run")
    parser.add_argument("--warmup", type=float, default=1.5, help="seconds before measuring (depth)")
    parser.add_argument(
        "--rates", type=float, nargs="*", default=[1000, 2000, 4000, 8000], help="target book changes/s"
    )
    parser.add_argument("--concurrency", type=int, nargs="*", default=[1, 4])
    parser.add_argument("--json", help="write every run here")
    args = parser.parse_args()
    print(
        f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.2f}, Python {platform.python_version()}"
    )
    depth: dict[float, list[DepthRun]] = {}
    for rate in args.rates:
        depth[rate] = [await depth_run(rate, args.warmup, args.seconds) for _ in range(args.runs)]
    print("\n| target changes/s | delivered msg/s | lag p50 ms | lag p99 ms | pu chained | keeps up |")
    print("|---:|---:|---:|---:|:---:|:---:|")
    for rate, runs in depth.items():
        delivered = median_of(runs, "delivered_per_s")
        p99 = median_of(runs, "lag_p99_ms")
        chained = all(r.chained for r in runs)
        keeps_up = chained and p99 < 100
        print(
            f"| {rate:,.0f} | {delivered:,.0f} | {median_of(runs, 'lag_p50_ms'):.1f} | {p99:.1f} | "
            f"{'yes' if chained else 'NO'} | {'yes' if keeps_up else 'no'} |"
        )
    orders: dict[int, list[OrderRun]] = {}
    for concurrency in args.concurrency:
        orders[concurrency] = [await order_run(concurrency, args.seconds) for _ in range(args.runs)]
    print("\n| concurrency | actions/s | latency p50 ms | latency p99 ms | errors |")
    print("|---:|---:|---:|---:|---:|")
    for concurrency, runs in orders.items():
        print(
            f"| {concurrency} | {median_of(runs, 'actions_per_s'):,.0f} | {median_of(runs, 'latency_p50_ms'):.2f} | "
            f"{median_of(runs, 'latency_p99_ms'):.2f} | {sum(r.errors for r in runs)} |"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump(
                {
                    "depth": {str(k): [asdict(r) for r in v] for k, v in depth.items()},
                    "orders": {str(k): [asdict(r) for r in v] for k, v in orders.items()},
                },
                handle,
                indent=1,
            )


if __name__ == "__main__":
    asyncio.run(main())
