"""my_package: a LUME model packaged as a Prefect flow.

Python API::

    from my_package.model import MyPackageModel
    outputs = MyPackageModel().evaluate({"name": value, ...})  # names: files/variables.yml

The flow is ``my_package.flow.my_package_flow``. Nothing heavy is imported here,
so ``python -m my_package --help`` stays fast.
"""

import os

# Offline by default, for the CLI and for flows called from Python alike: Prefect sends
# no telemetry and its server no analytics. Opt in by exporting DO_NOT_TRACK=0 and
# PREFECT_SERVER_ANALYTICS_ENABLED=true before importing this package.
os.environ.setdefault("DO_NOT_TRACK", "1")
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")

try:
    from my_package._version import version as __version__
except ImportError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
