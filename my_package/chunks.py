"""Chunked scans: split a scan's points into chunks, evaluate them in parallel, join them in order.

One code path for both ways of running a scan: ``evaluate --scan`` runs the chunks on a
thread or process pool here (``evaluate_scan``, no Prefect); the flow (flow.py) runs each
chunk as a Prefect task on a thread of ``task_runner`` (with processes or Dask, the task
hands its points to a worker of ``pool``). Both split with
``split``, name chunks the same way and join with ``join``, so a chunked scan gives the
same arrays, and so the same result and unique_hash, as one evaluation of all points.

How a scan is spread (``Parallel``) comes from, first to last: the command line or the
flow's ``parallel`` parameter, the environment (``MY_PACKAGE_WORKERS`` ...), the model
class's ``chunk_size`` / ``workers`` / ``processes`` attributes, the defaults here.
"""

import functools
import hashlib
import inspect
import logging
import math
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Executor, ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic_settings import BaseSettings, SettingsConfigDict

from my_package.validation import WARNINGS_KEY, ModelOutputError, Value

# Without a chunk size, one worker evaluates the whole scan as one chunk (a fast numpy model
# loses nothing: bench/bench_parallel.py), and N > 1 workers get two chunks each: balanced,
# with as few tasks as possible (each costs a few Prefect API calls). Slow models set
# chunk_size in their class instead: progress and resume then go chunk by chunk.
CHUNKS_PER_WORKER = 2
DEFAULT_RETRIES = 1
DASK_PATTERN = r"^(local:[1-9][0-9]*|(tcp|tls|ucx|inproc)://\S+)$"
DASK_MISSING = "--dask needs distributed: pip install -e '.[dask]'"


class ParallelOptionsError(ValueError):
    """Parallel options that cannot work together; the message says which and what to do."""


class Parallel(BaseModel):
    """How a scan is split into chunks and spread over workers (None: not set here)."""

    model_config = ConfigDict(extra="forbid")

    workers: int | None = Field(
        None, ge=1, le=1024, description="chunks evaluated at once (default: the model's, else 1)"
    )
    processes: bool | None = Field(
        None, description="worker processes instead of threads (CPU-bound pure-Python models)"
    )
    chunk_size: int | None = Field(None, ge=1, description="points per chunk (one task each)")
    dask: str | None = Field(
        None,
        pattern=DASK_PATTERN,
        description="run the chunks on a Dask cluster: tcp://HOST:PORT, or local:N for N workers",
    )
    chunk_retries: int | None = Field(
        None, ge=0, le=10, description=f"retries of a failing chunk (default {DEFAULT_RETRIES})"
    )


class ParallelSettings(Parallel, BaseSettings):
    """The same options from the environment: MY_PACKAGE_WORKERS, MY_PACKAGE_CHUNK_SIZE, ..."""

    model_config = SettingsConfigDict(env_prefix="MY_PACKAGE_", env_file=".env", extra="ignore")


def options(
    workers: int | None = None,
    processes: bool | None = None,
    chunk_size: int | None = None,
    dask: str | None = None,
    chunk_retries: int | None = None,
) -> Parallel:
    """Parallel from the command line's values; a bad one is a ParallelOptionsError naming it."""
    given = {
        "workers": workers,
        "processes": processes,
        "chunk_size": chunk_size,
        "dask": dask,
        "chunk_retries": chunk_retries,
    }
    try:
        return Parallel(**{name: value for name, value in given.items() if value is not None})
    except ValidationError as exc:
        error = exc.errors()[0]
        name = str(error["loc"][0])
        problem = (
            "is not a Dask address; give tcp://HOST:PORT, or local:N for N local workers"
            if name == "dask"
            else error["msg"].lower().replace("input should be", "must be")
        )
        raise ParallelOptionsError(f"--{name.replace('_', '-')} {given[name]} {problem}") from None


