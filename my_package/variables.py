"""Reads a variables file (``files/variables.yml``) into lume-base variables; renders them.

The file is lume-model's format, which lume-base's variables share: ``input_variables``
and ``output_variables``, each ``name: {variable_class, default_value, value_range, unit,
read_only, default_validation_config, ...}``, plus ``shape`` and ``dtype`` for an
``NDVariable``. lume-model's older spellings (``type: scalar``, ``default``, ``range``,
``units``, ``is_constant``, ...) are read too, with one message saying the current one.
Every mistake is one :class:`VariablesFileError` naming the file, line, variable and key.
"""

import difflib
import logging
import os
from collections.abc import Iterable
from functools import lru_cache
from importlib.resources import files
from typing import Any, TypeGuard

import numpy as np
import yaml
from lume.variables import (
    BoolVariable,
    EnumVariable,
    IntVariable,
    NDVariable,
    ParticleGroupVariable,
    ScalarVariable,
    StrVariable,
    Variable,
)
from pydantic import ValidationError

from my_package.errors import VariablesFileError

VARIABLES_FILE = files("my_package") / "files" / "variables.yml"
SECTIONS = {"input_variables": "input", "output_variables": "output"}
CLASSES: dict[str, type[Variable]] = {
    cls.__name__: cls
    for cls in (
        ScalarVariable,
        NDVariable,
        IntVariable,
        BoolVariable,
        StrVariable,
        EnumVariable,
        ParticleGroupVariable,
    )
}
# lume-model's older spellings and what lume-base calls them.
RENAMED = {
    "type": "variable_class",
    "variable_type": "variable_class",
    "default": "default_value",
    "range": "value_range",
    "units": "unit",
    "is_constant": "read_only",
}
OLD_CLASSES = {
    "scalar": "ScalarVariable",
    "array": "NDVariable",
    "image": "NDVariable",
    **{f"Scalar{io}Variable": "ScalarVariable" for io in ("Input", "Output")},
    **{
        f"{kind}{io}Variable": "NDVariable"
        for kind in ("Array", "Image")
        for io in ("Input", "Output")
    },
}
# lume-model keys that lume-base has no place for: read and dropped, and said so.
DROPPED = {
    "value_range_tolerance",
    "parent_variable",
    "precision",
    "value_type",
    "dim_labels",
    "axis_labels",
    "axis_units",
    *(f"{axis}_{end}{var}" for axis in "xy" for end in ("min", "max") for var in ("", "_variable")),
}
# What lume-base's own default ("none") would not do: refuse out-of-range values.
DEFAULT_VALIDATION = "error"
VALIDATION_CONFIGS = ("error", "warn", "none")

log = logging.getLogger(__name__)


def load_variables(path: str | os.PathLike[str] | None = None) -> tuple[list, list]:
    """Return fresh ``(input_variables, output_variables)`` lists of lume-base variables.

    ``path`` defaults to the package's ``files/variables.yml``. The file is parsed once
    per content (and any conversion message logged once); every call returns copies, so
    model instances never share variable objects. Raises :class:`VariablesFileError`.
    """
    source = VARIABLES_FILE if path is None else path
    try:
        text = VARIABLES_FILE.read_text(encoding="utf-8") if path is None else _read(path)
    except OSError as exc:
        raise VariablesFileError(
            f"{source}: cannot read the variables file: {exc.strerror or exc}"
        ) from None
    inputs, outputs = _parse(str(source), text)
    return [v.model_copy(deep=True) for v in inputs], [v.model_copy(deep=True) for v in outputs]


def _read(path: str | os.PathLike[str]) -> str:
    with open(path, encoding="utf-8") as fh:
        return fh.read()


@lru_cache(maxsize=8)
def _parse(filename: str, text: str) -> tuple[tuple[Variable, ...], tuple[Variable, ...]]:
    data, lines = _load_yaml(filename, text)
    file = _File(filename, lines)
    if not isinstance(data, dict):
        file.fail(
            (),
            f"the file holds {type(data).__name__}, not input_variables and "
            "output_variables; see README's Variables section",
        )
    for key in data:
        if key not in SECTIONS:
            file.fail(
                (key,),
                f"unknown top-level key {key!r}{_did_you_mean(key, SECTIONS)}; "
                "the keys are input_variables and output_variables",
            )
    if "output_variables" not in data:
        file.fail((), "no output_variables; declare at least one output")
    notes: set[str] = set()
    groups = [
        [file.variable(section, name, spec, notes) for name, spec in _entries(file, data, section)]
        for section in SECTIONS
    ]
    names = [var.name for var in groups[0]]
    for var in groups[1]:
        if var.name in names:
            file.fail(
                ("output_variables", var.name),
                f"output {var.name!r} has the name of an input; give every variable its own name",
            )
    if not groups[1]:
        file.fail(("output_variables",), "output_variables is empty; declare at least one output")
    if notes:
        log.warning(
            "%s: read lume-model's older spelling (%s); the current spelling is variable_class, "
            "default_value, value_range, unit, read_only (README: Variables)",
            filename,
            ", ".join(sorted(notes)),
        )
    return tuple(groups[0]), tuple(groups[1])


