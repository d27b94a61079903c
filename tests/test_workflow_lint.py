"""Lint every workflow, Dockerfile and shell script with the real linters, and check workflow rules.

Linters (all from PyPI, all offline, installed by the dev extra): actionlint, zizmor --offline,
check-jsonschema (github-workflows schema), yamllint (repo .yamllint), hadolint, shellcheck.
Files are discovered, never listed, so workflows, Dockerfiles and scripts added later are covered.
Static rules: workflows never name the package (scripts/rename.py cannot edit them, so they read
names at run time), every action is pinned by commit SHA, permissions/concurrency/timeouts are set.
"""

from __future__ import annotations

import configparser
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW_DIR = ROOT / ".github" / "workflows"
WORKFLOWS = sorted([*WORKFLOW_DIR.glob("*.yml"), *WORKFLOW_DIR.glob("*.yaml")])
# The venv's bin folder first: pytest may run without the venv activated, and actionlint looks
# for shellcheck on PATH.
LINTER_PATH = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
SHA_PINNED = re.compile(r"^[A-Za-z0-9_.-]+/[A-Za-z0-9_./-]+@[0-9a-f]{40}$")


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _candidate_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files; every file outside VCS folders without git."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT,
            capture_output=True,
            check=True,
            timeout=60,
        ).stdout
        names = [n for n in out.decode().split("\0") if n]
        return sorted({ROOT / n for n in names if (ROOT / n).is_file()})
    except (OSError, subprocess.CalledProcessError):
        skip = {".git", ".venv", "venv", "build", "dist", "node_modules", "__pycache__"}
        return sorted(
            p for p in ROOT.rglob("*") if p.is_file() and not skip & set(p.relative_to(ROOT).parts)
        )


def _is_shell_script(path: Path) -> bool:
    if path.suffix in {".sh", ".bash"} or _rel(path) == ".ci/run":
        return True
    try:
        with path.open("rb") as fh:
            first = fh.readline(200)
    except OSError:
        return False
    return bool(re.match(rb"#!\s*(/usr)?/bin/(env\s+)?(ba|da)?sh\b", first))


CANDIDATES = _candidate_files()
SHELL_SCRIPTS = [p for p in CANDIDATES if _is_shell_script(p)]
DOCKERFILES = [p for p in CANDIDATES if p.name == "Dockerfile" or p.name.startswith("Dockerfile.")]


def _linter(name: str) -> str:
    exe = shutil.which(name, path=LINTER_PATH)
    if exe is None:
        pytest.skip(f"{name} is not installed (pip install -e '.[dev]' installs it)")
    return exe