@dataclass(frozen=True)
class Plan:
    """A resolved Parallel for one scan: every option has its value."""

    points: int
    chunk_size: int
    workers: int
    processes: bool
    dask: str | None
    retries: int

    @property
    def chunks(self) -> int:
        return math.ceil(self.points / self.chunk_size)

    @property
    def local_dask(self) -> bool:
        """``--dask local:N``: a Dask cluster started in this process for this scan."""
        return bool(self.dask and self.dask.startswith("local:"))

    def bounds(self, index: int) -> tuple[int, int]:
        """The points [start, stop) of chunk ``index``."""
        start = index * self.chunk_size
        return start, min(start + self.chunk_size, self.points)

    def label(self, index: int) -> str:
        start, stop = self.bounds(index)
        return f"chunk {index + 1} of {self.chunks} (points {start}-{stop - 1})"

    def describe(self) -> str:
        where = (
            f"Dask {self.dask}"
            if self.dask
            else f"{self.workers} {'process' if self.processes else 'thread'}"
            f"{'es' if self.processes and self.workers > 1 else ''}"
            f"{'s' if not self.processes and self.workers > 1 else ''}"
        )
        return f"{self.points} points in {self.chunks} chunks of {self.chunk_size}, on {where}"


def plan(points: int, options: Parallel | None = None, model_class: type | None = None) -> Plan:
    """Resolve the options for a scan of ``points`` points (see the module docstring)."""
    given = options.model_dump(exclude_none=True) if options else {}
    env = ParallelSettings().model_dump(exclude_none=True)
    model = {
        name: getattr(model_class, name)
        for name in ("workers", "processes", "chunk_size")
        if getattr(model_class, name, None) is not None
    }
    sources = [given, env, model]  # first wins
    chosen = {**model, **env, **given}
    dask, processes = None, bool(chosen.get("processes", False))
    up_to_dask: list[dict] = []  # the places as high as the one that chose Dask
    rank = next((i for i, source in enumerate(sources) if source.get("dask")), None)
    if rank is not None:
        if sources[rank].get("processes"):
            names = "--dask and --processes"
            if rank == 1:
                names = "MY_PACKAGE_DASK and MY_PACKAGE_PROCESSES"
            raise ParallelOptionsError(
                f"{names} exclude each other (Dask has its own worker processes); give one of them"
            )
        # The first place to choose Dask or processes decides: --dask on the command line
        # runs a model whose class says processes = True on Dask, and the other way round.
        processes = any(source.get("processes") for source in sources[:rank])
        dask = None if processes else sources[rank]["dask"]
        up_to_dask = sources[: rank + 1]
    workers = chosen.get("workers", 1)
    if dask and dask.startswith("local:"):
        workers = int(dask.removeprefix("local:"))
    elif dask:
        # A running cluster: as many chunks in flight as it has worker threads, unless
        # --workers is given where --dask is (the model's workers are for a local pool).
        threads = cluster_threads(dask)
        workers = next((s["workers"] for s in up_to_dask if "workers" in s), threads)
    chunks = 1 if workers == 1 else min(points, CHUNKS_PER_WORKER * workers)
    chunk_size = chosen.get("chunk_size") or math.ceil(points / chunks)
    return Plan(
        points=points,
        chunk_size=min(chunk_size, points),
        workers=workers,
        processes=processes,
        dask=dask,
        retries=chosen.get("chunk_retries", DEFAULT_RETRIES),
    )


def _dask_client() -> Any:
    try:
        from distributed import Client
    except ImportError:
        raise ParallelOptionsError(DASK_MISSING) from None
    return Client


@functools.cache
def cluster_threads(address: str) -> int:
    """The worker threads of the Dask cluster at ``address``, asked of its scheduler.

    Asked once per process: ``run``'s pre-flight and its flow plan the same scan. A
    ParallelOptionsError if it cannot be reached: better now than as a traceback later.
    """
    try:
        with _dask_client()(address, timeout="10s") as client:
            return max(1, sum(client.nthreads().values()))
    except OSError as exc:
        raise ParallelOptionsError(
            f"--dask {address}: cannot reach the Dask scheduler ({exc}); start it "
            "(`dask scheduler`, then `dask worker ADDRESS`) or give its address"
        ) from None


def scan_length(values: Mapping[str, Any], scanned: Sequence[str]) -> int:
    """The number of points: the length of the scanned inputs' first axis."""
    return len(values[scanned[0]]) if scanned else 1


def split(values: Mapping[str, Any], scanned: Sequence[str], plan: Plan) -> list[dict]:
    """The inputs of each chunk: scanned inputs sliced along axis 0 (views), the rest as is."""
    chunks = []
    for index in range(plan.chunks):
        start, stop = plan.bounds(index)
        chunks.append({k: v[start:stop] if k in scanned else v for k, v in values.items()})
    return chunks


