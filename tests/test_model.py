"""The example physics against values computed by hand, one point and vectorized."""

import math

import numpy as np
import pytest

from my_package.model import MyPackageModel

POINT = {"beta_x": 10.0, "alpha_x": 0.0, "emit_x": 4.0, "drift_length": 5.0}


@pytest.fixture(scope="module")
def model() -> MyPackageModel:
    return MyPackageModel()


def test_drift_only(model: MyPackageModel) -> None:
    # k1l = 0: beta(L) = beta0 - 2 L alpha0 + L^2 gamma0 = 10 + 25 * 0.1 = 12.5 m,
    # alpha(L) = alpha0 - L gamma0 = -0.5, sigma = sqrt(4e-9 * 12.5) m = 0.2236 mm.
    out = model.evaluate({**POINT, "quad_k1l": 0.0})
    assert out["beta_x_screen"] == pytest.approx(12.5)
    assert out["alpha_x_screen"] == pytest.approx(-0.5)
    assert out["sigma_x"] == pytest.approx(math.sqrt(4e-9 * 12.5) * 1e3)


def test_focusing_quad_images_the_angle(model: MyPackageModel) -> None:
    # k1l = 1/L makes M11 = 0: the screen sees only the initial angles,
    # beta = L^2 gamma0 = 2.5 m, alpha = -L gamma0 = -0.5, sigma = sqrt(1e-8) m = 0.1 mm.
    out = model.evaluate({**POINT, "quad_k1l": 0.2})
    assert out["beta_x_screen"] == pytest.approx(2.5)
    assert out["alpha_x_screen"] == pytest.approx(-0.5)
    assert out["sigma_x"] == pytest.approx(0.1)


def test_twiss_invariant_is_conserved(model: MyPackageModel) -> None:
    # det M = 1, so beta*gamma - alpha^2 = 1 at the screen as at the quadrupole.
    k1l = np.linspace(-5.0, 5.0, 1001)
    out = model.evaluate({"quad_k1l": k1l, "alpha_x": 1.3})
    gamma = (1 + out["alpha_x_screen"] ** 2) / out["beta_x_screen"]
    assert np.allclose(out["beta_x_screen"] * gamma - out["alpha_x_screen"] ** 2, 1.0)


def test_scan_has_a_waist_at_the_focusing_strength(model: MyPackageModel) -> None:
    # beta(k) = (1 - L k)^2 beta0 + L^2 gamma0 for alpha0 = 0: smallest at k1l = 1/L.
    k1l = np.linspace(-1.0, 1.0, 2001)
    out = model.evaluate({**POINT, "quad_k1l": k1l})
    assert k1l[np.argmin(out["sigma_x"])] == pytest.approx(0.2, abs=1e-3)


def test_vector_and_scalar_evaluation_agree(model: MyPackageModel) -> None:
    rng = np.random.default_rng(7)
    points = {
        "beta_x": rng.uniform(0.1, 100, 50),
        "alpha_x": rng.uniform(-20, 20, 50),
        "emit_x": rng.uniform(0.01, 1000, 50),
        "quad_k1l": rng.uniform(-5, 5, 50),
        "drift_length": rng.uniform(0.1, 50, 50),
    }
    vector = model.evaluate(points)
    for i in range(50):
        scalar = model.evaluate({name: float(values[i]) for name, values in points.items()})
        for name, value in scalar.items():
            assert vector[name][i] == pytest.approx(value, rel=1e-12)


def test_model_builds_bare_and_is_a_lume_model() -> None:
    from lume_model.base import LUMEBaseModel

    model = MyPackageModel()
    assert isinstance(model, LUMEBaseModel)
    assert model.input_names == ["beta_x", "alpha_x", "emit_x", "quad_k1l", "drift_length"]
    assert model.output_names == ["sigma_x", "beta_x_screen", "alpha_x_screen"]
