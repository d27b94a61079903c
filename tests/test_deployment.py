"""prefect.yaml on a real Prefect server: deploy, run through a process worker, read results.

Starts ``prefect server start`` on 127.0.0.1 with its own PREFECT_HOME, creates one
work pool of each type, runs ``prefect --no-prompt deploy --all`` from a copy of
the project, starts a process worker and runs the ``local`` deployment. The
Docker and Kubernetes deployments are deployed too (no worker needed) and their
job variables are checked offline against the workers' default base job templates.
Every process is started in its own process group and stopped by pid, also on failure.
The tests that need the server are marked slow; the offline checks are not.
"""

import contextlib
import contextvars
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
PREFECT = [sys.executable, "-m", "prefect"]
FLOW_NAME = "my-package"
POOLS = {"local": "process", "docker": "docker", "kubernetes": "kubernetes"}
STARTUP_TIMEOUT = 120.0  # seconds; a fresh PREFECT_HOME runs the database migrations
RUN_TIMEOUT = 180.0


@dataclass
class Server:
    url: str
    env: dict[str, str]
    home: Path
    logs: Path


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _start(cmd: list[str], env: dict[str, str], log: Path, cwd: Path | None = None):
    # Own session (process group): SIGTERM reaches the command and its children,
    # and a backgrounded worker does not ignore it.
    with log.open("wb") as out:
        return subprocess.Popen(
            cmd, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen) -> None:
    """Stop a process started by _start and everything in its group, by pid."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(timeout=10)
    else:
        # The leader exited; children it left in the group still get stopped.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def _prefect(server: Server, *args: str, cwd: Path | None = None, check: bool = True):
    proc = subprocess.run(
        [*PREFECT, *args],
        env=server.env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT,
    )
    if check and proc.returncode != 0:
        pytest.fail(f"prefect {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc


def _wait_healthy(url: str, proc: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"prefect server exited with {proc.returncode}:\n{log.read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)  # a poll interval, not a wait for readiness
    pytest.fail(f"prefect server not healthy after {STARTUP_TIMEOUT} s:\n{log.read_text()}")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A real Prefect server on a free port of 127.0.0.1, with its own PREFECT_HOME."""
    base = tmp_path_factory.mktemp("prefect")
    home, logs = base / "home", base / "logs"
    logs.mkdir()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("PREFECT_", "MY_PACKAGE_", "LUME_"))
    }
    env.update(
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_HOME=str(home),
        PREFECT_PROFILES_PATH=str(home / "profiles.toml"),
        PREFECT_API_URL=url,
        PREFECT_LOGGING_LEVEL="WARNING",
        # Workers poll every second instead of ten.
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_PREFETCH_SECONDS="5",
        # The flow's own settings: results to a temporary directory.
        MY_PACKAGE_TARGET="filesystem",
        MY_PACKAGE_OUTPUT_DIR=str(base / "results"),
        PYTHONUNBUFFERED="1",
        COLUMNS="200",  # rich wraps CLI messages at the terminal width
    )
    # The server itself must not try to reach itself through PREFECT_API_URL.
    server_env = {k: v for k, v in env.items() if k != "PREFECT_API_URL"}
    log = logs / "server.log"
    proc = _start(
        [*PREFECT, "server", "start", "--host", "127.0.0.1", "--port", str(port)], server_env, log
    )
    try:
        _wait_healthy(url, proc, log)
        yield Server(url=url, env=env, home=home, logs=logs)
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def project(server: Server, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the project, deployed with ``prefect --no-prompt deploy --all``."""
    root = tmp_path_factory.mktemp("project")
    shutil.copy2(REPO / "prefect.yaml", root / "prefect.yaml")
    shutil.copytree(
        REPO / "my_package", root / "my_package", ignore=shutil.ignore_patterns("__pycache__")
    )
    config = yaml.safe_load((root / "prefect.yaml").read_text())
    for deployment in config["deployments"]:
        pool = deployment["work_pool"]["name"]
        _prefect(server, "work-pool", "create", pool, "--type", POOLS[deployment["name"]])
    _prefect(server, "--no-prompt", "deploy", "--all", cwd=root)
    return root


@pytest.fixture(scope="module")
def worker(server: Server, project: Path) -> Iterator[subprocess.Popen]:
    """A process worker on the local deployment's pool."""
    config = yaml.safe_load((project / "prefect.yaml").read_text())
    pool = next(d for d in config["deployments"] if d["name"] == "local")["work_pool"]["name"]
    log = server.logs / "worker.log"
    proc = _start([*PREFECT, "worker", "start", "--pool", pool], server.env, log, cwd=project)
    try:
        yield proc
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def client_settings(server: Server) -> Iterator[None]:
    """This test process talks to the server (and reads results) as the worker's runs do."""
    from prefect.settings import (
        PREFECT_API_URL,
        PREFECT_HOME,
        PREFECT_LOCAL_STORAGE_PATH,
        temporary_settings,
    )

    with temporary_settings(
        updates={
            PREFECT_API_URL: server.url,
            PREFECT_HOME: server.home,
            PREFECT_LOCAL_STORAGE_PATH: server.home / "storage",
        }
    ):
        yield


def _run(parameters: dict[str, Any], worker: subprocess.Popen, server: Server):
    """Run the local deployment and wait for a final state; return the flow run."""
    from prefect.deployments import run_deployment

    flow_run = run_deployment(
        f"{FLOW_NAME}/local", parameters=parameters, timeout=RUN_TIMEOUT, poll_interval=1
    )
    if worker.poll() is not None:
        pytest.fail(f"worker exited:\n{(server.logs / 'worker.log').read_text()}")
    return flow_run


def _check_completed(flow_run, server: Server) -> dict[str, Any]:
    """Assert COMPLETED and return the flow's return value (the result reference) as a dict."""
    assert flow_run.state is not None
    if not flow_run.state.is_completed():
        pytest.fail(
            f"run {flow_run.name} ended {flow_run.state.type}: {flow_run.state.message}\n"
            f"worker log:\n{(server.logs / 'worker.log').read_text()[-5000:]}"
        )
    ref = flow_run.state.result()
    return ref.model_dump() if hasattr(ref, "model_dump") else dict(ref)


def _load(ref: dict[str, Any]):
    from my_package.config import Settings
    from my_package.targets import load_result

    return load_result(ref, Settings())


def _variables():
    """The model's variables: these tests use whatever variables.yml declares."""
    from my_package.variables import load_variables

    return load_variables()


def _points(var, count: int) -> list[float]:
    """``count`` distinct values inside an input variable's range."""
    low, high = var.value_range
    return [low + (high - low) * (i + 1) / (count + 1) for i in range(count)]


@pytest.mark.slow
@pytest.mark.usefixtures("client_settings")
def test_one_point_runs_and_its_result_is_saved(worker, server: Server) -> None:
    inputs, outputs = _variables()
    chosen, *defaulted = inputs
    [value] = _points(chosen, 1)
    ref = _check_completed(_run({"inputs": {chosen.name: value}}, worker, server), server)

    assert ref["target"] == "filesystem"
    assert Path(ref["location"]).is_relative_to(Path(server.env["MY_PACKAGE_OUTPUT_DIR"]))
    result = _load(ref)
    assert result.unique_hash == ref["unique_hash"]
    assert result.inputs[chosen.name] == value
    for var in defaulted:  # filled from their defaults in variables.yml
        assert result.inputs[var.name] == var.default_value
    assert set(result.outputs) == {var.name for var in outputs}


@pytest.mark.slow
@pytest.mark.usefixtures("client_settings")
def test_scan_runs_and_its_result_holds_every_point(worker, server: Server) -> None:
    inputs, outputs = _variables()
    var = inputs[-1]
    low, high = var.value_range
    scan = {var.name: {"start": low, "stop": high, "num": 21}}
    ref = _check_completed(_run({"scan": scan}, worker, server), server)

    result = _load(ref)
    assert len(result.inputs[var.name]) == 21
    assert (result.inputs[var.name][0], result.inputs[var.name][-1]) == (low, high)
    for output in outputs:
        assert len(result.outputs[output.name]) == 21


@pytest.mark.slow
def test_out_of_range_parameter_is_rejected_naming_the_variable(worker, server: Server) -> None:
    # README's command: the server checks parameters against the flow's schema
    # before a run is created, so nothing runs and nothing is saved.
    var = _variables()[0][0]
    low, high = var.value_range
    too_high = high + (high - low)
    proc = _prefect(
        server,
        "deployment",
        "run",
        f"{FLOW_NAME}/local",
        "--param",
        f"inputs={json.dumps({var.name: too_high})}",
        check=False,
    )
    output = " ".join((proc.stdout + proc.stderr).split())
    assert proc.returncode != 0, output
    assert f"inputs.{var.name}" in output, output
    assert f"maximum of {high}" in output, output


@pytest.mark.slow
@pytest.mark.usefixtures("client_settings")
def test_four_runs_at_once_all_complete(worker, server: Server) -> None:
    var = _variables()[0][0]
    values = _points(var, 4)
    with ThreadPoolExecutor(max_workers=4) as pool:
        # Each thread gets a copy of this context: Prefect's settings (the server's
        # URL) live in context variables, which new threads do not inherit.
        futures = [
            pool.submit(
                contextvars.copy_context().run, _run, {"inputs": {var.name: v}}, worker, server
            )
            for v in values
        ]
        runs = [future.result() for future in futures]

    refs = [_check_completed(run, server) for run in runs]
    assert len({ref["unique_hash"] for ref in refs}) == 4
    for value, ref in zip(values, refs, strict=True):
        assert _load(ref).inputs[var.name] == value


# -- Docker and Kubernetes deployments, checked without Docker or a cluster ------------


def _default_job_variables(pool_type: str) -> set[str]:
    if pool_type == "docker":
        from prefect_docker.worker import DockerWorker as Worker
    else:
        from prefect_kubernetes.worker import KubernetesWorker as Worker
    return set(Worker.get_default_base_job_template()["variables"]["properties"])


@pytest.mark.parametrize("name", ["docker", "kubernetes"])
def test_image_deployment_job_variables_exist_in_the_worker_template(name: str) -> None:
    # prefect deploy accepts any key silently; a typo would only show on the cluster.
    pytest.importorskip(f"prefect_{name}")
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    deployment = next(d for d in config["deployments"] if d["name"] == name)
    job_variables = deployment["work_pool"]["job_variables"]
    unknown = set(job_variables) - _default_job_variables(name)
    assert not unknown, f"{name} job_variables not in the worker's base job template: {unknown}"
    assert job_variables["image"].startswith("ghcr.io/slaclab/my-package:")
    assert deployment.get("build", "absent") is None and deployment.get("push", "absent") is None
    [step] = deployment["pull"]
    directory = step["prefect.deployments.steps.set_working_directory"]["directory"]
    assert directory == _dockerfile_workdir(), "the pull step must match the image's WORKDIR"
    # The image has the installed package, not its source: a module-path entrypoint.
    assert deployment["entrypoint"] == "my_package.flow:my_package_flow"


def _dockerfile_workdir() -> str:
    dockerfile = (REPO / "Dockerfile").read_text()
    return re.findall(r"^WORKDIR\s+(\S+)", dockerfile, flags=re.MULTILINE)[-1]


def test_image_matches_the_package_image_constant() -> None:
    from my_package._image import REPOSITORY

    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    for deployment in config["deployments"]:
        image = deployment["work_pool"]["job_variables"].get("image")
        if image is not None:
            assert image.rsplit(":", 1)[0] == REPOSITORY


def _deployment(server: Server, name: str) -> dict[str, Any]:
    """The deployment as the server stores it (REST API)."""
    with urllib.request.urlopen(f"{server.url}/deployments/name/{FLOW_NAME}/{name}") as response:
        return json.load(response)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["docker", "kubernetes"])
