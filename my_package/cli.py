"""Command line: ``python -m my_package run | evaluate | describe``.

``run`` goes through Prefect (the flow in flow.py); ``evaluate`` does the same
steps in plain Python, for fast iteration; both validate inputs the same way and
write the same result files. Heavy modules are imported inside the commands, so
``--help`` answers at once and never imports Prefect.
"""

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any

from my_package import results_cli  # argparse only: --help stays fast

EPILOG = """examples:
  python -m my_package run
  python -m my_package run --set NAME=VALUE --set NAME=VALUE
  python -m my_package evaluate --scan NAME=START:STOP:NUM
  python -m my_package run --target mongodb      # LUME_RESULTS_DB__HOST etc. from the environment
  python -m my_package describe --markdown
  python -m my_package results list          # then: results show|export|plot HASH
"""


class UsageError(Exception):
    """A command-line argument that cannot be understood."""


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept free of heavy imports)."""
    parser = argparse.ArgumentParser(
        prog="python -m my_package",
        description="Run the my_package LUME model, locally or as a Prefect flow.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, help_text in (
        ("run", "run the Prefect flow: validate, evaluate, save the result"),
        ("evaluate", "the same steps without Prefect, for fast iteration"),
    ):
        cmd = commands.add_parser(name, help=help_text, description=help_text)
        cmd.add_argument(
            "--set",
            dest="assignments",
            action="append",
            default=[],
            metavar="NAME=VALUE",
            help="set an input variable (repeatable); the others keep their defaults",
        )
        cmd.add_argument(
            "--scan",
            dest="scans",
            action="append",
            default=[],
            metavar="NAME=START:STOP:NUM",
            help="scan an input over NUM evenly spaced values (repeatable: a grid)",
        )
        cmd.add_argument(
            "--target",
            choices=("filesystem", "mongodb"),
            help="where to save the result (default: MY_PACKAGE_TARGET, else filesystem)",
        )
        cmd.add_argument(
            "--output-dir",
            metavar="DIR",
            help="filesystem target's directory (default: MY_PACKAGE_OUTPUT_DIR, else ./results)",
        )
    describe = commands.add_parser("describe", help="list the model's variables")
    describe.add_argument("--markdown", action="store_true", help="print README.md's table")
    results_cli.add_parser(commands)
    return parser


def _split(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"{option} {text!r}: expected NAME=VALUE")
    return name.strip(), value.strip()


def parse_assignments(assignments: Sequence[str], scans: Sequence[str]) -> tuple[dict, dict]:
    """``--set`` and ``--scan`` texts as input values and ScanRanges."""
    from my_package.validation import ScanRange

    values: dict[str, float] = {}
    for text in assignments:
        name, value = _split(text, "--set")
        try:
            values[name] = float(value)
        except ValueError:
            raise UsageError(f"--set {text!r}: {value!r} is not a number") from None
    scan = dict(_split(text, "--scan") for text in scans)
    scan = {name: ScanRange.parse(value) for name, value in scan.items()}
    both = sorted(set(values) & set(scan))
    if both:
        raise UsageError(f"{', '.join(both)} is both --set and --scan; use one of them")
    return values, scan


def _summary(outputs: dict[str, Any], units: dict[str, str] | None = None) -> str:
    import numpy as np

    from my_package.validation import WARNINGS_KEY
    from my_package.variables import is_nd, load_variables

    variables = {var.name: var for var in load_variables()[1]}
    units = {name: getattr(var, "unit", None) or "" for name, var in variables.items()} | (
        units or {}
    )
    lines = [f"warning: {text}" for text in outputs.get(WARNINGS_KEY, [])]
    # The declared outputs, then any that a step of the flow added (an analysis result).
    added = [name for name in outputs if name not in variables and name != WARNINGS_KEY]
    for name in [*variables, *added]:
        array, unit = np.asarray(outputs[name]), units.get(name, "")
        if array.ndim == 0:
            lines.append(f"{name} = {array.item():.6g} {unit}")
        else:  # a scan, or an array output: its shape (arrays) and its extremes
            shape = f"shape {array.shape}, " if name in variables and is_nd(variables[name]) else ""
            lines.append(f"{name} = {shape}{array.min():.6g} .. {array.max():.6g} {unit}")
    return "\n".join(line.rstrip() for line in lines)


def _describe_ref(ref: Any) -> str:
    if ref.target == "filesystem":
        return f"Result saved to {ref.location}"
    return f"Result saved to MongoDB collection {ref.project_name!r}, id {ref.location}"


def command_evaluate(values: dict, scan: dict, target: str | None) -> None:
    """Validate, evaluate and save without Prefect."""
    from my_package.config import Settings
    from my_package.model import MyPackageModel
    from my_package.results import Result, run_metadata
    from my_package.targets import save_result
    from my_package.validation import collect_inputs

    settings = Settings()
    model = MyPackageModel()
    inputs = collect_inputs(values, scan, model.input_variables)
    outputs = model.evaluate(inputs)
    metadata = run_metadata(model, inputs, scan, None)
    # example-only:start
    from my_package import quad_scan  # the flow's analysis step, as in flow.py

    try:
        fit = quad_scan.analyze(inputs, outputs)
    except ValueError as exc:
        print(f"warning: no quad-scan fit: {exc}", file=sys.stderr)
        fit = {}
    outputs = {**outputs, **fit}
    metadata["units"].update({name: quad_scan.FIT_UNITS[name] for name in fit})
    # example-only:end
    result = Result(
        project_name=settings.project_name,
        flow_id="local",
        inputs=inputs,
        outputs=outputs,
        metadata=metadata,
    )
    ref = save_result(result, settings, target)
    print(_summary(outputs, metadata["units"]))
    print(_describe_ref(ref))


def command_run(values: dict, scan: dict, target: str | None) -> None:
    """Validate here (fails fast, before Prefect starts), then run the flow."""
    from my_package.validation import ModelInputs, collect_inputs

    collect_inputs(values, scan)
    # A local run of a scientific model should not phone home; export these to override.
    os.environ.setdefault("DO_NOT_TRACK", "1")
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from my_package.flow import my_package_flow

    updates = {}
    if not PREFECT_API_URL.value():
        # No Prefect server configured: this run's API is a temporary one that ends with
        # this process, so nothing could ever read a heartbeat. Skipping it saves the ~1 s
        # Prefect waits for the heartbeat thread; with a real server, heartbeats stay on.
        updates["flows.heartbeat_frequency"] = None
    with temporary_settings(updates=updates):
        ref = my_package_flow(inputs=ModelInputs(**values), scan=scan or None, target=target)
    from my_package.config import Settings
    from my_package.targets import load_result

    result = load_result(ref, Settings())  # the stored result, checked: what evaluate prints
    print(_summary(result.outputs, result.metadata.get("units")))
    print(_describe_ref(ref))


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m my_package``; returns the exit code."""
    args = build_parser().parse_args(argv)
    from my_package.errors import VariablesFileError

    if args.command == "describe":
        from my_package.variables import describe_table

        try:
            print(describe_table(markdown=args.markdown))
        except VariablesFileError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    if args.command == "results":
        return results_cli.run(args)

    from pydantic import ValidationError

    from my_package.targets import TargetError
    from my_package.validation import InputValidationError, ModelOutputError

    try:
        if args.output_dir:
            os.environ["MY_PACKAGE_OUTPUT_DIR"] = args.output_dir
        values, scan = parse_assignments(args.assignments, args.scans)
        command = command_run if args.command == "run" else command_evaluate
        command(values, scan, args.target)
    except (UsageError, InputValidationError, VariablesFileError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except ValidationError as exc:  # settings from the environment, or a flow parameter
        print(f"error: invalid setting or parameter:\n{exc}", file=sys.stderr)
        return 2
    except (TargetError, ModelOutputError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0
