"""Chunked scans through Prefect: task runners (threads, processes, a real Dask cluster),
progress, resume from Prefect's result cache, a failing chunk, Ctrl-C.

The model is a slow test-only subclass of the package's (tests/slow_models.py) that records
every call, so the tests count what was computed. Names and ranges come from variables.yml.
"""

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import slow_models

from my_package.chunks import ChunkError, Parallel
from my_package.config import Settings
from my_package.results import Result
from my_package.targets import load_result
from my_package.validation import ScanRange, collect_inputs
from my_package.variables import load_variables

TESTS = Path(__file__).resolve().parent
INPUTS, OUTPUTS = load_variables()
FIRST = INPUTS[0]
LOW, HIGH = FIRST.value_range


def _scan(points: int) -> dict[str, ScanRange]:
    return {FIRST.name: ScanRange(start=LOW, stop=HIGH, num=points)}


@pytest.fixture
def run_env(
    prefect_api, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Path, Path]]:
    """Results and chunk storage in tmp_path, SleepyModel as the flow's model, calls counted.

    Yields (results directory, calls file). The chunk cache is this test's own, so earlier
    runs (of any test session) cannot answer for it.
    """
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH, temporary_settings

    import my_package.flow as flow_module

    for name in ("WORKERS", "PROCESSES", "CHUNK_SIZE", "DASK", "CHUNK_RETRIES"):
        monkeypatch.delenv(f"MY_PACKAGE_{name}", raising=False)
    monkeypatch.setenv("MY_PACKAGE_TARGET", "filesystem")
    monkeypatch.setenv("MY_PACKAGE_OUTPUT_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MODEL_CALLS_FILE", str(tmp_path / "calls.txt"))
    monkeypatch.setattr(flow_module, "MyPackageModel", slow_models.SleepyModel)
    with temporary_settings(updates={PREFECT_LOCAL_STORAGE_PATH: tmp_path / "storage"}):
        yield tmp_path / "results", tmp_path / "calls.txt"


def _flow():
    from my_package.flow import my_package_flow

    return my_package_flow


def _serial(model: type, points: int) -> dict:
    """The outputs of one model call on all the scan's points (no chunks)."""
    return model().evaluate(collect_inputs({}, _scan(points)))


def _assert_same_result(ref, model: type, points: int) -> None:
    """Chunked outputs equal the unchunked ones exactly, and so does the unique_hash."""
    saved = load_result(ref, Settings())
    serial = _serial(model, points)
    for name, value in serial.items():
        assert np.array_equal(np.asarray(saved.outputs[name]), value), name
    unchunked = Result(
        project_name=saved.project_name,
        flow_id=saved.flow_id,
        inputs=collect_inputs({}, _scan(points)),
        outputs=serial,
    )
    assert unchunked.unique_hash == ref.unique_hash


