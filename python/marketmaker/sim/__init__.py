"""The embedded local venue: an exchange engine, the market around it, and (in the protocol
modules) the Binance USDⓈ-M protocol over it. See ``docs/venue.md``.

The engine (:mod:`marketmaker.sim.engine`) is the exchange; the drivers
(:mod:`marketmaker.sim.drivers`) move its market, synthetically or from a recording.
"""

from marketmaker.sim.engine import (
    AccountEvent,
    BalanceReport,
    BookDelta,
    Event,
    Exchange,
    Instrument,
    MarkPriceEvent,
    OrderEvent,
    OrderReport,
    PositionReport,
    TradePrint,
    VenueError,
)

__all__ = [
    "AccountEvent",
    "BalanceReport",
    "BookDelta",
    "Event",
    "Exchange",
    "Instrument",
    "MarkPriceEvent",
    "OrderEvent",
    "OrderReport",
    "PositionReport",
    "TradePrint",
    "VenueError",
]
