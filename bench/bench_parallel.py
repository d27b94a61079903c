"""Chunked scans in parallel: speed-up of threads, processes and Dask, and what chunking costs.

Printed, side by side, all measured in this one run:

* a 200-point scan of a CPU-bound pure-Python model (a loop, calibrated here to --cpu-ms per
  point): serial (1 worker) vs 2 processes, a local Dask cluster of 2 workers (``--dask
  local:2``, started by the scan) and a running one (``dask scheduler`` and 2 ``dask worker``
  processes started here once, as a user's cluster is: ``--dask tcp://...``);
* the same scan of a model that sleeps 20 ms per point (waits like an external program,
  releases the GIL): serial vs 2, 4 and 8 threads and both Dask clusters;
* each on both paths, ``evaluate --scan`` (a local pool, no Prefect: chunks.scan_in_pool,
  timed in a fresh process as the command runs it, once lume-base and Dask are imported)
  and the Prefect flow's scan step (one task per chunk: flow.evaluate_scan, timed inside a
  flow in this process);
* wall time, speed-up over serial and efficiency (speed-up / workers), each the median of
  --repeat rounds, a round running every row of a model once (interleaved: this VM's speed
  drifts by 20 % between minutes, and then moves the baseline and the rows alike). Pool
  and cluster start-up are inside the wall time: the local pool forks its processes, as
  `evaluate --scan` does; the flow's come from a fork server started before the flow's
  rows, as ``run`` starts it while Prefect starts, and so do the flow's ``--dask local:N``
  workers (``evaluate --scan --dask local:N`` spawns them, each importing Dask and
  lume-base; never Prefect). The running cluster's workers have done so before (one
  untimed scan first);
* the 10^5-point numpy scan of the package's own model: ``evaluate --scan`` in a cold process
  with one chunk (what the code did before chunking) vs the default chunks, and the whole
  flow run in this process before chunking (one evaluate task, as before) vs after.

    python bench/bench_parallel.py [--points 200] [--sleep-ms 20] [--cpu-ms 100] [--repeat 3]

The slow models are tests/slow_models.py (test-only subclasses of the package's model).
"""

import argparse
import contextlib
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from _prefect_env import offline_env  # bench/ is sys.path[0] when a script runs

ROOT = Path(__file__).resolve().parents[1]


def calibrate_loops(cpu_ms: float) -> int:
    """Loop iterations of slow_models.LoopModel that take ``cpu_ms`` on this machine."""
    loops = 2_000_000
    start = time.perf_counter()
    spin(loops)
    return max(1, int(loops * cpu_ms / 1000 / (time.perf_counter() - start)))


def spin(loops: int) -> int:
    """The CPU model's work without the package: ``loops`` iterations of its loop."""
    total = 0
    for i in range(loops):
        total += i % 7
    return total


def in_fresh_process(*args: str) -> float:
    """Run this script with ``args`` (--time-scan) in a new process: the wall time it prints.

    ``evaluate --scan`` runs in a process with no other thread, so its pool forks; this one
    has Prefect's and Dask's threads by then.
    """
    out = subprocess.run([sys.executable, __file__, *args], check=True, capture_output=True)
    return float(out.stdout)


def rounds(
    run: Callable[[type, Any], float],
    model: type,
    rows: list[tuple[str, Any, int]],
    times: int,
) -> dict[str, float]:
    """The median wall time of each row over ``times`` rounds, each round running every row.

    Interleaved, so that a change in this shared VM's speed (20 % between minutes) skews
    the serial baseline and the parallel rows alike.
    """
    walls: dict[str, list[float]] = {label: [] for label, _, _ in rows}
    for _ in range(times):
        for label, option, _ in rows:
            walls[label].append(run(model, option))
    return {label: statistics.median(values) for label, values in walls.items()}


def scan_inputs(points: int) -> tuple[dict[str, Any], list[str]]:
    """The inputs of a scan of the model's first input over its range, and the scanned name."""
    from my_package.validation import ScanRange, collect_inputs
    from my_package.variables import load_variables

    first = load_variables()[0][0]
    low, high = first.value_range
    values = collect_inputs({}, {first.name: ScanRange(start=low, stop=high, num=points)})
    return values, [first.name]


