"""``python -m my_package results list|show|export|plot`` on both targets.

Variable names come from variables.yml (the model's first two inputs are scanned), so
these tests hold for any model; ND outputs use a made-up result with neutral names.
"""

import csv
import json
import struct
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import h5py
import numpy as np
import pytest

from my_package.cli import main
from my_package.config import Settings
from my_package.model import MyPackageModel
from my_package.results import Result, run_metadata
from my_package.results_cli import PANEL_PX
from my_package.targets import ResultRef, save_result
from my_package.validation import ScanRange, collect_inputs

MODEL = MyPackageModel()
FIRST, SECOND = MODEL.input_variables[0], MODEL.input_variables[1]
OUTPUTS = [var.name for var in MODEL.output_variables]
# Outputs with one number per point (ND outputs, a profile or an image, have a shape).
SCALAR_OUTPUTS = [var.name for var in MODEL.output_variables if not getattr(var, "shape", ())]


def _csv_columns(var) -> list[str]:
    """The CSV columns of a variable: itself, or one per element of an ND variable."""
    shape = tuple(getattr(var, "shape", ()))
    return [var.name + "".join(f"[{i}]" for i in index) for index in np.ndindex(*shape)]


T0 = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


@pytest.fixture(params=["filesystem", "mongodb"])
def target(request, tmp_path, monkeypatch):
    """Both targets, configured from the environment as a user would (mounted files on)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MY_PACKAGE_TARGET", request.param)
    monkeypatch.setenv("MY_PACKAGE_OUTPUT_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("MY_PACKAGE_PROJECT_NAME", f"p_{uuid.uuid4().hex[:10]}")
    if request.param == "mongodb":
        host, port = request.getfixturevalue("mongo_server")
        monkeypatch.setenv("LUME_RESULTS_DB__HOST", host)
        monkeypatch.setenv("LUME_RESULTS_DB__PORT", str(port))
        monkeypatch.setenv("LUME_MOUNTED_FILESYSTEM__MOUNT_PATH", str(tmp_path / "mount"))
    return request.param


def _scan_range(var, num: int) -> ScanRange:
    low, high = var.value_range
    return ScanRange(start=low, stop=high, num=num)


def _save(
    scan: dict, fixed: dict | None = None, when: datetime = T0, run: str = "run"
) -> ResultRef:
    inputs = collect_inputs(fixed or {}, scan)
    outputs = MODEL.evaluate(inputs)
    result = Result(
        project_name=Settings().project_name,
        flow_id=f"flow-{uuid.uuid4().hex[:8]}",
        inputs=inputs,
        outputs=outputs,
        date_modified=when,
        metadata=run_metadata(MODEL, inputs, scan, run),
    )
    return save_result(result, Settings())


def _save_image(points: int = 0) -> ResultRef:
    """A made-up result with an image output: one image, or one per scan point."""
    shape = (points, 6, 8) if points else (6, 8)
    k = np.linspace(0.0, 1.0, points) if points else 0.5
    scan = {"k": ScanRange(start=0.0, stop=1.0, num=points)} if points else {}
    result = Result(
        project_name=Settings().project_name,
        flow_id="image",
        inputs={"k": k},
        outputs={"image": np.arange(np.prod(shape), dtype=np.float64).reshape(shape), "n": 1.0},
        metadata={"scan": {n: s.model_dump() for n, s in scan.items()}, "points": points or 1},
    )
    return save_result(result, Settings())


def _run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(["results", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def _png_size(path: Path) -> tuple[int, int]:
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    assert data[12:16] == b"IHDR"
    assert data[-8:-4] == b"IEND"
    return struct.unpack(">II", data[16:24])


# --------------------------------------------------------------------------- list


def test_list_newest_first_with_time_run_flow_scan_points_hash(target, capsys):
    old = _save({FIRST.name: _scan_range(FIRST, 11)}, when=T0, run="old-run")
    grid = {FIRST.name: _scan_range(FIRST, 4), SECOND.name: _scan_range(SECOND, 5)}
    new = _save(grid, when=T0 + timedelta(hours=2), run="new-run")
    code, out, err = _run(capsys, "list")
    assert code == 0, err
    header, first, second = out.splitlines()
    assert header.split()[:3] == ["saved", "(UTC)", "run"]
    assert first.startswith("2026-11-30 14:00:00")
    assert "new-run" in first and f"{FIRST.name}[4] x {SECOND.name}[5]" in first
    assert " 20 " in first and new.unique_hash[:12] in first
    assert "old-run" in second and f"{FIRST.name}[11]" in second and old.unique_hash[:12] in second


def test_list_filters_by_date_and_input_value(target, capsys):
    low, high = FIRST.value_range
    inside = low + 0.25 * (high - low)
    scanned = _save({FIRST.name: _scan_range(FIRST, 11)}, when=T0)
    fixed = _save({}, {FIRST.name: inside}, when=T0 + timedelta(days=1))
    other = _save({}, {FIRST.name: high}, when=T0 + timedelta(days=2))

    def hashes(*argv: str) -> list[str]:
        code, out, err = _run(capsys, "list", *argv)
        assert code == 0, err
        return [line.split()[-1] for line in out.splitlines()[1:]]

    short = {
        ref.unique_hash[:12]: name for ref, name in ((scanned, "s"), (fixed, "f"), (other, "o"))
    }
    assert [short[h] for h in hashes()] == ["o", "f", "s"]
    assert [short[h] for h in hashes("--since", "2026-12-01")] == ["o", "f"]
    assert [short[h] for h in hashes("--until", "2026-12-01T12:00")] == ["s"]
    assert [short[h] for h in hashes("--input", f"{FIRST.name}={inside}")] == ["f", "s"]
    assert [short[h] for h in hashes("--input", f"{FIRST.name}={high}")] == ["o", "s"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["list", "--since", "last week"], "--since 'last week' is not a date"),
        (["list", "--input", "x"], "--input 'x': expected NAME=NUMBER"),
        (["show", "nothex"], "neither a result file nor a unique_hash prefix"),
        (["show", "abc123"], "no result 'abc123'"),
        (["plot", "0"], "no result '0'"),
    ],
)
def test_mistakes_are_one_error_line(target, capsys, argv, message):
    code, _, err = _run(capsys, *argv)
    assert code != 0
    assert err.count("\n") == 1 and err.startswith("error: ") and message in err


def test_ambiguous_prefix_asks_for_more_digits(target, capsys):
    refs = [_save({}, {FIRST.name: v}) for v in np.linspace(*FIRST.value_range, 40)]
    firsts = [ref.unique_hash[0] for ref in refs]
    digit = max(set(firsts), key=firsts.count)  # 40 hashes: some first digit repeats
    code, _, err = _run(capsys, "show", digit)
    assert code == 1 and "give more digits" in err


# --------------------------------------------------------------------------- show


def test_show_prints_inputs_and_outputs_with_units_and_summarizes_arrays(target, capsys):
    ref = _save({FIRST.name: _scan_range(FIRST, 20_000)}, run="big-run")  # arrays in files
    code, out, err = _run(capsys, "show", ref.unique_hash[:8])
    assert code == 0, err
    assert f"result {ref.unique_hash}" in out and "big-run" in out
    assert "20000 points" in out
    low, high = FIRST.value_range
    line = next(line for line in out.splitlines() if line.strip().startswith(FIRST.name))
    assert f"array [20000]: {low:.6g} .. {high:.6g}" in line and "(HDF5 file)" in line
    if FIRST.unit:
        assert f"[{FIRST.unit}]" in line
    for var in MODEL.output_variables:
        (line,) = [line for line in out.splitlines() if line.strip().startswith(var.name + " ")]
        assert "array [20000" in line and (not var.unit or f"[{var.unit}]" in line)


def test_show_accepts_the_result_file_path(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MY_PACKAGE_OUTPUT_DIR", str(tmp_path))
    ref = _save({})
    code, out, err = _run(capsys, "show", ref.location)
    assert code == 0, err
    assert ref.unique_hash in out


# --------------------------------------------------------------------------- export


def test_export_csv_one_row_per_point(target, capsys):
    ref = _save({FIRST.name: _scan_range(FIRST, 30)})
    code, _, err = _run(capsys, "export", ref.unique_hash[:10], "-o", "scan.csv")
    assert code == 0, err
    with open("scan.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 30
    variables = [*MODEL.input_variables, *MODEL.output_variables]
    assert list(rows[0]) == [column for var in variables for column in _csv_columns(var)]
    expected = MODEL.evaluate(collect_inputs({}, {FIRST.name: _scan_range(FIRST, 30)}))
    for name in SCALAR_OUTPUTS:  # %.17g round-trips every float64 exactly
        np.testing.assert_array_equal([float(r[name]) for r in rows], expected[name])


def test_export_several_results_in_every_format(target, capsys):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    a = _save({FIRST.name: _scan_range(FIRST, 5)})
    b = _save({FIRST.name: _scan_range(FIRST, 7)})
    ids = [a.unique_hash[:12], b.unique_hash[:12]]
    for fmt, name in (("csv", "t.csv"), ("hdf5", "t.h5"), ("parquet", "t.parquet")):
        code, out, err = _run(capsys, "export", *ids, "--format", fmt, "-o", name)
        assert code == 0, err
        assert "12 rows" in out
    with open("t.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["result"] for r in rows] == [a.unique_hash] * 5 + [b.unique_hash] * 7
    with h5py.File("t.h5") as h5:
        assert h5[OUTPUTS[0]].shape == (12,)
        assert h5[FIRST.name].attrs["unit"] == (FIRST.unit or "")
    table = pq.read_table("t.parquet")
    assert table.num_rows == 12
    assert table.schema.field(FIRST.name).metadata[b"unit"] == (FIRST.unit or "").encode()


def test_export_nd_outputs(target, capsys):
    pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    ref = _save_image(points=3)
    code, _, err = _run(capsys, "export", ref.unique_hash[:12], "-o", "img.csv")
    assert code == 0, err
    with open("img.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and "image[5][7]" in rows[0]
    assert float(rows[2]["image[5][7]"]) == 3 * 48 - 1
    assert _run(capsys, "export", ref.unique_hash[:12], "--format", "hdf5", "-o", "i.h5")[0] == 0
    with h5py.File("i.h5") as h5:
        assert h5["image"].shape == (3, 6, 8)
    assert _run(capsys, "export", ref.unique_hash[:12], "--format", "parquet", "-o", "i.pq")[0] == 0
    field = pq.read_table("i.pq").schema.field("image")
    assert field.type.list_size == 48 and field.metadata[b"shape"] == b"6,8"
    single = _save_image()
    assert _run(capsys, "export", single.unique_hash[:12], "--format", "hdf5", "-o", "s.h5")[0] == 0
    with h5py.File("s.h5") as h5:
        assert h5["image"].shape == (1, 6, 8)  # one point, one row of its image


def test_failed_export_leaves_nothing(target, capsys, tmp_path):
    ref = _save({})
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = _run(capsys, "export", ref.unique_hash[:12], "-o", str(blocker / "x.csv"))
    assert code == 1 and err.startswith("error: cannot write")
    assert blocker.read_text() == ""


# --------------------------------------------------------------------------- plot


def test_plot_scan_grid_and_image_are_pngs_of_the_expected_size(target, capsys):
    width, height = PANEL_PX
    line = _save({FIRST.name: _scan_range(FIRST, 50)})
    grid = _save({FIRST.name: _scan_range(FIRST, 6), SECOND.name: _scan_range(SECOND, 4)})
    image = _save_image()
    cases = [
        (line, [], len(OUTPUTS)),  # lines, and a heat map for each profile output
        (grid, [], len(SCALAR_OUTPUTS)),  # a heat map for each output with a number per point
        (line, ["--only", OUTPUTS[0]], 1),
        (image, [], 1),
    ]
    for i, (ref, extra, panels) in enumerate(cases):
        path = Path(f"plot{i}.png")
        code, _, err = _run(capsys, "plot", ref.unique_hash[:12], "-o", str(path), *extra)
        assert code == 0, err
        assert _png_size(path) == (width, max(2 * height, height * panels))
    import matplotlib.image

    assert matplotlib.image.imread("plot1.png").shape[:2] == (
        max(2 * height, height * len(SCALAR_OUTPUTS)),
        width,
    )


def test_plot_refuses_what_it_cannot_draw(target, capsys):
    # One point with only numbers for outputs: nothing to draw (made-up names).
    point = save_result(
        Result(
            project_name=Settings().project_name, flow_id="n", inputs={"k": 1.0}, outputs={"n": 2.0}
        ),
        Settings(),
    )
    code, _, err = _run(capsys, "plot", point.unique_hash[:12])
    assert code == 1 and "nothing to plot" in err
    assert not list(Path().glob("*.png"))
    code, _, err = _run(capsys, "plot", point.unique_hash[:12], "--only", "nope")
    assert code == 1 and "no output 'nope'" in err


def test_results_saved_without_metadata_still_list_and_export(tmp_path, monkeypatch, capsys):
    """A record written by another tool (no .meta file): listed from the record itself."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MY_PACKAGE_OUTPUT_DIR", str(tmp_path / "results"))
    ref = _save({FIRST.name: _scan_range(FIRST, 9)})
    Path(ref.location).with_suffix(".meta").unlink()
    (Path(ref.location).parent / "index.jsonl").unlink()
    code, out, err = _run(capsys, "list")
    assert code == 0, err
    assert ref.unique_hash[:12] in out and FIRST.name in out
    assert _run(capsys, "export", ref.unique_hash[:12], "-o", "x.csv")[0] == 0
    assert len(Path("x.csv").read_text().splitlines()) == 10
    assert json.loads(Path(ref.location).read_text())["unique_hash"] == ref.unique_hash


