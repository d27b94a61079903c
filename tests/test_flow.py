"""The Prefect flow, run through Prefect (test harness: a real temporary API and database).

Variable names, defaults and ranges are read from variables.yml, so these tests hold for
any model.
"""

import json
import re
from pathlib import Path

import numpy as np
import pytest
from pymongo import MongoClient

from my_package.config import Settings
from my_package.model import MyPackageModel
from my_package.targets import TargetError, load_result
from my_package.validation import ModelInputs, ScanRange
from my_package.variables import is_nd, load_variables

ALL_INPUTS, OUTPUTS = load_variables()
INPUTS = [var for var in ALL_INPUTS if not var.read_only and not is_nd(var)]  # settable scalars
FIRST, LAST = INPUTS[0], INPUTS[-1]  # the scanned inputs
ND_OUTPUTS = [var for var in OUTPUTS if is_nd(var)]
needs_nd = pytest.mark.skipif(not ND_OUTPUTS, reason="the model has no array output")
needs_range = pytest.mark.skipif(FIRST.value_range is None, reason="no value_range")


def _range(var) -> tuple[float, float]:
    """The variable's range, or one around its default for an input without a range."""
    return var.value_range or (var.default_value - 1.0, var.default_value + 1.0)


def _inside(var, fraction: float) -> float:
    """A value at ``fraction`` of the way through the variable's range."""
    low, high = _range(var)
    return low + fraction * (high - low)


@pytest.fixture
def mongodb(mongo_server: tuple[str, int], monkeypatch: pytest.MonkeyPatch) -> MongoClient:
    host, port = mongo_server
    monkeypatch.setenv("MY_PACKAGE_TARGET", "mongodb")
    monkeypatch.setenv("LUME_RESULTS_DB__HOST", host)
    monkeypatch.setenv("LUME_RESULTS_DB__PORT", str(port))
    monkeypatch.setenv("LUME_RESULTS_DB__DATABASE", "flow_tests")
    client = MongoClient(host, port)
    yield client
    client.drop_database("flow_tests")
    client.close()


def _flow():
    from my_package.flow import my_package_flow

    return my_package_flow


def _assert_outputs_equal(saved: dict, expected: dict) -> None:
    assert set(saved) == {var.name for var in OUTPUTS}
    for name, value in expected.items():
        assert np.allclose(saved[name], value), name


def test_one_point_to_filesystem(prefect_api, filesystem: Path) -> None:
    value = _inside(FIRST, 0.25)
    ref = _flow()(inputs=ModelInputs(**{FIRST.name: value}))
    assert ref.target == "filesystem"
    assert Path(ref.location).parent == filesystem / "my_package"
    result = load_result(ref)
    _assert_outputs_equal(result.outputs, MyPackageModel().evaluate({FIRST.name: value}))
    assert result.inputs[FIRST.name] == value
    for var in INPUTS[1:]:
        assert result.inputs[var.name] == var.default_value  # defaults filled in
    for var in ND_OUTPUTS:  # arrays come back as arrays of their declared shape and dtype
        assert result.outputs[var.name].shape == tuple(var.shape)
        assert result.outputs[var.name].dtype == var.dtype
    assert result.unique_hash == ref.unique_hash
    assert len(result.flow_id) == 36  # the Prefect flow run id (a UUID)


# example-only:start
def test_example_physics_through_the_flow(prefect_api, filesystem: Path) -> None:
    # A thin quad of focal length 1/k1l = 5 m, then a 5 m drift: beta 10 m -> 2.5 m at the
    # screen, so sigma = sqrt(4 nm * 2.5 m) = 0.1 mm (worked by hand in test_model.py).
    ref = _flow()(inputs=ModelInputs(quad_k1l=0.2, alpha_x=0.0, beta_x=10.0, emit_x=4.0))
    result = load_result(ref)
    assert result.outputs["sigma_x"] == pytest.approx(0.1)
    assert result.inputs["drift_length"] == 5.0


