"""The temporary Prefect server of a local ``run`` (no PREFECT_API_URL): started here, not lazily.

Prefect starts a temporary server (uvicorn, a child process) on a run's first API
call and stops it at exit. Starting it ourselves, before the flow, does two things:

- Its logs go to ``$PREFECT_HOME/temporary-server.log`` instead of the terminal.
  When a run ends, Prefect stops the server while it may still be flushing events,
  and it logs "Error flushing ... CancelledError" tracebacks that say nothing about
  the run (more often when several runs share the machine). Nothing is lost: every
  server message is in the file, with the pid of the server that wrote it.
- Several runs at once start their servers one at a time (a lock in PREFECT_HOME):
  overlapping starts compete for the CPU and can each pass Prefect's start-up timeout
  on a busy machine, and on a new home they race in the database migration.

A PREFECT_LOGGING_SETTINGS_PATH of your own is respected: then the logs are yours.
"""

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path

from my_package.errors import ServiceError

LOG_NAME = "temporary-server.log"


def _logging_config(log: Path) -> dict:
    """Prefect's own logging config, with the server's handlers pointed at ``log``."""
    import yaml
    from prefect.logging.configuration import DEFAULT_LOGGING_SETTINGS_PATH

    config = yaml.safe_load(DEFAULT_LOGGING_SETTINGS_PATH.read_text())
    config["formatters"]["server_file"] = {
        "format": "%(asctime)s | pid %(process)d | %(levelname)-7s | %(name)s - %(message)s"
    }
    config["handlers"]["server_file"] = {
        "class": "logging.FileHandler",
        "filename": str(log),
        "formatter": "server_file",
        "delay": True,  # no file until something is logged
    }
    for name, logger in config["loggers"].items():
        if "console" in logger.get("handlers", []):
            logger["handlers"] = ["server_file"]  # uvicorn, fastapi
        if name == "prefect._internal":
            logger["handlers"] = ["server_file"]
    config["root"]["handlers"] = ["server_file"]  # prefect.server.* and asyncio propagate here
    return config


def _write_atomically(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    tmp.write_text(text)
    os.replace(tmp, path)  # concurrent runs never read a half-written file


@contextlib.contextmanager
def _environment(**values: str) -> Iterator[None]:
    """``os.environ`` with ``values`` set for the block: what the server process inherits."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@contextlib.contextmanager
def _start_lock(home: Path) -> Iterator[None]:
    """One server start at a time per PREFECT_HOME (released once it answers).

    Starts that overlap compete for the CPU and can each run past Prefect's start-up
    timeout on a busy machine, and on a new home they race in the database migration.
    One at a time, each start is quick; the runs themselves still overlap.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(home / ".my_package-server.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        yield


def start_temporary_server() -> Path:
    """Start this process's temporary Prefect server, its logs in a file; that file's path."""
    import yaml
    from prefect.server.api.server import SubprocessASGIServer
    from prefect.settings import PREFECT_HOME

    home = Path(PREFECT_HOME.value()).expanduser()
    home.mkdir(parents=True, exist_ok=True)
    log = home / LOG_NAME
    environment = {}
    if not os.environ.get("PREFECT_LOGGING_SETTINGS_PATH"):
        config = home / "temporary-server-logging.yml"
        _write_atomically(config, yaml.safe_dump(_logging_config(log), sort_keys=False))
        environment["PREFECT_LOGGING_SETTINGS_PATH"] = str(config)
    try:
        with _start_lock(home), _environment(**environment):
            SubprocessASGIServer().start()
    except Exception as exc:
        raise ServiceError(
            f"Prefect's temporary server did not start ({str(exc)[:200]}); its log is {log}. "
            "Or start a server (prefect server start) and set PREFECT_API_URL"
        ) from None
    return log