def join(parts: Sequence[Mapping[str, Any]], labels: Sequence[str] = ()) -> dict[str, Any]:
    """The chunks' outputs, in order, as one: arrays concatenated along axis 0 (ND included).

    Warnings (``default_validation_config: warn``) are kept in chunk order, each prefixed by
    its chunk's label: their "at index" counts from the chunk's first point.
    """
    if len(parts) == 1:
        return dict(parts[0])
    joined: dict[str, Any] = {}
    for name in parts[0]:
        if name == WARNINGS_KEY:
            continue
        values = [part[name] for part in parts]
        if all(np.ndim(value) == 0 for value in values):
            # A model may return one number for a whole scan; it must not differ by chunk.
            if len({float(value) for value in values}) > 1:
                raise ModelOutputError(
                    f"output {name!r} is one number per chunk and differs between chunks; "
                    "return one value per point"
                )
            joined[name] = values[0]
        else:
            joined[name] = np.concatenate([np.atleast_1d(value) for value in values], axis=0)
    labels = labels or [f"chunk {i + 1}" for i in range(len(parts))]
    warnings = [
        f"{label}: {text}"
        for label, part in zip(labels, parts, strict=True)
        for text in part.get(WARNINGS_KEY, [])
    ]
    if warnings:
        joined[WARNINGS_KEY] = warnings
    return joined


class ChunkError(RuntimeError):
    """A chunk that failed: the message names the chunk, its first failing point and why."""


def _first_failing_point(model: Any, chunk: Mapping[str, Any], scanned: Sequence[str]) -> int:
    """Index within ``chunk`` of the first point the model fails on alone, or -1."""
    for i in range(scan_length(chunk, scanned)):
        point = {k: v[i : i + 1] if k in scanned else v for k, v in chunk.items()}
        try:
            model.evaluate(point)
        except Exception:
            return i
    return -1


def evaluate_chunk(
    model_class: type, chunk: dict[str, Any], scanned: Sequence[str], label: str, start: int
) -> dict[str, Any]:
    """Evaluate one chunk; on failure raise ChunkError naming it and its first failing point."""
    model = model_class()
    try:
        return model.evaluate(chunk)
    except Exception as exc:
        # Find the point, so the user can look at it: only on failure, at most one chunk's work.
        i = _first_failing_point(model, chunk, scanned)
        if i < 0:
            raise ChunkError(f"{label} failed ({exc}); no single point fails alone") from exc
        where = ", ".join(f"{name}={float(chunk[name][i]):.6g}" for name in scanned)
        raise ChunkError(f"{label} failed at point {start + i} ({where}): {exc}") from exc


def code_version(model_class: type) -> str:
    """A digest of the source of every module that defines the model's ``_evaluate``."""
    digest = hashlib.blake2b(digest_size=16)
    for cls in model_class.__mro__:
        if "_evaluate" in vars(cls):
            digest.update(inspect.getsource(sys.modules[cls.__module__]).encode())
    return digest.hexdigest()


def chunk_key(version: str, chunk: Mapping[str, Value]) -> str:
    """The chunk's cache key: its input values (bytes, exactly) and the model's code version."""
    digest = hashlib.blake2b(version.encode(), digest_size=16)
    for name in sorted(chunk):
        array = np.ascontiguousarray(chunk[name], dtype=np.float64)
        digest.update(f"{name}{array.shape}".encode())
        digest.update(array.data)
    return digest.hexdigest()


def task_runner(plan: Plan) -> Any:
    """The Prefect task runner for the plan's chunks (imports Prefect: flow side only)."""
    from prefect.task_runners import ThreadPoolTaskRunner

    # Threads, also for processes and Dask: each chunk task is then a thread of the flow that
    # waits on a worker of ``pool``, so Prefect's cache, retries and persisted results stay in
    # the flow's process and the workers never import Prefect. Prefect's runners for those run
    # its task engine in every worker: ProcessPoolTaskRunner spawns processes that import
    # Prefect (~7 s here); prefect-dask's DaskTaskRunner rebuilt Prefect's settings on the
    # Dask worker for every chunk (~0.25 s each), and its workers had to reach the API.
    return ThreadPoolTaskRunner(max_workers=plan.workers)


def _quiet_dask() -> None:
    # A local cluster's scheduler and nannies live in this process and log every start and
    # stop at INFO through Prefect's handler: keep warnings and errors only.
    logging.getLogger("distributed").setLevel(logging.WARNING)


