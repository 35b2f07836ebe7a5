"""The configuration: ``config.toml`` read, type- and range-checked, into frozen dataclasses.

The original bot's top-level keys keep their meaning and format (``exchange``, ``symbols``,
``api_keys``, ``balances``, ``leverage``, ``orders_per_side``, ``final_order_distance``,
``depths``, ``rate_limit``, ``tick_window``, ``bps``); tables add the rest: ``[strategy]``,
``[features]``, ``[risk]``, ``[orders]``, ``[venue]``, ``[sim]``, ``[journal]``,
``[dashboard]``. Every key is documented in ``docs/configuration.md``.

Validation builds the compiled core's objects (``QuoteGenerator``, ``FeatureEngine``,
``RiskGate``, ``RateLimiter``, ``OrderPlanner``) from the values, so a parameter the core
rejects is reported at load with its key and line, and the live loop builds the same objects
through :class:`Config`'s methods without re-implementing the mapping.

Secrets: ``api_keys`` entries may be ``env:VAR`` references (resolved from the environment at
load) or, as in the original bot, written in the file (allowed, with a :class:`ConfigWarning`
when the file is readable by group or others). For ``exchange = "sim"`` the local venue makes
its own credentials, so an ``env:`` reference whose variable is not set is not an error there:
:meth:`Config.credentials` raises when asked for it instead.
"""

from __future__ import annotations

import dataclasses
import difflib
import functools
import hashlib
import json
import logging
import math
import os
import re
import stat
import sys
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, NoReturn, TypeVar

from marketmaker._core import FeatureEngine, OrderPlanner, QuoteGenerator, RateLimiter, RiskGate
from marketmaker.credentials import ApiCredentials, key_id_of
from marketmaker.errors import InvalidConfigError, MarketMakerError
from marketmaker.toml_lines import KeyLines

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = [
    "DEFAULT_CONFIG_NAME",
    "ApiKeyConfig",
    "Config",
    "ConfigLocation",
    "ConfigWarning",
    "DashboardConfig",
    "FeatureConfig",
    "JournalConfig",
    "OrdersConfig",
    "RiskConfig",
    "SimConfig",
    "StrategyConfig",
    "SymbolConfig",
    "VenueConfig",
    "find_config",
    "load_config",
    "packaged_default_config",
    "parse_config",
]

logger = logging.getLogger(__name__)

#: The file looked for in the working directory.
DEFAULT_CONFIG_NAME = "config.toml"

EXCHANGES = ("sim", "binance", "bybit")
MODELS = ("ladder", "avellaneda_stoikov", "glft")
SIM_DRIVERS = ("synthetic", "replay")
#: How places and cancels go to the venue: its websocket API (a signed frame per order on an
#: open connection) or REST (an HTTP request per batch).
ORDER_APIS = ("websocket", "rest")

# Ladder parameters that the original bot's top-level keys set; [strategy.params] may not
# repeat them (one value, one place).
_LADDER_SEED_PARAMS = ("bps", "orders_per_side", "final_order_distance", "leverage")
_SYMBOL_PATTERN = re.compile(r"[A-Z0-9]{2,30}")
_PREFIX_PATTERN = re.compile(r"[A-Za-z0-9_-]{1,14}")
_SECRET_TEXT = "***"

ParamValue = float | int | bool | str
_T = TypeVar("_T")


# -- value objects ---------------------------------------------------------------------------


@dataclass(frozen=True)
class ConfigWarning:
    """Something allowed but worth fixing (e.g. a secret in a file others can read)."""

    file: str
    key: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.key}: {self.message}"


@dataclass(frozen=True)
class SymbolConfig:
    """One traded symbol: its base half-spread (``bps``) and its quoting balance."""

    symbol: str
    bps: float
    balance: float


@dataclass(frozen=True)
class ApiKeyConfig:
    """One ``api_keys`` entry as written (``env:VAR`` or the literal text) and, when it could be
    resolved, the credentials. ``repr`` shows neither the key nor the secret."""

    symbol: str
    api_key_written: str = field(repr=False)
    secret_written: str = field(repr=False)
    resolved: ApiCredentials | None = field(repr=False, compare=False)

    @property
    def key_id(self) -> str | None:
        """The core's id of the key (``key-`` and 8 hex digits), None while unresolved."""
        return None if self.resolved is None else self.resolved.key_id

    def redacted(self) -> list[str]:
        """``[key, secret, symbol]`` safe to print: ``env:`` references as written, a literal key
        as its id, a literal secret as ``***``."""
        key = self.api_key_written if _is_env_reference(self.api_key_written) else key_id_of(self.api_key_written)
        secret = self.secret_written if _is_env_reference(self.secret_written) else _SECRET_TEXT
        return [key, secret, self.symbol]


@dataclass(frozen=True)
class StrategyConfig:
    """``[strategy]``: the quoting model, its own parameters and the fitting options.

    ``params`` holds ``[strategy.params]`` as written; the ladder's ``bps``,
    ``orders_per_side``, ``final_order_distance`` and ``leverage`` come from the top-level keys.
    """

    model: str = "ladder"
    params: Mapping[str, ParamValue] = field(default_factory=lambda: MappingProxyType({}))
    price_band: float = 0.0
    min_size: float = 0.0
    min_notional: float = 0.0


@dataclass(frozen=True)
class FeatureConfig:
    """``[features]``: the feature engine's settings (``depths`` and ``tick_window`` are
    top-level keys). ``weights`` is complete: the core's defaults with the file's values over
    them."""

    level_decay: float = 0.0
    ofi_levels: int = 5
    volatility_half_life_s: float = 30.0
    horizon_updates: int | None = None
    horizon_ms: float | None = None
    forgetting: float = 0.999
    prediction_scale_bps: float = 1.0
    weights: Mapping[str, float] = field(default_factory=lambda: MappingProxyType({}))
    dead_band: float = 0.2


