"""Results cannot be silently corrupted: tampering, damaged files, killed saves, bad names.

Every case goes through the real targets (files on disk, SecantusDB for MongoDB) and
must end in one TargetError that says what is wrong, never another exception type.
"""

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from my_package.array_files import TEMP_PREFIX
from my_package.config import ResultsDBSettings, Settings
from my_package.results import Result
from my_package.targets import FilesystemTarget, ResultRef, TargetError, load_result, save_result


def _result(i: float = 0.0, project: str = "proj") -> Result:
    # Made-up values: the targets store any inputs and outputs.
    k = np.linspace(-1.0, 1.0, 5) + i
    return Result(
        project_name=project,
        flow_id="integrity-test",
        inputs={"k": k, "length": 2.0},
        outputs={"size": np.sqrt(1.0 + k**2)},
    )


def _rehash(document: dict[str, Any]) -> str:
    """The unique_hash that matches an edited document's content (what a forger would do)."""
    return Result(
        flow_id=document["flow_id"], inputs=document["inputs"], outputs=document["outputs"]
    ).unique_hash


def _edit_output(doc: dict[str, Any]) -> None:
    doc["outputs"]["size"][0] = 0.0


def _drop_hash(doc: dict[str, Any]) -> None:
    _edit_output(doc)
    del doc["unique_hash"]


def _null_hash(doc: dict[str, Any]) -> None:
    _edit_output(doc)
    doc["unique_hash"] = None


def _recompute_hash(doc: dict[str, Any]) -> None:
    _edit_output(doc)
    doc["unique_hash"] = _rehash(doc)


def _other_result(doc: dict[str, Any]) -> None:
    other = json.loads(b"".join(_result(5.0).json_chunks()))
    doc.clear()
    doc.update(other)


def _bad_date(doc: dict[str, Any]) -> None:
    doc["date_modified"] = "yesterday"


def _no_flow_id(doc: dict[str, Any]) -> None:
    del doc["flow_id"]


def _outputs_not_a_mapping(doc: dict[str, Any]) -> None:
    doc["outputs"] = [1.0, 2.0]


# (case, edit of the stored document, what the error must say)
TAMPERING: list[tuple[str, Callable[[dict[str, Any]], None], str]] = [
    ("output edited, hash kept", _edit_output, "was modified"),
    ("output edited, hash removed", _drop_hash, "has no unique_hash"),
    ("output edited, hash null", _null_hash, "has no unique_hash"),
    ("output edited, hash recomputed", _recompute_hash, "was replaced"),
    ("replaced by another valid result", _other_result, "was replaced"),
    ("date that is not a date", _bad_date, "date_modified"),
    ("flow_id removed", _no_flow_id, "flow_id"),
    ("outputs not a mapping", _outputs_not_a_mapping, "not a mapping"),
]

