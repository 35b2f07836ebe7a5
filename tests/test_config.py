"""The configuration: seed keys and tables read into typed values, every error naming the file,
the key, the line and what was expected; secrets resolved and never shown; the core's objects
built from it."""

from __future__ import annotations

import dataclasses
import doctest
import logging
import os
import sys
import textwrap
from pathlib import Path
from typing import Any

import marketmaker
import marketmaker.config
import marketmaker.config_reload
import marketmaker.journal
import marketmaker.toml_lines
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from marketmaker.config import (
    Config,
    ConfigLocation,
    find_config,
    load_config,
    packaged_default_config,
    parse_config,
)
from marketmaker.config_reload import diff_configs
from marketmaker.errors import ConfigError, InvalidConfigError
from marketmaker.toml_lines import KeyLines, split_key_path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]

BASE = """\
exchange = "sim"
symbols = ["BTCUSDT", "ETHUSDT"]
balances = [["BTCUSDT", 10000.0], ["ETHUSDT", 5000.0]]
bps = [["BTCUSDT", 5.0], ["ETHUSDT", 8.0]]
"""


def write(tmp_path: Path, text: str, name: str = "config.toml", mode: int = 0o600) -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    path.chmod(mode)
    return path


def load_error(tmp_path: Path, text: str) -> InvalidConfigError:
    path = write(tmp_path, text)
    with pytest.raises(InvalidConfigError) as caught:
        load_config(path)
    return caught.value


# -- the default configuration --------------------------------------------------------------


def test_the_packaged_default_is_byte_identical_to_the_repository_config() -> None:
    assert packaged_default_config().read_bytes() == (REPO / "config.toml").read_bytes()


def test_the_packaged_default_is_inside_the_installed_package() -> None:
    package_dir = Path(marketmaker.__file__).resolve().parent
    assert packaged_default_config().resolve().parent == package_dir
    assert packaged_default_config().is_file()


def test_the_repository_config_keeps_the_seed_keys_and_loads() -> None:
    config = load_config(REPO / "config.toml")
    assert config.exchange == "sim"
    assert config.symbol_names == ["BTCUSDT"]
    assert config.symbol("BTCUSDT").bps == 5.0
    assert config.symbol("BTCUSDT").balance == 10000.0
    assert (config.leverage, config.orders_per_side, config.final_order_distance) == (5.0, 5, 10.0)
    assert (config.depths, config.rate_limit, config.tick_window) == ((5, 50), 10.0, 100)
    assert config.journal.path == REPO / "marketmaker-journal.sqlite"


def test_every_commented_table_of_the_repository_config_is_valid_when_uncommented(tmp_path: Path) -> None:
    lines = (REPO / "config.toml").read_text().splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("# [strategy]"))
    # Commented lines become TOML; the file's own settings among them (`[orders]`) stay.
    uncommented = lines[:start] + [
        line[2:] if line.startswith("# ") else "" if line.lstrip().startswith("#") else line for line in lines[start:]
    ]
    path = write(tmp_path, "\n".join(uncommented) + "\n")
    (tmp_path / "data").mkdir()
    config = load_config(path)
    assert config.features.horizon_updates == 20
    assert config.sim.recording == tmp_path / "data" / "btcusdt.gz"
    assert dict(config.sim.synthetic) == {"initial_price": 60000.0, "volatility": 0.5}
    # the uncommented values are the defaults the file says they are
    defaults = load_config(REPO / "config.toml")
    assert config.quote_params("BTCUSDT") == defaults.quote_params("BTCUSDT")
    assert (config.strategy.model, config.strategy.price_band) == (
        defaults.strategy.model,
        defaults.strategy.price_band,
    )
    assert (config.risk, config.orders, config.venue, config.dashboard) == (
        defaults.risk,
        defaults.orders,
        defaults.venue,
        defaults.dashboard,
    )
    assert config.features.weights == defaults.features.weights


def test_find_config_prefers_the_working_directory(tmp_path: Path) -> None:
    path = write(tmp_path, BASE)
    location = find_config(tmp_path)
    assert location == ConfigLocation(path, False, tmp_path)
    assert location.describe() == f"using {path}"


