"""environment.yml and dev-environment.yml agree with setup.cfg (checked statically).

conda cannot be installed here and conda-forge is unreachable, so the files are never solved in
this repository's CI: these checks are what keeps them honest. Every requirement of setup.cfg
(install_requires -> environment.yml; install_requires and the ``dev`` extra ->
dev-environment.yml) must appear, under its conda name or in the pip section, with a specifier
that admits only versions setup.cfg admits (and at least one of them); every conda match spec
must be valid; the python pins must agree with python_requires; nothing may appear that setup.cfg
does not declare.
"""

from __future__ import annotations

import configparser
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from packaging.requirements import InvalidRequirement, Requirement
from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.utils import canonicalize_name
from packaging.version import Version

ROOT = Path(__file__).resolve().parents[1]

# PyPI name -> conda-forge name, where the two differ beyond normalization (PyYAML -> pyyaml and
# pydantic_settings -> pydantic-settings are handled by canonicalize_name).
PYPI_TO_CONDA: dict[str, str] = {"docker": "docker-py", "matplotlib": "matplotlib-base"}

# Entries an environment may hold that are not requirements of setup.cfg.
INFRASTRUCTURE = {"python", "pip"}

# conda match spec, the subset these files use: "name", "name<spec>" or "name <spec>"; a spec is
# comma-separated clauses (AND); no build strings, channels or "|" alternatives.
CONDA_NAME = re.compile(r"^[a-z0-9_][a-z0-9_.\-]*$")
CONDA_SPEC = re.compile(r"^(?P<name>[^\s<>=!~]+)\s?(?P<spec>[<>=!~].*|\d.*)?$")
CONDA_CLAUSE = re.compile(
    r"^(?P<op>>=|<=|==|!=|~=|>|<|=)?(?P<version>\d+(\.\d+)*(\.\*)?((a|b|rc|dev|post)\d*)?)$"
)


@dataclass(frozen=True)
class Entry:
    """One dependency of an environment file, as a PEP 440 requirement for comparison."""

    name: str  # canonical (PyPI-normalized) name
    specifier: SpecifierSet
    source: str  # "conda" or "pip"
    text: str


def conda_to_specifier(spec: str) -> SpecifierSet:
    """Translate a conda version spec (the subset above) to an equivalent PEP 440 SpecifierSet."""
    clauses = []
    for clause in spec.split(","):
        match = CONDA_CLAUSE.match(clause.strip())
        if match is None:
            raise ValueError(f"invalid conda version clause {clause!r} in {spec!r}")
        op, version = match["op"] or "", match["version"]
        if op == "=" or (not op and version.endswith(".*")):
            # conda's "=1.2" and "1.2.*" both mean 1.2.*.
            clauses.append(f"=={version.removesuffix('.*')}.*")
        elif not op:
            clauses.append(f"=={version}")
        else:
            clauses.append(f"{op}{version}")
    try:
        return SpecifierSet(",".join(clauses))
    except InvalidSpecifier as exc:
        raise ValueError(f"invalid conda version spec {spec!r}: {exc}") from exc


def parse_conda_entry(text: str) -> Entry:
    """Parse one conda dependency line; raise ValueError naming the problem."""
    match = CONDA_SPEC.match(text.strip())
    if match is None:
        raise ValueError(f"invalid conda match spec {text!r}")
    name = match["name"]
    if "::" in name or "/" in name:
        raise ValueError(f"{text!r}: channel-qualified specs are not used (channel: conda-forge)")
    if not CONDA_NAME.match(name):
        raise ValueError(f"{text!r}: conda package names are lowercase (a-z, 0-9, '_', '.', '-')")
    spec = conda_to_specifier(match["spec"]) if match["spec"] else SpecifierSet()
    conda_to_pypi = {conda: pypi for pypi, conda in PYPI_TO_CONDA.items()}
    return Entry(canonicalize_name(conda_to_pypi.get(name, name)), spec, "conda", text)


def parse_pip_entry(text: str) -> Entry:
    """Parse one entry of the pip section (PEP 508; URLs need the ``name @ url`` form)."""
    try:
        req = Requirement(text)
    except InvalidRequirement as exc:
        raise ValueError(f"invalid pip requirement {text!r}: {exc}") from exc
    return Entry(canonicalize_name(req.name), req.specifier, "pip", text)