def test_list_reads_the_index_and_lists_only_results_present(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MY_PACKAGE_OUTPUT_DIR", str(tmp_path))
    kept = _save({}, {FIRST.name: FIRST.value_range[0]}, run="kept")
    deleted = _save({}, {FIRST.name: FIRST.value_range[1]}, run="deleted")
    unindexed = _save({FIRST.name: _scan_range(FIRST, 3)}, run="unindexed")
    index = Path(kept.location).parent / "index.jsonl"
    lines = index.read_bytes().splitlines()
    assert len(lines) == 3
    # A save killed after its record but before its index line, and one killed mid-line.
    index.write_bytes(lines[0] + b"\n" + lines[1] + b"\n" + lines[2][:40])
    Path(deleted.location).unlink()
    code, out, err = _run(capsys, "list")
    assert code == 0, err
    names = [line.split()[2] for line in out.splitlines()[1:]]
    assert sorted(names) == ["kept", "unindexed"]
    assert unindexed.unique_hash[:12] in out and deleted.unique_hash[:12] not in out


def test_the_flow_plot_is_titled_by_the_stored_hash_without_hashing_the_arrays():
    """The flow plots its in-memory result, whose arrays are not in files yet: hashing that
    would write every array as JSON text (17 s at 10^5 points with a profile output)."""
    from my_package.results_cli import figure_for

    first = MyPackageModel().input_variables[0]
    low, high = first.value_range
    values = collect_inputs({}, {first.name: ScanRange(start=low, stop=high, num=30)})
    result = Result(flow_id="plot", inputs=values, outputs=MyPackageModel().evaluate(values))
    figure = figure_for(result, unique_hash="f" * 32)
    assert "unique_hash" not in vars(result)  # the cached hash was never computed
    assert figure.axes[0].get_title() == "result " + "f" * 12


def test_large_images_are_averaged_down_to_the_panel_before_drawing():
    from my_package.results_cli import _binned

    image = np.arange(2000 * 30, dtype=float).reshape(2000, 30)
    shown = _binned(image, (250, 800))
    assert shown.shape == (250, 30)  # rows in blocks of 8; 30 columns fit as they are
    assert shown[0, 0] == image[:8, 0].mean() and shown[-1, -1] == image[-8:, -1].mean()
    assert _binned(image[:100], (250, 800)).shape == (100, 30)  # small enough: unchanged