def test_find_config_falls_back_to_the_packaged_default_and_says_so(tmp_path: Path) -> None:
    location = find_config(tmp_path)
    assert location.is_packaged_default
    assert location.path == packaged_default_config()
    assert "packaged default" in location.describe() and str(tmp_path) in location.describe()
    config = load_config(location.path, base_dir=location.base_dir)
    assert config.journal.path == tmp_path / "marketmaker-journal.sqlite"


# -- errors name the file, key, line and the expectation -------------------------------------

ERROR_CASES = [
    pytest.param(
        BASE + "[risk]\nmax_position = -1\n",
        "risk.max_position",
        6,
        "expected a finite number >= 0, got -1",
        id="negative limit",
    ),
    pytest.param(
        BASE + "[risk]\nmax_postion = 1\n", "risk.max_postion", 6, "did you mean 'max_position'?", id="typo in a table"
    ),
    pytest.param(BASE + "levrage = 3\n", "levrage", 5, "did you mean 'leverage'?", id="typo at the top"),
    pytest.param(BASE + "leverage = true\n", "leverage", 5, "expected a finite number > 0", id="bool for a number"),
    pytest.param(BASE + 'tick_window = "100"\n', "tick_window", 5, 'expected an integer >= 1, got "100"', id="string"),
    pytest.param(
        'exchange = "sim"\nsymbols = ["BTCUSDT", "ETHUSDT"]\nbalances = [["BTCUSDT", 1.0], ["ETHUSDT", 1.0]]\nbps = [["BTCUSDT", 5.0]]\n',
        "bps",
        4,
        "expected an entry for every symbol, missing: ETHUSDT",
        id="bps missing a symbol",
    ),
    pytest.param(
        'exchange = "sim"\nsymbols = ["BTCUSDT"]\nbalances = [["BTCUSDT", 1.0]]\nbps = [\n  ["BTCUSDT", 5.0],\n  ["XRPUSDT", 5.0],\n]\n',
        "bps[1][0]",
        6,
        'expected a configured symbol (BTCUSDT), got "XRPUSDT"',
        id="bps for an unconfigured symbol, multi-line array",
    ),
    pytest.param(
        'exchange = "sim"\nsymbols = ["BTCUSDT"]\nbalances = [["BTCUSDT", 1.0]]\nbps = [["BTCUSDT", -5.0]]\n',
        "bps[0][1]",
        4,
        "expected a finite number > 0 and <= 10000, got -5.0",
        id="negative bps",
    ),
    pytest.param(
        'exchange = "sim"\nsymbols = ["BTCUSDT"]\nbalances = [["ETHUSDT", 1.0]]\nbps = [["BTCUSDT", 5.0]]\n',
        "balances[0][0]",
        3,
        "expected a configured symbol (BTCUSDT)",
        id="balance for an unconfigured symbol",
    ),
    pytest.param(
        BASE + 'api_keys = [["env:K", "env:S", "SOLUSDT"]]\n',
        "api_keys[0][2]",
        5,
        "expected a configured symbol",
        id="api key for an unconfigured symbol",
    ),
    pytest.param(BASE + "depths = [5, 50, 20]\n", "depths[2]", 5, "strictly ascending", id="depths out of order"),
    pytest.param(BASE + "depths = [0]\n", "depths[0]", 5, "expected an integer >= 1, got 0", id="zero depth"),
    pytest.param(BASE + 'exchange2 = "x"\n', "exchange2", 5, "did you mean 'exchange'?", id="unknown top-level key"),
    pytest.param(
        'exchange = "binanse"\nsymbols = ["BTCUSDT"]\n', "exchange", 1, "did you mean 'binance'?", id="exchange name"
    ),
    pytest.param('exchange = "sim"\n', "symbols", None, "a required key is missing", id="no symbols"),
    pytest.param(
        BASE + "\n[strategy.params]\nsize_fraction = -1\n",
        "strategy.params.size_fraction",
        7,
        "rejected by the core: invalid parameter: size_fraction must be positive and finite, got -1",
        id="core rejects a ladder parameter",
    ),
    pytest.param(
        BASE + '[strategy]\nmodel = "glft"\n[strategy.params]\ngamma = 0.1\nanchor = "mid"\n',
        "strategy.params.anchor",
        9,
        "is not a parameter of the glft model",
        id="parameter of another model",
    ),
    pytest.param(
        BASE + '[strategy]\nmodel = "ladder"\n[strategy.params]\nanchor = "best"\n',
        "strategy.params.anchor",
        8,
        "is not 'mid' or 'microprice'",
        id="bad anchor",
    ),
    pytest.param(
        BASE + "[strategy.params]\nbps = 3.0\n",
        "strategy.params.bps",
        6,
        "expected bps at the top level",
        id="seed key repeated in params",
    ),
    pytest.param(
        BASE + '[strategy]\nmodel = "stoikov"\n', "strategy.model", 6, "expected one of 'ladder'", id="unknown model"
    ),
    pytest.param(
        BASE + "[features.weights]\nimbalanse = 0.3\n",
        "features.weights.imbalanse",
        6,
        "did you mean 'imbalance'?",
        id="unknown weight",
    ),
    pytest.param(
        BASE + "[features]\nhorizon_updates = 10\nhorizon_ms = 100.0\n",
        "features.horizon_updates",
        6,
        "give horizon_updates or horizon_ms, not both",
        id="core rejects two horizons",
    ),
    pytest.param(
        BASE + "[features]\nforgetting = 1.5\n",
        "features.forgetting",
        6,
        "expected a finite number > 0 and <= 1, got 1.5",
        id="forgetting above one",
    ),
    pytest.param(
        BASE + '[orders]\nclient_id_prefix = "mm bot"\n',
        "orders.client_id_prefix",
        6,
        "expected 1-14 characters",
        id="prefix",
    ),
    pytest.param(BASE + '[sim]\ndriver = "replay"\n', "sim.recording", 5, "needs the recording's path", id="replay"),
    pytest.param(
        BASE + '[sim.synthetic]\nvolatility = "high"\n',
        "sim.synthetic.volatility",
        6,
        'expected a finite number, got "high"',
        id="synthetic parameter",
    ),
    pytest.param(BASE + "risk = 3\n", "risk", 5, "expected a table ([risk]), got 3", id="table expected"),
    pytest.param(
        BASE + "[risk]\nmax_position = 1\n[risk.symbols.XRPUSDT]\nmax_position = 5\n",
        "risk.symbols.XRPUSDT",
        7,
        "'XRPUSDT' is not one of symbols (BTCUSDT, ETHUSDT)",
        id="risk for an unconfigured symbol",
    ),
    pytest.param(
        BASE + "[risk.symbols.BTCUSDT]\nmax_position = 1\nmax_open_orders = 2.5\n",
        "risk.symbols.BTCUSDT.max_open_orders",
        7,
        "expected an integer >= 0, got 2.5",
        id="a symbol's risk limit",
    ),
    pytest.param(
        BASE + "[risk.symbols.BTCUSDT]\nmax_postion = 1\n",
        "risk.symbols.BTCUSDT.max_postion",
        6,
        "did you mean 'max_position'?",
        id="typo in a symbol's risk table",
    ),
    pytest.param(
        BASE + '[venue]\nrest_url = "ftp://example.com"\n', "venue.rest_url", 6, "expected an http://", id="url"
    ),
    pytest.param(
        BASE + '[venue]\norder_api = "fix"\n',
        "venue.order_api",
        6,
        "expected one of 'websocket', 'rest'",
        id="order api",
    ),
    pytest.param(
        BASE + '[venue]\nws_api_url = "https://example.com"\n',
        "venue.ws_api_url",
        6,
        "expected a ws://",
        id="ws api url",
    ),
]


