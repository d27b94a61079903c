"""Several local `run`s at once, each with its own temporary Prefect server, on a brand-new
PREFECT_HOME: all succeed, and their output holds no ERROR line and no traceback (the
servers' shutdown noise goes to $PREFECT_HOME/temporary-server.log)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from my_package.local_server import LOG_NAME


@pytest.mark.slow
def test_concurrent_runs_on_a_fresh_home_are_quiet(tmp_path: Path) -> None:
    home = tmp_path / "prefect"  # new: the first server migrates it, the others wait
    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}
    env.update(PREFECT_HOME=str(home), PREFECT_LOGGING_LEVEL="WARNING")
    procs = [
        subprocess.Popen(
            [sys.executable, "-m", "my_package", "run", "--output-dir", f"out-{i}"],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for i in range(3)
    ]
    outputs = [proc.communicate(timeout=600)[0] for proc in procs]
    for proc, output in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, output
        assert "ERROR" not in output and "Traceback" not in output, output
    assert all(len(list((tmp_path / f"out-{i}").rglob("*.json"))) == 1 for i in range(3))
    # The servers' own messages are kept, in a file, not thrown away.
    config = yaml.safe_load((home / "temporary-server-logging.yml").read_text())
    assert config["root"]["handlers"] == ["server_file"]
    assert config["handlers"]["server_file"]["filename"] == str(home / LOG_NAME)
