"""The command line, run as a user runs it: ``python -m my_package`` in a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from my_package.variables import is_nd, load_variables

# Names, defaults and ranges come from variables.yml, so these tests hold for any model.
ALL_INPUTS, OUTPUTS = load_variables()
INPUTS = [var for var in ALL_INPUTS if not var.read_only and not is_nd(var)]  # settable scalars
FIRST, LAST = INPUTS[0], INPUTS[-1]
# Inputs without a range: scan around the default (the out-of-range cases then do not apply).
LOW, HIGH = FIRST.value_range or (FIRST.default_value - 1.0, FIRST.default_value + 1.0)
UNIT = f" {FIRST.unit}" if FIRST.unit else ""


def cli(*args: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "my_package", *args],
        cwd=cwd,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_help_does_not_import_prefect(tmp_path: Path) -> None:
    code = (
        "import sys\nfrom my_package.cli import main\n"
        "try:\n    main(['run', '--help'])\nexcept SystemExit:\n    pass\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'prefect', 'lume'}))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert "--scan NAME=START:STOP:NUM" in out.stdout
    assert out.stdout.strip().endswith("[]")


def test_evaluate_defaults_writes_one_result(tmp_path: Path) -> None:
    proc = cli("evaluate", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    files = list((tmp_path / "results" / "my_package").glob("*.json"))
    assert len(files) == 1
    assert f"Result saved to {files[0]}" in proc.stdout
    document = json.loads(files[0].read_text())
    for var in OUTPUTS:
        value = np.asarray(document["outputs"][var.name])
        if is_nd(var):  # arrays: their shape and extremes
            assert f"{var.name} = shape {value.shape}, {value.min():.6g} .. " in proc.stdout
        else:
            assert f"{var.name} = {value.item():.6g}" in proc.stdout
    assert document["inputs"] == {var.name: var.default_value for var in ALL_INPUTS}
    assert document["result_type_string"] == "lume_services.results.generic.Result"


def test_evaluate_scan_and_output_dir(tmp_path: Path) -> None:
    low, high = LAST.value_range or (LAST.default_value - 1.0, LAST.default_value + 1.0)
    scans = ["--scan", f"{FIRST.name}={LOW}:{HIGH}:11", "--scan", f"{LAST.name}={low}:{high}:3"]
    proc = cli("evaluate", *scans, "--output-dir", "out", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "out" / "my_package").glob("*.json")
    document = json.loads(path.read_text())
    assert all(len(document["outputs"][var.name]) == 33 for var in OUTPUTS)
    # A grid: the first --scan varies slowest.
    first, last = np.linspace(LOW, HIGH, 11), np.linspace(low, high, 3)
    assert document["inputs"][FIRST.name][:4] == pytest.approx([*[first[0]] * 3, first[1]])
    assert document["inputs"][LAST.name][:4] == pytest.approx([*last, last[0]])


def test_set_values_reach_the_result(tmp_path: Path) -> None:
    value = LOW + 0.25 * (HIGH - LOW)
    proc = cli("evaluate", "--set", f"{FIRST.name}={value!r}", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "results" / "my_package").glob("*.json")
    assert json.loads(path.read_text())["inputs"][FIRST.name] == value


# Mistakes (bad inputs, settings, services, usage) are tested row by row in test_cli_errors.py.


def test_version_names_package_model_and_libraries(tmp_path: Path) -> None:
    proc = cli("--version", cwd=tmp_path)
    assert proc.returncode == 0
    from my_package import __version__

    line = proc.stdout.strip()
    assert line.startswith(f"my-package {__version__} (model my_package.model.MyPackageModel;")
    from importlib.metadata import version

    assert f"prefect {version('prefect')}" in line


def test_console_script_and_describe_json(tmp_path: Path) -> None:
    script = Path(sys.executable).with_name("my-package")
    if not script.exists():  # run from a source tree that was never installed
        pytest.skip("the my-package console script is not installed (pip install -e . makes it)")
    proc = subprocess.run(
        [str(script), "describe", "--json"], cwd=tmp_path, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    document = json.loads(proc.stdout)
    assert [v["name"] for v in document["inputs"]] == [var.name for var in ALL_INPUTS]
    assert [v["name"] for v in document["outputs"]] == [var.name for var in OUTPUTS]
    first = next(v for v in document["inputs"] if v["name"] == FIRST.name)
    assert first["default_value"] == FIRST.default_value


def test_subcommands_are_registered_in_one_list() -> None:
    from my_package.cli import SUBCOMMANDS, build_parser

    # A new subcommand is one function in SUBCOMMANDS; --help lists them in that order.
    help_text = build_parser().format_help()
    names = [register.__name__.removeprefix("add_") for register in SUBCOMMANDS]
    assert all(name in help_text for name in names)


def test_describe_lists_every_variable(tmp_path: Path) -> None:
    proc = cli("describe", cwd=tmp_path)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["variable", "kind", "shape", "default", "range", "unit"]
    first = next(line for line in lines if line.split()[0] == FIRST.name)
    assert first.split()[:4] == [FIRST.name, "input", "scalar", repr(FIRST.default_value)]
    if FIRST.value_range:
        assert f"[{LOW!r}, {HIGH!r}]" in first
    assert [line.split()[0] for line in lines[1:]] == [var.name for var in ALL_INPUTS + OUTPUTS]


@pytest.mark.slow
def test_run_default_flow_in_a_cold_process(tmp_path: Path) -> None:
    """README's main job: the flow with its defaults, embedded Prefect, filesystem target."""
    proc = cli("run", cwd=tmp_path, env={"PREFECT_HOME": str(tmp_path / "prefect")})
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "results" / "my_package").glob("*.json")
    assert f"Result saved to {path}" in proc.stdout
    document = json.loads(path.read_text())
    assert document["inputs"][FIRST.name] == FIRST.default_value
    assert len(document["flow_id"]) == 36
