"""The command line, run as a user runs it: ``python -m my_package`` in a subprocess."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from my_package.cli import main
from my_package.variables import describe_table

ROOT = Path(__file__).resolve().parents[1]


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
        "print(sorted(m for m in sys.modules if m.split('.')[0] in {'prefect', 'lume_model'}))"
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
    assert "sigma_x = " in proc.stdout
    assert f"{document['outputs']['sigma_x']:.6g}" in proc.stdout
    assert document["result_type_string"] == "lume_services.results.generic.Result"


def test_evaluate_scan_and_output_dir(tmp_path: Path) -> None:
    proc = cli(
        "evaluate", "--scan", "quad_k1l=-1:1:11", "--scan", "beta_x=1:2:3",
        "--set", "emit_x=2", "--output-dir", "out", cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "out" / "my_package").glob("*.json")
    document = json.loads(path.read_text())
    assert len(document["outputs"]["sigma_x"]) == 33
    assert document["inputs"]["emit_x"] == 2.0
    # A grid: the first --scan varies slowest.
    assert document["inputs"]["quad_k1l"][:4] == [-1.0, -1.0, -1.0, -0.8]
    assert document["inputs"]["beta_x"][:4] == [1.0, 1.5, 2.0, 1.0]


BAD_ARGS = [
    (["--set", "beta_x=1000"], "'beta_x' = 1000 is outside its range [0.1, 100] m"),
    (["--set", "beta_x=abc"], "'abc' is not a number"),
    (["--set", "beta_x"], "expected NAME=VALUE"),
    (["--set", "nope=1"], "unknown input 'nope'; valid inputs are: beta_x"),
    (["--set", "beta_x=nan"], "'beta_x' is nan"),
    (["--scan", "quad_k1l=1:2"], "not START:STOP:NUM"),
    (["--scan", "quad_k1l=-9:0:5"], "'quad_k1l' = -9 at index 0"),
    (["--set", "beta_x=1", "--scan", "beta_x=1:2:3"], "both --set and --scan"),
]


@pytest.mark.parametrize("command", ["evaluate", "run"])
@pytest.mark.parametrize(("args", "message"), BAD_ARGS, ids=[" ".join(a) for a, _ in BAD_ARGS])
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture, command: str, args: list[str], message: str
) -> None:
    # In-process: the CLI refuses these before Prefect or any target is touched.
    os.chdir(tmp_path)
    assert main([command, *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err
    assert err.count("\n") == 1  # one line, no traceback
    assert list(tmp_path.iterdir()) == []


def test_bad_setting_from_environment(tmp_path: Path) -> None:
    proc = cli("evaluate", cwd=tmp_path, env={"MY_PACKAGE_TARGET": "s3"})
    assert proc.returncode == 2
    assert "MY_PACKAGE_TARGET" in proc.stderr and "Traceback" not in proc.stderr
    assert list(tmp_path.iterdir()) == []


def test_unwritable_output_dir_is_a_clear_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("not a directory")
    proc = cli("evaluate", "--output-dir", "file/sub", cwd=tmp_path)
    assert proc.returncode == 1
    assert proc.stderr.startswith("error: ") and "file/sub" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_describe_lists_every_variable(tmp_path: Path) -> None:
    proc = cli("describe", cwd=tmp_path)
    assert proc.returncode == 0
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["variable", "kind", "default", "range", "unit"]
    assert lines[1].split() == ["beta_x", "input", "10", "[0.1,", "100]", "m"]
    assert len(lines) == 1 + 5 + 3


def test_readme_table_is_describe_markdown() -> None:
    readme = (ROOT / "README.md").read_text()
    assert describe_table(markdown=True) in readme, (
        "README.md's variables table is out of date: "
        "paste the output of `python -m my_package describe --markdown`"
    )


@pytest.mark.slow
def test_run_default_flow_in_a_cold_process(tmp_path: Path) -> None:
    """README's main job: the flow with its defaults, embedded Prefect, filesystem target."""
    proc = cli("run", cwd=tmp_path, env={"PREFECT_HOME": str(tmp_path / "prefect")})
    assert proc.returncode == 0, proc.stderr
    (path,) = (tmp_path / "results" / "my_package").glob("*.json")
    assert f"Result saved to {path}" in proc.stdout
    document = json.loads(path.read_text())
    assert document["inputs"]["quad_k1l"] == 0.1
    assert len(document["flow_id"]) == 36
