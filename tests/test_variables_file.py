"""Variables files as users bring them: foreign, older-format and broken ones.

Every broken file gives one error line naming the file, the line, the variable, the key
and the fix, from the loader and from the command line (exit 2, no traceback). These
tests write their own files, so they hold for any model.
"""

import logging
import textwrap
from pathlib import Path

import numpy as np
import pytest
from lume.variables import NDVariable, ScalarVariable

import my_package.variables as variables_module
from my_package.cli import main
from my_package.errors import VariablesFileError
from my_package.variables import load_variables

DATA = Path(__file__).parent / "data"
GOOD_OUTPUT = "output_variables:\n  y:\n    variable_class: ScalarVariable\n"


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "variables.yml"
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def _inputs(body: str) -> str:
    """A file with one input ``x`` whose keys are ``body`` (line 3 is its first key)."""
    return "input_variables:\n  x:\n" + textwrap.indent(textwrap.dedent(body), "    ") + GOOD_OUTPUT


# (file text, the line the error names, the words it must contain)
BROKEN = [
    pytest.param(
        "input_variables:\n  x:\n    variable_class: ScalarVariable\n   default_value: 1.0\n",
        4,
        ["invalid YAML", "check the indentation"],
        id="bad indentation",
    ),
    pytest.param("input_variables:\n\tx: 1\n", 2, ["invalid YAML", "spaces, not tabs"], id="tab"),
    pytest.param(
        _inputs("variable_class: ScalarVariable\ndefualt_value: 1.0\n"),
        4,
        ["input 'x', key 'defualt_value'", "did you mean 'default_value'"],
        id="misspelled default_value",
    ),
    pytest.param(
        _inputs("variable_class: ScalarVariable\ndefault_value: 1.0\nunits_: m\n"),
        5,
        ["input 'x', key 'units_'", "unknown key", "did you mean"],
        id="unknown key",
    ),
    pytest.param(
        _inputs("variable_class: ScalerVariable\ndefault_value: 1.0\n"),
        3,
        ["key 'variable_class'", "'ScalerVariable'", "did you mean 'ScalarVariable'"],
        id="unknown variable_class",
    ),
    pytest.param(
        _inputs("variable_class: ScalarVariable\ndefault_value: 12.5\nvalue_range: [0.0, 10.0]\n"),
        4,
        ["input 'x', key 'default_value'", "12.5 is outside value_range [0.0, 10.0]", "widen"],
        id="default outside range",
    ),
    pytest.param(
        _inputs("variable_class: ScalarVariable\ndefault_value: 1.0\nvalue_range: [10.0, 0.0]\n"),
        5,
        ["key 'value_range'", "[10.0, 0.0] is reversed", "write [0.0, 10.0]"],
        id="reversed range",
    ),
    pytest.param(
        _inputs("variable_class: ScalarVariable\nvalue_range: [0.0, 1.0]\n"),
        2,
        ["input 'x', key 'default_value'", "an input needs a default_value"],
        id="missing input default",
    ),
    pytest.param(
        _inputs("variable_class: NDVariable\nshape: [3]\ndefault_value: [1.0, 2.0]\n"),
        5,
        ["key 'default_value'", "has shape [2], but shape is [3]"],
        id="ND default of the wrong shape",
    ),
    pytest.param(
        "input_variables: {}\noutput_variables:\n  img:\n    variable_class: NDVariable\n",
        3,
        ["output 'img', key 'shape'", "an NDVariable needs a shape"],
        id="ND without shape",
    ),
    pytest.param(
        "output_variables:\n  img:\n    variable_class: NDVariable\n    shape: [4]\n"
        "    dtype: float65\n",
        5,
        ["output 'img', key 'dtype'", "'float65' is not a numpy dtype"],
        id="bad dtype",
    ),
    pytest.param(
        _inputs("variable_class: ScalarVariable\ndefault_value: 1.0\nvalue_range: [1.0]\n"),
        5,
        ["key 'value_range'", "is not [LOW, HIGH]"],
        id="range of one number",
    ),
    pytest.param(
        _inputs("variable_class: ScalarVariable\ndefault_value: abc\n"),
        4,
        ["key 'default_value'", "'abc' is not a number"],
        id="default not a number",
    ),
    pytest.param(
        "input_variable:\n  x:\n    variable_class: ScalarVariable\n" + GOOD_OUTPUT,
        1,
        ["unknown top-level key 'input_variable'", "did you mean 'input_variables'"],
        id="misspelled section",
    ),
    pytest.param(
        _inputs("variable_class: ScalarVariable\ndefault_value: 1.0\n")
        + "  y:\n    variable_class: ScalarVariable\n",
        8,
        ["'y' appears twice", "keep one of them"],
        id="duplicate name",
    ),
    pytest.param(
        _inputs(
            "variable_class: ScalarVariable\ndefault_value: 1.0\n"
            "default_validation_config: warning\n"
        ),
        5,
        ["key 'default_validation_config'", "'warning' is not one of", "did you mean 'warn'"],
        id="bad validation config",
    ),
    pytest.param(
        "input_variables:\n  my-x:\n    variable_class: ScalarVariable\n"
        "    default_value: 1.0\n" + GOOD_OUTPUT,
        2,
        ["input 'my-x'", "must be a Python identifier"],
        id="name not an identifier",
    ),
    pytest.param(
        "input_variables:\n  x:\n    variable_class: ScalarVariable\n    default_value: 1.0\n",
        1,
        ["no output_variables"],
        id="no outputs",
    ),
    pytest.param(
        "input_variables:\n  on:\n    variable_class: BoolVariable\n"
        "    default_value: true\n" + GOOD_OUTPUT,
        2,
        ["input True", "YAML reads a bare yes/no/on/off/true/false as a boolean"],
        id="name read as a boolean",
    ),
]


