"""``marketmaker-cli``: the command line.

Subcommands: ``run`` (the market maker; with the default config against the embedded local
venue), ``sim`` (the local venue, standalone), ``check-config`` (validate a configuration
and print it, secrets redacted) and ``report`` (summarise a journal, optionally plot it). More
arrive with their issues (``run``, ``backtest``, ...); each is a subparser with its own handler
function, called as ``handler(arguments, parser)``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import logging
import os
import signal
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from marketmaker import __version__
from marketmaker.config import Config, find_config, load_config
from marketmaker.errors import ConfigError
from marketmaker.journal import JournalError, plot_run, summarise

if TYPE_CHECKING:  # the venue (aiohttp, cryptography) is imported only when ``sim`` runs
    from marketmaker.sim.server import LocalVenue

__all__ = ["main"]

#: The exit status of a command given an invalid configuration or journal.
EXIT_INVALID = 2


def _check_config(arguments: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``check-config [PATH]``: exit 0 and print the resolved config, or 2 and the error."""
    if arguments.path is None:
        location = find_config()
        print(location.describe(), file=sys.stderr)
        path, base_dir = location.path, location.base_dir
    else:
        path, base_dir = Path(arguments.path), None
    try:
        config = load_config(path, base_dir=base_dir)
    except ConfigError as error:
        print(f"invalid configuration: {error}", file=sys.stderr)
        return EXIT_INVALID
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    print(f"# {config.source}: valid; secrets redacted", file=sys.stderr)
    sys.stdout.write(config.to_toml())
    return 0


def _add_check_config(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "check-config",
        help="validate a configuration and print it resolved, secrets redacted",
        description="Validates a configuration file and prints it as resolved (defaults filled in, "
        "paths made absolute, secrets redacted). Exits 0 when valid, 2 with the error otherwise.",
    )
    parser.add_argument("path", nargs="?", help="the file (default: ./config.toml, else the packaged default)")
    parser.set_defaults(handler=_check_config)


