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


def test_profile_is_the_gaussian_of_sigma_on_the_screen(model: MyPackageModel) -> None:
    # One point: shape (100,), a line density normalized to 1 over the 5 mm screen (the
    # beam, sigma ~ 0.1 mm, is well inside it), peaked at the centre at 1 / (sqrt(2 pi) sigma).
    out = model.evaluate({**POINT, "quad_k1l": 0.2})
    profile = out["profile_x"]
    assert profile.shape == (100,) and profile.dtype == np.float64
    assert profile.sum() * 0.05 == pytest.approx(1.0, rel=1e-9)
    assert profile.max() == pytest.approx(
        math.exp(-0.5 * (0.025 / 0.1) ** 2) / (0.1 * 2.5066282746)
    )
    assert np.array_equal(profile, profile[::-1])  # centred on the axis


def test_profile_of_a_scan_has_one_row_per_point(model: MyPackageModel) -> None:
    k1l = np.linspace(-1.0, 1.0, 7)
    out = model.evaluate({**POINT, "quad_k1l": k1l})
    assert out["profile_x"].shape == (7, 100)
    for i, value in enumerate(k1l):
        row = model.evaluate({**POINT, "quad_k1l": float(value)})["profile_x"]
        assert np.allclose(out["profile_x"][i], row, rtol=1e-12)


def test_model_builds_bare_and_is_a_lume_base_model() -> None:
    from lume.model import LUMEModel

    model = MyPackageModel()
    assert isinstance(model, LUMEModel)
    assert model.input_names == ["beta_x", "alpha_x", "emit_x", "quad_k1l", "drift_length"]
    assert model.output_names == ["sigma_x", "beta_x_screen", "alpha_x_screen", "profile_x"]


def test_lume_model_set_get_reset() -> None:
    from lume.exceptions import ReadOnlyError

    model = MyPackageModel()
    assert model.get(["quad_k1l", "beta_x_screen"]) == {"quad_k1l": 0.1, "beta_x_screen": 3.125}
    # set() evaluates the new point; the inputs not set keep their last values.
    model.set({"alpha_x": 0.0})
    model.set({"quad_k1l": 0.0})
    got = model.get(["alpha_x", "quad_k1l", "beta_x_screen", "sigma_x", "profile_x"])
    assert got["alpha_x"] == 0.0 and got["quad_k1l"] == 0.0
    assert got["beta_x_screen"] == pytest.approx(12.5)  # the drift-only case above
    assert got["sigma_x"] == pytest.approx(math.sqrt(4e-9 * 12.5) * 1e3)
    assert got["profile_x"].shape == (100,)
    model.reset()
    assert model.get(["alpha_x", "beta_x_screen"]) == {"alpha_x": 0.5, "beta_x_screen": 3.125}
    # Outputs are read-only; out-of-range inputs are refused and change nothing.
    assert model.supported_variables["sigma_x"].read_only
    with pytest.raises(ReadOnlyError, match="sigma_x"):
        model.set({"sigma_x": 1.0})
    with pytest.raises(ValueError, match="quad_k1l"):
        model.set({"quad_k1l": 50.0})
    assert model.get_value("quad_k1l") == 0.1