# example-only:end
def test_scan_to_filesystem_is_one_result(prefect_api, filesystem: Path) -> None:
    low, high = _range(FIRST)
    ref = _flow()(scan={FIRST.name: ScanRange(start=low, stop=high, num=201)})
    result = load_result(ref)
    points = np.linspace(low, high, 201)
    _assert_outputs_equal(result.outputs, MyPackageModel().evaluate({FIRST.name: points}))
    assert result.inputs[FIRST.name] == points.tolist()
    assert list(filesystem.rglob("*.json")) == [Path(ref.location)]


def test_one_point_and_scan_to_mongodb(prefect_api, mongodb: MongoClient) -> None:
    ref = _flow()(inputs=ModelInputs(**{FIRST.name: _inside(FIRST, 0.75)}))
    start, stop = _inside(LAST, 0.1), _inside(LAST, 0.9)
    scan_ref = _flow()(scan={LAST.name: ScanRange(start=start, stop=stop, num=10)})
    assert ref.target == scan_ref.target == "mongodb"
    collection = mongodb["flow_tests"]["my_package"]
    assert collection.count_documents({}) == 2
    document = collection.find_one({"unique_hash": scan_ref.unique_hash})
    assert str(document["_id"]) == scan_ref.location
    assert document["inputs"][LAST.name] == np.linspace(start, stop, 10).tolist()
    expected = MyPackageModel().evaluate({FIRST.name: _inside(FIRST, 0.75)})
    _assert_outputs_equal(load_result(ref, Settings()).outputs, expected)
    # example-only:start
    example = _flow()(inputs=ModelInputs(quad_k1l=0.2))
    assert load_result(example, Settings()).outputs["beta_x_screen"] == pytest.approx(3.125)
    # example-only:end


@needs_range
def test_bad_input_fails_the_run_and_writes_nothing(prefect_api, filesystem: Path) -> None:
    from prefect.exceptions import ParameterTypeError

    from my_package.validation import InputValidationError

    low, high = FIRST.value_range
    # Prefect checks the parameters against the schema before the run starts...
    with pytest.raises(ParameterTypeError, match=FIRST.name):
        _flow()(inputs={FIRST.name: high + (high - low)})
    # ...and the validate task checks what the schema cannot: a scan's values.
    beyond = high + (high - low)
    with pytest.raises(
        InputValidationError, match=re.escape(f"'{FIRST.name}' = {beyond!r} at index 2")
    ):
        _flow()(scan={FIRST.name: ScanRange(start=low, stop=beyond, num=3)})
    assert not any(filesystem.iterdir())


@pytest.fixture
def quick_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    """The save task's retries, without its 1 s + 5 s waits (the flow looks `save` up per run)."""
    import my_package.flow as flow_module

    monkeypatch.setattr(flow_module, "save", flow_module.save.with_options(retry_delay_seconds=0))


def _save_attempts(state) -> int:
    """How many times Prefect ran the save task of the flow run behind ``state``.

    Prefect 3 records task runs from the events the flow run emits, so the server may
    store the save task's last state a moment after the flow run has finished (CI under
    load saw no save task run at all right after the run). Wait for it to be recorded in a
    final state rather than read a half-recorded one.
    """
    import time

    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

    flow_run = FlowRunFilter(id=FlowRunFilterId(any_=[state.state_details.flow_run_id]))
    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while True:
            task_runs = client.read_task_runs(flow_run_filter=flow_run)
            save = [run for run in task_runs if run.name.startswith("save")]
            if save and save[0].state is not None and save[0].state.is_final():
                return save[0].run_count
            if time.monotonic() > deadline:
                raise AssertionError(f"the save task run was not recorded as finished: {save}")
            time.sleep(0.2)


