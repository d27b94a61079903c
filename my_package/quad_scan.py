"""Example analysis step: the emittance and Twiss parameters from a quadrupole scan.

The standard quad-scan analysis: for a thin quadrupole of strength k (``quad_k1l``)
followed by a drift L, the squared beam size on the screen is a parabola in k,

    sigma^2(k) = L^2 S11 k^2 - 2 L (S11 + L S12) k + (S11 + 2 L S12 + L^2 S22),

where S = emittance * [[beta, -alpha], [-alpha, gamma]] is the beam matrix at the
quadrupole. Fitting the parabola gives S, hence the emittance sqrt(det S) and beta,
alpha (Minty & Zimmermann, Measurement and Control of Charged Particle Beams, 4.2).

The flow runs it as a task after evaluate when a run scans ``quad_k1l`` alone; the
fitted values join the result's outputs. This module is part of the example: --strip-examples
deletes it, together with the lines of flow.py that call it.
"""

from collections.abc import Mapping
from typing import Any

import numpy as np

SCANNED = "quad_k1l"
# Fitted values added to the outputs, with their units (recorded in the metadata).
FIT_UNITS = {"emit_x_fit": "nm rad", "beta_x_fit": "m", "alpha_x_fit": ""}


def fit_emittance(k1l: np.ndarray, sigma_mm: np.ndarray, drift_length: float) -> dict[str, float]:
    """Emittance [nm rad], beta [m] and alpha at the quadrupole from a quad scan.

    Raises ValueError if the parabola does not describe a beam (fewer than three
    strengths, or a beam matrix that is not positive definite: noise or a bad scan).
    """
    k1l = np.asarray(k1l, dtype=float)
    if np.unique(k1l).size < 3:
        raise ValueError("a quad-scan fit needs at least three different quadrupole strengths")
    sigma2 = (np.asarray(sigma_mm, dtype=float) * 1e-3) ** 2  # mm -> m, squared
    a, b, c = np.polyfit(k1l, sigma2, 2)
    length = float(drift_length)
    s11 = a / length**2
    s12 = -(b + 2.0 * length * s11) / (2.0 * length**2)
    s22 = (c - s11 - 2.0 * length * s12) / length**2
    det = s11 * s22 - s12**2
    if s11 <= 0 or det <= 0:
        raise ValueError("the fitted beam matrix is not positive definite: check the scan")
    emittance = float(np.sqrt(det))
    return {
        "emit_x_fit": emittance * 1e9,  # m rad -> nm rad
        "beta_x_fit": float(s11 / emittance),
        "alpha_x_fit": float(-s12 / emittance),
    }


def analyze(values: Mapping[str, Any], outputs: Mapping[str, Any]) -> dict[str, float]:
    """The fit's outputs for a scan of ``quad_k1l`` alone; nothing for any other run."""
    scanned = [name for name, value in values.items() if np.ndim(value) == 1]
    if scanned != [SCANNED]:
        return {}
    return fit_emittance(values[SCANNED], outputs["sigma_x"], float(values["drift_length"]))
