"""Every mistake a user can make: one ``error:`` line, the right exit code, no traceback.

Each row runs the installed console script (``my-package``) in a fresh process, as a
user would, from an empty directory, and checks that nothing was written there.
Variable names, ranges and defaults come from variables.yml, so the table holds for
any model. To add a row (e.g. for a new subcommand): append ``Mistake(...)`` to
``MISTAKES``; ``{tmp}`` and ``{closed_port}`` in arguments and values are filled in.
"""

import math
import os
import shutil
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from lume.variables import ScalarVariable

from my_package.validation import MAX_SCAN_POINTS
from my_package.variables import load_variables

ALL_INPUTS, _ = load_variables()
# The settable scalar inputs (read-only ones keep their defaults; arrays cannot be scanned).
INPUTS = [var for var in ALL_INPUTS if not var.read_only and isinstance(var, ScalarVariable)]
FIRST, LAST = INPUTS[0], INPUTS[-1]
# Out-of-range rows need a finite range that refuses (not warn/none); else scan near the default.
BOUNDED = (
    FIRST.value_range is not None
    and bool(np.isfinite(FIRST.value_range).all())
    and FIRST.default_validation_config == "error"
)
LOW, HIGH = FIRST.value_range if BOUNDED else (FIRST.default_value - 1, FIRST.default_value + 1)
ABOVE = HIGH + (HIGH - LOW)
GOOD = f"{LOW}:{HIGH}:3"
SECRET = "s3cr3t-do-not-print"
# The console script where the package is installed; else (a source tree on PYTHONPATH, as
# the renamed-template self-checks run it) the same main through `python -m`.
_SCRIPT = shutil.which("my-package", path=str(Path(sys.executable).parent))
CLI = [_SCRIPT] if _SCRIPT else [sys.executable, "-m", "my_package"]


@dataclass
class Mistake:
    """One row: arguments, extra environment, exit code, text the error line must hold."""

    args: list[str]
    code: int
    says: str
    env: dict[str, str] = field(default_factory=dict)
    never: tuple[str, ...] = ()  # text that must not appear (secrets, pydantic noise)
    applies: bool = True  # False: the model has nothing to test it on (e.g. no range)