def read_environment(path: Path) -> tuple[list[Entry], list[str]]:
    """Entries of an environment file and the problems found while reading it."""
    data = yaml.safe_load(path.read_text())
    problems = []
    if data.get("channels") != ["conda-forge"]:
        problems.append(
            f"{path.name}: channels must be exactly [conda-forge], not {data.get('channels')}"
        )
    entries = []
    for dep in data.get("dependencies") or []:
        items = [(parse_conda_entry, dep)] if isinstance(dep, str) else []
        if isinstance(dep, dict):
            items = [(parse_pip_entry, pip_dep) for pip_dep in dep.get("pip") or []]
            if set(dep) != {"pip"}:
                problems.append(f"{path.name}: unexpected mapping in dependencies: {sorted(dep)}")
        for parse, text in items:
            try:
                entries.append(parse(text))
            except ValueError as exc:
                problems.append(f"{path.name}: {exc}")
    seen: dict[str, Entry] = {}
    for entry in entries:
        if entry.name in seen:
            problems.append(
                f"{path.name}: {entry.name} listed twice "
                f"({seen[entry.name].text!r}, {entry.text!r})"
            )
        seen[entry.name] = entry
    if any(e.source == "pip" for e in entries) and "pip" not in seen:
        problems.append(f"{path.name}: has a pip section but does not list pip")
    return entries, problems


def read_setup_cfg(
    path: Path,
) -> tuple[SpecifierSet, list[Requirement], dict[str, list[Requirement]]]:
    """python_requires, install_requires and extras_require of a setup.cfg."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(path)

    def requirements(value: str) -> list[Requirement]:
        lines = (line.split(" #")[0].strip() for line in value.splitlines())
        return [Requirement(line) for line in lines if line and not line.startswith("#")]

    python = SpecifierSet(parser.get("options", "python_requires"))
    install = requirements(parser.get("options", "install_requires", fallback=""))
    extras = {
        name: requirements(value)
        for name, value in (
            parser.items("options.extras_require")
            if parser.has_section("options.extras_require")
            else []
        )
    }
    return python, install, extras


def probe_versions(*specifiers: SpecifierSet) -> list[Version]:
    """Versions at and around every bound the specifiers mention: enough to compare them."""
    probes = {Version("0"), Version("999")}
    for specifier in specifiers:
        for spec in specifier:
            version = Version(spec.version.removesuffix(".*"))
            release = (*version.release, 0, 0)[: max(3, len(version.release))]
            probes.add(version)
            for i in range(len(release)):
                head = release[:i]
                probes.add(Version(".".join(map(str, (*head, release[i] + 1)))))
                if release[i] > 0:
                    probes.add(Version(".".join(map(str, (*head, release[i] - 1, 99)))))
            probes.add(Version(".".join(map(str, release)) + ".1"))
    return sorted(probes)


def compatibility_problem(name: str, env_spec: SpecifierSet, cfg_spec: SpecifierSet) -> str | None:
    """None when env_spec admits only versions cfg_spec admits, and at least one of them."""
    probes = probe_versions(env_spec, cfg_spec)
    allowed = [v for v in probes if env_spec.contains(v, prereleases=True)]
    looser = [v for v in allowed if not cfg_spec.contains(v, prereleases=True)]
    env, cfg = f"environment spec {str(env_spec)!r}", f"setup.cfg ({str(cfg_spec)!r})"
    if looser:
        return f"{name}: {env} admits {looser[0]}, {cfg} does not"
    if not allowed:
        return f"{name}: {env} admits no version {cfg} admits"
    return None


def check(
    setup_cfg: Path,
    env_file: Path,
    required: list[Requirement],
    python: SpecifierSet,
    allowed_extra: set[str],
) -> list[str]:
    """Problems of one environment file against the requirements it must mirror."""
    entries, problems = read_environment(env_file)
    by_name = {e.name: e for e in entries}
    if "python" not in by_name:
        problems.append(f"{env_file.name}: no python pin")
    else:
        problem = compatibility_problem("python", by_name["python"].specifier, python)
        if problem:
            problems.append(f"{env_file.name}: {problem} (python_requires)")
    for req in required:
        name = canonicalize_name(req.name)
        entry = by_name.get(name)
        if entry is None:
            conda_name = PYPI_TO_CONDA.get(name, name)
            problems.append(
                f"{env_file.name}: {req} from {setup_cfg.name} is missing "
                f"(add '{conda_name}{req.specifier}' or a pip entry '{req}')"
            )
            continue
        if entry.source == "pip" and req.url:
            if Requirement(entry.text).url != req.url:
                problems.append(f"{env_file.name}: {name} URL differs from {setup_cfg.name}")
            continue
        problem = compatibility_problem(name, entry.specifier, req.specifier)
        if problem:
            problems.append(f"{env_file.name}: {problem}")
    declared = {canonicalize_name(r.name) for r in required} | INFRASTRUCTURE | allowed_extra
    for entry in entries:
        if entry.name not in declared:
            problems.append(
                f"{env_file.name}: {entry.text!r} is not a requirement in {setup_cfg.name}"
            )
    return problems


def check_all(root: Path) -> list[str]:
    """Every problem of both environment files of the project rooted at ``root``."""
    setup_cfg = root / "setup.cfg"
    python, install, extras = read_setup_cfg(setup_cfg)
    # Extras other than dev (e.g. optional integrations) may also appear in either file.
    optional = {
        canonicalize_name(r.name) for name, reqs in extras.items() if name != "dev" for r in reqs
    }
    runtime = check(setup_cfg, root / "environment.yml", install, python, optional)
    dev = check(
        setup_cfg, root / "dev-environment.yml", install + extras.get("dev", []), python, optional
    )
    return runtime + dev


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the three files, to mutate."""
    for name in ("setup.cfg", "environment.yml", "dev-environment.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    return tmp_path


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path.name}"
    path.write_text(text.replace(old, new, 1))


