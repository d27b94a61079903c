"""A real Dask cluster on 127.0.0.1: ``dask scheduler`` and N single-threaded ``dask worker``s.

Started as a user starts one (each its own process group), stopped by pid on exit. Used by
tests/test_parallel_flow.py and bench/bench_parallel.py.
"""

import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from test_deployment import _free_port, _stop


@contextmanager
def dask_cluster(logs: Path, env: Mapping[str, str], workers: int = 2) -> Iterator[str]:
    """Yield the address of a running cluster; RuntimeError (with the logs) if it won't start.

    ``env`` is the processes' environment: the model's module must be importable with it.
    """
    from distributed import Client

    port, dashboard = _free_port(), _free_port()
    address = f"tcp://127.0.0.1:{port}"
    procs: list[subprocess.Popen] = []

    def start(args: list[str], name: str) -> None:
        with (logs / f"{name}.log").open("wb") as log:
            procs.append(
                subprocess.Popen(
                    [sys.executable, "-m", *args],
                    env=dict(env),
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            )

    try:
        start(["distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", str(port),
               "--dashboard-address", f"127.0.0.1:{dashboard}"], "scheduler")  # fmt: skip
        for i in range(workers):
            start(["distributed.cli.dask_worker", address, "--nthreads", "1",
                   "--host", "127.0.0.1", "--no-dashboard"], f"worker{i}")  # fmt: skip
        deadline = time.monotonic() + 120
        with Client(address, timeout="60s") as client:
            while len(client.scheduler_info()["workers"]) < workers:
                if time.monotonic() > deadline or any(p.poll() is not None for p in procs):
                    text = "\n".join(p.read_text() for p in logs.glob("*.log"))
                    raise RuntimeError(f"Dask cluster did not start:\n{text[-5000:]}")
                time.sleep(0.2)  # a poll interval, not a wait for readiness
        yield address
    finally:
        for proc in reversed(procs):
            _stop(proc)
