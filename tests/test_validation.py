"""Every kind of bad input is refused with a message that names the problem.

The same cases go through the Python API (``MyPackageModel.evaluate``); test_cli.py
sends them through the command line, test_flow.py through Prefect.

Names, defaults, ranges and units are read from variables.yml, so these tests hold for
any model: inputs without a range, without a unit, read-only inputs and array outputs.
"""

import math
import re

import numpy as np
import pytest
from lume.variables import ScalarVariable
from pydantic import ValidationError

from my_package.model import MyPackageModel
from my_package.validation import (
    MAX_SCAN_POINTS,
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

ALL_INPUTS, OUTPUTS = load_variables()
# The settable scalar inputs (read-only ones keep their defaults; arrays have their own tests).
INPUTS = [var for var in ALL_INPUTS if not var.read_only and isinstance(var, ScalarVariable)]
NAMES = [var.name for var in INPUTS]
DEFAULTS = {var.name: var.default_value for var in ALL_INPUTS}
FIRST, LAST = INPUTS[0], INPUTS[-1]
UNKNOWN = max(NAMES, key=len) + "_typo"  # longer than every name, so not one of them

# Values outside a range exist only for inputs whose range is finite (usually all of them).
BOUNDED = [
    var
    for var in INPUTS
    if var.value_range is not None
    and np.isfinite(var.value_range).all()
    and var.default_validation_config == "error"
]
needs_bounds = pytest.mark.skipif(not BOUNDED, reason="no input has a finite value_range")
_SOME = BOUNDED or INPUTS  # stand-ins for the skipped cases when none is bounded
HIGH_VAR, LOW_VAR, ARRAY_VAR = _SOME[0], _SOME[-1], _SOME[len(_SOME) // 2]
needs_two = pytest.mark.skipif(len(INPUTS) < 2, reason="the model has one input")


def _above(var) -> float:
    low, high = var.value_range or (0.0, 1.0)  # (only the skipped cases see no range)
    return high + ((high - low) / 2 or 1.0)


def _below(var) -> float:
    low, high = var.value_range or (0.0, 1.0)  # (only the skipped cases see no range)
    return low - ((high - low) / 2 or 1.0)


def _outside(var, value: float, where: str = "") -> str:
    """The whole message for ``value`` outside the variable's range, unit included."""
    low, high = var.value_range
    unit = f" {var.unit}" if var.unit else ""
    return (
        f"input '{var.name}' = {value!r}{where} is outside its range "
        f"[{low!r}, {high!r}]{unit}; choose a value inside the range"
    )


def _an_int_inside(var) -> int | None:
    """An integer inside the variable's range, near its default, if the range holds one."""
    low, high = var.value_range or (-math.inf, math.inf)
    value = float(np.clip(round(var.default_value), np.ceil(low), np.floor(high)))
    return int(value) if low <= value <= high else None


# An input that takes an integer (the default, rounded, if the range allows).
INT_VAR = next((var for var in INPUTS if _an_int_inside(var) is not None), FIRST)
INT = _an_int_inside(INT_VAR)
needs_int = pytest.mark.skipif(INT is None, reason="no input range holds an integer")

# Messages as the user reads them, for the first input (type and shape errors) and for
# inputs with a finite range (range errors).
NAME = FIRST.name
NUMBER = "give a number (float or int) or a 1-D array of numbers"
BAD_INPUTS = [
    pytest.param(
        {UNKNOWN: 1.0},
        f"unknown input '{UNKNOWN}'; valid inputs are: {', '.join(v.name for v in ALL_INPUTS)}",
        id="unknown name",
    ),
    pytest.param({NAME: "1.5"}, f"input '{NAME}' is the string '1.5'; give a number", id="str"),
    pytest.param({NAME: True}, f"input '{NAME}' has value True of type bool; {NUMBER}", id="bool"),
    pytest.param({NAME: None}, f"'{NAME}' has value None of type NoneType; {NUMBER}", id="None"),
    pytest.param({NAME: 1 + 2j}, f"'{NAME}' has value (1+2j) of type complex", id="complex"),
    pytest.param({NAME: math.nan}, f"input '{NAME}' is nan; it must be a finite number", id="nan"),
    pytest.param({NAME: math.inf}, f"input '{NAME}' is inf; it must be a finite number", id="inf"),
    pytest.param({NAME: -math.inf}, f"input '{NAME}' is -inf; it must be a finite", id="-inf"),
    pytest.param({NAME: np.array([1.0, np.nan])}, f"input '{NAME}' is nan", id="nan in array"),
    pytest.param(
        {NAME: np.ones((2, 2))},
        f"input '{NAME}' has shape (2, 2); give a number or a 1-D array",
        id="2-D array",
    ),
    pytest.param(
        {NAME: []}, f"input '{NAME}' is an empty array; give at least one value", id="empty"
    ),
    pytest.param(
        {NAME: [[1.0], [1.0, 2.0]]}, f"input '{NAME}' is not a number or a 1-D array", id="ragged"
    ),
    pytest.param(
        {HIGH_VAR.name: _above(HIGH_VAR)},
        _outside(HIGH_VAR, _above(HIGH_VAR)),
        id="above range",
        marks=needs_bounds,
    ),
    pytest.param(
        {LOW_VAR.name: _below(LOW_VAR)},
        _outside(LOW_VAR, _below(LOW_VAR)),
        id="below range",
        marks=needs_bounds,
    ),
    pytest.param(
        {
            ARRAY_VAR.name: np.array(
                [DEFAULTS[ARRAY_VAR.name], _above(ARRAY_VAR), _below(ARRAY_VAR)]
            )
        },
        _outside(ARRAY_VAR, _above(ARRAY_VAR), " at index 1 (2 values outside)"),
        id="array outside range",
        marks=needs_bounds,
    ),
    pytest.param(
        {FIRST.name: [FIRST.default_value] * 2, LAST.name: [LAST.default_value] * 3},
        f"array inputs have different lengths ({FIRST.name} has 2, {LAST.name} has 3); "
        "give arrays of one length",
        id="different lengths",
        marks=needs_two,
    ),
]
# example-only:start

# The cases above build their expected text the way validation.py does; these pin the
# text itself, as a user of the example reads it.
BAD_INPUTS += [
    (
        {"q": 1.0},
        "unknown input 'q'; valid inputs are: beta_x, alpha_x, emit_x, quad_k1l, drift_length",
    ),
    (
        {"beta_x": 100.5},
        "input 'beta_x' = 100.5 is outside its range [0.1, 100.0] m; choose a value inside",
    ),
    ({"quad_k1l": -5.01}, "input 'quad_k1l' = -5.01 is outside its range [-5.0, 5.0] 1/m;"),
    (
        {"emit_x": np.array([1.0, 2.0, 5000.0])},
        "'emit_x' = 5000.0 at index 2 (1 values outside) is outside its range [0.01, 1000.0] nm",
    ),
    ({"alpha_x": 1 + 2j}, "input 'alpha_x' has value (1+2j) of type complex; give a number"),
]
# example-only:end


@pytest.mark.parametrize(("inputs", "message"), BAD_INPUTS)
def test_bad_input_is_refused_by_validation_and_model(inputs: dict, message: str) -> None:
    for call in (validate_inputs, MyPackageModel().evaluate):
        with pytest.raises(InputValidationError) as info:
            call(inputs)
        assert message in str(info.value)


def test_missing_inputs_take_defaults_as_floats() -> None:
    values = validate_inputs({})
    assert values == DEFAULTS
    assert list(values) == [var.name for var in ALL_INPUTS]
    assert all(type(values[name]) is float for name in NAMES)


@needs_int
def test_ints_become_floats() -> None:
    values = validate_inputs({INT_VAR.name: INT})
    assert values == DEFAULTS | {INT_VAR.name: INT}
    assert all(type(v) is float for v in values.values())
    array = validate_inputs({INT_VAR.name: np.full(5, INT)})[INT_VAR.name]
    assert array.dtype == np.float64
    assert array.tolist() == [float(INT)] * 5


def test_arrays_are_float64_and_scalars_broadcast() -> None:
    given = {FIRST.name: [FIRST.default_value] * 5, LAST.name: np.full(5, LAST.default_value)}
    values = validate_inputs(given)
    for var in INPUTS:
        if var.name in given:
            assert values[var.name].dtype == np.float64
            assert values[var.name].tolist() == [var.default_value] * 5
        else:
            assert type(values[var.name]) is float and values[var.name] == var.default_value
    out = MyPackageModel().evaluate(values)
    for var in OUTPUTS:  # every output has the scan's points as its first axis
        assert np.shape(out[var.name]) == (5, *getattr(var, "shape", ()))


@needs_bounds
def test_range_edges_are_inside() -> None:
    for edge in (0, 1):
        edges = {var.name: var.value_range[edge] for var in BOUNDED}
        values = validate_inputs(edges)
        assert {name: values[name] for name in edges} == edges


# example-only:start
def test_example_defaults_and_broadcast() -> None:
    defaults = {"alpha_x": 0.5, "emit_x": 4.0, "quad_k1l": 0.1, "drift_length": 5.0}
    assert validate_inputs({"beta_x": 3}) == {"beta_x": 3.0, **defaults}
    values = validate_inputs({"quad_k1l": np.arange(-2, 3), "beta_x": [1.0] * 5})
    assert values["quad_k1l"].tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    out = MyPackageModel().evaluate(values)
    for name in ("sigma_x", "beta_x_screen", "alpha_x_screen"):
        assert out[name].shape == (5,)


# example-only:end
@needs_two
def test_scan_grid_first_variable_slowest() -> None:
    grid = expand_scan(
        {
            FIRST.name: ScanRange(start=1, stop=2, num=2),
            LAST.name: ScanRange(start=0, stop=1, num=3),
        }
    )
    assert grid[FIRST.name].tolist() == [1, 1, 1, 2, 2, 2]
    assert grid[LAST.name].tolist() == [0, 0.5, 1, 0, 0.5, 1]


@needs_bounds
def test_scan_overrides_a_fixed_value_and_is_range_checked() -> None:
    var = LOW_VAR
    low, high = var.value_range
    values = collect_inputs(
        {var.name: var.default_value}, {var.name: ScanRange(start=low, stop=high, num=3)}
    )
    assert values[var.name].tolist() == np.linspace(low, high, 3).tolist()
    message = _outside(var, _above(var), " at index 1 (1 values outside)")
    with pytest.raises(InputValidationError, match=re.escape(message)):
        collect_inputs({}, {var.name: ScanRange(start=low, stop=_above(var), num=2)})


@pytest.mark.parametrize(
    ("text", "detail"),
    [
        ("1:2", " is not START:STOP:NUM, e.g. 0.1:2.0:50"),
        ("a:2:3", ": START 'a' must be a finite number"),
        ("1:inf:3", ": STOP 'inf' must be a finite number"),
        ("1:2:0", f": NUM '0' must be a whole number from 1 to {MAX_SCAN_POINTS:,}"),
        ("1:2:-5", f": NUM '-5' must be a whole number from 1 to {MAX_SCAN_POINTS:,}"),
        ("1:2:2.5", f": NUM '2.5' must be a whole number from 1 to {MAX_SCAN_POINTS:,}"),
        (f"1:2:{MAX_SCAN_POINTS + 1}", f": NUM '{MAX_SCAN_POINTS + 1}' must be a whole number"),
    ],
)
def test_scan_syntax_errors(text: str, detail: str) -> None:
    with pytest.raises(InputValidationError) as info:
        ScanRange.parse(text)
    assert str(info.value).startswith(f"scan '{text}'{detail}")


@needs_two
def test_scan_too_large_is_refused_before_allocating() -> None:
    num = math.isqrt(MAX_SCAN_POINTS) + 1  # each axis is allowed; their product is not
    scan = {n: ScanRange(start=1, stop=2, num=num) for n in (FIRST.name, LAST.name)}
    message = (
        f"the scan has {num:,} x {num:,} = {num * num:,} points, more than {MAX_SCAN_POINTS:,}"
    )
    with pytest.raises(InputValidationError, match=re.escape(message)):
        expand_scan(scan)


def test_model_inputs_schema_carries_defaults_bounds_and_units() -> None:
    schema = ModelInputs.model_json_schema()
    settable = [var for var in ALL_INPUTS if not var.read_only]  # constants are no parameter
    assert list(schema["properties"]) == [var.name for var in settable]
    for var in INPUTS:
        field = schema["properties"][var.name]
        assert field["default"] == var.default_value
        # Bounds where out-of-range values are refused; pydantic leaves out infinite ones.
        refused = var.value_range is not None and var.default_validation_config == "error"
        bounds = (field.get("minimum", -math.inf), field.get("maximum", math.inf))
        assert bounds == (tuple(var.value_range) if refused else (-math.inf, math.inf))
        assert field["description"] == (f"unit: {var.unit}" if var.unit else "dimensionless")
    assert schema["additionalProperties"] is False
    dumped = ModelInputs().model_dump()
    assert list(dumped) == [var.name for var in settable]
    assert all(dumped[var.name] == DEFAULTS[var.name] for var in INPUTS)
    with pytest.raises(ValidationError, match=re.escape(UNKNOWN)):
        ModelInputs(**{UNKNOWN: 1.0})


@pytest.mark.parametrize(
    "bad",
    [
        "1.0",
        True,
        math.nan,
        math.inf,
        pytest.param(_above(HIGH_VAR), marks=needs_bounds, id="above"),
        pytest.param(_below(HIGH_VAR), marks=needs_bounds, id="below"),
    ],
)
def test_model_inputs_refuses_what_validation_refuses(bad: object) -> None:
    with pytest.raises(ValidationError, match=re.escape(HIGH_VAR.name)):
        ModelInputs(**{HIGH_VAR.name: bad})


def test_outputs_must_be_complete_and_finite() -> None:
    good = MyPackageModel().evaluate({})
    names = [var.name for var in OUTPUTS]
    message = f"the model did not return output '{names[-1]}'; the model produced it"
    with pytest.raises(ModelOutputError, match=re.escape(message)):
        check_outputs({name: good[name] for name in names[:-1]}, OUTPUTS)
    outputs = good | {names[0]: np.full(np.shape(good[names[0]]), np.nan)}
    message = f"output '{names[0]}' is nan; it must be a finite number"
    with pytest.raises(ModelOutputError, match=re.escape(message)):
        check_outputs(outputs, OUTPUTS)