@pytest.mark.parametrize(("text", "key", "line", "expected"), ERROR_CASES)
def test_errors_name_the_file_key_line_and_expectation(
    tmp_path: Path, text: str, key: str, line: int | None, expected: str
) -> None:
    error = load_error(tmp_path, text)
    assert error.file == str(tmp_path / "config.toml")
    assert error.key == key
    assert error.line == line
    assert expected in error.message
    where = f"{tmp_path / 'config.toml'}:{line}" if line is not None else str(tmp_path / "config.toml")
    assert str(error).startswith(f"{where}: {key}: ")
    assert isinstance(error, ConfigError) and isinstance(error, marketmaker.errors.MarketMakerError)


def test_a_toml_syntax_error_names_its_line(tmp_path: Path) -> None:
    error = load_error(tmp_path, BASE + "[risk]\nmax_position = \n")
    assert error.key is None
    assert error.line == 6
    assert "expected valid TOML" in str(error) and str(error).startswith(f"{tmp_path / 'config.toml'}:6: ")


def test_a_missing_file_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(InvalidConfigError, match=r"missing\.toml: cannot read the file"):
        load_config(tmp_path / "missing.toml")


def test_relative_paths_start_at_the_config_file(tmp_path: Path) -> None:
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rec.gz").write_bytes(b"")
    path = write(
        tmp_path, BASE + '[sim]\ndriver = "replay"\nrecording = "data/rec.gz"\n[journal]\npath = "out/j.sqlite"\n'
    )
    config = load_config(path)
    assert config.sim.recording == tmp_path / "data" / "rec.gz"
    assert config.journal.path == tmp_path / "out" / "j.sqlite"


