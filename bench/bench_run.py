"""Cold-process wall time of `run`: succeeding, failing in pre-flight, and many at once.

Three sections, each with its baseline measured in the same run (``--only`` picks one):
  startup      (median of --repeat runs, each in a fresh Python process)
               baseline  a bare one-task Prefect flow (what any Prefect flow costs here)
               run       python -m my_package run       (the default flow, embedded Prefect)
               evaluate  python -m my_package evaluate  (the same steps without Prefect)
               and, against a `prefect server` already running (PREFECT_API_URL set), the
               bare flow again (the floor with a server) and `run`.
  failures     a failing `run` for each pre-flight mistake (bad setting, unwritable output
               directory, MongoDB or Prefect server not answering, bad scan): goal < 1 s
               each; baseline: `run --help` (Python and the CLI's start-up alone).
  concurrency  6 `run`s started at once against the same 6 one after another (each with
               its own temporary Prefect server), and 6 at once against one running
               `prefect server`; counts ERROR lines and failures in their output.
All runs share one PREFECT_HOME, warmed once, so the migrations of a brand-new home are
not counted.

    python bench/bench_run.py [--repeat 5] [--only startup|failures|concurrency] [--runs 6]
"""

import argparse
import contextlib
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

from _prefect_env import offline_env  # bench/ is sys.path[0] when a script runs

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


@contextlib.contextmanager
def prefect_server(env: dict[str, str], log: Path) -> Iterator[str]:
    """A `prefect server` on a free local port; yields its API URL, stops it by pid."""
    port = free_port()
    cmd = [sys.executable, "-m", "prefect", "server", "start", "--host", "127.0.0.1"]
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*cmd, "--port", str(port)], env=env, stdout=out, stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip
    url = f"http://127.0.0.1:{port}/api"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2).close()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    raise SystemExit(f"prefect server did not start:\n{log.read_text()}") from None
                time.sleep(0.2)
        yield url
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def bench_startup(work: Path, env: dict[str, str], repeat: int) -> None:
    commands = {
        "baseline": [sys.executable, "-c", BARE_FLOW],
        "run": [sys.executable, "-m", "my_package", "run"],
        "evaluate": [sys.executable, "-m", "my_package", "evaluate"],
    }
    with_server = {"baseline+server": commands["baseline"], "run+server": commands["run"]}
    times: dict[str, list[float]] = {name: [] for name in {**commands, **with_server}}
    with prefect_server(env, work / "server.log") as url:
        server_env = {**env, "PREFECT_API_URL": url}
        wall(commands["baseline"], work, server_env)  # warm-up: the server's first flow
        for _ in range(repeat):  # interleaved, so drifts in load hit all alike
            for name, cmd in commands.items():
                times[name].append(wall(cmd, work, env))
            for name, cmd in with_server.items():
                times[name].append(wall(cmd, work, server_env))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"startup: cold-process wall time, median of {repeat}")
    for name, cmd in {**commands, **with_server}.items():
        shown = " ".join(cmd[1:]) if cmd != commands["baseline"] else "bare one-task Prefect flow"
        if name.endswith("+server"):
            shown += ", with a running server"
            base = "baseline+server"
        else:
            base = "baseline"
        spread = f"{min(times[name]):.2f}-{max(times[name]):.2f}"
        ratio = median[name] / median[base]
        print(
            f"  {name:15s} {median[name]:6.2f} s  (range {spread} s)  {ratio:5.2f}x {base}  {shown}"
        )


def failures(work: Path) -> dict[str, tuple[list[str], dict[str, str]]]:
    """Each pre-flight mistake: the `run` arguments and the environment that make it."""
    from my_package.variables import load_variables

    first = load_variables()[0][0].name  # read from variables.yml: holds for any model
    (work / "a-file").write_text("not a directory")
    closed = str(free_port())  # nothing listens there
    return {
        "MY_PACKAGE_TARGET=foo": (
            [],
            {"MY_PACKAGE_TARGET": "foo"},
        ),
        "LUME_RESULTS_DB__PORT=abc, mongodb": (
            ["--target", "mongodb"], {"LUME_RESULTS_DB__PORT": "abc"}
        ),
        "LUME_RESULTS_DB=notjson": ([], {"LUME_RESULTS_DB": "notjson"}),
        "--output-dir under a file": (["--output-dir", str(work / "a-file" / "sub")], {}),
        "MongoDB not running": (
            ["--target", "mongodb"],
            {"LUME_RESULTS_DB__HOST": "127.0.0.1", "LUME_RESULTS_DB__PORT": closed},
        ),
        "stale PREFECT_API_URL": ([], {"PREFECT_API_URL": f"http://127.0.0.1:{closed}/api"}),
        "--scan NUM 0": (["--scan", f"{first}=1:2:0"], {}),
        "--set twice": (["--set", f"{first}=1", "--set", f"{first}=2"], {}),
    }  # fmt: skip


