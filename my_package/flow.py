"""The Prefect flow. EDIT THIS FILE when your run needs other steps or parameters.

One run: validate the inputs -> evaluate the model -> build a lume-services
result -> save it to the configured target -> publish a table artifact.
Each step is a Prefect task, so the UI shows where a run failed. A scan (many
points) is one array through each task, never one task per point.

Run it locally with ``python -m my_package run`` (Prefect starts a temporary
server by itself), or deploy it to a work pool with ``prefect.yaml``.
"""

from typing import Any, cast

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.runtime import flow_run

from my_package.config import TargetName, load_settings
from my_package.model import MyPackageModel
from my_package.results import Result
from my_package.targets import ResultRef, is_transient, save_result
from my_package.validation import (
    WARNINGS_KEY,
    ModelInputs,
    ScanRange,
    Value,
    collect_inputs,
    scan_points,
)
from my_package.variables import load_variables

# Scans pass large arrays between tasks: no cache keys (they would hash every
# array) and no persisted task results (the saved Result is the record).
ARRAY_TASK: dict[str, Any] = {"cache_policy": NO_CACHE, "persist_result": False}
ARTIFACT_ROWS = 50  # a scan's table artifact shows its first rows only


@task(**ARRAY_TASK)
def validate(inputs: ModelInputs, scan: dict[str, ScanRange] | None) -> dict[str, Value]:
    """Expand the scan and check every input against variables.yml."""
    return collect_inputs(inputs.model_dump(), scan)


@task(**ARRAY_TASK)
def evaluate(values: dict[str, Value]) -> dict[str, Value]:
    """Run the model on one point or on a whole scan at once."""
    return MyPackageModel().evaluate(values)


def _retry_if_transient(task: Any, task_run: Any, state: Any) -> bool:
    # Retry a lost connection, not a result that can never be stored.
    return is_transient(state.result(raise_on_failure=False))


@task(retries=2, retry_delay_seconds=[1, 5], retry_condition_fn=_retry_if_transient, **ARRAY_TASK)
def save(result: Result, target: TargetName | None) -> ResultRef:
    """Save the result; saving the same result again returns the stored one."""
    # Settings are read here, not passed in, so no password is ever a task parameter.
    return save_result(result, load_settings(target), target)


def _cell(value: Any, index: int | None) -> float | str:
    """A number as it is; an array (ND variable) as its shape and min .. max."""
    array = np.asarray(value if index is None else value[index])
    if array.ndim == 0:
        return array.item()
    shape = "x".join(map(str, array.shape))
    return f"{shape} array, {array.min():.6g} .. {array.max():.6g}"


def publish_table(values: dict[str, Value], outputs: dict[str, Value], ref: ResultRef) -> None:
    """A table artifact of inputs and outputs, shown on the run's page in the UI."""
    inputs, output_variables = load_variables()
    points = scan_points(values, inputs)
    indices = [None] if points is None else range(min(points, ARTIFACT_ROWS))
    # A column has one entry per point if it has more axes than one point of it.
    columns = {**values, **{k: v for k, v in outputs.items() if k != WARNINGS_KEY}}
    point_ndim = {var.name: len(getattr(var, "shape", ())) for var in inputs + output_variables}
    per_point = {name: np.ndim(v) > point_ndim.get(name, 0) for name, v in columns.items()}
    rows = [
        {name: _cell(v, i if per_point[name] else None) for name, v in columns.items()}
        for i in indices
    ]
    shown = "" if (points or 1) <= ARTIFACT_ROWS else f" (first {ARTIFACT_ROWS} of {points} points)"
    notes = cast(list[str], outputs.get(WARNINGS_KEY, []))
    warned = "; warnings: " + "; ".join(notes) if notes else ""
    create_table_artifact(
        key="my-package-result",
        table=rows,
        description=f"Result {ref.unique_hash} saved to {ref.target}: {ref.location}"
        + shown
        + warned,
    )


@flow(name="my-package", persist_result=True, result_serializer="json")
def my_package_flow(
    inputs: ModelInputs = ModelInputs(),  # noqa: B008 (pydantic defaults are immutable here)
    scan: dict[str, ScanRange] | None = None,
    target: TargetName | None = None,
) -> ResultRef:
    """Evaluate the model and save the result.

    Args:
        inputs: Input values; each has its default, range and unit from variables.yml.
        scan: Inputs to scan, each {"start": ..., "stop": ..., "num": ...} by name, e.g.
            {"NAME": {"start": -1, "stop": 1, "num": 101}}; several inputs make a grid.
            A scanned input overrides its value in inputs.
        target: "filesystem" or "mongodb"; default from MY_PACKAGE_TARGET.

    Returns:
        Where the result went: target, location (file path or MongoDB id) and unique_hash.
    """
    values = validate(inputs, scan)
    outputs = evaluate(values)
    result = Result(
        project_name=load_settings(target).project_name,
        flow_id=str(flow_run.id),
        inputs=values,
        outputs=outputs,
    )
    ref = save(result, target)
    try:
        publish_table(values, outputs, ref)
    except Exception as exc:  # the result is saved: a table must not fail the run
        get_run_logger().warning("No table artifact for result %s: %s", ref.unique_hash, exc)
    get_run_logger().info("Saved result %s to %s: %s", ref.unique_hash, ref.target, ref.location)
    return ref
