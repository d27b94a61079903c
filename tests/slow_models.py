"""Test-only slow models: the package's model, made slow the two ways real models are.

``SleepyModel`` sleeps per point (a model that waits on an external program: releases the
GIL); ``LoopModel`` spins a pure-Python loop per point (CPU-bound, holds the GIL). Both
return the package model's own outputs, so any model (the skeleton too) works here, and both
append one line per call (the chunk's point count) to the file named by MODEL_CALLS_FILE,
from whichever thread or process runs them, so tests can count model calls. With FAIL_ABOVE
set, they raise on any point whose first scanned input exceeds it.

Importable by worker processes and Dask workers (tests/ is on their sys.path or PYTHONPATH).
"""

import os
import sys
import time
from typing import Any, ClassVar

import numpy as np

from my_package.model import MyPackageModel


def _points(input_dict: dict[str, Any]) -> np.ndarray | None:
    arrays = [v for v in input_dict.values() if np.ndim(v)]
    return arrays[0] if arrays else None


class SleepyModel(MyPackageModel):
    """Sleeps ``SECONDS_PER_POINT`` per point, then computes as the package model does."""

    SECONDS_PER_POINT: ClassVar[float] = float(os.environ.get("SLEEP_PER_POINT", "0.02"))

    def _evaluate(self, input_dict: dict[str, Any]) -> dict[str, Any]:
        points = _points(input_dict)
        count = 1 if points is None else len(points)
        calls = os.environ.get("MODEL_CALLS_FILE")
        if calls:
            with open(calls, "a") as out:
                # Also who evaluated it, whether Prefect was imported there, and its parent.
                prefect = int("prefect" in sys.modules)
                out.write(f"{count} {os.getpid()} {prefect} {os.getppid()}\n")
        fail_above = os.environ.get("FAIL_ABOVE")
        if fail_above and points is not None and (points > float(fail_above)).any():
            bad = points[points > float(fail_above)][0]
            raise ValueError(f"the model cannot evaluate {bad:g} (test failure above {fail_above})")
        self.work(count)
        return super()._evaluate(input_dict)

    def work(self, count: int) -> None:
        time.sleep(self.SECONDS_PER_POINT * count)


class LoopModel(SleepyModel):
    """Spins ``LOOPS_PER_POINT`` iterations of pure Python per point (holds the GIL)."""

    LOOPS_PER_POINT: ClassVar[int] = int(os.environ.get("LOOPS_PER_POINT", "200000"))

    def work(self, count: int) -> None:
        total = 0
        for i in range(self.LOOPS_PER_POINT * count):
            total += i % 7
        if total < 0:  # never: keeps the loop from looking dead to a reader or a linter
            raise AssertionError(total)


def calls(path: str | os.PathLike) -> list[int]:
    """The point counts of every model call recorded in ``path`` (none if it does not exist)."""
    return [record[0] for record in call_records(path)]


def call_records(path: str | os.PathLike) -> list[tuple[int, int, bool]]:
    """Every model call in ``path``: (points, process id, Prefect imported in that process)."""
    return [(int(n), int(pid), prefect == "1") for n, pid, prefect, _ in _records(path)]


def call_parents(path: str | os.PathLike) -> set[int]:
    """The parent process ids of the processes that made the model calls in ``path``."""
    return {int(parent) for *_, parent in _records(path)}


def _records(path: str | os.PathLike) -> list[list[str]]:
    try:
        with open(path) as lines:
            return [line.split() for line in lines]
    except FileNotFoundError:
        return []


def main() -> int:
    """``python -m my_package`` with the model named by SLOW_MODEL in place of the package's.

    Run as ``python -c "import slow_models; slow_models.main()" evaluate --scan ...`` with
    tests/ on PYTHONPATH: the command line, flow and workers then use the slow model.
    """
    import sys

    import my_package.model

    my_package.model.MyPackageModel = globals()[os.environ.get("SLOW_MODEL", "SleepyModel")]
    from my_package.cli import main as cli_main

    return cli_main(sys.argv[1:])
