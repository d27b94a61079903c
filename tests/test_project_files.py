"""The files a project carries besides its code: license, hooks, updates, build and test config.

Each is checked against what it must agree with (setup.cfg, the linters the suite runs), and
the YAML ones with a real schema validator, so a generated project starts with them right.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
SETUP = configparser.ConfigParser()
SETUP.read(ROOT / "setup.cfg", encoding="utf-8")
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
# SPDX identifier -> the title line of its license text.
LICENSE_TITLES = {"BSD-3-Clause": "BSD 3-Clause License", "MIT": "MIT License"}


def _tool(name: str) -> str:
    return shutil.which(name, path=str(BIN)) or shutil.which(name) or name


def test_license_file_matches_setup_cfg() -> None:
    text = (ROOT / "LICENSE").read_text(encoding="utf-8")
    spdx = SETUP.get("metadata", "license")
    assert text.splitlines()[0] == LICENSE_TITLES[spdx]
    assert f"Copyright (c) 2026, {SETUP.get('metadata', 'author')}" in text


def test_pre_commit_runs_ruff_and_the_workflow_linters_of_the_suite() -> None:
    config = yaml.safe_load((ROOT / ".pre-commit-config.yaml").read_text(encoding="utf-8"))
    hooks = {h["id"]: h for repo in config["repos"] for h in repo["hooks"]}
    assert set(hooks) >= {
        "ruff",
        "ruff-format",
        "actionlint",
        "zizmor",
        "check-github-workflows",
        "yamllint",
    }
    for hook in hooks.values():
        # Local hooks run the [dev] extra's tools: each must be installed here.
        exe = hook["entry"].split()[0]
        assert shutil.which(exe, path=str(BIN)) or shutil.which(exe), (hook["id"], exe)


def test_dependabot_updates_actions_pip_and_docker() -> None:
    path = ROOT / ".github" / "dependabot.yml"
    config = yaml.safe_load(path.read_text(encoding="utf-8"))
    assert {u["package-ecosystem"] for u in config["updates"]} == {
        "github-actions",
        "pip",
        "docker",
    }
    proc = subprocess.run(
        [_tool("check-jsonschema"), "--builtin-schema", "vendor.dependabot", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_dependency_group_dev_mirrors_the_dev_extra() -> None:
    extra = [
        line.strip()
        for line in SETUP.get("options.extras_require", "dev").splitlines()
        if line.strip() and not line.strip().startswith("#")
    ]
    assert PYPROJECT["dependency-groups"]["dev"] == extra


def test_build_and_pytest_config() -> None:
    assert not any(r.startswith("wheel") for r in PYPROJECT["build-system"]["requires"])
    pytest_config = PYPROJECT["tool"]["pytest"]["ini_options"]
    assert pytest_config["minversion"]
    assert pytest_config["xfail_strict"] is True
    assert pytest_config["log_level"]
    assert "--strict-config" in pytest_config["addopts"].split()


def test_dotenv_is_ignored() -> None:
    lines = (ROOT / ".gitignore").read_text(encoding="utf-8").splitlines()
    assert ".env" in lines  # README: the MongoDB password may live there
