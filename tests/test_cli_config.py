"""``marketmaker-cli check-config`` and ``report``: through ``main([...])`` and once through the
installed console script."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest
from marketmaker.cli import main
from marketmaker.config import parse_config
from marketmaker.journal import FillRecord, Journal, PositionSnapshot

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

REPO = Path(__file__).resolve().parents[1]
SECRET = "cli-secret-value-31f0"

VALID = f"""\
exchange = "sim"
symbols = ["BTCUSDT"]
api_keys = [["plain-key-value", "{SECRET}", "BTCUSDT"]]
balances = [["BTCUSDT", 500.0]]
bps = [["BTCUSDT", 6.0]]
[risk]
max_position = 0.5
"""


def test_check_config_prints_the_resolved_config_with_secrets_redacted(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(VALID)
    path.chmod(0o600)
    assert main(["check-config", str(path)]) == 0
    captured = capsys.readouterr()
    assert SECRET not in captured.out + captured.err and "plain-key-value" not in captured.out + captured.err
    printed = tomllib.loads(captured.out)
    assert printed["api_keys"][0][1] == "***" and printed["api_keys"][0][0].startswith("key-")
    assert printed["bps"] == [["BTCUSDT", 6.0]] and printed["risk"]["max_position"] == 0.5
    assert printed["journal"]["path"] == str(tmp_path / "marketmaker-journal.sqlite")
    assert f"{path}: valid" in captured.err


def test_check_config_reports_an_invalid_file_and_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text(VALID.replace("max_position = 0.5", "max_positon = 0.5"))
    assert main(["check-config", str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert f"{path}:7: risk.max_positon: unknown key; did you mean 'max_position'?" in captured.err


def test_check_config_warns_about_a_readable_secret(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "config.toml"
    path.write_text(VALID)
    path.chmod(0o644)
    assert main(["check-config", str(path)]) == 0
    err = capsys.readouterr().err
    assert f"warning: {path}:3: api_keys[0][1]: a secret is written in a file that group or others can read" in err
    assert SECRET not in err


def test_check_config_without_a_path_uses_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check-config"]) == 0
    captured = capsys.readouterr()
    assert f"no config.toml in {tmp_path}: using the packaged default" in captured.err
    assert parse_config(captured.out) == parse_config((REPO / "config.toml").read_text(), base_dir=tmp_path)
    (tmp_path / "config.toml").write_text(VALID.replace(SECRET, "env:MM_TEST_SECRET"))
    assert main(["check-config"]) == 0
    assert f"using {tmp_path / 'config.toml'}" in capsys.readouterr().err


def make_journal(path: Path) -> None:
    with Journal(path) as journal:
        journal.start_run(
            exchange="sim", client_id_prefix="mmR", config_hash="c" * 64, symbols=["BTCUSDT"], started_ns=0
        )
        journal.record_fill(FillRecord("BTCUSDT", "1", "buy", 100.0, 2.0, 0.02, True, 1_000_000_000))
        journal.record_fill(FillRecord("BTCUSDT", "2", "sell", 101.0, 1.0, 0.01, True, 2_000_000_000))
        journal.record_snapshot(PositionSnapshot("BTCUSDT", 2_500_000_000, 1.0, 100.0, 100.5, 1001.0, 1.0, 0.5, 0.03))
        journal.end_run(3_000_000_000)


def test_report_prints_the_summary(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journal.sqlite"
    make_journal(path)
    assert main(["report", str(path)]) == 0
    out = capsys.readouterr().out
    assert out.startswith("run 1 on sim, 3.0 s (client ids mmR*, config cccccccccccc)")
    row = next(line for line in out.splitlines() if line.startswith("BTCUSDT "))
    assert row.split() == ["BTCUSDT", "2", "2", "3", "301.00", "0.0300", "1.0000", "0.9700", "1", "0", "0", "0"]


def test_report_on_a_missing_journal_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path / "none.sqlite")]) == 2
    assert "no such journal file" in capsys.readouterr().err


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="matplotlib (the plot extra) not installed")
def test_report_plots_pnl_and_inventory_to_png(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "journal.sqlite"
    make_journal(path)
    out = tmp_path / "run.png"
    assert main(["report", str(path), "--png", str(out)]) == 0
    assert f"plotted to {out}" in capsys.readouterr().out
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and out.stat().st_size > 10_000


def test_the_console_script_runs_check_config(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "marketmaker-cli"
    if not script.exists():
        pytest.skip(f"the console script is not installed beside {sys.executable}")
    result = subprocess.run([str(script), "check-config"], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert "using the packaged default" in result.stderr
    assert tomllib.loads(result.stdout)["exchange"] == "sim"
    bad = tmp_path / "bad.toml"
    bad.write_text('exchange = "sim"\nsymbols = "BTCUSDT"\n')
    result = subprocess.run([str(script), "check-config", str(bad)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    assert f"{bad}:2: symbols: expected an array of symbols" in result.stderr
