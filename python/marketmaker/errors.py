"""Every error marketmaker raises derives from :class:`MarketMakerError`.

The classes are defined in the compiled core (so Rust errors map to them variant by variant)
and re-exported here; pure-Python errors share the same base.
"""

from marketmaker._core import (
    ConfigError,
    DuplicateSymbolError,
    InvalidInputError,
    InvalidOrderError,
    InvalidParameterError,
    InvalidPriceError,
    InvalidSizeError,
    InvalidTickSizeError,
    MalformedMessageError,
    MarketMakerError,
    OffTickError,
    SequenceGapError,
    UnknownSymbolError,
)

__all__ = [
    "ConfigError",
    "DuplicateSymbolError",
    "InvalidInputError",
    "InvalidOrderError",
    "InvalidParameterError",
    "InvalidPriceError",
    "InvalidSizeError",
    "InvalidTickSizeError",
    "MalformedMessageError",
    "MarketMakerError",
    "OffTickError",
    "SequenceGapError",
    "UnknownSymbolError",
]
