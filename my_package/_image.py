"""The container image that runs this package's flow (lume-services reads ``IMAGE``).

The image is built and pushed by ``.github/workflows/build_image.yml`` when a
``vX.Y.Z`` tag is pushed, tagged ``X.Y.Z`` and ``latest``. ``IMAGE`` names the
image of the installed release; a development install (an untagged commit, whose
version such as ``0.1.dev3+gabc123`` is no valid image tag and was never pushed)
names ``latest``. ``MY_PACKAGE_IMAGE`` overrides it, e.g. for another registry.

Kept import-light (standard library only): lume-services imports it on its own.
Run ``python -m my_package._image`` to print it.
"""

import os
import re
from importlib.metadata import PackageNotFoundError, version

REPOSITORY = "ghcr.io/slaclab/my-package"
DISTRIBUTION = "my-package"


def image_tag(dist_version: str | None) -> str:
    """The image tag for a package version: the version for a release, else ``latest``."""
    # A release is N(.N)* with an optional pre-release (1.2.0, 1.2.0rc1), as the
    # image workflow tags it; dev and local versions have no image of their own,
    # nor has 0.0.0 (setuptools-scm's fallback when there is no tag).
    release = re.fullmatch(r"\d+(\.\d+)*((a|b|rc)\d+)?", dist_version or "")
    if release and dist_version and dist_version != "0.0.0":
        return dist_version
    return "latest"


def _installed_version() -> str | None:
    try:
        return version(DISTRIBUTION)
    except PackageNotFoundError:  # running from a source tree that is not installed
        return None


IMAGE = os.environ.get("MY_PACKAGE_IMAGE") or f"{REPOSITORY}:{image_tag(_installed_version())}"

if __name__ == "__main__":
    print(IMAGE)
