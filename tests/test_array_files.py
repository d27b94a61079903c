"""Large arrays as HDF5 files, on both targets: round trip, sha256 check, lume-services layout."""

import hashlib
import json
from pathlib import Path

import h5py
import numpy as np
import pymongo
import pytest

from my_package.array_files import FILE_TYPE, ArrayArchive
from my_package.config import MountedFilesystemSettings, ResultsDBSettings, Settings
from my_package.results import Result
from my_package.targets import TargetError, load_result, save_result

N = 20_000  # 160 kB per float64 array: above the default 128 KiB threshold


def _scan(project: str = "proj", n: int = N) -> Result:
    # Made-up values: one large input and output, one image per point, one scalar.
    k = np.linspace(-1.0, 1.0, n)
    return Result(
        project_name=project,
        flow_id="files-test",
        inputs={"k": k, "length": 2.0},
        outputs={
            "size": np.sqrt(1.0 + k**2),
            "image": np.arange(n * 16, dtype=np.float32).reshape(n, 4, 4),
            "small": np.arange(3.0),
        },
    )


def _flip_a_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))


def _check_loaded(loaded: Result, original: Result, unique_hash: str) -> None:
    assert loaded.unique_hash == unique_hash
    np.testing.assert_array_equal(loaded.inputs["k"], original.inputs["k"])
    np.testing.assert_array_equal(loaded.outputs["size"], original.outputs["size"])
    assert loaded.outputs["image"].shape == (N, 4, 4)
    assert loaded.outputs["image"].dtype == np.float32
    np.testing.assert_array_equal(loaded.outputs["image"], original.outputs["image"])
    assert loaded.outputs["small"] == [0.0, 1.0, 2.0]  # under the threshold: inline JSON


def test_filesystem_round_trip_through_hdf5_files(tmp_path):
    original = _scan()
    ref = save_result(original, Settings(output_dir=tmp_path))
    record = json.loads(Path(ref.location).read_text())
    directory = tmp_path / "proj"
    h5_files = sorted(directory.glob("*.h5"))
    assert len(h5_files) == 3  # k, size, image
    for name in ("k",):
        file_ref = record["inputs"][name]
        assert file_ref["file_type_string"] == FILE_TYPE
        assert file_ref["filesystem_identifier"] == "local"
        path = Path(file_ref["filename"])
        assert path.parent == directory
        assert hashlib.sha256(path.read_bytes()).hexdigest() == file_ref["sha256"]
        assert path.name == f"{file_ref['sha256']}.h5"
    assert record["outputs"]["image"]["shape"] == [N, 4, 4]
    # The record's hash covers the references, and so each file's sha256.
    assert ref.unique_hash == record["unique_hash"] != original.unique_hash
    _check_loaded(load_result(ref), original, ref.unique_hash)


def test_files_are_in_lume_base_hdf5_serializer_layout(tmp_path):
    ref = save_result(_scan(), Settings(output_dir=tmp_path))
    file_ref = json.loads(Path(ref.location).read_text())["outputs"]["size"]
    with h5py.File(file_ref["filename"], "r") as h5:
        assert h5.attrs["object"] == "my_package.array_files.ArrayArchive"
        assert tuple(h5.attrs["_version"]) == (0, 0, 0)
        assert "_pkg_version" in h5.attrs
        archive = ArrayArchive()  # what HDF5Serializer.deserialize builds and fills
        archive.load_archive(h5)
    np.testing.assert_array_equal(archive.array, _scan().outputs["size"])


def test_flipped_byte_in_an_array_file_is_detected(tmp_path):
    ref = save_result(_scan(), Settings(output_dir=tmp_path))
    path = Path(json.loads(Path(ref.location).read_text())["outputs"]["size"]["filename"])
    _flip_a_byte(path)
    with pytest.raises(TargetError, match=f"array file {path} has sha256 .* damaged"):
        load_result(ref)


def test_missing_array_file_is_a_target_error(tmp_path):
    ref = save_result(_scan(), Settings(output_dir=tmp_path))
    path = Path(json.loads(Path(ref.location).read_text())["inputs"]["k"]["filename"])
    path.unlink()
    with pytest.raises(TargetError, match=f"cannot read array file {path}"):
        load_result(ref)


