"""Input and output validation: the one path that the CLI, the Prefect flow and the API share.

``validate_inputs`` turns what a user gave (numbers, lists or numpy arrays, by
variable name) into what the model computes on: for a scalar input a float (one
point) or a 1-D float64 array (a scan of N points); for an array input (NDVariable)
an array of its declared shape, or (N, *shape) for a scan. Every value is finite,
of its declared dtype and, unless its variable says ``default_validation_config:
warn`` or ``none``, inside its ``value_range``. ``check_outputs`` holds the model's
outputs to the same rules. Arrays are checked with whole-array numpy operations,
never point by point.

``ModelInputs`` and ``ScanRange`` are the same rules as pydantic models, so the
Prefect flow's parameter schema (UI, ``prefect deployment run --param``) shows
each input with its default, bounds and unit.
"""

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

import numpy as np
from lume.variables import EnumVariable, IntVariable, NDVariable, ScalarVariable, Variable
from pydantic import BaseModel, ConfigDict, Field, create_model

from my_package.errors import InputValidationError
from my_package.scan_text import MAX_SCAN_POINTS, check_grid_size, parse_scan
from my_package.variables import load_variables

# The same guard as MAX_SCAN_POINTS (scan_text.py) for what a scan returns: points x values
# per point (an NDVariable output counts its size). 10^8 float64 values are 800 MB of
# arrays and about 2 GB of saved JSON.
MAX_SCAN_VALUES = 100_000_000
# The outputs' key for the warnings of `default_validation_config: warn` variables: saved
# with the result (a leading underscore: no variable can have this name).
WARNINGS_KEY = "_warnings"

Value = float | int | np.ndarray

log = logging.getLogger(__name__)


class ModelOutputError(RuntimeError):
    """The model produced a value outside what its output variables allow."""


def _number(value: Any) -> str:
    """A number at full precision: the shortest text that reads back as the same float."""
    return repr(value.item() if isinstance(value, np.generic) else value)


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


def _as_nd(name: str, value: Any, var: NDVariable) -> np.ndarray:
    """An array input as its declared dtype: shape ``var.shape``, or (N, *shape) for a scan."""
    try:
        array = np.asarray(value)
    except ValueError as exc:  # ragged nested lists
        raise InputValidationError(f"input {name!r} is not an array: {exc}") from None
    shape = tuple(var.shape)
    if array.shape != shape and (array.ndim != len(shape) + 1 or array.shape[1:] != shape):
        raise InputValidationError(
            f"input {name!r} has shape {array.shape}; give an array of shape {shape}, "
            f"or (N, {', '.join(map(str, shape))}) for a scan of N points"
        )
    if array.dtype.kind not in "biuf" or not np.can_cast(array.dtype, var.dtype, "same_kind"):
        raise InputValidationError(
            f"input {name!r} has dtype {array.dtype}; give numbers that fit {var.dtype}"
        )
    return array.astype(var.dtype, copy=False)


def _check_values(
    name: str, array: np.ndarray, var: Variable, what: str, warnings: list[str] | None
) -> None:
    """Finite, and inside the variable's range unless its validation config says otherwise."""
    if array.dtype.kind == "f":
        finite = np.isfinite(array)
        if not finite.all():
            bad = array[~finite].flat[0]
            raise _error(what, f"{what} {name!r} is {bad}; it must be a finite number")
    config = var.default_validation_config
    value_range = getattr(var, "value_range", None)
    if value_range is None or config == "none":
        return
    low, high = value_range
    outside = (array < low) | (array > high)
    if not outside.any():
        return
    index = int(np.flatnonzero(outside)[0]) if array.ndim else None
    bad = array.flat[index or 0]
    where = "" if index is None else f" at index {index} ({int(outside.sum())} values outside)"
    unit_name = getattr(var, "unit", None)  # scalar and ND variables have one
    unit = f" {unit_name}" if unit_name else ""
    fix = "choose a value inside the range" if what == "input" else _FROM_MODEL
    message = (
        f"{what} {name!r} = {_number(bad)}{where} is outside its range "
        f"[{_number(low)}, {_number(high)}]{unit}"
    )
    if config == "warn":
        message += " (default_validation_config: warn, so the model runs)"
        log.warning("%s", message)
        if warnings is not None:
            warnings.append(message)
        return
    raise _error(what, f"{message}; {fix}")


_FROM_MODEL = "the model produced it: check _evaluate in model.py"


def _error(what: str, message: str) -> Exception:
    return InputValidationError(message) if what == "input" else ModelOutputError(message)


def _point_count(array: np.ndarray, var: Variable) -> int | None:
    """N for a scan of N points, None for one point."""
    point_ndim = len(var.shape) if isinstance(var, NDVariable) else 0
    return array.shape[0] if array.ndim > point_ndim else None