def bench_failures(work: Path, env: dict[str, str], repeat: int) -> None:
    run = [sys.executable, "-m", "my_package", "run"]
    # Two references: Python + the CLI alone, and a whole successful evaluate.
    cases = {
        "baseline: run --help": (["--help"], {}),
        "evaluate (succeeds)": ([], {}),
        **failures(work),
    }
    evaluate = [sys.executable, "-m", "my_package", "evaluate"]
    times: dict[str, list[float]] = {name: [] for name in cases}
    codes: dict[str, int] = {}
    for _ in range(repeat):
        for name, (args, extra) in cases.items():
            start = time.perf_counter()
            cmd, run_env = [*run, *args], {**env, **extra}
            if name == "evaluate (succeeds)":
                cmd = evaluate
            proc = subprocess.run(cmd, cwd=work, env=run_env, capture_output=True)
            times[name].append(time.perf_counter() - start)
            codes[name] = proc.returncode
    base = statistics.median(times["baseline: run --help"])
    print(f"failures: wall time of a failing `run`, median of {repeat} (goal < 1 s each)")
    for name, values in times.items():
        median = statistics.median(values)
        print(
            f"  {name:36s} {median:5.2f} s  (range {min(values):.2f}-{max(values):.2f})"
            f"  {median / base:5.2f}x baseline  exit {codes[name]}"
        )


def _many(cmd: list[str], work: Path, env: dict[str, str], n: int, together: bool) -> tuple:
    """Run ``cmd`` n times, at once or one after another: (wall s, failures, ERROR lines)."""
    start = time.perf_counter()
    procs: list[subprocess.Popen] = []
    outputs = []
    for i in range(n):
        run_env = {**env, "MY_PACKAGE_OUTPUT_DIR": str(work / f"results-{i}")}
        proc = subprocess.Popen(
            cmd, cwd=work, env=run_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )
        if together:
            procs.append(proc)
        else:
            outputs.append((proc.communicate()[0], proc.returncode))
    outputs += [(proc.communicate()[0], proc.returncode) for proc in procs]
    elapsed = time.perf_counter() - start
    failed = sum(code != 0 for _, code in outputs)
    for out, code in outputs:
        if code != 0:  # say why, once
            print(f"    a failed run's last line: {out.decode().strip().splitlines()[-1][:200]}")
            break
    errors = sum(out.count(b"| ERROR ") + out.count(b"Traceback") for out, _ in outputs)
    return elapsed, failed, errors


def bench_concurrency(work: Path, env: dict[str, str], runs: int) -> None:
    run = [sys.executable, "-m", "my_package", "run"]
    rows = {}
    rows[f"{runs} in a row"] = _many(run, work, env, runs, together=False)
    rows[f"{runs} at once"] = _many(run, work, env, runs, together=True)
    with prefect_server(env, work / "server-concurrency.log") as url:
        server_env = {**env, "PREFECT_API_URL": url}
        subprocess.run(run, cwd=work, env=server_env, capture_output=True)  # server warm-up
        rows[f"{runs} at once, running server"] = _many(run, work, server_env, runs, True)
    base = rows[f"{runs} in a row"][0]
    print(f"concurrency: {runs} cold `run`s, each with its own temporary server unless noted")
    for name, (elapsed, failed, errors) in rows.items():
        print(
            f"  {name:30s} {elapsed:6.1f} s  {elapsed / base:5.2f}x in a row  "
            f"failed {failed}  ERROR/Traceback lines {errors}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--runs", type=int, default=6, help="runs in the concurrency section")
    parser.add_argument("--only", choices=("startup", "failures", "concurrency"))
    args = parser.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**offline_env(work), "MY_PACKAGE_OUTPUT_DIR": str(work / "results")}
        wall([sys.executable, "-c", BARE_FLOW], work, env)  # warm-up: creates the database
        if args.only in (None, "failures"):
            bench_failures(work, env, args.repeat)
        if args.only in (None, "startup"):
            bench_startup(work, env, args.repeat)
        if args.only in (None, "concurrency"):
            bench_concurrency(work, env, args.runs)


if __name__ == "__main__":
    main()
