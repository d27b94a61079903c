"""Where results go: one JSON file per result, or one MongoDB document per result.

Both targets key a result by its ``unique_hash``: saving the same result twice
stores it once and returns the same reference (first save wins). Arrays above
``Settings.file_threshold_bytes`` go to HDF5 files first (array_files.py): beside the
JSON file, or on the mounted filesystem for MongoDB; the record, written last, holds
their references. Each record has a metadata file or document beside it (units, scan,
run name), keyed by ``unique_hash``; the filesystem target also appends it to the
project's ``index.jsonl``, so ``results list`` reads one file. Every failure is a
TargetError naming the path, the collection or the server, with what to do.
"""

import json
import os
import re
import tempfile
import time
from collections.abc import Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from pydantic import BaseModel, ValidationError, field_validator

from my_package.array_files import (
    TEMP_PREFIX,
    ArrayFileError,
    is_file_ref,
    is_large,
    read_array,
    write_array,
)
from my_package.config import MountedFilesystemSettings, ResultsDBSettings, Settings
from my_package.results import Result, ResultIntegrityError, check_project_name, numpy_default

# The env vars to name in error messages (lume-services' spelling, see config.py).
_DB_ENV = "LUME_RESULTS_DB__HOST / LUME_RESULTS_DB__PORT"
_OUTPUT_ENV = "MY_PACKAGE_OUTPUT_DIR (or --output-dir)"
_MOUNT_ENV = "LUME_MOUNTED_FILESYSTEM__MOUNT_PATH"
DEFAULT_THRESHOLD = Settings.model_fields["file_threshold_bytes"].default
STALE_SECONDS = 3600  # a temporary file this old belongs to a save that was killed
META_SUFFIX = ".meta"  # <unique_hash>.meta beside <unique_hash>.json: not a *.json result
INDEX_NAME = "index.jsonl"  # one metadata line per save: `results list` reads one file
_cleaned: dict[Path, float] = {}  # directory -> when this process last removed stale temps
MONGO_MAX_BYTES = 16 * 1024 * 1024  # MongoDB's document limit
_HASH = re.compile(r"^[0-9a-f]{32}$")


class TargetError(RuntimeError):
    """A result could not be saved or loaded; the message says what to do.

    ``transient`` says whether trying again may succeed (server down, timeout).
    """

    def __init__(self, message: str, *, transient: bool = False) -> None:
        super().__init__(message)
        self.transient = transient


class ResultRef(BaseModel):
    """Where a saved result is: a flow's JSON-serializable return value."""

    target: Literal["filesystem", "mongodb"]
    location: str  # absolute file path, or the MongoDB ObjectId as hex
    unique_hash: str
    project_name: str

    @field_validator("project_name")
    @classmethod
    def _safe_project_name(cls, value: str) -> str:
        return check_project_name(value)


def is_transient(exc: BaseException) -> bool:
    """True if a save failed for a reason worth retrying (connection, timeout).

    Validation errors, documents too large, bad credentials and unwritable
    directories are not: retrying them only delays the failure.
    """
    from pymongo.errors import ConnectionFailure, ExecutionTimeout, WTimeoutError

    if isinstance(exc, TargetError):
        return exc.transient
    # ConnectionFailure covers AutoReconnect, NetworkTimeout and ServerSelectionTimeoutError.
    transient_types = (ConnectionFailure, ExecutionTimeout, WTimeoutError, TimeoutError)
    return isinstance(exc, transient_types)


# --------------------------------------------------------------------------- shared


def _os_error(action: str, path: Path | str, exc: OSError, hint: str = "") -> TargetError:
    """A TargetError for a filesystem failure, naming the path (never a traceback)."""
    return TargetError(f"cannot {action} {path}: {exc.strerror or exc}{hint}")


