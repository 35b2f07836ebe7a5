"""Market data from the venues: connections through cryptofeed, the depth text handed raw to the
compiled core (see :mod:`marketmaker.feeds.binance` and ``docs/market-data.md``)."""

from __future__ import annotations

from marketmaker.feeds.binance import (
    DEPTH_SPEEDS,
    SNAPSHOT_LIMITS,
    BinanceMarketData,
    MarketDataError,
    SymbolFeedStats,
)

__all__ = ["DEPTH_SPEEDS", "SNAPSHOT_LIMITS", "BinanceMarketData", "MarketDataError", "SymbolFeedStats"]
