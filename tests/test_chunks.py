"""Chunked scans without Prefect: chunk plans, split and join, thread and process pools, the
``evaluate --scan`` command line (progress, errors).

The slow models (tests/slow_models.py) are the package's model made slow; variable names and
ranges come from variables.yml, so these tests hold for any model.
"""

import contextlib
import json
import os
import pty
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import slow_models
from epics_loopback import free_port

from my_package import chunks
from my_package.model import MyPackageModel
from my_package.validation import collect_inputs, expand_scan
from my_package.variables import load_variables

TESTS = Path(__file__).resolve().parent
NO_SCHEDULER = f"tcp://127.0.0.1:{free_port(socket.SOCK_STREAM)}"
INPUTS, OUTPUTS = load_variables()
FIRST = INPUTS[0]
LOW, HIGH = FIRST.value_range


def _scan(points: int) -> dict:
    """Validated inputs of a scan of the first input over its range."""
    return collect_inputs({}, {FIRST.name: chunks_range(points)})


def chunks_range(points: int):
    from my_package.validation import ScanRange

    return ScanRange(start=LOW, stop=HIGH, num=points)


@pytest.fixture
def calls_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "calls.txt"
    monkeypatch.setenv("MODEL_CALLS_FILE", str(path))
    return path


@pytest.fixture(autouse=True)
def no_environment_options(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("WORKERS", "PROCESSES", "CHUNK_SIZE", "DASK", "CHUNK_RETRIES"):
        monkeypatch.delenv(f"MY_PACKAGE_{name}", raising=False)


def test_default_plan_is_one_chunk_or_two_per_worker() -> None:
    assert (chunks.plan(10**6).chunks, chunks.plan(10**6).chunk_size) == (1, 10**6)
    assert chunks.plan(200, chunks.Parallel(workers=2)).chunk_size == 50
    assert chunks.plan(200, chunks.Parallel(workers=8)).chunk_size == 13  # 16 chunks for 8
    assert chunks.plan(5, chunks.Parallel(workers=4)).chunks == 5  # never an empty chunk
    one = chunks.plan(200, chunks.Parallel(chunk_size=10**6))
    assert (one.chunks, one.chunk_size, one.bounds(0)) == (1, 200, (0, 200))
    assert chunks.plan(201, chunks.Parallel(chunk_size=20)).bounds(10) == (200, 201)


def test_options_command_line_over_environment_over_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Preferring(MyPackageModel):
        chunk_size = 25
        workers = 3
        processes = True

    by_model = chunks.plan(100, None, Preferring)
    assert (by_model.chunk_size, by_model.workers, by_model.processes) == (25, 3, True)
    monkeypatch.setenv("MY_PACKAGE_WORKERS", "5")
    monkeypatch.setenv("MY_PACKAGE_CHUNK_RETRIES", "4")
    by_env = chunks.plan(100, None, Preferring)
    assert (by_env.workers, by_env.retries, by_env.chunk_size) == (5, 4, 25)
    given = chunks.plan(100, chunks.options(workers=2, chunk_size=50), Preferring)
    assert (given.workers, given.chunk_size, given.processes) == (2, 50, True)
    assert chunks.plan(100, chunks.options(dask="local:3")).workers == 3


def test_the_first_place_to_choose_dask_or_processes_decides(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    class Preferring(MyPackageModel):
        workers = 3
        processes = True

    # --dask on the command line runs a model whose class says processes on Dask.
    on_dask = chunks.plan(100, chunks.options(dask="local:2"), Preferring)
    assert (on_dask.dask, on_dask.processes, on_dask.workers) == ("local:2", False, 2)
    monkeypatch.setenv("MY_PACKAGE_DASK", "local:4")
    assert chunks.plan(100, None, Preferring).dask == "local:4"  # the environment too
    # ... and --processes on the command line wins over MY_PACKAGE_DASK.
    local = chunks.plan(100, chunks.options(processes=True), Preferring)
    assert (local.dask, local.processes, local.workers) == (None, True, 3)
    monkeypatch.setenv("MY_PACKAGE_PROCESSES", "true")
    with pytest.raises(chunks.ParallelOptionsError, match=r"^MY_PACKAGE_DASK and MY_PACKAGE_PRO"):
        chunks.plan(100, None, Preferring)  # one place choosing both: the user must say


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"workers": 0}, "--workers 0 must be greater than or equal to 1"),
        ({"chunk_size": -5}, "--chunk-size -5 must be greater than or equal to 1"),
        ({"dask": "localhost:8786"}, "--dask localhost:8786 is not a Dask address"),
        ({"chunk_retries": 99}, "--chunk-retries 99 must be less than or equal to 10"),
    ],
)
def test_bad_option_is_one_message_naming_it(given: dict, message: str) -> None:
    with pytest.raises(chunks.ParallelOptionsError, match=message):
        chunks.options(**given)


