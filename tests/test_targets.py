"""Result targets: the filesystem and a real MongoDB wire server (SecantusDB)."""

import json
import multiprocessing
import socket
import traceback
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from my_package.config import ResultsDBSettings, Settings
from my_package.results import Result
from my_package.targets import (
    FilesystemTarget,
    MongoTarget,
    ResultRef,
    TargetError,
    is_transient,
    load_result,
    save_result,
)

LUME_KEYS = {
    "_id",
    "flow_id",
    "inputs",
    "outputs",
    "date_modified",
    "unique_hash",
    "result_type_string",
}
PASSWORD = "pw-Zq81-never-shown"  # a test value: it must never appear in errors


def _result(i: int = 0, project: str = "proj") -> Result:
    # Made-up values: targets store any inputs and outputs, whatever variables.yml says.
    k = np.linspace(-1.0, 1.0, 5) + i
    return Result(
        project_name=project,
        flow_id="my-package-test",
        inputs={"k": k, "length": 2.0},
        outputs={"size": np.sqrt(1.0 + k**2)},
    )


def _fs_settings(tmp_path: Path) -> Settings:
    return Settings(output_dir=tmp_path / "out", target="filesystem")


def _json_files(directory: Path) -> list[Path]:
    """Every file but the metadata: result records, array files and any temporary."""
    return sorted(
        p for p in directory.rglob("*") if p.is_file() and p.suffix not in (".meta", ".jsonl")
    )


# --------------------------------------------------------------------------- filesystem


def test_filesystem_round_trip(tmp_path):
    result = _result()
    ref = save_result(result, _fs_settings(tmp_path))
    expected = tmp_path / "out" / "proj" / f"{result.unique_hash}.json"
    assert ref == ResultRef(
        target="filesystem",
        location=str(expected),
        unique_hash=result.unique_hash,
        project_name="proj",
    )
    stored = json.loads(expected.read_text())
    assert set(stored) == LUME_KEYS - {"_id"}
    assert stored["outputs"]["size"] == result.outputs["size"].tolist()
    # A ResultRef is a flow return value: it survives JSON.
    back = load_result(json.loads(ref.model_dump_json()))
    assert back.unique_hash == result.unique_hash
    assert back.project_name == "proj"
    assert back.inputs == {"k": result.inputs["k"].tolist(), "length": 2.0}
    assert back.date_modified == result.date_modified
    assert oct(expected.stat().st_mode & 0o777) == "0o644"


def test_filesystem_save_is_idempotent(tmp_path):
    settings = _fs_settings(tmp_path)
    first = save_result(_result(), settings)
    before = Path(first.location).read_bytes()
    # Same content, different date: still the same result, the first file is kept.
    again = save_result(_result(), settings)
    assert again == first
    assert _json_files(tmp_path) == [Path(first.location)]
    assert Path(first.location).read_bytes() == before


def _save_numbered(output_dir: str, i: int) -> str:
    return FilesystemTarget(output_dir).save(_result(i)).location


@pytest.mark.parametrize("pool", ["threads", "processes"])
def test_concurrent_saves_of_different_results(tmp_path, pool):
    out = str(tmp_path / "out")
    if pool == "threads":
        executor = ThreadPoolExecutor(max_workers=8)
    else:
        # spawn: no fork of a process that may run the MongoDB server thread.
        executor = ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("spawn"))
    with executor:
        locations = list(executor.map(_save_numbered, [out] * 8, range(8)))
    assert len(set(locations)) == 8
    files = _json_files(tmp_path)
    assert sorted(map(str, files)) == sorted(locations)  # no temporary files left
    for i in range(8):
        back = load_result(
            ResultRef(
                target="filesystem",
                location=locations[i],
                unique_hash=_result(i).unique_hash,
                project_name="proj",
            )
        )
        assert back.outputs["size"] == _result(i).outputs["size"].tolist()


def test_concurrent_saves_of_the_same_result(tmp_path):
    out = str(tmp_path / "out")
    with ThreadPoolExecutor(max_workers=8) as executor:
        locations = list(executor.map(_save_numbered, [out] * 8, [3] * 8))
    assert len(set(locations)) == 1
    assert _json_files(tmp_path) == [Path(locations[0])]
    stored = json.loads(Path(locations[0]).read_text())
    assert stored["unique_hash"] == _result(3).unique_hash


def test_unwritable_output_dir_gives_a_clear_error(tmp_path):
    # Root ignores permission bits: a path below a regular file fails for everyone.
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    settings = Settings(output_dir=blocker / "results")
    with pytest.raises(TargetError) as info:
        save_result(_result(), settings)
    message = str(info.value)
    assert str(blocker / "results" / "proj") in message
    assert "MY_PACKAGE_OUTPUT_DIR" in message
    assert not is_transient(info.value)
    assert blocker.read_text() == ""


def test_tampered_file_is_refused(tmp_path):
    ref = save_result(_result(), _fs_settings(tmp_path))
    path = Path(ref.location)
    document = json.loads(path.read_text())
    document["outputs"]["size"][0] = 0.0
    path.write_text(json.dumps(document))
    with pytest.raises(TargetError, match="was modified"):
        load_result(ref)


def test_unknown_target_is_refused(tmp_path):
    with pytest.raises(ValueError, match="unknown target 'tape'"):
        save_result(_result(), _fs_settings(tmp_path), target="tape")
    assert _json_files(tmp_path) == []


# --------------------------------------------------------------------------- MongoDB


