"""The project's Dockerfile, built and run on a real Docker engine.

Run through ``.ci/docker.sh run python -m pytest -m container``: that script installs Debian's
docker.io, starts a private dockerd (DOCKER_HOST) and makes the local base image BASE_IMAGE
(Debian bookworm minbase with python3, from debootstrap). Without a reachable engine these tests
are skipped (and fail instead when CI_DOCKER=1, which the script sets).

What is replaced, and only that: conda-forge is unreachable here, so the body of the Dockerfile's
``conda`` stage (``USER 0``, ``COPY environment.yml`` and the RUN with the two ``micromamba
create`` solves and ``micromamba clean``) is replaced by
two ``python3 -m venv`` + ``pip install --no-index --find-links /wheels`` commands that create
the same two prefixes, /opt/env (setup.cfg's install_requires, which test_environment_files.py
proves equal to environment.yml, plus the ``online`` and ``dask`` extras, which environment.yml
also holds)
and /opt/build (pyproject.toml's build requirements), from
wheels downloaded on the host with ``pip wheel``. The ``conda`` stage's base is the base image
plus those wheels (build argument MICROMAMBA_IMAGE), the runtime base is the base image
(RUNTIME_IMAGE). Every other line of the Dockerfile, the build context and .dockerignore are
the project's own, and the build runs with ``--network none``.
"""

from __future__ import annotations

import configparser
import email.parser
import json
import math
import os
import re
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from epics_loopback import pva_env
from packaging.markers import default_environment
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[1]
VERSION = "1.2.3"  # build argument; must reach the label and the installed package
REPLACEMENT = """\
RUN python3 -m venv /opt/env \\
    && /opt/env/bin/pip install --no-index --find-links /wheels -r /wheels/runtime.txt \\
    && python3 -m venv /opt/build \\
    && /opt/build/bin/pip install --no-index --find-links /wheels -r /wheels/build.txt

"""
CONDA_STAGE = re.compile(
    r"^FROM \$\{MICROMAMBA_IMAGE\} AS conda\n(?P<body>.*?)(?=^# ----|^FROM )", re.M | re.S
)


@dataclass
class Docker:
    """The engine: client path, base image, and where to report timings."""

    client: str
    base_image: str
    report: list[str]

    def __call__(
        self, *args: str, check: bool = True, timeout: float = 600
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run([self.client, *args], capture_output=True, text=True, timeout=timeout)
        if check and proc.returncode != 0:
            pytest.fail(
                f"docker {' '.join(args[:3])} ... exited {proc.returncode}:\n"
                f"{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"
            )
        return proc


def project_names() -> tuple[str, str]:
    """Distribution and import package names, read from setup.cfg (they change on rename)."""
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "setup.cfg")
    package = cfg.get("options.packages.find", "include").replace(",", " ").split()[0]
    return cfg.get("metadata", "name"), package


def model_variables() -> tuple[dict[str, float], list[str]]:
    """Inputs with a non-default in-range value each, and output names, from variables.yml.

    Read from the file (not hard-coded) so the test holds for any model, the skeleton included.
    """
    _, package = project_names()
    data = yaml.safe_load((ROOT / package / "files" / "variables.yml").read_text())
    inputs = {}
    for name, spec in data["input_variables"].items():
        low, high = spec.get("value_range") or (spec["default_value"], spec["default_value"])
        inputs[name] = round(low + 0.37 * (high - low), 6)
    return inputs, list(data["output_variables"])


def requirements(section: str, option: str) -> list[str]:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "setup.cfg")
    lines = (line.split(" #")[0].strip() for line in cfg.get(section, option).splitlines())
    return [line for line in lines if line and not line.startswith("#")]


def wheel_metadata(wheel: Path) -> tuple[str, list[Requirement]]:
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        meta = email.parser.Parser().parsestr(archive.read(name).decode())
    return canonicalize_name(meta["Name"]), [
        Requirement(r) for r in meta.get_all("Requires-Dist") or []
    ]


def unmet(wheel_dir: Path, roots: list[str], python_version: str) -> list[str]:
    """Requirements the wheelhouse lacks for the container's Python.

    ``pip wheel`` evaluates markers for the host's Python (3.11.7 here); the base image has
    Debian's (3.11.2), and some markers differ (e.g. ``python_full_version < "3.11.3"``).
    """
    env = {
        **default_environment(),
        "python_full_version": python_version,
        "python_version": ".".join(python_version.split(".")[:2]),
        "implementation_version": python_version,
    }
    dists = dict(wheel_metadata(w) for w in wheel_dir.glob("*.whl"))
    missing: dict[str, str] = {}
    seen: set[tuple[str, str]] = set()
    stack = [(Requirement(r), "") for r in roots]
    while stack:
        req, extra = stack.pop()
        if req.marker and not req.marker.evaluate({**env, "extra": extra}):
            continue
        name = canonicalize_name(req.name)
        if name not in dists:
            missing[name] = f"{req.name}{req.specifier}"
            continue
        for wanted in ("", *req.extras):
            if (name, wanted) not in seen:
                seen.add((name, wanted))
                stack += [(r, wanted) for r in dists[name]]
    return sorted(missing.values())