def remove_stale_temps(directory: Path, max_age: float = STALE_SECONDS) -> int:
    """Delete this package's temporary files older than ``max_age`` seconds in ``directory``.

    They are what a killed save leaves behind; only names with this package's prefix
    are touched, so other programs' files never are. Returns how many were removed.
    """
    removed = 0
    cutoff = time.time() - max_age
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return 0  # the save itself reports an unusable directory
    for entry in entries:
        if not entry.name.startswith(TEMP_PREFIX):
            continue
        try:
            if entry.is_file(follow_symlinks=False) and entry.stat().st_mtime < cutoff:
                os.unlink(entry.path)
                removed += 1
        except OSError:
            pass  # another save removed it first, or it is not ours to remove
    return removed


def clean_if_due(directory: Path) -> None:
    """Remove stale temporary files, at most once every few minutes per directory.

    A run saves once, so it always cleans; a bulk saver (a notebook, a benchmark)
    does not rescan a directory of thousands of results on every save.
    """
    now = time.monotonic()
    if now - _cleaned.get(directory, -1e9) > 300:
        remove_stale_temps(directory)
        _cleaned[directory] = now


def externalize(
    result: Result, threshold: int, directory: Path, recorded_dir: str, identifier: str
) -> Result:
    """``result`` with every array above ``threshold`` bytes written to an HDF5 file."""

    def convert(values: dict[str, Any]) -> dict[str, Any]:
        return {
            name: write_array(value, directory, recorded_dir, identifier)
            if is_large(value, threshold)
            else value
            for name, value in values.items()
        }

    values = (*result.inputs.values(), *result.outputs.values())
    if not any(is_large(value, threshold) for value in values):
        return result  # small results are plain JSON, exactly as before
    return result.with_values(convert(result.inputs), convert(result.outputs))


def resolve_files(result: Result, directory: Path | None, where: str) -> Result:
    """``result`` with every file reference read back (sha256 checked) from ``directory``."""
    values = (*result.inputs.values(), *result.outputs.values())
    if not any(is_file_ref(value) for value in values):
        return result
    if directory is None:
        raise TargetError(
            f"{where} keeps arrays in HDF5 files on the mounted filesystem; set {_MOUNT_ENV} "
            "to the directory that holds them"
        )

    def read(values: dict[str, Any]) -> dict[str, Any]:
        return {k: read_array(v, directory) if is_file_ref(v) else v for k, v in values.items()}

    try:
        loaded = result.with_values(read(result.inputs), read(result.outputs))
    except ArrayFileError as exc:
        raise TargetError(f"{where}: {exc}") from None
    # StoredArrays hash as their references: the same unique_hash as the record.
    if loaded.unique_hash != result.unique_hash:
        raise TargetError(f"{where}: its array files do not match its references")
    return loaded


def sidecar(result: Result) -> dict[str, Any]:
    """The metadata stored beside a record (and what ``results list`` reads)."""
    return {
        "unique_hash": result.unique_hash,
        "flow_id": result.flow_id,
        "date_modified": result.date_modified.isoformat(),
        **result.metadata,
    }


def _summary_from_result(result: Result, location: str) -> dict[str, Any]:
    """A summary for a record without metadata (saved by an older version or another tool)."""
    scanned = {k: v for k, v in result.inputs.items() if isinstance(v, list) or is_file_ref(v)}
    return {
        "unique_hash": result.unique_hash,
        "flow_id": result.flow_id,
        "date_modified": result.date_modified.isoformat(),
        "scan": {name: {} for name in scanned},
        "points": None,
        "fixed_inputs": {k: v for k, v in result.inputs.items() if isinstance(v, int | float)},
        "location": location,
    }


# --------------------------------------------------------------------------- filesystem


