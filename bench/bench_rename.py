"""Time scripts/rename.py on a copy of the template and on a generated tree of 5,000 text files.

Baseline, measured in the same run on the same files: a plain read of every file and a write
to a new tree (the least a rename that moves the package must do). Prints wall times, files
per second and the ratio.

    python bench/bench_rename.py
"""

from __future__ import annotations

import contextlib
import importlib.util
import io
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))  # tests/project_copy.py: the copy the tests use
from project_copy import copy_project  # noqa: E402

N_FILES = 5000
ARGS = ["--project-name", "Beam Size", "--author", "Ada Lovelace", "--email", "ada@example.org"]


def load_rename():
    spec = importlib.util.spec_from_file_location("rename_script", ROOT / "scripts" / "rename.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["rename_script"] = module
    spec.loader.exec_module(module)
    return module


def add_generated_files(dest: Path, package: str, n: int) -> None:
    """n text files of about 2 KB each, a few old-name forms per file, spread over folders."""
    body = (
        f"from {package}.model import MyPackageModel  # My Package\n"
        + "x = 1  # plain line without any name\n" * 50
        + f"IMAGE = 'ghcr.io/slaclab/my-package'  # {package.upper()}_TARGET\n"
    )
    for i in range(n):
        folder = dest / package / "generated" / f"d{i // 100:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"m{i:05d}.py").write_text(body)


def plain_copy(root: Path, files: list[str]) -> None:
    """Read every file and write it to a new tree: the least a rename that moves must do."""
    dest = root.parent / "baseline"
    for rel in files:
        path = root / rel
        if not path.is_symlink():
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            (dest / rel).write_bytes(path.read_bytes())


def measure(label: str, build, rename) -> str:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "repo"
        root.mkdir()
        build(root)
        files = rename.tracked_files(root)
        t0 = time.perf_counter()
        plain_copy(root, files)
        baseline = time.perf_counter() - t0
        t0 = time.perf_counter()
        with contextlib.redirect_stdout(io.StringIO()):  # the script prints its plan
            code = rename.main(ARGS, root=root)
        elapsed = time.perf_counter() - t0
        assert code == 0, code
    n = len(files)
    return (
        f"{label:28} {n:6d} files  rename {elapsed:7.3f} s ({n / elapsed:8.0f} files/s)   "
        f"read+write baseline {baseline:7.3f} s ({n / baseline:8.0f} files/s)   "
        f"ratio {elapsed / baseline:5.1f}x"
    )


def main() -> None:
    rename = load_rename()
    package = rename.load_marker(ROOT)["names"]["package"]
    cases = {
        "template": copy_project,
        f"template + {N_FILES} text files": lambda d: (
            copy_project(d),
            add_generated_files(d, package, N_FILES),
        ),
    }
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} cores (no .git: tree walk)")
    for label, build in cases.items():
        print(measure(label, build, rename))


if __name__ == "__main__":
    main()
