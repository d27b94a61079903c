"""Runtime image size, side by side with its base image and its Python environment.

    .ci/docker.sh run python bench/bench_image_size.py [--image NAME] [--base NAME]

Needs a Docker engine (DOCKER_HOST; .ci/docker.sh provides one). Measures the image that
tests/test_container.py builds (``local/<distribution>:test``), and builds it first through that
test when it is missing. Note: here the environment is the test's venv (pip wheels on Debian's
python3) because conda-forge is unreachable; the release image's conda environment also carries
its own Python and libraries, so it is larger.
"""

from __future__ import annotations

import argparse
import configparser
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MB = 1e6


CLIENT = os.environ.get("DOCKER_BIN") or shutil.which("docker") or "docker"


def docker(*args: str) -> str:
    return subprocess.run([CLIENT, *args], check=True, capture_output=True, text=True).stdout


def image_size(name: str) -> int:
    return int(json.loads(docker("image", "inspect", name))[0]["Size"])


def main() -> int:
    cfg = configparser.ConfigParser(interpolation=None)
    cfg.read(ROOT / "setup.cfg")
    distribution = cfg.get("metadata", "name")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--image", default=f"local/{distribution}:test")
    parser.add_argument(
        "--base", default=os.environ.get("BASE_IMAGE", "local/bookworm-python:latest")
    )
    args = parser.parse_args()

    if not os.environ.get("DOCKER_HOST"):
        print("no Docker engine: run as .ci/docker.sh run python bench/bench_image_size.py")
        return 2
    if subprocess.run([CLIENT, "image", "inspect", args.image], capture_output=True).returncode:
        print(f"{args.image} missing: building it through tests/test_container.py ...")
        subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-m", "container", "-k", "metadata",
             str(ROOT / "tests" / "test_container.py")],
            check=True,
        )  # fmt: skip

    image, base = image_size(args.image), image_size(args.base)
    history = docker(
        "history",
        "--no-trunc",
        "--human=false",
        "--format",
        "{{.Size}}\t{{.CreatedBy}}",
        args.image,
    )
    layers = [
        (int(size), command)
        for size, command in (line.split("\t", 1) for line in history.splitlines())
    ]
    env_layer = sum(size for size, command in layers if "/opt/env /opt/env" in command)
    package_layer = sum(size for size, command in layers if "pip install --no-deps" in command)
    env_files = int(
        docker("run", "--rm", "--entrypoint", "du", args.image, "-sb", "/opt/env").split()[0]
    )

    rows = [
        ("runtime image", args.image, image),
        ("base image", args.base, base),
        ("added by the Dockerfile", "image - base", image - base),
        ("environment layer", "COPY /opt/env", env_layer),
        ("environment files", "du -sb /opt/env", env_files),
        ("package layer", "pip install --no-deps", package_layer),
    ]
    width = max(len(row[1]) for row in rows)
    print(f"{'':<25}{'':<{width + 2}}{'MB':>9}{'of image':>10}")
    for what, name, size in rows:
        print(f"{what:<25}{name:<{width + 2}}{size / MB:>9.2f}{size / image:>10.1%}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