def _progress_artifact() -> float:
    """The latest value of the flow's progress artifact, read back from the API."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    with get_client(sync_client=True) as client:
        [artifact] = client.read_latest_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["my-package-scan"]))
        )
    return float(artifact.data)


def test_threads_equal_serial_with_progress(run_env, capsys: pytest.CaptureFixture) -> None:
    _, calls = run_env
    ref = _flow()(scan=_scan(40), parallel=Parallel(workers=4, chunk_size=3))
    _assert_same_result(ref, slow_models.SleepyModel, 40)
    assert sorted(slow_models.calls(calls)) == sorted([40] + [3] * 13 + [1])
    lines = capsys.readouterr().err.splitlines()
    progress = [line for line in lines if line.startswith("scan: ")]
    assert progress[-1].startswith("scan: 40/40 points (100 %), 14/14 chunks, ")
    assert _progress_artifact() == 100.0


@pytest.mark.slow
def test_processes_equal_serial(run_env, monkeypatch: pytest.MonkeyPatch) -> None:
    import my_package.flow as flow_module

    monkeypatch.setattr(flow_module, "MyPackageModel", slow_models.LoopModel)
    # Spawned worker processes import slow_models: tests/ must be on their path.
    monkeypatch.setenv(
        "PYTHONPATH", os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])
    )
    ref = _flow()(scan=_scan(20), parallel=Parallel(workers=2, processes=True, chunk_size=5))
    _assert_same_result(ref, slow_models.LoopModel, 20)


def test_failing_chunk_is_named_and_a_rerun_computes_only_the_failed_chunks(
    run_env, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    results, calls = run_env
    points = collect_inputs({}, _scan(50))[FIRST.name]
    monkeypatch.setenv("FAIL_ABOVE", repr(float(points[32])))  # chunks 4 and 5 fail
    parallel = Parallel(workers=2, chunk_size=10, chunk_retries=1)
    with pytest.raises(ChunkError, match=r"^chunk 4 of 5 \(points 30-39\) failed at point 33 "):
        _flow()(scan=_scan(50), parallel=parallel)
    assert not results.exists()  # nothing saved
    # 3 good chunks once; 2 failing chunks tried twice each (a retry), each try then
    # re-evaluating its points one by one to find the first failing one.
    assert slow_models.calls(calls).count(10) == 3 + 2 * 2
    calls.unlink()

    monkeypatch.delenv("FAIL_ABOVE")  # "fixed": the same model code, so the same cache keys
    capsys.readouterr()
    ref = _flow()(scan=_scan(50), parallel=parallel)
    assert slow_models.calls(calls) == [10, 10]  # only chunks 4 and 5
    assert "resumed: 3 of 5 chunks were done by an earlier run" in capsys.readouterr().err
    _assert_same_result(ref, slow_models.SleepyModel, 50)


# -- a real Dask cluster: scheduler and 2 workers on 127.0.0.1, started and stopped here ---


@pytest.fixture(scope="module")
def dask_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    """``dask scheduler`` and two single-threaded ``dask worker``s.

    Yields the scheduler's address and the file where the workers record model calls.
    """
    pytest.importorskip("distributed")
    from dask_cluster import dask_cluster

    logs = tmp_path_factory.mktemp("dask")
    calls = logs / "calls.txt"
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        "MODEL_CALLS_FILE": str(calls),
    }
    try:
        with dask_cluster(logs, env, workers=2) as address:
            yield address, calls
    except RuntimeError as exc:
        pytest.fail(str(exc))


@pytest.mark.slow
def test_dask_cluster_equals_serial(run_env, dask_cluster: tuple[str, Path]) -> None:
    address, calls = dask_cluster
    calls.unlink(missing_ok=True)
    ref = _flow()(scan=_scan(30), parallel=Parallel(dask=address, chunk_size=5))
    _assert_same_result(ref, slow_models.SleepyModel, 30)  # its one call is in this process
    records = slow_models.call_records(calls)
    assert [points for points, _, _ in records] == [5] * 6  # every chunk ran on a Dask worker
    assert os.getpid() not in {pid for _, pid, _ in records}
    # Prefect's task engine ran here, not there: the workers need the model, not the API.
    assert not any(prefect for _, _, prefect in records), "a Dask worker imported Prefect"
    # ... so the chunks were persisted here: the same scan again is all cache, no model call.
    calls.unlink()
    again = _flow()(scan=_scan(30), parallel=Parallel(dask=address, chunk_size=5))
    _assert_same_result(again, slow_models.SleepyModel, 30)
    assert slow_models.calls(calls) == []


@pytest.mark.slow
def test_a_running_cluster_gets_two_chunks_per_worker_thread(dask_cluster) -> None:
    from my_package.chunks import cluster_threads, plan

    address, _ = dask_cluster
    cluster_threads.cache_clear()
    chosen = plan(100, Parallel(dask=address))  # the two workers' threads, asked of it
    assert (chosen.workers, chosen.chunks) == (2, 4)
    assert plan(100, Parallel(dask=address, workers=5)).chunks == 10
    # Asked once: `run`'s pre-flight and its flow plan the same scan in one process.
    assert plan(50, Parallel(dask=address)).chunks == 4
    assert (cluster_threads.cache_info().misses, cluster_threads.cache_info().hits) == (1, 2)


@pytest.mark.slow
def test_evaluate_scan_on_the_dask_cluster(run_env, dask_cluster: tuple[str, Path]) -> None:
    from my_package.chunks import scan_in_pool

    address, calls = dask_cluster
    calls.unlink(missing_ok=True)
    values = collect_inputs({}, _scan(30))
    outputs = scan_in_pool(
        slow_models.SleepyModel, values, [FIRST.name], Parallel(dask=address, chunk_size=4)
    )
    for name, value in _serial(slow_models.SleepyModel, 30).items():
        assert np.array_equal(outputs[name], value), name
    assert sorted(slow_models.calls(calls)) == [2] + [4] * 7


# `python -m my_package` with SLOW_MODEL's model in place of the package's (slow_models.main).
SLOW_CLI = [sys.executable, "-c", "import slow_models, sys; sys.exit(slow_models.main())"]


def _cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a `run` command line with a slow model, its own temporary server."""
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_API", "MY_PACKAGE_"))
    }
    home = tmp_path / "prefect"
    home.mkdir()
    env.update(
        PYTHONPATH=os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        PREFECT_HOME=str(home),
        PREFECT_LOGGING_LEVEL="WARNING",
        MODEL_CALLS_FILE=str(tmp_path / "calls.txt"),
        **extra,
    )
    return env