def test_split_then_join_gives_back_every_point_in_order() -> None:
    values = _scan(103)
    plan = chunks.plan(103, chunks.Parallel(chunk_size=10))
    parts = chunks.split(values, [FIRST.name], plan)
    assert [len(part[FIRST.name]) for part in parts] == [10] * 10 + [3]
    for var in INPUTS[1:]:  # fixed inputs go to every chunk unchanged
        assert all(part[var.name] == values[var.name] for part in parts)
    joined = chunks.join([{FIRST.name: part[FIRST.name]} for part in parts])
    assert np.array_equal(joined[FIRST.name], values[FIRST.name])


def test_join_concatenates_nd_outputs_along_the_points_axis() -> None:
    rng = np.random.default_rng(1)
    whole = rng.normal(size=(23, 4, 3))
    parts = [
        {"image": whole[i : i + 5], "total": whole[i : i + 5].sum(axis=(1, 2))}
        for i in range(0, 23, 5)
    ]
    joined = chunks.join(parts)
    assert joined["image"].shape == (23, 4, 3)
    assert np.array_equal(joined["image"], whole)
    assert np.array_equal(joined["total"], whole.sum(axis=(1, 2)))


def test_join_keeps_each_chunks_warnings_with_its_label() -> None:
    from my_package.validation import WARNINGS_KEY

    parts = [{"y": np.ones(2), WARNINGS_KEY: ["w at index 1"]}, {"y": np.ones(2)}]
    joined = chunks.join(parts, ["chunk 1 of 2 (points 0-1)", "chunk 2 of 2 (points 2-3)"])
    assert joined[WARNINGS_KEY] == ["chunk 1 of 2 (points 0-1): w at index 1"]
    assert WARNINGS_KEY not in chunks.join([{"y": np.ones(2)}, {"y": np.ones(2)}])


def test_join_refuses_a_per_chunk_number_that_differs() -> None:
    from my_package.validation import ModelOutputError

    assert chunks.join([{"c": 2.0}, {"c": 2.0}]) == {"c": 2.0}
    with pytest.raises(ModelOutputError, match="'c' is one number per chunk"):
        chunks.join([{"c": 2.0}, {"c": 3.0}])


