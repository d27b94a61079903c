"""The Prefect flow. EDIT THIS FILE when your run needs other steps or parameters.

One run: validate the inputs -> evaluate the model -> build a lume-services
result -> save it to the configured target -> publish a table artifact (and, for
a scan, its plot).
Each step is a Prefect task, so the UI shows where a run failed. A scan (many
points) is evaluated in chunks (chunks.py): one task per chunk of points, never
one per point, run on a thread of this flow; with ``parallel`` set to processes or
Dask, each chunk's task hands its points to a worker process or a Dask worker and
waits. Each chunk's outputs are kept here (Prefect's result cache), so a scan run
again after an interruption computes only the chunks it lacks.

Run it locally with ``python -m my_package run`` (Prefect starts a temporary
server by itself), or deploy it to a work pool with ``prefect.yaml``.
"""

from concurrent.futures import Executor
from contextlib import nullcontext
from typing import Any, cast

import numpy as np
from prefect import flow, get_run_logger, task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NO_CACHE
from prefect.futures import as_completed
from prefect.runtime import flow_run

from my_package import chunks
from my_package.config import TargetName, load_settings
from my_package.model import MyPackageModel
from my_package.progress import ProgressArtifact, ScanProgress
from my_package.results import Result, run_metadata
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
    """Run the model on one point, or on a whole scan at once."""
    return MyPackageModel().evaluate(values)


def _chunk_cache_key(context: Any, parameters: dict[str, Any]) -> str:
    return parameters["key"]


# persist_result + cache key: a chunk's outputs are stored (PREFECT_LOCAL_STORAGE_PATH) under
# a key of its input values and the model's code, so the same chunk is never computed twice.
@task(
    persist_result=True,
    result_serializer="pickle",
    cache_key_fn=_chunk_cache_key,
    task_run_name="{label}",
)
def evaluate_chunk(
    model_class: type,
    chunk: dict[str, Value],
    scanned: list[str],
    label: str,
    start: int,
    key: str,
    pool: Executor | None = None,
) -> dict[str, Value]:
    """Run the model on one chunk of a scan, here or on ``pool`` (processes or Dask).

    ``key``, the chunk's cache key, is read by the cache.
    """
    if pool is None:
        return chunks.evaluate_chunk(model_class, chunk, scanned, label, start)
    return pool.submit(chunks.evaluate_chunk, model_class, chunk, scanned, label, start).result()


def evaluate_scan(
    values: dict[str, Value], scanned: list[str], parallel: chunks.Parallel
) -> dict[str, Value]:
    """Evaluate a scan chunk by chunk, each chunk a task on this flow's threads; in point order."""
    plan = chunks.plan(chunks.scan_length(values, scanned), parallel, MyPackageModel)
    if plan.chunks == 1:
        # One chunk: the plain task, nothing persisted (a fast numpy scan pays nothing).
        return evaluate(values)
    parts = chunks.split(values, scanned, plan)
    version = chunks.code_version(MyPackageModel)
    chunk_task = evaluate_chunk.with_options(retries=plan.retries)
    progress = ScanProgress(plan.points, plan.chunks)
    # Processes or Dask: the model runs on their workers, each chunk's Prefect task stays here
    # (on a Dask worker, Prefect's task engine rebuilt its settings for every chunk: ~0.25 s).
    workers = chunks.pool(plan, MyPackageModel) if plan.processes or plan.dask else nullcontext()
    futures = []
    artifact = ProgressArtifact("my-package-scan", plan.describe())  # the UI's progress bar
    try:
        with workers as pool, chunks.task_runner(plan) as runner, artifact:
            for i, part in enumerate(parts):
                start, _ = plan.bounds(i)
                parameters = {
                    "model_class": MyPackageModel,
                    "chunk": part,
                    "scanned": scanned,
                    "label": plan.label(i),
                    "start": start,
                    "key": chunks.chunk_key(version, part),
                    "pool": pool,
                }
                futures.append(runner.submit(chunk_task, parameters))
            position = {future: i for i, future in enumerate(futures)}
            for future in as_completed(futures):
                future.wait()  # the final state from the runner, not a read of the API
                if future.state.is_completed():
                    points = len(parts[position[future]][scanned[0]])
                    progress.advance(points, cached=future.state.name == "Cached")
                    artifact.percent = 100 * progress.points_done / plan.points
    except KeyboardInterrupt:
        # Chunks that finished are persisted: say how many, so the CLI can say how to resume.
        raise chunks.ScanInterrupted(progress.chunks_done, plan.chunks) from None
    finally:
        progress.close()
    # Every chunk has run (the good ones are kept); fail on the first failed one, by name.
    for future in futures:
        if not future.state.is_completed():
            future.result()  # raises the chunk's ChunkError
    labels = [plan.label(i) for i in range(plan.chunks)]
    return chunks.join([future.result() for future in futures], labels)