PYDANTIC_NOISE = ("errors.pydantic.dev", "results_db.", "validation error for")
MISTAKES: dict[str, Mistake] = {
    # --- inputs and scans (run and evaluate share them)
    "set above range": Mistake(
        ["evaluate", "--set", f"{FIRST.name}={ABOVE}"],
        2,
        f"'{FIRST.name}' = {ABOVE!r} is outside its range",
        applies=BOUNDED,
    ),
    "set not a number": Mistake(["run", "--set", f"{FIRST.name}=abc"], 2, "'abc' is not a number"),
    "set without =": Mistake(["evaluate", "--set", FIRST.name], 2, "expected NAME=VALUE"),
    "set unknown name": Mistake(["run", "--set", "nope=1"], 2, "unknown input 'nope'; valid"),
    "set near-miss name": Mistake(
        ["evaluate", "--set", f"{FIRST.name}x=1"], 2, f"did you mean '{FIRST.name}'?"
    ),
    "scan near-miss name": Mistake(
        ["run", "--scan", f"{FIRST.name}_={GOOD}"], 2, f"did you mean '{FIRST.name}'?"
    ),
    "set nan": Mistake(["run", "--set", f"{FIRST.name}=nan"], 2, f"'{FIRST.name}' is nan"),
    "set twice": Mistake(
        ["evaluate", "--set", f"{FIRST.name}=1", "--set", f"{FIRST.name}=2"],
        2,
        f"--set {FIRST.name} is given twice",
    ),
    "scan twice": Mistake(
        ["run", "--scan", f"{FIRST.name}={GOOD}", "--scan", f"{FIRST.name}={GOOD}"],
        2,
        f"--scan {FIRST.name} is given twice",
    ),
    "set and scan": Mistake(
        ["run", "--set", f"{FIRST.name}={LOW}", "--scan", f"{FIRST.name}={GOOD}"],
        2,
        "is both --set and --scan",
    ),
    "scan two parts": Mistake(["evaluate", "--scan", f"{LAST.name}=1:2"], 2, "not START:STOP:NUM"),
    "scan NUM 0": Mistake(
        ["run", "--scan", f"{FIRST.name}={LOW}:{HIGH}:0"],
        2,
        f"NUM '0' must be a whole number from 1 to {MAX_SCAN_POINTS:,}",
    ),
    "scan NUM negative": Mistake(
        ["evaluate", "--scan", f"{FIRST.name}={LOW}:{HIGH}:-5"], 2, "NUM '-5' must be a whole"
    ),
    "scan NUM huge": Mistake(
        ["run", "--scan", f"{FIRST.name}={LOW}:{HIGH}:99999999999"], 2, "NUM '99999999999' must"
    ),
    "scan NUM abc": Mistake(
        ["evaluate", "--scan", f"{FIRST.name}={LOW}:{HIGH}:abc"], 2, "NUM 'abc' must be a whole"
    ),
    "scan START abc": Mistake(
        ["run", "--scan", f"{FIRST.name}=abc:{HIGH}:3"], 2, "START 'abc' must be a finite number"
    ),
    "scan outside range": Mistake(
        ["evaluate", "--scan", f"{FIRST.name}={LOW}:{ABOVE}:5"],
        2,
        "is outside its range",
        applies=BOUNDED,
    ),
    # Every input at the largest NUM: with 3+ inputs the product overflows int64.
    "grid too large": Mistake(
        ["run", *(a for v in INPUTS for a in ("--scan", f"{v.name}=0:1:{MAX_SCAN_POINTS}"))],
        2,
        f"points, more than {MAX_SCAN_POINTS:,}",
        applies=len(INPUTS) >= 2,
    ),
    # --- command-line usage (argparse)
    "unknown command": Mistake(["frobnicate"], 2, "invalid choice: 'frobnicate'"),
    "no command": Mistake([], 2, "the following arguments are required: COMMAND"),
    "bad --target": Mistake(["run", "--target", "s3"], 2, "invalid choice: 's3'"),
    "--set without value": Mistake(["evaluate", "--set"], 2, "expected one argument"),
    "describe unknown flag": Mistake(["describe", "--bogus"], 2, "unrecognized arguments: --bogus"),
    "describe two formats": Mistake(["describe", "--json", "--markdown"], 2, "not allowed with"),
    # --- settings (environment or .env): exit 2, named by their variable
    "bad MY_PACKAGE_TARGET": Mistake(
        ["run"], 2, "MY_PACKAGE_TARGET='s3'", {"MY_PACKAGE_TARGET": "s3"}, PYDANTIC_NOISE
    ),
    "bad MY_PACKAGE_PROJECT_NAME": Mistake(
        ["evaluate"], 2, "MY_PACKAGE_PROJECT_NAME='-x'", {"MY_PACKAGE_PROJECT_NAME": "-x"}
    ),
    "bad LUME_RESULTS_DB__PORT": Mistake(
        ["run", "--target", "mongodb"],
        2,
        "LUME_RESULTS_DB__PORT='abc' (environment or .env) is not valid: use a whole number",
        {"LUME_RESULTS_DB__PORT": "abc"},
        PYDANTIC_NOISE,
    ),
    "port out of range": Mistake(
        ["evaluate", "--target", "mongodb"],
        2,
        "LUME_RESULTS_DB__PORT='70000'",
        {"LUME_RESULTS_DB__PORT": "70000"},
    ),
    "timeout too short": Mistake(
        ["run"],
        2,
        "LUME_RESULTS_DB__TIMEOUT_MS='5'",
        {"MY_PACKAGE_TARGET": "mongodb", "LUME_RESULTS_DB__TIMEOUT_MS": "5"},
    ),
    "LUME_RESULTS_DB not JSON": Mistake(
        ["evaluate"],
        2,
        "LUME_RESULTS_DB (environment or .env) is not valid JSON",
        {"LUME_RESULTS_DB": f'{{"password": "{SECRET}"'},
        (SECRET, *PYDANTIC_NOISE),
    ),
    "output dir under a file": Mistake(
        ["evaluate", "--output-dir", "{tmp}/a-file/sub"], 2, "a-file is a file, not a directory"
    ),
    "MY_PACKAGE_OUTPUT_DIR is a file": Mistake(
        ["run"], 2, "MY_PACKAGE_OUTPUT_DIR=", {"MY_PACKAGE_OUTPUT_DIR": "{tmp}/a-file"}
    ),
    "output dir not writable": Mistake(
        ["evaluate", "--output-dir", "/proc/my-results"], 2, "cannot write in /proc"
    ),
    "PREFECT_API_URL not a URL": Mistake(
        ["run"],
        2,
        "PREFECT_API_URL='localhost:4200' is not an http(s) URL",
        {"PREFECT_API_URL": "localhost:4200"},
    ),
    # --- services that do not answer: exit 1, within the timeout
    "MongoDB not running": Mistake(
        ["run", "--target", "mongodb"],
        1,
        "MongoDB at 127.0.0.1:{closed_port} does not answer",
        {"LUME_RESULTS_DB__HOST": "127.0.0.1", "LUME_RESULTS_DB__PORT": "{closed_port}"},
    ),
    "MongoDB not running, evaluate": Mistake(
        ["evaluate"],
        1,
        "LUME_RESULTS_DB__HOST / LUME_RESULTS_DB__PORT",
        {"MY_PACKAGE_TARGET": "mongodb", "LUME_RESULTS_DB__PORT": "{closed_port}"},
    ),
    "stale PREFECT_API_URL": Mistake(
        ["run"],
        1,
        "PREFECT_API_URL=http://127.0.0.1:{closed_port}/api does not answer",
        {"PREFECT_API_URL": "http://127.0.0.1:{closed_port}/api"},
    ),
    "PREFECT_API_URL with a password": Mistake(
        ["run"],
        1,
        "PREFECT_API_URL=http://127.0.0.1:{closed_port}/api does not answer",
        {"PREFECT_API_URL": f"http://me:{SECRET}@127.0.0.1:{{closed_port}}/api"},
        (SECRET,),
    ),
    # --- results (issue 13's command): add its rows here.
}