def _load_yaml(filename: str, text: str) -> tuple[Any, dict[tuple, int]]:
    """The file's data and the line (1-based) of every key, by its path of keys."""
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        data = loader.construct_document(node) if node is not None else None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
        where = f"{filename}:{mark.line + 1}" if mark else filename
        problem = getattr(exc, "problem", None) or str(exc)
        context = getattr(exc, "context", None)
        raise VariablesFileError(
            f"{where}: invalid YAML: {problem}{f' ({context})' if context else ''}; "
            "check the indentation (spaces, not tabs) and the colons on that line"
        ) from None
    finally:
        loader.dispose()
    lines: dict[tuple, int] = {}
    if node is not None:
        _key_lines(filename, node, (), lines)
    return data, lines


def _key_lines(filename: str, node: yaml.Node, path: tuple, lines: dict[tuple, int]) -> None:
    lines.setdefault(path, node.start_mark.line + 1)
    if len(path) >= 3:
        return
    if isinstance(node, yaml.MappingNode):
        for key_node, value_node in node.value:
            key = key_node.value
            if key_node.tag != "tag:yaml.org,2002:str":  # on -> True, 1 -> 1: as in the data
                key = yaml.safe_load(key)
            if (*path, key) in lines:
                raise VariablesFileError(
                    f"{filename}:{key_node.start_mark.line + 1}: {key!r} appears twice"
                    f"{' in ' + '.'.join(map(str, path)) if path else ''}; keep one of them"
                )
            lines[(*path, key)] = key_node.start_mark.line + 1
            _key_lines(filename, value_node, (*path, key), lines)
    elif isinstance(node, yaml.SequenceNode) and len(path) == 1:
        for index, item in enumerate(node.value):
            _key_lines(filename, item, (*path, index), lines)


def _entries(file: "_File", data: dict, section: str) -> Iterable[tuple[str, Any]]:
    """``(name, spec)`` pairs of a section written as a mapping or as a list with names."""
    group = data.get(section)
    if group is None:
        return []
    if isinstance(group, list):  # lume-model also writes a list of {name: ..., ...}
        entries = []
        for index, spec in enumerate(group):
            if not isinstance(spec, dict) or not isinstance(spec.get("name"), str):
                file.fail(
                    (section, index),
                    f"entry {index} of {section} has no name; "
                    "write each variable as NAME: {variable_class: ...}",
                )
            file.alias((section, index), (section, spec["name"]))
            entries.append((spec["name"], {k: v for k, v in spec.items() if k != "name"}))
        return entries
    if not isinstance(group, dict):
        file.fail(
            (section,),
            f"{section} is {type(group).__name__}; write it as a mapping "
            "of NAME: {variable_class: ..., ...}",
        )
    return list(group.items())