class FilesystemTarget:
    """One JSON file per result at ``<output_dir>/<project_name>/<unique_hash>.json``.

    Large arrays are HDF5 files ``<sha256>.h5`` in the same directory; the metadata
    is ``<unique_hash>.meta`` (JSON).
    """

    def __init__(
        self, output_dir: str | os.PathLike[str], threshold_bytes: int = DEFAULT_THRESHOLD
    ) -> None:
        self.output_dir = Path(output_dir)
        self.threshold_bytes = threshold_bytes

    def project_dir(self, project_name: str) -> Path:
        return (self.output_dir / check_project_name(project_name)).absolute()

    def path_for(self, result: Result) -> Path:
        return self.project_dir(result.project_name) / f"{result.unique_hash}.json"

    def save(self, result: Result) -> ResultRef:
        directory = self.project_dir(result.project_name)
        hint = f". Set {_OUTPUT_ENV} to a writable directory, or use the mongodb target."
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise _os_error("create the result directory", directory, exc, hint) from None
        clean_if_due(directory)
        try:
            stored = externalize(result, self.threshold_bytes, directory, str(directory), "local")
        except OSError as exc:
            raise _os_error("write an array file in", directory, exc, hint) from None
        path = directory / f"{stored.unique_hash}.json"
        try:
            exists = path.exists()
            if exists and self._intact(path, stored):
                return self._ref(path, stored)
            # Metadata first, the record last: a record always has its metadata. Not
            # fsync'd: it is descriptive, checked when read, and rebuilt by a re-save.
            meta = json.dumps(sidecar(stored)).encode()
            _write_atomic(path.with_suffix(META_SUFFIX), [meta], replace=True, durable=False)
            # A corrupt file of that name (truncated by a full disk, edited) is replaced.
            _write_atomic(path, stored.json_chunks(), replace=exists)
        except OSError as exc:
            raise _os_error("write result file", path, exc, hint) from None
        _append_index(directory / INDEX_NAME, meta)
        return self._ref(path, stored)

    @staticmethod
    def _ref(path: Path, result: Result) -> ResultRef:
        return ResultRef(
            target="filesystem",
            location=str(path),
            unique_hash=result.unique_hash,
            project_name=result.project_name,
        )

    @staticmethod
    def _intact(path: Path, stored: Result) -> bool:
        """True if the existing ``path`` is this result, whole (size, then hash)."""
        minimum = sum(len(part) for part in stored.json_parts)
        if path.stat().st_size < minimum:
            return False  # truncated or empty: no need to read it
        try:
            document = json.loads(path.read_bytes())
            return Result.from_document(document, stored.project_name).unique_hash == (
                stored.unique_hash
            )
        except (ValueError, RecursionError):
            return False

    def load(self, ref: ResultRef) -> Result:
        path = Path(ref.location)
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise _os_error("read result file", path, exc) from None
        try:
            document = json.loads(data)
        except (ValueError, RecursionError):
            raise TargetError(
                f"result file {path} is not valid JSON: it was truncated or edited"
            ) from None
        try:
            result = Result.from_document(document, ref.project_name)
        except ResultIntegrityError as exc:
            raise TargetError(f"result file {path} {exc}") from None
        _check_ref_hash(result, ref, f"result file {path}")
        result = resolve_files(result, path.parent, f"result file {path}")
        return result.model_copy(update={"metadata": _read_sidecar(path, result.unique_hash)})

    def summaries(self, project_name: str) -> Iterator[dict[str, Any]]:
        """One summary per saved result of the project, from its index and metadata files.

        The records present decide what is listed (a deleted result is gone); their
        metadata comes from ``index.jsonl`` (one file to read), else from the result's
        ``.meta`` file, else from the record itself (saved by another tool).
        """
        directory = self.project_dir(project_name)
        try:
            names = [n for n in os.listdir(directory) if n.endswith(".json")]
        except FileNotFoundError:
            return
        except OSError as exc:
            raise _os_error("list result directory", directory, exc) from None
        present = {name[: -len(".json")] for name in names}
        indexed = {h: m for h, m in _read_index(directory / INDEX_NAME).items() if h in present}
        for unique_hash, meta in indexed.items():
            yield {**meta, "location": f"{directory}{os.sep}{unique_hash}.json"}
        for unique_hash in present - indexed.keys():
            record = directory / f"{unique_hash}.json"
            try:
                meta = json.loads((directory / f"{unique_hash}{META_SUFFIX}").read_bytes())
                if meta.get("unique_hash") != unique_hash:
                    raise ValueError("metadata of another result")
                yield {**meta, "location": str(record)}
            except (OSError, ValueError, AttributeError):
                try:  # no (usable) metadata: read the record itself
                    document = json.loads(record.read_bytes())
                    result = Result.from_document(document, project_name)
                except (OSError, ValueError, RecursionError):
                    continue  # not a result (loading it says why)
                yield _summary_from_result(result, str(record))

    def find(self, project_name: str, key: str) -> ResultRef:
        """The result whose path is ``key``, or whose unique_hash starts with ``key``."""
        path = Path(key)
        if key.endswith(".json") and path.is_file():
            try:
                return ResultRef(
                    target="filesystem",
                    location=str(path.absolute()),
                    unique_hash=path.stem,
                    project_name=path.absolute().parent.name,
                )
            except ValueError:  # pydantic's ValidationError: the folder is no project name
                raise TargetError(
                    f"{path} is not a saved result: results are <project>/<unique_hash>.json"
                ) from None
        prefix = _check_prefix(key)
        directory = self.project_dir(project_name)
        try:
            names = [
                n for n in os.listdir(directory) if n.startswith(prefix) and n.endswith(".json")
            ]
        except FileNotFoundError:
            names = []
        except OSError as exc:
            raise _os_error("list result directory", directory, exc) from None
        stem = _one_match(sorted(n[: -len(".json")] for n in names), key, str(directory))
        return ResultRef(
            target="filesystem",
            location=str(directory / f"{stem}.json"),
            unique_hash=stem,
            project_name=project_name,
        )