def build_wheelhouse(
    wheel_dir: Path, runtime: list[str], build: list[str], python_version: str
) -> None:
    """Wheels of the runtime and build requirements for the container's Python, from PyPI."""
    wanted = runtime + build
    for _ in range(5):
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "wheel",
                "--quiet",
                "--wheel-dir",
                str(wheel_dir),
                *wanted,
            ],
            check=True,
            capture_output=True,
        )
        wanted = unmet(wheel_dir, runtime + build, python_version)
        if not wanted:
            break
    else:
        pytest.fail(f"wheelhouse still lacks {wanted}")
    (wheel_dir / "runtime.txt").write_text("\n".join(runtime) + "\n")
    (wheel_dir / "build.txt").write_text("\n".join(build) + "\n")


def test_dockerfile_test_override_replaces_only_the_conda_solve() -> None:
    """Static, no engine needed: the replaced region is the conda stage's body, nothing else."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    match = CONDA_STAGE.search(dockerfile)
    assert match, "Dockerfile has no 'FROM ${MICROMAMBA_IMAGE} AS conda' stage"
    instructions = [line.split()[0] for line in match["body"].splitlines() if line[:1].isalpha()]
    assert instructions == ["USER", "COPY", "RUN"], "update REPLACEMENT and the docstring"
    assert match["body"].count("micromamba create") == 2
    # The build-tools env must hold exactly what pyproject.toml's build system requires.
    tokens = {token.strip('"\\') for token in match["body"].split()}
    build_requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]
    assert set(build_requires["requires"]) <= tokens
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".env", ".env.*"} <= set(ignored), (
        "secrets and history must stay out of the build context"
    )


@pytest.fixture(scope="session")
def docker(request: pytest.FixtureRequest) -> Iterator[Docker]:
    required = os.environ.get("CI_DOCKER") == "1"
    give_up = pytest.fail if required else pytest.skip
    client = os.environ.get("DOCKER_BIN") or shutil.which("docker")
    if not client or not os.environ.get("DOCKER_HOST"):
        give_up("no Docker engine: DOCKER_HOST is not set (run via .ci/docker.sh run ...)")
    info = subprocess.run([client, "info"], capture_output=True, text=True, timeout=30)
    if info.returncode != 0:
        give_up(
            f"Docker engine at {os.environ['DOCKER_HOST']} not reachable: "
            f"{info.stderr.strip()[:300]}"
        )
    base = os.environ.get("BASE_IMAGE", "local/bookworm-python:latest")
    if subprocess.run([client, "image", "inspect", base], capture_output=True).returncode != 0:
        give_up(f"base image {base} missing (.ci/docker.sh makes it with debootstrap)")
    report: list[str] = []
    yield Docker(client, base, report)
    # Timings for the issue and the logs (not asserted): print them past pytest's capture.
    capture = request.config.pluginmanager.get_plugin("capturemanager")
    if capture is not None and report:
        with capture.global_and_fixture_disabled():
            print("\n" + "\n".join(f"[container] {line}" for line in report))


@pytest.fixture(scope="session")
def image(docker: Docker, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The project's image, built from the local base with the conda solve replaced."""
    distribution, _ = project_names()
    work = tmp_path_factory.mktemp("image")
    t0 = time.perf_counter()
    python_version = docker(
        "run",
        "--rm",
        docker.base_image,
        "python3",
        "-c",
        "import platform; print(platform.python_version())",
    ).stdout.strip()
    build_requires = tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"][
        "requires"
    ]
    wheels = work / "wheels"
    runtime = requirements("options", "install_requires")
    runtime += requirements("options.extras_require", "online")
    runtime += requirements("options.extras_require", "dask")
    build_wheelhouse(wheels, runtime, build_requires, python_version)
    (work / "wheelhouse.Dockerfile").write_text(f"FROM {docker.base_image}\nCOPY . /wheels\n")
    wheelhouse = f"local/{distribution}-wheelhouse:test"
    docker(
        "build",
        "--quiet",
        "--network",
        "none",
        "-f",
        str(work / "wheelhouse.Dockerfile"),
        "-t",
        wheelhouse,
        str(wheels),
    )
    t1 = time.perf_counter()

    dockerfile = (ROOT / "Dockerfile").read_text()
    match = CONDA_STAGE.search(dockerfile)
    assert match is not None
    (work / "Dockerfile").write_text(
        dockerfile[: match.start("body")] + REPLACEMENT + dockerfile[match.end("body") :]
    )
    tag = f"local/{distribution}:test"
    # fmt: off
    docker(
        "build", "--network", "none", "-f", str(work / "Dockerfile"),
        "--build-arg", f"MICROMAMBA_IMAGE={wheelhouse}",
        "--build-arg", f"RUNTIME_IMAGE={docker.base_image}",
        "--build-arg", f"VERSION={VERSION}", "-t", tag, str(ROOT),
    )
    # fmt: on
    t2 = time.perf_counter()
    docker.report.append(f"wheelhouse {t1 - t0:.1f} s, image build {t2 - t1:.1f} s")
    return tag


