"""The model on lume-base: cold ``evaluate`` against its import floor, and a scan with arrays.

Printed, each measured in the same run:

* cold processes (median of --repeat, interleaved): ``python -m my_package evaluate``
  against ``python -c "import lume.variables"`` (lume-base: the floor of anything that
  uses its variables) and ``import numpy, yaml, pydantic``; beside them the figure
  lume-model 1.8.1 gave (bench/README.md, measured before issue 11);
* a scan of --points points of the first input with every output, array outputs included
  (the example's profile: 100 values per point): time per point of the model's own
  ``_evaluate`` (the floor), of the Python API ``evaluate`` (validation of every output's
  shape, dtype, finiteness and range) and of lume-base's ``set``/``get`` per point (timed on
  --loop-points points); peak RSS (ru_maxrss) of a child process for each, and for the scan
  built into a lume-services Result and saved to the filesystem target.

    python bench/bench_model.py [--repeat 7] [--points 100000] [--loop-points 2000]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# Before issue 11, with lume-model 1.8.1 (bench/README.md, bench_startup.py, same machine).
OLD_EVALUATE_S = 0.208

COMMANDS = {
    "import numpy, yaml, pydantic": ["-c", "import numpy, yaml, pydantic"],
    "import lume.variables": ["-c", "import lume.variables"],
    "-m my_package evaluate": ["-m", "my_package", "evaluate"],
}

# One step at N points in a child process; it prints its wall time, the parent its VmHWM.
CHILD = """
import sys, time
import numpy as np
from my_package.model import MyPackageModel
from my_package.validation import validate_inputs
step, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
model = MyPackageModel()
first = model.input_variables[0]
low, high = first.value_range or (first.default_value, first.default_value + 1.0)
values = validate_inputs({first.name: np.linspace(low, high, n)}, model.input_variables)
start = time.perf_counter()
if step == "floor":
    model._evaluate(values)
elif step == "api":
    model.evaluate(values)
elif step == "saved":
    from my_package.config import Settings
    from my_package.results import Result
    from my_package.targets import save_result
    result = Result(flow_id="bench", inputs=values, outputs=model.evaluate(values))
    save_result(result, Settings(output_dir=out), "filesystem")
elif step == "set/get":
    names = model.output_names
    for x in np.linspace(low, high, n).tolist():
        model.set({first.name: x})
        model.get(names)
print(time.perf_counter() - start)
"""


def wall(args: list[str], cwd: Path, env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, *args], cwd=cwd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def child(step: str, points: int, work: Path, env: dict[str, str]) -> tuple[float, float]:
    """(seconds for the step, peak RSS in MB) of one child process.

    ru_maxrss would also count pages of a forking parent, but this script imports nothing
    heavy (about 10 MB), so the child's peak is its own.
    """
    proc = subprocess.Popen(
        [sys.executable, "-c", CHILD, step, str(points), str(work / "results")],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    output = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)  # ru_maxrss: this child's peak RSS, in kB
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"the {step} child failed")
    seconds, peak_kb = float(output), usage.ru_maxrss
    return seconds, peak_kb / 1024


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--loop-points", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**os.environ, "MY_PACKAGE_OUTPUT_DIR": str(work / "results")}
        for cmd in COMMANDS.values():  # warm the file cache and __pycache__
            wall(cmd, work, env)
        times: dict[str, list[float]] = {name: [] for name in COMMANDS}
        for _ in range(args.repeat):
            for name, cmd in COMMANDS.items():
                times[name].append(wall(cmd, work, env))
        median = {name: statistics.median(values) for name, values in times.items()}
        floor = median["import lume.variables"]
        print(f"cold-process wall time, median of {args.repeat} (python {sys.version.split()[0]})")
        for name, values in times.items():
            print(
                f"  {name:30s} {median[name]:6.3f} s  [{min(values):.3f}-{max(values):.3f}]  "
                f"{median[name] / floor:5.2f}x lume.variables"
            )
        evaluate = median["-m my_package evaluate"]
        print(
            f"  {'evaluate with lume-model 1.8.1':30s} {OLD_EVALUATE_S:6.3f} s  (bench/README.md)"
            f"  now {evaluate / OLD_EVALUATE_S:.1f}x that"
        )

        print(f"\nscan of {args.points:,} points, every output (arrays included), child processes")
        rows = {}
        for step in ("floor", "api", "saved"):
            runs = [child(step, args.points, work, env) for _ in range(3)]
            rows[step] = (
                statistics.median(r[0] for r in runs),
                statistics.median(r[1] for r in runs),
            )
        loop_s, _ = child("set/get", args.loop_points, work, env)
        base = rows["floor"][0] / args.points
        labels = {
            "floor": "_evaluate on arrays (floor)",
            "api": "Python API evaluate",
            "saved": "evaluate + Result + save",
        }
        for step, (seconds, mb) in rows.items():
            per_point = seconds / args.points
            print(
                f"  {labels[step]:30s} {seconds:7.3f} s  {per_point * 1e9:9.1f} ns/point  "
                f"{per_point / base:7.1f}x floor  peak {mb:6.0f} MB"
            )
        per_point = loop_s / args.loop_points
        print(
            f"  {'lume-base set/get per point':30s} {per_point * 1e9:17.1f} ns/point  "
            f"{per_point / base:7.0f}x floor  (on {args.loop_points:,} points)"
        )


if __name__ == "__main__":
    main()
