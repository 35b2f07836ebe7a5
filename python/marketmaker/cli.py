"""``marketmaker-cli``: the command line.

Subcommands: ``check-config`` (validate a configuration and print it, secrets redacted) and
``report`` (summarise a journal, optionally plot it). More arrive with their issues (``run``,
``sim``, ``backtest``, ...); each is a subparser with its own handler function.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from marketmaker import __version__
from marketmaker.config import find_config, load_config
from marketmaker.errors import ConfigError
from marketmaker.journal import JournalError, plot_run, summarise

__all__ = ["main"]

#: The exit status of a command given an invalid configuration or journal.
EXIT_INVALID = 2


def _check_config(arguments: argparse.Namespace) -> int:
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


def _report(arguments: argparse.Namespace) -> int:
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
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    _add_check_config(subparsers)
    _add_report(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    arguments = parser.parse_args(argv)
    handler = getattr(arguments, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    status: int = handler(arguments)
    return status


if __name__ == "__main__":
    sys.exit(main())