@pytest.fixture
def results_dir(tmp_path: Path) -> Path:
    """A host directory the image's non-root user (uid 1000) can write, to mount."""
    path = tmp_path / "results"
    path.mkdir()
    if os.getuid() == 0:
        os.chown(path, 1000, 1000)
    else:
        path.chmod(0o777)
    return path


def run(docker: Docker, image: str, *args: str, label: str) -> subprocess.CompletedProcess[str]:
    t0 = time.perf_counter()
    proc = docker("run", "--rm", *args, timeout=300)
    docker.report.append(f"{label}: {time.perf_counter() - t0:.1f} s")
    return proc


@pytest.mark.container
def test_image_metadata(docker: Docker, image: str) -> None:
    config = json.loads(docker("image", "inspect", image).stdout)[0]["Config"]
    assert config["User"] == "1000:1000"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.version"] == VERSION
    assert labels["org.opencontainers.image.source"].startswith("https://github.com/")
    assert config["Entrypoint"] == ["/usr/local/bin/_entrypoint.sh"]
    env = dict(item.split("=", 1) for item in config["Env"])
    assert env["DO_NOT_TRACK"] == "1" and env["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert not [key for key in env if re.search("PASSWORD|TOKEN|SECRET", key)]


@pytest.mark.container
def test_package_installed_without_build_leftovers(docker: Docker, image: str) -> None:
    _, package = project_names()
    script = (
        f"import {package}, importlib.metadata as m, os, shutil; "
        f"print({package}.__version__, shutil.which('python'), os.getuid(), "
        "os.path.exists('/src'), os.path.exists('/opt/build'), os.path.exists('/tmp/dist'))"
    )
    out = run(
        docker, image, image, "python", "-c", script, label="python -c (import)"
    ).stdout.split()
    assert out == [VERSION, "/opt/env/bin/python", "1000", "False", "False", "False"]


@pytest.mark.container
def test_default_command_writes_result_to_mounted_directory(
    docker: Docker, image: str, results_dir: Path
) -> None:
    """The image's CMD (the default flow run), as uid 1000, no network but loopback."""
    proc = run(
        docker,
        image,
        "--network",
        "none",
        "-v",
        f"{results_dir}:/results",
        image,
        label="default command (flow run)",
    )
    files = list(results_dir.rglob("*.json"))
    assert len(files) == 1, proc.stdout + proc.stderr
    assert f"/results/{files[0].relative_to(results_dir)}" in proc.stdout
    assert files[0].stat().st_uid == 1000
    document = json.loads(files[0].read_text())
    assert set(document) >= {"flow_id", "inputs", "outputs", "unique_hash"}
    assert set(document["outputs"]) == set(model_variables()[1])


@pytest.mark.container
def test_flow_run_with_options_as_non_root(docker: Docker, image: str, results_dir: Path) -> None:
    _, package = project_names()
    inputs, _ = model_variables()
    settings = [arg for name, value in inputs.items() for arg in ("--set", f"{name}={value!r}")]
    # fmt: off
    proc = run(
        docker, image, "--network", "none", "-v", f"{results_dir}:/out", image,
        "python", "-m", package, "run", *settings, "--target", "filesystem", "--output-dir", "/out",
        label="flow run --set --output-dir",
    )
    # fmt: on
    (path,) = results_dir.rglob("*.json")
    assert str(path.relative_to(results_dir)) in proc.stdout
    assert path.stat().st_uid == 1000
    assert json.loads(path.read_text())["inputs"] == pytest.approx(inputs)


@pytest.mark.container
def test_flow_run_to_mongodb_on_the_host(
    docker: Docker, image: str, mongo_server: tuple[str, int]
) -> None:
    """The MongoDB target: SecantusDB on the host's 127.0.0.1, reached with --network host."""
    import pymongo

    _, package = project_names()
    host, port = mongo_server
    project = "container_test"
    name, value = next(iter(model_variables()[0].items()))
    # fmt: off
    proc = run(
        docker, image, "--network", "host",
        "-e", f"LUME_RESULTS_DB__HOST={host}", "-e", f"LUME_RESULTS_DB__PORT={port}",
        "-e", f"MY_PACKAGE_PROJECT_NAME={project}",
        image, "python", "-m", package, "run", "--target", "mongodb", "--set", f"{name}={value!r}",
        label="flow run --target mongodb",
    )
    # fmt: on
    client = pymongo.MongoClient(host, port, serverSelectionTimeoutMS=3000)
    try:
        documents = list(client["results"][project].find())
    finally:
        client.close()
    assert len(documents) == 1, proc.stdout
    assert str(documents[0]["_id"]) in proc.stdout
    assert documents[0]["inputs"][name] == pytest.approx(value)
    assert set(documents[0]["outputs"]) == set(model_variables()[1])


@pytest.mark.container
def test_image_serves_the_model_online(docker: Docker, image: str) -> None:
    """``docker run IMAGE python -m PACKAGE serve`` starts, serves a PV, stops on `docker stop`.

    Host network, bound to 127.0.0.1 on free ports; a p4p client on the host reads one output.
    """
    from p4p.client.thread import Context

    _, package = project_names()
    output = model_variables()[1][0]
    env = pva_env()
    name = f"serve-test-{os.getpid()}"
    t0 = time.perf_counter()
    # fmt: off
    docker(
        "run", "-d", "--name", name, "--network", "host",
        *[arg for key, value in env.items() for arg in ("-e", f"{key}={value}")],
        image, "python", "-m", package, "serve", "--protocol", "pva", "--prefix", "CT:",
    )
    # fmt: on
    try:
        deadline = time.monotonic() + 120
        logs = ""
        while "serving over" not in logs and time.monotonic() < deadline:
            time.sleep(0.5)
            logs = docker("logs", name).stdout
        assert "serving over PVAccess" in logs, docker("logs", name).stderr
        docker.report.append(f"serve in the image, ready: {time.perf_counter() - t0:.1f} s")
        ctx = Context("pva", conf={k: v for k, v in env.items() if "PVAS" not in k}, useenv=False)
        try:
            value = ctx.get(f"CT:{output}", timeout=10)
        finally:
            ctx.close()
        assert f"CT:{output}  read-only" in logs
        assert math.isfinite(float(value))
        docker("stop", "--time", "20", name)
        state = json.loads(docker("inspect", name).stdout)[0]["State"]
        assert state["ExitCode"] == 0, docker("logs", name).stderr
        assert docker("logs", name).stdout.strip().endswith("stopped")
    finally:
        docker("rm", "--force", name, check=False)


# README's Dask deployment in one container, on loopback: the cluster's scheduler and workers
# started from the image with Dask's own CLI, the flow run sending its scan's chunks to them,
# then the scheduler asked which functions it ran. The same scan serially, for the outputs.
DASK_SCRIPT = """\
set -e
A=tcp://127.0.0.1:8786
dask scheduler --host 127.0.0.1 --port 8786 --no-dashboard >/tmp/scheduler.log 2>&1 &
dask worker $A --nworkers 2 --nthreads 1 --host 127.0.0.1 --no-dashboard >/tmp/workers.log 2>&1 &
python -c "import distributed, sys; distributed.Client(sys.argv[1]).wait_for_workers(2, 120)" $A
python -m {package} run --scan {scan} --dask $A --chunk-size 3 --output-dir /out/dask
python -m {package} run --scan {scan} --workers 1 --output-dir /out/serial
python -c "import distributed, sys; print('ran on the cluster:', *sorted(distributed.Client(\
sys.argv[1]).run_on_scheduler(lambda dask_scheduler: list(dask_scheduler.task_prefixes))))" $A
"""


@pytest.mark.container
def test_flow_run_on_a_dask_cluster_of_the_image(
    docker: Docker, image: str, results_dir: Path
) -> None:
    _, package = project_names()
    data = yaml.safe_load((ROOT / package / "files" / "variables.yml").read_text())
    name, spec = next((n, s) for n, s in data["input_variables"].items() if s.get("value_range"))
    low, high = spec["value_range"]
    script = DASK_SCRIPT.format(package=package, scan=f"{name}={low}:{high}:12")
    # fmt: off
    proc = run(
        docker, image, "--network", "none", "-v", f"{results_dir}:/out", image, "sh", "-c", script,
        label="Dask cluster from the image + flow run --dask",
    )
    # fmt: on
    assert "ran on the cluster: evaluate_chunk" in proc.stdout, proc.stdout + proc.stderr
    (dask_file,) = (results_dir / "dask").rglob("*.json")
    (serial_file,) = (results_dir / "serial").rglob("*.json")
    on_dask, serial = (json.loads(path.read_text()) for path in (dask_file, serial_file))
    assert on_dask["inputs"] == serial["inputs"]
    assert on_dask["outputs"] == serial["outputs"]  # the same floats: same model, same points
