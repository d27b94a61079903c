"""Offline by default: importing the package (as a flow called from Python does) turns off
Prefect's telemetry and its server's analytics, unless the user opted in."""

import json
import os
import subprocess
import sys

import pytest

# The package is imported first, then Prefect (no comment inside: a renamed, longer line
# must stay short enough for ruff without being split).
CHECK = """
import json, os
from my_package.flow import my_package_flow
from prefect._internal.analytics.enabled import is_telemetry_enabled
from prefect.settings import get_current_settings
print(json.dumps({
    "telemetry": is_telemetry_enabled(),
    "server_analytics": get_current_settings().server.analytics_enabled,
    "DO_NOT_TRACK": os.environ.get("DO_NOT_TRACK"),
}))
"""
CI_VARIABLES = {"CI", "GITHUB_ACTIONS", "GITLAB_CI", "BUILDKITE", "CIRCLECI", "TRAVIS"}


def probe(**env: str) -> dict:
    # Without the CI variables: Prefect turns telemetry off in CI by itself, which would
    # hide whether the package does.
    base = {k: v for k, v in os.environ.items() if k not in CI_VARIABLES | {"CI_NAME"}}
    for name in ("DO_NOT_TRACK", "PREFECT_SERVER_ANALYTICS_ENABLED"):
        base.pop(name, None)
    out = subprocess.run(
        [sys.executable, "-c", CHECK], env={**base, **env}, capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    return json.loads(out.stdout)


def test_importing_the_package_turns_telemetry_off() -> None:
    assert probe() == {"telemetry": False, "server_analytics": False, "DO_NOT_TRACK": "1"}


@pytest.mark.parametrize("value", ["0", "false"])
def test_users_can_opt_in(value: str) -> None:
    opted = probe(DO_NOT_TRACK=value, PREFECT_SERVER_ANALYTICS_ENABLED="true")
    assert opted == {"telemetry": True, "server_analytics": True, "DO_NOT_TRACK": value}
