"""The live terminal dashboard of ``marketmaker-cli run`` (``rich``): one row per symbol with
the book's top, our quotes, position, PnL, key features, order and fill rates, rate-limit
headroom and feed health, refreshed in place. Runs only when the output is a terminal;
otherwise (or with ``--no-dashboard``) the engine prints the same content as status lines."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

from rich.console import Console
from rich.live import Live
from rich.table import Table

if TYPE_CHECKING:
    from marketmaker.engine import LiveEngine, SymbolStatus

__all__ = ["render", "run_dashboard"]


def _price(value: float | None) -> str:
    return "-" if value is None else f"{value:,.8g}"


def render(statuses: list[SymbolStatus], title: str = "marketmaker") -> Table:
    """The dashboard's table for these symbol states."""
    table = Table(title=title, expand=True)
    for column in (
        "symbol",
        "state",
        "book bid / ask",
        "our bid / ask",
        "position",
        "net PnL",
        "skew",
        "vol/√s",
        "imbalance",
        "open",
        "fills",
        "orders/s",
        "depth/s",
        "feed",
        "headroom calls/weight/orders",
    ):
        table.add_column(column, justify="left" if column in ("symbol", "state") else "right")
    for s in statuses:
        feed = f"{s.book_status.lower()} {s.last_depth_ms:.0f} ms"
        state = s.decision if s.ready else f"{s.decision} (warming)"
        table.add_row(
            s.symbol,
            state,
            f"{_price(s.best_bid)} / {_price(s.best_ask)}",
            f"{_price(s.our_bid)} / {_price(s.our_ask)}",
            f"{s.position:g}",
            f"[{'green' if s.net_pnl >= 0 else 'red'}]{s.net_pnl:,.4f}[/]",
            f"{s.skew:+.2f}",
            f"{s.volatility:.2e}",
            f"{s.imbalance:+.2f}",
            str(s.open_orders),
            f"{s.fills} ({s.fills_per_min:.1f}/min)",
            f"{s.orders_per_s:.1f}",
            f"{s.depth_per_s:.0f}",
            feed,
            " / ".join(f"{value:.0%}" for value in s.headroom),
        )
    return table


async def run_dashboard(engine: LiveEngine, refresh_s: float, console: Console | None = None) -> None:
    """Redraws the dashboard every ``refresh_s`` until cancelled."""
    console = console or Console()
    with Live(render(engine.symbol_status()), console=console, refresh_per_second=max(1.0, 1 / refresh_s)) as live:
        while True:
            await asyncio.sleep(refresh_s)
            live.update(render(engine.symbol_status()))