# example-only:start
@task(**ARRAY_TASK)
def fit_quad_scan(values: dict[str, Value], outputs: dict[str, Value]) -> dict[str, float]:
    """Example analysis step: emittance and Twiss parameters from a scan of quad_k1l."""
    from my_package.quad_scan import analyze

    try:
        return analyze(values, outputs)
    except ValueError as exc:  # a scan the fit cannot describe: the run still saves
        get_run_logger().warning("No quad-scan fit: %s", exc)
        return {}


# example-only:end
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


def publish_plot(result: Result, ref: ResultRef) -> None:
    """A saved scan's plot as a markdown artifact, the PNG inline (renders offline).

    Prefect 3.9's image artifact shows its URL as text under the image, a data URL
    included; its markdown artifact renders ``![..](data:image/png;base64,...)``.
    """
    import base64
    import io

    from my_package.results_cli import ResultsUsageError, figure_for

    try:
        figure = figure_for(result, unique_hash=ref.unique_hash)
    except ResultsUsageError as exc:  # e.g. a scan of three inputs: no plot, no failure
        get_run_logger().info("No plot artifact: %s", exc)
        return
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=100)
    import matplotlib.pyplot as plt

    plt.close(figure)
    png = base64.b64encode(buffer.getvalue()).decode("ascii")
    create_markdown_artifact(
        key="my-package-plot",
        markdown=f"![plot of result {ref.unique_hash}](data:image/png;base64,{png})",
        description=f"Result {ref.unique_hash} saved to {ref.target}: {ref.location}",
    )


@flow(name="my-package", persist_result=True, result_serializer="json")
def my_package_flow(
    inputs: ModelInputs = ModelInputs(),  # noqa: B008 (pydantic defaults are immutable here)
    scan: dict[str, ScanRange] | None = None,
    target: TargetName | None = None,
    parallel: chunks.Parallel = chunks.Parallel(),  # noqa: B008 (as inputs)
) -> ResultRef:
    """Evaluate the model and save the result.

    Args:
        inputs: Input values; each has its default, range and unit from variables.yml.
        scan: Inputs to scan, each {"start": ..., "stop": ..., "num": ...} by name, e.g.
            {"NAME": {"start": -1, "stop": 1, "num": 101}}; several inputs make a grid.
            A scanned input overrides its value in inputs.
        target: "filesystem" or "mongodb"; default from MY_PACKAGE_TARGET.
        parallel: How a scan is split and spread, e.g. {"workers": 4, "chunk_size": 50},
            {"processes": true, "workers": 2} or {"dask": "tcp://HOST:8786"}; unset
            fields come from MY_PACKAGE_WORKERS etc., then from the model class.

    Returns:
        Where the result went: target, location (file path or MongoDB id) and unique_hash.
    """
    values = validate(inputs, scan)
    outputs = evaluate_scan(values, list(scan), parallel) if scan else evaluate(values)
    metadata = run_metadata(MyPackageModel(), values, scan, flow_run.name)
    # example-only:start
    from my_package.quad_scan import FIT_UNITS

    fit = fit_quad_scan(values, outputs)
    outputs = {**outputs, **fit}
    metadata["units"].update({name: FIT_UNITS[name] for name in fit})
    # example-only:end
    result = Result(
        project_name=load_settings(target).project_name,
        flow_id=str(flow_run.id),
        inputs=values,
        outputs=outputs,
        metadata=metadata,
    )
    ref = save(result, target)
    try:
        publish_table(values, outputs, ref)
        if scan:
            publish_plot(result, ref)
    except Exception as exc:  # the result is saved: an artifact must not fail the run
        get_run_logger().warning("No artifact for result %s: %s", ref.unique_hash, exc)
    get_run_logger().info("Saved result %s to %s: %s", ref.unique_hash, ref.target, ref.location)
    return ref
