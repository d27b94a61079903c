"""A copy of this project as a new user's clone would have it, and the environment to run it.

Used by the tests that rename or change a copy and run its own checks there
(test_rename.py, test_any_variables.py) and by bench/bench_rename.py.
"""

import os
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def copy_project(dest: Path, root: Path = ROOT) -> Path:
    """Copy the files git would consider (tracked, or untracked and not ignored) to ``dest``."""
    listing = subprocess.run(
        ["git", "-C", str(root), "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        capture_output=True,
        check=True,
    ).stdout.decode()
    for rel in filter(None, listing.split("\0")):
        if os.path.lexists(root / rel):  # deleted in the working tree: not copied
            (dest / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(root / rel, dest / rel, follow_symlinks=False)
    return dest


def copy_env(repo: Path, prefect_home: Path, repository: str) -> dict[str, str]:
    """This environment for commands run in the copy ``repo``: its package first on the path,
    GitHub as ``repository``, Prefect quiet and offline with its own home."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INPUT_", "GITHUB_"))}
    env.update(
        GITHUB_REPOSITORY=repository,
        PYTHONPATH=str(repo),
        DO_NOT_TRACK="1",
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        PREFECT_LOGGING_LEVEL="WARNING",
        PREFECT_HOME=str(prefect_home),
    )
    return env