@pytest.mark.parametrize(("text", "line", "words"), BROKEN)
def test_broken_file_is_one_error_naming_file_line_and_key(
    tmp_path: Path, text: str, line: int | None, words: list[str]
) -> None:
    path = _write(tmp_path, text)
    with pytest.raises(VariablesFileError) as info:
        load_variables(path)
    message = str(info.value)
    assert message.startswith(f"{path}:{line}: " if line else f"{path}: "), message
    for word in words:
        assert word in message, message
    assert "\n" not in message


@pytest.mark.parametrize("command", ["describe", "evaluate", "run"])
@pytest.mark.parametrize(("text", "line", "words"), BROKEN[:8])
def test_broken_file_in_the_cli_is_exit_2_and_one_line(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture,
    command: str,
    text: str,
    line: int | None,
    words: list[str],
) -> None:
    # The package's own variables file, pointed at the broken one (in-process, so no
    # Prefect starts: the CLI refuses the file first).
    path = _write(tmp_path, text)
    monkeypatch.setattr(variables_module, "VARIABLES_FILE", path)
    monkeypatch.chdir(tmp_path)
    assert main([command]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {path}:{line}: ") and all(word in err for word in words)
    assert err.count("\n") == 1  # one line, no traceback
    assert sorted(p.name for p in tmp_path.iterdir()) == ["variables.yml"]  # nothing written


def test_california_regression_file_no_units_and_an_output_without_range() -> None:
    inputs, outputs = load_variables(DATA / "california_regression_variables.yml")
    assert [var.name for var in inputs] == [
        "MedInc",
        "HouseAge",
        "AveRooms",
        "AveBedrms",
        "Population",
        "AveOccup",
        "Latitude",
        "Longitude",
    ]
    assert all(isinstance(var, ScalarVariable) and var.unit is None for var in inputs)
    assert all(not var.read_only for var in inputs)  # is_constant: false
    assert outputs[0].name == "MedHouseVal" and outputs[0].value_range is None
    # Numbers at full precision, so a range edge never reads as outside itself.
    assert inputs[0].value_range == (0.4999, 15.0001)


def test_older_lume_model_spelling_is_converted_with_one_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(
        tmp_path,
        """
        input_variables:
          k:
            type: scalar
            default: 0.5
            range: [0.0, 1.0]
            units: 1/m
          length:
            variable_type: scalar
            default: 2.0
            lower: 1.0
            upper: 3.0
            is_constant: true
        output_variables:
          size:
            type: scalar
            units: mm
          camera:
            type: image
            default: [[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]
            axis_labels: [x, y]
        """,
    )
    with caplog.at_level(logging.WARNING, logger="my_package.variables"):
        inputs, outputs = load_variables(path)
        load_variables(path)  # once per file, not per load
    (record,) = caplog.records
    assert record.getMessage().startswith(f"{path}: read lume-model's older spelling (")
    for old in ("type -> variable_class", "default -> default_value", "units -> unit"):
        assert old in record.getMessage()
    assert "the current spelling is variable_class, default_value, value_range" in (
        record.getMessage()
    )
    k, length = inputs
    assert (k.default_value, k.value_range, k.unit, k.read_only) == (0.5, (0.0, 1.0), "1/m", False)
    assert (length.value_range, length.read_only) == ((1.0, 3.0), True)
    assert isinstance(outputs[1], NDVariable) and outputs[1].shape == (2, 3)
    assert outputs[0].unit == "mm"


def test_current_format_is_read_without_a_message(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = _write(tmp_path, _inputs("variable_class: ScalarVariable\ndefault_value: 1.0\n"))
    with caplog.at_level(logging.WARNING, logger="my_package.variables"):
        inputs, outputs = load_variables(path)
    assert caplog.records == []
    assert [var.name for var in inputs + outputs] == ["x", "y"]


def test_every_lume_base_class_is_built(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        """
        input_variables:
          count: {variable_class: IntVariable, default_value: 3, value_range: [1, 10]}
          enabled: {variable_class: BoolVariable, default_value: true}
          label: {variable_class: StrVariable, default_value: abc}
          mode: {variable_class: EnumVariable, default_value: fast, options: [fast, slow]}
          mask: {variable_class: NDVariable, shape: [2, 2], dtype: int64,
                 default_value: [[1, 0], [0, 1]]}
        output_variables:
          image: {variable_class: NDVariable, shape: [4, 3], dtype: float32, unit: counts}
        """,
    )
    inputs, outputs = load_variables(path)
    classes = [type(var).__name__ for var in inputs + outputs]
    assert classes == [
        "IntVariable",
        "BoolVariable",
        "StrVariable",
        "EnumVariable",
        "NDVariable",
        "NDVariable",
    ]
    assert inputs[4].default_value.dtype == np.int64
    assert outputs[0].dtype == np.float32 and outputs[0].shape == (4, 3)
    # Refusing out-of-range values is the default here (lume-base's own default is "none").
    assert all(var.default_validation_config == "error" for var in inputs + outputs)


def test_loads_return_fresh_objects() -> None:
    first, second = load_variables()[0][0], load_variables()[0][0]
    assert first == second and first is not second