def test_environment_files_agree_with_setup_cfg() -> None:
    assert check_all(ROOT) == []


def test_runtime_environment_has_no_dev_tools() -> None:
    _, _, extras = read_setup_cfg(ROOT / "setup.cfg")
    runtime = {e.name for e in read_environment(ROOT / "environment.yml")[0]}
    # An optional runtime extra that the tests also install (e.g. "online") is not a dev tool.
    optional = {canonicalize_name(r.name) for n, rs in extras.items() if n != "dev" for r in rs}
    dev_tools = {canonicalize_name(r.name) for r in extras.get("dev", [])} - optional
    assert runtime.isdisjoint(dev_tools)


def test_dependency_added_to_setup_cfg_only_fails(project: Path) -> None:
    edit(
        project / "setup.cfg", "    pymongo>=4.6,<5\n", "    pymongo>=4.6,<5\n    requests>=2.31\n"
    )
    problems = check_all(project)
    assert any("environment.yml: requests>=2.31 from setup.cfg is missing" in p for p in problems)
    assert any("dev-environment.yml: requests>=2.31" in p for p in problems)


def test_dev_tool_added_to_setup_cfg_only_fails(project: Path) -> None:
    edit(project / "setup.cfg", "    ruff==", "    coverage==7.6.0\n    ruff==")
    problems = check_all(project)
    assert problems == [
        "dev-environment.yml: coverage==7.6.0 from setup.cfg is missing "
        "(add 'coverage==7.6.0' or a pip entry 'coverage==7.6.0')"
    ]


def test_looser_spec_in_environment_fails(project: Path) -> None:
    edit(project / "environment.yml", "lume-base>=0.6,<0.7", "lume-base>=0.6")
    problems = check_all(project)
    assert len(problems) == 1
    assert "lume-base" in problems[0] and "admits 0.7" in problems[0]


def test_disjoint_spec_fails(project: Path) -> None:
    edit(project / "dev-environment.yml", "pytest==9.2.0", "pytest==8.0.0")
    assert any("pytest" in p and "admits 8.0.0" in p for p in check_all(project))


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("  - pyyaml>=6", "  - PyYAML>=6", "lowercase"),
        ("  - numpy>=1.26", "  - numpy>=>1.26", "invalid conda version clause"),
        ("  - numpy>=1.26", "  - conda-forge::numpy>=1.26", "channel-qualified"),
        (
            "  - pymongo>=4.6,<5",
            "  - pymongo>=4.6,<5\n  - requests",
            "'requests' is not a requirement",
        ),
        ("  - pip\n", "", "does not list pip"),
        ("  - conda-forge\n", "  - conda-forge\n  - defaults\n", "channels must be exactly"),
    ],
)
def test_invalid_environment_entries_fail(project: Path, old: str, new: str, message: str) -> None:
    edit(project / "environment.yml", old, new)
    problems = check_all(project)
    assert any(message in p for p in problems), problems


def test_python_pins_must_agree(project: Path) -> None:
    edit(project / "environment.yml", "python>=3.11,<3.14", "python>=3.10")
    assert any("python" in p and "admits 3.10" in p for p in check_all(project))


@pytest.mark.parametrize(
    ("conda", "pep440"),
    [
        (">=3.11,<3.14", ">=3.11,<3.14"),
        ("=3.11", "==3.11.*"),
        ("3.11.*", "==3.11.*"),
        ("==9.2.0", "==9.2.0"),
        ("1.2", "==1.2"),
    ],
)
def test_conda_spec_translation(conda: str, pep440: str) -> None:
    assert conda_to_specifier(conda) == SpecifierSet(pep440)


def test_name_normalization() -> None:
    assert (
        parse_conda_entry("pydantic-settings>=2.3").name
        == parse_pip_entry("pydantic_settings>=2.3").name
    )
    assert parse_conda_entry("pyyaml>=6").name == parse_pip_entry("PyYAML>=6").name
    assert parse_conda_entry("docker-py>=7").name == "docker"
