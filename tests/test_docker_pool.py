"""The Docker work pool for real: prefect.yaml's ``docker`` deployment run by a Docker worker.

A real ``prefect server`` on 127.0.0.1, a ``prefect worker --type docker`` (prefect-docker)
talking to the private Docker engine (.ci/docker.sh), and the image that test_container.py
builds. The deployment is prefect.yaml's ``docker`` one, deployed from a copy of the project
whose only changes point it at that local image and this machine: the image (no registry
here), ``image_pull_policy: Never`` (so the worker never tries to pull it), host networking
(the engine runs without a bridge, and the flow's container must reach the server), and a
host directory as the results volume. A scan with two threads runs in the container and
the result is read from the mounted directory. Every process is stopped by pid and every
container the run left is removed by id.

Run through ``.ci/docker.sh run python -m pytest -m container`` (skipped without an engine).
"""

import json
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from test_container import Docker, docker, image, results_dir  # noqa: F401 (fixtures)
from test_deployment import PREFECT, Server, _free_port, _start, _stop, _wait_healthy

from my_package.variables import load_variables

REPO = Path(__file__).resolve().parents[1]
FLOW_NAME = "my-package"


@pytest.fixture
def prefect_server(tmp_path: Path, docker: Docker) -> Iterator[Server]:  # noqa: F811
    """A Prefect server on a free port of 127.0.0.1; env for its clients and worker."""
    home, logs = tmp_path / "home", tmp_path / "logs"
    logs.mkdir()
    port = _free_port()
    url = f"http://127.0.0.1:{port}/api"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PREFECT_", "MY_PACKAGE_"))}
    env.update(
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_HOME=str(home),
        PREFECT_API_URL=url,
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_WORKER_QUERY_SECONDS="1",
        PREFECT_WORKER_PREFETCH_SECONDS="5",
        COLUMNS="200",
    )
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


def _prefect(server: Server, *args: str, cwd: Path | None = None) -> str:
    proc = subprocess.run(
        [*PREFECT, *args], env=server.env, cwd=cwd, capture_output=True, text=True, timeout=300
    )
    if proc.returncode != 0:
        pytest.fail(f"prefect {' '.join(args)} failed:\n{proc.stdout}\n{proc.stderr}")
    return proc.stdout


@pytest.mark.container
@pytest.mark.slow
def test_docker_deployment_runs_a_parallel_scan_in_the_image(
    docker: Docker,  # noqa: F811
    image: str,  # noqa: F811
    results_dir: Path,  # noqa: F811
    prefect_server: Server,
    tmp_path: Path,
) -> None:
    # A tag of its own: other checkouts on the same engine build local/...:test too.
    own_image = f"{image.rsplit(':', 1)[0]}:docker-pool-{os.getpid()}"
    docker("tag", image, own_image)
    project = tmp_path / "project"
    project.mkdir()
    config = yaml.safe_load((REPO / "prefect.yaml").read_text())
    [deployment] = [d for d in config["deployments"] if d["name"] == "docker"]
    job = deployment["work_pool"]["job_variables"]
    job.update(
        image=own_image,
        image_pull_policy="Never",
        network_mode="host",
        volumes=[f"{results_dir}:/results"],
        auto_remove=False,  # removed below, by id, after its logs are read
    )
    config["deployments"] = [deployment]
    (project / "prefect.yaml").write_text(yaml.safe_dump(config, sort_keys=False))
    pool = deployment["work_pool"]["name"]
    _prefect(prefect_server, "work-pool", "create", pool, "--type", "docker")
    _prefect(prefect_server, "--no-prompt", "deploy", "--all", cwd=project)

    worker_env = {**prefect_server.env, "DOCKER_HOST": os.environ["DOCKER_HOST"]}
    log = prefect_server.logs / "worker.log"
    worker = _start(
        [*PREFECT, "worker", "start", "--pool", pool, "--type", "docker"], worker_env, log
    )
    var = load_variables()[0][0]
    low, high = var.value_range
    scan = {var.name: {"start": low, "stop": high, "num": 40}}
    try:
        out = _prefect(
            prefect_server,
            "deployment", "run", f"{FLOW_NAME}/docker",
            "--param", f"scan={json.dumps(scan)}",
            "--param", 'parallel={"workers": 2, "chunk_size": 5}',
            "--watch", "--watch-timeout", "280",
        )  # fmt: skip
    finally:
        _stop(worker)
        containers = docker(
            "ps", "-aq", "--filter", "label=io.prefect.flow-run-id", check=False
        ).stdout.split()
        logs = [docker("logs", cid, check=False).stdout for cid in containers]
        for cid in containers:
            docker("rm", "-f", cid, check=False)
        docker("rmi", own_image, check=False)
    files = list(results_dir.rglob("*.json"))
    assert len(files) == 1, f"{out}\n{log.read_text()[-3000:]}\n{''.join(logs)[-3000:]}"
    document = json.loads(files[0].read_text())
    assert len(document["inputs"][var.name]) == 40
    assert (document["inputs"][var.name][0], document["inputs"][var.name][-1]) == (low, high)
    lengths = {name: len(value) for name, value in document["outputs"].items()}
    assert lengths == {output.name: 40 for output in load_variables()[1]}
    assert containers, "the worker started no container"
    shutil.rmtree(project)