def test_reference_cannot_point_outside_the_result_directory(tmp_path):
    ref = save_result(_scan(), Settings(output_dir=tmp_path / "out"))
    record_path = Path(ref.location)
    record = json.loads(record_path.read_text())
    outside = tmp_path / "outside.h5"
    outside.write_bytes(b"not read")
    record["inputs"]["k"]["filename"] = str(outside)
    record["unique_hash"] = Result(
        flow_id=record["flow_id"], inputs=record["inputs"], outputs=record["outputs"]
    ).unique_hash
    record_path.write_text(json.dumps(record))
    ref = ref.model_copy(update={"unique_hash": record["unique_hash"]})
    with pytest.raises(TargetError, match="does not match its sha256"):
        load_result(ref)


def test_saving_twice_is_idempotent_and_replaces_a_corrupt_array_file(tmp_path):
    settings = Settings(output_dir=tmp_path)
    first = save_result(_scan(), settings)
    path = Path(json.loads(Path(first.location).read_text())["outputs"]["size"]["filename"])
    _flip_a_byte(path)
    again = save_result(_scan(), settings)  # a retried save of the same result
    assert again == first
    assert len(list((tmp_path / "proj").glob("*.h5"))) == 3
    _check_loaded(load_result(first), _scan(), first.unique_hash)


def test_small_results_stay_plain_json_exactly_as_before(tmp_path):
    small = _scan(n=100)
    ref = save_result(small, Settings(output_dir=tmp_path))
    assert list((tmp_path / "proj").glob("*.h5")) == []
    assert ref.unique_hash == small.unique_hash
    document = small.to_document()
    document["date_modified"] = small.date_modified.isoformat()
    assert Path(ref.location).read_text() == json.dumps(document)


def test_threshold_is_a_setting(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_PACKAGE_FILE_THRESHOLD_BYTES", "16")
    settings = Settings(output_dir=tmp_path)
    assert settings.file_threshold_bytes == 16
    ref = save_result(_scan(n=100), settings)
    assert len(list((tmp_path / "proj").glob("*.h5"))) == 4  # even "small" (24 bytes)
    assert load_result(ref).unique_hash == ref.unique_hash


# --------------------------------------------------------------------------- MongoDB


@pytest.fixture
def mounted_settings(mongo_server, tmp_path, monkeypatch):
    host, port = mongo_server
    monkeypatch.setenv("LUME_MOUNTED_FILESYSTEM__MOUNT_PATH", str(tmp_path / "mount"))
    monkeypatch.setenv("LUME_MOUNTED_FILESYSTEM__MOUNT_ALIAS", "/lume-mount")
    settings = Settings(
        results_db=ResultsDBSettings(host=host, port=port, database="results"),
        target="mongodb",
    )
    assert settings.mounted_filesystem == MountedFilesystemSettings(
        mount_path=tmp_path / "mount", mount_alias="/lume-mount"
    )
    return settings


def test_mongodb_round_trip_through_the_mounted_filesystem(
    mounted_settings, mongo_server, tmp_path, project
):
    original = _scan(project)
    ref = save_result(original, mounted_settings)
    client = pymongo.MongoClient(*mongo_server)
    try:
        document = client["results"][project].find_one()
    finally:
        client.close()
    file_ref = document["outputs"]["image"]
    assert file_ref["filesystem_identifier"] == "mounted"
    assert file_ref["filename"] == f"/lume-mount/{project}/{file_ref['sha256']}.h5"
    on_disk = tmp_path / "mount" / project / f"{file_ref['sha256']}.h5"
    assert hashlib.sha256(on_disk.read_bytes()).hexdigest() == file_ref["sha256"]
    _check_loaded(load_result(ref, mounted_settings), original, ref.unique_hash)

    _flip_a_byte(on_disk)
    with pytest.raises(TargetError, match=r"sha256 .* damaged"):
        load_result(ref, mounted_settings)


def test_mongodb_result_with_files_needs_the_mount_to_load(mounted_settings, project, monkeypatch):
    ref = save_result(_scan(project), mounted_settings)
    monkeypatch.delenv("LUME_MOUNTED_FILESYSTEM__MOUNT_PATH")
    unmounted = Settings(results_db=mounted_settings.results_db, target="mongodb")
    with pytest.raises(TargetError, match="LUME_MOUNTED_FILESYSTEM__MOUNT_PATH"):
        load_result(ref, unmounted)


def test_mongodb_without_a_mount_keeps_arrays_in_the_document(mongo_server, project):
    host, port = mongo_server
    settings = Settings(results_db=ResultsDBSettings(host=host, port=port), target="mongodb")
    original = _scan(project, n=2_000)
    ref = save_result(original, settings)
    assert ref.unique_hash == original.unique_hash  # no references: the plain record
    loaded = load_result(ref, settings)
    assert loaded.outputs["size"] == original.outputs["size"].tolist()
