"""``python -m my_package results list | show | export | plot``: look at saved results.

Works on both targets. A result is named by a prefix of its unique_hash (as ``list``
prints it) or, on the filesystem target, by its file's path. Only argparse is imported
at module level: the heavy modules load inside the commands, so ``--help`` stays fast.
"""

import argparse
import os
import sys
from collections.abc import Iterator, Sequence
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

EXPORT_FORMATS = ("csv", "parquet", "hdf5")
SUFFIX = {"csv": ".csv", "parquet": ".parquet", "hdf5": ".h5"}
PANEL_PX = (800, 250)  # one plot panel, in pixels (the figure is 100 dpi)


class ResultsUsageError(Exception):
    """A results command that cannot be carried out as asked; the message says why."""


def add_parser(commands: Any) -> None:
    """Register ``results`` and its subcommands on the main parser's subparsers."""
    results = commands.add_parser(
        "results",
        help="list, show, export or plot saved results",
        description="Look at saved results (either target). ID: a unique_hash prefix, as "
        "`results list` prints it, or a result file's path.",
    )
    results.set_defaults(handler=run)
    sub = results.add_subparsers(dest="results_command", required=True, metavar="COMMAND")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--target", choices=("filesystem", "mongodb"), help="default: MY_PACKAGE_TARGET"
    )
    common.add_argument("--output-dir", metavar="DIR", help="filesystem target's directory")
    common.add_argument("--project", metavar="NAME", help="default: MY_PACKAGE_PROJECT_NAME")

    listing = sub.add_parser("list", parents=[common], help="saved results, newest first")
    listing.add_argument("--since", metavar="DATE", help="saved at or after DATE (ISO, UTC)")
    listing.add_argument("--until", metavar="DATE", help="saved before DATE (ISO, UTC)")
    listing.add_argument(
        "--input",
        dest="input_filters",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="only results whose input NAME was VALUE (or whose scan of NAME covers it)",
    )
    listing.add_argument("--limit", type=int, default=50, help="show at most this many (0: all)")

    show = sub.add_parser("show", parents=[common], help="one result's inputs and outputs")
    show.add_argument("id", metavar="ID", help="unique_hash prefix, or the result file's path")

    export = sub.add_parser("export", parents=[common], help="results as one table file")
    export.add_argument("ids", nargs="+", metavar="ID")
    export.add_argument("--format", choices=EXPORT_FORMATS, default="csv")
    export.add_argument("-o", "--output", metavar="FILE", help="default: <hash>.<format>")

    plot = sub.add_parser("plot", parents=[common], help="a result as a PNG plot")
    plot.add_argument("id", metavar="ID")
    plot.add_argument("-o", "--output", metavar="FILE", help="default: <hash>.png")
    plot.add_argument("--only", metavar="OUTPUT", help="plot this output only")


# --------------------------------------------------------------------------- access


@contextmanager
def _opened(args: argparse.Namespace) -> Iterator[tuple[Any, str, Any]]:
    """(target object, project name, settings) for the command's options."""
    from my_package.config import Settings
    from my_package.targets import filesystem_target, mongo_target

    if args.output_dir:
        os.environ["MY_PACKAGE_OUTPUT_DIR"] = args.output_dir
    settings = Settings()
    project = args.project or settings.project_name
    if (args.target or settings.target) == "filesystem":
        yield filesystem_target(settings), project, settings
        return
    with mongo_target(settings) as mongo:
        yield mongo, project, settings


def _load(target: Any, project: str, key: str) -> tuple[Any, Any]:
    ref = target.find(project, key)
    return ref, target.load(ref)


# --------------------------------------------------------------------------- list


def _parse_date(text: str | None, option: str) -> Any:
    from datetime import UTC, datetime

    if text is None:
        return None
    try:
        value = datetime.fromisoformat(text)
    except ValueError:
        raise ResultsUsageError(
            f"{option} {text!r} is not a date: use e.g. 2026-12-01 or 2026-12-01T08:30"
        ) from None
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _parse_filters(texts: Sequence[str]) -> dict[str, float]:
    filters = {}
    for text in texts:
        name, sep, value = text.partition("=")
        try:
            if not sep or not name.strip():
                raise ValueError
            filters[name.strip()] = float(value)
        except ValueError:
            raise ResultsUsageError(f"--input {text!r}: expected NAME=NUMBER") from None
    return filters


