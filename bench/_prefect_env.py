"""The environment the benchmarks run Prefect in: offline, quiet, in a scratch home (as .ci/run)."""

import os
from pathlib import Path


def offline_env(work: Path) -> dict[str, str]:
    """``os.environ`` with Prefect offline and quiet, its home under ``work``."""
    return {
        **os.environ,
        "DO_NOT_TRACK": "1",
        "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        "PREFECT_LOGGING_LEVEL": "WARNING",
        "PREFECT_HOME": str(work / "prefect"),
        "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "90",
    }
