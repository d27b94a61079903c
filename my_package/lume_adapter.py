"""Makes a pure ``_evaluate`` (arrays in, arrays out) a lume-base ``LUMEModel``.

The shape is lume-torch's ``LUMETorchModel`` for stateless surrogates: ``set()``
validates the new inputs, evaluates the model on them (the other inputs keep their
last or default values) and caches inputs and outputs; ``get()`` reads the cache;
``reset()`` restores the defaults; outputs are read-only. So lume-pva can serve the
model over EPICS and lume-base's StagedModel can compose it.

It also keeps lume-model's ``LUMEBaseModel`` API, which the flow, the CLI and
lume-services call: ``evaluate(input_dict)`` for one point or a whole scan at numpy
speed, ``input_variables``, ``output_variables``, ``input_names``, ``output_names``.
You do not need to edit this file: write ``_evaluate`` in model.py.
"""

from abc import abstractmethod
from collections.abc import Sequence
from copy import copy
from typing import Any

from lume.model import LUMEModel
from lume.variables import Variable

from my_package.validation import (
    WARNINGS_KEY,
    Value,
    check_outputs,
    check_scan_size,
    scan_points,
    validate_inputs,
)
from my_package.variables import load_variables


class StatelessModel(LUMEModel):
    """A model written as a pure ``_evaluate``, usable as a LUMEModel and a LUMEBaseModel."""

    def __init__(
        self,
        input_variables: Sequence[Variable] | None = None,
        output_variables: Sequence[Variable] | None = None,
    ) -> None:
        # Without arguments the variables come from files/variables.yml, so the class
        # can be built bare (as lume-services does through the entry point).
        if input_variables is None or output_variables is None:
            inputs, outputs = load_variables()
            input_variables = inputs if input_variables is None else input_variables
            output_variables = outputs if output_variables is None else output_variables
        self.input_variables = list(input_variables)
        self.output_variables = list(output_variables)
        # Inputs as declared; outputs as read-only copies (they can be read, never set).
        self._supported = {var.name: var for var in self.input_variables} | {
            var.name: var.model_copy(update={"read_only": True}) for var in self.output_variables
        }
        self._state: dict[str, Any] = {}

    @property
    def input_names(self) -> list[str]:
        return [var.name for var in self.input_variables]

    @property
    def output_names(self) -> list[str]:
        return [var.name for var in self.output_variables]

    @abstractmethod
    def _evaluate(self, input_dict: dict[str, Value]) -> dict[str, Value]:
        """The science: validated inputs (floats, or arrays for a scan) in, outputs out."""

    def evaluate(self, input_dict: dict[str, Any]) -> dict[str, Any]:
        """Validate the inputs (defaults for those not given), run ``_evaluate``, check outputs.

        Arrays of N values make a scan: every output then has N as its first axis. The
        messages of ``default_validation_config: warn`` variables are returned under
        ``WARNINGS_KEY`` (and saved with the result); without warnings that key is absent.
        """
        _, outputs, warnings = self._run(input_dict)
        if warnings:
            outputs[WARNINGS_KEY] = warnings
        return outputs

    def _run(self, input_dict: dict[str, Any]) -> tuple[dict, dict, list[str]]:
        warnings: list[str] = []
        inputs = validate_inputs(input_dict, self.input_variables, warnings)
        points = scan_points(inputs, self.input_variables)
        check_scan_size(points, self.output_variables)  # before the model allocates them
        outputs = self._evaluate(dict(inputs))
        return inputs, check_outputs(outputs, self.output_variables, points, warnings), warnings

    # --- lume-base LUMEModel ----------------------------------------------------------

    @property
    def supported_variables(self) -> dict[str, Variable]:
        return self._supported

    def _set(self, values: dict[str, Any]) -> None:
        inputs, outputs, _ = self._run({**self._settable_state(), **values})
        self._state = {**inputs, **outputs}

    def _get(self, names: list[str]) -> dict[str, Any]:
        if not self._state:
            self.reset()
        # Copies of arrays: a caller changing what it got must not change the cache.
        return {name: copy(self._state[name]) for name in names}

    def reset(self) -> None:
        """Back to the defaults of variables.yml, evaluated."""
        self._state = {}
        self._set({})

    def _settable_state(self) -> dict[str, Any]:
        """The inputs as last set, without the read-only ones (they keep their defaults)."""
        names = [var.name for var in self.input_variables if not var.read_only]
        return {name: self._state[name] for name in names if name in self._state}