def _matches(summary: dict[str, Any], filters: dict[str, float]) -> bool:
    import math

    for name, wanted in filters.items():
        fixed = (summary.get("fixed_inputs") or {}).get(name)
        scan = (summary.get("scan") or {}).get(name) or {}
        if isinstance(fixed, int | float) and math.isclose(
            fixed, wanted, rel_tol=1e-9, abs_tol=1e-12
        ):
            continue
        if "start" in scan and min(scan["start"], scan["stop"]) <= wanted <= max(
            scan["start"], scan["stop"]
        ):
            continue
        return False
    return True


def _scanned_text(summary: dict[str, Any]) -> str:
    scan = summary.get("scan") or {}
    return (
        " x ".join(
            f"{name}[{spec['num']}]" if "num" in spec else name for name, spec in scan.items()
        )
        or "-"
    )


def list_rows(
    target: Any, project: str, since: Any, until: Any, filters: dict[str, float]
) -> list[dict[str, Any]]:
    """The project's result summaries that pass the filters, newest first."""
    from datetime import UTC, datetime

    def when(summary: dict[str, Any]) -> datetime:
        try:
            value = datetime.fromisoformat(str(summary.get("date_modified")))
        except ValueError:
            return datetime.min.replace(tzinfo=UTC)
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    rows = []
    for summary in target.summaries(project):
        saved = when(summary)
        if (
            (since and saved < since)
            or (until and saved >= until)
            or not _matches(summary, filters)
        ):
            continue
        rows.append({**summary, "saved": saved})
    rows.sort(key=lambda row: row["saved"], reverse=True)
    return rows


def command_list(args: argparse.Namespace) -> None:
    since, until = _parse_date(args.since, "--since"), _parse_date(args.until, "--until")
    filters = _parse_filters(args.input_filters)
    with _opened(args) as (target, project, _):
        rows = list_rows(target, project, since, until, filters)
    shown = rows if args.limit <= 0 else rows[: args.limit]
    table = [("saved (UTC)", "run name", "flow id", "scanned", "points", "hash")]
    for row in shown:
        points = row.get("points")
        table.append(
            (
                row["saved"].strftime("%Y-%m-%d %H:%M:%S"),
                str(row.get("flow_run_name") or "-"),
                str(row.get("flow_id") or "-"),
                _scanned_text(row),
                "?" if points is None else str(points),
                str(row.get("unique_hash"))[:12],
            )
        )
    widths = [max(len(r[i]) for r in table) for i in range(len(table[0]))]
    for line in table:
        print(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        )
    if len(shown) < len(rows):
        print(f"({len(rows) - len(shown)} older results not shown: --limit 0 shows all)")


# --------------------------------------------------------------------------- show


def _units(result: Any) -> dict[str, str]:
    from my_package.variables import load_variables

    units = {var.name: var.unit or "" for group in load_variables() for var in group}
    units.update(result.metadata.get("units") or {})
    return units


def summarize(value: Any) -> str:
    """A value as one short line: a number, or an array's shape and range."""
    import numpy as np

    array = np.asarray(value)
    if array.ndim == 0:
        return f"{float(array):.6g}" if array.dtype.kind in "biuf" else str(value)
    if array.size == 0 or array.dtype.kind not in "biuf":
        return f"array {list(array.shape)}"
    finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
    if finite.size == 0:
        return f"array {list(array.shape)}, no finite values"
    low, high, mean = finite.min(), finite.max(), finite.mean()
    text = f"array {list(array.shape)}: {low:.6g} .. {high:.6g}, mean {mean:.6g}"
    return text + ("" if getattr(value, "file_ref", None) is None else " (HDF5 file)")


def command_show(args: argparse.Namespace) -> None:
    with _opened(args) as (target, project, _):
        ref, result = _load(target, project, args.id)
    meta, units = result.metadata, _units(result)
    print(f"result {result.unique_hash}")
    print(f"  stored     {ref.target}: {ref.location}")
    print(f"  saved      {result.date_modified.isoformat()}")
    print(f"  flow id    {result.flow_id}")
    for key, label in (
        ("flow_run_name", "run name"),
        ("model_class", "model"),
        ("package_version", "version"),
    ):
        if meta.get(key):
            print(f"  {label:10s} {meta[key]}")
    if meta.get("scan"):
        specs = ", ".join(
            f"{n} {s['start']:g}..{s['stop']:g} ({s['num']})" for n, s in meta["scan"].items()
        )
        print(f"  scan       {specs}; grid {meta.get('grid_shape')}, {meta.get('points')} points")
    for title, values in (("inputs", result.inputs), ("outputs", result.outputs)):
        print(f"{title}:")
        width = max((len(name) for name in values), default=0)
        for name, value in values.items():
            unit = f"  [{units[name]}]" if units.get(name) else ""
            print(f"  {name:{width}s}  {summarize(value)}{unit}")


