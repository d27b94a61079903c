"""Settings precedence: command-line flag > environment > .env file > default.

A bad value of a setting that the chosen target does not read warns once and does
not block the run; one it reads is an error naming its environment variable.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lume.variables import ScalarVariable

from my_package import config
from my_package.config import SettingsError, load_settings
from my_package.variables import load_variables

FIRST = next(v for v in load_variables()[0] if not v.read_only and isinstance(v, ScalarVariable))


@pytest.fixture(autouse=True)
def clean_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No setting from the test runner's environment; a fresh warn-once memory; cwd tmp."""
    for name in list(os.environ):
        if name.startswith(("MY_PACKAGE_", "LUME_", "PREFECT_API_URL")):
            monkeypatch.delenv(name)
    monkeypatch.setattr(config, "_warned", set())
    monkeypatch.chdir(tmp_path)


def test_defaults() -> None:
    settings = load_settings()
    assert (settings.target, settings.output_dir) == ("filesystem", Path("results"))


def test_dotenv_then_environment_then_flag(monkeypatch: pytest.MonkeyPatch) -> None:
    Path(".env").write_text("MY_PACKAGE_OUTPUT_DIR=from-dotenv\nMY_PACKAGE_TARGET=mongodb\n")
    assert load_settings().output_dir == Path("from-dotenv")
    monkeypatch.setenv("MY_PACKAGE_OUTPUT_DIR", "from-env")
    assert load_settings().output_dir == Path("from-env")
    assert load_settings(output_dir="from-flag").output_dir == Path("from-flag")
    assert load_settings().target == "mongodb"
    assert load_settings(target="filesystem").target == "filesystem"


def test_flag_beats_a_bad_environment_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MY_PACKAGE_TARGET", "s3")
    assert load_settings(target="filesystem").target == "filesystem"
    with pytest.raises(SettingsError, match=r"^setting MY_PACKAGE_TARGET='s3' .*: use filesystem"):
        load_settings()


def test_bad_unused_setting_warns_once(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.setenv("LUME_RESULTS_DB__PORT", "abc")
    monkeypatch.setenv("LUME_BACKEND", "k8s")
    for _ in range(3):
        assert load_settings(target="filesystem").results_db.port == 27017  # the default
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 2 and all(line.startswith("warning: setting ") for line in lines)
    assert (
        "LUME_RESULTS_DB__PORT='abc'" in lines[0] and "filesystem target does not use" in lines[0]
    )
    assert "LUME_BACKEND='k8s'" in lines[1]
    # The mongodb target reads the port: the same value is an error there.
    with pytest.raises(SettingsError, match="LUME_RESULTS_DB__PORT='abc'") as info:
        load_settings(target="mongodb")
    assert "results_db" not in str(info.value) and "pydantic" not in str(info.value)


def test_bad_value_in_dotenv_names_its_variable() -> None:
    Path(".env").write_text("MY_PACKAGE_TARGET=mongodb\nLUME_RESULTS_DB__TIMEOUT_MS=10\n")
    with pytest.raises(SettingsError, match=r"LUME_RESULTS_DB__TIMEOUT_MS='10' \(environment"):
        load_settings()


def test_json_block_is_never_echoed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LUME_RESULTS_DB", '{"password": 123, "port": 1}')  # valid JSON, bad type
    with pytest.raises(SettingsError) as info:
        load_settings(target="mongodb")
    assert "LUME_RESULTS_DB__PASSWORD" in str(info.value) and "123" not in str(info.value)


def cli(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "my_package", *args],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_cli_flags_beat_environment_and_dotenv(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("MY_PACKAGE_OUTPUT_DIR=from-dotenv\n")
    env = {"MY_PACKAGE_TARGET": "mongodb", "LUME_RESULTS_DB__PORT": "abc"}
    proc = cli(
        "evaluate", "--target", "filesystem", "--output-dir", "from-flag", cwd=tmp_path, env=env
    )
    assert proc.returncode == 0, proc.stderr
    assert len(list((tmp_path / "from-flag").rglob("*.json"))) == 1
    assert not (tmp_path / "from-dotenv").exists()
    (warning,) = proc.stderr.splitlines()  # the unused bad port: one warning, nothing else
    assert warning.startswith("warning: setting LUME_RESULTS_DB__PORT='abc'")


@pytest.mark.slow
def test_run_flags_beat_environment_through_the_flow(tmp_path: Path) -> None:
    """The flow reads settings too: the flag and the warn-once rule must hold inside it."""
    (tmp_path / ".env").write_text("LUME_RESULTS_DB__PORT=abc\n")
    env = {"MY_PACKAGE_TARGET": "s3", "PREFECT_HOME": str(tmp_path / "prefect")}
    value = f"{FIRST.name}={FIRST.default_value}"
    args = ("run", "--target", "filesystem", "--output-dir", "out", "--set", value)
    proc = cli(*args, cwd=tmp_path, env=env)
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "out").rglob("*.json")
    assert json.loads(path.read_text())["inputs"][FIRST.name] == FIRST.default_value
    warnings = [line for line in proc.stderr.splitlines() if line.startswith("warning: setting")]
    assert len(warnings) == 1 and "LUME_RESULTS_DB__PORT" in warnings[0]
    assert "Traceback" not in proc.stderr and "| ERROR" not in proc.stderr