@dataclass(frozen=True)
class RiskConfig:
    """``[risk]``: the risk gate's limits (0 turns a limit off), applied to each symbol, and
    ``[risk.symbols.<SYMBOL>]`` tables that replace some of them for one symbol (a position
    limit in BTC means nothing for DOGE)."""

    max_position: float = 0.0
    max_position_notional: float = 0.0
    max_order_size: float = 0.0
    max_open_orders: int = 0
    max_drawdown: float = 0.0
    stale_book_ms: float = 5000.0
    max_volatility: float = 0.0
    allow_reduce_only_when_halted: bool = False
    #: Symbol -> the limits it sets differently (only the keys written in its table).
    symbols: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def for_symbol(self, symbol: str | None) -> RiskConfig:
        """The limits that apply to ``symbol``: ``[risk]`` with its own table's keys replaced."""
        overrides = self.symbols.get(symbol, {}) if symbol is not None else {}
        return dataclasses.replace(self, **overrides, symbols={})


@dataclass(frozen=True)
class OrdersConfig:
    """``[orders]``: client order ids, requote tolerances and the rate limiter's other buckets
    (the batch-call rate is the top-level ``rate_limit``)."""

    client_id_prefix: str = "mm"
    requote_tolerance_bps: float = 1.0
    size_tolerance: float = 0.25
    weight_per_min: float = 2400.0
    orders_per_10s: float = 300.0
    orders_per_min: float = 1200.0
    cancel_reserve: float = 0.2
    min_order_life_ms: float = 0.0


@dataclass(frozen=True)
class VenueConfig:
    """``[venue]``: endpoints of a real venue (empty: the venue module's official ones; unused
    for ``exchange = "sim"``), how places and cancels are sent (``order_api``: the websocket
    API, or REST), the signed requests' ``recvWindow``, and how many HTTP connections the order
    client keeps open (warm) so that no request waits for a new one."""

    rest_url: str = ""
    ws_url: str = ""
    ws_api_url: str = ""
    order_api: Literal["websocket", "rest"] = "websocket"
    recv_window_ms: int = 5000
    http_connections: int = 24