@pytest.mark.parametrize(
    ("model", "options"),
    [
        (slow_models.SleepyModel, chunks.Parallel(workers=4, chunk_size=7)),
        (slow_models.LoopModel, chunks.Parallel(workers=2, processes=True, chunk_size=9)),
    ],
    ids=["threads", "processes"],
)
def test_parallel_equals_serial_exactly(model: type, options, calls_file: Path) -> None:
    values = _scan(60)
    serial = model().evaluate(values)  # one call on every point at once
    parallel = chunks.evaluate_scan(model, values, [FIRST.name], chunks.plan(60, options, model))
    assert set(parallel) == set(serial)
    for name in serial:
        assert np.array_equal(parallel[name], serial[name]), name
    assert sorted(slow_models.calls(calls_file)) == sorted(
        [60]
        + [options.chunk_size] * (60 // options.chunk_size)
        + ([60 % options.chunk_size] if 60 % options.chunk_size else [])
    )


# Run in a fresh process, as `evaluate --scan` is: pytest's own may hold threads by now.
POOL_SCAN = """
import sys, threading, time
import numpy as np, slow_models
from my_package import chunks
from test_chunks import FIRST, _scan
if sys.argv[1] == "forkserver":
    threading.Thread(target=time.sleep, args=(30,), daemon=True).start()
method = chunks._process_context().get_start_method()
values = _scan(30)
plan = chunks.plan(30, chunks.Parallel(workers=2, processes=True, chunk_size=10))
parallel = chunks.evaluate_scan(slow_models.LoopModel, values, [FIRST.name], plan)
serial = slow_models.LoopModel().evaluate(values)
assert all(np.array_equal(parallel[name], serial[name]) for name in serial)
print(method)
"""


@pytest.mark.parametrize("method", ["fork", "forkserver"])
def test_process_workers_fork_here_or_from_a_fork_server(method: str, calls_file: Path) -> None:
    # No thread (`evaluate --scan`): the workers fork, the model already imported. A thread
    # (a Prefect run): they fork from a fork server that imported the model. Either way,
    # exactly the serial outputs.
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
    }
    done = subprocess.run(
        [sys.executable, "-c", POOL_SCAN, method], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == method
    assert sorted(slow_models.calls(calls_file)) == [10, 10, 10, 30]


@pytest.mark.parametrize("where", ["threads", "dask"])
def test_failing_chunk_is_named_with_its_first_failing_point(
    where: str, calls_file: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    values = _scan(50)
    points = values[FIRST.name]
    monkeypatch.setenv("FAIL_ABOVE", repr(float(points[32])))  # points 33.. fail
    plan = chunks.plan(50, chunks.Parallel(chunk_size=10, workers=2))
    with contextlib.ExitStack() as stack:
        executor = None
        if where == "dask":
            # A real Dask cluster in this process (its worker sees FAIL_ABOVE): the other
            # chunks are stopped through Dask's executor, whose shutdown differs from the pools'.
            # One worker thread runs the chunks in the order submitted, so chunk 4 fails first
            # (with two, chunk 5 could fail first on the other worker).
            distributed = pytest.importorskip("distributed")
            client = stack.enter_context(
                distributed.Client(
                    processes=False, n_workers=1, threads_per_worker=1, dashboard_address=None
                )
            )
            executor = stack.enter_context(client.get_executor())
        with pytest.raises(chunks.ChunkError) as caught:
            chunks.evaluate_scan(
                slow_models.SleepyModel, values, [FIRST.name], plan, executor=executor
            )
    message = str(caught.value)
    assert message.startswith("chunk 4 of 5 (points 30-39) failed at point 33 ")
    assert f"({FIRST.name}={points[33]:.6g})" in message
    assert "the model cannot evaluate" in message


def test_code_version_covers_the_model_subclass() -> None:
    assert chunks.code_version(MyPackageModel) == chunks.code_version(MyPackageModel)
    assert chunks.code_version(slow_models.SleepyModel) != chunks.code_version(MyPackageModel)
    values = _scan(20)
    version = chunks.code_version(MyPackageModel)
    assert chunks.chunk_key(version, values) == chunks.chunk_key(version, dict(values))
    nudged = {**values, FIRST.name: np.nextafter(values[FIRST.name], np.inf)}
    assert chunks.chunk_key(version, nudged) != chunks.chunk_key(version, values)


# -- the command line, with the slow model ----------------------------------------------


def slow_cli(*args: str, cwd: Path, env: dict | None = None, **kwargs) -> subprocess.Popen:
    """``python -m my_package ARGS`` with SleepyModel (tests/slow_models.py) as the model."""
    environment = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
        **(env or {}),
    }
    code = "import slow_models, sys; sys.exit(slow_models.main())"
    return subprocess.Popen([sys.executable, "-c", code, *args], cwd=cwd, env=environment, **kwargs)


def test_evaluate_scan_in_parallel_saves_the_same_result_with_progress(tmp_path: Path) -> None:
    scan = f"{FIRST.name}={LOW}:{HIGH}:40"
    env = {"SLEEP_PER_POINT": "0.01"}
    one = slow_cli(
        "evaluate",
        "--scan",
        scan,
        "--chunk-size",
        "40",
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out_one, err_one = one.communicate(timeout=120)
    assert one.returncode == 0, err_one
    [saved] = (tmp_path / "results" / "my_package").glob("*.json")
    four = slow_cli(
        "evaluate",
        "--scan",
        scan,
        "--workers",
        "4",
        "--chunk-size",
        "3",
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out_four, err_four = four.communicate(timeout=120)
    assert four.returncode == 0, err_four
    # Same points, same outputs: the same unique_hash, so the same file, saved once.
    assert list((tmp_path / "results" / "my_package").glob("*.json")) == [saved]
    assert out_one == out_four
    assert (
        json.loads(saved.read_text())["inputs"][FIRST.name]
        == expand_scan({FIRST.name: chunks_range(40)})[FIRST.name].tolist()
    )
    lines = err_four.splitlines()  # not a terminal: plain lines, at most about 20
    assert lines[-1].startswith("scan: 40/40 points (100 %), 14/14 chunks, ")
    assert 5 <= len(lines) <= 21 and all(" points/s, ETA " in line for line in lines)


def test_evaluate_scan_on_a_terminal_shows_a_bar(tmp_path: Path) -> None:
    leader, follower = pty.openpty()
    scan = f"{FIRST.name}={LOW}:{HIGH}:20"
    proc = slow_cli(
        "evaluate",
        "--scan",
        scan,
        "--workers",
        "2",
        cwd=tmp_path,
        env={"COLUMNS": "120"},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=follower,
    )
    os.close(follower)
    shown = b""
    while True:
        try:
            data = os.read(leader, 4096)
        except OSError:  # the child closed the terminal
            break
        if not data:
            break
        shown += data
    os.close(leader)
    assert proc.wait(timeout=120) == 0
    text = shown.decode(errors="replace")
    assert "20/20" in text and "points" in text and "ETA" in text
    assert "scan: " not in text.replace("scan ", "")  # the bar, not the plain lines


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--workers", "0"], "error: --workers 0 must be greater than or equal to 1"),
        (["--dask", "local:2", "--processes"], "error: --dask and --processes exclude each other"),
        (["--dask", "8786"], "error: --dask 8786 is not a Dask address"),
        # Nobody listens there: refused, retried by Dask for its 10 s timeout, then one line.
        (["--dask", NO_SCHEDULER], f"error: --dask {NO_SCHEDULER}: cannot reach the Dask"),
    ],
)
def test_bad_parallel_option_exits_2_with_one_line(
    args: list[str], message: str, tmp_path: Path
) -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "my_package",
            "evaluate",
            "--scan",
            f"{FIRST.name}={LOW}:{HIGH}:5",
            *args,
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 2
    assert proc.stderr.splitlines() == [proc.stderr.strip()]
    assert proc.stderr.startswith(message)
    assert not (tmp_path / "results").exists()


@pytest.mark.parametrize("command", ["evaluate", "run"])
def test_dask_without_distributed_exits_2_with_one_line(command: str, tmp_path: Path) -> None:
    # distributed made unimportable, as in an install without the "dask" extra. `run` says
    # so in its pre-flight, before Prefect starts (it starts local:N's fork server there).
    blocked = "import sys; sys.modules['distributed'] = None; from my_package.cli import main; "
    scan = ["--scan", f"{FIRST.name}={LOW}:{HIGH}:5", "--dask", "local:2"]
    proc = subprocess.run(
        [sys.executable, "-c", blocked + "sys.exit(main())", command, *scan],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (proc.returncode, proc.stderr) == (2, f"error: {chunks.DASK_MISSING}\n")
    assert "prefect" not in proc.stdout.lower() and not (tmp_path / "results").exists()
