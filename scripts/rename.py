#!/usr/bin/env python3
"""Turn this template into your own project: rename every name, optionally strip the example.

Run it once after "Use this template" (the setup workflow does it on the first push):

    python scripts/rename.py --project-name "Beam Size" --dry-run   # show the plan
    python scripts/rename.py --project-name "Beam Size"             # apply it

The template's names are read from the marker file ``.github/template.toml``; while it
exists, the repository is still the template. The script validates every new name
before touching anything, plans every edit, then applies the plan with rollback: any
failure restores the tree exactly. Success deletes the marker, so a second run has
nothing to do. Files under ``.github/workflows`` are never edited (GITHUB_TOKEN cannot
push them): workflows read the names at run time.

Renaming needs only the standard library. Setting repository variables and secrets
needs PyGithub (and a token in TEMPLATE_SETUP_TOKEN or GH_TOKEN); ``--ci`` needs
actions-toolkit. Both are pinned in scripts/requirements.txt.
"""

from __future__ import annotations

import argparse
import ast
import builtins
import fnmatch
import getpass
import importlib.metadata
import importlib.util
import json
import keyword
import os
import re
import shlex
import shutil
import stat
import subprocess
import sys
import tempfile
import tomllib
import unicodedata
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType

MARKER = ".github/template.toml"
BACKUP_PREFIX = ".rename-backup-"
BACKUP_MANIFEST = "rename-manifest.json"
WORKFLOWS = ".github/workflows/"
EXIT_INVALID = 2
EXIT_FAILED = 1
EXIT_PARTIAL = 3  # renamed locally, but the GitHub step failed (its commands are printed)

# Next to setup.cfg: each runtime and dev dependency (transitively) with its import names,
# so names are checked where the dependencies are not installed (the setup workflow's
# Python). Where they are installed, their metadata adds to it (dependency_names).
DEPENDENCY_NAMES = "dependency-names.txt"


def _requirement_names(lines: Iterable[str]) -> list[str]:
    """Distribution names of requirement lines (comments, extras markers and URLs ignored)."""
    out = []
    for line in lines:
        m = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", line)
        if m and not line.lstrip().startswith("#") and "extra ==" not in line:
            out.append(normalize_distribution(m.group(1)))
    return out


def installed_import_names(dist: importlib.metadata.Distribution) -> set[str]:
    """Top-level import names an installed distribution provides (top_level.txt or RECORD)."""
    names = set((dist.read_text("top_level.txt") or "").split())
    for f in dist.files or []:
        first = f.parts[0]
        if first in ("..", "__pycache__") or first.endswith((".dist-info", ".egg-info", ".data")):
            continue
        if len(f.parts) > 1:
            names.add(first)
        elif first.endswith((".py", ".so", ".pyd")):
            names.add(first.split(".")[0])
    return {n for n in names if n.isidentifier()}


def dependency_names(root: Path) -> tuple[frozenset[str], frozenset[str]]:
    """(distribution names, import names) listed in DEPENDENCY_NAMES, next to setup.cfg.

    The list, not the installed metadata, is what the rename reads: it holds where the
    dependencies are not installed, and tests/test_rename.py checks that it covers what
    installed_dependency_names finds (so it cannot fall behind setup.cfg).
    """
    dists: set[str] = set()
    imports: set[str] = set()
    listing = root / DEPENDENCY_NAMES
    if listing.is_file():
        for line in listing.read_text(encoding="utf-8").splitlines():
            line = line.split("#")[0]
            if ":" in line:
                dist, names = line.split(":", 1)
                dists.add(normalize_distribution(dist.strip()))
                imports.update(names.split())
    return frozenset(dists), frozenset(imports)


def installed_dependency_names(root: Path) -> dict[str, set[str]]:
    """Each runtime and dev dependency of setup.cfg, transitively, with its import names.

    From the installed distributions' metadata; a dependency not installed here maps to
    an empty set.
    """
    import configparser

    cfg = configparser.ConfigParser()
    cfg.read(root / "setup.cfg", encoding="utf-8")
    roots = _requirement_names(cfg.get("options", "install_requires", fallback="").splitlines())
    if cfg.has_section("options.extras_require"):
        for value in cfg["options.extras_require"].values():
            roots += _requirement_names(value.splitlines())
    todo, found = list(roots), {}
    while todo:
        name = todo.pop()
        if name in found:
            continue
        found[name] = set()
        for candidate in (name, name.replace("-", "_")):
            try:
                dist = importlib.metadata.distribution(candidate)
            except importlib.metadata.PackageNotFoundError:
                continue
            found[name] = installed_import_names(dist)
            todo += _requirement_names(dist.requires or [])
            break
    return found


REGISTRIES = {"ghcr": "ghcr.io", "dockerhub": "docker.io", "scr": "scr.svc.stanford.edu"}
# What the image workflows read (build_image.yml, build_image_scr.yml): the variable naming
# the image path on that registry, and the login secrets. ghcr pushes with GITHUB_TOKEN and
# reads only the IMAGE_NAME variable ("owner/name").
REGISTRY_IMAGE_VARIABLES = {"dockerhub": "DOCKERHUB_IMAGE", "scr": "SCR_IMAGE"}
REGISTRY_SECRETS = {
    "dockerhub": ("DOCKERHUB_USERNAME", "DOCKERHUB_TOKEN"),
    "scr": ("SCR_USERNAME", "SCR_TOKEN"),
}
# PyGithub options: about 10 s per request and no retries, so a silent or unreachable API
# costs seconds, not minutes (PyGithub's default retries took 331 s). Tests also turn the
# write throttling off.
GITHUB_CLIENT_OPTIONS: dict[str, object] = {"timeout": 10, "retry": None}


class NameError_(ValueError):
    """A proposed name breaks a rule; the message names the rule and suggests a name."""


class NothingToDo(Exception):
    """The marker is gone: the repository has already been renamed."""


# --------------------------------------------------------------------------- names


# Latin letters NFKD does not decompose into ASCII.
LATIN_LETTERS = str.maketrans(
    {
        "ß": "ss",
        "æ": "ae",
        "Æ": "AE",
        "œ": "oe",
        "Œ": "OE",
        "ø": "o",
        "Ø": "O",
        "ł": "l",
        "Ł": "L",
        "đ": "d",
        "Đ": "D",
        "þ": "th",
        "Þ": "Th",
        "ð": "d",
        "Ð": "D",
    }
)