def _report(arguments: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """``report JOURNAL [--run ID] [--png OUT]``: the summary, and the plot when asked."""
    try:
        summary = summarise(arguments.journal, arguments.run)
        print(summary.render())
        if arguments.png is not None:
            out = plot_run(arguments.journal, arguments.png, summary.run.run_id)
            print(f"PnL and inventory plotted to {out}")
    except JournalError as error:
        print(f"report: {error}", file=sys.stderr)
        return EXIT_INVALID
    return 0


def _add_report(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "report",
        help="summarise a journal (fills, volume, fees, PnL, position, orders, halts)",
        description="Summarises one run of a journal by symbol; --png also plots PnL and inventory "
        "over time (needs matplotlib: pip install 'marketmaker[plot]').",
    )
    parser.add_argument("journal", type=Path, help="the journal's SQLite file")
    parser.add_argument("--run", type=int, default=None, help="the run id (default: the latest)")
    parser.add_argument("--png", type=Path, default=None, metavar="OUT.png", help="plot PnL and inventory to this PNG")
    parser.set_defaults(handler=_report)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketmaker-cli",
        description="Market making on crypto perpetual futures with a compiled Rust core.",
    )
    parser.add_argument("--version", action="version", version=f"marketmaker {__version__}")
    commands = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND")
    add_run_command(commands)
    add_sim_command(commands)
    _add_check_config(commands)
    _add_report(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.print_help()
        return 0
    status: int = args.handler(args, parser)
    return status


# -- sim ------------------------------------------------------------------------------------------


def add_sim_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``marketmaker-cli sim``: the local venue, standalone."""
    sim = commands.add_parser(
        "sim",
        help="run the local exchange simulator (Binance USDⓈ-M protocol on loopback)",
        description="Runs the local venue on 127.0.0.1 and prints its REST and websocket URLs and the "
        "API key and secret it accepts, until Ctrl-C, SIGTERM or --duration.",
    )
    sim.add_argument("--driver", choices=("synthetic", "replay"), default="synthetic", help="what moves the market")
    sim.add_argument("--recording", type=Path, help="the capture a replay driver plays")
    sim.add_argument("--seed", type=int, default=1, help="the synthetic market's seed (default 1)")
    sim.add_argument("--symbols", nargs="+", default=["BTCUSDT"], help="listed symbols (default BTCUSDT)")
    sim.add_argument("--duration", type=float, help="stop after this many seconds (default: until Ctrl-C)")
    sim.add_argument("--rest-port", type=int, default=0, help="REST port (default: a free one)")
    sim.add_argument("--ws-port", type=int, default=0, help="websocket (TLS) port (default: a free one)")
    sim.add_argument(
        "--faults",
        metavar="JSON",
        help="faults switched on at start, e.g. '{\"clock_skew_ms\": 2000}' (the fields of POST /sim/faults)",
    )
    sim.set_defaults(handler=run_sim)


def run_sim(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Starts the venue, prints how to reach it, serves until Ctrl-C or ``--duration``."""
    from marketmaker.errors import MalformedMessageError
    from marketmaker.sim.faults import VenueFaults
    from marketmaker.sim.server import LocalVenue, VenueConfig

    if args.driver == "replay" and args.recording is None:
        parser.error("sim: --driver replay needs --recording PATH")
    if args.driver != "replay" and args.recording is not None:
        parser.error("sim: --recording is for --driver replay")
    if args.recording is not None and not args.recording.is_file():
        parser.error(f"sim: --recording {args.recording}: no such file")
    if args.duration is not None and args.duration <= 0:
        parser.error("sim: --duration must be positive")
    faults = VenueFaults()
    if args.faults is not None:
        try:
            switches = json.loads(args.faults)
        except json.JSONDecodeError as error:
            parser.error(f"sim: --faults is not JSON: {error.msg} at column {error.colno}")
        if not isinstance(switches, dict):
            parser.error("sim: --faults must be a JSON object of fault switches")
        try:
            faults.update(switches)
        except ValueError as error:
            parser.error(f"sim: --faults: {error}")
    try:
        config = VenueConfig(
            symbols=tuple(args.symbols),
            driver=args.driver,
            recording=args.recording,
            seed=args.seed,
            rest_port=args.rest_port,
            ws_port=args.ws_port,
            faults=faults,
        )
        venue = LocalVenue(config)  # reads a recording here: its errors are usage errors
    except (ValueError, MalformedMessageError) as error:
        parser.error(
            f"sim: {error} (the recording's symbol must be among --symbols)" if args.recording else f"sim: {error}"
        )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(_serve_sim(venue, args.duration))
    return 0


async def _serve_sim(venue: LocalVenue, duration: float | None) -> None:
    config = venue.config
    async with venue:
        fd, certificate = tempfile.mkstemp(prefix="marketmaker-sim-", suffix=".pem")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(venue.certificate_pem)
            credentials = venue.credentials[0]
            # Printing the accepted key and secret to whoever started a local sim is the point.
            print(f"marketmaker local venue: {', '.join(config.symbols)}, {config.driver} market", flush=True)
            print(f"  REST         {venue.rest_url}")
            print(f"  websockets   {venue.ws_url}  (routes /public /market /private)")
            print(f"  TLS trust    {certificate}  (self-signed for 127.0.0.1)")
            print(f"  API key      {credentials.api_key}")
            print(f"  API secret   {credentials.secret}")
            print(f"  faults       POST {venue.rest_url}/sim/faults  (JSON switches; GET shows them)")
            if venue.faults.active():
                print(f"  faults on    {json.dumps(venue.faults.active())}")
            print("Ctrl-C stops it." if duration is None else f"Stops after {duration:g} s.", flush=True)
            stop = asyncio.Event()
            asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
        finally:
            os.unlink(certificate)


# -- run ------------------------------------------------------------------------------------------


def add_run_command(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``marketmaker-cli run``: the market maker."""
    run = commands.add_parser(
        "run",
        help="run the market maker (the default config trades against the embedded local venue)",
        description="Reads the config (./config.toml, else the packaged default), starts the embedded "
        'local venue when exchange = "sim", and quotes every configured symbol until Ctrl-C, SIGTERM '
        "or --duration; then cancels all its orders, confirms none remain and prints a summary.",
    )
    run.add_argument("--config", type=Path, default=None, help="the config file (default: ./config.toml)")
    run.add_argument("--duration", type=float, default=None, help="stop after this many seconds")
    run.add_argument("--no-dashboard", action="store_true", help="periodic status lines instead of the live dashboard")
    run.add_argument(
        "--cpu",
        type=int,
        default=None,
        metavar="N",
        help="pin the event loop (feeds, ticks, order requests) to CPU N and keep the journal's writer "
        "thread off it (Linux; docs/running.md, latency)",
    )
    run.set_defaults(handler=run_market_maker)


def run_market_maker(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    if args.config is None:
        location = find_config()
        print(location.describe(), flush=True)
        path, base_dir = location.path, location.base_dir
    else:
        path, base_dir = args.config, None
    try:
        config = load_config(path, base_dir=base_dir)
    except ConfigError as error:
        print(f"invalid configuration: {error}", file=sys.stderr)
        return EXIT_INVALID
    for warning in config.warnings:
        print(f"warning: {warning}", file=sys.stderr)
    if config.exchange != "sim" and config.exchange != "binance":
        print(f"run: exchange {config.exchange!r} has no order client yet (sim and binance do)", file=sys.stderr)
        return EXIT_INVALID
    pinning: tuple[int, set[int]] | None = None
    if args.cpu is not None:
        if not hasattr(os, "sched_setaffinity"):
            print("run: --cpu needs a platform that can pin threads (Linux)", file=sys.stderr)
            return EXIT_INVALID
        allowed = sorted(os.sched_getaffinity(0))
        if args.cpu not in allowed:
            print(f"run: --cpu {args.cpu}: this process may only use CPUs {allowed}", file=sys.stderr)
            return EXIT_INVALID
        # Before any thread starts; the journal's writer is moved off it once it exists.
        os.sched_setaffinity(0, {args.cpu})
        pinning = (args.cpu, set(allowed) - {args.cpu})
    with contextlib.suppress(KeyboardInterrupt):
        dashboard = config.dashboard.enabled and not args.no_dashboard and sys.stdout.isatty()
        return asyncio.run(_run_async(config, Path(path), base_dir, args.duration, dashboard, pinning))
    return 0


async def _run_async(
    config: Config,
    path: Path,
    base_dir: Path | None,
    duration: float | None,
    dashboard: bool,
    pinning: tuple[int, set[int]] | None = None,
) -> int:
    from marketmaker.config_reload import ConfigWatcher
    from marketmaker.engine import LiveEngine
    from marketmaker.exchanges.binance import BINANCE_WS_API_URL, WS_API_PATH
    from marketmaker.journal import Journal
    from marketmaker.sim.server import LocalVenue, VenueConfig

    venue: LocalVenue | None = None
    if config.exchange == "sim":
        accepted = tuple(entry.resolved for entry in config.api_keys if entry.resolved is not None)
        try:
            venue = LocalVenue(
                VenueConfig(
                    symbols=tuple(config.symbol_names),
                    driver=config.sim.driver,
                    recording=config.sim.recording,
                    seed=config.sim.seed,
                    credentials=accepted[:1],
                    synthetic=dict(config.sim.synthetic),
                    replay_speed=config.sim.replay_speed,
                )
            )
        except ValueError as error:
            print(f"invalid configuration: {config.source}: {error}", file=sys.stderr)
            return EXIT_INVALID
        await venue.start()
        rest_url, ws_url, ssl_context = venue.rest_url, venue.ws_url, venue.client_ssl_context
        ws_api_url = ws_url + WS_API_PATH
        credentials = venue.credentials[0]
        venue_fills = venue_fill_ledger(venue, credentials.key_id)
        print(f"embedded local venue: REST {rest_url}, websockets {ws_url} ({config.sim.driver} market)", flush=True)
    else:
        rest_url = config.venue.rest_url or "https://fapi.binance.com"
        ws_url = config.venue.ws_url or "wss://fstream.binance.com"
        ws_api_url = config.venue.ws_api_url or BINANCE_WS_API_URL
        ssl_context = None
        credentials = config.credentials(config.symbol_names[0])
    from marketmaker.logs import configure_logging

    # Under the dashboard only warnings are logged (they would tear the live screen otherwise).
    configure_logging(
        level=logging.WARNING if dashboard else logging.INFO, secrets=(credentials.api_key, credentials.secret)
    )
    journal = Journal(config.journal.path, flush_interval_ms=config.journal.flush_interval_ms)
    if pinning is not None:
        loop_cpu, writer_cpus = pinning
        if writer_cpus:
            journal.pin_writer(writer_cpus)
        print(
            f"event loop pinned to CPU {loop_cpu}; journal writer on {sorted(writer_cpus) or 'the same CPU'}",
            flush=True,
        )
    engine = LiveEngine(
        config,
        rest_url=rest_url,
        ws_url=ws_url,
        ws_api_url=ws_api_url,
        credentials=credentials,
        ssl_context=ssl_context,
        journal=journal,
        out=None if dashboard else sys.stdout,
    )

    def rejected(error: ConfigError) -> None:
        print(f"config edit rejected, the running config is kept: {error}", flush=True)

    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    try:
        await engine.start()
        orders_via = "the websocket API" if engine.client is not None and engine.client.order_websocket_open else "REST"
        print(
            f"quoting {', '.join(config.symbol_names)}; orders over {orders_via}; journal {config.journal.path}",
            flush=True,
        )
        screen = None
        if dashboard:
            from marketmaker.dashboard import run_dashboard

            screen = asyncio.create_task(run_dashboard(engine, config.dashboard.refresh_s))
        async with ConfigWatcher(path, engine.apply_config, rejected, config=config, base_dir=base_dir):
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(stop.wait(), duration)
        if screen is not None:
            screen.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await screen
        print("stopping: cancelling all our orders", flush=True)
        summary = await engine.stop()
    finally:
        journal.close()
        if venue is not None:
            await venue.close()
    print(summary.render(), flush=True)
    if venue is not None:
        volume = sum(quantity for _, quantity in venue_fills)
        print(f"the embedded venue's fills of our account: {len(venue_fills)} (volume {volume:g})", flush=True)
    return 0 if summary.open_orders_at_venue == 0 else 1


def venue_fill_ledger(venue: LocalVenue, account_id: str) -> list[tuple[str, float]]:
    """The venue's own record of our fills, (trade id, quantity), filled as they happen: what the
    journal's fills must equal."""
    from marketmaker.sim.engine import OrderEvent

    ledger: list[tuple[str, float]] = []

    def record(event: object) -> None:
        if isinstance(event, OrderEvent) and event.account_id == account_id and event.execution_type == "TRADE":
            ledger.append((str(event.trade_id), float(event.last_filled_qty)))

    venue.engine.subscribe(record)
    return ledger


if __name__ == "__main__":
    sys.exit(main())