def test_a_missing_recording_names_the_resolved_path(tmp_path: Path) -> None:
    error = load_error(tmp_path, BASE + '[sim]\ndriver = "replay"\nrecording = "nope.gz"\n')
    assert error.key == "sim.recording" and error.line == 7
    assert str(tmp_path / "nope.gz") in error.message


# -- secrets ------------------------------------------------------------------------------------

SECRET = "s3cr3t-value-that-must-not-leak"
API_KEY = "api-key-0123456789"


def test_env_references_resolve_and_never_show(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MM_KEY", API_KEY)
    monkeypatch.setenv("TEST_MM_SECRET", SECRET)
    text = BASE.replace('"sim"', '"binance"') + (
        'api_keys = [["env:TEST_MM_KEY", "env:TEST_MM_SECRET", "BTCUSDT"], ["env:TEST_MM_KEY", "env:TEST_MM_SECRET", "ETHUSDT"]]\n'
    )
    config = load_config(write(tmp_path, text))
    credentials = config.credentials("BTCUSDT")
    assert (credentials.api_key, credentials.secret) == (API_KEY, SECRET)
    assert config.api_keys[0].key_id == marketmaker.credentials.key_id_of(API_KEY)
    for shown in (repr(config), str(config), config.to_toml(), config.fingerprint()):
        assert SECRET not in shown and API_KEY not in shown
    assert '["env:TEST_MM_KEY", "env:TEST_MM_SECRET", "BTCUSDT"]' in config.to_toml()


def test_a_missing_variable_is_an_error_on_a_real_venue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TEST_MM_UNSET", raising=False)
    monkeypatch.setenv("TEST_MM_KEY", API_KEY)
    text = (
        'exchange = "bybit"\nsymbols = ["BTCUSDT"]\nbalances = [["BTCUSDT", 1.0]]\nbps = [["BTCUSDT", 5.0]]\n'
        'api_keys = [["env:TEST_MM_KEY", "env:TEST_MM_UNSET", "BTCUSDT"]]\n'
    )
    error = load_error(tmp_path, text)
    assert (error.key, error.line) == ("api_keys[0][1]", 5)
    assert "environment variable TEST_MM_UNSET is not set" in error.message


def test_a_real_venue_needs_a_key_for_every_symbol(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TEST_MM_KEY", API_KEY)
    text = BASE.replace('"sim"', '"binance"') + 'api_keys = [["env:TEST_MM_KEY", "env:TEST_MM_KEY", "BTCUSDT"]]\n'
    error = load_error(tmp_path, text)
    assert error.key == "api_keys" and error.line == 5 and "missing: ETHUSDT" in error.message


def test_the_sim_venue_needs_no_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MM_API_KEY", raising=False)
    monkeypatch.delenv("MM_API_SECRET", raising=False)
    config = load_config(REPO / "config.toml")
    assert config.api_keys[0].resolved is None and config.api_keys[0].key_id is None
    with pytest.raises(InvalidConfigError, match="MM_API_KEY, MM_API_SECRET was not set") as caught:
        config.credentials("BTCUSDT")
    assert caught.value.key == "api_keys[0]"
    monkeypatch.setenv("MM_API_KEY", API_KEY)
    monkeypatch.setenv("MM_API_SECRET", SECRET)
    assert load_config(REPO / "config.toml").credentials("BTCUSDT").secret == SECRET


def test_a_literal_secret_in_a_readable_file_warns(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = BASE + f'api_keys = [["{API_KEY}", "{SECRET}", "BTCUSDT"]]\n'
    with caplog.at_level(logging.WARNING, logger="marketmaker.config"):
        config = load_config(write(tmp_path, text, mode=0o644))
    assert len(config.warnings) == 1
    warning = config.warnings[0]
    assert (warning.key, warning.line) == ("api_keys[0][1]", 5)
    assert "group or others can read" in warning.message
    assert str(warning) in caplog.text
    assert config.credentials("BTCUSDT").secret == SECRET
    for shown in (repr(config), config.to_toml(), caplog.text, str(warning)):
        assert SECRET not in shown and API_KEY not in shown
    key_id = marketmaker.credentials.key_id_of(API_KEY)
    assert f'["{key_id}", "***", "BTCUSDT"]' in config.to_toml()


def test_a_literal_secret_in_a_private_file_does_not_warn(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    text = BASE + f'api_keys = [["{API_KEY}", "{SECRET}", "BTCUSDT"]]\n'
    with caplog.at_level(logging.WARNING, logger="marketmaker.config"):
        config = load_config(write(tmp_path, text, mode=0o600))
    assert config.warnings == ()
    assert caplog.text == ""


def test_a_wrong_secret_type_does_not_echo_the_value(tmp_path: Path) -> None:
    error = load_error(tmp_path, BASE + f'api_keys = [["{API_KEY}", 12345, "BTCUSDT"]]\n')
    assert error.key == "api_keys[0][1]" and "12345" not in str(error) and API_KEY not in str(error)


# -- the core's objects -------------------------------------------------------------------------


def test_the_ladder_gets_the_seed_keys_per_symbol(tmp_path: Path) -> None:
    config = load_config(
        write(tmp_path, BASE + "leverage = 3\norders_per_side = 4\n[strategy.params]\nsize_fraction = 0.2\n")
    )
    generator = config.quote_generator("ETHUSDT", tick_size=0.01, lot_size=0.001)
    assert generator.model == "ladder"
    params = generator.params
    assert (params["bps"], params["orders_per_side"], params["leverage"], params["size_fraction"]) == (8.0, 4, 3.0, 0.2)
    quotes = generator.quote(2000.0, balance=5000.0)
    assert len(quotes.bids) == 4 and len(quotes.asks) == 4
    assert quotes.half_spread == pytest.approx(2000.0 * 8.0 / 1e4)


def test_quote_params_are_complete_for_other_models(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, BASE + '[strategy]\nmodel = "glft"\n[strategy.params]\ngamma = 0.5\n'))
    params = config.quote_params("BTCUSDT")
    assert params["gamma"] == 0.5 and params["orders_per_side"] == 5 and "bps" not in params
    assert set(params) == set(config.quote_generator("BTCUSDT", tick_size=0.1, lot_size=0.001).params)


def test_the_feature_engine_risk_gate_limiter_and_planner(tmp_path: Path) -> None:
    text = BASE + (
        "depths = [3, 10]\ntick_window = 7\nrate_limit = 4\n"
        "[features]\ndead_band = 0.3\n[features.weights]\nimbalance = 0.9\n"
        "[risk]\nmax_position = 2.5\nmax_open_orders = 12\n"
        '[orders]\nclient_id_prefix = "bot"\nrequote_tolerance_bps = 2.0\n'
    )
    config = load_config(write(tmp_path, text))
    engine = config.feature_engine()
    assert (engine.depths, engine.tick_window, engine.dead_band) == ([3, 10], 7, 0.3)
    assert engine.weights["imbalance"] == 0.9
    assert engine.weights == dict(config.features.weights)  # complete: the core's other defaults kept
    assert engine.weights["trade_imbalance"] == marketmaker.FeatureEngine().weights["trade_imbalance"]
    gate = config.risk_gate()
    actions = config.order_planner().plan(
        marketmaker.QuoteGenerator(tick_size=0.1, lot_size=0.001).quote(100.0, balance=1e4), []
    )
    passed, refused = gate.filter(actions, position=2.5, mid=100.0)
    assert passed and all(action.side == marketmaker.Side.SELL for action in passed)
    assert refused and all("above max_position 2.5" in reason for _action, reason in refused)
    limiter = config.rate_limiter()
    # a bucket of 4 calls (rate_limit = 4/s): new orders may not take the last 20% (cancel_reserve)
    assert sum(limiter.try_send(0, "orders") for _ in range(10)) == 3
    assert sum(limiter.try_send(0, "cancels") for _ in range(10)) == 1
    planner = config.order_planner("r1")
    assert planner.prefix == "botr1" and planner.next_client_order_id().startswith("botr1")


def test_a_symbol_s_risk_table_replaces_only_the_limits_it_writes(tmp_path: Path) -> None:
    text = (
        'exchange = "sim"\nsymbols = ["BTCUSDT", "DOGEUSDT"]\n'
        'balances = [["BTCUSDT", 1000.0], ["DOGEUSDT", 1000.0]]\nbps = [["BTCUSDT", 5.0], ["DOGEUSDT", 5.0]]\n'
        "[risk]\nmax_position = 0.5\nmax_open_orders = 12\n"
        "[risk.symbols.DOGEUSDT]\nmax_position = 20000.0\n"
    )
    config = load_config(write(tmp_path, text))
    assert config.risk.for_symbol("BTCUSDT") == dataclasses.replace(config.risk, symbols={})
    doge = config.risk.for_symbol("DOGEUSDT")
    assert (doge.max_position, doge.max_open_orders) == (20000.0, 12)
    buys = config.order_planner().plan(
        marketmaker.QuoteGenerator(tick_size=0.1, lot_size=0.001).quote(100.0, balance=1e4), []
    )
    buys = [action for action in buys if action.side == marketmaker.Side.BUY]
    for gate, passes in (
        (config.risk_gate("BTCUSDT"), False),
        (config.risk_gate(), False),
        (config.risk_gate("DOGEUSDT"), True),
    ):
        passed, refused = gate.filter(buys, position=0.6, mid=100.0)
        assert bool(passed) == passes and bool(refused) != passes
    assert parse_config(config.to_toml()) == config
    edited = load_config(write(tmp_path, text.replace("20000.0", "30000.0")))
    (change,) = diff_configs(config, edited).changes
    assert (change.key, change.old, change.new, change.live) == (
        "risk.symbols.DOGEUSDT.max_position",
        20000.0,
        30000.0,
        True,
    )


def test_to_toml_parses_back_to_the_same_configuration(tmp_path: Path) -> None:
    text = BASE + '[strategy]\nmodel = "avellaneda_stoikov"\n[strategy.params]\ngamma = 0.3\nrolling = false\n'
    config = load_config(write(tmp_path, text))
    assert parse_config(config.to_toml()) == config
    assert parse_config(config.to_toml()).fingerprint() == config.fingerprint()


@settings(max_examples=40, deadline=None)
@given(
    bps=st.lists(st.floats(min_value=0.01, max_value=10_000, allow_nan=False), min_size=1, max_size=4),
    leverage=st.floats(min_value=0.1, max_value=125),
)
def test_any_valid_seed_values_load_and_reprint(bps: list[float], leverage: float) -> None:
    symbols = [f"SYM{i}USDT" for i in range(len(bps))]
    text = (
        f'exchange = "sim"\nsymbols = {symbols!r}\nleverage = {leverage!r}\n'.replace("'", '"')
        + "balances = ["
        + ", ".join(f'["{symbol}", 100.0]' for symbol in symbols)
        + "]\nbps = ["
        + ", ".join(f'["{symbol}", {value!r}]' for symbol, value in zip(symbols, bps))
        + "]\n"
    )
    config = parse_config(text)
    assert [entry.bps for entry in config.symbols] == bps
    assert config.leverage == leverage
    assert parse_config(config.to_toml()) == config


def test_parse_config_without_a_file_names_the_string_source() -> None:
    with pytest.raises(InvalidConfigError, match=r"^<string>:1: exchange: "):
        parse_config("exchange = 1\n")


def test_config_is_frozen() -> None:
    config = load_config(REPO / "config.toml")
    with pytest.raises(AttributeError):
        config.exchange = "binance"  # type: ignore[misc]
    assert isinstance(config, Config)


# -- the line scanner ---------------------------------------------------------------------------

SCANNED = '''\
title = """a
b = 2 ["x"]
"""  # b above is inside a string
[risk]  # limits
max_position = 1
"quoted key" = 2
[ sim . synthetic ]
volatility = 0.5
nested.dotted = 3
[strategy]
params = { gamma = 0.1, kappa = [1, 2] }
bps = [  # per symbol
  ["A", 1.0],  # first
  "s,]",
  [
    "B",
    2.0,
  ],
]
'''


@pytest.mark.parametrize(
    ("key", "line"),
    [
        ("title", 1),
        ("b", None),
        ("risk", 4),
        ("risk.max_position", 5),
        ("risk.quoted key", 6),
        ("risk.not_written", 4),
        ("sim.synthetic", 7),
        ("sim.synthetic.volatility", 8),
        ("sim.synthetic.nested.dotted", 9),
        ("strategy.params", 11),
        ("strategy.params.gamma", 11),
        ("strategy.bps", 12),
        ("strategy.bps[0]", 13),
        ("strategy.bps[0][1]", 13),
        ("strategy.bps[1]", 14),
        ("strategy.bps[2]", 15),
        ("strategy.bps[2][1]", 17),
        ("strategy.bps[9]", 12),
        ("nothing.here", None),
    ],
)
def test_key_lines_finds_where_a_key_is_written(key: str, line: int | None) -> None:
    assert KeyLines(SCANNED).line_of(key) == line


def test_split_key_path() -> None:
    assert split_key_path("api_keys[0][2]") == (("api_keys",), (0, 2))
    assert split_key_path("risk.max_position") == (("risk", "max_position"), ())


def test_config_errors_do_not_depend_on_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, BASE + '[journal]\npath = "j.sqlite"\n')
    monkeypatch.chdir(os.sep)
    assert load_config(path).journal.path == tmp_path / "j.sqlite"


@pytest.mark.parametrize(
    "module",
    [marketmaker.config, marketmaker.config_reload, marketmaker.journal, marketmaker.toml_lines],
    ids=lambda module: module.__name__,
)
def test_the_docstring_examples_run(module: object) -> None:
    failures, tried = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert tried > 0 and failures == 0


def test_key_lines_finds_every_key_of_a_printed_config(tmp_path: Path) -> None:
    text = load_config(write(tmp_path, BASE + "[strategy.params]\nskew_shift = 0.4\n")).to_toml()
    lines = text.splitlines()
    scanner = KeyLines(text)

    def leaves(mapping: dict[str, Any], prefix: str = "") -> list[str]:
        keys: list[str] = []
        for name, value in mapping.items():
            keys.extend(leaves(value, f"{prefix}{name}.") if isinstance(value, dict) else [f"{prefix}{name}"])
        return keys

    keys = leaves(tomllib.loads(text))
    assert len(keys) > 50
    for key in keys:
        line = scanner.line_of(key)
        assert line is not None, key
        assert lines[line - 1].startswith(key.rsplit(".", 1)[-1] + " = "), (key, line)
    bps_line = scanner.line_of("bps[1][1]")
    assert bps_line is not None and lines[bps_line - 1].startswith("bps = ")