def _check_prefix(key: str) -> str:
    prefix = key.lower()
    if not prefix or not re.fullmatch(r"[0-9a-f]{1,32}", prefix):
        raise TargetError(
            f"result id {key!r} is neither a result file nor a unique_hash prefix "
            "(hexadecimal digits, as `results list` shows)"
        )
    return prefix


def _one_match(hashes: list[str], key: str, where: str) -> str:
    if not hashes:
        raise TargetError(f"no result {key!r} in {where}: see `python -m my_package results list`")
    if len(hashes) > 1:
        shown = ", ".join(h[:12] for h in hashes[:5])
        raise TargetError(
            f"result id {key!r} matches {len(hashes)} results in {where} ({shown}...): "
            "give more digits"
        )
    return hashes[0]


def _check_ref_hash(result: Result, ref: ResultRef, where: str) -> None:
    if result.unique_hash != ref.unique_hash:
        raise TargetError(
            f"{where} holds result {result.unique_hash}, not the {ref.unique_hash} it was "
            "saved as: the stored result was replaced"
        )


def _read_sidecar(path: Path, unique_hash: str) -> dict[str, Any]:
    try:
        meta = json.loads(path.with_suffix(META_SUFFIX).read_bytes())
    except (OSError, ValueError, RecursionError):
        return {}  # metadata is descriptive: a record without it still loads
    if not isinstance(meta, dict) or meta.get("unique_hash") != unique_hash:
        return {}
    return {k: v for k, v in meta.items() if k not in ("unique_hash", "flow_id", "date_modified")}


def _append_index(path: Path, meta: bytes) -> None:
    """Append one line to the project's index; a lost line only makes ``list`` slower.

    One ``write`` with O_APPEND: concurrent saves' lines do not interleave (local disks).
    """
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, meta + b"\n")
        finally:
            os.close(fd)
    except OSError:
        pass  # the record is saved; list falls back to the .meta files


def _read_index(path: Path) -> dict[str, dict[str, Any]]:
    """unique_hash -> metadata from ``index.jsonl`` (the last line per hash wins)."""
    try:
        data = path.read_bytes()
    except OSError:
        return {}
    entries = {}
    for line in data.splitlines():
        try:
            meta = orjson.loads(line)  # ~4x json.loads: list reads 10,000 lines
        except ValueError:
            continue  # a line cut short by a killed save
        if isinstance(meta, dict) and isinstance(meta.get("unique_hash"), str):
            entries[meta["unique_hash"]] = meta
    return entries