# --------------------------------------------------------------------------- export


def table_of(result: Any) -> tuple[int, dict[str, Any]]:
    """(points, columns): every numeric input and output with one row per point.

    A scan of N points has its scanned inputs of shape (N,) and outputs of shape (N, ...);
    fixed inputs (numbers or arrays) and scalar outputs (a fit) repeat on every row; a
    single point's array output (a profile, an image) is one row of that shape.
    Non-numeric values (the warnings a run recorded) are left out.
    """
    import numpy as np

    scan = result.metadata.get("scan")
    points = int(result.metadata.get("points") or 0)
    if scan is None or not points:  # no metadata: the 1-D inputs of one length were scanned
        lengths = {len(v) for v in result.inputs.values() if np.ndim(v) == 1}
        points = lengths.pop() if len(lengths) == 1 else 1
        scan = {n: {} for n, v in result.inputs.items() if np.ndim(v) == 1 and points > 1}
    columns = {}
    for kind, values in (("input", result.inputs), ("output", result.outputs)):
        for name, value in values.items():
            array = np.asarray(value)
            if array.dtype.kind not in "biuf":
                continue
            if (kind == "input" and name not in scan) or array.ndim == 0:
                array = np.broadcast_to(array, (points, *array.shape))  # the same on every row
            elif points == 1 and array.shape[0] != 1:
                array = array[np.newaxis]  # a single point's profile or image: one row
            if array.shape[0] != points:
                raise ResultsUsageError(
                    f"{name!r} has shape {list(array.shape)}, not one row per point of the "
                    f"{points}-point result {result.unique_hash[:12]}"
                )
            columns[name] = array
    return points, columns


def _flat_columns(columns: dict[str, Any]) -> dict[str, Any]:
    """Per-point arrays spread over one column per element: ``image[0][1]`` (for CSV)."""
    import numpy as np

    flat = {}
    for name, array in columns.items():
        if array.ndim == 1:
            flat[name] = array
            continue
        for index in np.ndindex(*array.shape[1:]):
            flat[name + "".join(f"[{i}]" for i in index)] = array[(slice(None), *index)]
    return flat


def _write_csv(path: Path, tables: list[tuple[str, dict[str, Any]]]) -> None:
    import io

    import numpy as np

    several = len(tables) > 1
    header = None
    with open(path, "w", encoding="utf-8", newline="") as fh:
        for unique_hash, columns in tables:
            flat = _flat_columns(columns)
            names = list(flat)
            if header is None:
                header = names
                fh.write(",".join((["result"] if several else []) + header) + "\n")
            matrix = np.column_stack([np.asarray(flat[n], dtype=np.float64) for n in names])
            text = io.StringIO()
            np.savetxt(text, matrix, delimiter=",", fmt="%.17g")  # round-trips every float64
            body = text.getvalue()
            if several:
                body = "".join(f"{unique_hash},{line}\n" for line in body.splitlines())
            fh.write(body)


def _write_hdf5(
    path: Path, tables: list[tuple[str, dict[str, Any]]], units: dict[str, str]
) -> None:
    import h5py
    import numpy as np

    names = list(tables[0][1])
    with h5py.File(path, "w") as h5:
        for name in names:
            data = np.concatenate([columns[name] for _, columns in tables])
            dataset = h5.create_dataset(name, data=data)
            dataset.attrs["unit"] = units.get(name, "")
        if len(tables) > 1:
            hashes = [h for h, columns in tables for _ in range(len(next(iter(columns.values()))))]
            h5.create_dataset("result", data=np.array(hashes, dtype="S32"))