def _fork_server(model_class: type | None, dask: bool = False) -> Any:
    """The fork server's context, set to preload the model (None where there is none).

    ``dask``: for ``--dask local:N``'s workers, which also need Dask's ``distributed``.
    """
    import multiprocessing

    if "forkserver" not in multiprocessing.get_all_start_methods():
        return None  # Windows
    context = multiprocessing.get_context("forkserver")
    modules = [model_class.__module__] if model_class else []
    if dask:
        modules.append("distributed")
    context.set_forkserver_preload(["my_package.chunks", *modules])
    return context


def _process_context(model_class: type | None = None) -> Any:
    """How worker processes start: fork, else from a fork server preloaded with the model.

    fork when this process runs no other Python thread (Linux: ``evaluate --scan``): the
    workers have the model imported already. fork is unsafe beside threads (a lock held at
    the fork stays held in the child), so a process with threads (a Prefect run) forks its
    workers from a fork server: one clean process that imports the model once (see
    ``start_fork_server``). Spawn, re-importing everything in every worker, only where
    neither exists. numpy's OpenBLAS threads re-initialise at a fork (Python 3.12+ counts
    them and warns, a DeprecationWarning hidden by default).
    """
    import multiprocessing

    if sys.platform == "linux" and threading.active_count() == 1:
        return multiprocessing.get_context("fork")
    return _fork_server(model_class) or multiprocessing.get_context("spawn")


# True once start_fork_server has started the fork server for --dask local:N's workers.
_dask_forks = False


def start_fork_server(model_class: type, plan: Plan) -> None:
    """Start the fork server now (``run``'s pre-flight, for processes or ``--dask local:N``):
    it imports the model while Prefect starts, and the scan's workers then fork from it.

    A local Dask cluster's workers then start in ~0.2 s instead of ~3.5 s (spawned, each
    importing Dask and the model: bench/README.md). They get the environment Dask's nannies
    give a spawned worker (``distributed.nanny.pre-spawn-environ``: one BLAS thread each...),
    which must be set before the process starts: here, the fork server's.
    """
    global _dask_forks
    if not _fork_server(model_class, plan.local_dask):
        return
    from multiprocessing import forkserver

    added = _dask_worker_environ() if plan.local_dask else {}
    saved = {name: os.environ.get(name) for name in added}
    os.environ.update(added)
    try:
        forkserver.ensure_running()
    finally:  # only the names it set: other threads may be reading the environment
        for name, value in saved.items():
            if value is None:
                del os.environ[name]
            else:
                os.environ[name] = value
    _dask_forks = _dask_forks or plan.local_dask


def _dask_worker_environ() -> dict[str, str]:
    """What a Dask nanny sets before it spawns its worker (the environment's own values win)."""
    import dask

    _dask_client()  # imports distributed, which adds its configuration to dask.config
    wanted = dask.config.get("distributed.nanny.pre-spawn-environ", default={})
    return {k: os.environ.get(k, str(v)) for k, v in wanted.items() if v is not None}


@contextmanager
def pool(plan: Plan, model_class: type | None = None) -> Iterator[Executor | None]:
    """A concurrent.futures pool for the plan (None: one local worker, no pool needed).

    Shut down (Dask: disconnected) on exit. Open it before starting threads of your own:
    process workers are started here, forked if nothing else runs yet.
    """
    if plan.workers == 1 and not plan.dask:
        yield None
        return
    if plan.dask:
        Client = _dask_client()
        if plan.local_dask:
            import dask

            _quiet_dask()
            # Dask spawns its workers, unless start_fork_server has started them a server.
            start = "forkserver" if _dask_forks else "spawn"
            with dask.config.set({"distributed.worker.multiprocessing-method": start}):
                client = Client(
                    n_workers=plan.workers,
                    threads_per_worker=1,
                    dashboard_address=None,
                    silence_logs=logging.ERROR,
                    preload=[__name__],  # dask_setup below, in each worker process
                )
        else:
            client = Client(plan.dask, timeout="10s")
        with client, client.get_executor() as executor:
            yield executor
        return
    if plan.processes:
        context = _process_context(model_class)
        with ProcessPoolExecutor(
            plan.workers, mp_context=context, initializer=_leave_on_ctrl_c
        ) as executor:
            if context.get_start_method() == "fork":
                # A forking pool starts all its workers at the first submit: do it now.
                executor.submit(int).result()
            yield executor
        return
    with ThreadPoolExecutor(plan.workers) as executor:
        yield executor