def time_scan(model_name: str, options: str, points: int) -> float:
    """``evaluate --scan``'s scan (chunks.scan_in_pool) of a slow model: its wall time."""
    sys.path.insert(0, str(ROOT / "tests"))
    import slow_models

    from my_package.chunks import Parallel, scan_in_pool

    values, scanned = scan_inputs(points)
    model, parallel = getattr(slow_models, model_name), Parallel.model_validate_json(options)
    if parallel.dask:
        import distributed  # noqa: F401 (imported before the clock starts, as lume-base is)
    start = time.perf_counter()
    scan_in_pool(model, values, scanned, parallel)
    return time.perf_counter() - start


def row(label: str, wall: float, serial: float, workers: int) -> str:
    speedup = serial / wall
    return f"  {label:<34} {wall:8.2f} s  {speedup:6.2f}x  {speedup / workers:6.0%}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--points", type=int, default=200)
    parser.add_argument("--sleep-ms", type=float, default=20)
    parser.add_argument("--cpu-ms", type=float, default=100)
    # 10^5: the example's 100-pixel profile makes 10^6 points 10^8 output values, past the
    # package's guard on a scan's size (the figures before the profile were at 10^6).
    parser.add_argument("--numpy-points", type=int, default=100_000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds of every measurement (medians are shown)"
    )
    parser.add_argument("--numpy-only", action="store_true", help="only the numpy scans")
    # A measurement run in a fresh process (in_fresh_process): not for the command line.
    parser.add_argument("--time-scan", nargs=2, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.time_scan:
        print(time_scan(*args.time_scan, args.points))
        return 0

    work = Path(tempfile.mkdtemp(prefix="bench_parallel_"))
    env = offline_env(work)
    (work / "prefect").mkdir()
    loops = calibrate_loops(args.cpu_ms)
    env.update(
        SLEEP_PER_POINT=str(args.sleep_ms / 1000),
        LOOPS_PER_POINT=str(loops),
        PYTHONPATH=os.pathsep.join([str(ROOT / "tests"), env.get("PYTHONPATH", "")]),
        MY_PACKAGE_OUTPUT_DIR=str(work / "results"),
        PREFECT_LOCAL_STORAGE_PATH=str(work / "storage"),
    )
    os.environ.update(env)  # this process runs the flows; its pools and clusters inherit it
    sys.path.insert(0, str(ROOT / "tests"))
    import slow_models
    from dask_cluster import dask_cluster

    import my_package.flow as flow_module
    from my_package.chunks import Parallel, plan, start_fork_server
    from my_package.validation import ScanRange
    from my_package.variables import load_variables

    first = load_variables()[0][0]
    low, high = first.value_range
    values, scanned = scan_inputs(args.points)
    cpus = os.cpu_count()
    print(f"machine: {cpus} cores, load average {os.getloadavg()[0]:.1f} (shared: noisy figures)")
    print(f"{args.points} points; sleep model {args.sleep_ms:g} ms/point; CPU model "
          f"{args.cpu_ms:g} ms/point ({loops:,} loop iterations, calibrated)")  # fmt: skip

    def pool_scan(model: type, options: Parallel) -> float:
        json = options.model_dump_json(exclude_none=True)
        points = str(args.points)
        return in_fresh_process("--time-scan", model.__name__, json, "--points", points)

    from prefect import flow

    @flow(name="bench-parallel-scan", persist_result=False)
    def prefect_scan(options: Parallel) -> float:
        # Only the scan step of my_package_flow, timed inside the flow (no server start-up).
        start = time.perf_counter()
        flow_module.evaluate_scan(values, scanned, options)
        return time.perf_counter() - start

    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    def fresh_storage() -> object:
        # A new chunk storage per run: the cache must not answer (that is resume, not speed).
        path = work / f"storage-{time.monotonic_ns()}"
        return temporary_settings({PREFECT_LOCAL_STORAGE_PATH: path})

    def flow_scan(model: type, options: Parallel) -> float:
        flow_module.MyPackageModel = model
        with fresh_storage():
            return prefect_scan(options)

    cluster = "running-cluster"  # replaced by the address of the one started below
    cases: list[tuple[str, type, list[tuple[str, Parallel, int]]]] = [
        ("CPU-bound pure Python", slow_models.LoopModel, [
            ("2 processes", Parallel(workers=2, processes=True), 2),
            ("Dask local, 2 workers", Parallel(dask="local:2"), 2),
            ("Dask cluster (running), 2 workers", Parallel(dask="tcp://" + cluster), 2),
        ]),
        ("sleep (releases the GIL)", slow_models.SleepyModel, [
            ("2 threads", Parallel(workers=2), 2),
            ("4 threads", Parallel(workers=4), 4),
            ("8 threads", Parallel(workers=8), 8),
            ("8 threads, one chunk each", Parallel(workers=8, chunk_size=args.points // 8), 8),
            ("Dask local, 2 workers", Parallel(dask="local:2"), 2),
            ("Dask cluster (running), 2 workers", Parallel(dask="tcp://" + cluster), 2),
        ]),
    ]  # fmt: skip
    print(f"\n  {'':<34} {'wall':>10}  {'speed-up':>7}  {'efficiency':>6}")
    paths = [] if args.numpy_only else [("evaluate --scan (local pool)", pool_scan),
                                        ("Prefect flow", flow_scan)]  # fmt: skip
    with contextlib.ExitStack() as stack:
        address = None
        for path, run in paths:
            if run is flow_scan:
                prefect_scan(Parallel(chunk_size=args.points))  # start the temporary server
                # As `run` does, while Prefect starts, for the process pools and local:2
                # (one fork server a process: its preload and environment serve both).
                local = plan(args.points, Parallel(dask="local:2"))
                start_fork_server(slow_models.LoopModel, local)
            warm = False
            for title, model, options in cases:
                print(f"{path}: {title}")
                rows = [("serial (1 worker)", Parallel(workers=1), 1)]
                for label, option, workers in options:
                    if option.dask == "tcp://" + cluster:
                        if address is None:
                            logs = work / "dask"
                            logs.mkdir()
                            address = stack.enter_context(dask_cluster(logs, env, workers))
                        option = Parallel(dask=address)
                        if not warm:
                            # A running cluster's workers have imported the model
                            # before: its first scan on this path is not timed.
                            run(model, Parallel(dask=address, chunk_size=args.points // 4))
                            warm = True
                    rows.append((label, option, workers))
                walls = rounds(run, model, rows, args.repeat)
                for label, _, workers in rows:
                    print(row(label, walls[label], walls[rows[0][0]], workers), flush=True)

    # -- the package's numpy model (--numpy-points): chunking must cost nothing noticeable --
    n = args.numpy_points
    print(f"\nnumpy model, {n:,} points, medians of {args.repeat}:")
    flow_module.MyPackageModel = slow_models.MyPackageModel
    scan_arg = f"{first.name}={low}:{high}:{n}"

    def cold(*extra: str) -> float:
        start = time.perf_counter()
        command = [sys.executable, "-m", "my_package", "evaluate", "--scan", scan_arg, *extra]
        subprocess.run(command, cwd=work, env=env, check=True, capture_output=True)
        return time.perf_counter() - start

    def interleaved(before: Callable[[], float], after: Callable[[], float]) -> tuple[float, float]:
        # Alternated, so a change in the machine's load skews both alike; medians.
        pairs = [(before(), after()) for _ in range(args.repeat)]
        return tuple(statistics.median(times) for times in zip(*pairs, strict=True))

    before, after = interleaved(lambda: cold("--chunk-size", str(n)), lambda: cold())
    print(f"  evaluate --scan, one chunk (before)   {before:8.3f} s")
    print(f"  evaluate --scan, default chunks       {after:8.3f} s  {after / before - 1:+.1%}")

    scan = {first.name: ScanRange(start=low, stop=high, num=n)}
    chunked = flow_module.evaluate_scan

    def whole_flow(unchunked: bool) -> float:
        # "before": the flow as it was, the whole scan in one evaluate task.
        flow_module.evaluate_scan = (
            (lambda values, scanned, parallel: flow_module.evaluate(values))
            if unchunked
            else chunked
        )
        with fresh_storage():
            start = time.perf_counter()
            flow_module.my_package_flow(scan=scan)
            return time.perf_counter() - start

    flow_before, flow_after = interleaved(lambda: whole_flow(True), lambda: whole_flow(False))
    flow_module.evaluate_scan = chunked
    print(f"  flow run, one evaluate task (before)  {flow_before:8.3f} s")
    print(f"  flow run, default chunks              {flow_after:8.3f} s  "
          f"{flow_after / flow_before - 1:+.1%}")  # fmt: skip
    print(f"\nscratch directory: {work} (delete it: results and chunk storage)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
