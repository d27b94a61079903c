"""Input validation: the one path that the CLI, the Prefect flow and the Python API share.

``validate_inputs`` turns what a user gave (numbers, lists or numpy arrays, by
variable name) into what the model computes on: float64 scalars or equal-length
1-D arrays, every value finite and inside its variable's ``value_range``.
Arrays are checked with whole-array numpy operations, never point by point.

``ModelInputs`` and ``ScanRange`` are the same rules as pydantic models, so the
Prefect flow's parameter schema (UI, ``prefect deployment run --param``) shows
each input with its default, bounds and unit.
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from lume_model.variables import ScalarVariable
from pydantic import BaseModel, ConfigDict, Field, create_model

from my_package.variables import load_variables

# A guard against a scan that would not fit in memory (10^7 points x 8 variables
# x 8 bytes is 640 MB); raise it if your machine and model allow more.
MAX_SCAN_POINTS = 10_000_000

Value = float | np.ndarray


class InputValidationError(ValueError):
    """An input the model must not run on. The message names the variable and the fix."""


class ModelOutputError(RuntimeError):
    """The model produced a value outside what its output variables allow."""


def _as_array(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array of 0 or 1 dimensions, or an InputValidationError."""
    if isinstance(value, str | bytes):
        raise InputValidationError(f"input {name!r} is the string {value!r}; give a number")
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise InputValidationError(
            f"input {name!r} is not a number or a 1-D array: {exc}"
        ) from None
    if array.dtype.kind not in "iuf":
        raise InputValidationError(
            f"input {name!r} has value {value!r} of type {type(value).__name__}; "
            "give a number (float or int) or a 1-D array of numbers"
        )
    if array.ndim > 1:
        raise InputValidationError(
            f"input {name!r} has shape {array.shape}; give a number or a 1-D array"
        )
    if array.ndim == 1 and array.size == 0:
        raise InputValidationError(f"input {name!r} is an empty array; give at least one value")
    return array.astype(np.float64, copy=False)


def _check_range(name: str, array: np.ndarray, var: ScalarVariable, what: str) -> None:
    finite = np.isfinite(array)
    if not finite.all():
        bad = array[~finite].flat[0]
        raise _error(what, f"{what} {name!r} is {bad}; it must be a finite number")
    if var.value_range is None:
        return
    low, high = var.value_range
    outside = (array < low) | (array > high)
    if outside.any():
        index = int(np.flatnonzero(outside)[0]) if array.ndim else None
        bad = array.flat[index or 0]
        where = "" if index is None else f" at index {index} ({int(outside.sum())} values outside)"
        unit = f" {var.unit}" if var.unit else ""
        raise _error(
            what,
            f"{what} {name!r} = {bad:g}{where} is outside its range "
            f"[{low:g}, {high:g}]{unit}; choose a value inside the range",
        )


def _error(what: str, message: str) -> Exception:
    return InputValidationError(message) if what == "input" else ModelOutputError(message)


def validate_inputs(
    values: Mapping[str, Any], variables: Sequence[ScalarVariable] | None = None
) -> dict[str, Value]:
    """Validate model inputs and fill the ones not given from their defaults.

    Returns floats for scalar inputs and float64 arrays (all the same length)
    for scanned ones. Raises InputValidationError naming the variable, the bad
    value and what to do.
    """
    if variables is None:
        variables = load_variables()[0]
    by_name = {var.name: var for var in variables}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise InputValidationError(
            f"unknown input {', '.join(map(repr, unknown))}; valid inputs are: {', '.join(by_name)}"
        )
    validated: dict[str, Value] = {}
    lengths: dict[str, int] = {}
    for name, var in by_name.items():
        array = _as_array(name, values.get(name, var.default_value))
        _check_range(name, array, var, "input")
        if array.ndim == 1:
            lengths[name] = array.size
            validated[name] = array
        else:
            validated[name] = float(array)
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{n} has {size}" for n, size in lengths.items())
        raise InputValidationError(
            f"array inputs have different lengths ({sizes}); give arrays of one length"
        )
    return validated


def check_outputs(
    outputs: Mapping[str, Value], variables: Sequence[ScalarVariable]
) -> dict[str, Value]:
    """Check that the model returned every output, finite and inside any declared range."""
    missing = [var.name for var in variables if var.name not in outputs]
    if missing:
        raise ModelOutputError(f"the model did not return output {', '.join(map(repr, missing))}")
    for var in variables:
        _check_range(var.name, np.asarray(outputs[var.name], dtype=np.float64), var, "output")
    return dict(outputs)


class ScanRange(BaseModel):
    """Evenly spaced values from ``start`` to ``stop`` (both included), like numpy.linspace."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    start: float
    stop: float
    num: int = Field(ge=1, le=MAX_SCAN_POINTS)

    @classmethod
    def parse(cls, text: str) -> "ScanRange":
        """Parse ``START:STOP:NUM``, the command line's form."""
        parts = text.split(":")
        if len(parts) != 3:
            raise InputValidationError(f"scan {text!r} is not START:STOP:NUM, e.g. 0.1:2.0:50")
        try:
            return cls(start=float(parts[0]), stop=float(parts[1]), num=int(parts[2]))
        except ValueError as exc:
            raise InputValidationError(f"scan {text!r} is not START:STOP:NUM: {exc}") from None


def expand_scan(scan: Mapping[str, ScanRange]) -> dict[str, np.ndarray]:
    """The grid of all combinations of the scanned values, one flat array per variable.

    The first variable varies slowest (numpy's "ij" indexing).
    """
    if not scan:
        return {}
    total = int(np.prod([s.num for s in scan.values()], dtype=np.int64))
    if total > MAX_SCAN_POINTS:
        raise InputValidationError(
            f"the scan has {total:,} points, more than {MAX_SCAN_POINTS:,}; "
            "use fewer points per variable"
        )
    axes = [np.linspace(s.start, s.stop, s.num) for s in scan.values()]
    if len(axes) == 1:
        return {next(iter(scan)): axes[0]}
    grids = np.meshgrid(*axes, indexing="ij")
    return {name: grid.ravel() for name, grid in zip(scan, grids, strict=True)}


def collect_inputs(
    values: Mapping[str, Any],
    scan: Mapping[str, ScanRange] | None = None,
    variables: Sequence[ScalarVariable] | None = None,
) -> dict[str, Value]:
    """Merge fixed values and a scan (which wins for a variable in both) and validate them."""
    return validate_inputs({**values, **expand_scan(scan or {})}, variables)


def _unit_text(var: ScalarVariable) -> str:
    return f"unit: {var.unit}" if var.unit else "dimensionless"


def _inputs_model(variables: Sequence[ScalarVariable]) -> type[BaseModel]:
    """A pydantic model with one float field per input: default, bounds and unit."""
    fields: dict[str, Any] = {}
    for var in variables:
        low, high = var.value_range or (None, None)
        # strict: ints are floats, but "1.5" and True are not numbers.
        fields[var.name] = (
            float,
            Field(var.default_value, ge=low, le=high, description=_unit_text(var), strict=True),
        )
    return create_model(
        "ModelInputs",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
        __doc__="The model's input values; inputs not given keep their defaults.",
        **fields,
    )


ModelInputs = _inputs_model(load_variables()[0])
