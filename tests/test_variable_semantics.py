"""What a variable's settings mean when the model runs: read-only, warn/none, arrays.

A small model of its own (y = gain * x + sum(offsets)) over a variables file written here,
so these tests hold for any project; they go through the same StatelessModel, validation
and filesystem target as the package's model.
"""

import logging
import math
import re
from pathlib import Path

import numpy as np
import pytest
from lume.exceptions import ReadOnlyError

from my_package.lume_adapter import StatelessModel
from my_package.results import Result
from my_package.targets import FilesystemTarget
from my_package.validation import (
    WARNINGS_KEY,
    InputValidationError,
    ModelOutputError,
    _inputs_model,
    validate_inputs,
)
from my_package.variables import load_variables

VARIABLES = """\
input_variables:
  x: {variable_class: ScalarVariable, default_value: 0.5, value_range: [0.0, 1.0]}
  gain: {variable_class: ScalarVariable, default_value: 2.0, is_constant: true}
  w: {variable_class: ScalarVariable, default_value: 0.5, value_range: [0.0, 1.0],
      default_validation_config: warn}
  n: {variable_class: ScalarVariable, default_value: 0.5, value_range: [0.0, 1.0],
      default_validation_config: none}
  free: {variable_class: ScalarVariable, default_value: 0.0}
  offsets: {variable_class: NDVariable, shape: [3], default_value: [0.0, 0.0, 0.0]}
output_variables:
  y: {variable_class: ScalarVariable, value_range: [-100.0, 100.0]}
  profile: {variable_class: NDVariable, shape: [3], unit: counts}
"""
DATA = Path(__file__).parent / "data"


class Linear(StatelessModel):
    """y = gain * x + w + n + free + sum(offsets); profile = x + offsets."""

    def _evaluate(self, d: dict) -> dict:
        y = d["gain"] * d["x"] + d["w"] + d["n"] + d["free"] + np.sum(d["offsets"], axis=-1)
        return {"y": y, "profile": np.asarray(d["x"])[..., np.newaxis] + d["offsets"]}


@pytest.fixture
def model(tmp_path: Path) -> Linear:
    path = tmp_path / "variables.yml"
    path.write_text(VARIABLES)
    return Linear(*load_variables(path))


def test_read_only_input_is_refused_and_keeps_its_default(model: Linear) -> None:
    message = "input 'gain' is read-only (read_only or is_constant in variables.yml) and keeps"
    with pytest.raises(InputValidationError, match=re.escape(message)):
        model.evaluate({"gain": 3.0})
    with pytest.raises(ReadOnlyError, match="gain"):
        model.set({"gain": 3.0})
    assert model.get(["gain"]) == {"gain": 2.0}
    assert "gain" not in _inputs_model(model.input_variables).model_fields  # not a parameter


def test_warn_runs_logs_and_records_the_warning_with_the_result(
    model: Linear, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="my_package.validation"):
        outputs = model.evaluate({"w": 1.5})
    expected = "input 'w' = 1.5 is outside its range [0.0, 1.0] (default_validation_config: warn"
    assert outputs["y"] == pytest.approx(2.0 * 0.5 + 1.5 + 0.5)
    assert [text[: len(expected)] for text in outputs[WARNINGS_KEY]] == [expected]
    assert expected in caplog.text
    # The warning is saved in the result's outputs and comes back with it.
    result = Result(flow_id="local", inputs={"w": 1.5}, outputs=outputs)
    target = FilesystemTarget(tmp_path / "results")
    loaded = target.load(target.save(result))
    assert loaded.outputs[WARNINGS_KEY] == outputs[WARNINGS_KEY]
    assert model.evaluate({"w": 1.0}).get(WARNINGS_KEY) is None  # the edge is inside


def test_none_skips_the_range_and_inputs_without_range_take_any_number(model: Linear) -> None:
    outputs = model.evaluate({"n": 7.0, "free": -50.0})
    assert WARNINGS_KEY not in outputs
    assert outputs["y"] == pytest.approx(1.0 + 0.5 + 7.0 - 50.0)
    with pytest.raises(InputValidationError, match="'n' is nan; it must be a finite number"):
        model.evaluate({"n": math.nan})  # finiteness is never optional


