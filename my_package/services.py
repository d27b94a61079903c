"""Optional bridge to lume-services, for environments that have it installed.

lume-services is not on PyPI; it is installed from GitHub with the ``services``
extra (README: "lume-services"). This package never needs it: its ``Result``
already uses lume-services' fields, stored document and ``unique_hash``, and its
settings read the same ``LUME_*`` environment variables. This module converts a
result between the two classes, checking on the way that both compute the same
``unique_hash``, so a result can go to lume-services' own tools and back.

Usage::

    from my_package import services
    if services.available():
        ls_result = services.to_lume_services(result)
"""

from importlib.util import find_spec
from typing import Any

from my_package.results import Result


def available() -> bool:
    """True if lume-services can be imported here (it is never required)."""
    return find_spec("lume_services") is not None


def _lume_services_result_class() -> type:
    try:
        from lume_services.results.generic import Result as LumeServicesResult
    except ImportError as exc:
        raise ImportError(
            "lume-services is not installed; it is not on PyPI: install it with "
            "pip install 'my-package[services]' (see README, section lume-services)"
        ) from exc
    return LumeServicesResult


def _check_same_hash(ours: Result, theirs: Any) -> None:
    if theirs.unique_hash != ours.unique_hash:
        raise ValueError(
            f"lume-services computes unique_hash {theirs.unique_hash} for this result, "
            f"this package {ours.unique_hash}: the installed lume-services is not the "
            "pinned commit (see README, section lume-services)"
        )


def to_lume_services(result: Result) -> Any:
    """The same result as a ``lume_services.results.generic.Result``."""
    lume_services_result = _lume_services_result_class()(
        project_name=result.project_name,
        flow_id=result.flow_id,
        inputs=result.inputs,
        outputs=result.outputs,
        date_modified=result.date_modified,
    )
    _check_same_hash(result, lume_services_result)
    return lume_services_result


def from_lume_services(lume_services_result: Any) -> Result:
    """This package's ``Result`` from a lume-services result (or any object with its fields)."""
    result = Result(
        project_name=lume_services_result.project_name,
        flow_id=lume_services_result.flow_id,
        inputs=lume_services_result.inputs,
        outputs=lume_services_result.outputs,
        date_modified=lume_services_result.date_modified,
    )
    _check_same_hash(result, lume_services_result)
    return result
