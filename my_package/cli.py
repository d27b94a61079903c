"""Command line: ``my-package`` (or ``python -m my_package``) ``run | evaluate | serve | describe``.

``run`` goes through Prefect (the flow in flow.py); ``evaluate`` does the same
steps in plain Python, for fast iteration; both validate inputs the same way and
write the same result files. Before any expensive work both run the pre-flight
checks (preflight.py), so a mistake costs a second, not Prefect's start-up.
Heavy modules are imported inside the commands, so ``--help`` answers at once.

Adding a subcommand: write ``add_NAME(commands)`` (below, or in your own module)
that calls ``commands.add_parser(...)`` and ``set_defaults(handler=...)``, and list
it in ``SUBCOMMANDS``. A handler takes the parsed arguments and returns the exit
code (None: 0). Raise ``my_package.errors.UserError`` (or a subclass) for a
mistake the user can fix: ``main`` prints it as one ``error:`` line, no traceback.
"""

import argparse
import difflib
import os
import re
import signal
import sys
from collections.abc import Callable, Sequence
from typing import Any

from my_package import results_cli  # argparse only: --help stays fast
from my_package.errors import UserError

PROG = "my-package"
DEBUG_ENV = "MY_PACKAGE_DEBUG"  # set to 1 to see the traceback of a user error
EPILOG = f"""examples:
  {PROG} run
  {PROG} run --set NAME=VALUE --set NAME=VALUE
  {PROG} evaluate --scan NAME=START:STOP:NUM
  {PROG} run --target mongodb      # LUME_RESULTS_DB__HOST etc. from the environment
  {PROG} describe --markdown
  {PROG} results list          # then: results show|export|plot HASH

A mistake prints one "error:" line and exits 2 (usage, input, setting) or 1 (a
service that does not answer); --debug or {DEBUG_ENV}=1 shows the traceback.
"""


class UsageError(UserError):
    """A command-line argument that cannot be understood."""


# --------------------------------------------------------------------------- parser


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage mistake is one ``error:`` line like every other mistake."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"error: {message} (see {self.prog} --help)\n")


class _VersionAction(argparse.Action):
    """``--version``: computed only when asked, from installed metadata (no heavy import)."""

    def __init__(self, option_strings: Sequence[str], dest: str, **kwargs: Any) -> None:
        super().__init__(option_strings, dest, nargs=0, help="show the versions and exit")

    def __call__(self, parser: argparse.ArgumentParser, *args: Any) -> None:
        from importlib.metadata import PackageNotFoundError, version

        from my_package import __version__

        def installed(name: str) -> str:
            try:
                return version(name)
            except PackageNotFoundError:
                return "not installed"

        # lume-base replaces lume-model as the LUME foundation: show whichever is installed.
        lume = [f"{name} {installed(name)}" for name in ("lume-base", "lume-model")]
        lume = [text for text in lume if not text.endswith("not installed")] or lume[:1]
        print(
            f"{PROG} {__version__} (model my_package.model.MyPackageModel; "
            f"{', '.join(lume)}, prefect {installed('prefect')}, python {sys.version.split()[0]})"
        )
        parser.exit()


def _add_model_arguments(cmd: argparse.ArgumentParser, *, retries: bool = False) -> None:
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
    # A scan's chunks and workers (my_package/chunks.py; README: Scaling up).
    scale = cmd.add_argument_group("scans in parallel (default: the model's, else 1 thread)")
    scale.add_argument("--workers", type=int, metavar="N", help="chunks evaluated at once")
    scale.add_argument(
        "--processes",
        action="store_true",
        default=None,
        help="worker processes, not threads (CPU-bound pure-Python models)",
    )
    scale.add_argument("--chunk-size", type=int, metavar="K", help="points per chunk")
    scale.add_argument(
        "--dask", metavar="ADDRESS", help="on a Dask cluster: tcp://HOST:PORT, or local:N"
    )
    if retries:  # run only: a flow retries a failing chunk, evaluate never does
        scale.add_argument(
            "--chunk-retries", type=int, metavar="N", help="retries of a failing chunk"
        )


