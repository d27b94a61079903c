"""Pre-flight checks: everything a run needs, checked in about a second, before Prefect starts.

``run`` and ``evaluate`` call :func:`check` after the inputs are validated: the
settings, the chosen target (an output directory that can be created and written,
or a MongoDB server that answers within its timeout) and, for ``run``, the Prefect
server that ``PREFECT_API_URL`` names. Each failure is a UserError (exit 2: a
setting to fix) or a ServiceError (exit 1: a service that does not answer) whose
message names the variable or flag, its value and the fix. Nothing here writes a
file or imports Prefect.
"""

import os
import socket
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from my_package.config import Settings, load_settings
from my_package.errors import ServiceError, UserError

PREFECT_API_TIMEOUT_S = 3.0


def check_output_dir(directory: Path, source: str) -> None:
    """``directory`` can be created and written; checked without creating anything.

    ``source`` names where the value came from (``--output-dir`` or the variable).
    """
    shown = f"{source}={str(directory)!r}"
    existing = directory.absolute()
    try:
        while not existing.exists():  # the nearest ancestor that exists
            existing = existing.parent
        is_dir = existing.is_dir()
    except OSError as exc:
        raise UserError(
            f"{shown}: cannot look at {existing} ({exc.strerror}); "
            "choose a directory you can read and write"
        ) from None
    if not is_dir:
        raise UserError(f"{shown}: {existing} is a file, not a directory; choose another one")
    try:
        # An unnamed temporary file (O_TMPFILE where available): the directory is
        # proved writable and nothing is left behind, even if this process is killed.
        with tempfile.TemporaryFile(dir=existing):
            pass
    except OSError as exc:
        raise UserError(
            f"{shown}: cannot write in {existing} ({exc.strerror}); "
            "choose a writable directory, or use --target mongodb"
        ) from None


def check_mongodb(settings: Settings) -> None:
    """The results database answers a ping (and accepts the credentials) within its timeout."""
    db = settings.results_db
    if "://" not in db.host and "," not in db.host:
        # A plain TCP connect first: a refused port fails in milliseconds, not after
        # pymongo's server selection timeout, and says so in plain words.
        try:
            socket.create_connection((db.host, db.port), timeout=db.timeout_ms / 1000).close()
        except OSError as exc:
            reason = exc.strerror or type(exc).__name__
            raise ServiceError(
                f"MongoDB at {db.host}:{db.port} does not answer ({reason}); start it, or set "
                "LUME_RESULTS_DB__HOST / LUME_RESULTS_DB__PORT to a running server, "
                "or use --target filesystem"
            ) from None
    from my_package.targets import MongoTarget, TargetError  # pymongo: only past the probe

    try:
        with MongoTarget(db) as mongo:
            mongo.ping()
    except TargetError as exc:
        raise ServiceError(str(exc)) from None


def check_prefect_api(url: str) -> None:
    """The Prefect server at ``url`` (PREFECT_API_URL) answers HTTP at all."""
    parts = urllib.parse.urlsplit(url)
    # Never echo credentials a URL may carry (user:password@host).
    shown_url = urllib.parse.urlunsplit(parts._replace(netloc=parts.netloc.rpartition("@")[2]))
    fix = (
        "start that server (prefect server start), or unset PREFECT_API_URL "
        "to run with a temporary local one"
    )
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise UserError(
            f"PREFECT_API_URL={shown_url!r} is not an http(s) URL, "
            "e.g. http://127.0.0.1:4200/api; fix it or unset it"
        )
    try:
        health = f"{url.rstrip('/')}/health"  # the scheme is checked above: http(s) only
        urllib.request.urlopen(health, timeout=PREFECT_API_TIMEOUT_S).close()  # noqa: S310
    except urllib.error.HTTPError:
        return  # it answered; authentication and paths are Prefect's to report
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise ServiceError(
            f"PREFECT_API_URL={shown_url} does not answer within "
            f"{PREFECT_API_TIMEOUT_S:g} s ({reason}); {fix}"
        ) from None


def check(target: str | None, output_dir: str | None, *, prefect: bool = False) -> Settings:
    """Check the settings and the target (and the Prefect API for ``run``); the settings.

    ``target`` and ``output_dir`` are the command line's flags (None: not given).
    """
    settings = load_settings(target, output_dir)
    if settings.target == "filesystem":
        source = "--output-dir" if output_dir is not None else "MY_PACKAGE_OUTPUT_DIR"
        check_output_dir(settings.output_dir, source)
    else:
        check_mongodb(settings)
    url = os.environ.get("PREFECT_API_URL")
    if prefect and url:
        check_prefect_api(url)
    return settings
