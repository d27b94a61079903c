"""The Result record: lume-services' format and unique_hash."""

import json
from datetime import UTC, datetime

import numpy as np
import pytest
from pydantic import ValidationError

from my_package.results import (
    RESULT_TYPE,
    Result,
    ResultIntegrityError,
    json_bytes,
    numpy_default,
    to_jsonable,
)

LUME_KEYS = {
    "flow_id",
    "inputs",
    "outputs",
    "date_modified",
    "unique_hash",
    "result_type_string",
}


def test_unique_hash_check_value():
    # The check value lume-services' own Result gives for this record.
    result = Result(flow_id="local-test", inputs={"x": 1.0}, outputs={"z": 2.0})
    assert result.unique_hash == "b5047ca2716aa537e50b42b520666e6f"


def test_hash_depends_on_inputs_outputs_and_flow_id_only():
    base = Result(flow_id="f", inputs={"x": 1.0}, outputs={"z": 2.0})
    assert Result(flow_id="g", inputs={"x": 1.0}, outputs={"z": 2.0}).unique_hash != (
        base.unique_hash
    )
    assert Result(flow_id="f", inputs={"x": 1.5}, outputs={"z": 2.0}).unique_hash != (
        base.unique_hash
    )
    later = Result(
        flow_id="f",
        inputs={"x": 1.0},
        outputs={"z": 2.0},
        project_name="other",
        date_modified=datetime(2001, 1, 1, tzinfo=UTC),
    )
    assert later.unique_hash == base.unique_hash


def test_numpy_values_hash_like_plain_lists():
    plain = Result(
        flow_id="scan",
        inputs={"k": [0.5, 1.0, 1.5], "d": 2.0, "grid": [[1.0, 2.0], [3.0, 4.0]]},
        outputs={"s": [1.0, 2.0, 3.0], "n": 3},
    )
    arrays = Result(
        flow_id="scan",
        inputs={
            "k": np.array([0.5, 1.0, 1.5]),
            "d": np.float32(2.0),
            "grid": np.array([[1.0, 2.0], [3.0, 4.0]]),
        },
        outputs={"s": np.linspace(1.0, 3.0, 3), "n": np.int64(3)},
    )
    assert arrays.unique_hash == plain.unique_hash
    # A numpy scalar inside a plain list is encoded too.
    mixed = Result(flow_id="scan", inputs={"k": [np.float32(0.5), 1.0]})
    assert mixed.unique_hash == Result(flow_id="scan", inputs={"k": [0.5, 1.0]}).unique_hash


# json_bytes writes float arrays with orjson for speed; the unique_hash contract is
# json.dumps' text, so the fast path must equal it byte for byte, notation included.
_BOUNDARIES = [
    0.0, -0.0, 1.0, -1.0, 0.1, 1 / 3, 100.0, 123456789.0, 2.5e-5, 1e-7, 5e-324,
    1e-4, np.nextafter(1e-4, 0), np.nextafter(1e-4, 1), -1e-4,
    1e15, 1e16, np.nextafter(1e16, 0), 9999999999999998.0, 1e17, 1e21, 1e22, -1e16,
    1.7976931348623157e308, float("nan"), float("inf"), float("-inf"),
]  # fmt: skip


def _reference(value):
    return json.dumps(value, default=numpy_default).encode()


@pytest.mark.parametrize("seed", range(4))
def test_fast_float_arrays_equal_json_dumps_byte_for_byte(seed):
    rng = np.random.default_rng(seed)
    # Arbitrary bit patterns: every exponent, subnormals, NaN payloads, infinities.
    bits = rng.integers(0, 2**64, 20_000, dtype=np.uint64, endpoint=False).view(np.float64)
    typical = rng.standard_normal(20_000) * 10.0 ** rng.integers(-4, 17, 20_000)
    # Mostly ordinary values with a few special ones exercise the splice path; mostly
    # special ones (the random bit patterns) the plain fallback.
    mixed = np.concatenate([rng.random(5_000), np.array(_BOUNDARIES)])
    rng.shuffle(mixed)
    for values in (bits, typical, mixed, np.array(_BOUNDARIES), np.array([]), np.ones(1)):
        assert json_bytes(values) == _reference(values)