# Damage to the file itself (filesystem target only).
DAMAGE: list[tuple[str, Callable[[bytes], bytes], str]] = [
    ("truncated", lambda data: data[: len(data) // 2], "not valid JSON"),
    ("empty", lambda data: b"", "not valid JSON"),
    ("a JSON list", lambda data: b"[1, 2]", "not a result document"),
    ("nested too deep", lambda data: b"[" * 100_000 + b"]" * 100_000, "not valid JSON"),
    ("not UTF-8", lambda data: b"\xff\xfe" + data, "not valid JSON"),
]


@pytest.mark.parametrize(("case", "edit", "message"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampered_file_is_refused(tmp_path, case, edit, message):
    ref = save_result(_result(), Settings(output_dir=tmp_path))
    path = Path(ref.location)
    document = json.loads(path.read_text())
    edit(document)
    path.write_text(json.dumps(document))
    with pytest.raises(TargetError, match=message) as info:
        load_result(ref)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(("case", "damage", "message"), DAMAGE, ids=[d[0] for d in DAMAGE])
def test_damaged_file_is_refused(tmp_path, case, damage, message):
    ref = save_result(_result(), Settings(output_dir=tmp_path))
    path = Path(ref.location)
    path.write_bytes(damage(path.read_bytes()))
    with pytest.raises(TargetError, match=message):
        load_result(ref)


@pytest.mark.parametrize(("case", "edit", "message"), TAMPERING, ids=[t[0] for t in TAMPERING])
def test_tampered_document_is_refused(mongo_settings, mongo_client, project, case, edit, message):
    ref = save_result(_result(project=project), mongo_settings)
    collection = mongo_client["results"][project]
    document = collection.find_one({})
    object_id = document.pop("_id")
    document["date_modified"] = document["date_modified"].isoformat()
    edit(document)
    collection.replace_one({"_id": object_id}, document)
    with pytest.raises(TargetError, match=message) as info:
        load_result(ref, mongo_settings)
    assert ref.location in str(info.value)


@pytest.mark.parametrize(
    ("location", "message"),
    [("not-an-id", "not a MongoDB result id"), ("0" * 24, "no MongoDB result")],
)
def test_bad_mongodb_reference_is_a_target_error(mongo_settings, project, location, message):
    ref = {"target": "mongodb", "location": location, "unique_hash": "0" * 32}
    with pytest.raises(TargetError, match=message):
        load_result({**ref, "project_name": project}, mongo_settings)


def test_document_content_never_chooses_where_a_save_goes(tmp_path):
    settings = Settings(output_dir=tmp_path / "out")
    ref = save_result(_result(), settings)
    path = Path(ref.location)
    document = json.loads(path.read_text())
    document["collection"] = "../../escaped"
    document["project_name"] = "../../escaped"
    path.write_text(json.dumps(document))
    loaded = load_result(ref)  # the extra keys are not lume-services' record: ignored
    assert loaded.project_name == "proj"
    again = save_result(loaded, settings)
    assert Path(again.location).parent == tmp_path / "out" / "proj"
    assert not (tmp_path / "escaped").exists()


@pytest.mark.parametrize("name", ["../../x", "..", "a/b", "a..b", "system.profile", "", "$x"])
def test_path_traversal_and_reserved_project_names_are_refused(tmp_path, name):
    with pytest.raises(ValueError, match="project name"):
        Result(project_name=name, flow_id="f")
    ref = {"target": "filesystem", "location": str(tmp_path / "x.json"), "unique_hash": "0" * 32}
    with pytest.raises(TargetError, match="project name"):
        load_result({**ref, "project_name": name})
    assert list(tmp_path.iterdir()) == []


def test_corrupt_existing_file_is_replaced(tmp_path):
    settings = Settings(output_dir=tmp_path)
    ref = save_result(_result(), settings)
    path = Path(ref.location)
    good = path.read_bytes()
    for damage in (b"", good[:100], good.replace(b"integrity-test", b"integrity-tesT")):
        path.write_bytes(damage)
        again = save_result(_result(), settings)
        assert again == ref
        assert path.read_bytes()[:60] == good[:60]
        assert load_result(ref).unique_hash == ref.unique_hash


def test_intact_existing_file_is_kept(tmp_path):
    settings = Settings(output_dir=tmp_path)
    ref = save_result(_result(), settings)
    before = os.stat(ref.location)
    time.sleep(0.01)
    save_result(_result(), settings)
    after = os.stat(ref.location)
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)


def test_stale_temporary_files_are_removed_by_the_next_save(tmp_path):
    directory = tmp_path / "proj"
    directory.mkdir()
    stale = directory / f"{TEMP_PREFIX}killed.tmp"
    fresh = directory / f"{TEMP_PREFIX}running.tmp"  # a save still writing it
    foreign = directory / ".someone-else.tmp"  # not ours: never touched
    for path in (stale, fresh, foreign):
        path.write_bytes(b"x" * 1000)
    hour_ago = time.time() - 3601
    os.utime(stale, (hour_ago, hour_ago))
    os.utime(foreign, (hour_ago, hour_ago))
    FilesystemTarget(tmp_path).save(_result())
    assert not stale.exists()
    assert fresh.exists() and foreign.exists()


def test_killed_save_leaves_only_prefixed_temporary_files(tmp_path):
    """A save killed with SIGKILL mid-write leaves a temp file that carries our prefix."""
    import subprocess
    import sys

    script = (
        "import os, numpy as np\n"
        "from my_package import targets\n"
        "from my_package.results import Result\n"
        "real = os.fsync\n"
        "def die(fd):\n"
        "    os.kill(os.getpid(), 9)\n"
        "os.fsync = die\n"
        f"targets.FilesystemTarget({str(tmp_path)!r}).save("
        "Result(project_name='proj', flow_id='k', outputs={'s': np.ones(10)}))\n"
    )
    run = subprocess.run([sys.executable, "-c", script], capture_output=True)
    assert run.returncode == -9
    (left,) = [p for p in (tmp_path / "proj").iterdir() if p.name.startswith(TEMP_PREFIX)]
    assert not list((tmp_path / "proj").glob("*.json"))  # no record: nothing half-saved
    hour_ago = time.time() - 3601
    os.utime(left, (hour_ago, hour_ago))
    ref = FilesystemTarget(tmp_path).save(_result())
    assert not left.exists()
    assert [p.name for p in (tmp_path / "proj").glob("*.json")] == [Path(ref.location).name]
    assert load_result(ref).unique_hash == ref.unique_hash


def test_filesystem_errors_name_the_path(tmp_path):
    long_dir = tmp_path / ("d" * 300)  # a name longer than the filesystem allows
    with pytest.raises(TargetError, match="d" * 300):
        save_result(_result(), Settings(output_dir=long_dir))
    missing = ResultRef(
        target="filesystem",
        location=str(tmp_path / "proj" / ("0" * 32 + ".json")),
        unique_hash="0" * 32,
        project_name="proj",
    )
    with pytest.raises(TargetError, match=str(tmp_path / "proj")):
        load_result(missing)


@pytest.mark.parametrize(
    ("database", "project", "message"),
    [
        ("a/b", "proj", "invalid MongoDB database name 'a/b'"),
        ("a.b", "proj", "invalid MongoDB database name"),
        ("x" * 64, "proj", "invalid MongoDB database name"),
    ],
)
def test_invalid_mongodb_names_are_refused_before_connecting(tmp_path, database, project, message):
    # Port 1 on loopback: nothing listens; a name error must come before any connection.
    settings = Settings(
        results_db=ResultsDBSettings(host="127.0.0.1", port=1, database=database, timeout_ms=100),
        target="mongodb",
    )
    with pytest.raises(TargetError, match=message) as info:
        save_result(_result(project=project), settings)
    assert "cannot reach" not in str(info.value)


def test_just_over_16_mb_is_too_large_not_unreachable(mongo_settings, mongo_client, project):
    # Over the limit by under 1 KB: the band pymongo itself lets through to the server.
    import bson

    # A BSON array element of index i takes 1 (type) + len(str(i)) + 1 (NUL) + 8 bytes.
    sizes = np.cumsum(10 + np.floor(np.log10(np.arange(1, 3_000_000))).astype(int) + 1)
    n = int(np.searchsorted(sizes, 16 * 2**20 - 200)) + 10
    over = Result(project_name=project, flow_id="f", outputs={"s": np.zeros(n)})
    size = len(bson.encode({"_id": bson.ObjectId(), **over.to_document()}))
    assert 0 < size - 16 * 2**20 < 1024
    with pytest.raises(TargetError, match="too large for one MongoDB document") as info:
        save_result(over, mongo_settings)
    assert "cannot reach" not in str(info.value)
    assert mongo_client["results"][project].count_documents({}) == 0


@pytest.mark.parametrize("project", ["system.profile", "a..b", "x$y"])
def test_invalid_collection_names_are_refused_before_connecting(project):
    from my_package.targets import MongoTarget

    db = ResultsDBSettings(host="127.0.0.1", port=1, timeout_ms=100)  # nothing listens
    ref = {"target": "mongodb", "location": "0" * 24, "unique_hash": "0" * 32}
    with MongoTarget(db) as target:
        for call in (lambda: list(target.summaries(project)), lambda: target.find(project, "ab")):
            with pytest.raises(TargetError, match="invalid MongoDB collection name") as info:
                call()
            assert "cannot reach" not in str(info.value)
    with pytest.raises(TargetError, match="project name"):
        load_result({**ref, "project_name": project}, Settings(results_db=db))
