"""The model. EDIT THIS FILE: replace the example physics in ``_evaluate`` with yours.

The example computes the rms horizontal beam size on a screen after a thin
quadrupole and a drift: the physics of a quadrupole scan, the standard way to
measure a beam's emittance. Its variables (names, defaults, ranges, units) are
declared in ``files/variables.yml``; keep the two files in step.

``_evaluate`` is pure science: a dict of numbers in, a dict of numbers out. It
receives either floats (one point) or equal-length numpy arrays (a scan), so
write it with numpy operations that work on both. An array output (an NDVariable
in variables.yml) has its declared shape for one point and (N, *shape) for a scan
of N. Validation happens before and after it (``validation.py``); the class it
inherits (``lume_adapter.py``) makes it a lume-base LUMEModel.
"""

from typing import ClassVar

import numpy as np

from my_package.lume_adapter import StatelessModel
from my_package.validation import Value

# The screen's pixel centres [mm]: 100 pixels of 50 um, centred on the beam axis.
PIXELS_MM = (np.arange(100) - 49.5) * 0.05


class MyPackageModel(StatelessModel):
    """RMS beam size at a screen after a thin quadrupole and a drift.

    Inputs: Twiss ``beta_x`` [m] and ``alpha_x`` at the quadrupole, geometric
    emittance ``emit_x`` [nm rad], integrated quadrupole strength ``quad_k1l``
    [1/m] (positive focuses in x), drift length ``drift_length`` [m] to the screen.
    Outputs: rms beam size ``sigma_x`` [mm], the Twiss ``beta_x_screen`` [m] and
    ``alpha_x_screen`` at the screen, and ``profile_x`` [1/mm]: the beam's projected
    horizontal line density (a Gaussian of rms ``sigma_x``, normalized to 1) at the
    centres of the screen's 100 pixels of 50 um.

    Usage::

        model = MyPackageModel()
        model.evaluate({"quad_k1l": 0.2})                          # one point
        model.evaluate({"quad_k1l": np.linspace(-1.0, 1.0, 101)})  # a scan
        model.set({"quad_k1l": 0.2}); model.get(["sigma_x"])       # lume-base LUMEModel
    """

    # How scans of this model run best (README: Scaling up); None: the defaults. A slow model
    # that waits on an external program wants workers (threads); a CPU-bound pure-Python one
    # processes = True. --workers, --processes, --chunk-size and --dask override these.
    chunk_size: ClassVar[int | None] = None  # points per chunk (one Prefect task each)
    workers: ClassVar[int | None] = None  # chunks evaluated at once
    processes: ClassVar[bool] = False  # worker processes instead of threads

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

        # Line density at each pixel centre; a trailing axis makes one profile per point.
        width = np.asarray(sigma)[..., np.newaxis]
        profile = np.exp(-0.5 * (PIXELS_MM / width) ** 2) / (np.sqrt(2.0 * np.pi) * width)

        return {
            "sigma_x": sigma,
            "beta_x_screen": beta1,
            "alpha_x_screen": alpha1,
            "profile_x": profile,
        }
