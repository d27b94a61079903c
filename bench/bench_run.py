"""Cold-process wall time of the main job, side by side with Prefect's own floor.

Measures, each in a fresh Python process (median of --repeat runs):
  baseline  a bare one-task Prefect flow (what any Prefect flow costs here)
  run       python -m my_package run       (the default flow, embedded Prefect)
  evaluate  python -m my_package evaluate  (the same steps without Prefect)
and, against a `prefect server` already running (PREFECT_API_URL set), the bare
flow again (the floor with a server) and `run`, which is what README promises
for users who keep a server up. Prints the ratios. All runs share one
PREFECT_HOME, warmed once, so the migrations of a brand-new home are not counted.

    python bench/bench_run.py [--repeat 5]
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
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        env = {**offline_env(work), "MY_PACKAGE_OUTPUT_DIR": str(work / "results")}
        commands = {
            "baseline": [sys.executable, "-c", BARE_FLOW],
            "run": [sys.executable, "-m", "my_package", "run"],
            "evaluate": [sys.executable, "-m", "my_package", "evaluate"],
        }
        with_server = {"baseline+server": commands["baseline"], "run+server": commands["run"]}
        wall(commands["baseline"], work, env)  # warm-up: creates and migrates the database
        times: dict[str, list[float]] = {name: [] for name in {**commands, **with_server}}
        with prefect_server(env, work / "server.log") as url:
            server_env = {**env, "PREFECT_API_URL": url}
            wall(commands["baseline"], work, server_env)  # warm-up: the server's first flow
            for _ in range(args.repeat):  # interleaved, so drifts in load hit all alike
                for name, cmd in commands.items():
                    times[name].append(wall(cmd, work, env))
                for name, cmd in with_server.items():
                    times[name].append(wall(cmd, work, server_env))
    median = {name: statistics.median(values) for name, values in times.items()}
    print(f"cold-process wall time, median of {args.repeat} (python {sys.version.split()[0]})")
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


if __name__ == "__main__":
    main()
