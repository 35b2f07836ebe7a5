"""Hot reload: watch the config file, validate each edit whole, and say what changed.

:class:`ConfigWatcher` watches the file's folder (editors often save by writing a new file and
renaming it over the old one) with ``watchfiles``. On an edit it reads and validates the whole
file; a valid configuration is delivered with its :class:`ConfigDiff` to ``on_change`` and
becomes the running one; an invalid edit is delivered to ``on_error`` (file, key, line) and the
running configuration is kept. Each changed key is classified: *live* keys (spreads, strategy,
feature weights and dead band, risk limits, ladder shape, rate limits) can be applied by the
running loop; *restart* keys (exchange, symbols, keys, venue, sim, journal, the feature
engine's windows, ...) take effect only after a restart, and the diff says so.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from watchfiles import awatch

from marketmaker.config import Config, load_config
from marketmaker.errors import ConfigError

__all__ = ["ConfigChange", "ConfigDiff", "ConfigWatcher", "diff_configs", "is_live_key"]

logger = logging.getLogger(__name__)

# Keys the running loop can apply without restarting feeds or losing orders: the quote
# generator takes new parameters and model (set_params), the feature engine new weights and
# dead band (set_skew), the planner new tolerances, and the risk gate and rate limiter are
# rebuilt from the new limits.
_LIVE_KEYS = (
    "bps",
    "orders_per_side",
    "final_order_distance",
    "rate_limit",
    "strategy",
    "features.weights",
    "features.dead_band",
    "risk",
    "orders.requote_tolerance_bps",
    "orders.size_tolerance",
    "orders.weight_per_min",
    "orders.orders_per_10s",
    "orders.orders_per_min",
    "orders.cancel_reserve",
    "orders.min_order_life_ms",
)


def is_live_key(key: str) -> bool:
    """Whether a change of ``key`` (a dotted path) can be applied without a restart.

    Examples
    --------
    >>> is_live_key("features.weights.imbalance"), is_live_key("features.tick_window")
    (True, False)
    >>> is_live_key("exchange")
    False
    """
    return any(key == live or key.startswith(live + ".") for live in _LIVE_KEYS)


@dataclass(frozen=True)
class ConfigChange:
    """One changed key, with its old and new values (secrets redacted; None when absent)."""

    key: str
    old: Any
    new: Any
    live: bool

    def __str__(self) -> str:
        when = "applied live" if self.live else "needs a restart"
        return f"{self.key}: {self.old!r} -> {self.new!r} ({when})"


@dataclass(frozen=True)
class ConfigDiff:
    """The changes between two configurations."""

    changes: tuple[ConfigChange, ...]

    @property
    def live(self) -> tuple[ConfigChange, ...]:
        """The changes the running loop applies."""
        return tuple(change for change in self.changes if change.live)

    @property
    def needs_restart(self) -> tuple[ConfigChange, ...]:
        """The changes that take effect only after a restart."""
        return tuple(change for change in self.changes if not change.live)

    def keys(self) -> list[str]:
        """The changed keys."""
        return [change.key for change in self.changes]

    def __bool__(self) -> bool:
        return bool(self.changes)


def _flatten(mapping: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    flat: dict[str, Any] = {}
    for key, value in mapping.items():
        if isinstance(value, Mapping):
            flat.update(_flatten(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def diff_configs(old: Config, new: Config) -> ConfigDiff:
    """The keys whose values differ between ``old`` and ``new``, in the file's order.

    Tables are compared key by key; arrays (``bps``, ``symbols``, ...) as a whole. Values are
    the redacted ones of :meth:`Config.to_dict`.
    """
    before = _flatten(old.to_dict())
    after = _flatten(new.to_dict())
    keys = list(before) + [key for key in after if key not in before]
    return ConfigDiff(
        tuple(
            ConfigChange(key, before.get(key), after.get(key), is_live_key(key))
            for key in keys
            if before.get(key) != after.get(key)
        )
    )


class ConfigWatcher:
    """Watches a config file and delivers each valid edit, or the reason an edit was rejected.

    Parameters
    ----------
    path : Path
        The config file.
    on_change : callable
        ``on_change(new_config, diff)`` after a valid edit that changed something; when it
        returns, the watcher holds ``new_config`` as the running configuration (if it raises,
        the error is logged, the old configuration stays and watching goes on).
    on_error : callable
        ``on_error(error)`` with the :class:`~marketmaker.errors.ConfigError` of an invalid edit;
        the running configuration is kept.
    config : Config, optional
        The running configuration, loaded from ``path`` (it is loaded here when not given; an
        invalid file then raises :class:`~marketmaker.errors.ConfigError`).
    base_dir : Path, optional
        Where relative paths start, as for :func:`~marketmaker.config.load_config`.
    debounce_ms : int
        Changes within this window are taken as one edit.
    poll_s : float
        The file's content is also compared this often, which catches an edit made while the
        watch was being set up and works where file events are not delivered.

    Examples
    --------
    ``async with ConfigWatcher(path, on_change, on_error, config=config) as watcher:`` runs it as a
    task of the running event loop; ``await watcher.ready.wait()`` waits until edits are seen.
    """

    def __init__(
        self,
        path: Path,
        on_change: Callable[[Config, ConfigDiff], None],
        on_error: Callable[[ConfigError], None],
        *,
        config: Config | None = None,
        base_dir: Path | None = None,
        debounce_ms: int = 50,
        poll_s: float = 0.25,
    ) -> None:
        self.path = Path(path).resolve()
        self._seen_digest = self._digest()
        self.config = load_config(self.path, base_dir=base_dir) if config is None else config
        self.ready = asyncio.Event()
        self._on_change = on_change
        self._on_error = on_error
        self._base_dir = base_dir
        self._debounce_ms = debounce_ms
        self._poll_ms = max(1, int(poll_s * 1000))
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def _digest(self) -> bytes | None:
        try:
            return hashlib.sha256(self.path.read_bytes()).digest()
        except OSError:
            return None

    def check(self) -> ConfigDiff | None:
        """Reloads the file if its content changed since last seen.

        Returns the diff delivered to ``on_change`` (None when the content is unchanged, the
        edit changed no value, or it was rejected).
        """
        digest = self._digest()
        if digest == self._seen_digest:
            return None
        self._seen_digest = digest
        try:
            new = load_config(self.path, base_dir=self._base_dir)
        except ConfigError as error:
            logger.error("config edit rejected, the running configuration is kept: %s", error)
            self._on_error(error)
            return None
        diff = diff_configs(self.config, new)
        if not diff:
            return None
        for change in diff.needs_restart:
            logger.warning("config: %s", change)
        for change in diff.live:
            logger.info("config: %s", change)
        self._on_change(new, diff)
        self.config = new
        return diff

    async def run(self) -> None:
        """Watches until :meth:`stop` (or cancellation)."""
        # No watch_filter: other files in the folder (the journal beside the config, written
        # several times a second) would then keep the watch from ever yielding, so neither
        # `ready` nor the periodic content check would happen. Every wake-up compares the
        # file's content instead, which is cheap and catches edits however they are made.
        async for _changes in awatch(
            self.path.parent,
            watch_filter=None,
            debounce=self._debounce_ms,
            step=min(50, self._debounce_ms),
            stop_event=self._stop,
            rust_timeout=self._poll_ms,
            yield_on_timeout=True,
            recursive=False,
        ):
            self.ready.set()
            try:
                self.check()
            except Exception:  # the loop's handler failed: keep watching, the running config stays
                logger.exception("applying the edited config %s failed; the running configuration is kept", self.path)

    def start(self) -> asyncio.Task[None]:
        """Runs :meth:`run` as a task of the running event loop."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.run(), name=f"config watcher {self.path.name}")
        return self._task

    async def stop(self) -> None:
        """Stops watching and waits for the watch thread to end."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def __aenter__(self) -> ConfigWatcher:
        self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()
