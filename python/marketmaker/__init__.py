"""marketmaker: market making on crypto perpetual futures with a compiled Rust core.

The core (``marketmaker._core``, built from ``rust/``) owns the shared market state: order
books kept in sync with the venue's sequencing rules, trade tapes and account state. Import
everything from here, never from ``marketmaker._core``.
"""

from marketmaker._core import (
    Account,
    BookStatus,
    FeatureEngine,
    Features,
    Fill,
    FillOutcome,
    MarketMaker,
    Order,
    OrderAction,
    OrderBook,
    OrderPlanner,
    OrderStatus,
    QuoteGenerator,
    Quotes,
    RateLimiter,
    RiskGate,
    Side,
    SnapshotApplied,
    Trade,
    TradeTape,
    TradeWindow,
    UpdateOutcome,
    __version__,
)
from marketmaker.credentials import ApiCredentials
from marketmaker.state import SharedState

__all__ = [
    "Account",
    "ApiCredentials",
    "BookStatus",
    "FeatureEngine",
    "Features",
    "Fill",
    "FillOutcome",
    "MarketMaker",
    "Order",
    "OrderAction",
    "OrderBook",
    "OrderPlanner",
    "OrderStatus",
    "QuoteGenerator",
    "Quotes",
    "RateLimiter",
    "RiskGate",
    "SharedState",
    "Side",
    "SnapshotApplied",
    "Trade",
    "TradeTape",
    "TradeWindow",
    "UpdateOutcome",
    "__version__",
]
