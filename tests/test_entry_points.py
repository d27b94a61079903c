"""lume-services finds the model and the flow through entry points; the flow is registerable.

lume-services reads entry points in group ``orchestration`` named ``<package>.model``
(the model class) and ``<package>.flow`` (the Prefect flow object), and takes the
flow's parameters from its schema, as a Prefect server does.
"""

import configparser
import json
from importlib.metadata import PackageNotFoundError, distribution
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
GROUP = "orchestration"
EXPECTED = {
    "my_package.model": "my_package.model:MyPackageModel",
    "my_package.flow": "my_package.flow:my_package_flow",
}


def _declared() -> dict[str, str]:
    """The orchestration entry points as setup.cfg declares them."""
    config = configparser.ConfigParser()
    config.read(REPO / "setup.cfg")
    text = config.get("options.entry_points", GROUP, fallback="")
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return dict(tuple(part.strip() for part in line.split("=", 1)) for line in lines)


def test_setup_cfg_declares_the_lume_services_entry_points() -> None:
    assert _declared() == EXPECTED


def test_installed_metadata_has_the_entry_points() -> None:
    try:
        dist = distribution("my-package")
    except PackageNotFoundError:
        pytest.skip("my-package is not installed (pip install -e .)")
    installed = {ep.name: ep.value for ep in dist.entry_points.select(group=GROUP)}
    assert installed == _declared(), "installed metadata is stale: run pip install -e . again"


def _load(name: str):
    """The object an entry point names, loaded as importlib.metadata would."""
    from importlib.metadata import EntryPoint

    return EntryPoint(name=name, value=EXPECTED[name], group=GROUP).load()


def test_model_entry_point_is_the_model_class_and_builds_without_arguments() -> None:
    from lume.model import LUMEModel

    from my_package.model import MyPackageModel

    model_class = _load("my_package.model")
    assert model_class is MyPackageModel
    model = model_class()  # as lume-services builds it
    assert isinstance(model, LUMEModel)  # lume-base's interface (lume-pva, StagedModel)
    outputs = model.evaluate({})  # and lume-model's, which lume-services calls
    assert set(outputs) == set(model.output_names)
    assert model.get(model.output_names).keys() == outputs.keys()


def test_flow_entry_point_is_the_prefect_flow() -> None:
    from prefect import Flow

    from my_package.flow import my_package_flow

    flow = _load("my_package.flow")
    assert flow is my_package_flow
    assert isinstance(flow, Flow)
    assert flow.name == "my-package"
    assert flow.description  # shown in the Prefect UI and by prefect deploy


def test_flow_parameter_schema_lists_every_input_with_default_bounds_and_unit() -> None:
    from prefect.utilities.callables import parameter_schema

    from my_package.variables import load_variables

    schema = parameter_schema(_load("my_package.flow")).model_dump_for_openapi()
    json.dumps(schema)  # what a server stores: must be JSON
    assert list(schema["properties"]) == ["inputs", "scan", "target", "parallel"]
    for name in ("inputs", "scan", "target"):
        assert schema["properties"][name]["description"], f"{name} has no description"
    inputs = schema["definitions"]["ModelInputs"]
    assert inputs["additionalProperties"] is False  # unknown names are refused
    # Read-only inputs are constants, not parameters; array inputs are lists.
    input_variables = [var for var in load_variables()[0] if not var.read_only]
    assert list(inputs["properties"]) == [var.name for var in input_variables]
    for var in input_variables:
        field = inputs["properties"][var.name]
        if getattr(var, "shape", None):
            assert field["type"] == "array"
            assert field["default"] == var.default_value.tolist()
            continue
        assert field["type"] == "number"
        assert field["default"] == var.default_value
        # Bounds only where out-of-range values are refused (no range, warn, none: none).
        refused = var.value_range is not None and var.default_validation_config == "error"
        bounds = [field.get("minimum"), field.get("maximum")]
        assert bounds == (list(var.value_range) if refused else [None, None])
        if var.unit:
            assert var.unit in field["description"]
    # The whole-inputs default, as the UI's form shows it.
    default = schema["properties"]["inputs"]["default"]
    assert list(default) == [var.name for var in input_variables]


def test_flow_accepts_its_own_defaults_and_refuses_unknown_names() -> None:
    from prefect.exceptions import ParameterTypeError

    from my_package.variables import load_variables

    var = load_variables()[0][0]
    flow = _load("my_package.flow")
    flow.validate_parameters({})
    value = var.default_value
    flow.validate_parameters({"inputs": {var.name: value}, "scan": None, "target": "filesystem"})
    with pytest.raises(ParameterTypeError, match=f"{var.name}_typo"):
        flow.validate_parameters({"inputs": {f"{var.name}_typo": value}})