def _run(cmd: list[str], stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PATH": LINTER_PATH, "NO_COLOR": "1"}
    # No token reaches the linters: they must work offline and never call GitHub.
    for var in ("GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"):
        env.pop(var, None)
    return subprocess.run(
        cmd, cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, timeout=300
    )


def lint(linter: str, path: Path) -> subprocess.CompletedProcess[str]:
    """Run one linter on one file; a non-zero exit status means it reported something."""
    if linter == "actionlint":
        shellcheck = shutil.which("shellcheck", path=LINTER_PATH) or ""
        cmd = [_linter("actionlint"), "-no-color", f"-shellcheck={shellcheck}", str(path)]
    elif linter == "actionlint-tags":
        # actionlint knows popular actions by tag, not by SHA: lint a copy with each pin turned
        # back into its major tag (from the version comment) so inputs and deprecated runtimes
        # (node20) are checked too. Shell is checked by the plain run above.
        text = re.sub(
            r"(uses:\s*[\w.-]+/[\w./-]+)@[0-9a-f]{40}(\s*#\s*(v\d+)\S*)",
            r"\1@\3\2",
            path.read_text(),
        )
        cmd = [_linter("actionlint"), "-no-color", "-shellcheck=", f"-stdin-filename={path}", "-"]
        return _run(cmd, stdin=text)
    elif linter == "zizmor":
        cmd = [_linter("zizmor"), "--offline", "--strict-collection", "--no-progress", str(path)]
    elif linter == "check-jsonschema":
        schema = "vendor.github-workflows"
        cmd = [_linter("check-jsonschema"), "--builtin-schema", schema, str(path)]
    elif linter == "yamllint":
        config = ROOT / ".yamllint"
        cmd = [_linter("yamllint"), "--strict", "-c", str(config), "-f", "parsable", str(path)]
    elif linter == "hadolint":
        cmd = [_linter("hadolint"), "--no-color", str(path)]
    elif linter == "shellcheck":
        cmd = [_linter("shellcheck"), "--external-sources", "--shell=bash", str(path)]
    else:
        raise ValueError(f"unknown linter {linter!r}")
    return _run(cmd)


def _assert_clean(linter: str, path: Path) -> None:
    result = lint(linter, path)
    assert result.returncode == 0, (
        f"{linter} reported problems in {path} (exit {result.returncode}):\n"
        f"{result.stdout}\n{result.stderr}"
    )


WORKFLOW_LINTERS = ["actionlint", "actionlint-tags", "zizmor", "check-jsonschema", "yamllint"]


@pytest.mark.parametrize("linter", WORKFLOW_LINTERS)
@pytest.mark.parametrize("workflow", WORKFLOWS, ids=_rel)
def test_workflow_passes_linter(workflow: Path, linter: str) -> None:
    _assert_clean(linter, workflow)


@pytest.mark.parametrize("dockerfile", DOCKERFILES, ids=_rel)
def test_dockerfile_passes_hadolint(dockerfile: Path) -> None:
    _assert_clean("hadolint", dockerfile)


@pytest.mark.parametrize("script", SHELL_SCRIPTS, ids=_rel)
def test_shell_script_passes_shellcheck(script: Path) -> None:
    _assert_clean("shellcheck", script)


def test_there_is_something_to_lint() -> None:
    # Guards the discovery itself: an empty glob would silently lint nothing.
    assert WORKFLOWS, f"no workflows found in {WORKFLOW_DIR}"
    assert (ROOT / ".yamllint").is_file()


# Known-bad inputs: each linter must report them, proving a finding fails the tests above.
BAD_WORKFLOW = """\
on: push
permissions: write-all
jobs:
  build:
    runs-on: ubuntu-latest
    steps:
      - uses: actions/checkout@v4
      - run: echo "${{ github.event.head_commit.message }}"
      - run: echo ${{ matrix.nope }}
"""
BAD_PIN = (
    "on: push\npermissions: {}\njobs:\n  a:\n    runs-on: ubuntu-latest\n    steps:\n"
    "      - uses: docker/login-action@184bdaa0721073962dff0199f1fb9940f07167d1 # v3.5.0\n"
)
BAD_FILES = {
    "actionlint": ("workflow.yml", BAD_WORKFLOW),
    # A real v3.5.0 pin: actionlint knows its node20 runtime is deprecated.
    "actionlint-tags": ("workflow.yml", BAD_PIN),
    "zizmor": ("workflow.yml", BAD_WORKFLOW),
    "check-jsonschema": ("workflow.yml", "on: push\njobs:\n  build:\n    steps: 3\n"),
    "yamllint": ("workflow.yml", "on: push\njobs:\n  build:   {runs-on: x}\n  build: {}\n"),
    "hadolint": ("Dockerfile", "FROM debian\nRUN apt-get install -y curl\n"),
    "shellcheck": ("script.sh", "#!/bin/bash\nrm -rf $1/*\n"),
}


@pytest.mark.parametrize("linter", sorted(BAD_FILES))
def test_linter_reports_a_known_bad_file(linter: str, tmp_path: Path) -> None:
    name, text = BAD_FILES[linter]
    path = tmp_path / name
    path.write_text(text)
    result = lint(linter, path)
    assert result.returncode != 0, f"{linter} accepted a known-bad file:\n{result.stdout}"


# ---- static rules ----------------------------------------------------------------------------

# Names that workflow text legitimately contains: a project so named is not checked for them.
GENERIC_WORDS = {
    "build", "builds", "image", "images", "package", "packages", "python", "release", "setup",
    "test", "tests", "docker", "main", "dist", "version", "template", "workflow", "actions",
}  # fmt: skip


TEMPLATE_GUARD = re.compile(
    r"github\.(?:repository|event\.repository\.(?:name|full_name))\s*[!=]=\s*'[^']*'"
)


def _project_name_forms() -> set[str]:
    """Every spelling of the project's names, from setup.cfg (whatever the rename made them)."""
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    names = {cfg["metadata"]["name"]}
    include = cfg.get("options.packages.find", "include", fallback="")
    names |= {n for n in re.split(r"[\s,]+", include) if n and "*" not in n}
    repo = cfg.get("metadata", "url", fallback="").rstrip("/").rsplit("/", 1)[-1]
    if repo:
        names.add(repo)
    forms: set[str] = set()
    for name in names:
        words = [w for w in re.split(r"[-_.\s]+", name.lower()) if w]
        forms |= {sep.join(words) for sep in ("-", "_", " ", ".", "")}
    return {f for f in forms if len(f) >= 3 and f not in GENERIC_WORDS}


def _load(workflow: Path) -> dict:
    data = yaml.safe_load(workflow.read_text())
    assert isinstance(data, dict), f"{workflow} is not a YAML mapping"
    return data


def _steps(data: dict) -> Iterator[tuple[str, dict]]:
    for job_id, job in (data.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            yield job_id, step


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=_rel)
def test_workflow_is_name_agnostic(workflow: Path) -> None:
    # scripts/rename.py never edits workflows (GITHUB_TOKEN cannot push them): a workflow that
    # mentions the package by name would break in every project made from the template.
    # The one allowed mention: a guard comparing the repository with the template's own slug
    # (the setup workflow must never run on the template), which stays right after any rename.
    text = TEMPLATE_GUARD.sub("", workflow.read_text()).lower()
    found = sorted(
        form
        for form in _project_name_forms()
        if re.search(rf"(?<![a-z0-9]){re.escape(form)}", text)
    )
    assert not found, (
        f"{_rel(workflow)} mentions the project name as {found}; read names at run time "
        "(setup.cfg, github.repository, repository variables)"
    )


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=_rel)
def test_workflow_uses_are_pinned_by_sha(workflow: Path) -> None:
    lines = workflow.read_text().splitlines()
    problems = []
    for number, line in enumerate(lines, 1):
        match = re.match(r"^\s*(?:-\s+)?uses:\s*(\S+)\s*(#.*)?$", line)
        if not match:
            continue
        ref, comment = match.group(1).strip("'\""), match.group(2) or ""
        if ref.startswith("./"):
            continue  # a local action or reusable workflow is versioned with the repository
        if ref.startswith("docker://"):
            ok = "@sha256:" in ref
        else:
            ok = bool(SHA_PINNED.match(ref)) and bool(re.search(r"#\s*v\d", comment))
        if not ok:
            problems.append(f"line {number}: {line.strip()}")
    assert not problems, (
        "pin every action by its full commit SHA with a '# vX.Y.Z' comment:\n" + "\n".join(problems)
    )
    # The line scan must have seen every `uses:` the YAML holds (no flow-style escapes).
    data = _load(workflow)
    uses = [s["uses"] for _, s in _steps(data) if "uses" in s]
    uses += [j["uses"] for j in (data.get("jobs") or {}).values() if "uses" in j]
    seen = sum(bool(re.match(r"^\s*(?:-\s+)?uses:", line)) for line in lines)
    assert seen == len(uses), f"{_rel(workflow)}: write each `uses:` on its own line"