@pytest.mark.slow
def test_run_with_processes_evaluates_in_workers_without_prefect(tmp_path: Path) -> None:
    # `run --processes`: the chunk tasks are Prefect's (threads of the flow); the model runs
    # in worker processes forked from a fork server that `run` started with the model
    # loaded, so they never import Prefect (a spawned Prefect worker took ~7 s to start).
    env = _cli_env(tmp_path, SLOW_MODEL="LoopModel", LOOPS_PER_POINT="20000")
    command = [*SLOW_CLI, "run", "--scan", f"{FIRST.name}={LOW}:{HIGH}:20", "--processes",
               "--workers", "2", "--chunk-size", "5"]  # fmt: skip
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 0, err
    records = slow_models.call_records(tmp_path / "calls.txt")
    assert sorted(points for points, _, _ in records) == [5, 5, 5, 5]
    workers = {pid for _, pid, _ in records}
    assert proc.pid not in workers and 1 <= len(workers) <= 2
    assert not any(prefect for _, _, prefect in records), "a worker imported Prefect"
    assert len(list((tmp_path / "results").rglob("*.json"))) == 1


# -- Ctrl-C on the command line, then the same command again ------------------------------


def _ctrl_c_after(command: list[str], cwd: Path, env: dict[str, str], progress: str) -> str:
    """Run ``command``, Ctrl-C it once a progress line contains ``progress``: its stderr after.

    Its own session, and SIGINT to the whole group: what Ctrl-C in a terminal does (the
    temporary Prefect server and the worker processes, children, get it too). Exit code 130.
    """
    # SIGINT at its default, as in a terminal's foreground job: pytest may have been started
    # as a background job, whose children inherit SIGINT ignored.
    proc = subprocess.Popen(
        command,
        cwd=cwd,
        env=env,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    assert proc.stderr is not None
    seen = []
    for line in proc.stderr:
        seen.append(line)
        if line.startswith("scan: ") and progress in line:
            os.killpg(proc.pid, signal.SIGINT)
            break
    rest = proc.stderr.read()
    assert proc.wait(timeout=60) == 130, "".join(seen) + rest
    return rest


@pytest.mark.slow
def test_run_on_a_local_dask_cluster_forks_its_workers_from_the_fork_server(
    tmp_path: Path,
) -> None:
    # `run --dask local:2` starts the fork server (Dask and the model imported) while Prefect
    # starts; Dask's nannies then fork their workers from it instead of spawning them.
    env = _cli_env(tmp_path, SLOW_MODEL="SleepyModel", SLEEP_PER_POINT="0.01")
    command = [*SLOW_CLI, "run", "--scan", f"{FIRST.name}={LOW}:{HIGH}:20", "--chunk-size", "5",
               "--dask", "local:2", "--output-dir", str(tmp_path / "results")]  # fmt: skip
    proc = subprocess.Popen(command, cwd=tmp_path, env=env, stderr=subprocess.PIPE, text=True)
    _, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    records = slow_models.call_records(tmp_path / "calls.txt")
    assert sorted(points for points, _, _ in records) == [5] * 4
    workers = {pid for _, pid, _ in records}
    assert len(workers) <= 2 and proc.pid not in workers
    assert proc.pid not in slow_models.call_parents(tmp_path / "calls.txt"), "spawned by run"
    (path,) = (tmp_path / "results").rglob("*.json")
    outputs = json.loads(path.read_text())["outputs"]
    for name, value in _serial(slow_models.SleepyModel, 20).items():
        assert np.array_equal(np.asarray(outputs[name]), value), name


@pytest.mark.slow
def test_ctrl_c_stops_with_one_line_and_the_same_command_resumes(tmp_path: Path) -> None:
    env = _cli_env(tmp_path, SLEEP_PER_POINT="0.05")
    command = [*SLOW_CLI, "run", "--scan", f"{FIRST.name}={LOW}:{HIGH}:60", "--chunk-size", "5"]
    rest = _ctrl_c_after(command, tmp_path, env, " 3/12 chunks")
    # Our line last, no traceback. (Once in four runs here, a background thread of Prefect's
    # reported the temporary server, stopped by the same Ctrl-C, as gone before it.)
    others = [text for text in rest.splitlines() if not text.startswith("scan: ")]
    assert others and "Traceback" not in rest, rest
    line = others[-1]
    match = re.fullmatch(r"interrupted: (\d+) of 12 chunks done; run the same command again to "
                         r"compute only the rest \(at most (\d+)\)", line)  # fmt: skip
    assert match, line
    done = int(match[1])
    assert 3 <= done < 12 and int(match[2]) == 12 - done
    assert not (tmp_path / "results").exists()
    (tmp_path / "calls.txt").unlink()

    again = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=300)  # fmt: skip
    assert again.returncode == 0, again.stderr
    # At least the chunks the line counted; one still running at the signal may have been
    # saved after it (seen here once: 3 reported, 4 resumed).
    resumed = re.search(r"resumed: (\d+) of 12 chunks were done by an earlier run and taken "
                        r"from Prefect's cache; computed (\d+)", again.stderr)  # fmt: skip
    assert resumed, again.stderr
    cached = int(resumed[1])
    assert done <= cached < 12 and int(resumed[2]) == 12 - cached
    assert len(slow_models.calls(tmp_path / "calls.txt")) == 12 - cached
    assert len(list((tmp_path / "results").rglob("*.json"))) == 1