def test_fast_path_handles_views_dicts_and_other_dtypes():
    grid = np.linspace(0.0, 1.0, 12).reshape(3, 4)
    document = {
        "column": grid[:, 1],  # not C-contiguous
        "reversed": grid.ravel()[::-1],
        "float32": np.linspace(0, 1, 5, dtype=np.float32),
        "ints": np.arange(4),
        "grid": grid,
        "nested": {"x": np.array([1e-9, 2.0]), "é": 1},
        "scalar": np.float64(0.25),
    }
    assert json_bytes(document) == _reference(document)


def test_file_text_is_json_dumps_of_the_document():
    result = Result(
        flow_id="scan",
        inputs={"k": np.linspace(-2.0, 2.0, 101), "d": 2.0},
        outputs={"s": np.geomspace(1e-9, 1e20, 101)},
    )
    document = result.to_document()
    document["date_modified"] = result.date_modified.isoformat()
    assert b"".join(result.json_chunks()) == _reference(document)


def test_to_jsonable_converts_numpy_and_leaves_plain_data():
    values = [1.0, 2.0]
    converted = to_jsonable(
        {"a": np.arange(3.0), "b": np.float64(1.5), "c": {"d": np.array([[1, 2]])}, "e": values}
    )
    assert converted == {"a": [0.0, 1.0, 2.0], "b": 1.5, "c": {"d": [[1, 2]]}, "e": values}
    assert type(converted["b"]) is float
    assert type(converted["a"][0]) is float
    assert converted["e"] is values  # plain lists are not walked point by point


def test_document_has_exactly_the_lume_services_keys():
    result = Result(
        collection="proj", flow_id="f", inputs={"x": np.array([1.0, 2.0])}, outputs={"z": 3.0}
    )
    document = result.to_document()
    assert set(document) == LUME_KEYS
    assert document["inputs"] == {"x": [1.0, 2.0]}
    assert document["unique_hash"] == result.unique_hash
    assert document["result_type_string"] == "lume_services.results.generic.Result"
    assert isinstance(document["date_modified"], datetime)
    assert result.project_name == "proj"  # alias "collection" and name both accepted
    assert Result(project_name="proj", flow_id="f").project_name == "proj"


def test_defaults():
    result = Result(flow_id="f")
    assert result.project_name == "local"
    assert result.inputs == {} and result.outputs == {}
    assert result.result_type_string == RESULT_TYPE
    assert result.date_modified.tzinfo is not None
    assert abs((datetime.now(UTC) - result.date_modified).total_seconds()) < 60
    assert result.date_modified.microsecond % 1000 == 0  # MongoDB's precision
    # Naive datetimes are taken as UTC.
    naive = Result(flow_id="f", date_modified=datetime(2020, 5, 1, 12, 0))
    assert naive.date_modified == datetime(2020, 5, 1, 12, 0, tzinfo=UTC)


def test_flow_id_is_required_and_record_is_frozen():
    with pytest.raises(ValidationError, match="flow_id"):
        Result(inputs={"x": 1.0})
    result = Result(flow_id="f")
    with pytest.raises(ValidationError):
        result.flow_id = "g"


def test_from_document_round_trip_and_tamper_check():
    result = Result(flow_id="f", inputs={"x": np.array([1.0, 2.0])}, outputs={"z": 3.0})
    document = {"_id": "ignored", **result.to_document()}
    back = Result.from_document(document, "proj")
    assert back.project_name == "proj"
    assert back.inputs == {"x": [1.0, 2.0]}
    assert back.unique_hash == result.unique_hash
    assert back.date_modified == result.date_modified
    document["outputs"] = {"z": 4.0}
    with pytest.raises(ResultIntegrityError, match="was modified"):
        Result.from_document(document, "proj")
