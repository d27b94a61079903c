"""The model. EDIT THIS FILE: replace the placeholder in ``_evaluate`` with your physics.

This is the skeleton that ``scripts/rename.py --strip-examples`` left in place of
the template's example. Its variables (names, defaults, ranges, units) are
declared in ``files/variables.yml``; keep the two files in step: every input
there arrives in ``input_dict``, every output there must be returned.

``_evaluate`` is pure science: a dict of numbers in, a dict of numbers out. It
receives either floats (one point) or equal-length numpy arrays (a scan), so
write it with numpy operations that work on both. Validation happens before it
is called (``validation.py``); saving happens after (``results.py``, ``targets.py``).
"""

from typing import Any

from lume_model.base import LUMEBaseModel

from my_package.validation import Value, check_outputs, validate_inputs
from my_package.variables import load_variables


class MyPackageModel(LUMEBaseModel):
    """Placeholder model: ``y = gain * x``. Replace it with yours.

    Usage::

        model = MyPackageModel()
        model.evaluate({"x": 2.0})                       # one point
        model.evaluate({"x": np.linspace(0, 1, 101)})    # a scan
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # With no arguments, the variables come from files/variables.yml, so the
        # class can be built bare (as lume-services does through the entry point).
        if not args:
            inputs, outputs = load_variables()
            kwargs.setdefault("input_variables", inputs)
            kwargs.setdefault("output_variables", outputs)
        super().__init__(*args, **kwargs)

    def input_validation(self, input_dict: dict[str, Any]) -> dict[str, Value]:
        # This package's validation replaces lume-model's: it also accepts numpy
        # arrays, fills defaults and refuses out-of-range values (lume-model warns).
        return validate_inputs(input_dict, self.input_variables)

    def output_validation(self, output_dict: dict[str, Value]) -> dict[str, Value]:
        return check_outputs(output_dict, self.output_variables)

    def _evaluate(self, input_dict: dict[str, Value]) -> dict[str, Value]:
        # Placeholder physics: replace with yours (numpy operations only, so that
        # floats and arrays both work).
        return {"y": input_dict["gain"] * input_dict["x"]}