def ascii_fold(text: str) -> str:
    """Latin letters to ASCII for the derived names: "Émittance" -> "Emittance"."""
    decomposed = unicodedata.normalize("NFKD", text.translate(LATIN_LETTERS))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def spell_out(text: str) -> str:
    """Letters without an ASCII form by their Unicode names: "Ω Scan" -> "Omega Scan"."""
    folded = ascii_fold(text)
    return "".join(
        c if c.isascii() else unicodedata.name(c, "").split(" ")[-1].capitalize() for c in folded
    )


def words(text: str) -> list[str]:
    """Split a project name into words: "Beam Size" / "beam-size" -> ["Beam", "Size"]."""
    return [w for w in re.split(r"[^A-Za-z0-9]+", ascii_fold(text)) if w]


def derive_distribution(project_name: str) -> str:
    """PEP 503-normalized distribution name: "Beam Size" -> "beam-size"."""
    return "-".join(words(project_name)).lower()


def normalize_distribution(name: str) -> str:
    """PEP 503 normalization: runs of ``-_.`` become ``-``, lower case."""
    return re.sub(r"[-_.]+", "-", name).lower()


def derive_package(distribution: str) -> str:
    """Import name from a distribution name: "beam-size" -> "beam_size"."""
    return re.sub(r"[^a-z0-9]+", "_", distribution.lower()).strip("_")


def cap_words(project_name: str) -> str:
    """CapWords form: "Beam Size" -> "BeamSize"; words already capitalized keep their case."""
    return "".join(w[:1].upper() + w[1:] for w in words(project_name))


def derive_model_class(project_name: str) -> str:
    """Model class from the project name: "Beam Size" -> "BeamSizeModel"."""
    base = cap_words(project_name)
    return base if base.endswith("Model") else base + "Model"


class _Suggesting:
    """Set while candidate suggestions are checked, so a check never recurses."""

    active = False


def _reject(rule: str, value: str, candidates: Iterable[str], check: Callable[[str], None]) -> None:
    """Raise NameError_ naming the rule, with the first candidate that passes ``check``."""
    suggestion = None
    if not _Suggesting.active:
        _Suggesting.active = True
        try:
            for candidate in candidates:
                try:
                    check(candidate)
                except NameError_:
                    continue
                suggestion = candidate
                break
        finally:
            _Suggesting.active = False
    hint = f"; try {suggestion!r}" if suggestion else ""
    raise NameError_(f"{rule}: {value!r}{hint}")


def check_project_name(name: str) -> None:
    """Display name: starts with a letter; letters, digits, spaces, ``-_.`` only; 2-64 chars.

    Letters may be non-ASCII when they have an ASCII form for the derived names (É -> E).
    """
    cleaned = re.sub(r"^[^A-Za-z]+", "", " ".join(words(spell_out(name))))[:64].strip()
    cands = [cleaned, f"{cleaned} Model", "My Model"]
    if not 2 <= len(name) <= 64:
        _reject("project name must be 2 to 64 characters", name, cands, check_project_name)
    if not (
        name[0].isalpha() and name[-1].isalnum() and all(c.isalnum() or c in " ._-" for c in name)
    ):
        _reject(
            "project name must start with a letter, end with a letter or digit, and use only "
            "letters, digits, spaces, '-', '_' and '.'",
            name,
            cands,
            check_project_name,
        )
    folded = ascii_fold(name)
    if not folded.isascii():
        odd = "".join(sorted({c for c in folded if not c.isascii()}))
        _reject(
            f"project name has letters without an ASCII form for the package name ({odd})",
            name,
            [spell_out(name)],
            check_project_name,
        )
    if not words(name) or not words(name)[0][0].isalpha():
        _reject("project name must start with a letter", name, cands, check_project_name)


def check_distribution(
    name: str,
    old: str,
    reserved: frozenset[str] = frozenset(),
    imports: frozenset[str] = frozenset(),
) -> None:
    """PEP 508 name, already normalized (PEP 503), 2-64 chars, not a dependency's name."""
    base = derive_distribution(name)
    cands = [normalize_distribution(name), base[:64], f"{base}-model", "my-model"]

    def again(candidate: str) -> None:
        check_distribution(candidate, old, reserved, imports)
        # The package derived from it must pass too.
        check_package(derive_package(candidate), "", imports, frozenset())

    if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", name):
        _reject(
            "distribution name is not a valid PEP 508 name (letters, digits, '-', '_', '.', "
            "starting and ending with a letter or digit)",
            name,
            cands,
            again,
        )
    if name != normalize_distribution(name):
        _reject("distribution name is not normalized (PEP 503)", name, cands, again)
    if not 2 <= len(name) <= 64:
        _reject("distribution name must be 2 to 64 characters", name, cands, again)
    if name == old:
        _reject("distribution name is the template's own: choose yours", name, ["my-model"], again)
    if name in reserved or (name != old and _installed_distribution(name)):
        _reject(
            "distribution name is taken by a dependency or an installed distribution",
            name,
            cands[2:],
            again,
        )


def _installed_distribution(name: str) -> bool:
    try:
        importlib.metadata.distribution(name)
    except importlib.metadata.PackageNotFoundError:
        return False
    return True


def check_package(
    name: str,
    old: str,
    imports: frozenset[str] = frozenset(),
    folders: frozenset[str] = frozenset(),
) -> None:
    """Import name: lower-case identifier, not a keyword, stdlib module or dependency import."""
    base = re.sub(r"^[0-9_]+", "", derive_package(name))[:40]
    cands = [base, f"{base}_model", f"{base}_pkg", "my_model"]

    def again(candidate: str) -> None:
        check_package(candidate, old, imports, folders)

    if not name.isascii() or not name.isidentifier():
        _reject("package is not a Python identifier", name, cands, again)
    if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
        _reject(
            "package must be lower case (PEP 8) and start with a letter: a-z, 0-9 and '_'",
            name,
            cands,
            again,
        )
    if not 2 <= len(name) <= 40:
        _reject("package must be 2 to 40 characters", name, cands, again)
    if name == old:
        _reject("package is the template's own name: choose yours", name, ["my_model"], again)
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        _reject("package is a Python keyword", name, cands[1:], again)
    if name in sys.stdlib_module_names:
        _reject("package shadows a standard-library module", name, cands[1:], again)
    if name in imports:
        _reject("package shadows a dependency's import name", name, cands[1:], again)
    if name in folders:
        _reject("package shadows a top-level folder of the repository", name, cands[1:], again)
    if name == "lume" or name.startswith("lume_"):
        # Its settings prefix (NAME_) would collide with lume-services' LUME_ variables.
        _reject(
            "package's settings prefix would collide with lume-services' LUME_",
            name,
            [f"{name.removeprefix('lume_').removeprefix('lume')}_model".lstrip("_"), "my_model"],
            again,
        )
    if name != old and importlib.util.find_spec(name) is not None:
        _reject("package shadows an installed module", name, cands[1:], again)


