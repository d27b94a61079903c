"""Shared pytest fixtures: real components, no fakes (README: Development)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def mongo_server() -> Iterator[tuple[str, int]]:
    """A real MongoDB wire-protocol server (SecantusDB, in memory) on 127.0.0.1.

    Yields ``(host, port)``. In-process, starts in about 0.2 s; stopped at session end.
    """
    from secantus import SecantusDBServer

    server = SecantusDBServer(host="127.0.0.1", port=0, storage_path=":memory:")
    server.start()
    try:
        yield server.host, server.port
    finally:
        server.stop()


@pytest.fixture(scope="module")
def prefect_api() -> Iterator[None]:
    """A temporary Prefect API for one test module's flow runs (8-10 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=90):
        yield


@pytest.fixture
def filesystem(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The filesystem target, writing under this test's ``tmp_path`` (also the cwd)."""
    monkeypatch.setenv("MY_PACKAGE_TARGET", "filesystem")
    monkeypatch.setenv("MY_PACKAGE_OUTPUT_DIR", str(tmp_path))
    monkeypatch.chdir(tmp_path)
    return tmp_path


@pytest.fixture
def project() -> str:
    """A fresh project name (so a fresh collection or folder) per test."""
    import uuid

    return f"proj_{uuid.uuid4().hex[:12]}"


@pytest.fixture
def mongo_settings(mongo_server: tuple[str, int], tmp_path: Path) -> Any:
    """Settings for the MongoDB target on the session's server."""
    from my_package.config import ResultsDBSettings, Settings

    host, port = mongo_server
    return Settings(
        results_db=ResultsDBSettings(host=host, port=port, database="results", timeout_ms=3000),
        target="mongodb",
        output_dir=tmp_path / "never-used",
    )


@pytest.fixture
def mongo_client(mongo_server: tuple[str, int]) -> Iterator[Any]:
    """A pymongo client of the session's server, to look at what was stored."""
    import pymongo

    client: Any = pymongo.MongoClient(*mongo_server, serverSelectionTimeoutMS=3000)
    yield client
    client.close()
