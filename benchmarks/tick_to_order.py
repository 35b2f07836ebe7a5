"""Tick-to-order latency of the live engine against the local venue (issue 6).

    python benchmarks/tick_to_order.py --seconds 60
    python benchmarks/tick_to_order.py --seconds 1800 --rss-every 60   # the 30-minute memory run

The engine runs in-process against an embedded local venue (synthetic market) with a tight
quote and a zero requote tolerance, so that most book changes move our ladder and lead to order
requests. For every order request the engine records the time from the arrival of the depth
message behind it (the feed's receive stamp, taken when cryptofeed hands the message over) to
the moment the request's bytes were written (the order client's stamp). Reported: count, p50,
p90, p99 and max, and the process's RSS at start and end (and every ``--rss-every`` seconds).

Both sides share one process and one event loop (the venue's market driver and matching run
in the same loop), so the figures include the venue's work that happens to be queued ahead of
the engine: they are an upper bound of what the engine alone costs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import resource
import sys
import tempfile
import textwrap
import time
from pathlib import Path

from marketmaker.config import load_config
from marketmaker.engine import LiveEngine, tick_to_order_percentiles
from marketmaker.journal import Journal
from marketmaker.sim.binance import RateLimits
from marketmaker.sim.server import LocalVenue, VenueConfig


def rss_mb() -> float:
    """Resident set size now, from /proc (MB)."""
    with open(f"/proc/{os.getpid()}/statm") as statm:
        pages = int(statm.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


async def measure(seconds: float, rss_every: float) -> dict:
    folder = Path(tempfile.mkdtemp(prefix="tick-to-order-"))
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
            bps = [["BTCUSDT", 0.3]]
            [strategy.params]
            size_fraction = 0.002
            [orders]
            requote_tolerance_bps = 0.0
            orders_per_10s = 100000
            weight_per_min = 1000000
            [journal]
            path = "{folder / "journal.sqlite"}"
            """
        )
    )
    config = load_config(path)
    rss = [(0.0, rss_mb())]
    # The venue's limits are raised with ours: this measures latency, not throttling.
    limits = RateLimits(request_weight_per_minute=10**8, orders_per_10s=10**8, orders_per_minute=10**8)
    async with LocalVenue(VenueConfig(symbols=("BTCUSDT",), seed=11, rate_limits=limits)) as venue:
        journal = Journal(config.journal.path)
        engine = LiveEngine(
            config,
            rest_url=venue.rest_url,
            ws_url=venue.ws_url,
            credentials=venue.credentials[0],
            ssl_context=venue.client_ssl_context,
            journal=journal,
        )
        await engine.start()
        begun = time.monotonic()
        next_rss = rss_every
        while (elapsed := time.monotonic() - begun) < seconds:
            await asyncio.sleep(min(1.0, seconds - elapsed))
            if rss_every and elapsed >= next_rss:
                rss.append((round(elapsed), rss_mb()))
                next_rss += rss_every
        rss.append((round(time.monotonic() - begun), rss_mb()))
        latency = tick_to_order_percentiles(engine)
        summary = await engine.stop()
        journal.close()
    return {
        "seconds": seconds,
        "latency_us": latency,
        "orders_placed": sum(s.places_sent for s in summary.symbols),
        "open_orders_at_venue_after_stop": summary.open_orders_at_venue,
        "rss_mb": rss,
        "max_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e3,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--rss-every", type=float, default=0.0, help="sample RSS this often (s)")
    parser.add_argument("--json", metavar="PATH")
    args = parser.parse_args()
    result = asyncio.run(measure(args.seconds, args.rss_every))
    print(json.dumps(result, indent=2))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