def check_model_class(name: str, reserved: frozenset[str] = frozenset()) -> None:
    """Class name: ASCII CapWords, 2-64 chars, not a keyword, builtin or a package name.

    ``reserved``: the names the package's modules import or define (reserved_class_names).
    """
    base = re.sub(r"^[^A-Za-z]+", "", cap_words(name))[:59]
    cands = [base, f"{base}Model", f"{base}Surrogate", "MyModel"]

    def again(candidate: str) -> None:
        check_model_class(candidate, reserved)

    if not name.isascii() or not name.isidentifier():
        _reject("model class is not a Python identifier", name, cands, again)
    if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", name):
        _reject(
            "model class must be CapWords (a capital first, letters and digits only)",
            name,
            cands,
            again,
        )
    if not 2 <= len(name) <= 64:
        _reject("model class must be 2 to 64 characters", name, cands, again)
    if keyword.iskeyword(name) or hasattr(builtins, name):
        _reject("model class shadows a builtin", name, cands[1:], again)
    if name in reserved:
        _reject(
            "model class collides with a name the package imports or defines",
            name,
            cands[1:],
            again,
        )


def check_author(author: str) -> None:
    """Author: 1-100 printable characters without quotes, backslash or angle brackets."""
    if not 1 <= len(author) <= 100 or re.search(r"[\"'\\<>\x00-\x1f\x7f]", author):
        safe = re.sub(r"[\"'\\<>\x00-\x1f\x7f]", "", author).strip()[:100]
        _reject(
            "author must be 1 to 100 printable characters without quotes, '\\', '<' or '>'",
            author,
            [safe, "Your Name"],
            check_author,
        )


