"""Loads the model's variables from ``files/variables.yml`` and renders them as a table."""

from importlib.resources import files

from lume_model.utils import variables_from_yaml
from lume_model.variables import ScalarVariable

VARIABLES_FILE = files("my_package") / "files" / "variables.yml"


def load_variables() -> tuple[list[ScalarVariable], list[ScalarVariable]]:
    """Return fresh ``(input_variables, output_variables)`` lists from variables.yml.

    Fresh objects on every call: lume-model's variables mutate themselves while
    validating, so sharing them between model instances would couple the instances.
    """
    return variables_from_yaml(VARIABLES_FILE.read_text(encoding="utf-8"))


def _format_range(var: ScalarVariable) -> str:
    if var.value_range is None:
        return ""
    low, high = var.value_range
    return f"[{low:g}, {high:g}]"


def describe_table(markdown: bool = False) -> str:
    """The variables as a text table, or as the Markdown table that README.md carries."""
    inputs, outputs = load_variables()
    header = ("variable", "kind", "default", "range", "unit")
    rows = [
        (
            var.name,
            kind,
            "" if var.default_value is None else f"{var.default_value:g}",
            _format_range(var),
            var.unit or "",
        )
        for kind, group in (("input", inputs), ("output", outputs))
        for var in group
    ]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join((f"`{r[0]}`", *r[1:])) + " |" for r in rows]
        return "\n".join(lines)
    widths = [max(len(str(c)) for c in col) for col in zip(header, *rows, strict=False)]
    return "\n".join(
        "  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in (header, *rows)
    )
