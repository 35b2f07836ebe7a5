"""``marketmaker-cli``: the command line. Subcommands arrive with their issues (``run``,
``sim``, ``backtest``, ...); today it reports the version and what the core holds."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from marketmaker import __version__

__all__ = ["main"]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="marketmaker-cli",
        description="Market making on crypto perpetual futures with a compiled Rust core.",
    )
    parser.add_argument("--version", action="version", version=f"marketmaker {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    parser.parse_args(argv)
    parser.print_help()
    return 0


if __name__ == "__main__":
    sys.exit(main())