def check_email(email: str) -> None:
    """Email: local part, one @ and a dotted domain."""
    if not re.fullmatch(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+", email):
        _reject(
            "email is not an address like name@example.org", email, ["you@example.org"], check_email
        )


def check_registry_user(user: str) -> None:
    """Registry account: lower-case letters, digits, '.', '_', '-' (as image paths need)."""
    if not re.fullmatch(r"[a-z0-9]([a-z0-9._-]{0,62}[a-z0-9])?", user):
        _reject(
            "registry user must be lower case letters, digits, '.', '_' or '-'",
            user,
            [re.sub(r"[^a-z0-9._-]", "", user.lower()).strip("._-"), "myuser"],
            check_registry_user,
        )


# --------------------------------------------------------------------------- config


@dataclass(frozen=True)
class Names:
    """One complete set of names (the template's, or the user's)."""

    project_name: str
    distribution: str
    package: str
    model_class: str
    author: str
    email: str
    repository: str  # owner/repo
    image: str  # registry/owner/name, no tag

    def forms(self) -> dict[str, str]:
        """Every textual form a name takes in the files, keyed by role."""
        return {
            "image": self.image,
            "repository": self.repository,
            "project_name": self.project_name,
            "model_class": self.model_class,
            "cap_words": self.model_class.removesuffix("Model") or self.model_class,
            "distribution": self.distribution,
            "package": self.package,
            "env_prefix": self.package.upper(),
            "author": self.author,
            "email": self.email,
        }


@dataclass
class Settings:
    """Everything the run needs, resolved from options, the Actions environment and git."""

    new: Names
    registry: str
    registry_user: str
    strip_examples: bool
    dry_run: bool
    ci: bool
    warnings: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """Everything the rename will do, computed before anything is touched."""

    writes: dict[str, bytes] = field(default_factory=dict)  # path -> new content
    links: dict[str, str] = field(default_factory=dict)  # moved symlink -> its target
    modes: dict[str, int] = field(default_factory=dict)  # path -> st_mode to give it
    deletes: set[str] = field(default_factory=set)
    counts: dict[str, int] = field(default_factory=dict)  # path -> substitutions made
    moves: list[tuple[str, str]] = field(default_factory=list)
    replaced: list[str] = field(default_factory=list)  # skeleton replacements
    removed: list[str] = field(default_factory=list)
    leftovers: dict[str, list[str]] = field(default_factory=dict)  # old-name variants kept
    warnings: list[str] = field(default_factory=list)


def load_marker(root: Path) -> dict:
    """Read the template marker; NothingToDo when the repository was already renamed."""
    path = root / MARKER
    if not path.is_file():
        raise NothingToDo
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _git(root: Path, *args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(root), *args], capture_output=True, text=True, check=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None


def detect_repository(root: Path, warnings: list[str]) -> str | None:
    """owner/repo from GITHUB_REPOSITORY, else a GitHub-like origin URL, else None."""
    env = os.environ.get("GITHUB_REPOSITORY", "")
    if re.fullmatch(r"[\w.-]+/[\w.-]+", env):
        return env
    url = _git(root, "remote", "get-url", "origin") or ""
    # https://host/owner/repo(.git), ssh://git@host/owner/repo, git@host:owner/repo(.git)
    m = re.fullmatch(
        r"(?:[a-z+]+://(?:[^@/]+@)?[^/]+/|[\w.-]+@[\w.-]+:)([\w.-]+)/([\w.-]+?)(?:\.git)?/?",
        url,
    )
    if m and not url.startswith("file:"):
        return f"{m.group(1)}/{m.group(2)}"
    if url:
        warnings.append(
            f"origin is a local path ({url}), not a GitHub URL: the repository and image "
            "names cannot be derived from it; pass --repository OWNER/NAME"
        )
    return None


def resolve_settings(args: argparse.Namespace, root: Path, old: Names) -> Settings:
    """Fill defaults, derive names and validate all of them; raises NameError_."""
    warnings: list[str] = []
    if args.repository is not None:
        check_repository(args.repository)
    repository = args.repository or detect_repository(root, warnings)
    repo_name = repository.split("/")[1] if repository else root.resolve().name
    # None means not given: an empty --project-name "" is refused, not replaced.
    project_name = repo_name if args.project_name is None else args.project_name
    check_project_name(project_name)
    distribution = args.distribution or derive_distribution(project_name)
    reserved_dists, imports = dependency_names(root)
    check_distribution(distribution, old.distribution, reserved_dists, imports)
    package = args.package or derive_package(distribution)
    folders = frozenset(
        {"build", "dist", "docs", "src"}
        | {p.name for p in root.iterdir() if p.is_dir() and p.name != old.package}
    )
    check_package(package, old.package, imports, folders)
    model_class = args.model_class or derive_model_class(project_name)
    check_model_class(model_class, reserved_class_names(root, old))
    if repository is None:
        warnings.append(
            f"no GitHub repository known (GITHUB_REPOSITORY unset, no GitHub origin): using "
            f"{old.repository.split('/')[0]}/{distribution}; pass --repository OWNER/NAME"
        )
    owner = repository.split("/")[0] if repository else old.repository.split("/")[0]
    repo = repository.split("/")[1] if repository else distribution
    actor = os.environ.get("GITHUB_ACTOR") or owner
    author = args.author or _git(root, "config", "user.name") or actor
    email = args.email or _git(root, "config", "user.email") or f"{actor}@users.noreply.github.com"
    check_author(author)
    check_email(email)

    registry = args.registry or "ghcr"
    if registry not in REGISTRIES:
        _reject("registry must be one of " + ", ".join(REGISTRIES), registry, ["ghcr"], len)
    registry_user = args.registry_user or owner.lower()
    check_registry_user(registry_user)
    image_owner = owner.lower() if registry == "ghcr" else registry_user
    image = f"{REGISTRIES[registry]}/{image_owner}/{repo.lower()}"
    new = Names(
        project_name, distribution, package, model_class, author, email, f"{owner}/{repo}", image
    )
    return Settings(
        new,
        registry,
        registry_user,
        bool(args.strip_examples),
        args.dry_run,
        args.ci,
        warnings,
    )


def check_repository(repository: str) -> None:
    """owner/name as GitHub spells them."""
    if not re.fullmatch(r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}", repository):
        _reject(
            "repository must be OWNER/NAME (letters, digits, '-'; the name also '.', '_')",
            repository,
            ["someone/" + (derive_distribution(repository) or "my-model")],
            check_repository,
        )


def reserved_class_names(root: Path, old: Names) -> frozenset[str]:
    """Names the package's modules (and the skeletons) import or define at module level.

    Read from the code with ast, so a class or import added later is reserved too; the
    package's own modules only (not its subpackages), where the model class is used. The
    template's own names are left out: the rename replaces them.
    """
    files = [*(root / old.package).glob("*.py"), *(root / ".github" / "template").rglob("*.py")]
    names: set[str] = set()
    for path in files:
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"))
        except (OSError, SyntaxError, UnicodeDecodeError):
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.Import | ast.ImportFrom):
                names.update((a.asname or a.name).split(".")[0] for a in node.names)
            elif isinstance(node, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
                names.add(node.name)
            elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
                names.add(node.id)
    old_forms = set(old.forms().values())
    return frozenset(n for n in names if n not in old_forms)


# --------------------------------------------------------------------------- planning


def tracked_files(root: Path) -> list[str]:
    """Files to consider: in a git checkout the tracked and not-ignored ones, else all but .git/."""
    if (root / ".git").exists():
        cmd = [
            "git",
            "-C",
            str(root),
            "ls-files",
            "-z",
            "--cached",
            "--others",
            "--exclude-standard",
        ]
        out = subprocess.run(cmd, capture_output=True, check=True, timeout=60)
        paths = {p for p in out.stdout.decode().split("\0") if p}
        return sorted(p for p in paths if os.path.lexists(root / p))
    found = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        for name in filenames:
            found.append((Path(dirpath) / name).relative_to(root).as_posix())
    return sorted(found)


def _matches(path: str, patterns: Iterable[str]) -> bool:
    return any(
        path == p or path.startswith(p.rstrip("/") + "/") or fnmatch.fnmatch(path, p)
        for p in patterns
    )


def _text(data: bytes) -> str | None:
    """Decoded text, or None for binary content (NUL bytes or not UTF-8)."""
    if b"\0" in data:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return None


def substitution(old: Names, new: Names) -> tuple[re.Pattern[str], dict[str, str]]:
    """One regex over every old form, longest first, so no replacement is replaced again."""
    mapping: dict[str, str] = {}
    new_forms = new.forms()
    for role, form in old.forms().items():
        mapping.setdefault(form, new_forms[role])
    pattern = re.compile("|".join(re.escape(f) for f in sorted(mapping, key=len, reverse=True)))
    return pattern, mapping


def strip_regions(text: str, start: str, end: str, keep_inside: bool = False) -> str:
    """Delete every line from one containing `start` to the next containing `end`.

    With `keep_inside`, only the two marker lines go and the region's lines stay.
    """
    out, inside = [], False
    for line in text.splitlines(keepends=True):
        if not inside and start in line:
            inside = True
        elif inside and end in line:
            inside = False
        elif keep_inside or not inside:
            out.append(line)
    if inside:
        raise ValueError(f"unterminated region: {start!r} without {end!r}")
    return "".join(out)


def replace_tables(text: str, fragment: str) -> str:
    """Replace each Markdown table whose header row is the fragment's first line by it."""
    header = fragment.splitlines()[0].strip()
    lines = text.splitlines(keepends=True)
    out, i = [], 0
    while i < len(lines):
        if lines[i].strip() == header:
            while i < len(lines) and lines[i].lstrip().startswith("|"):
                i += 1
            out.append(fragment if fragment.endswith("\n") else fragment + "\n")
            continue
        out.append(lines[i])
        i += 1
    return "".join(out)


def make_plan(root: Path, marker: dict, old: Names, settings: Settings) -> Plan:
    """Compute every write, move and deletion without touching the tree."""
    plan = Plan()
    template = marker.get("template", {})
    examples = marker.get("examples", {})
    remove = list(template.get("remove", [MARKER]))
    verbatim = list(template.get("verbatim", []))
    never_edit = [*template.get("never_edit", []), WORKFLOWS + "*"]
    replace: dict[str, str] = dict(examples.get("replace", {})) if settings.strip_examples else {}
    if settings.strip_examples:
        remove += examples.get("remove", [])
    # Regions about the template go on every rename; example regions with --strip-examples,
    # else only their marker lines (without the template.toml they mean nothing).
    regions = [
        (template.get("region_start"), template.get("region_end"), False),
        (examples.get("region_start"), examples.get("region_end"), not settings.strip_examples),
    ]
    tables: dict[str, str] = dict(examples.get("tables", {})) if settings.strip_examples else {}
    pattern, mapping = substitution(old, settings.new)
    leftover = re.compile(
        "|".join(re.escape(w) for w in {old.package, old.distribution})
        + "|"
        + r"\b"
        + r"[\s_-]?".join(re.escape(w) for w in words(old.project_name))
        + r"\b",
        re.IGNORECASE,
    )

    for path in tracked_files(root):
        full = root / path
        if _matches(path, remove):
            plan.deletes.add(path)
            plan.removed.append(path)
            continue
        if _matches(path, never_edit):
            continue  # workflows read the names at run time (GITHUB_TOKEN cannot push them)
        new_path = (
            path if _matches(path, verbatim) else pattern.sub(lambda m: mapping[m.group(0)], path)
        )
        if full.is_symlink():
            # Kept as it is (same target); only moved along with its folder.
            if new_path != path:
                plan.links[new_path] = os.readlink(full)
                plan.moves.append((path, new_path))
                plan.deletes.add(path)
            continue
        source = root / replace[path] if path in replace else full
        data = source.read_bytes()
        if path in replace:
            plan.replaced.append(path)
        text = _text(data)
        count = 0
        if text is not None and not _matches(path, verbatim):
            for start, end, keep_inside in regions:
                if start and start in text:
                    text = strip_regions(text, start, end, keep_inside)
            if path in tables:
                text = replace_tables(text, (root / tables[path]).read_text(encoding="utf-8"))
            text, count = pattern.subn(lambda m: mapping[m.group(0)], text)
            variants = sorted({m.group(0) for m in leftover.finditer(text)})
            if variants:
                plan.leftovers[new_path] = variants
            data = text.encode("utf-8")
        changed = data != full.read_bytes() or new_path != path
        if not changed:
            continue
        plan.writes[new_path] = data
        plan.modes[new_path] = full.stat().st_mode
        plan.counts[new_path] = count
        if new_path != path:
            plan.moves.append((path, new_path))
            plan.deletes.add(path)
    moved_onto = [n for o, n in plan.moves if os.path.lexists(root / n) and n not in plan.deletes]
    if moved_onto:
        raise ValueError(f"cannot move onto existing paths: {', '.join(moved_onto)}")
    reformat_python(root, plan)
    return plan


def _sibling(name: str) -> ModuleType:
    """A module next to this script (scripts/ is not a package, and tests load us by path)."""
    key = f"rename_{name}"
    if key not in sys.modules:
        spec = importlib.util.spec_from_file_location(key, Path(__file__).with_name(f"{name}.py"))
        module = importlib.util.module_from_spec(spec)
        sys.modules[key] = module
        spec.loader.exec_module(module)
    return sys.modules[key]


def reformat_python(root: Path, plan: Plan) -> None:
    """Run the project's formatter on the Python files the rename changed (scripts/reformat.py).

    A long name makes lines longer than the project's limit; reformatting only what the
    rename wrote keeps the fix here instead of in every file of the template.
    """
    # Python files, and Markdown files, whose Python code blocks ruff formats too.
    files = {p: d for p, d in plan.writes.items() if p.endswith((".py", ".pyi", ".md"))}
    if not files:
        return
    reformat = _sibling("reformat")
    ruff = reformat.ruff_command()
    if ruff is None:
        plan.warnings.append(
            "ruff is not installed here, so the renamed Python files were not reformatted; "
            "after installing the project run: ruff format . && ruff check --fix ."
        )
        return
    pyproject = plan.writes.get("pyproject.toml") or (root / "pyproject.toml").read_bytes()
    try:
        plan.writes.update(reformat.reformat(files, pyproject.decode("utf-8"), ruff))
    except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
        raise ValueError(f"cannot reformat the renamed Python files: {exc}") from exc


# --------------------------------------------------------------------------- applying


def _write_file(path: Path, data: bytes, mode: int) -> None:
    """Write one file with its mode (the single write path; tests inject faults here).

    Written beside the target, then renamed over it: the old inode, which the backup
    hard-links, is never modified in place.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.rename-tmp")
    try:
        tmp.write_bytes(data)
        os.chmod(tmp, mode & 0o7777)
        os.replace(tmp, path)
    finally:
        if os.path.lexists(tmp):
            tmp.unlink()


def _link(path: Path, target: str) -> None:
    """Create one symlink (a moved link keeps its target)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(target, path)


def _backup(src: Path, dst: Path) -> None:
    """Keep the original: a hard link (no data copied), or a copy where links fail."""
    dst.parent.mkdir(parents=True, exist_ok=True)
    try:
        if src.is_symlink():
            raise OSError("symlink: copy it as a link")
        os.link(src, dst)
    except OSError:
        shutil.copy2(src, dst, follow_symlinks=False)


def _remove(path: Path) -> None:
    path.unlink()


def _write_manifest(backup: Path, manifest: dict) -> None:
    """Record what the backup holds, durably, before the first change to the tree."""
    path = backup / BACKUP_MANIFEST
    with path.open("w", encoding="utf-8") as fh:
        json.dump(manifest, fh, indent=1)
        fh.flush()
        os.fsync(fh.fileno())


def _restore_one(saved: Path, target: Path) -> None:
    """Put one original back, copying from the backup (which stays intact until verified)."""
    if os.path.lexists(target) and not target.is_dir():
        target.unlink()
    target.parent.mkdir(parents=True, exist_ok=True)
    if saved.is_symlink():
        os.symlink(os.readlink(saved), target)
    else:
        tmp = target.with_name(f".{target.name}.rename-tmp")
        shutil.copy2(saved, tmp)
        os.replace(tmp, target)


def _same(saved: Path, target: Path) -> bool:
    """True when target is byte-identical to the saved original (same type, mode, content)."""
    if not os.path.lexists(target):
        return False
    if saved.is_symlink() or target.is_symlink():
        return (
            saved.is_symlink()
            and target.is_symlink()
            and (os.readlink(saved) == os.readlink(target))
        )
    a, b = saved.stat(), target.stat()
    if stat.S_IMODE(a.st_mode) != stat.S_IMODE(b.st_mode) or a.st_size != b.st_size:
        return False
    return saved.read_bytes() == target.read_bytes()


class RestoreError(Exception):
    """Some originals could not be put back: the backup is kept, and this names it."""

    def __init__(self, backup: Path, failures: list[str]) -> None:
        super().__init__(f"{len(failures)} path(s) not restored")
        self.backup = backup
        self.failures = failures


def find_backups(root: Path) -> list[Path]:
    """Backups a rename left behind (an interrupted run, or a rollback that could not finish)."""
    return sorted(p for p in root.glob(BACKUP_PREFIX + "*") if p.is_dir())


def restore(root: Path, backup: Path) -> None:
    """Put every original in ``backup`` back and delete what the rename created.

    The backup is removed only after every path is verified; otherwise RestoreError.
    A backup without a manifest was interrupted before the tree was changed.
    """
    manifest_path = backup / BACKUP_MANIFEST
    if not manifest_path.is_file():
        shutil.rmtree(backup)  # only links or copies of originals that were never changed
        return
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    failures = []
    for rel in manifest["touched"]:
        saved, target = backup / rel, root / rel
        try:
            if rel in manifest["existed"]:
                if not _same(saved, target):
                    _restore_one(saved, target)
            elif os.path.lexists(target):
                _remove(target)
        except OSError as exc:
            failures.append(f"{rel}: {exc}")
    # Verify every path before the backup goes: a failed restore must never lose a file.
    for rel in manifest["touched"]:
        saved, target = backup / rel, root / rel
        ok = _same(saved, target) if rel in manifest["existed"] else not os.path.lexists(target)
        if not ok and not any(f.startswith(f"{rel}: ") for f in failures):
            failures.append(f"{rel}: differs from the original after restoring")
    if failures:
        raise RestoreError(backup, failures)
    for d in sorted(map(Path, manifest["created_dirs"]), key=lambda p: -len(p.parts)):
        full = root / d
        if full.is_dir():
            shutil.rmtree(full / "__pycache__", ignore_errors=True)
            if not any(full.iterdir()):
                full.rmdir()
    shutil.rmtree(backup)


def apply_plan(root: Path, plan: Plan) -> None:
    """Apply the plan; on any exception restore every touched path exactly, then re-raise.

    The originals are kept in a backup folder in the tree (hard links, same file system)
    with a manifest written before the first change; it is removed only when the rename
    succeeded or every original is verified restored. The marker goes last, so a run that
    is killed leaves both the marker and the backup, and the next run offers --restore.
    """
    touched = sorted(set(plan.writes) | set(plan.links) | plan.deletes)
    backup = Path(tempfile.mkdtemp(prefix=BACKUP_PREFIX, dir=root))
    try:
        existed = [rel for rel in touched if os.path.lexists(root / rel)]
        for rel in existed:
            _backup(root / rel, backup / rel)
        created = sorted(
            p.relative_to(root).as_posix() for p in _parents(root, touched) if not p.exists()
        )
        _write_manifest(backup, {"touched": touched, "existed": existed, "created_dirs": created})
    except BaseException:
        shutil.rmtree(backup, ignore_errors=True)  # nothing in the tree was changed yet
        raise
    # The running script and the marker go last: until then a killed run can be restored.
    last = sorted(p for p in plan.deletes if p.startswith("scripts/") and p not in plan.writes)
    last += [MARKER] if MARKER in plan.deletes else []
    try:
        for rel in sorted(plan.deletes - set(plan.writes) - set(plan.links) - set(last)):
            _remove(root / rel)
        for rel, data in plan.writes.items():
            _write_file(root / rel, data, plan.modes[rel])
        for rel, target in plan.links.items():
            _link(root / rel, target)
        for rel in last:
            _remove(root / rel)
    except BaseException:
        restore(root, backup)  # RestoreError (backup kept) replaces the original error
        raise
    # Committed. The backup is no longer needed; if it cannot go, say so (nothing is lost).
    try:
        shutil.rmtree(backup)
    except OSError as exc:
        print(f"warning: could not remove the backup {backup}: {exc}; delete it by hand")
    # Tidy folders the moves emptied (bytecode caches do not keep them alive).
    for d in sorted(_parents(root, plan.deletes), key=lambda p: -len(p.parts)):
        shutil.rmtree(d / "__pycache__", ignore_errors=True)
        if d.is_dir() and d != root and not any(d.iterdir()):
            d.rmdir()


def _parents(root: Path, rels: Iterable[str]) -> set[Path]:
    out: set[Path] = set()
    for rel in rels:
        for parent in Path(rel).parents:
            if parent != Path("."):
                out.add(root / parent)
    return out


# --------------------------------------------------------------------------- GitHub


@dataclass
class RemoteSetup:
    """Repository variables and secrets the workflows read, and what became of them."""

    variables: dict[str, str]
    secrets: dict[str, str | None]  # name -> value (None: no value available)
    done: list[str] = field(default_factory=list)
    commands: list[str] = field(default_factory=list)  # what the user must still run


def remote_setup(settings: Settings, interactive: bool) -> RemoteSetup:
    """Decide variables and secrets; secret values only from the environment or a prompt."""
    repo = settings.new.repository.split("/")[1].lower()
    variables = {"IMAGE_NAME": settings.new.repository.lower()}
    secrets: dict[str, str | None] = {}
    if settings.registry in REGISTRY_SECRETS:
        variables[REGISTRY_IMAGE_VARIABLES[settings.registry]] = f"{settings.registry_user}/{repo}"
        user_secret, token_secret = REGISTRY_SECRETS[settings.registry]
        # The account name is public (it is in the image path); the workflows read it as a
        # secret, so it is stored as one.
        secrets[user_secret] = os.environ.get(user_secret) or settings.registry_user
        token = os.environ.get(token_secret) or None
        if token is None and interactive:
            token = getpass.getpass(f"{token_secret} (hidden; empty to skip): ") or None
        secrets[token_secret] = token
    return RemoteSetup(variables, secrets)


def mask(values: Iterable[str | None], ci: bool) -> None:
    """Register secret values with the runner before anything is logged (CI only)."""
    if not ci:
        return
    from actions_toolkit import core

    for value in values:
        for line in (value or "").splitlines():
            if line.strip():
                core.set_secret(line)
    sys.stdout.flush()


def push_remote(
    setup: RemoteSetup, repository: str, token: str | None, log: Callable[[str], None]
) -> bool:
    """Set variables and secrets with PyGithub; whatever cannot be set becomes a gh command.

    Runs after the local rename, which it never undoes: any API or network error is
    reported in one line (never a traceback, never a value) and False is returned.
    """
    pending_vars = dict(setup.variables)
    pending_secrets = {k: v for k, v in setup.secrets.items() if v is not None}
    ok = True
    if token:
        try:
            from github import Auth, Github, GithubException
        except ImportError:
            log("warning: PyGithub is not installed (pip install -r scripts/requirements.txt)")
            Github = None
            ok = False
        if Github is not None:
            base_url = os.environ.get("GITHUB_API_URL") or "https://api.github.com"
            client = Github(auth=Auth.Token(token), base_url=base_url, **GITHUB_CLIENT_OPTIONS)
            try:
                repo = client.get_repo(repository)
                for name, value in list(pending_vars.items()):
                    try:
                        repo.create_variable(name, value)
                    except GithubException as exc:
                        if exc.status != 409 or not repo.get_variable(name).edit(value):
                            raise
                    setup.done.append(f"variable {name}")
                    del pending_vars[name]
                for name, value in list(pending_secrets.items()):
                    repo.create_secret(name, value)  # sealed with the repository's public key
                    setup.done.append(f"secret {name}")
                    del pending_secrets[name]
            except GithubException as exc:
                ok = False
                log(
                    f"warning: GitHub refused to set repository settings (HTTP {exc.status}) at "
                    f"{base_url}; run the commands below with a token that can"
                )
            except Exception as exc:  # network: refused, timed out, DNS, TLS, bad answer
                ok = False
                reason = str(exc).splitlines()[0][:200] if str(exc) else ""
                log(
                    f"warning: cannot reach the GitHub API at {base_url} "
                    f"({type(exc).__name__}: {reason}); run the commands below when it is back"
                )
            finally:
                client.close()
    for name, value in pending_vars.items():
        setup.commands.append(f"gh variable set {name} --body {shlex.quote(value)}")
    # `gh secret set NAME` prompts for the value without echoing it.
    setup.commands.extend(
        f"gh secret set {name}" for name in setup.secrets if f"secret {name}" not in setup.done
    )
    return ok


# --------------------------------------------------------------------------- reporting


def describe_plan(settings: Settings, plan: Plan, old: Names) -> list[str]:
    """The plan as lines: derived names, each file changed with a count, moves, removals."""
    new = settings.new
    lines = ["names:"]
    for role, value in new.forms().items():
        was = old.forms()[role]
        lines.append(f"  {role:13} {was!r} -> {value!r}")
    lines.append(f"  {'registry':13} {settings.registry}")
    lines.append(f"  {'examples':13} {'stripped' if settings.strip_examples else 'kept'}")
    lines.append(f"files changed ({len(plan.counts)}):")
    for path in sorted(plan.counts):
        lines.append(f"  {path}: {plan.counts[path]} replacement(s)")
    lines.append(f"paths moved ({len(plan.moves)}):")
    lines.extend(f"  {a} -> {b}" for a, b in plan.moves)
    lines.append(f"skeletons replacing the example ({len(plan.replaced)}):")
    lines.extend(f"  {p}" for p in plan.replaced)
    lines.append(f"paths removed ({len(plan.removed)}):")
    lines.extend(f"  {p}" for p in plan.removed)
    for path, variants in sorted(plan.leftovers.items()):
        lines.append(f"warning: {path} keeps old-name variants {variants}: edit them by hand")
    lines.extend(f"warning: {w}" for w in plan.warnings)
    return lines


def write_summary(settings: Settings, plan: Plan, setup: RemoteSetup) -> None:
    """Markdown step summary for the Actions run page (no secret values in it)."""
    path = os.environ.get("GITHUB_STEP_SUMMARY")
    if not path:
        return
    new = settings.new
    rows = "\n".join(f"| {role} | `{value}` |" for role, value in new.forms().items())
    todo = "\n".join(f"    {c}" for c in setup.commands) or "    (nothing)"
    done = ", ".join(setup.done) or "none"
    text = (
        f"## Template renamed to {new.project_name}\n\n| name | value |\n| --- | --- |\n{rows}\n\n"
        f"{len(plan.counts)} files changed, {len(plan.moves)} paths moved, "
        f"{len(plan.removed)} template files removed; examples "
        f"{'stripped' if settings.strip_examples else 'kept'}.\n\n"
        f"Repository settings set: {done}.\n\nStill to run (with the GitHub CLI):\n\n{todo}\n"
    )
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(text)


# --------------------------------------------------------------------------- CLI


def build_parser() -> argparse.ArgumentParser:
    """The command line; every option can also come from INPUT_<NAME> with --ci."""
    p = argparse.ArgumentParser(
        prog="rename.py",
        description="Turn this template into your own project (see .github/template.toml).",
    )
    p.add_argument("--project-name", help="display name (default: the repository's name)")
    p.add_argument("--distribution", help="PyPI name (default: from the project name)")
    p.add_argument("--package", help="import name (default: from the distribution)")
    p.add_argument("--model-class", help="model class (default: <ProjectName>Model)")
    p.add_argument("--author", help="author (default: git user.name)")
    p.add_argument("--email", help="author email (default: git user.email)")
    p.add_argument("--registry", choices=sorted(REGISTRIES), help="image registry (default ghcr)")
    p.add_argument("--registry-user", help="registry account (default: the repository owner)")
    g = p.add_mutually_exclusive_group()
    g.add_argument(
        "--strip-examples",
        dest="strip_examples",
        action="store_true",
        default=None,
        help="replace the example model with a documented skeleton",
    )
    g.add_argument(
        "--keep-examples",
        dest="strip_examples",
        action="store_false",
        help="keep the example model (default)",
    )
    p.add_argument(
        "--repository",
        help="GitHub owner/name (default: GITHUB_REPOSITORY, else the origin remote's URL)",
    )
    p.add_argument("--dry-run", action="store_true", help="print the plan, change nothing")
    p.add_argument(
        "--restore",
        action="store_true",
        help=f"put back the originals kept in {BACKUP_PREFIX}* by a rename that did not finish",
    )
    p.add_argument(
        "--ci",
        action="store_true",
        help="read inputs from INPUT_* (GitHub Actions), write outputs and a summary",
    )
    return p


def read_ci_inputs(args: argparse.Namespace) -> None:
    """Fill options not given on the command line from the Actions inputs (INPUT_*)."""
    from actions_toolkit import core

    for name in (
        "project_name",
        "distribution",
        "package",
        "model_class",
        "author",
        "email",
        "registry",
        "registry_user",
    ):
        if getattr(args, name) is None:
            setattr(args, name, core.get_input(name) or None)
    if args.strip_examples is None and core.get_input("strip_examples"):
        args.strip_examples = core.get_boolean_input("strip_examples")
    if not args.dry_run and core.get_input("dry_run"):
        args.dry_run = core.get_boolean_input("dry_run")


def default_root() -> Path:
    """The repository: this script's parent's parent (also when run from inside a backup)."""
    root = Path(__file__).resolve().parent.parent
    return root.parent if root.name.startswith(BACKUP_PREFIX) else root


def restore_command(root: Path, backup: Path) -> str:
    """The command that runs --restore, from the backup's copy if the script is gone."""
    script = Path("scripts/rename.py")
    if not (root / script).is_file():
        script = backup.relative_to(root) / script
    return f"python {script} --restore"


def report_restore_error(root: Path, exc: RestoreError, what: str) -> None:
    """What could not be restored, where the originals are, and how to finish by hand."""
    err = sys.stderr
    print(f"error: {what}; {len(exc.failures)} path(s) could not be restored:", file=err)
    for failure in exc.failures:
        print(f"  {failure}", file=err)
    print(f"nothing is lost: every original is in {exc.backup}", file=err)
    print("to recover: fix the cause above (permissions, a mount, chattr +i), then run", file=err)
    print(f"  {restore_command(root, exc.backup)}", file=err)
    print(
        f"or copy each listed path back from {exc.backup.name}/ by hand and delete that folder",
        file=err,
    )


def run_restore(root: Path) -> int:
    """--restore: put back the originals of an interrupted or half rolled-back rename."""
    backups = find_backups(root)
    if not backups:
        print(f"nothing to restore: no {BACKUP_PREFIX}* folder in {root}")
        return 0
    for backup in backups:
        try:
            restore(root, backup)
        except RestoreError as exc:
            report_restore_error(root, exc, f"restoring from {backup.name} failed")
            return EXIT_FAILED
        print(f"restored every original from {backup.name} and removed it")
    return 0


def remove_stale_artifacts(root: Path, old: Names) -> list[str]:
    """Delete build output of the old name (ignored by git, so the plan did not move it)."""
    stale = [root / f"{old.package}.egg-info", root / f"{old.distribution}.egg-info"]
    pkg = root / old.package
    if pkg.is_dir():
        stale += [pkg / "_version.py", *pkg.rglob("__pycache__")]
    removed = []
    for path in stale:
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path, ignore_errors=True)
        elif os.path.lexists(path):
            path.unlink()
        else:
            continue
        removed.append(path.relative_to(root).as_posix())
    for d in sorted(pkg.rglob("*"), key=lambda p: -len(p.parts)) if pkg.is_dir() else []:
        if d.is_dir() and not any(d.iterdir()):
            d.rmdir()
    if pkg.is_dir() and not any(pkg.iterdir()):
        pkg.rmdir()
    return removed