def test_image_deployment_is_registered_with_its_image(name: str, project: Path, server) -> None:
    deployment = _deployment(server, name)
    config = yaml.safe_load((project / "prefect.yaml").read_text())
    expected = next(d for d in config["deployments"] if d["name"] == name)
    assert deployment["work_pool_name"] == expected["work_pool"]["name"]
    assert deployment["job_variables"] == expected["work_pool"]["job_variables"]
    assert deployment["pull_steps"] == expected["pull"]
    assert deployment["entrypoint"] == expected["entrypoint"]


@pytest.mark.slow
def test_local_deployment_works_in_the_directory_it_was_deployed_from(
    project: Path, server: Server
) -> None:
    [step] = _deployment(server, "local")["pull_steps"]
    directory = step["prefect.deployments.steps.set_working_directory"]["directory"]
    assert Path(directory) == project.resolve()


@pytest.mark.slow
def test_deploy_adds_no_files_to_the_project(project: Path) -> None:
    assert sorted(path.name for path in project.iterdir()) == ["my_package", "prefect.yaml"]


@pytest.mark.slow
def test_parameter_schema_reaches_the_server(project: Path, server: Server) -> None:
    deployment = _deployment(server, "local")
    schema = deployment["parameter_openapi_schema"]
    assert set(schema["properties"]) == {"inputs", "scan", "target", "parallel"}
    assert deployment["enforce_parameter_schema"] is True
    assert deployment["parameters"] == {}  # defaults come from the flow, not prefect.yaml
    assert deployment["description"]  # from the flow's docstring