def _did_you_mean(word: str, choices: Iterable[str]) -> str:
    close = difflib.get_close_matches(str(word), list(choices), n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


class _File:
    """One variables file being read: builds its variables and words its errors."""

    def __init__(self, filename: str, lines: dict[tuple, int]) -> None:
        self.filename = filename
        self.lines = lines

    def alias(self, old: tuple, new: tuple) -> None:
        for path, line in list(self.lines.items()):
            if path[: len(old)] == old:
                self.lines.setdefault(new + path[len(old) :], line)

    def line(self, path: tuple) -> int | None:
        while path and path not in self.lines:
            path = path[:-1]
        return self.lines.get(path)

    def fail(self, path: tuple, message: str) -> None:
        line = self.line(path)
        raise VariablesFileError(f"{self.filename}{f':{line}' if line else ''}: {message}")

    def variable(self, section: str, name: Any, spec: Any, notes: set[str]) -> Variable:
        """One lume-base variable from its entry, or a VariablesFileError."""
        kind = SECTIONS[section]
        where = (section, name)
        label = f"{kind} {name!r}"

        def fail(key: str | None, message: str) -> None:
            self.fail(
                where + ((key,) if key else ()),
                f"{label}" + (f", key {key!r}" if key else "") + f": {message}",
            )

        if isinstance(name, bool):  # YAML 1.1 reads on/off/yes/no/true/false as booleans
            fail(
                None,
                "is not a name: YAML reads a bare yes/no/on/off/true/false as a "
                "boolean; quote the name or choose another",
            )
        if not isinstance(name, str) or not name.isidentifier() or name.startswith("_"):
            fail(
                None,
                "a variable name must be a Python identifier (letters, digits, "
                "underscores, not starting with a digit or an underscore); rename it",
            )
        if spec is None:
            spec = {}
        if not isinstance(spec, dict):
            fail(
                None,
                f"is {spec!r}, not a mapping of keys; indent its keys "
                "(variable_class, default_value, ...) under the name",
            )
        spec = dict(spec)

        self._convert(where, spec, fail, notes)

        class_name = spec.pop("variable_class", None)
        if class_name is None:
            fail(
                None,
                "no variable_class; add variable_class: ScalarVariable "
                "(or NDVariable with a shape)",
            )
        if class_name in OLD_CLASSES:
            notes.add(f"{class_name} -> {OLD_CLASSES[class_name]}")
            class_name = OLD_CLASSES[class_name]
        if class_name not in CLASSES:
            fail(
                "variable_class",
                f"unknown variable_class {class_name!r}"
                f"{_did_you_mean(class_name, CLASSES)}; use one of {', '.join(CLASSES)}",
            )
        cls = CLASSES[class_name]

        allowed = set(cls.model_fields) - {"name"}
        for key in spec:
            if key not in allowed:
                hint = _did_you_mean(key, [*allowed, *RENAMED])
                fail(
                    key,
                    f"unknown key for a {class_name}{hint}; its keys are "
                    f"variable_class, {', '.join(sorted(allowed))}",
                )

        config = spec.setdefault("default_validation_config", DEFAULT_VALIDATION)
        if config not in VALIDATION_CONFIGS:
            fail(
                "default_validation_config",
                f"{config!r} is not one of "
                f"{', '.join(VALIDATION_CONFIGS)}{_did_you_mean(config, VALIDATION_CONFIGS)}",
            )
        if "value_range" in spec and spec["value_range"] is not None:
            spec["value_range"] = self._range(spec["value_range"], fail)
        if cls is NDVariable:
            self._nd(spec, fail)
        elif "default_value" in spec and issubclass(cls, ScalarVariable):
            self._scalar_default(spec, cls, fail)
        if (
            kind == "input"
            and spec.get("default_value") is None
            and cls is not ParticleGroupVariable
        ):
            fail(
                "default_value",
                "an input needs a default_value (used when a run does not "
                "set it); add default_value: VALUE",
            )
        try:
            return cls(name=name, **spec)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = str(error["loc"][0]) if error["loc"] else None
            fail(field, f"{error['msg']}; fix the value")
        except (TypeError, ValueError) as exc:
            fail(None, f"{exc}; fix the value")
        raise AssertionError("unreachable")

    def _convert(self, where: tuple, spec: dict, fail: Any, notes: set[str]) -> None:
        """lume-model's older spellings -> lume-base's, in place; each noted once."""
        if "lower" in spec or "upper" in spec:
            if "value_range" in spec or "range" in spec:
                fail("lower", "give either lower/upper or value_range, not both")
            if "lower" not in spec or "upper" not in spec:
                fail(
                    "lower" if "lower" in spec else "upper",
                    "lower and upper go together; write value_range: [LOW, HIGH]",
                )
            self.alias((*where, "lower"), (*where, "value_range"))
            spec["value_range"] = [spec.pop("lower"), spec.pop("upper")]
            notes.add("lower/upper -> value_range")
        for old, new in RENAMED.items():
            if old in spec:
                if new in spec:
                    fail(old, f"{old!r} and {new!r} are the same key; keep {new!r}")
                self.alias((*where, old), (*where, new))  # errors name the line written
                spec[new] = spec.pop(old)
                notes.add(f"{old} -> {new}")
        for key in DROPPED & set(spec):
            spec.pop(key)
            notes.add(f"{key} (dropped: lume-base has no such field)")

    @staticmethod
    def _range(value: Any, fail: Any) -> tuple[float, float]:
        if (
            not isinstance(value, list | tuple)
            or len(value) != 2
            or not all(isinstance(v, int | float) and not isinstance(v, bool) for v in value)
        ):
            fail(
                "value_range",
                f"{value!r} is not [LOW, HIGH]; write two numbers, e.g. value_range: [0.0, 1.0]",
            )
        low, high = value
        if not low <= high:
            fail(
                "value_range",
                f"[{low!r}, {high!r}] is reversed (low > high); write [{high!r}, {low!r}]",
            )
        return low, high

    @staticmethod
    def _scalar_default(spec: dict, cls: type, fail: Any) -> None:
        value = spec["default_value"]
        if value is None:
            return
        integral = cls is IntVariable
        if isinstance(value, bool) or not isinstance(value, int if integral else int | float):
            fail(
                "default_value",
                f"{value!r} is not {'an integer' if integral else 'a number'}; "
                f"give a {'whole number' if integral else 'number'}",
            )
        value_range = spec.get("value_range")
        if value_range is not None and not value_range[0] <= value <= value_range[1]:
            fail(
                "default_value",
                f"{value!r} is outside value_range "
                f"[{value_range[0]!r}, {value_range[1]!r}]; give a default inside the range "
                "or widen the range",
            )

    @staticmethod
    def _nd(spec: dict, fail: Any) -> None:
        default = spec.get("default_value")
        dtype_name = spec.get("dtype", "float64")
        try:
            dtype = np.dtype(dtype_name)
        except TypeError:
            fail("dtype", f"{dtype_name!r} is not a numpy dtype; use e.g. float64, float32, int64")
        if dtype.kind not in "biuf":
            fail("dtype", f"{dtype_name!r} is not a numeric dtype; use e.g. float64, int64")
        spec["dtype"] = dtype
        if "shape" not in spec:
            if default is None:
                fail(
                    "shape",
                    "an NDVariable needs a shape; add e.g. shape: [100] (a profile) "
                    "or shape: [64, 64] (an image)",
                )
            # Older array/image files: the shape comes from the default.
            spec["shape"] = list(np.shape(default))  # type: ignore[arg-type]
        shape = spec["shape"]
        if (
            not isinstance(shape, list | tuple)
            or not shape
            or not all(isinstance(n, int) and not isinstance(n, bool) and n > 0 for n in shape)
        ):
            fail("shape", f"{shape!r} is not a list of positive whole numbers; write e.g. [100]")
        spec["shape"] = tuple(shape)
        if default is not None:
            try:
                array = np.asarray(default, dtype=dtype)
            except (TypeError, ValueError) as exc:
                fail("default_value", f"is not an array of {dtype.name}: {exc}")
            if array.shape != spec["shape"]:
                fail(
                    "default_value",
                    f"has shape {list(array.shape)}, but shape is "
                    f"{list(shape)}; give a default of that shape, or change shape",
                )
            spec["default_value"] = array


def is_nd(var: Variable) -> TypeGuard[NDVariable]:
    """True for array and image variables (lume-base's NDVariable)."""
    return isinstance(var, NDVariable)


def declared_arrays(values: dict[str, Any], variables: Iterable[Variable]) -> dict[str, Any]:
    """``values`` with each NDVariable's (nested) list as a numpy array of its declared dtype.

    For a result read back: one point has the variable's shape, a scan (N, *shape). A value
    whose shape no longer matches variables.yml (the file changed since) is left as stored.
    """
    converted = dict(values)
    for var in variables:
        value = values.get(var.name)
        if is_nd(var) and isinstance(value, list):
            array = np.asarray(value, dtype=var.dtype)
            if array.shape[array.ndim - len(var.shape) :] == tuple(var.shape):
                converted[var.name] = array
    return converted


def _format_number(value: Any) -> str:
    return repr(value.item() if isinstance(value, np.generic) else value)


def _shape_text(var: Variable) -> str:
    return "x".join(map(str, var.shape)) if is_nd(var) else "scalar"


def _default_text(var: Variable) -> str:
    default = getattr(var, "default_value", None)
    if default is None:
        return ""
    if is_nd(var):
        return repr(default.tolist()) if default.size <= 4 else "array"
    return _format_number(default)


def _range_text(var: Variable) -> str:
    value_range = getattr(var, "value_range", None)
    if value_range is None:
        return ""
    return f"[{_format_number(value_range[0])}, {_format_number(value_range[1])}]"


def describe_table(markdown: bool = False) -> str:
    """The variables as a text table, or as the Markdown table that README.md carries."""
    inputs, outputs = load_variables()
    header = ("variable", "kind", "shape", "default", "range", "unit")
    rows = [
        (
            var.name,
            f"{kind}, read-only" if kind == "input" and var.read_only else kind,
            _shape_text(var),
            _default_text(var),
            _range_text(var),
            getattr(var, "unit", None) or "",
        )
        for kind, group in (("input", inputs), ("output", outputs))
        for var in group
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join((f"`{r[0]}`", *r[1:])) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )
