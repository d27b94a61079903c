"""The model (skeleton tests: extend them with your physics).

Left by ``scripts/rename.py --strip-examples``. These tests read the variable
names from ``files/variables.yml``, so they keep passing while you edit it; add
tests of your own physics against values computed by hand.
"""

import numpy as np
import pytest

from my_package.model import MyPackageModel
from my_package.validation import InputValidationError
from my_package.variables import load_variables


@pytest.fixture(scope="module")
def model() -> MyPackageModel:
    return MyPackageModel()


def test_placeholder_physics(model: MyPackageModel) -> None:
    # Replace with your own hand-computed cases.
    assert model.evaluate({"x": 3.0, "gain": 2.0})["y"] == pytest.approx(6.0)


def test_defaults_give_finite_outputs(model: MyPackageModel) -> None:
    out = model.evaluate({})
    assert set(out) == set(model.output_names)
    assert all(np.isfinite(value).all() for value in out.values())


def test_vector_and_scalar_evaluation_agree(model: MyPackageModel) -> None:
    inputs, _ = load_variables()
    rng = np.random.default_rng(7)
    points = {v.name: rng.uniform(*v.value_range, 20) for v in inputs}
    vector = model.evaluate(points)
    for i in range(20):
        scalar = model.evaluate({name: float(values[i]) for name, values in points.items()})
        for name, value in scalar.items():
            assert np.asarray(vector[name])[i] == pytest.approx(value)


def test_out_of_range_input_is_refused_with_its_name(model: MyPackageModel) -> None:
    first = load_variables()[0][0]
    with pytest.raises(InputValidationError, match=first.name):
        model.evaluate({first.name: first.value_range[1] + 1.0})


def test_model_is_a_lume_base_model(model: MyPackageModel) -> None:
    from lume.model import LUMEModel

    assert isinstance(model, LUMEModel)
    first = load_variables()[0][0]
    model.set({first.name: first.default_value})
    assert model.get([first.name]) == {first.name: first.default_value}


def test_unknown_input_is_refused(model: MyPackageModel) -> None:
    with pytest.raises(InputValidationError):
        model.evaluate({"no_such_variable": 1.0})