@pytest.mark.slow
@pytest.mark.parametrize(
    "options",
    [
        ["run", "--processes", "--workers", "2"],
        ["evaluate", "--processes", "--workers", "2"],
        ["run", "--dask", "local:2"],
    ],
    ids=["run-processes", "evaluate-processes", "run-dask-local"],
)
def test_ctrl_c_with_worker_processes_is_one_line(tmp_path: Path, options: list[str]) -> None:
    # Ctrl-C reaches the worker processes too (one process group), a local Dask cluster's
    # included. Without their own SIGINT handler (the pool's initializer, Dask's preload)
    # each printed a KeyboardInterrupt traceback, and after `run`'s os._exit the resource
    # tracker warned about the pool's semaphores, both under our line.
    if "--dask" in options:
        pytest.importorskip("distributed")
    env = _cli_env(tmp_path, SLOW_MODEL="SleepyModel", SLEEP_PER_POINT="0.2")
    command = [*SLOW_CLI, options[0], "--scan", f"{FIRST.name}={LOW}:{HIGH}:60",
               "--chunk-size", "5", *options[1:]]  # fmt: skip
    rest = _ctrl_c_after(command, tmp_path, env, " 1/12 chunks")
    assert "Traceback" not in rest and "resource_tracker" not in rest, rest
    others = [text for text in rest.splitlines() if text and not text.startswith("scan: ")]
    assert len(others) == 1 and re.match(r"interrupted: \d+ of 12 chunks done", others[0]), rest