def test_mongodb_round_trip(mongo_settings, mongo_client, project):
    result = _result(project=project)
    ref = save_result(result, mongo_settings)
    assert ref.target == "mongodb"
    assert ref.project_name == project
    assert ref.unique_hash == result.unique_hash

    collection = mongo_client["results"][project]  # collection = project_name
    stored = collection.find_one({"unique_hash": result.unique_hash})
    assert set(stored) == LUME_KEYS
    assert str(stored["_id"]) == ref.location
    assert stored["outputs"]["size"] == result.outputs["size"].tolist()
    assert stored["result_type_string"] == "lume_services.results.generic.Result"

    back = load_result(json.loads(ref.model_dump_json()), mongo_settings)
    assert back.unique_hash == result.unique_hash
    assert back.inputs["k"] == result.inputs["k"].tolist()
    assert back.date_modified == result.date_modified


def test_mongodb_save_is_idempotent(mongo_settings, mongo_client, project):
    first = save_result(_result(project=project), mongo_settings)
    again = save_result(_result(project=project), mongo_settings)
    assert again == first
    collection = mongo_client["results"][project]
    assert collection.count_documents({}) == 1
    index = collection.index_information()["unique_hash_1"]
    assert index["unique"] is True
    assert index["key"] == [("unique_hash", 1)]


def test_mongo_target_reuses_one_client_for_many_saves(mongo_settings, mongo_client, project):
    with MongoTarget(mongo_settings.results_db) as target:
        refs = [target.save(_result(i, project=project)) for i in range(5)]
        assert target.load(refs[2]).unique_hash == _result(2).unique_hash
    assert len({ref.location for ref in refs}) == 5
    assert mongo_client["results"][project].count_documents({}) == 5


def test_numpy_scalars_inside_lists_are_stored(mongo_settings, mongo_client, project):
    result = Result(project_name=project, flow_id="f", inputs={"k": [np.float32(0.5), 1.0]})
    ref = save_result(result, mongo_settings)
    stored = mongo_client["results"][project].find_one()
    assert stored["inputs"] == {"k": [0.5, 1.0]}
    assert load_result(ref, mongo_settings).unique_hash == result.unique_hash


def test_too_large_for_one_document(mongo_settings, mongo_client, project):
    # 1.1e6 doubles as a BSON array take about 17 MB, over MongoDB's 16 MB limit.
    result = Result(project_name=project, flow_id="f", outputs={"s": np.zeros(1_100_000)})
    with pytest.raises(TargetError, match="too large for one MongoDB document") as info:
        save_result(result, mongo_settings)
    assert "filesystem" in str(info.value)
    assert not is_transient(info.value)
    assert mongo_client["results"][project].count_documents({}) == 0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _chain(exc: BaseException) -> list[BaseException]:
    seen = []
    while exc is not None and exc not in seen:
        seen.append(exc)
        exc = exc.__cause__ or exc.__context__
    return seen


def test_down_mongodb_fails_with_a_clear_error_and_no_password(tmp_path):
    port = _free_port()  # closed: nothing listens there
    settings = Settings(
        results_db=ResultsDBSettings(
            host="127.0.0.1",
            port=port,
            username="physicist",
            password=PASSWORD,
            authmechanism="SCRAM-SHA-256",
            timeout_ms=500,
        ),
        target="mongodb",
        output_dir=tmp_path,
    )
    with pytest.raises(TargetError) as info:
        save_result(_result(), settings)
    error = info.value
    assert f"127.0.0.1:{port}" in str(error)
    assert "LUME_RESULTS_DB__HOST" in str(error) and "LUME_RESULTS_DB__PORT" in str(error)
    assert is_transient(error)
    for exc in _chain(error):
        assert PASSWORD not in str(exc) and PASSWORD not in repr(exc)
    assert PASSWORD not in "".join(traceback.format_exception(error))
    assert _json_files(tmp_path) == []


def test_is_transient_classifies_errors():
    from pymongo.errors import (
        AutoReconnect,
        DocumentTooLarge,
        NetworkTimeout,
        OperationFailure,
        ServerSelectionTimeoutError,
    )

    assert is_transient(ServerSelectionTimeoutError("down"))
    assert is_transient(AutoReconnect("reset"))
    assert is_transient(NetworkTimeout("slow"))
    assert is_transient(TargetError("down", transient=True))
    assert not is_transient(TargetError("too large"))
    assert not is_transient(DocumentTooLarge("big"))
    assert not is_transient(OperationFailure("auth failed", code=18))
    assert not is_transient(ValueError("out of range"))


@pytest.fixture(scope="module")
def auth_mongo_server():
    """A server that requires authentication and has no users: every login fails."""
    from secantus import SecantusDBServer

    with SecantusDBServer(port=0, storage_path=":memory:", require_auth=True) as server:
        yield server.host, server.port


def test_failed_login_is_clear_final_and_hides_the_password(auth_mongo_server, tmp_path):
    host, port = auth_mongo_server
    settings = Settings(
        results_db=ResultsDBSettings(
            host=host, port=port, username="physicist", password=PASSWORD, timeout_ms=2000
        ),
        target="mongodb",
        output_dir=tmp_path,
    )
    with pytest.raises(TargetError) as info:
        save_result(_result(), settings)
    error = info.value
    assert f"{host}:{port}" in str(error)
    assert "authentication failed" in str(error)
    assert "LUME_RESULTS_DB__USERNAME" in str(error)
    assert not is_transient(error)  # retrying a wrong password only delays the failure
    for exc in _chain(error):
        assert PASSWORD not in str(exc) and PASSWORD not in repr(exc)
