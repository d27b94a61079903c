"""Scans of 10^5 and 10^6 points: the package's paths against the model's own numpy speed.

Printed, each measured in the same run (medians of --repeat, ranges in brackets):

* in-process, per size: ``_evaluate`` on numpy arrays (the physical limit, "a"), the Python
  API ``MyPackageModel().evaluate`` with arrays, and the steps of a saved scan (validate,
  build the Result + unique_hash, save to the filesystem target), the save both through
  HDF5 array files (the default above ``file_threshold_bytes``) and, as the baseline, with
  every array in the JSON record (the threshold raised: how every scan was saved before);
* a loop of lume-base ``set``/``get`` per point ("b", what a user would write without
  this package), timed on --loop-points points and extrapolated per point;
* cold processes: ``python -m my_package evaluate --scan`` (array files, and all-JSON as
  the baseline) and ``run --scan`` at each size;
* marginal cost per point, (t(N2) - t(N1)) / (N2 - N1), and its ratio to "a" and "b";
  the all-JSON baselines run only up to --json-max points (an ND output makes them
  gigabytes of text: the example's 100-pixel profile is 10^8 floats at 10^6 points); when
  only N1 is that small, they run at N1 / 10 and N1 and their marginal cost is from those;
* peak memory at the largest size: peak RSS (VmHWM) of a child process for the floor
  (numpy + ``_evaluate``), the API, the saved scan, and the two CLI commands.

    python bench/bench_scan.py [--sizes 100000 1000000] [--repeat 3] [--json-max 100000]
                               [--no-run]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from _prefect_env import offline_env  # bench/ is sys.path[0] when a script runs

from my_package.variables import load_variables

# The first input of variables.yml, scanned across its whole range (any model's works).
_FIRST = load_variables()[0][0]
SCANNED, (LOW, HIGH) = _FIRST.name, _FIRST.value_range

# A child process that does one step at size N and prints nothing: its max RSS is read
# by the parent. "floor" is numpy + the model's own _evaluate, the least any scan needs.
MEMORY_CHILD = """
import sys, numpy as np
from my_package.model import MyPackageModel
from my_package.validation import ScanRange, collect_inputs
step, n, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
model = MyPackageModel()
name, low, high = sys.argv[4], float(sys.argv[5]), float(sys.argv[6])
values = collect_inputs({}, {name: ScanRange(start=low, stop=high, num=n)})
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
"""


def median_range(values: list[float]) -> str:
    return f"{statistics.median(values):8.4f} s [{min(values):.4f}-{max(values):.4f}]"


def timed(fn: Callable[[], object], repeat: int) -> list[float]:
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return times


def child(args: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float]:
    """Wall time (s) and peak RSS (MB) of ``python ARGS`` in a new process.

    The peak is the child's own VmHWM, polled every 10 ms until it exits (ru_maxrss
    would count the forking parent's pages; a Prefect run's server process is apart).
    """
    start = time.perf_counter()
    proc = subprocess.Popen([sys.executable, *args], cwd=cwd, env=env, stdout=subprocess.DEVNULL)
    peak_kb = 0
    while proc.poll() is None:
        try:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak_kb = max(peak_kb, int(status.split("VmHWM:")[1].split()[0]))
        except (OSError, IndexError):
            pass  # exiting
        time.sleep(0.01)
    wall = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"python {' '.join(args)} failed with exit code {proc.returncode}")
    return wall, peak_kb / 1024


def one_size(n: int, repeat: int, out: Path, json_rows: bool) -> dict[str, list[float]]:
    """In-process times of each step of a scan of ``n`` points (all-JSON rows if asked)."""
    from my_package.config import Settings
    from my_package.model import MyPackageModel
    from my_package.results import Result
    from my_package.targets import save_result
    from my_package.validation import ScanRange, collect_inputs

    model = MyPackageModel()
    settings = Settings(output_dir=out)
    scan = {SCANNED: ScanRange(start=LOW, stop=HIGH, num=n)}
    values = collect_inputs({}, scan, model.input_variables)
    outputs = model.evaluate(values)
    rows: dict[str, list[float]] = {}
    for _ in range(max(repeat, 9)):  # cheap steps: more repeats, interleaved
        rows.setdefault("validate (collect_inputs)", []).extend(
            timed(lambda: collect_inputs({}, scan), 1)
        )
        rows.setdefault("a: _evaluate on arrays", []).extend(
            timed(lambda: model._evaluate(values), 1)
        )
        rows.setdefault("API: model.evaluate(arrays)", []).extend(
            timed(lambda: model.evaluate(values), 1)
        )

    def build(flow_id: str = "bench") -> Result:
        result = Result(flow_id=flow_id, inputs=values, outputs=outputs)
        _ = result.unique_hash
        return result

    # Every array in the record, as before array files: the baseline of the file path.
    inline = Settings(output_dir=out / "json", file_threshold_bytes=2**62)
    targets = [("HDF5 files", settings)]
    if json_rows:
        rows["Result + unique_hash, all JSON"] = timed(build, repeat)
        targets.append(("all JSON", inline))
    for label, where in targets:
        built = [build(f"saved{i}") for i in range(repeat)]  # hash cached: the save alone
        rows[f"save_result, {label}"] = timed(
            lambda w=where, b=built: save_result(b.pop(), w), repeat
        )
        fresh = [Result(flow_id=f"all{i}", inputs=values, outputs=outputs) for i in range(repeat)]
        rows[f"Result+hash+save, {label}"] = timed(
            lambda w=where, f=fresh: save_result(Result(**dict(f.pop())), w), repeat
        )
    return rows


def loop_per_point(points: int, repeat: int) -> float:
    """b: one lume-base ``set``/``get`` per point, what a user of the LUMEModel API writes."""
    from my_package.model import MyPackageModel

    model = MyPackageModel()
    names = model.output_names
    values = np.linspace(LOW, HIGH, points).tolist()

    def loop() -> list:
        results = []
        for x in values:
            model.set({SCANNED: x})
            results.append(model.get(names))
        return results

    times = timed(loop, repeat)
    return statistics.median(times) / points


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs=2, default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--loop-points", type=int, default=2000)
    parser.add_argument("--json-max", type=int, default=100_000,
                        help="largest size for the all-JSON baselines")  # fmt: skip
    parser.add_argument("--no-run", action="store_true", help="skip the Prefect `run --scan`")
    args = parser.parse_args()
    n1, n2 = args.sizes
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**offline_env(work), "MY_PACKAGE_OUTPUT_DIR": str(work / "results")}
        json_sizes = [n for n in (n1, n2) if n <= args.json_max]
        if len(json_sizes) == 1:
            json_sizes.insert(0, n1 // 10)
        sizes = sorted({*json_sizes, n1, n2})
        rows: dict[str, dict[int, list[float]]] = {}
        for n in sizes:
            json_rows = n in json_sizes
            for name, times in one_size(n, args.repeat, work / "inproc", json_rows).items():
                rows.setdefault(name, {})[n] = times
        loop = loop_per_point(args.loop_points, args.repeat)

        # Cold processes, interleaved so drifts in machine load hit all alike.
        py = ["-m", "my_package"]
        json_env = {"MY_PACKAGE_FILE_THRESHOLD_BYTES": str(2**62)}  # every array in the JSON
        cli = {
            "evaluate --scan": ([*py, "evaluate"], {}),
            "evaluate, JSON": ([*py, "evaluate"], json_env),
        }
        if not args.no_run:
            cli["run --scan"] = ([*py, "run"], {})
            child([*py, "run"], work, env)  # warm-up: creates and migrates the database
        cold: dict[str, dict[int, list[float]]] = {name: {} for name in cli}
        rss: dict[str, list[float]] = {}
        for _ in range(args.repeat):
            for name, (cmd, extra) in cli.items():
                for n in json_sizes if extra is json_env else (n1, n2):
                    # A new output dir each time, so every run really writes its file.
                    run_env = {**env, **extra, "MY_PACKAGE_OUTPUT_DIR": tempfile.mkdtemp(dir=work)}
                    wall, mb = child([*cmd, "--scan", f"{SCANNED}={LOW}:{HIGH}:{n}"], work, run_env)
                    cold[name].setdefault(n, []).append(wall)
                    if n == n2:
                        rss.setdefault(name, []).append(mb)
        for step in ("floor", "api", "saved"):
            out = tempfile.mkdtemp(dir=work)
            cmd = ["-c", MEMORY_CHILD, step, str(n2), out, SCANNED, str(LOW), str(HIGH)]
            rss[step] = [child(cmd, work, env)[1] for _ in range(2)]
        rss["python -c 'import numpy'"] = [
            child(["-c", "import numpy"], work, env)[1] for _ in range(2)
        ]

    print(f"scan of {SCANNED}, medians of {args.repeat} (python {sys.version.split()[0]}, ", end="")
    print(f"{os.cpu_count()} cpus)")
    print("\nin-process, per call:")
    for name, by_size in rows.items():
        for n in by_size:
            print(f"  {name:28s} N={n:>9,}  {median_range(by_size[n])}")
    print(f"  b: LUMEModel set/get loop     {loop * 1e6:8.1f} us/point ", end="")
    print(f"(timed on {args.loop_points:,} points; x N={n2:,}: {loop * n2:,.0f} s)")
    print("\ncold process, wall:")
    for name, by_size in cold.items():
        for n in by_size:
            print(f"  python -m my_package {name:16s} N={n:>9,}  {median_range(by_size[n])}")

    def marginal(by_size: dict[int, list[float]]) -> float:
        small, large = sorted(by_size)[-2:]  # N1 and N2, or for all-JSON N1 / 10 and N1
        return (statistics.median(by_size[large]) - statistics.median(by_size[small])) / (
            large - small
        )

    floor = marginal(rows["a: _evaluate on arrays"])
    print(f"\nmarginal cost per point, (t({n2:,}) - t({n1:,})) / {n2 - n1:,}"
          f" (all-JSON rows: between N={json_sizes[0]:,} and N={json_sizes[-1]:,}):")  # fmt: skip
    print(f"  {'a: _evaluate on arrays':36s} {floor * 1e9:9.1f} ns   1.0x a")
    subjects = {name: marginal(rows[name]) for name in rows if not name.startswith("a:")}
    subjects |= {f"cold {name}": marginal(by_size) for name, by_size in cold.items()}
    for name, cost in subjects.items():
        print(
            f"  {name:36s} {cost * 1e9:9.1f} ns {cost / floor:6.1f}x a   "
            f"{loop / cost if cost > 0 else float('inf'):9.0f}x faster than b"
        )
    print(f"  {'b: LUMEModel set/get loop':36s} {loop * 1e9:9.1f} ns {loop / floor:6.0f}x a")
    print(f"\npeak memory (VmHWM of a child process) at N={n2:,}:")
    for name, mb in rss.items():
        spread = f"[{min(mb):.0f}-{max(mb):.0f}]"
        print(f"  {name:28s} {statistics.median(mb):7.0f} MB  {spread}")
    from my_package.model import MyPackageModel
    from my_package.validation import collect_inputs

    point = collect_inputs({}, {})  # one point: its sizes give a scan's array bytes
    floats = sum(np.size(v) for v in [*point.values(), *MyPackageModel().evaluate(point).values()])
    print(f"  (the arrays themselves: {floats} values per point x {n2:,} x 8 B = "
          f"{floats * n2 * 8 / 2**20:,.0f} MB)")  # fmt: skip


if __name__ == "__main__":
    main()