@dataclass(frozen=True)
class SimConfig:
    """``[sim]``: the embedded local venue's market driver.

    ``synthetic`` holds ``[sim.synthetic]`` (market parameters such as ``initial_price`` or
    ``volatility``) as typed numbers; the venue checks the names when it starts.
    """

    driver: Literal["synthetic", "replay"] = "synthetic"
    seed: int = 1
    recording: Path | None = None
    replay_speed: float = 1.0
    synthetic: Mapping[str, float | int] = field(default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class JournalConfig:
    """``[journal]``: where the SQLite journal is and how often it is written."""

    path: Path
    snapshot_interval_s: float = 1.0
    flush_interval_ms: float = 200.0


@dataclass(frozen=True)
class DashboardConfig:
    """``[dashboard]``: the terminal dashboard and the periodic status line."""

    enabled: bool = True
    refresh_s: float = 0.5
    status_line_s: float = 10.0


@dataclass(frozen=True)
class Config:
    """A validated configuration. Build it with :func:`load_config` or :func:`parse_config`.

    Examples
    --------
    >>> config = parse_config('''
    ... exchange = "sim"
    ... symbols = ["BTCUSDT"]
    ... balances = [["BTCUSDT", 1000.0]]
    ... bps = [["BTCUSDT", 4.0]]
    ... ''')
    >>> config.symbol("BTCUSDT").bps
    4.0
    >>> config.quote_generator("BTCUSDT", tick_size=0.1, lot_size=0.001).params["bps"]
    4.0
    """

    source: str = field(compare=False)
    exchange: str
    symbols: tuple[SymbolConfig, ...]
    api_keys: tuple[ApiKeyConfig, ...]
    leverage: float
    orders_per_side: int
    final_order_distance: float
    depths: tuple[int, ...]
    rate_limit: float
    tick_window: int
    strategy: StrategyConfig
    features: FeatureConfig
    risk: RiskConfig
    orders: OrdersConfig
    venue: VenueConfig
    sim: SimConfig
    journal: JournalConfig
    dashboard: DashboardConfig
    warnings: tuple[ConfigWarning, ...] = field(default=(), compare=False)

    @property
    def symbol_names(self) -> list[str]:
        """The configured symbols, in the file's order."""
        return [entry.symbol for entry in self.symbols]

    def symbol(self, symbol: str) -> SymbolConfig:
        """The settings of ``symbol``.

        Raises
        ------
        KeyError
            When ``symbol`` is not configured.
        """
        for entry in self.symbols:
            if entry.symbol == symbol:
                return entry
        raise KeyError(f"{symbol!r} is not a configured symbol ({', '.join(self.symbol_names)})")

    def credentials(self, symbol: str) -> ApiCredentials:
        """The API credentials of ``symbol``.

        Raises
        ------
        ConfigError
            When ``api_keys`` has no entry for ``symbol``, or (``exchange = "sim"`` only) its
            ``env:`` variables were not set at load.
        """
        for index, entry in enumerate(self.api_keys):
            if entry.symbol == symbol:
                if entry.resolved is None:
                    unset = [
                        text[4:]
                        for text in (entry.api_key_written, entry.secret_written)
                        if _is_env_reference(text) and not os.environ.get(text[4:])
                    ]
                    raise InvalidConfigError(
                        f"environment variable {', '.join(unset)} was not set when the config was loaded",
                        file=self.source,
                        key=f"api_keys[{index}]",
                        line=None,
                    )
                return entry.resolved
        raise InvalidConfigError(f"no entry for {symbol}", file=self.source, key="api_keys", line=None)

    # -- the core's objects ---------------------------------------------------------------------

    def quote_params(self, symbol: str) -> dict[str, ParamValue]:
        """The model parameters of ``symbol``'s quote generator: ``[strategy.params]`` plus, for
        the ladder, ``bps`` (per symbol), ``orders_per_side``, ``final_order_distance`` and
        ``leverage``; ``orders_per_side`` for the other models. Complete: after a reload,
        ``generator.set_params(config.strategy.model, **config.quote_params(symbol))`` leaves
        nothing of the old parameters."""
        written: dict[str, ParamValue] = dict(self.strategy.params)
        written["orders_per_side"] = self.orders_per_side
        if self.strategy.model == "ladder":
            written["bps"] = self.symbol(symbol).bps
            written["final_order_distance"] = self.final_order_distance
            written["leverage"] = self.leverage
        defaults = QuoteGenerator(self.strategy.model, tick_size=1.0, lot_size=1.0).params
        return {**defaults, **written}

    def quote_generator(
        self,
        symbol: str,
        *,
        tick_size: float | str,
        lot_size: float | str,
        min_size: float = 0.0,
        min_notional: float = 0.0,
    ) -> QuoteGenerator:
        """A quote generator for ``symbol`` on the instrument's grids. ``min_size`` and
        ``min_notional`` are the venue's; the larger of them and ``[strategy]``'s is used."""
        return QuoteGenerator(
            self.strategy.model,
            tick_size=tick_size,
            lot_size=lot_size,
            min_size=max(min_size, self.strategy.min_size),
            min_notional=max(min_notional, self.strategy.min_notional),
            price_band=self.strategy.price_band,
            **self.quote_params(symbol),
        )

    def feature_engine(self) -> FeatureEngine:
        """A feature engine with ``depths``, ``tick_window`` and ``[features]``."""
        features = self.features
        return FeatureEngine(
            list(self.depths),
            self.tick_window,
            level_decay=features.level_decay,
            ofi_levels=features.ofi_levels,
            volatility_half_life_s=features.volatility_half_life_s,
            horizon_updates=features.horizon_updates,
            horizon_ms=features.horizon_ms,
            forgetting=features.forgetting,
            prediction_scale_bps=features.prediction_scale_bps,
            weights=dict(features.weights),
            dead_band=features.dead_band,
        )

    def risk_gate(self, symbol: str | None = None) -> RiskGate:
        """A risk gate with ``[risk]``'s limits, as ``[risk.symbols.<symbol>]`` changes them."""
        risk = self.risk.for_symbol(symbol)
        return RiskGate(
            max_position=risk.max_position,
            max_position_notional=risk.max_position_notional,
            max_order_size=risk.max_order_size,
            max_open_orders=risk.max_open_orders,
            max_drawdown=risk.max_drawdown,
            stale_book_ms=risk.stale_book_ms,
            max_volatility=risk.max_volatility,
            allow_reduce_only_when_halted=risk.allow_reduce_only_when_halted,
        )

    def rate_limiter(self) -> RateLimiter:
        """A rate limiter: ``rate_limit`` batch calls per second and ``[orders]``'s buckets."""
        return RateLimiter(
            self.rate_limit,
            weight_per_min=self.orders.weight_per_min,
            orders_per_10s=self.orders.orders_per_10s,
            orders_per_min=self.orders.orders_per_min,
            cancel_reserve=self.orders.cancel_reserve,
        )

    def order_planner(self, run_tag: str = "", *, supports_amend: bool = False, batch_size: int = 5) -> OrderPlanner:
        """An order planner whose client ids start with ``client_id_prefix`` + ``run_tag``.

        ``run_tag`` (up to 8 characters of ``[A-Za-z0-9_-]``) tells this run's orders from an
        earlier run's; ``supports_amend`` and ``batch_size`` are the venue's (Binance 5, Bybit 10).
        """
        return OrderPlanner(
            self.orders.client_id_prefix + run_tag,
            requote_tolerance_bps=self.orders.requote_tolerance_bps,
            size_tolerance=self.orders.size_tolerance,
            supports_amend=supports_amend,
            batch_size=batch_size,
        )

    # -- printing ------------------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """The configuration as nested plain values in the file's layout, secrets redacted
        (``env:VAR`` references as written, literal keys as their ``key-`` id, literal
        secrets as ``***``)."""
        features = self.features
        sim = self.sim
        return {
            "exchange": self.exchange,
            "symbols": self.symbol_names,
            "api_keys": [entry.redacted() for entry in self.api_keys],
            "balances": [[entry.symbol, entry.balance] for entry in self.symbols],
            "leverage": self.leverage,
            "orders_per_side": self.orders_per_side,
            "final_order_distance": self.final_order_distance,
            "depths": list(self.depths),
            "rate_limit": self.rate_limit,
            "tick_window": self.tick_window,
            "bps": [[entry.symbol, entry.bps] for entry in self.symbols],
            "strategy": {
                "model": self.strategy.model,
                "price_band": self.strategy.price_band,
                "min_size": self.strategy.min_size,
                "min_notional": self.strategy.min_notional,
                "params": dict(self.strategy.params),
            },
            "features": {
                "level_decay": features.level_decay,
                "ofi_levels": features.ofi_levels,
                "volatility_half_life_s": features.volatility_half_life_s,
                **({} if features.horizon_updates is None else {"horizon_updates": features.horizon_updates}),
                **({} if features.horizon_ms is None else {"horizon_ms": features.horizon_ms}),
                "forgetting": features.forgetting,
                "prediction_scale_bps": features.prediction_scale_bps,
                "dead_band": features.dead_band,
                "weights": dict(features.weights),
            },
            "risk": {
                **{name: value for name, value in _fields_of(self.risk).items() if name != "symbols"},
                **({"symbols": {s: dict(o) for s, o in self.risk.symbols.items()}} if self.risk.symbols else {}),
            },
            "orders": _fields_of(self.orders),
            "venue": _fields_of(self.venue),
            "sim": {
                "driver": sim.driver,
                "seed": sim.seed,
                **({} if sim.recording is None else {"recording": str(sim.recording)}),
                "replay_speed": sim.replay_speed,
                "synthetic": dict(sim.synthetic),
            },
            "journal": {
                "path": str(self.journal.path),
                "snapshot_interval_s": self.journal.snapshot_interval_s,
                "flush_interval_ms": self.journal.flush_interval_ms,
            },
            "dashboard": _fields_of(self.dashboard),
        }

    def to_toml(self) -> str:
        """The resolved configuration as TOML text, secrets redacted (what ``check-config``
        prints); it parses back to the same configuration when no secret was literal."""
        return _render_toml(self.to_dict())

    def fingerprint(self) -> str:
        """A SHA-256 of the redacted configuration (the journal's ``config_hash``)."""
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()


def _fields_of(value: Any) -> dict[str, Any]:
    return {item.name: getattr(value, item.name) for item in dataclasses.fields(value)}


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return repr(value)
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, list):
        return "[" + ", ".join(_toml_value(item) for item in value) + "]"
    raise TypeError(f"no TOML form for {type(value).__name__}")


def _render_toml(mapping: Mapping[str, Any], table: str = "") -> str:
    lines = [f"{key} = {_toml_value(value)}" for key, value in mapping.items() if not isinstance(value, Mapping)]
    text = ""
    if table and (lines or not any(isinstance(value, Mapping) for value in mapping.values())):
        text += f"\n[{table}]\n"
    text += "".join(line + "\n" for line in lines)
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            text += _render_toml(value, f"{table}.{key}" if table else key)
    return text


def _is_env_reference(text: str) -> bool:
    return text.startswith("env:")


# -- where the configuration comes from ------------------------------------------------------


@dataclass(frozen=True)
class ConfigLocation:
    """Which configuration file is used, and the folder its relative paths start from."""

    path: Path
    is_packaged_default: bool
    base_dir: Path

    def describe(self) -> str:
        """One line saying which file is used."""
        if self.is_packaged_default:
            return (
                f"no {DEFAULT_CONFIG_NAME} in {self.base_dir}: using the packaged default "
                f"(identical to the repository's {DEFAULT_CONFIG_NAME}), paths relative to {self.base_dir}"
            )
        return f"using {self.path}"


def packaged_default_config() -> Path:
    """The default configuration shipped in the package (a copy of the repository's
    ``config.toml``)."""
    return Path(str(resources.files("marketmaker") / "default_config.toml"))


def find_config(cwd: Path | None = None) -> ConfigLocation:
    """``<cwd>/config.toml`` if it exists, else the packaged default with paths relative to
    ``cwd``.

    Examples
    --------
    >>> import tempfile
    >>> find_config(Path(tempfile.mkdtemp())).is_packaged_default
    True
    """
    folder = (cwd or Path.cwd()).resolve()
    candidate = folder / DEFAULT_CONFIG_NAME
    if candidate.is_file():
        return ConfigLocation(candidate, False, folder)
    return ConfigLocation(packaged_default_config(), True, folder)


def load_config(path: str | Path, *, base_dir: Path | None = None) -> Config:
    """Reads and validates a configuration file.

    Parameters
    ----------
    path : str | Path
        The TOML file.
    base_dir : Path, optional
        Where relative paths (journal, recording) start; the file's folder by default.

    Raises
    ------
    InvalidConfigError
        With the file, the key path, the line and what was expected.
    """
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as error:
        raise InvalidConfigError(
            f"cannot read the file ({error.strerror})", file=str(path), key=None, line=None
        ) from None
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise InvalidConfigError(f"expected UTF-8 text ({error.reason})", file=str(path), key=None, line=None) from None
    readable_by_others = bool(path.stat().st_mode & (stat.S_IRGRP | stat.S_IROTH))
    return parse_config(
        text,
        source=str(path),
        base_dir=base_dir or path.resolve().parent,
        readable_by_others=readable_by_others,
    )


def parse_config(
    text: str, *, source: str = "<string>", base_dir: Path | None = None, readable_by_others: bool = False
) -> Config:
    """Validates configuration text.

    Parameters
    ----------
    text : str
        The TOML document.
    source : str
        The file name used in errors and warnings.
    base_dir : Path, optional
        Where relative paths start (the working directory by default).
    readable_by_others : bool
        Whether the file can be read by group or others (a literal secret then warns).

    Raises
    ------
    InvalidConfigError
        With the file, the key path, the line and what was expected.
    """
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        line = _decode_error_line(str(error), text)
        raise InvalidConfigError(f"expected valid TOML ({error})", file=source, key=None, line=line) from None
    reader = _Reader(source, KeyLines(text), base_dir or Path.cwd())
    return reader.config(data, readable_by_others=readable_by_others)


def _decode_error_line(message: str, text: str) -> int | None:
    """The line of a ``tomllib`` error: ``(at line N, column M)``, or the last line for an error
    ``at end of document``."""
    match = re.search(r"line (\d+)", message)
    if match:
        return int(match.group(1))
    return text.count("\n") + 1 if "end of document" in message else None


# -- validation ------------------------------------------------------------------------------

_TOP_LEVEL = (
    "exchange",
    "symbols",
    "api_keys",
    "balances",
    "leverage",
    "orders_per_side",
    "final_order_distance",
    "depths",
    "rate_limit",
    "tick_window",
    "bps",
    "strategy",
    "features",
    "risk",
    "orders",
    "venue",
    "sim",
    "journal",
    "dashboard",
)


def _describe(value: object) -> str:
    """A value for an error message (strings quoted, tables and arrays by kind)."""
    if isinstance(value, dict):
        return "a table"
    if isinstance(value, list):
        return f"an array of {len(value)}"
    if isinstance(value, str):
        return json.dumps(value, ensure_ascii=False)
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value)