@pytest.fixture(scope="module")
def closed_port() -> int:
    """A local port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_table_is_large_enough() -> None:
    assert len(MISTAKES) >= 30
    commands = {m.args[0] for m in MISTAKES.values() if m.args}
    assert {"run", "evaluate", "describe"} <= commands


@pytest.mark.parametrize("name", list(MISTAKES))
def test_mistake_is_one_error_line(name: str, tmp_path: Path, closed_port: int) -> None:
    mistake = MISTAKES[name]
    if not mistake.applies:
        pytest.skip("this model has nothing to test it on (a range, a second input)")
    work = tmp_path / "work"
    work.mkdir()
    (tmp_path / "a-file").write_text("not a directory")

    def fill(text: str) -> str:
        return text.replace("{tmp}", str(tmp_path)).replace("{closed_port}", str(closed_port))

    env = {key: value for key, value in os.environ.items() if key != "PREFECT_API_URL"}
    env.update({key: fill(value) for key, value in mistake.env.items()})
    proc = subprocess.run(
        [*CLI, *map(fill, mistake.args)],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    lines = proc.stderr.splitlines()
    assert proc.returncode == mistake.code, proc.stderr
    assert len(lines) == 1 and lines[0].startswith("error: "), proc.stderr
    assert fill(mistake.says) in lines[0]
    assert "Traceback" not in proc.stderr and proc.stdout == ""
    for text in mistake.never:
        assert text not in proc.stderr
    assert list(work.iterdir()) == []  # nothing written, no directory created
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a-file", "work"]


def test_debug_shows_the_traceback(tmp_path: Path) -> None:
    for how in (["--debug"], []):
        env = {**os.environ, **({} if how else {"MY_PACKAGE_DEBUG": "1"})}
        args = [*CLI, *how, "evaluate", "--set", "nope=1"]
        proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True)
        assert proc.returncode == 1
        assert "Traceback" in proc.stderr and "unknown input 'nope'" in proc.stderr


def test_closed_pipe_ends_quietly(tmp_path: Path) -> None:
    proc = subprocess.Popen(
        [*CLI, "describe", "--json"], stdout=subprocess.PIPE, stderr=subprocess.PIPE
    )
    proc.stdout.close()  # the reader is gone before anything is written, like `| head -0`
    assert proc.wait(timeout=60) == 0
    assert proc.stderr.read() == b""


@pytest.mark.slow
def test_user_error_inside_the_flow_is_one_line_too(
    tmp_path: Path, mongo_server: tuple[str, int]
) -> None:
    """A mistake only the save can find (a scan too large for one MongoDB document):
    Prefect's own console records of it are dropped, the CLI prints one line."""
    host, port = mongo_server
    env = {
        **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"},
        "LUME_RESULTS_DB__HOST": host,
        "LUME_RESULTS_DB__PORT": str(port),
        "PREFECT_HOME": str(tmp_path / "prefect"),
        "PREFECT_LOGGING_LEVEL": "WARNING",
        # The 1.1 M-point run is slow on a shared machine: give Prefect's server time to start.
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "300",
    }
    # 2.2 M values (the scanned input and every output value) of >= 9 bytes each in BSON:
    # over 16 MB for any model, and under the 10^8-output-value guard that refuses bigger scans.
    from my_package.variables import is_nd, load_variables

    per_point = 1 + sum(math.prod(v.shape) if is_nd(v) else 1 for v in load_variables()[1])
    scan = f"{FIRST.name}={LOW}:{HIGH}:{-(-2_200_000 // per_point)}"
    proc = subprocess.run(
        [*CLI, "run", "--target", "mongodb", "--scan", scan],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 1, proc.stderr
    lines = proc.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "too large" in lines[0]