def _validate_one(name: str, value: Any, var: Variable, warnings: list[str] | None) -> Value:
    if isinstance(var, NDVariable):
        array = _as_nd(name, value, var)
    elif isinstance(var, ScalarVariable):
        array = _as_array(name, value)
        if isinstance(var, IntVariable):
            if not (array == np.round(array)).all():
                bad = array[array != np.round(array)].flat[0]
                raise InputValidationError(
                    f"input {name!r} is {_number(bad)}; it takes whole numbers"
                )
            array = array.astype(np.int64)
    else:  # bool, str, enum, particle group: one value, checked by lume-base itself
        try:
            var.validate_value(value)
        except (TypeError, ValueError) as exc:
            raise InputValidationError(f"input {name!r}: {exc}") from None
        return value
    _check_values(name, array, var, "input", warnings)
    if array.ndim == 0:
        return array.item()
    return array


def validate_inputs(
    values: Mapping[str, Any],
    variables: Sequence[Variable] | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Value]:
    """Validate model inputs and fill the ones not given from their defaults.

    Returns floats (ints for IntVariable) for scalar inputs of one point, and arrays
    with a first axis of one length N for a scan. Read-only inputs cannot be given.
    Raises InputValidationError naming the variable, the bad value and what to do;
    the messages of ``warn`` variables are appended to ``warnings``.
    """
    if variables is None:
        variables = load_variables()[0]
    by_name = {var.name: var for var in variables}
    unknown = sorted(set(values) - set(by_name))
    if unknown:
        raise InputValidationError(
            f"unknown input {', '.join(map(repr, unknown))}; valid inputs are: {', '.join(by_name)}"
        )
    # A read-only input may be given only as its own default (validated inputs round-trip).
    fixed = [
        name
        for name in values
        if by_name[name].read_only and not _is_default(values[name], by_name[name])
    ]
    if fixed:
        var = by_name[fixed[0]]
        raise InputValidationError(
            f"input {var.name!r} is read-only (read_only or is_constant in variables.yml) and "
            f"keeps its default {_default_text(var)}; do not set it"
        )
    validated: dict[str, Value] = {}
    lengths: dict[str, int] = {}
    for name, var in by_name.items():
        default = cast(Any, var).default_value  # every input class has one
        value = _validate_one(name, values.get(name, default), var, warnings)
        if isinstance(value, np.ndarray):
            points = _point_count(value, var)
            if points is not None:
                if points == 0:
                    raise InputValidationError(
                        f"input {name!r} is an empty array; give at least one value"
                    )
                lengths[name] = points
        validated[name] = value
    if len(set(lengths.values())) > 1:
        sizes = ", ".join(f"{n} has {size}" for n, size in lengths.items())
        raise InputValidationError(
            f"array inputs have different lengths ({sizes}); give arrays of one length"
        )
    return validated


def _is_default(value: Any, var: Variable) -> bool:
    try:
        given, default = np.asarray(value), np.asarray(cast(Any, var).default_value)
    except ValueError:  # ragged lists
        return False
    return given.shape == default.shape and bool((given == default).all())


def _default_text(var: Variable) -> str:
    default = cast(Any, var).default_value
    return repr(default.tolist()) if isinstance(default, np.ndarray) else _number(default)


def scan_points(values: Mapping[str, Value], variables: Sequence[Variable]) -> int | None:
    """The number of points of validated inputs: N for a scan, None for one point."""
    for var in variables:
        value = values.get(var.name)
        if isinstance(value, np.ndarray):
            points = _point_count(value, var)
            if points is not None:
                return points
    return None


def values_per_point(variables: Sequence[Variable]) -> int:
    """How many numbers one point of these variables holds (1 per scalar, the size of an array)."""
    return sum(int(np.prod(getattr(var, "shape", ()))) for var in variables)


def check_scan_size(points: int | None, variables: Sequence[Variable]) -> None:
    """Refuse a scan whose outputs would hold more than MAX_SCAN_VALUES numbers."""
    if points is None:
        return
    per_point = values_per_point(variables)
    if points * per_point > MAX_SCAN_VALUES:
        raise InputValidationError(
            f"the scan of {points:,} points would return {points * per_point:,} output values "
            f"({per_point:,} per point), more than {MAX_SCAN_VALUES:,}; scan fewer points"
        )