class _Reader:
    """Reads one document, failing with the file, key path and line of the first problem."""

    def __init__(self, source: str, lines: KeyLines, base_dir: Path) -> None:
        self.source = source
        self.lines = lines
        self.base_dir = base_dir
        self.warnings: list[ConfigWarning] = []
        # (array name, symbol) -> the entry's index in a [[symbol, value], ...] array as written
        self.written_index: dict[tuple[str, str], int] = {}

    def fail(self, key: str, message: str) -> NoReturn:
        raise InvalidConfigError(message, file=self.source, key=key, line=self.lines.line_of(key))

    def warn(self, key: str, message: str) -> None:
        self.warnings.append(ConfigWarning(self.source, key, self.lines.line_of(key), message))

    # -- shapes --

    def known_keys(self, table: Mapping[str, Any], prefix: str, allowed: Sequence[str]) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = f"did you mean {close[0]!r}? " if close else ""
                self.fail(f"{prefix}{key}", f"unknown key; {hint}expected one of: {', '.join(allowed)}")

    def table(self, parent: Mapping[str, Any], name: str, path: str) -> dict[str, Any]:
        value = parent.get(name, {})
        if not isinstance(value, dict):
            self.fail(path, f"expected a table ([{path}]), got {_describe(value)}")
        return value

    def array(self, value: object, key: str, what: str) -> list[Any]:
        if not isinstance(value, list):
            self.fail(key, f"expected an array of {what}, got {_describe(value)}")
        return value

    # -- scalars --

    def number(
        self,
        table: Mapping[str, Any],
        name: str,
        key: str,
        default: float | None,
        *,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
    ) -> float:
        value = table.get(name, default)
        if value is None:
            self.fail(key, "a required key is missing: expected a number")
        return self.check_number(value, key, minimum=minimum, above=above, maximum=maximum)

    def check_number(
        self,
        value: object,
        key: str,
        *,
        minimum: float | None = None,
        above: float | None = None,
        maximum: float | None = None,
    ) -> float:
        bounds = []
        if minimum is not None:
            bounds.append(f">= {minimum:g}")
        if above is not None:
            bounds.append(f"> {above:g}")
        if maximum is not None:
            bounds.append(f"<= {maximum:g}")
        expected = "a finite number" + (" " + " and ".join(bounds) if bounds else "")
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            self.fail(key, f"expected {expected}, got {_describe(value)}")
        if (
            (minimum is not None and value < minimum)
            or (above is not None and value <= above)
            or (maximum is not None and value > maximum)
        ):
            self.fail(key, f"expected {expected}, got {_describe(value)}")
        return float(value)

    def integer(
        self,
        table: Mapping[str, Any],
        name: str,
        key: str,
        default: int | None,
        *,
        minimum: int,
        maximum: int | None = None,
    ) -> int:
        value = table.get(name, default)
        if value is None:
            self.fail(key, "a required key is missing: expected an integer")
        return self.check_integer(value, key, minimum=minimum, maximum=maximum)

    def check_integer(self, value: object, key: str, *, minimum: int, maximum: int | None = None) -> int:
        expected = f"an integer >= {minimum}" + ("" if maximum is None else f" and <= {maximum}")
        if isinstance(value, bool) or not isinstance(value, int):
            self.fail(key, f"expected {expected}, got {_describe(value)}")
        if value < minimum or (maximum is not None and value > maximum):
            self.fail(key, f"expected {expected}, got {_describe(value)}")
        return value

    def boolean(self, table: Mapping[str, Any], name: str, key: str, default: bool) -> bool:
        value = table.get(name, default)
        if not isinstance(value, bool):
            self.fail(key, f"expected true or false, got {_describe(value)}")
        return value

    def string(
        self,
        table: Mapping[str, Any],
        name: str,
        key: str,
        default: str | None,
        *,
        choices: Sequence[str] | None = None,
    ) -> str:
        value = table.get(name, default)
        if value is None:
            self.fail(
                key, "a required key is missing: expected a string" + (f" ({' | '.join(choices)})" if choices else "")
            )
        if not isinstance(value, str):
            self.fail(key, f"expected a string, got {_describe(value)}")
        if choices is not None and value not in choices:
            close = difflib.get_close_matches(value, choices, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            self.fail(key, f"expected one of {', '.join(map(repr, choices))}, got {_describe(value)}{hint}")
        return value

    def core(self, build: Callable[[], _T], keys: Mapping[str, str], fallback: str) -> _T:
        """Builds a core object; its error is reported at the key its message names first."""
        try:
            return build()
        except MarketMakerError as error:
            message = str(error)
            named = [
                (match.start(), key)
                for name, key in keys.items()
                if (match := re.search(rf"(?<![A-Za-z0-9_]){re.escape(name)}(?![A-Za-z0-9_])", message))
            ]
            key = min(named)[1] if named else fallback
            self.fail(key, f"rejected by the core: {message}")

    # -- the document --

    def config(self, data: dict[str, Any], *, readable_by_others: bool) -> Config:
        self.known_keys(data, "", _TOP_LEVEL)
        exchange = self.string(data, "exchange", "exchange", None, choices=EXCHANGES)
        names = self.symbols(data)
        bps = self.per_symbol(data, "bps", names, above=0.0, maximum=10_000.0)
        balances = self.per_symbol(data, "balances", names, above=0.0, maximum=None)
        symbols = tuple(SymbolConfig(name, bps[name], balances[name]) for name in names)
        api_keys = self.api_keys(data, names, exchange, readable_by_others)
        config = Config(
            source=self.source,
            exchange=exchange,
            symbols=symbols,
            api_keys=api_keys,
            leverage=self.number(data, "leverage", "leverage", 5.0, above=0.0, maximum=125.0),
            orders_per_side=self.integer(data, "orders_per_side", "orders_per_side", 5, minimum=1, maximum=100),
            final_order_distance=self.number(data, "final_order_distance", "final_order_distance", 10.0, minimum=1.0),
            depths=self.depths(data),
            rate_limit=self.number(data, "rate_limit", "rate_limit", 10.0, above=0.0),
            tick_window=self.integer(data, "tick_window", "tick_window", 100, minimum=1),
            strategy=self.strategy(self.table(data, "strategy", "strategy")),
            features=self.features(self.table(data, "features", "features")),
            risk=self.risk(self.table(data, "risk", "risk"), names),
            orders=self.orders(self.table(data, "orders", "orders")),
            venue=self.venue(self.table(data, "venue", "venue")),
            sim=self.sim(self.table(data, "sim", "sim")),
            journal=self.journal(self.table(data, "journal", "journal")),
            dashboard=self.dashboard(self.table(data, "dashboard", "dashboard")),
        )
        config = self.with_complete_weights(config)
        self.build_core_objects(config)
        for warning in self.warnings:  # logged once the whole file is valid
            logger.warning("%s", warning)
        return dataclasses.replace(config, warnings=tuple(self.warnings))

    def symbols(self, data: Mapping[str, Any]) -> list[str]:
        if "symbols" not in data:
            self.fail("symbols", 'a required key is missing: expected an array of symbols, e.g. ["BTCUSDT"]')
        values = self.array(data["symbols"], "symbols", "symbols")
        if not values:
            self.fail("symbols", "expected at least one symbol")
        names: list[str] = []
        for index, value in enumerate(values):
            key = f"symbols[{index}]"
            if not isinstance(value, str) or not _SYMBOL_PATTERN.fullmatch(value):
                self.fail(
                    key, f"expected a symbol of 2-30 capital letters and digits (e.g. BTCUSDT), got {_describe(value)}"
                )
            if value in names:
                self.fail(key, f"expected each symbol once, got {value} twice")
            names.append(value)
        return names

    def per_symbol(
        self, data: Mapping[str, Any], name: str, symbols: Sequence[str], *, above: float, maximum: float | None
    ) -> dict[str, float]:
        """``[[symbol, number], ...]`` (``bps``, ``balances``): one entry for every symbol."""
        if name not in data:
            self.fail(
                name,
                f'a required key is missing: expected [[symbol, number], ...] with every symbol, e.g. [["{symbols[0]}", 5.0]]',
            )
        values: dict[str, float] = {}
        for index, entry in enumerate(self.array(data[name], name, "[symbol, number] pairs")):
            key = f"{name}[{index}]"
            if not isinstance(entry, list) or len(entry) != 2:
                self.fail(key, f"expected a [symbol, number] pair, got {_describe(entry)}")
            symbol, value = entry
            if symbol not in symbols:
                self.fail(f"{key}[0]", f"expected a configured symbol ({', '.join(symbols)}), got {_describe(symbol)}")
            if symbol in values:
                self.fail(f"{key}[0]", f"expected one entry per symbol, {symbol} has two")
            values[symbol] = self.check_number(value, f"{key}[1]", above=above, maximum=maximum)
            self.written_index[(name, symbol)] = index
        missing = [symbol for symbol in symbols if symbol not in values]
        if missing:
            self.fail(name, f"expected an entry for every symbol, missing: {', '.join(missing)}")
        return values

    def api_keys(
        self, data: Mapping[str, Any], symbols: Sequence[str], exchange: str, readable_by_others: bool
    ) -> tuple[ApiKeyConfig, ...]:
        entries: list[ApiKeyConfig] = []
        for index, entry in enumerate(
            self.array(data.get("api_keys", []), "api_keys", "[key, secret, symbol] triples")
        ):
            key = f"api_keys[{index}]"
            if not isinstance(entry, list) or len(entry) != 3:
                self.fail(key, "expected a [key, secret, symbol] triple of strings")
            api_key, secret, symbol = entry
            for position, (part, what) in enumerate(((api_key, "API key"), (secret, "secret"))):
                if not isinstance(part, str) or not part:
                    self.fail(f"{key}[{position}]", f"expected the {what} as a non-empty string or env:VARIABLE")
            if symbol not in symbols:
                self.fail(f"{key}[2]", f"expected a configured symbol ({', '.join(symbols)}), got {_describe(symbol)}")
            if any(existing.symbol == symbol for existing in entries):
                self.fail(f"{key}[2]", f"expected one key per symbol, {symbol} has two")
            resolved_key = self.resolve(api_key, f"{key}[0]", required=exchange != "sim")
            resolved_secret = self.resolve(secret, f"{key}[1]", required=exchange != "sim")
            literal = [position for position, part in ((0, api_key), (1, secret)) if not _is_env_reference(part)]
            if literal and readable_by_others:
                self.warn(
                    f"{key}[{literal[-1]}]",
                    "a secret is written in a file that group or others can read: "
                    "use env:VARIABLE or chmod 600 the file",
                )
            credentials = None
            if resolved_key is not None and resolved_secret is not None:
                credentials = ApiCredentials(resolved_key, resolved_secret)
            entries.append(ApiKeyConfig(symbol, api_key, secret, credentials))
        if exchange != "sim":
            missing = [symbol for symbol in symbols if not any(entry.symbol == symbol for entry in entries)]
            if missing:
                self.fail(
                    "api_keys",
                    f"expected a [key, secret, symbol] entry for every symbol on {exchange}, missing: {', '.join(missing)}",
                )
        return tuple(entries)

    def resolve(self, written: str, key: str, *, required: bool) -> str | None:
        if not _is_env_reference(written):
            return written
        variable = written[4:]
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", variable):
            self.fail(key, f"expected env: followed by an environment variable name, got {_describe(written)}")
        value = os.environ.get(variable)
        if value:
            return value
        if required:
            self.fail(key, f"environment variable {variable} is not set (expected it to hold the value)")
        return None

    def depths(self, data: Mapping[str, Any]) -> tuple[int, ...]:
        values = self.array(data.get("depths", [5, 50]), "depths", "book depths")
        if not values:
            self.fail("depths", "expected at least one depth")
        depths = tuple(self.check_integer(value, f"depths[{index}]", minimum=1) for index, value in enumerate(values))
        for index in range(1, len(depths)):
            if depths[index] <= depths[index - 1]:
                self.fail(
                    f"depths[{index}]",
                    f"expected depths in strictly ascending order, got {depths[index]} after {depths[index - 1]}",
                )
        return depths

    def strategy(self, table: dict[str, Any]) -> StrategyConfig:
        self.known_keys(table, "strategy.", ("model", "params", "price_band", "min_size", "min_notional"))
        model = self.string(table, "model", "strategy.model", "ladder", choices=MODELS)
        params: dict[str, ParamValue] = {}
        for name, value in self.table(table, "params", "strategy.params").items():
            key = f"strategy.params.{name}"
            if name in _LADDER_SEED_PARAMS:
                self.fail(
                    key,
                    f"expected {name} at the top level of the file (the original bot's key), not in [strategy.params]",
                )
            if not isinstance(value, bool | int | float | str):
                self.fail(key, f"expected a number, true/false or a string, got {_describe(value)}")
            params[name] = value
        return StrategyConfig(
            model=model,
            params=MappingProxyType(params),
            price_band=self.number(table, "price_band", "strategy.price_band", 0.0, minimum=0.0, maximum=1.0),
            min_size=self.number(table, "min_size", "strategy.min_size", 0.0, minimum=0.0),
            min_notional=self.number(table, "min_notional", "strategy.min_notional", 0.0, minimum=0.0),
        )

    def features(self, table: dict[str, Any]) -> FeatureConfig:
        allowed = (
            "level_decay",
            "ofi_levels",
            "volatility_half_life_s",
            "horizon_updates",
            "horizon_ms",
            "forgetting",
            "prediction_scale_bps",
            "dead_band",
            "weights",
        )
        self.known_keys(table, "features.", allowed)
        weights: dict[str, float] = {}
        weight_names = tuple(FeatureEngine().weights)
        written_weights = self.table(table, "weights", "features.weights")
        self.known_keys(written_weights, "features.weights.", weight_names)
        for name, value in written_weights.items():
            weights[name] = self.check_number(value, f"features.weights.{name}")
        horizon_updates = table.get("horizon_updates")
        horizon_ms = table.get("horizon_ms")
        return FeatureConfig(
            level_decay=self.number(table, "level_decay", "features.level_decay", 0.0, minimum=0.0),
            ofi_levels=self.integer(table, "ofi_levels", "features.ofi_levels", 5, minimum=1),
            volatility_half_life_s=self.number(
                table, "volatility_half_life_s", "features.volatility_half_life_s", 30.0, above=0.0
            ),
            horizon_updates=None
            if horizon_updates is None
            else self.check_integer(horizon_updates, "features.horizon_updates", minimum=1),
            horizon_ms=None if horizon_ms is None else self.check_number(horizon_ms, "features.horizon_ms", above=0.0),
            forgetting=self.number(table, "forgetting", "features.forgetting", 0.999, above=0.0, maximum=1.0),
            prediction_scale_bps=self.number(
                table, "prediction_scale_bps", "features.prediction_scale_bps", 1.0, above=0.0
            ),
            weights=MappingProxyType(weights),
            dead_band=self.number(table, "dead_band", "features.dead_band", 0.2, minimum=0.0),
        )

    def risk(self, table: dict[str, Any], names: Sequence[str]) -> RiskConfig:
        defaults = RiskConfig()
        self.known_keys(table, "risk.", tuple(_fields_of(defaults)))
        base = self.risk_limits(table, "risk.", defaults)
        by_symbol: dict[str, dict[str, Any]] = {}
        for symbol, overrides in self.table(table, "symbols", "risk.symbols").items():
            path = f"risk.symbols.{symbol}"
            if symbol not in names:
                self.fail(path, f"{symbol!r} is not one of symbols ({', '.join(names)})")
            if not isinstance(overrides, dict):
                self.fail(path, f"expected a table ([{path}]) of risk limits, got {_describe(overrides)}")
            limits = tuple(name for name in _fields_of(defaults) if name != "symbols")
            self.known_keys(overrides, path + ".", limits)
            resolved = self.risk_limits(overrides, path + ".", base)
            by_symbol[symbol] = {name: getattr(resolved, name) for name in overrides}
        return dataclasses.replace(base, symbols=MappingProxyType(by_symbol))

    def risk_limits(self, table: dict[str, Any], prefix: str, defaults: RiskConfig) -> RiskConfig:
        """The limits written in ``table`` (keys under ``prefix``), ``defaults`` for the rest."""
        return RiskConfig(
            max_position=self.number(
                table, "max_position", f"{prefix}max_position", defaults.max_position, minimum=0.0
            ),
            max_position_notional=self.number(
                table,
                "max_position_notional",
                f"{prefix}max_position_notional",
                defaults.max_position_notional,
                minimum=0.0,
            ),
            max_order_size=self.number(
                table, "max_order_size", f"{prefix}max_order_size", defaults.max_order_size, minimum=0.0
            ),
            max_open_orders=self.integer(
                table, "max_open_orders", f"{prefix}max_open_orders", defaults.max_open_orders, minimum=0
            ),
            max_drawdown=self.number(
                table, "max_drawdown", f"{prefix}max_drawdown", defaults.max_drawdown, minimum=0.0
            ),
            stale_book_ms=self.number(
                table, "stale_book_ms", f"{prefix}stale_book_ms", defaults.stale_book_ms, above=0.0
            ),
            max_volatility=self.number(
                table, "max_volatility", f"{prefix}max_volatility", defaults.max_volatility, minimum=0.0
            ),
            allow_reduce_only_when_halted=self.boolean(
                table,
                "allow_reduce_only_when_halted",
                f"{prefix}allow_reduce_only_when_halted",
                defaults.allow_reduce_only_when_halted,
            ),
        )

    def orders(self, table: dict[str, Any]) -> OrdersConfig:
        defaults = OrdersConfig()
        self.known_keys(table, "orders.", tuple(_fields_of(defaults)))
        prefix = self.string(table, "client_id_prefix", "orders.client_id_prefix", defaults.client_id_prefix)
        if not _PREFIX_PATTERN.fullmatch(prefix):
            self.fail(
                "orders.client_id_prefix",
                f"expected 1-14 characters of A-Z, a-z, 0-9, '_', '-' (the run tag and a counter follow), got {_describe(prefix)}",
            )
        return OrdersConfig(
            client_id_prefix=prefix,
            requote_tolerance_bps=self.number(
                table,
                "requote_tolerance_bps",
                "orders.requote_tolerance_bps",
                defaults.requote_tolerance_bps,
                minimum=0.0,
            ),
            size_tolerance=self.number(
                table, "size_tolerance", "orders.size_tolerance", defaults.size_tolerance, minimum=0.0
            ),
            weight_per_min=self.number(
                table, "weight_per_min", "orders.weight_per_min", defaults.weight_per_min, above=0.0
            ),
            orders_per_10s=self.number(
                table, "orders_per_10s", "orders.orders_per_10s", defaults.orders_per_10s, above=0.0
            ),
            orders_per_min=self.number(
                table, "orders_per_min", "orders.orders_per_min", defaults.orders_per_min, above=0.0
            ),
            cancel_reserve=self.number(
                table, "cancel_reserve", "orders.cancel_reserve", defaults.cancel_reserve, minimum=0.0, maximum=0.9
            ),
            min_order_life_ms=self.number(
                table, "min_order_life_ms", "orders.min_order_life_ms", defaults.min_order_life_ms, minimum=0.0
            ),
        )

    def venue(self, table: dict[str, Any]) -> VenueConfig:
        self.known_keys(
            table, "venue.", ("rest_url", "ws_url", "ws_api_url", "order_api", "recv_window_ms", "http_connections")
        )
        rest_url = self.string(table, "rest_url", "venue.rest_url", "")
        ws_url = self.string(table, "ws_url", "venue.ws_url", "")
        ws_api_url = self.string(table, "ws_api_url", "venue.ws_api_url", "")
        if rest_url and not re.match(r"https?://[^/\s]+", rest_url):
            self.fail("venue.rest_url", f"expected an http:// or https:// URL (or nothing), got {_describe(rest_url)}")
        for key, url in (("ws_url", ws_url), ("ws_api_url", ws_api_url)):
            if url and not re.match(r"wss?://[^/\s]+", url):
                self.fail(f"venue.{key}", f"expected a ws:// or wss:// URL (or nothing), got {_describe(url)}")
        order_api = self.string(table, "order_api", "venue.order_api", "websocket", choices=ORDER_APIS)
        return VenueConfig(
            rest_url=rest_url,
            ws_url=ws_url,
            ws_api_url=ws_api_url,
            order_api="rest" if order_api == "rest" else "websocket",
            recv_window_ms=self.integer(
                table, "recv_window_ms", "venue.recv_window_ms", 5000, minimum=1, maximum=60_000
            ),
            http_connections=self.integer(
                table, "http_connections", "venue.http_connections", VenueConfig.http_connections, minimum=1, maximum=64
            ),
        )

    def sim(self, table: dict[str, Any]) -> SimConfig:
        self.known_keys(table, "sim.", ("driver", "seed", "recording", "replay_speed", "synthetic"))
        driver = self.string(table, "driver", "sim.driver", "synthetic", choices=SIM_DRIVERS)
        recording: Path | None = None
        if "recording" in table:
            written = self.string(table, "recording", "sim.recording", None)
            recording = (self.base_dir / Path(written).expanduser()).resolve()
        if driver == "replay":
            if recording is None:
                self.fail("sim.recording", 'a required key is missing: driver = "replay" needs the recording\'s path')
            if not recording.is_file():
                self.fail("sim.recording", f"expected an existing recording file, {recording} does not exist")
        synthetic: dict[str, float | int] = {}
        for name, value in self.table(table, "synthetic", "sim.synthetic").items():
            key = f"sim.synthetic.{name}"
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
                self.fail(key, f"expected a finite number, got {_describe(value)}")
            synthetic[name] = value
        return SimConfig(
            driver="replay" if driver == "replay" else "synthetic",
            seed=self.integer(table, "seed", "sim.seed", 1, minimum=0, maximum=2**63 - 1),
            recording=recording,
            replay_speed=self.number(table, "replay_speed", "sim.replay_speed", 1.0, above=0.0),
            synthetic=MappingProxyType(synthetic),
        )

    def journal(self, table: dict[str, Any]) -> JournalConfig:
        self.known_keys(table, "journal.", ("path", "snapshot_interval_s", "flush_interval_ms"))
        written = self.string(table, "path", "journal.path", "marketmaker-journal.sqlite")
        if not written:
            self.fail("journal.path", "expected a file path, got an empty string")
        return JournalConfig(
            path=(self.base_dir / Path(written).expanduser()).resolve(),
            snapshot_interval_s=self.number(
                table, "snapshot_interval_s", "journal.snapshot_interval_s", 1.0, above=0.0
            ),
            flush_interval_ms=self.number(
                table, "flush_interval_ms", "journal.flush_interval_ms", 200.0, above=0.0, maximum=10_000.0
            ),
        )

    def dashboard(self, table: dict[str, Any]) -> DashboardConfig:
        self.known_keys(table, "dashboard.", ("enabled", "refresh_s", "status_line_s"))
        return DashboardConfig(
            enabled=self.boolean(table, "enabled", "dashboard.enabled", True),
            refresh_s=self.number(table, "refresh_s", "dashboard.refresh_s", 0.5, above=0.0),
            status_line_s=self.number(table, "status_line_s", "dashboard.status_line_s", 10.0, above=0.0),
        )

    # -- the core's objects --

    def with_complete_weights(self, config: Config) -> Config:
        """The feature weights as the engine holds them: its defaults with the file's over them
        (a reload that drops a weight puts the default back)."""
        engine = self.core(config.feature_engine, self.feature_keys(), "features")
        features = dataclasses.replace(config.features, weights=MappingProxyType(engine.weights))
        return dataclasses.replace(config, features=features)

    def feature_keys(self) -> dict[str, str]:
        keys = {name: f"features.{name}" for name in _fields_of(FeatureConfig())}
        keys.update({name: f"features.weights.{name}" for name in FeatureEngine().weights})
        keys.update({"depths": "depths", "tick_window": "tick_window"})
        return keys

    def build_core_objects(self, config: Config) -> None:
        strategy_keys = {name: f"strategy.params.{name}" for name in config.strategy.params}
        strategy_keys.update({name: f"strategy.{name}" for name in ("price_band", "min_size", "min_notional", "model")})
        strategy_keys.update({name: name for name in _LADDER_SEED_PARAMS if name != "bps"})
        for entry in config.symbols:
            keys = {**strategy_keys, "bps": f"bps[{self.written_index[('bps', entry.symbol)]}][1]"}
            build = functools.partial(config.quote_generator, entry.symbol, tick_size=0.01, lot_size=0.001)
            self.core(build, keys, "strategy.model")
        limits = [name for name in _fields_of(config.risk) if name != "symbols"]
        self.core(config.risk_gate, {name: f"risk.{name}" for name in limits}, "risk")
        for symbol in config.risk.symbols:
            keys = {name: f"risk.symbols.{symbol}.{name}" for name in limits}
            self.core(functools.partial(config.risk_gate, symbol), keys, f"risk.symbols.{symbol}")
        limiter_keys = {
            name: f"orders.{name}" for name in ("weight_per_min", "orders_per_10s", "orders_per_min", "cancel_reserve")
        }
        self.core(config.rate_limiter, {**limiter_keys, "calls_per_s": "rate_limit"}, "rate_limit")
        planner_keys = {name: f"orders.{name}" for name in ("requote_tolerance_bps", "size_tolerance")}
        self.core(config.order_planner, {**planner_keys, "prefix": "orders.client_id_prefix"}, "orders")