def main(argv: list[str] | None = None, root: Path | None = None) -> int:
    """Run the rename; exit code 0 done or nothing to do, 2 bad name, 1 failed, 3 partly done."""
    args = build_parser().parse_args(argv)
    root = (root or default_root()).resolve()
    if args.restore:
        return run_restore(root)
    backups = find_backups(root)
    if backups:
        print(
            f"error: a previous rename did not finish: {backups[0].name}/ holds the originals; "
            f"run `{restore_command(root, backups[0])}` to put the tree back, then rename again",
            file=sys.stderr,
        )
        return EXIT_FAILED
    if args.ci:
        read_ci_inputs(args)
    try:
        marker = load_marker(root)
    except NothingToDo:
        print(f"nothing to do: {MARKER} is gone, this repository was already renamed")
        _ci_outputs(args.ci, {"changed": "false"})
        return 0
    old = Names(**marker["names"])
    if not (root / old.package).is_dir():
        print(
            f"error: {MARKER} is present but {old.package}/ is missing: this tree was changed by "
            "hand or half renamed without a backup; restore it with git (`git status`, then "
            "`git checkout -- .`) and run the rename again",
            file=sys.stderr,
        )
        return EXIT_FAILED
    try:
        settings = resolve_settings(args, root, old)
    except NameError_ as exc:
        print(f"error: {exc}", file=sys.stderr)
        return EXIT_INVALID
    interactive = sys.stdin.isatty() and not args.ci and not args.dry_run
    setup = remote_setup(settings, interactive)
    token = os.environ.get("TEMPLATE_SETUP_TOKEN") or os.environ.get("GH_TOKEN")
    # Registry tokens and the GitHub token; account names stay readable (they are public).
    mask([v for k, v in setup.secrets.items() if k.endswith("_TOKEN")] + [token], args.ci)
    for warning in settings.warnings:
        print(f"warning: {warning}")
    try:
        plan = make_plan(root, marker, old, settings)
    except (OSError, ValueError) as exc:
        print(f"error: cannot plan the rename: {exc}", file=sys.stderr)
        return EXIT_FAILED
    for line in describe_plan(settings, plan, old):
        print(line)
    if args.dry_run:
        print("dry run: nothing was changed")
        print("would set:", ", ".join([*setup.variables, *setup.secrets]) or "nothing")
        return 0
    try:
        apply_plan(root, plan)
    except RestoreError as exc:
        cause = exc.__context__
        report_restore_error(root, exc, f"the rename failed ({cause!r}) and so did its rollback")
        return EXIT_FAILED
    except Exception as exc:
        print(
            f"error: the rename failed and was rolled back (every original verified restored, "
            f"the tree is unchanged): {exc!r}",
            file=sys.stderr,
        )
        return EXIT_FAILED
    print(f"renamed to {settings.new.project_name!r}; {MARKER} and the rename script removed")
    removed = remove_stale_artifacts(root, old)
    if not args.ci:
        # The old editable install still points at the old package and entry points.
        stale = ", ".join(removed) or "none found"
        print(f"removed build output of the old name: {stale}")
        uninstall = (
            f"pip uninstall -y {old.distribution} && "
            if _installed_distribution(old.distribution)
            else ""
        )
        print(f"reinstall the renamed project: {uninstall}pip install -e '.[dev]'")
    ok = push_remote(setup, settings.new.repository, token, print)
    if setup.commands:
        print("to finish, run (GitHub CLI, in this repository):")
        for command in setup.commands:
            print(f"  {command}")
    write_summary(settings, plan, setup)
    new = settings.new
    _ci_outputs(
        args.ci,
        {
            "changed": "true",
            "project_name": new.project_name,
            "distribution": new.distribution,
            "package": new.package,
            "model_class": new.model_class,
            "image": new.image,
            "github_settings": "done" if ok else "failed",
        },
    )
    return 0 if ok else EXIT_PARTIAL


def _ci_outputs(ci: bool, outputs: dict[str, str]) -> None:
    if not ci:
        return
    from actions_toolkit import core

    for key, value in outputs.items():
        core.set_output(key, value)


if __name__ == "__main__":
    sys.exit(main())