def _write_atomic(
    path: Path, chunks: Iterable[bytes], replace: bool = False, durable: bool = True
) -> None:
    """Write ``path`` atomically: readers never see a partial file.

    The temporary file is unique (mkstemp), in the same directory (so the final
    link/rename is atomic) and carries this package's prefix (so a later save removes
    it if this one is killed). Without ``replace``, ``os.link`` refuses to overwrite:
    when saves of the same result race, the first one wins, like MongoDB's unique index.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=TEMP_PREFIX, suffix=".tmp")
    try:
        # mkstemp creates 0600; results are not secret and other users (a container's
        # non-root user, the host user) must read them.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.writelines(chunks)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        if replace:
            os.replace(tmp, path)
            return
        try:
            os.link(tmp, path)
        except FileExistsError:
            pass  # a concurrent save of the same result finished first
        except OSError:
            os.replace(tmp, path)  # filesystem without hard links: atomic rename instead
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


# --------------------------------------------------------------------------- MongoDB

# MongoDB's rules for database names; collection names are project names (results.py).
_BAD_DB_CHARS = set('/\\. "$*<>:|?\0')


class MongoTarget:
    """One document per result in ``<database>.<project_name>``, unique on ``unique_hash``.

    Metadata documents go to ``<project_name>.meta``; large arrays to HDF5 files under
    the mounted filesystem's ``<mount_path>/<project_name>/`` when one is configured.
    One client per target object, closed by ``close()`` or the ``with`` block.
    :func:`save_result` opens and closes one per call: a run saves one result, the
    connection costs milliseconds against Prefect's ~1 s per run, and a client never
    outlives the run (a cached client would leak threads and is unsafe across fork).
    Bulk savers (benchmarks, notebooks) keep one ``MongoTarget`` open instead.
    """

    def __init__(
        self,
        db: ResultsDBSettings,
        files: MountedFilesystemSettings | None = None,
        threshold_bytes: int = DEFAULT_THRESHOLD,
    ) -> None:
        self.db = db
        self.files = files if files is not None and files.mount_path is not None else None
        self.threshold_bytes = threshold_bytes
        self._client: Any = None
        self._indexed: set[str] = set()

    @property
    def address(self) -> str:
        return f"{self.db.host}:{self.db.port}"

    def ping(self) -> None:
        """Check that the server answers and accepts the credentials within the timeout."""
        self._call(lambda: self._connect().admin.command("ping"), "answer a ping")

    def check_names(self, project_name: str) -> None:
        """Refuse a database or collection name MongoDB would refuse, before connecting."""
        name = self.db.database
        if not name or _BAD_DB_CHARS & set(name) or len(name.encode()) >= 64:
            raise TargetError(
                f"invalid MongoDB database name {name!r}: use 1-63 characters without "
                '/ \\ . space " $ * < > : | ?. Check LUME_RESULTS_DB__DATABASE.'
            )
        try:
            check_project_name(project_name)
        except ValueError as exc:
            raise TargetError(f"invalid MongoDB collection name: {exc}") from None

    def _files_dir(self, project_name: str) -> tuple[Path, str] | None:
        if self.files is None:
            return None
        assert self.files.mount_path is not None
        alias = self.files.mount_alias or str(self.files.mount_path)
        return Path(self.files.mount_path) / project_name, f"{alias.rstrip('/')}/{project_name}"

    def _collection(self, name: str) -> Any:
        collection = self._connect()[self.db.database][name]
        if name not in self._indexed:
            # Idempotent; upstream lume-services never creates it, so duplicates crept in.
            collection.create_index("unique_hash", unique=True)
            self._indexed.add(name)
        return collection

    def _connect(self) -> Any:
        """The client, created on first use."""
        if self._client is None:
            from bson.codec_options import TypeRegistry
            from pymongo import MongoClient

            db = self.db
            options: dict[str, Any] = {}
            if db.username:
                options.update(username=db.username, authSource=db.database)
                if db.password is not None:
                    options["password"] = db.password.get_secret_value()
                if db.authmechanism.upper() != "DEFAULT":
                    options["authMechanism"] = db.authmechanism
            # Separate arguments, not a URI holding the password: nothing pymongo
            # reports (errors, repr) can then contain it.
            self._client = MongoClient(
                host=db.host,
                port=db.port,
                serverSelectionTimeoutMS=db.timeout_ms,
                connectTimeoutMS=db.timeout_ms,
                socketTimeoutMS=db.timeout_ms,
                tz_aware=True,
                # numpy scalars left inside plain lists are encoded, not rejected.
                type_registry=TypeRegistry(fallback_encoder=numpy_default),
                appname="my_package",
                **options,
            )
        return self._client

    def _store_files(self, result: Result) -> Result:
        place = self._files_dir(result.project_name)
        if place is None:
            return result  # no mounted filesystem: every array stays in the document
        directory, recorded = place
        assert self.files is not None
        try:
            if self.files.mount_type == "Directory" and not directory.parent.is_dir():
                raise FileNotFoundError(2, "No such directory (mount_type is Directory)")
            directory.mkdir(parents=True, exist_ok=True)
            clean_if_due(directory)
            return externalize(result, self.threshold_bytes, directory, recorded, "mounted")
        except OSError as exc:
            raise _os_error(
                "write array files in", directory, exc, f". Check {_MOUNT_ENV}."
            ) from None

    def _encode(self, result: Result) -> tuple[Any, Any]:
        """The document as raw BSON with a new _id, refused here if over 16 MB.

        Checked before sending, so a document just over the limit (which pymongo lets
        through to the server) gets the same clear error as a much larger one.
        """
        import bson
        from bson.codec_options import CodecOptions, TypeRegistry
        from bson.raw_bson import RawBSONDocument

        object_id = bson.ObjectId()
        options: Any = CodecOptions(
            tz_aware=True, type_registry=TypeRegistry(fallback_encoder=numpy_default)
        )
        try:
            data = bson.encode({"_id": object_id, **result.to_document()}, codec_options=options)
        except (bson.errors.InvalidDocument, OverflowError) as exc:
            raise TargetError(f"the result cannot be stored in MongoDB: {exc}") from None
        if len(data) > MONGO_MAX_BYTES:
            hint = "Use the filesystem target (MY_PACKAGE_TARGET=filesystem), a smaller scan" + (
                "" if self.files else f", or set {_MOUNT_ENV} so large arrays go to HDF5 files"
            )
            raise TargetError(
                f"the result is {len(data) / 2**20:.1f} MB, too large for one MongoDB "
                f"document (16 MB limit). {hint}."
            )
        return object_id, RawBSONDocument(data)

    def save(self, result: Result) -> ResultRef:
        from pymongo.errors import DuplicateKeyError

        self.check_names(result.project_name)
        stored = self._store_files(result)
        object_id, raw = self._encode(stored)

        def insert() -> str:
            collection = self._collection(stored.project_name)
            meta = self._collection(f"{stored.project_name}.meta")
            meta.replace_one({"unique_hash": stored.unique_hash}, sidecar(stored), upsert=True)
            try:
                collection.insert_one(raw)
                return str(object_id)
            except DuplicateKeyError:
                existing = collection.find_one({"unique_hash": stored.unique_hash})
            try:
                Result.from_document(existing, stored.project_name)
            except ResultIntegrityError:  # an edited document: put the real one back
                collection.replace_one({"_id": existing["_id"]}, stored.to_document())
            return str(existing["_id"])

        location = self._call(insert, f"save result {stored.unique_hash}")
        return ResultRef(
            target="mongodb",
            location=location,
            unique_hash=stored.unique_hash,
            project_name=stored.project_name,
        )

    def load(self, ref: ResultRef) -> Result:
        from bson import ObjectId
        from bson.errors import InvalidId

        self.check_names(ref.project_name)
        try:
            object_id = ObjectId(ref.location)
        except (InvalidId, TypeError):
            raise TargetError(
                f"{ref.location!r} is not a MongoDB result id (24 hexadecimal digits)"
            ) from None
        where = f"MongoDB result {ref.location} in {self.db.database}.{ref.project_name}"

        def find() -> Any:
            document = self._collection(ref.project_name).find_one({"_id": object_id})
            meta = self._collection(f"{ref.project_name}.meta").find_one(
                {"unique_hash": ref.unique_hash}, {"_id": 0}
            )
            return document, meta

        document, meta = self._call(find, f"load result {ref.location}")
        if document is None:
            raise TargetError(f"no {where} on {self.address}")
        try:
            result = Result.from_document(document, ref.project_name)
        except ResultIntegrityError as exc:
            raise TargetError(f"{where} {exc}") from None
        _check_ref_hash(result, ref, where)
        place = self._files_dir(ref.project_name)
        result = resolve_files(result, place[0] if place else None, where)
        meta = {
            k: v
            for k, v in (meta or {}).items()
            if k not in ("unique_hash", "flow_id", "date_modified")
        }
        return result.model_copy(update={"metadata": meta})

    def summaries(self, project_name: str) -> Iterator[dict[str, Any]]:
        """One summary per saved result of the project (records joined with metadata)."""
        self.check_names(project_name)

        def fetch() -> tuple[list[Any], dict[str, Any]]:
            fields = {"unique_hash": 1, "flow_id": 1, "date_modified": 1}
            records = list(self._collection(project_name).find({}, fields))
            metas = self._collection(f"{project_name}.meta").find({}, {"_id": 0})
            return records, {m.get("unique_hash"): m for m in metas}

        records, metas = self._call(fetch, f"list collection {project_name}")
        for record in records:
            unique_hash = record.get("unique_hash")
            date = record.get("date_modified")
            base = {
                "unique_hash": unique_hash,
                "flow_id": record.get("flow_id"),
                "date_modified": date.isoformat() if isinstance(date, datetime) else str(date),
                "scan": {},
                "points": None,
                "fixed_inputs": {},
            }
            yield {**base, **metas.get(unique_hash, {}), "location": str(record["_id"])}

    def find(self, project_name: str, key: str) -> ResultRef:
        """The result whose ``_id`` is ``key``, or whose unique_hash starts with ``key``."""
        self.check_names(project_name)
        prefix = _check_prefix(key)

        def query() -> list[Any]:
            cursor = self._collection(project_name).find(
                {"unique_hash": {"$regex": f"^{prefix}"}}, {"unique_hash": 1}
            )
            return list(cursor.limit(6))

        matches = self._call(query, f"find result {key}")
        where = f"MongoDB collection {self.db.database}.{project_name}"
        unique_hash = _one_match(sorted(m["unique_hash"] for m in matches), key, where)
        (match,) = [m for m in matches if m["unique_hash"] == unique_hash]
        return ResultRef(
            target="mongodb",
            location=str(match["_id"]),
            unique_hash=unique_hash,
            project_name=project_name,
        )

    def _call(self, operation: Any, what: str) -> Any:
        """Run ``operation``, turning pymongo errors into a TargetError without secrets."""
        from bson.errors import InvalidDocument
        from pymongo.errors import (
            DocumentTooLarge,
            InvalidName,
            OperationFailure,
            PyMongoError,
        )

        try:
            return operation()
        except DocumentTooLarge:
            failure = TargetError(
                "the result is too large for one MongoDB document (16 MB limit). "
                "Use the filesystem target (MY_PACKAGE_TARGET=filesystem) or a smaller scan."
            )
        except InvalidName as exc:
            failure = TargetError(f"invalid MongoDB name: {exc}. Check LUME_RESULTS_DB__DATABASE.")
        except InvalidDocument as exc:
            failure = TargetError(f"the result cannot be stored in MongoDB: {exc}")
        except OperationFailure as exc:
            if exc.code in (10334, 17419, 17420) or "too large" in str(exc).lower():
                failure = TargetError(
                    f"MongoDB at {self.address} refused the result as too large for one "
                    "document (16 MB limit). Use the filesystem target or a smaller scan."
                )
            elif exc.code in (73, 16256):  # InvalidNamespace
                failure = TargetError(
                    f"MongoDB at {self.address} refused the name: {self._scrub(exc)}. "
                    "Check LUME_RESULTS_DB__DATABASE and MY_PACKAGE_PROJECT_NAME."
                )
            else:
                failure = TargetError(
                    f"MongoDB at {self.address} refused to {what}: {self._scrub(exc)}. "
                    "Check LUME_RESULTS_DB__USERNAME / __PASSWORD / __DATABASE / "
                    "__AUTHMECHANISM.",
                    transient=is_transient(exc),
                )
        except PyMongoError as exc:
            failure = TargetError(
                f"cannot reach MongoDB at {self.address} to {what} "
                f"({type(exc).__name__}: {self._scrub(exc)}). "
                f"Is the server running? Check {_DB_ENV}.",
                transient=is_transient(exc),
            )
        # Raised outside the except blocks, so no pymongo exception is chained to it.
        raise failure

    def _scrub(self, exc: BaseException) -> str:
        # pymongo never puts the password in messages when it is passed separately;
        # scrub anyway, and drop the long topology description / raw server reply.
        text = str(exc).split(", Timeout:")[0].split(", full error:")[0][:300]
        if self.db.password is not None and self.db.password.get_secret_value():
            text = text.replace(self.db.password.get_secret_value(), "**********")
        return text

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None
            self._indexed.clear()

    def __enter__(self) -> "MongoTarget":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


# --------------------------------------------------------------------------- entry points


def filesystem_target(settings: Settings) -> FilesystemTarget:
    return FilesystemTarget(settings.output_dir, settings.file_threshold_bytes)


def mongo_target(settings: Settings) -> MongoTarget:
    return MongoTarget(
        settings.results_db, settings.mounted_filesystem, settings.file_threshold_bytes
    )


def save_result(result: Result, settings: Settings, target: str | None = None) -> ResultRef:
    """Save ``result`` to ``target`` (default ``settings.target``) and say where it went."""
    target = target or settings.target
    if target == "filesystem":
        return filesystem_target(settings).save(result)
    if target == "mongodb":
        with mongo_target(settings) as mongo:
            return mongo.save(result)
    raise ValueError(f"unknown target {target!r}: use 'filesystem' or 'mongodb'")


def load_result(ref: ResultRef | dict[str, Any], settings: Settings | None = None) -> Result:
    """Read a saved result back, checked; ``settings`` (default: the environment) for MongoDB.

    The record's hash is recomputed and compared with the stored one and with the
    reference's, and every array file's sha256 is checked. Raises only TargetError.
    Array variables (NDVariable) come back as numpy arrays of their declared shape and dtype.
    """
    from my_package.variables import declared_arrays, load_variables

    try:
        ref = ResultRef.model_validate(ref)
    except ValidationError as exc:
        error = exc.errors()[0]
        where = ".".join(map(str, error["loc"]))
        raise TargetError(f"not a result reference: {where}: {error['msg']}") from None
    if ref.target == "filesystem":
        result = FilesystemTarget(Path(ref.location).parent.parent).load(ref)
    else:
        with mongo_target(settings or Settings()) as mongo:
            result = mongo.load(ref)
    inputs, outputs = load_variables()
    return result.model_copy(
        update={
            "inputs": declared_arrays(result.inputs, inputs),
            "outputs": declared_arrays(result.outputs, outputs),
        }
    )
