"""The example's analysis step: the quad-scan emittance fit (deleted with the example)."""

import numpy as np
import pytest

from my_package.model import MyPackageModel
from my_package.quad_scan import analyze, fit_emittance
from my_package.validation import ScanRange, collect_inputs

# Beams the scans are generated with: (beta_x [m], alpha_x, emit_x [nm rad], drift_length [m]).
TRUTHS = [(10.0, 0.5, 4.0, 5.0), (3.0, -1.5, 0.8, 2.0), (40.0, 2.0, 25.0, 8.0)]


def _scan(beta: float, alpha: float, emit: float, length: float, num: int = 101) -> tuple:
    fixed = {"beta_x": beta, "alpha_x": alpha, "emit_x": emit, "drift_length": length}
    values = collect_inputs(fixed, {"quad_k1l": ScanRange(start=-1.0, stop=1.0, num=num)})
    return values, MyPackageModel().evaluate(values)


@pytest.mark.parametrize(("beta", "alpha", "emit", "length"), TRUTHS)
def test_fit_recovers_the_beam_the_scan_was_generated_with(beta, alpha, emit, length):
    values, outputs = _scan(beta, alpha, emit, length)
    fit = analyze(values, outputs)
    assert fit["emit_x_fit"] == pytest.approx(emit, rel=0.01)
    assert fit["beta_x_fit"] == pytest.approx(beta, rel=0.01)
    assert fit["alpha_x_fit"] == pytest.approx(alpha, rel=0.01, abs=0.01)


def test_fit_within_one_percent_with_measurement_noise():
    values, outputs = _scan(10.0, 0.5, 4.0, 5.0, num=401)
    rng = np.random.default_rng(7)
    noisy = outputs["sigma_x"] * (1.0 + 0.002 * rng.standard_normal(401))  # 0.2 % rms
    fit = fit_emittance(values["quad_k1l"], noisy, 5.0)
    assert fit["emit_x_fit"] == pytest.approx(4.0, rel=0.01)
    assert fit["beta_x_fit"] == pytest.approx(10.0, rel=0.01)


def test_fit_only_for_a_scan_of_the_quadrupole_alone():
    values, outputs = _scan(10.0, 0.5, 4.0, 5.0)
    assert analyze({**values, "quad_k1l": 0.1}, outputs) == {}  # no scan
    grid = {**values, "beta_x": np.full(101, 10.0)}
    assert analyze(grid, outputs) == {}  # two scanned inputs


def test_fit_refuses_what_is_not_a_beam():
    with pytest.raises(ValueError, match="three different"):
        fit_emittance(np.array([0.1, 0.1, 0.2]), np.ones(3), 5.0)
    with pytest.raises(ValueError, match="not positive definite"):
        k = np.linspace(-1, 1, 11)
        fit_emittance(k, np.sqrt(np.abs(1.0 - k**2)), 5.0)  # a downward parabola


def test_evaluate_scan_saves_the_fit_with_units(tmp_path, monkeypatch, capsys):
    from my_package.cli import main
    from my_package.targets import FilesystemTarget

    monkeypatch.setenv("MY_PACKAGE_OUTPUT_DIR", str(tmp_path))
    assert main(["evaluate", "--scan", "quad_k1l=-1:1:51", "--set", "emit_x=2.5"]) == 0
    assert "emit_x_fit = 2.5 nm rad" in capsys.readouterr().out
    target = FilesystemTarget(tmp_path)
    (summary,) = target.summaries("my_package")
    result = target.load(target.find("my_package", summary["unique_hash"]))
    assert result.outputs["emit_x_fit"] == pytest.approx(2.5, rel=0.01)
    assert result.metadata["units"]["emit_x_fit"] == "nm rad"
