"""Shared pytest fixtures: real components, no fakes (README: Development)."""

from collections.abc import Iterator

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
