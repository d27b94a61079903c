"""Cold-process wall time of the main job, side by side with Prefect's own floor.

Measures, each in a fresh Python process (median of --repeat runs):
  baseline  a bare one-task Prefect flow (what any Prefect flow costs here)
  run       python -m my_package run       (the example flow, embedded Prefect)
  evaluate  python -m my_package evaluate  (the same steps without Prefect)
and prints the ratios. All runs share one PREFECT_HOME, warmed once, so the
database migrations of a brand-new home are not counted.

    python bench/bench_run.py [--repeat 5]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BARE_FLOW = """
from prefect import flow, task

@task
def one():
    return 1

@flow
def bare():
    return one()

bare()
"""


def wall(cmd: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {
            **os.environ,
            "DO_NOT_TRACK": "1",
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_LOGGING_LEVEL": "WARNING",
            "PREFECT_HOME": str(work / "prefect"),
            "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
            "MY_PACKAGE_OUTPUT_DIR": str(work / "results"),
        }
        commands = {
            "baseline": [sys.executable, "-c", BARE_FLOW],
            "run": [sys.executable, "-m", "my_package", "run"],
            "evaluate": [sys.executable, "-m", "my_package", "evaluate"],
        }
        wall(commands["baseline"], work, env)  # warm-up: creates and migrates the database
        times: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(args.repeat):  # interleaved, so drifts in machine load hit all alike
            for name, cmd in commands.items():
                times[name].append(wall(cmd, work, env))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"cold-process wall time, median of {args.repeat} (python {sys.version.split()[0]})")
    for name, cmd in commands.items():
        shown = " ".join(cmd[1:]) if name != "baseline" else "bare one-task Prefect flow"
        spread = f"{min(times[name]):.2f}-{max(times[name]):.2f}"
        ratio = median[name] / median["baseline"]
        print(f"  {name:9s} {median[name]:6.2f} s  (range {spread} s)  {ratio:5.2f}x  {shown}")


if __name__ == "__main__":
    main()
