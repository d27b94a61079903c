"""The generic tests hold for any valid variables file, not only the example's.

A copy of the template is set up as a user's project (``scripts/rename.py
--strip-examples``), given a variables file unlike the example's (a foreign
california_regression-style file: no units, an input without a range, a constant, a
``warn`` input, an image output) and a model for it; then the project's own generic tests
(validation, CLI, flow through Prefect and both targets, entry points) run there. Slow:
2.8 minutes on a loaded machine (load average 8 on 2 cores).
"""

import subprocess
import sys
from pathlib import Path

import pytest
from project_copy import copy_env, copy_project

ROOT = Path(__file__).resolve().parents[1]
VARIABLES = """\
input_variables:
  MedInc:
    variable_class: ScalarVariable
    default_value: 3.7857346
    is_constant: false
    value_range: [0.4999, 15.0001]
  HouseAge:
    variable_class: ScalarVariable
    default_value: 29.0
  Scale:
    variable_class: ScalarVariable
    default_value: 1.5
    is_constant: true
  Latitude:
    variable_class: ScalarVariable
    default_value: 34.26
    value_range: [32.54, 41.95]
    default_validation_config: warn
output_variables:
  MedHouseVal:
    variable_class: ScalarVariable
  Histogram:
    variable_class: NDVariable
    shape: [2, 3]
"""
MODEL = '''"""A stand-in regression over the variables above."""

import numpy as np

from housing.lume_adapter import StatelessModel
from housing.validation import Value


class HousingModel(StatelessModel):
    """A linear stand-in for a trained regression, and a 2x3 image that scales with it."""

    def _evaluate(self, input_dict: dict[str, Value]) -> dict[str, Value]:
        value = (
            0.4 * input_dict["MedInc"]
            + 0.01 * input_dict["HouseAge"] * input_dict["Scale"]
            - 0.001 * input_dict["Latitude"]
        )
        image = np.asarray(value)[..., np.newaxis, np.newaxis] * np.arange(6.0).reshape(2, 3)
        return {"MedHouseVal": value, "Histogram": image}
'''
# The tests that read the project's own variables file (the variables-file and semantics
# tests write their own files, so they prove nothing more here).
GENERIC_TESTS = [
    "tests/test_validation.py",
    "tests/test_cli.py",
    "tests/test_flow.py",
    "tests/test_entry_points.py",
]


@pytest.mark.slow
def test_generic_tests_pass_on_a_foreign_variables_file(tmp_path: Path) -> None:
    repo = copy_project(tmp_path / "repo")
    env = copy_env(repo, tmp_path / "prefect", "someone/housing")
    names = ["--project-name", "Housing", "--author", "Ada Lovelace", "--email", "ada@example.org"]
    rename = [sys.executable, "scripts/rename.py", *names, "--strip-examples"]
    subprocess.run(rename, cwd=repo, env=env, check=True, capture_output=True, timeout=120)
    (repo / "housing" / "files" / "variables.yml").write_text(VARIABLES)
    (repo / "housing" / "model.py").write_text(MODEL)
    command = [sys.executable, "-m", "pytest", "-m", "not slow and not container", "-q"]
    command += ["-p", "no:cacheprovider", *GENERIC_TESTS]
    proc = subprocess.run(command, cwd=repo, env=env, capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-3000:]
    assert " failed" not in proc.stdout and " passed" in proc.stdout
