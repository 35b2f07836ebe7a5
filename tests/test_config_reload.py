"""Hot reload: a real file edited while the watcher runs; the new configuration (or the reason
it was rejected) arrives within a second, and the running configuration is only ever replaced
whole."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import marketmaker
import pytest
from marketmaker.config import Config, load_config, parse_config
from marketmaker.config_reload import ConfigDiff, ConfigWatcher, diff_configs, is_live_key
from marketmaker.errors import ConfigError, InvalidConfigError

CONFIG = """\
exchange = "sim"
symbols = ["BTCUSDT"]
balances = [["BTCUSDT", 10000.0]]
bps = [["BTCUSDT", 5.0]]
orders_per_side = 3

[features.weights]
imbalance = 0.25

[risk]
max_position = 1.0
"""

#: How long an edit may take to arrive (the issue's "within a second").
DEADLINE_S = 1.0


class Received:
    """What the watcher delivered, in order, with the time it arrived."""

    def __init__(self) -> None:
        self.queue: asyncio.Queue[tuple[float, Config | ConfigError, ConfigDiff | None]] = asyncio.Queue()

    def on_change(self, config: Config, diff: ConfigDiff) -> None:
        self.queue.put_nowait((time.monotonic(), config, diff))

    def on_error(self, error: ConfigError) -> None:
        self.queue.put_nowait((time.monotonic(), error, None))

    async def next(self, edited_at: float) -> tuple[float, Config | ConfigError, ConfigDiff | None]:
        arrived, item, diff = await asyncio.wait_for(self.queue.get(), DEADLINE_S)
        return arrived - edited_at, item, diff


def run_watching(path: Path, scenario: Callable[[ConfigWatcher, Received], Awaitable[None]]) -> ConfigWatcher:
    received = Received()

    async def main() -> ConfigWatcher:
        watcher = ConfigWatcher(path, received.on_change, received.on_error, config=load_config(path))
        async with watcher:
            await asyncio.wait_for(watcher.ready.wait(), 5.0)
            await scenario(watcher, received)
        return watcher

    return asyncio.run(main())


def edit(path: Path, old: str, new: str) -> float:
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return time.monotonic()


def test_bps_and_a_weight_edited_while_running_arrive_within_a_second(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)

    async def scenario(watcher: ConfigWatcher, received: Received) -> None:
        edited_at = edit(path, '["BTCUSDT", 5.0]]\norders', '["BTCUSDT", 7.5]]\norders')
        edited_at = min(edited_at, edit(path, "imbalance = 0.25", "imbalance = 0.6"))
        delay, config, diff = await received.next(edited_at)
        assert delay < DEADLINE_S
        assert isinstance(config, Config) and diff is not None
        if diff.keys() == ["bps"]:  # the two writes arrived as two edits
            delay, config, diff = await received.next(edited_at)
            assert isinstance(config, Config) and diff is not None and delay < DEADLINE_S
        assert config.symbol("BTCUSDT").bps == 7.5
        assert config.features.weights["imbalance"] == 0.6
        assert all(change.live for change in diff.changes)
        assert watcher.config is config

        # the running loop applies them to its live objects: the next quotes use the new values
        generator = load_config(path).quote_generator("BTCUSDT", tick_size=0.1, lot_size=0.001)
        engine = marketmaker.FeatureEngine(weights={"imbalance": 0.25})
        generator.set_params(config.strategy.model, **config.quote_params("BTCUSDT"))
        engine.set_skew(weights=dict(config.features.weights), dead_band=config.features.dead_band)
        assert generator.quote(60000.0).half_spread == pytest.approx(60000.0 * 7.5 / 1e4)
        assert engine.weights["imbalance"] == 0.6

    run_watching(path, scenario)


def test_invalid_toml_is_reported_and_the_running_config_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)

    async def scenario(watcher: ConfigWatcher, received: Received) -> None:
        running = watcher.config
        edited_at = edit(path, "max_position = 1.0", "max_position = ")
        delay, error, diff = await received.next(edited_at)
        assert delay < DEADLINE_S and diff is None
        assert isinstance(error, InvalidConfigError)
        assert error.file == str(path) and error.line == 11 and "expected valid TOML" in str(error)
        assert watcher.config is running

        # a later valid edit is applied as usual
        edited_at = edit(path, "max_position = ", "max_position = 2.0")
        delay, config, diff = await received.next(edited_at)
        assert isinstance(config, Config) and diff is not None and delay < DEADLINE_S
        assert diff.keys() == ["risk.max_position"] and diff.changes[0].old == 1.0 and diff.changes[0].new == 2.0
        assert watcher.config.risk.max_position == 2.0

    run_watching(path, scenario)


def test_an_invalid_value_is_rejected_whole_with_its_key_and_line(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)

    async def scenario(watcher: ConfigWatcher, received: Received) -> None:
        running = watcher.config
        # one valid change (bps) and one invalid (a negative limit) in the same edit: nothing applies
        text = CONFIG.replace("5.0]]", "9.0]]").replace("max_position = 1.0", "max_position = -1.0")
        path.write_text(text)
        delay, error, _diff = await received.next(time.monotonic())
        assert isinstance(error, InvalidConfigError) and delay < DEADLINE_S
        assert (error.key, error.line) == ("risk.max_position", 11)
        assert "expected a finite number >= 0, got -1.0" in str(error)
        assert watcher.config is running and watcher.config.symbol("BTCUSDT").bps == 5.0

    run_watching(path, scenario)


def test_keys_that_need_a_restart_are_reported_as_such(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)

    async def scenario(watcher: ConfigWatcher, received: Received) -> None:
        text = (
            CONFIG.replace('["BTCUSDT"]', '["BTCUSDT", "ETHUSDT"]')
            .replace("10000.0]]", '10000.0], ["ETHUSDT", 100.0]]')
            .replace("5.0]]", '5.0], ["ETHUSDT", 9.0]]')
            .replace("orders_per_side = 3", "orders_per_side = 4\ntick_window = 50")
        )
        path.write_text(text)
        _delay, config, diff = await received.next(time.monotonic())
        assert isinstance(config, Config) and diff is not None
        assert {change.key for change in diff.needs_restart} == {"symbols", "balances", "tick_window"}
        assert {change.key for change in diff.live} == {"bps", "orders_per_side"}

    run_watching(path, scenario)


def test_an_editor_save_by_rename_is_seen_and_a_resave_without_change_is_not(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)

    async def scenario(watcher: ConfigWatcher, received: Received) -> None:
        path.write_text(CONFIG)  # same content saved again: nothing to deliver
        replacement = tmp_path / ".config.toml.swp-new"
        replacement.write_text(CONFIG.replace("orders_per_side = 3", "orders_per_side = 2"))
        os.replace(replacement, path)
        edited_at = time.monotonic()
        delay, config, diff = await received.next(edited_at)
        assert isinstance(config, Config) and diff is not None and delay < DEADLINE_S
        assert diff.keys() == ["orders_per_side"]
        await asyncio.sleep(0.4)  # longer than the content check's period: nothing else arrives
        assert received.queue.empty()

    run_watching(path, scenario)


def test_a_deleted_file_is_reported_and_the_running_config_kept(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)

    async def scenario(watcher: ConfigWatcher, received: Received) -> None:
        running = watcher.config
        path.unlink()
        _delay, error, _diff = await received.next(time.monotonic())
        assert isinstance(error, InvalidConfigError) and "cannot read the file" in str(error)
        assert watcher.config is running

    run_watching(path, scenario)


def test_check_reloads_without_the_event_loop(tmp_path: Path) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    changes: list[ConfigDiff] = []
    errors: list[ConfigError] = []
    watcher = ConfigWatcher(path, lambda _c, diff: changes.append(diff), errors.append)  # loads the file itself
    assert watcher.check() is None  # unchanged
    path.write_text(CONFIG.replace("imbalance = 0.25", "imbalance = 0.3"))
    diff = watcher.check()
    assert diff is not None and diff.keys() == ["features.weights.imbalance"] and changes == [diff]
    assert watcher.check() is None and errors == []


# -- the diff ----------------------------------------------------------------------------------


def test_diff_lists_changed_keys_with_redacted_values() -> None:
    old = parse_config(CONFIG + "[strategy.params]\nskew_shift = 0.5\n")
    new = parse_config(
        'api_keys = [["literal-key", "literal-secret", "BTCUSDT"]]\n'
        + CONFIG.replace("max_position = 1.0", "max_position = 3.0")
        + "[strategy.params]\nskew_shift = 0.7\n"
    )
    diff = diff_configs(old, new)
    assert diff.keys() == ["api_keys", "strategy.params.skew_shift", "risk.max_position"]
    api_keys = diff.changes[0]
    assert not api_keys.live and api_keys.old == []
    assert "literal-secret" not in str(api_keys) and "***" in str(api_keys)
    assert str(diff.changes[2]) == "risk.max_position: 1.0 -> 3.0 (applied live)"
    assert not diff_configs(old, old)


@pytest.mark.parametrize(
    ("key", "live"),
    [
        ("bps", True),
        ("orders_per_side", True),
        ("final_order_distance", True),
        ("rate_limit", True),
        ("strategy.model", True),
        ("strategy.params.gamma", True),
        ("features.weights.voi", True),
        ("features.dead_band", True),
        ("risk.max_drawdown", True),
        ("orders.requote_tolerance_bps", True),
        ("exchange", False),
        ("symbols", False),
        ("api_keys", False),
        ("balances", False),
        ("leverage", False),
        ("depths", False),
        ("tick_window", False),
        ("features.ofi_levels", False),
        ("orders.client_id_prefix", False),
        ("venue.rest_url", False),
        ("sim.seed", False),
        ("journal.path", False),
        ("dashboard.refresh_s", False),
        ("riskless", False),
    ],
)
def test_live_and_restart_keys(key: str, live: bool) -> None:
    assert is_live_key(key) is live


def test_a_failing_handler_keeps_the_old_config_and_the_watch_going(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(CONFIG)
    applied: asyncio.Queue[Config] = asyncio.Queue()

    def on_change(config: Config, _diff: ConfigDiff) -> None:
        if config.orders_per_side == 1:
            raise RuntimeError("the loop could not apply it")
        applied.put_nowait(config)

    async def main() -> None:
        watcher = ConfigWatcher(path, on_change, lambda error: None)
        async with watcher:
            await asyncio.wait_for(watcher.ready.wait(), 5.0)
            running = watcher.config
            edit(path, "orders_per_side = 3", "orders_per_side = 1")
            await asyncio.sleep(0.5)
            assert watcher.config is running
            edit(path, "orders_per_side = 1", "orders_per_side = 2")
            config = await asyncio.wait_for(applied.get(), DEADLINE_S)
            assert config.orders_per_side == 2 and watcher.config is config

    asyncio.run(main())
    assert "applying the edited config" in caplog.text and "the loop could not apply it" in caplog.text