def test_parameter_schema_bounds_only_what_is_refused(model: Linear) -> None:
    properties = _inputs_model(model.input_variables).model_json_schema()["properties"]
    assert (properties["x"]["minimum"], properties["x"]["maximum"]) == (0.0, 1.0)
    for name in ("w", "n", "free"):
        assert "minimum" not in properties[name] and "maximum" not in properties[name]
    assert properties["offsets"]["default"] == [0.0, 0.0, 0.0]


def test_output_errors_say_the_model_produced_them(model: Linear) -> None:
    message = (
        "output 'y' = 101.0 is outside its range [-100.0, 100.0]; "
        "the model produced it: check _evaluate in model.py"
    )
    with pytest.raises(ModelOutputError, match=re.escape(message)):
        model.evaluate({"offsets": [99.0, 0.0, 0.0]})

    class WrongShape(Linear):
        def _evaluate(self, d: dict) -> dict:
            return {**super()._evaluate(d), "profile": np.zeros(4)}

    wrong = WrongShape(model.input_variables, model.output_variables)
    message = "output 'profile' has shape (4,), not (3,) (one point); the model produced it"
    with pytest.raises(ModelOutputError, match=re.escape(message)):
        wrong.evaluate({})
    message = "output 'profile' has shape (4,), not (2, 3) (a scan of 2 points)"
    with pytest.raises(ModelOutputError, match=re.escape(message)):
        wrong.evaluate({"x": [0.1, 0.2]})


def test_nd_input_one_point_and_scan(model: Linear) -> None:
    one = model.evaluate({"offsets": [1.0, 2.0, 3.0]})
    assert one["profile"].tolist() == [1.5, 2.5, 3.5] and one["y"] == pytest.approx(8.0)
    scan = model.evaluate({"offsets": np.arange(12.0).reshape(4, 3), "x": np.full(4, 0.0)})
    assert scan["profile"].shape == (4, 3) and scan["y"].shape == (4,)
    message = "input 'offsets' has shape (2,); give an array of shape (3,), or (N, 3) for a scan"
    with pytest.raises(InputValidationError, match=re.escape(message)):
        model.evaluate({"offsets": [1.0, 2.0]})
    with pytest.raises(InputValidationError, match="array inputs have different lengths"):
        model.evaluate({"offsets": np.zeros((4, 3)), "x": [0.1, 0.2]})


def test_a_scan_too_large_for_its_outputs_is_refused_before_the_model_runs(
    model: Linear, monkeypatch: pytest.MonkeyPatch
) -> None:
    import my_package.validation as validation

    monkeypatch.setattr(validation, "MAX_SCAN_VALUES", 1000)  # y and profile: 4 per point
    assert model.evaluate({"x": np.zeros(250)})["profile"].shape == (250, 3)
    message = "the scan of 251 points would return 1,004 output values (4 per point), more"
    with pytest.raises(InputValidationError, match=re.escape(message)):
        model.evaluate({"x": np.zeros(251)})


def test_range_messages_are_at_full_precision() -> None:
    # lume-model's california_regression: the edges are inside, and the numbers shown are
    # exactly the ones in the file (a 6-digit rounding made "0.4999 is outside [0.4999, 15]").
    inputs, _ = load_variables(DATA / "california_regression_variables.yml")
    assert validate_inputs({"MedInc": 0.4999, "Longitude": -124.35}, inputs)["MedInc"] == 0.4999
    message = "input 'MedInc' = 0.49989999 is outside its range [0.4999, 15.0001]; choose"
    with pytest.raises(InputValidationError, match=re.escape(message)):
        validate_inputs({"MedInc": 0.49989999}, inputs)
    message = "'Longitude' = -124.35000000000001 is outside its range [-124.35, -114.31]"
    with pytest.raises(InputValidationError, match=re.escape(message)):
        validate_inputs({"Longitude": -124.35000000000001}, inputs)


def test_lume_base_staged_model_composes_it(model: Linear) -> None:
    # lume-base's StagedModel runs its stages through set()/get(): one stage here (a chain
    # needs particle mix-ins, which a stateless model has no use for).
    from lume.staged_model import StagedModel

    staged = StagedModel([model])
    assert staged.get(["y"]) == {"y": pytest.approx(2.0 * 0.5 + 0.5 + 0.5)}
    staged.set({"x": 1.0})
    assert staged.get(["x", "y"]) == {"x": 1.0, "y": pytest.approx(2.0 + 0.5 + 0.5)}
    staged.reset()
    assert staged.get(["x"]) == {"x": 0.5}
