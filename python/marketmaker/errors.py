"""Every error marketmaker raises derives from :class:`MarketMakerError`.

The classes are defined in the compiled core (so Rust errors map to them variant by variant)
and re-exported here; pure-Python errors share the same base.
"""

from __future__ import annotations

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
    "InvalidConfigError",
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


class InvalidConfigError(ConfigError):
    """A configuration value is wrong: the file, the key path, the line and what was expected.

    ``str(error)`` reads ``config.toml:14: risk.max_position: expected a number >= 0, got -1``;
    the parts are kept as attributes. The message never contains a secret.

    Attributes
    ----------
    file : str
        The configuration file (``<string>`` for text that came from no file).
    key : str | None
        The key path, e.g. ``risk.max_position`` or ``bps[1][1]``; None for a TOML syntax error.
    line : int | None
        The line where the key (or the nearest written parent table) is written.
    message : str
        What is wrong and what is expected.
    """

    def __init__(self, message: str, *, file: str, key: str | None, line: int | None) -> None:
        self.file = file
        self.key = key
        self.line = line
        self.message = message
        where = file if line is None else f"{file}:{line}"
        super().__init__(f"{where}: {message}" if key is None else f"{where}: {key}: {message}")
