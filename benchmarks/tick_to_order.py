"""Tick-to-order latency of the live engine against the local venue (issue 6).

    python benchmarks/tick_to_order.py --seconds 60
    python benchmarks/tick_to_order.py --seconds 1800 --rss-every 60   # the 30-minute memory run
    python benchmarks/tick_to_order.py --seconds 120 --order-api both   # websocket API, then REST

The engine runs in-process against an embedded local venue (synthetic market) with a tight
quote and a zero requote tolerance, so that most book changes move our ladder and lead to order
requests. For every order request the engine records the time from the arrival of the depth
message behind it (the feed's receive stamp, taken when cryptofeed hands the message over) to
the moment the tick's first order request's bytes were written (the order client's stamp, taken
when the connection's ``sock.send`` returned; the request is an ``order.place``/``order.cancel``
frame on the venue's websocket API by default, an HTTP request with ``--order-api rest``): ``latency_us`` (first request, cancel or place) and
``latency_to_place_us`` (first place). Reported: count, p50, p90, p99 and max, and the process's
RSS at start and end (and every ``--rss-every`` seconds), and what the kernel and the
hypervisor took from the engine during the run: its time runnable but off the CPU, its
involuntary context switches, and the steal time of its CPU.

The engine ticks inside the depth message's handling; on Python 3.12+ the order requests start
as eager tasks (written before the next message is read), before 3.12 at the loop's next pass,
so run it with each interpreter to compare.

By default the venue runs in a process of its own (as a real venue would be elsewhere), with
its rate limits raised so that throttling does not hide latency; ``--venue-in-loop`` puts it in
the engine's event loop instead, where its matching and market driver queue ahead of the
engine and the figures become an upper bound.

On Linux with two or more CPUs the engine is pinned to one CPU and the venue process to another
(``--no-pin`` leaves both to the scheduler). A real venue is another machine: unpinned, the
kernel often wakes the venue on the engine's CPU when an order request reaches it over
loopback, and the engine's ``send`` then waits for the venue's matching of that order
(measured: one socket write in five took 0.5–1 ms unpinned, under 0.1 ms pinned). The
figures of both are reported in RESULTS.md.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import resource
import ssl
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from marketmaker.config import load_config
from marketmaker.credentials import ApiCredentials
from marketmaker.engine import LiveEngine, tick_to_order_percentiles
from marketmaker.journal import Journal
from marketmaker.sim.binance import RateLimits
from marketmaker.sim.server import LocalVenue, VenueConfig


def rss_mb() -> float:
    """Resident set size now, from /proc (MB)."""
    with open(f"/proc/{os.getpid()}/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def scheduling_counters(cpu: int | None) -> dict[str, float]:
    """What the kernel and the hypervisor took from this process (Linux; {} elsewhere): time
    on the CPU and time runnable but waiting for it (``/proc/self/schedstat``), involuntary
    context switches, and the steal time of ``cpu`` (or of all CPUs), in ms."""
    try:
        with open("/proc/self/schedstat") as schedstat:
            on_cpu_ns, waiting_ns, _slices = (int(v) for v in schedstat.read().split())
        with open("/proc/self/status") as status:
            switches = next(int(line.split()[1]) for line in status if line.startswith("nonvoluntary_ctxt_switches"))
        with open("/proc/stat") as stat:
            name = "cpu" if cpu is None else f"cpu{cpu}"
            fields = next(line.split() for line in stat if line.split()[0] == name)
        steal_ms = int(fields[8]) * 1000 / os.sysconf("SC_CLK_TCK")
    except (OSError, ValueError, StopIteration, IndexError):
        return {}
    return {
        "on_cpu_ms": on_cpu_ns / 1e6,
        "runnable_waiting_ms": waiting_ns / 1e6,
        "involuntary_switches": switches,
        "steal_ms": steal_ms,
    }


#: The venue's limits, raised: this measures latency, not throttling.
LIMITS = RateLimits(request_weight_per_minute=10**8, orders_per_10s=10**8, orders_per_minute=10**8)


def cpu_pair() -> tuple[int, int] | None:
    """The first two CPUs this process may run on (engine, venue), None where it cannot pin."""
    if not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2:
        return None
    engine, venue = sorted(os.sched_getaffinity(0))[:2]
    return engine, venue


async def serve_venue(seconds: float) -> None:
    """The venue process: prints how to reach it as one JSON line, then serves."""
    async with LocalVenue(VenueConfig(symbols=("BTCUSDT",), seed=11, rate_limits=LIMITS)) as venue:
        fd, certificate = tempfile.mkstemp(suffix=".pem")
        with os.fdopen(fd, "wb") as handle:
            handle.write(venue.certificate_pem)
        key = venue.credentials[0]
        where = {"rest_url": venue.rest_url, "ws_url": venue.ws_url, "certificate": certificate}
        print(json.dumps({**where, "api_key": key.api_key, "secret": key.secret}), flush=True)
        await asyncio.sleep(seconds)
        os.unlink(certificate)


def write_config(folder: Path, order_api: str = "websocket") -> Path:
    path = folder / "config.toml"
    path.write_text(
        textwrap.dedent(
            f"""\
            exchange = "sim"
            symbols = ["BTCUSDT"]
            balances = [["BTCUSDT", 100000.0]]
            leverage = 5
            orders_per_side = 3
            final_order_distance = 3
            rate_limit = 1000
            tick_window = 20
            bps = [["BTCUSDT", 1.0]]
            [strategy.params]
            size_fraction = 0.002
            [orders]
            requote_tolerance_bps = 0.5
            orders_per_10s = 100000
            orders_per_min = 1000000
            weight_per_min = 1000000
            [venue]
            order_api = "{order_api}"
            [journal]
            path = "{folder / "journal.sqlite"}"
            """
        )
    )
    return path


async def run_engine(config_path: Path, venue: dict, seconds: float, rss_every: float, cpu: int | None = None) -> dict:
    config = load_config(config_path)
    rss = [(0.0, rss_mb())]
    journal = Journal(config.journal.path)
    # As `marketmaker-cli run --cpu N`: the journal's writes on another CPU than the engine's.
    writer_cpus = sorted(set(range(os.cpu_count() or 1)) - {cpu}) if cpu is not None else None
    if writer_cpus:
        journal.pin_writer(set(writer_cpus))
    engine = LiveEngine(
        config,
        rest_url=venue["rest_url"],
        ws_url=venue["ws_url"],
        credentials=venue["credentials"],
        ssl_context=venue["ssl_context"],
        journal=journal,
    )
    await engine.start()
    scheduling_before = scheduling_counters(cpu)
    begun = time.monotonic()
    next_rss = rss_every
    while (elapsed := time.monotonic() - begun) < seconds:
        await asyncio.sleep(min(1.0, seconds - elapsed))
        if rss_every and elapsed >= next_rss:
            rss.append((round(elapsed), rss_mb()))
            next_rss += rss_every
    rss.append((round(time.monotonic() - begun), rss_mb()))
    scheduling_after = scheduling_counters(cpu)
    latency = tick_to_order_percentiles(engine)
    latency_to_place = tick_to_order_percentiles(engine, places_only=True)
    stamps = engine.client._write_stamps if engine.client is not None else None
    over_websocket = engine.client is not None and engine.client.order_websocket_open
    summary = await engine.stop()
    journal.close()
    return {
        "seconds": seconds,
        "python": platform.python_version(),
        "load_average_1m_at_end": os.getloadavg()[0],
        "latency_us": latency,
        "latency_to_place_us": latency_to_place,
        # "socket": stamped when sock.send returned; "hook": aiohttp's hook (not a selector loop)
        "write_stamp": "hook" if stamps is None else "socket",
        "order_api": config.venue.order_api,
        "orders_over_websocket_api_at_end": over_websocket,
        "journal_writer_cpus": writer_cpus,
        "writes_stamped_a_pass_late": None if stamps is None else stamps.deferred,
        "engine_scheduling_during_run": {
            key: round(scheduling_after[key] - scheduling_before[key], 1) for key in scheduling_after
        },
        "orders_placed": sum(s.places_sent for s in summary.symbols),
        "open_orders_at_venue_after_stop": summary.open_orders_at_venue,
        "rss_mb": rss,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
    }


async def measure(
    seconds: float, rss_every: float, venue_in_loop: bool, pin: bool = True, order_api: str = "websocket"
) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="tick-to-order-"))
    pinned = cpu_pair() if pin and not venue_in_loop else None
    if pinned:
        os.sched_setaffinity(0, {pinned[0]})
    config_path = write_config(folder, order_api)
    if venue_in_loop:
        async with LocalVenue(VenueConfig(symbols=("BTCUSDT",), seed=11, rate_limits=LIMITS)) as local:
            where = {
                "rest_url": local.rest_url,
                "ws_url": local.ws_url,
                "credentials": local.credentials[0],
                "ssl_context": local.client_ssl_context,
            }
            return {"venue": "same event loop", **await run_engine(config_path, where, seconds, rss_every)}
    server = subprocess.Popen(
        [sys.executable, __file__, "--serve-venue", "--seconds", str(seconds + 60)]
        + (["--venue-cpu", str(pinned[1])] if pinned else []),
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        line = json.loads(server.stdout.readline())
        where = {
            "rest_url": line["rest_url"],
            "ws_url": line["ws_url"],
            "credentials": ApiCredentials(line["api_key"], line["secret"]),
            "ssl_context": ssl.create_default_context(cafile=line["certificate"]),
        }
        cpus = {"engine_cpu": pinned[0], "venue_cpu": pinned[1]} if pinned else {"pinned": False}
        engine_cpu = pinned[0] if pinned else None
        return {"venue": "own process", **cpus, **await run_engine(config_path, where, seconds, rss_every, engine_cpu)}
    finally:
        server.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            server.wait(10)


def run_in_own_process(args: argparse.Namespace, order_api: str) -> dict:
    """This benchmark with ``--order-api order_api`` in a new process; its JSON result."""
    with tempfile.TemporaryDirectory() as folder:
        out = Path(folder) / "result.json"
        command = [sys.executable, __file__, "--seconds", str(args.seconds), "--order-api", order_api]
        command += ["--rss-every", str(args.rss_every), "--json", str(out)]
        command += ["--venue-in-loop"] * args.venue_in_loop + ["--no-pin"] * args.no_pin
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
        return dict(json.loads(out.read_text()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rss-every", type=float, default=0.0, help="sample RSS this often (s)")
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--venue-in-loop", action="store_true", help="run the venue in the engine's event loop")
    parser.add_argument("--no-pin", action="store_true", help="do not pin the engine and the venue to CPUs 0 and 1")
    parser.add_argument(
        "--order-api",
        choices=("websocket", "rest", "both"),
        default="websocket",
        help="how the engine sends orders ([venue] order_api); both: one run each (own process), websocket first",
    )
    parser.add_argument("--serve-venue", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--venue-cpu", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_venue:
        if args.venue_cpu is not None:
            os.sched_setaffinity(0, {args.venue_cpu})
        with contextlib.suppress(KeyboardInterrupt):
            asyncio.run(serve_venue(args.seconds))
        return 0
    result: dict | list[dict]
    if args.order_api == "both":
        # Each in a process of its own: a second run in the same process waited ~9 s of 120 s
        # runnable for its CPU (measured 2026-12-04), where a fresh process waited 0.1 s.
        result = [run_in_own_process(args, api) for api in ("websocket", "rest")]
    else:
        result = asyncio.run(
            measure(args.seconds, args.rss_every, args.venue_in_loop, pin=not args.no_pin, order_api=args.order_api)
        )
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
