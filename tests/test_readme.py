"""README.md stays true: its quickstart is what CI runs, its variables table is variables.yml."""

import re
from pathlib import Path

from my_package.variables import describe_table

ROOT = Path(__file__).resolve().parents[1]


def quickstart_commands() -> list[str]:
    readme = (ROOT / "README.md").read_text()
    section = readme.split("## Quickstart", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```bash\n(.*?)```", section, flags=re.DOTALL)
    return [line for block in blocks for line in block.splitlines() if not line.startswith("#")]


def test_quickstart_is_two_commands_install_run_and_install_test() -> None:
    run, test = quickstart_commands()
    assert "pip install -e ." in run and run.endswith("python -m my_package run")
    assert 'pip install -e ".[dev]"' in test and test.endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    _, test = quickstart_commands()
    assert f"readme_test_command='{test}'" in (ROOT / ".ci" / "run").read_text()


def test_readme_table_is_describe_markdown() -> None:
    assert describe_table(markdown=True) in (ROOT / "README.md").read_text(), (
        "README.md's variables table is out of date: "
        "paste the output of `python -m my_package describe --markdown`"
    )