@pytest.mark.parametrize("workflow", WORKFLOWS, ids=_rel)
def test_workflow_structure(workflow: Path) -> None:
    text = workflow.read_text()
    data = _load(workflow)
    assert text.startswith("#"), f"{_rel(workflow)}: start with a comment saying what it is for"
    assert "permissions" in data, f"{_rel(workflow)}: set top-level permissions ({{}} or least)"
    assert "concurrency" in data, f"{_rel(workflow)}: set a concurrency group"
    for job_id, job in (data.get("jobs") or {}).items():
        if "uses" not in job:  # reusable-workflow calls cannot set a timeout
            assert "timeout-minutes" in job, f"{_rel(workflow)}: job {job_id} needs timeout-minutes"
    for job_id, step in _steps(data):
        label = f"{_rel(workflow)}: job {job_id} step {step.get('name') or step}"
        assert step.get("name"), f"{label}: every step needs a name"
        # Untrusted or input data interpolated into a script is an injection sink: use env:.
        assert "${{" not in str(step.get("run", "")), f"{label}: pass ${{{{ }}}} values via env:"
        if str(step.get("uses", "")).startswith("actions/checkout@"):
            assert "persist-credentials" in (step.get("with") or {}), (
                f"{label}: set persist-credentials (false unless the job pushes)"
            )