def test_down_database_fails_the_run_with_the_host(prefect_api, quick_retries, monkeypatch) -> None:
    monkeypatch.setenv("MY_PACKAGE_TARGET", "mongodb")
    monkeypatch.setenv("LUME_RESULTS_DB__HOST", "127.0.0.1")
    monkeypatch.setenv("LUME_RESULTS_DB__PORT", "9")  # discard port: nothing listens
    monkeypatch.setenv("LUME_RESULTS_DB__PASSWORD", "s3cret-pw")
    monkeypatch.setenv("LUME_RESULTS_DB__TIMEOUT_MS", "300")
    state = _flow()(return_state=True)
    assert state.is_failed()
    with pytest.raises(TargetError, match=r"127\.0\.0\.1:9") as info:
        state.result()
    assert "s3cret-pw" not in str(info.value)
    assert _save_attempts(state) == 3  # a lost connection is retried twice


def test_a_result_that_cannot_be_stored_is_not_retried(
    prefect_api, quick_retries, tmp_path: Path, monkeypatch
) -> None:
    blocker = tmp_path / "results"
    blocker.write_text("a file where the output directory should be")
    monkeypatch.setenv("MY_PACKAGE_TARGET", "filesystem")
    monkeypatch.setenv("MY_PACKAGE_OUTPUT_DIR", str(blocker))
    state = _flow()(return_state=True)
    with pytest.raises(TargetError, match="results"):
        state.result()
    assert _save_attempts(state) == 1
    assert blocker.read_text().startswith("a file")


def test_flow_publishes_a_table_artifact(prefect_api, filesystem: Path) -> None:
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

    low, high = _range(FIRST)
    ref = _flow()(scan={FIRST.name: ScanRange(start=low, stop=high, num=60)})
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["my-package-result"]))
        )
    latest = max(artifacts, key=lambda a: a.created)
    assert latest.type == "table"
    assert ref.unique_hash in latest.description
    assert "first 50 of 60 points" in latest.description
    rows = json.loads(latest.data) if isinstance(latest.data, str) else latest.data
    assert len(rows) == 50
    for var in OUTPUTS:  # numbers as they are, arrays summarized as shape and min .. max
        cell = rows[0][var.name]
        if is_nd(var):
            assert cell.startswith(f"{'x'.join(map(str, var.shape))} array, ") and " .. " in cell
        else:
            assert isinstance(cell, float)


@needs_nd
def test_array_outputs_through_the_flow_and_both_targets(
    prefect_api, filesystem: Path, mongodb: MongoClient
) -> None:
    # A scan of N: every array output is (N, *shape), stored as nested lists (lume-services'
    # format) and read back as arrays of the declared dtype, from either target.
    low, high = _range(FIRST)
    scan = {FIRST.name: ScanRange(start=low, stop=high, num=7)}
    expected = MyPackageModel().evaluate({FIRST.name: np.linspace(low, high, 7)})
    for target in ("filesystem", "mongodb"):
        ref = _flow()(scan=scan, target=target)
        result = load_result(ref, Settings())
        assert result.unique_hash == ref.unique_hash
        for var in ND_OUTPUTS:
            saved = result.outputs[var.name]
            assert saved.shape == (7, *var.shape) and saved.dtype == var.dtype
            assert np.array_equal(saved, expected[var.name])
    document = mongodb["flow_tests"]["my_package"].find_one({"unique_hash": ref.unique_hash})
    assert isinstance(document["outputs"][ND_OUTPUTS[0].name][0], list)


def test_a_failing_table_artifact_does_not_fail_a_saved_run(
    prefect_api, filesystem: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Anything after the save must not turn a stored result into a FAILED run.
    import my_package.flow as flow_module

    def broken_artifact(**kwargs: object) -> None:
        raise RuntimeError("artifact storage is down")

    monkeypatch.setattr(flow_module, "create_table_artifact", broken_artifact)
    state = _flow()(return_state=True)
    assert state.is_completed()
    assert Path(state.result().location).exists()
