"""The model. EDIT THIS FILE: replace the example physics in ``_evaluate`` with yours.

The example computes the rms horizontal beam size on a screen after a thin
quadrupole and a drift: the physics of a quadrupole scan, the standard way to
measure a beam's emittance. Its variables (names, defaults, ranges, units) are
declared in ``files/variables.yml``; keep the two files in step.

``_evaluate`` is pure science: a dict of numbers in, a dict of numbers out. It
receives either floats (one point) or equal-length numpy arrays (a scan), so
write it with numpy operations that work on both. Validation happens before it
is called (``validation.py``); saving happens after (``results.py``, ``targets.py``).
"""

from typing import Any

import numpy as np
from lume_model.base import LUMEBaseModel

from my_package.validation import Value, check_outputs, validate_inputs
from my_package.variables import load_variables


class MyPackageModel(LUMEBaseModel):
    """RMS beam size at a screen after a thin quadrupole and a drift.

    Inputs: Twiss ``beta_x`` [m] and ``alpha_x`` at the quadrupole, geometric
    emittance ``emit_x`` [nm rad], integrated quadrupole strength ``quad_k1l``
    [1/m] (positive focuses in x), drift length ``drift_length`` [m] to the screen.
    Outputs: rms beam size ``sigma_x`` [mm] and the Twiss ``beta_x_screen`` [m],
    ``alpha_x_screen`` at the screen.

    Usage::

        model = MyPackageModel()
        model.evaluate({"quad_k1l": 0.2})                          # one point
        model.evaluate({"quad_k1l": np.linspace(-1.0, 1.0, 101)})  # a scan
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
        beta0 = input_dict["beta_x"]
        alpha0 = input_dict["alpha_x"]
        gamma0 = (1.0 + alpha0**2) / beta0
        emittance = input_dict["emit_x"] * 1e-9  # nm rad -> m rad
        k1l = input_dict["quad_k1l"]
        length = input_dict["drift_length"]

        # Transfer matrix M = Drift(L) @ ThinQuad(k1l) = [[1 - L k1l, L], [-k1l, 1]].
        m11 = 1.0 - length * k1l
        m12 = length
        m21 = -k1l
        m22 = 1.0

        # Twiss parameters transported by M (Wiedemann, Particle Accelerator Physics, ch. 8).
        beta1 = m11**2 * beta0 - 2.0 * m11 * m12 * alpha0 + m12**2 * gamma0
        alpha1 = -m11 * m21 * beta0 + (m11 * m22 + m12 * m21) * alpha0 - m12 * m22 * gamma0
        sigma = np.sqrt(emittance * beta1) * 1e3  # m -> mm

        return {"sigma_x": sigma, "beta_x_screen": beta1, "alpha_x_screen": alpha1}