def _write_parquet(
    path: Path, tables: list[tuple[str, dict[str, Any]]], units: dict[str, str]
) -> None:
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError:
        raise ResultsUsageError(
            "--format parquet needs pyarrow, which is not installed: "
            "pip install 'my-package[parquet]' (or use --format csv or hdf5)"
        ) from None
    import numpy as np

    names = list(tables[0][1])
    arrays, fields = [], []
    if len(tables) > 1:
        hashes = [h for h, columns in tables for _ in range(len(next(iter(columns.values()))))]
        arrays.append(pa.array(hashes))
        fields.append(pa.field("result", pa.string()))
    for name in names:
        data = np.concatenate([columns[name] for _, columns in tables])
        meta = {"unit": units.get(name, ""), "shape": ",".join(map(str, data.shape[1:]))}
        if data.ndim == 1:
            array = pa.array(data)
        else:  # per-point arrays: fixed-size lists, the element shape in the field metadata
            size = int(np.prod(data.shape[1:]))
            array = pa.FixedSizeListArray.from_arrays(pa.array(data.reshape(-1)), size)
        arrays.append(array)
        fields.append(pa.field(name, array.type, metadata=meta))
    pq.write_table(pa.Table.from_arrays(arrays, schema=pa.schema(fields)), path)


def _atomic_output(path: Path) -> Path:
    """A temporary name beside ``path``: the file appears whole or not at all."""
    return path.with_name(f".{path.name}.partial")


def _discard(partial: Path) -> None:
    with suppress(OSError):  # never written, or its directory is unusable
        partial.unlink(missing_ok=True)


def command_export(args: argparse.Namespace) -> None:
    tables, units = [], {}
    with _opened(args) as (target, project, _):
        for key in args.ids:
            _, result = _load(target, project, key)
            units.update(_units(result))
            tables.append((result.unique_hash, table_of(result)[1]))
    first = list(tables[0][1])
    for unique_hash, columns in tables[1:]:
        if list(columns) != first or any(
            columns[n].shape[1:] != tables[0][1][n].shape[1:] for n in first
        ):
            raise ResultsUsageError(
                f"result {unique_hash[:12]} has other variables or shapes than "
                f"{tables[0][0][:12]}: export them separately"
            )
    path = Path(args.output or f"{tables[0][0][:12]}{SUFFIX[args.format]}")
    partial = _atomic_output(path)
    try:
        if args.format == "csv":
            _write_csv(partial, tables)
        elif args.format == "hdf5":
            _write_hdf5(partial, tables, units)
        else:
            _write_parquet(partial, tables, units)
        os.replace(partial, path)
    except OSError as exc:
        raise ResultsUsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        _discard(partial)
    rows = sum(len(next(iter(columns.values()))) for _, columns in tables)
    print(f"Exported {len(tables)} result(s), {rows} rows, to {path}")


# --------------------------------------------------------------------------- plot


