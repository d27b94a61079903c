"""Every kind of bad input is refused with a message that names the problem.

The same cases go through the Python API (``MyPackageModel.evaluate``); test_cli.py
sends them through the command line, test_flow.py through Prefect.
"""

import math

import numpy as np
import pytest

from my_package.model import MyPackageModel
from my_package.validation import (
    InputValidationError,
    ModelInputs,
    ModelOutputError,
    ScanRange,
    check_outputs,
    collect_inputs,
    expand_scan,
    validate_inputs,
)
from my_package.variables import load_variables

# (inputs, words the error must contain)
BAD_INPUTS = [
    ({"q": 1.0}, ["unknown input 'q'", "valid inputs are: beta_x, alpha_x"]),
    ({"beta_x": "1.5"}, ["'beta_x'", "string", "give a number"]),
    ({"beta_x": True}, ["'beta_x'", "bool"]),
    ({"beta_x": None}, ["'beta_x'", "NoneType"]),
    ({"beta_x": 1 + 2j}, ["'beta_x'", "complex"]),
    ({"beta_x": math.nan}, ["'beta_x'", "nan", "finite"]),
    ({"beta_x": math.inf}, ["'beta_x'", "inf", "finite"]),
    ({"beta_x": np.array([1.0, np.nan])}, ["'beta_x'", "nan"]),
    ({"beta_x": np.ones((2, 2))}, ["'beta_x'", "shape (2, 2)"]),
    ({"beta_x": []}, ["'beta_x'", "empty"]),
    ({"beta_x": [[1.0], [1.0, 2.0]]}, ["'beta_x'", "not a number or a 1-D array"]),
    ({"beta_x": 100.5}, ["'beta_x' = 100.5", "[0.1, 100] m"]),
    ({"quad_k1l": -5.01}, ["'quad_k1l' = -5.01", "[-5, 5] 1/m"]),
    ({"emit_x": np.array([1.0, 2.0, 5000.0])}, ["'emit_x' = 5000 at index 2", "[0.01, 1000]"]),
    ({"beta_x": [1.0, 2.0], "alpha_x": [0.0, 1.0, 2.0]}, ["different lengths", "beta_x has 2"]),
]


@pytest.mark.parametrize(("inputs", "words"), BAD_INPUTS, ids=[str(c[0])[:40] for c in BAD_INPUTS])
def test_bad_input_is_refused_by_validation_and_model(inputs: dict, words: list[str]) -> None:
    for call in (validate_inputs, MyPackageModel().evaluate):
        with pytest.raises(InputValidationError) as info:
            call(inputs)
        for word in words:
            assert word in str(info.value)


def test_missing_inputs_take_defaults_and_ints_become_floats() -> None:
    values = validate_inputs({"beta_x": 3})
    assert values == {
        "beta_x": 3.0,
        "alpha_x": 0.5,
        "emit_x": 4.0,
        "quad_k1l": 0.1,
        "drift_length": 5.0,
    }
    assert all(type(v) is float for v in values.values())


def test_arrays_are_float64_and_scalars_broadcast() -> None:
    values = validate_inputs({"quad_k1l": np.arange(-2, 3), "beta_x": [1.0] * 5})
    assert values["quad_k1l"].dtype == np.float64
    assert values["quad_k1l"].tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert values["emit_x"] == 4.0
    out = MyPackageModel().evaluate(values)
    assert out["sigma_x"].shape == (5,)


def test_range_edges_are_inside() -> None:
    assert validate_inputs({"beta_x": 0.1, "alpha_x": 20.0})["alpha_x"] == 20.0


def test_scan_grid_first_variable_slowest() -> None:
    grid = expand_scan(
        {"beta_x": ScanRange(start=1, stop=2, num=2), "quad_k1l": ScanRange(start=0, stop=1, num=3)}
    )
    assert grid["beta_x"].tolist() == [1, 1, 1, 2, 2, 2]
    assert grid["quad_k1l"].tolist() == [0, 0.5, 1, 0, 0.5, 1]


def test_scan_overrides_a_fixed_value_and_is_range_checked() -> None:
    values = collect_inputs({"quad_k1l": 0.3}, {"quad_k1l": ScanRange(start=-1, stop=1, num=3)})
    assert values["quad_k1l"].tolist() == [-1.0, 0.0, 1.0]
    with pytest.raises(InputValidationError, match="'quad_k1l' = 6 at index 2"):
        collect_inputs({}, {"quad_k1l": ScanRange(start=4, stop=6, num=3)})


@pytest.mark.parametrize(
    ("text", "words"),
    [("1:2", "not START:STOP:NUM"), ("a:2:3", "not START:STOP:NUM"), ("1:2:0", "greater than")],
)
def test_scan_syntax_errors(text: str, words: str) -> None:
    with pytest.raises((InputValidationError, ValueError), match=words):
        ScanRange.parse(text)


def test_scan_too_large_is_refused_before_allocating() -> None:
    scan = {n: ScanRange(start=1, stop=2, num=10_000) for n in ("beta_x", "alpha_x")}
    with pytest.raises(InputValidationError, match="100,000,000 points"):
        expand_scan(scan)


def test_model_inputs_schema_carries_defaults_bounds_and_units() -> None:
    schema = ModelInputs.model_json_schema()
    for var in load_variables()[0]:
        field = schema["properties"][var.name]
        assert field["default"] == var.default_value
        assert (field["minimum"], field["maximum"]) == tuple(var.value_range)
        assert field["description"] == (f"unit: {var.unit}" if var.unit else "dimensionless")
    assert schema["additionalProperties"] is False


@pytest.mark.parametrize("bad", ["1.0", True, math.nan, 1e9])
def test_model_inputs_refuses_what_validation_refuses(bad: object) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="beta_x"):
        ModelInputs(beta_x=bad)


def test_outputs_must_be_complete_and_finite() -> None:
    outputs = load_variables()[1]
    with pytest.raises(ModelOutputError, match="did not return output 'alpha_x_screen'"):
        check_outputs({"sigma_x": 1.0, "beta_x_screen": 1.0}, outputs)
    with pytest.raises(ModelOutputError, match="'sigma_x' is nan"):
        check_outputs(
            {"sigma_x": np.array([1.0, np.nan]), "beta_x_screen": 1.0, "alpha_x_screen": 0.0},
            outputs,
        )