def _parallel(args: argparse.Namespace) -> Any:
    """The scan's chunking options from the flags (chunks.options adds environment and model)."""
    from my_package.chunks import options

    retries = getattr(args, "chunk_retries", None)  # run only: evaluate never retries
    return options(args.workers, args.processes, args.chunk_size, args.dask, retries)


def add_run(commands: Any) -> None:
    help_text = "run the Prefect flow: validate, evaluate, save the result"
    cmd = commands.add_parser("run", help=help_text, description=help_text)
    _add_model_arguments(cmd, retries=True)
    cmd.set_defaults(handler=command_run)


def add_evaluate(commands: Any) -> None:
    help_text = "the same steps without Prefect, for fast iteration"
    cmd = commands.add_parser("evaluate", help=help_text, description=help_text)
    _add_model_arguments(cmd)
    cmd.set_defaults(handler=command_evaluate)


def add_serve(commands: Any) -> None:
    help_text = "serve the model online as EPICS PVs (needs the 'online' extra)"
    cmd = commands.add_parser("serve", help=help_text, description=help_text)
    cmd.add_argument(
        "--prefix", help="PV name prefix (default: MY_PACKAGE_PV_PREFIX, else MY_PACKAGE:)"
    )
    cmd.add_argument(
        "--protocol",
        choices=("pva", "ca", "both"),
        default="both",
        help="PVAccess, Channel Access or both (default)",
    )
    cmd.set_defaults(handler=command_serve)


def add_describe(commands: Any) -> None:
    help_text = "list the model's variables"
    cmd = commands.add_parser("describe", help=help_text, description=help_text)
    form = cmd.add_mutually_exclusive_group()
    form.add_argument("--markdown", action="store_true", help="print README.md's table")
    form.add_argument("--json", action="store_true", help="print the variables as JSON")
    cmd.set_defaults(handler=command_describe)


def add_results(commands: Any) -> None:
    """``results list | show | export | plot`` (results_cli.py)."""
    results_cli.add_parser(commands)


# The subcommands, in --help's order: one registering function each.
SUBCOMMANDS: list[Callable[[Any], None]] = [
    add_run,
    add_evaluate,
    add_serve,
    add_describe,
    add_results,
]


