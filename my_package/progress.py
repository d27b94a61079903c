"""A scan's progress on stderr: a bar (points, rate, ETA) on a terminal, plain lines otherwise.

Also the one line that Ctrl-C prints (``interrupted``, ``on_ctrl_c``).

Used by ``evaluate --scan`` and by the flow (so ``run --scan`` shows it too); the flow also
keeps a Prefect progress artifact for the UI (``ProgressArtifact``). Plain lines go to logs
and pipes, at most about twenty per scan.
"""

import contextlib
import contextvars
import logging
import os
import sys
import threading
import time
from collections.abc import Callable
from typing import IO, Any

PLAIN_LINES = 20


def _number(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:.3g}"


class ScanProgress:
    """Counts a scan's finished chunks and shows points done, rate and time left."""

    current: "ScanProgress | None" = None  # the scan running in this process (for Ctrl-C)

    def __init__(self, points: int, chunks: int, stream: IO[str] | None = None) -> None:
        ScanProgress.current = self
        self.points, self.chunks = points, chunks
        self.points_done = self.chunks_done = self.cached = 0
        self._stream = stream or sys.stderr
        self._start = time.monotonic()
        self._shown = 0  # plain lines: how many twentieths were printed
        self._bar: Any = None
        if self._stream.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self._bar = Progress(
                TextColumn("scan"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("points, {task.fields[rate]}"),
                TextColumn("ETA"),
                TimeRemainingColumn(),
                console=Console(file=self._stream),
                transient=False,
            )
            self._task = self._bar.add_task("scan", total=points, rate="-")
            self._bar.start()

    def rate(self) -> float:
        """Points per second since the start (cached chunks count: they are done)."""
        return self.points_done / max(time.monotonic() - self._start, 1e-9)

    def advance(self, points: int, cached: bool = False) -> None:
        """One chunk of ``points`` points finished (``cached``: taken from an earlier run)."""
        self.points_done += points
        self.chunks_done += 1
        self.cached += cached
        rate = self.rate()
        if self._bar is not None:
            self._bar.update(self._task, advance=points, rate=f"{_number(rate)}/s")
            return
        step = PLAIN_LINES * self.points_done // max(self.points, 1)
        if step > self._shown or self.chunks_done == self.chunks:
            self._shown = step
            left = (self.points - self.points_done) / rate if rate else float("inf")
            print(
                f"scan: {self.points_done}/{self.points} points "
                f"({100 * self.points_done / max(self.points, 1):.0f} %), "
                f"{self.chunks_done}/{self.chunks} chunks, {_number(rate)} points/s, "
                f"ETA {left:.0f} s",
                file=self._stream,
                flush=True,
            )

    def close(self) -> None:
        """Stop the bar; say how many chunks an earlier run had already computed."""
        ScanProgress.current = None
        if self._bar is not None:
            self._bar.stop()
            self._bar = None
        if self.cached:
            print(
                f"resumed: {self.cached} of {self.chunks} chunks were done by an earlier run "
                f"and taken from Prefect's cache; computed {self.chunks_done - self.cached}",
                file=self._stream,
                flush=True,
            )


class ProgressArtifact:
    """A Prefect progress artifact (the run's page in the UI), sent from a thread of its own.

    ``percent`` is set as chunks finish; the thread sends it at most every ``interval``
    seconds, and once more on ``close``. Each send is an API call (~50 ms on a temporary
    server busy recording the chunks' task runs, once 1.4 s): made from the flow's thread,
    they held up its handling of finished chunks (bench/README.md). A failed call is a
    warning: the UI's progress bar must not fail a run.
    """

    def __init__(self, key: str, description: str, interval: float = 1.0) -> None:
        self.key, self.description, self.interval = key, description, interval
        self.percent = 0.0
        self._closed = threading.Event()
        # A copy of this context: Prefect's run context, which links the artifact to the run.
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._send,), daemon=True)

    def __enter__(self) -> "ProgressArtifact":
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._closed.set()
        self._thread.join(timeout=30)  # the client's own timeout and retries end it first

    def _send(self) -> None:
        from prefect import get_run_logger
        from prefect.artifacts import create_progress_artifact, update_progress_artifact

        artifact, sent = None, 0.0
        try:
            while True:
                closing = self._closed.wait(self.interval)
                percent = self.percent  # one read: a float, set by the flow's thread
                if artifact is None:
                    # Created after the first interval, not as the chunks start (an API call
                    # beside theirs); a scan shorter than that makes this one call only.
                    artifact = create_progress_artifact(
                        percent, key=self.key, description=self.description
                    )
                elif percent != sent:
                    update_progress_artifact(artifact, percent)  # type: ignore[arg-type]
                sent = percent
                if closing:
                    return
        except Exception as exc:
            get_run_logger().warning("No progress artifact: %s", exc)


def interrupted(done: int, total: int, command: str) -> str:
    """The one line that Ctrl-C during ``run`` or ``evaluate`` prints."""
    again = (
        # "at most": a chunk still running when the signal came may yet be saved.
        f"run the same command again to compute only the rest (at most {total - done})"
        if command == "run"
        else "evaluate keeps nothing: use run --scan, which resumes"
    )
    return f"interrupted: {done} of {total} chunks done; {again}"


def _stop_temporary_server() -> None:
    """Stop this process's temporary Prefect server (a no-op when none was started)."""
    from prefect.server.api.server import SubprocessASGIServer

    # Leaving anyway: the server may be stopping already.
    with contextlib.suppress(Exception):
        SubprocessASGIServer().stop()


def quiet_resource_tracker() -> None:
    """Before any worker process starts: the resource tracker keeps quiet about semaphores.

    Pools of spawned or fork-server processes (``--processes`` under ``run``, ``--dask
    local:N``) make named semaphores, which their finalizers unlink at exit. ``on_ctrl_c``
    leaves with os._exit, skipping them; multiprocessing's resource tracker then unlinks
    them itself and warns about it on the terminal, under the one "interrupted" line. It
    is started with this process's -W options, so this filter reaches it.
    """
    quiet = "ignore::UserWarning:multiprocessing.resource_tracker"
    if quiet not in sys.warnoptions:
        sys.warnoptions.append(quiet)


def on_ctrl_c(temporary_server: bool) -> Callable[[int, Any], None]:
    """The SIGINT handler of ``run``: one line, not Prefect's crash reports."""

    def handler(signum: int, frame: Any) -> None:
        logging.disable(logging.ERROR)  # Prefect's crash reports would repeat our one line
        scan = ScanProgress.current
        if temporary_server and scan is not None:
            # Ctrl-C stops the temporary server too (same process group), so Prefect can
            # record nothing more; finished chunks are already persisted. Say so and leave.
            print(interrupted(scan.chunks_done, scan.chunks, "run"), file=sys.stderr, flush=True)
            _stop_temporary_server()  # os._exit skips atexit, which would stop it
            os._exit(130)
        raise KeyboardInterrupt

    return handler