def check_outputs(
    outputs: Mapping[str, Any],
    variables: Sequence[Variable],
    points: int | None = None,
    warnings: list[str] | None = None,
) -> dict[str, Value]:
    """Check the model's outputs: every one returned, of its declared shape, dtype and range.

    ``points`` is the scan's N (None for one point): then a scalar output is a float, or
    an array of shape (N,), and an NDVariable output has shape ``shape`` or (N, *shape).
    A scalar the model returns once for a whole scan is repeated for every point.
    """
    names = [var.name for var in variables]
    missing = [name for name in names if name not in outputs]
    if missing:
        raise ModelOutputError(
            f"the model did not return output {', '.join(map(repr, missing))}; {_FROM_MODEL}"
        )
    extra = [name for name in outputs if name not in names]
    if extra:
        raise ModelOutputError(
            f"the model returned {', '.join(map(repr, extra))}, which variables.yml does not "
            "declare as an output; declare it in output_variables or stop returning it"
        )
    checked: dict[str, Value] = {}
    for var in variables:
        name = var.name
        if not isinstance(var, ScalarVariable | NDVariable):
            try:
                var.validate_value(outputs[name])
            except (TypeError, ValueError) as exc:
                raise ModelOutputError(f"output {name!r}: {exc}; {_FROM_MODEL}") from None
            checked[name] = outputs[name]
            continue
        array = np.asarray(outputs[name])
        point_shape = tuple(var.shape) if isinstance(var, NDVariable) else ()
        dtype = var.dtype if isinstance(var, NDVariable) else np.dtype(np.float64)
        if isinstance(var, IntVariable):
            dtype = np.dtype(np.int64)
        if points is not None and array.ndim == 0 and not point_shape:
            array = np.full(points, array)
        expected = point_shape if points is None else (points, *point_shape)
        if array.shape != expected:
            raise ModelOutputError(
                f"output {name!r} has shape {array.shape}, not {expected} "
                f"({'one point' if points is None else f'a scan of {points} points'}); "
                f"{_FROM_MODEL}"
            )
        if array.dtype.kind not in "biuf" or not np.can_cast(array.dtype, dtype, "same_kind"):
            raise ModelOutputError(
                f"output {name!r} has dtype {array.dtype}, not {dtype}; {_FROM_MODEL}"
            )
        array = array.astype(dtype, copy=False)
        _check_values(name, array, var, "output", warnings)
        checked[name] = array.item() if array.ndim == 0 else array
    return checked


class ScanRange(BaseModel):
    """Evenly spaced values from ``start`` to ``stop`` (both included), like numpy.linspace."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    start: float
    stop: float
    num: int = Field(ge=1, le=MAX_SCAN_POINTS)

    @classmethod
    def parse(cls, text: str, label: str | None = None) -> "ScanRange":
        """Parse ``START:STOP:NUM``, the command line's form; errors in plain words.

        ``label`` starts an error message (default ``scan 'TEXT'``), e.g. the option.
        """
        start, stop, num = parse_scan(text, label)
        return cls(start=start, stop=stop, num=num)


def expand_scan(scan: Mapping[str, ScanRange]) -> dict[str, np.ndarray]:
    """The grid of all combinations of the scanned values, one flat array per variable.

    The first variable varies slowest (numpy's "ij" indexing).
    """
    if not scan:
        return {}
    check_grid_size(s.num for s in scan.values())
    axes = [np.linspace(s.start, s.stop, s.num) for s in scan.values()]
    if len(axes) == 1:
        return {next(iter(scan)): axes[0]}
    grids = np.meshgrid(*axes, indexing="ij")
    return {name: grid.ravel() for name, grid in zip(scan, grids, strict=True)}


def collect_inputs(
    values: Mapping[str, Any],
    scan: Mapping[str, ScanRange] | None = None,
    variables: Sequence[Variable] | None = None,
) -> dict[str, Value]:
    """Merge fixed values and a scan (which wins for a variable in both) and validate them."""
    return validate_inputs({**values, **expand_scan(scan or {})}, variables)


def _unit_text(var: Variable) -> str:
    unit = getattr(var, "unit", None)
    return f"unit: {unit}" if unit else "dimensionless"


def _field(var: Variable) -> tuple[Any, Any]:
    """The pydantic field of one input: its type, default and (refusing) bounds."""
    description = _unit_text(var)
    if isinstance(var, NDVariable):
        shape = "x".join(map(str, var.shape))
        default = cast(np.ndarray, var.default_value)
        return list, Field(default.tolist(), description=f"{shape} array, {description}")
    if isinstance(var, EnumVariable):
        return Literal[tuple(var.options)], Field(var.default_value, description=description)
    if not isinstance(var, ScalarVariable):
        default = cast(Any, var).default_value
        return type(default), Field(default, description=description, strict=True)
    # Bounds only where an out-of-range value is refused (warn and none let the model run).
    low, high = var.value_range or (None, None)
    if var.default_validation_config != "error":
        low = high = None
    # strict: ints are floats, but "1.5" and True are not numbers.
    kind = int if isinstance(var, IntVariable) else float
    return kind, Field(var.default_value, ge=low, le=high, description=description, strict=True)


def _inputs_model(variables: Sequence[Variable]) -> type[BaseModel]:
    """A pydantic model with one field per settable input: default, bounds and unit."""
    fields: dict[str, Any] = {var.name: _field(var) for var in variables if not var.read_only}
    return create_model(
        "ModelInputs",
        __config__=ConfigDict(extra="forbid", allow_inf_nan=False),
        __doc__="The model's input values; inputs not given keep their defaults.",
        **fields,
    )


if TYPE_CHECKING:
    ModelInputs = BaseModel  # for the type checker: its fields come from variables.yml


def __getattr__(name: str) -> Any:
    # ModelInputs is built from variables.yml on first use, not at import: importing this
    # module never fails on a broken variables file (the CLI then says what is wrong).
    if name == "ModelInputs":
        globals()["ModelInputs"] = model = _inputs_model(load_variables()[0])
        return model
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