def build_parser() -> argparse.ArgumentParser:
    """The argument parser (kept free of heavy imports)."""
    parser = _Parser(
        prog=PROG,
        description="Run the my_package LUME model, locally or as a Prefect flow.",
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action=_VersionAction)
    parser.add_argument(
        "--debug", action="store_true", help=f"show tracebacks (or set {DEBUG_ENV}=1)"
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for register in SUBCOMMANDS:
        register(commands)
    return parser


# --------------------------------------------------------------------------- --set / --scan


def _split(text: str, option: str) -> tuple[str, str]:
    name, sep, value = text.partition("=")
    if not sep or not name.strip():
        raise UsageError(f"{option} {text!r}: expected NAME=VALUE")
    return name.strip(), value.strip()


def _check_names(names: Sequence[str], option: str) -> None:
    """Unknown input names, with a "did you mean" for a near miss."""
    from my_package.variables import load_variables

    valid = [var.name for var in load_variables()[0]]
    for name in names:
        if name not in valid:
            close = difflib.get_close_matches(name, valid, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise UsageError(
                f"{option}: unknown input {name!r}{hint}; valid inputs are: {', '.join(valid)}"
            )


def parse_assignments(
    assignments: Sequence[str], scans: Sequence[str]
) -> tuple[dict[str, float], dict[str, tuple[float, float, int]]]:
    """``--set`` and ``--scan`` texts as numbers: values, and (START, STOP, NUM) by name.

    Only the texts are checked here (no heavy import): the names and values are checked
    against variables.yml later, by :func:`check_inputs`.
    """
    from my_package.scan_text import check_grid_size, parse_scan

    values: dict[str, float] = {}
    for text in assignments:
        name, value = _split(text, "--set")
        if name in values:
            raise UsageError(f"--set {name} is given twice; give each input once")
        try:
            values[name] = float(value)
        except ValueError:
            raise UsageError(f"--set {text!r}: {value!r} is not a number") from None
    scan: dict[str, tuple[float, float, int]] = {}
    for text in scans:
        name, value = _split(text, "--scan")
        if name in scan:
            raise UsageError(f"--scan {name} is given twice; give each input once")
        scan[name] = parse_scan(value, label=f"--scan {text!r}")
    both = sorted(set(values) & set(scan))
    if both:
        raise UsageError(f"{', '.join(both)} is both --set and --scan; use one of them")
    check_grid_size(num for _, _, num in scan.values())
    return values, scan


def check_inputs(values: dict[str, float], scan: dict[str, tuple[float, float, int]]) -> dict:
    """Check names and values against variables.yml; the scan as ScanRanges.

    Each scanned axis is validated alone: cheap, whatever the size of the grid.
    """
    import numpy as np

    from my_package.validation import ScanRange, validate_inputs

    _check_names(list(values), "--set")
    _check_names(list(scan), "--scan")
    ranges = {name: ScanRange(start=a, stop=b, num=n) for name, (a, b, n) in scan.items()}
    validate_inputs(values)
    for name, axis in ranges.items():
        validate_inputs({**values, name: np.linspace(axis.start, axis.stop, axis.num)})
    return ranges


# --------------------------------------------------------------------------- commands


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


def _preflight(args: argparse.Namespace, *, prefect: bool) -> tuple[dict, dict, Any]:
    """Everything checked before any expensive work, cheapest first.

    The texts, the settings, the target and the services need no numpy or lume (whose
    import is most of a second); the inputs are checked against variables.yml last.
    """
    values, scan_texts = parse_assignments(args.assignments, args.scans)
    from my_package import preflight  # pydantic-settings: after the texts, which need nothing

    settings = preflight.check(args.target, args.output_dir, prefect=prefect)
    scan = check_inputs(values, scan_texts)
    return values, scan, settings


def command_evaluate(args: argparse.Namespace) -> None:
    """Validate, evaluate and save without Prefect."""
    values, scan, settings = _preflight(args, prefect=False)
    from my_package.model import MyPackageModel
    from my_package.results import Result, run_metadata
    from my_package.targets import save_result
    from my_package.validation import collect_inputs

    parallel = _parallel(args)
    from my_package.chunks import scan_in_pool

    model = MyPackageModel()
    inputs = collect_inputs(values, scan, model.input_variables)
    if scan:
        outputs = scan_in_pool(MyPackageModel, inputs, list(scan), parallel)
    else:
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
    ref = save_result(result, settings, settings.target)
    print(_summary(outputs, metadata["units"]))
    print(_describe_ref(ref))


def command_run(args: argparse.Namespace) -> None:
    """Pre-flight checks (before Prefect is imported), then the flow."""
    values, scan, settings = _preflight(args, prefect=True)
    parallel = _parallel(args)
    chosen = None
    if scan:  # the chunking options checked before Prefect starts
        from my_package.chunks import plan, scan_length
        from my_package.model import MyPackageModel
        from my_package.validation import collect_inputs

        chosen = plan(
            scan_length(collect_inputs(values, scan), list(scan)), parallel, MyPackageModel
        )
    if args.output_dir is not None:
        # The flow reads its settings from the environment: pass the flag on.
        os.environ["MY_PACKAGE_OUTPUT_DIR"] = args.output_dir
    from my_package.progress import quiet_resource_tracker

    quiet_resource_tracker()  # before the fork server or a Dask cluster starts processes
    if chosen and (chosen.processes or chosen.local_dask):
        from my_package.chunks import start_fork_server

        # Its workers' environment is this one; it imports the model while Prefect starts.
        start_fork_server(MyPackageModel, chosen)
    os.environ.setdefault("PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS", "90")
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from my_package.flow import my_package_flow

    _quiet_user_errors_on_console()
    from my_package.validation import ModelInputs

    updates: dict[str, Any] = {}
    if not PREFECT_API_URL.value():
        from my_package.local_server import start_temporary_server

        start_temporary_server()  # its logs to a file: see local_server.py
        # No Prefect server configured: this run's API is a temporary one that ends with
        # this process, so nothing could ever read a heartbeat. Skipping it saves the ~1 s
        # Prefect waits for the heartbeat thread; with a real server, heartbeats stay on.
        updates["flows.heartbeat_frequency"] = None
    from my_package.progress import on_ctrl_c

    if _in_main_thread():
        signal.signal(signal.SIGINT, on_ctrl_c(temporary_server=bool(updates)))
    with temporary_settings(updates=updates):
        ref = my_package_flow(
            inputs=ModelInputs(**values),
            scan=scan or None,
            target=settings.target,
            parallel=parallel,
        )
    from my_package.targets import load_result

    result = load_result(ref, settings)  # the stored result, checked: what evaluate prints
    print(_summary(result.outputs, result.metadata.get("units")))
    print(_describe_ref(ref))


def _quiet_user_errors_on_console() -> None:
    """Drop Prefect's console records of a user error: the CLI prints it as one line.

    Only the console's: the Prefect API (and so the UI) still gets every record, and any
    other exception keeps its traceback. (Defined here: ``logging`` is not imported
    until Prefect is.)
    """
    import logging

    from prefect.logging.handlers import PrefectConsoleHandler

    names, stack = set(), list(_known_user_errors())
    while stack:  # the user-error classes and all their subclasses, by name
        cls = stack.pop()
        names.add(cls.__name__)
        stack.extend(cls.__subclasses__())
    # A task's end: "Finished in state Failed('Task run encountered an exception X: ...')"
    state_message = re.compile(rf"encountered an exception ({'|'.join(names)}):")

    # Ctrl-C or SIGTERM: the flow and task runs are marked Crashed; main() prints one line.
    stopped = re.compile(
        r"(Crash detected! |Finished in state Crashed\(')"
        r"Execution was aborted by an? (interrupt|termination) signal"
    )

    def keep(record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if exc is not None:
            return _user_error_code(exc) is None and _stopping_signal(exc) is None
        message = record.getMessage()
        return not (
            record.levelno >= logging.ERROR
            and (state_message.search(message) or stopped.search(message))
        )

    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler):
            handler.addFilter(keep)


def command_serve(args: argparse.Namespace) -> int:
    """The model online (online.py, which reports its own errors)."""
    from my_package.online import command_serve as serve

    return serve(args.prefix, args.protocol)


def command_describe(args: argparse.Namespace) -> None:
    """The variables: a text table, README's Markdown table, or JSON."""
    if args.json:
        import json

        from my_package.variables import load_variables

        inputs, outputs = load_variables()
        document = {
            "inputs": [var.model_dump() for var in inputs],
            "outputs": [var.model_dump() for var in outputs],
        }

        # Array defaults (NDVariable) are numpy arrays: lists in JSON; anything else as text.
        def plain(value: Any) -> Any:
            return value.tolist() if hasattr(value, "tolist") else str(value)

        print(json.dumps(document, indent=2, default=plain))
        return
    from my_package.variables import describe_table

    print(describe_table(markdown=args.markdown))


# --------------------------------------------------------------------------- main


def _known_user_errors() -> dict[type[BaseException], int]:
    """The documented user-facing errors and their exit codes (UserError's own is its attribute).

    Other modules' errors are imported only when something failed or a flow runs.
    """
    from my_package.chunks import ChunkError, ParallelOptionsError
    from my_package.targets import TargetError
    from my_package.validation import InputValidationError, ModelOutputError

    return {
        UserError: 2,
        InputValidationError: 2,
        ParallelOptionsError: 2,
        TargetError: 1,
        ModelOutputError: 1,
        ChunkError: 1,
    }


def _user_error_code(exc: BaseException) -> int | None:
    """The exit code for a mistake the user can fix; None for a bug (shown in full)."""
    if isinstance(exc, UserError):
        return exc.exit_code
    known = _known_user_errors().items()
    return next((code for cls, code in known if isinstance(exc, cls)), None)


def _terminate(signum: int, frame: Any) -> None:
    # SIGTERM as Ctrl-C: Prefect marks the flow run and atexit stops its temporary server.
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _stopping_signal(exc: BaseException) -> str | None:
    """The signal's name when ``exc`` was raised while handling SIGTERM or Ctrl-C, else None.

    Prefect (3.9.1) turns SIGTERM during a flow run into its ``TerminationSignal``. When it
    lands while Prefect is creating a task run, Prefect's own crash handling fails on the
    missing run (``ValueError: Task run is not set``) and the flow fails with that error
    instead: the signal is still in the error's chain. Matched by name, not imported: this
    also runs when Prefect never was.
    """
    seen: set[int] = set()
    link: BaseException | None = exc
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        if isinstance(link, KeyboardInterrupt):
            return str(link) or "SIGINT"
        number = getattr(link, "signal", None)
        if type(link).__name__ == "TerminationSignal" and isinstance(number, int):
            return signal.Signals(number).name
        link = link.__cause__ or link.__context__
    return None


def _interrupted(exc: BaseException, command: str) -> int:
    """Say in one line what an interrupted command left, and return 130 (as shells do)."""
    # No import here: the signal may have come in the middle of one (numpy's, say),
    # and importing again would fail. A scan that was interrupted loaded both modules.
    logging = sys.modules.get("logging")
    if logging:
        # The line below is all the user sees: no warnings from Prefect's shutdown after
        # it (its events queue drains at exit: "Still processing items" when it is slow).
        logging.disable(logging.WARNING)
    chunks, progress = (sys.modules.get(f"my_package.{m}") for m in ("chunks", "progress"))
    if chunks and progress and isinstance(exc, chunks.ScanInterrupted):
        print(progress.interrupted(exc.done, exc.total, command), file=sys.stderr)
        return 130
    name = _stopping_signal(exc) or "SIGINT"
    print(
        f"interrupted ({name}): stopped the run and any temporary Prefect server; "
        "a result saved before this stays, a partial one is never written",
        file=sys.stderr,
    )
    return 130


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``my-package`` and ``python -m my_package``; returns the exit code."""
    args = build_parser().parse_args(argv)
    debug = args.debug or os.environ.get(DEBUG_ENV, "") not in ("", "0")
    if _in_main_thread():
        signal.signal(signal.SIGTERM, _terminate)
    try:
        code = args.handler(args) or 0
        sys.stdout.flush()  # here, so a closed pipe is caught below, not at exit
        return code
    except KeyboardInterrupt as exc:
        return _interrupted(exc, args.command)
    except BrokenPipeError:
        # The reader stopped reading (`describe | head`): not an error of ours. Point
        # stdout at /dev/null so the interpreter's final flush does not complain.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as exc:
        if not debug and _stopping_signal(exc):
            return _interrupted(exc, args.command)
        code = _user_error_code(exc)
        if code is None or debug:
            raise
        from my_package.chunks import ChunkError

        keep = "; the other chunks are kept: run again to compute only the failed ones"
        resume = keep if isinstance(exc, ChunkError) and args.command == "run" else ""
        print(f"error: {exc}{resume}", file=sys.stderr)
        return code


def _in_main_thread() -> bool:
    """Signal handlers can only be set from the main thread (tests may call main elsewhere)."""
    import threading

    return threading.current_thread() is threading.main_thread()
