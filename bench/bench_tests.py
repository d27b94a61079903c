"""Wall time of the test suite on this machine: the full run and the fast set.

Runs, from the repository root, in the current environment, each with Prefect offline
and a scratch PREFECT_HOME (as .ci/run sets them):

  full      pytest -m "not container"               (README's ``pytest``; the container test
                                                     needs a Docker engine and is timed apart)
  fast set  pytest -m "not slow and not container"  (the edit-test loop)

and prints wall times against the goals (full < 3 min, fast set < 1 min), the pass/fail
counts and the slowest tests (``--durations``).

    python bench/bench_tests.py [--durations 15] [--only fast|full]
"""

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _prefect_env import offline_env  # bench/ is sys.path[0] when a script runs

ROOT = Path(__file__).resolve().parent.parent
RUNS = {
    "fast": (["-m", "not slow and not container"], 60.0),
    "full": (["-m", "not container"], 180.0),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--durations", type=int, default=15)
    parser.add_argument("--only", choices=sorted(RUNS))
    args = parser.parse_args()
    print(f"test suite wall time (python {sys.version.split()[0]}, {os.cpu_count()} cpus)")
    for name, (marker, goal) in RUNS.items():
        if args.only and name != args.only:
            continue
        with tempfile.TemporaryDirectory() as tmp:
            env = offline_env(Path(tmp))
            cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *marker]
            cmd += [f"--durations={args.durations}"]
            start = time.perf_counter()
            proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
            wall = time.perf_counter() - start
        summary = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else "(no output)"
        verdict = "met" if wall < goal and proc.returncode == 0 else "NOT met"
        print(f"\n  {name:5s} pytest {' '.join(marker)!r}: {wall:6.1f} s wall ", end="")
        print(f"(goal < {goal:.0f} s: {verdict}); {summary}")
        slowest = re.findall(r"^\d+\.\d+s (?:call|setup|teardown) .*$", proc.stdout, re.MULTILINE)
        if slowest:
            print("  slowest:")
            for line in slowest:
                print(f"    {line}")
        if proc.returncode:
            print(proc.stdout[-3000:])


if __name__ == "__main__":
    main()