def figure_for(result: Any, only: str | None = None, unique_hash: str | None = None) -> Any:
    """A matplotlib figure of ``result``: lines over one scanned input (a heat map for a
    profile output), heat maps over two, a profile or an image for one point's array.

    ``unique_hash`` titles it: the stored result's, when ``result`` is the flow's own
    (its arrays not yet in files, so hashing it would write them all as JSON text).
    """
    import matplotlib

    matplotlib.use("Agg")  # files only, no display needed
    import matplotlib.pyplot as plt
    import numpy as np

    units = _units(result)
    scan = result.metadata.get("scan") or {}
    if not scan:  # no metadata: the arrays among the inputs were scanned
        scan = {n: {} for n, v in result.inputs.items() if np.ndim(v) == 1}
    outputs = {n: np.asarray(v) for n, v in result.outputs.items() if only in (None, n)}
    outputs = {n: v for n, v in outputs.items() if v.dtype.kind in "biuf"}  # not warnings
    if only and not outputs:
        raise ResultsUsageError(
            f"no output {only!r} in this result: it has {', '.join(result.outputs)}"
        )

    def label(name: str) -> str:
        return f"{name} [{units[name]}]" if units.get(name) else name

    if len(scan) > 2:
        raise ResultsUsageError(
            f"plot shows scans of one or two inputs; this one scans {len(scan)} "
            f"({', '.join(scan)}): use `results export` and plot the table yourself"
        )
    points = int(np.size(result.inputs[next(iter(scan))])) if scan else 1
    if len(scan) == 1:  # a number per point: a line; a profile per point: a heat map
        outputs = {n: v for n, v in outputs.items() if v.ndim in (1, 2) and len(v) == points}
    elif scan:  # a grid: one number per point, drawn over the two scanned inputs
        outputs = {n: v for n, v in outputs.items() if v.shape == (points,)}
    else:
        outputs = {n: v for n, v in outputs.items() if 1 <= v.ndim <= 2}
    if not outputs:
        raise ResultsUsageError(
            "nothing to plot: a scan's outputs need one value per point, a single point's "
            "an array output (a profile or an image)"
        )
    width, height = PANEL_PX
    fig, axes = plt.subplots(
        len(outputs),
        1,
        figsize=(width / 100, max(2 * height, height * len(outputs)) / 100),
        dpi=100,
        squeeze=False,
    )
    names = list(scan)
    for ax, (name, value) in zip(axes[:, 0], outputs.items(), strict=True):
        if len(scan) == 1 and value.ndim == 2:  # a profile per point, along the scan
            x = np.asarray(result.inputs[names[0]])
            extent = (x[0], x[-1], 0, value.shape[1])
            shown = _binned(value.T, (height, width))
            image = ax.imshow(shown, origin="lower", aspect="auto", extent=extent)
            fig.colorbar(image, ax=ax, label=label(name))
            ax.set_xlabel(label(names[0]))
            ax.set_ylabel(f"{name} index")
        elif len(scan) == 1:
            x = np.asarray(result.inputs[names[0]])
            order = np.argsort(x, kind="stable")
            ax.plot(x[order], value[order], marker="." if points <= 200 else None)
            ax.set_xlabel(label(names[0]))
            ax.set_ylabel(label(name))
        elif len(scan) == 2:
            x, y = (np.asarray(result.inputs[n]) for n in names)
            shape = (len(np.unique(x)), len(np.unique(y)))
            if shape[0] * shape[1] != points:
                raise ResultsUsageError(f"the scan of {', '.join(names)} is not a full grid")
            extent = (y[0], y[-1], x[0], x[-1])  # the first input varies slowest: rows
            shown = _binned(value.reshape(shape), (height, width))
            image = ax.imshow(shown, origin="lower", aspect="auto", extent=extent)
            fig.colorbar(image, ax=ax, label=label(name))
            ax.set_xlabel(label(names[1]))
            ax.set_ylabel(label(names[0]))
        elif value.ndim == 1:
            ax.plot(value)
            ax.set_xlabel("index")
            ax.set_ylabel(label(name))
        else:
            image = ax.imshow(_binned(value, (height, width)), origin="lower", aspect="auto")
            fig.colorbar(image, ax=ax, label=label(name))
    title = unique_hash or result.unique_hash
    axes[0, 0].set_title(f"result {title[:12]}", fontsize="small")
    fig.tight_layout()
    return fig


def _binned(image: Any, pixels: tuple[int, int]) -> Any:
    """``image`` averaged over blocks of rows and columns to at most ``pixels`` (rows, cols).

    A panel cannot show more, and matplotlib resamples a large image slowly (8 s for a
    400,000-point scan of a 100-pixel profile). A few trailing rows or columns that do not
    fill a block are left out: at most one block's worth, less than one panel pixel.
    """
    import numpy as np

    image = np.asarray(image, dtype=float)
    for axis, limit in enumerate(pixels):
        factor = -(-image.shape[axis] // limit)  # ceiling division
        if factor > 1:
            moved = np.moveaxis(image, axis, 0)
            kept = moved[: len(moved) // factor * factor]
            blocks = kept.reshape(len(kept) // factor, factor, *kept.shape[1:]).mean(axis=1)
            image = np.moveaxis(blocks, 0, axis)
    return image


def save_png(fig: Any, path: Path) -> None:
    """Write the figure as a PNG, atomically, and release it."""
    import matplotlib.pyplot as plt

    partial = _atomic_output(path)
    try:
        fig.savefig(partial, format="png", dpi=100)
        os.replace(partial, path)
    except OSError as exc:
        raise ResultsUsageError(f"cannot write {path}: {exc.strerror or exc}") from None
    finally:
        plt.close(fig)
        _discard(partial)


def command_plot(args: argparse.Namespace) -> None:
    with _opened(args) as (target, project, _):
        _, result = _load(target, project, args.id)
    path = Path(args.output or f"{result.unique_hash[:12]}.png")
    save_png(figure_for(result, args.only), path)
    print(f"Plot of result {result.unique_hash[:12]} written to {path}")


COMMANDS = {
    "list": command_list,
    "show": command_show,
    "export": command_export,
    "plot": command_plot,
}


def run(args: argparse.Namespace) -> int:
    """Run a ``results`` subcommand; every mistake is one ``error:`` line."""
    from pydantic import ValidationError

    from my_package.targets import TargetError

    try:
        COMMANDS[args.results_command](args)
    except (ResultsUsageError, TargetError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        print(f"error: invalid setting {where}: {error['msg']}", file=sys.stderr)
        return 2
    return 0