def _leave_on_ctrl_c() -> None:
    """A worker process's SIGINT handler: leave at once, without a traceback.

    Ctrl-C in a terminal reaches every process of its group, the workers too: the parent
    prints the one "interrupted" line and stops the pool; a worker must not add a
    KeyboardInterrupt traceback of its own, nor finish its chunk first (SIG_IGN would).
    Where the parent ignores SIGINT (``nohup``, a background job), so does the worker.
    """
    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:  # inherited from the parent
        signal.signal(signal.SIGINT, lambda signum, frame: os._exit(130))


def dask_setup(worker: Any) -> None:
    """Dask's preload hook, run in each worker process of ``--dask local:N`` as it starts.

    Its workers are this process's children: Ctrl-C reaches them too, and without this
    each printed a KeyboardInterrupt traceback under the one "interrupted" line. (A user's
    own cluster is not ours to change: it gets no preload.)
    """
    if threading.current_thread() is threading.main_thread():  # where signal handlers live
        _leave_on_ctrl_c()


class ScanInterrupted(KeyboardInterrupt):
    """Ctrl-C during a scan: how many chunks were done."""

    def __init__(self, done: int, total: int) -> None:
        super().__init__(done, total)
        self.done, self.total = done, total


def evaluate_scan(
    model_class: type,
    values: Mapping[str, Value],
    scanned: Sequence[str],
    plan: Plan,
    on_chunk: Callable[[int, bool], None] | None = None,
    executor: Executor | None = None,
) -> dict[str, Value]:
    """Evaluate a scan chunk by chunk on a local pool (no Prefect); outputs in point order.

    ``executor``: from ``pool(plan)``; without it one is opened here. ``on_chunk(points,
    cached)`` is called as each chunk finishes (progress).
    """
    if executor is None and (plan.workers > 1 or plan.dask):
        with pool(plan, model_class) as executor:
            return evaluate_scan(model_class, values, scanned, plan, on_chunk, executor)
    chunks = split(values, scanned, plan)
    outputs: list[dict[str, Value] | None] = [None] * len(chunks)
    args = [
        (model_class, chunk, scanned, plan.label(i), plan.bounds(i)[0])
        for i, chunk in enumerate(chunks)
    ]
    try:
        if executor is None:
            # One worker: no pool, no copies (the fast numpy path of today).
            for i, arg in enumerate(args):
                outputs[i] = evaluate_chunk(*arg)
                if on_chunk:
                    on_chunk(len(chunks[i][scanned[0]]), False)
        else:
            futures = {executor.submit(evaluate_chunk, *arg): i for i, arg in enumerate(args)}
            try:
                for future in as_completed(futures):
                    i = futures[future]
                    outputs[i] = future.result()
                    if on_chunk:
                        on_chunk(len(chunks[i][scanned[0]]), False)
            except BaseException:
                # Drop the chunks not started. Not future.cancel() on a process pool: Python
                # 3.11's, broken by its workers leaving at Ctrl-C, then sets an exception on
                # the cancelled futures (InvalidStateError printed by its manager thread).
                if isinstance(executor, ProcessPoolExecutor | ThreadPoolExecutor):
                    executor.shutdown(wait=False, cancel_futures=True)
                else:  # Dask's ClientExecutor: cancels its futures, the running ones too
                    executor.shutdown(wait=False)
                raise
    except KeyboardInterrupt:
        raise ScanInterrupted(sum(out is not None for out in outputs), len(chunks)) from None
    return join(outputs, [plan.label(i) for i in range(len(chunks))])  # type: ignore[arg-type]


def scan_in_pool(
    model_class: type, values: Mapping[str, Value], scanned: Sequence[str], options: Parallel
) -> dict[str, Value]:
    """``evaluate --scan``: plan the chunks, evaluate them with progress on stderr."""
    from my_package.progress import ScanProgress

    chosen = plan(scan_length(values, scanned), options, model_class)
    # The pool first: its processes can then fork before the progress bar starts a thread.
    with pool(chosen, model_class) as executor:
        progress = ScanProgress(chosen.points, chosen.chunks)
        try:
            return evaluate_scan(model_class, values, scanned, chosen, progress.advance, executor)
        finally:
            progress.close()
