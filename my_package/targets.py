"""Where results go: one JSON file per result, or one MongoDB document per result.

Both targets key a result by its ``unique_hash``: saving the same result twice
stores it once and returns the same reference (first save wins).
"""

import json
import os
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from my_package.config import ResultsDBSettings, Settings
from my_package.results import Result, numpy_default

# The env vars to name in error messages (lume-services' spelling, see config.py).
_DB_ENV = "LUME_RESULTS_DB__HOST / LUME_RESULTS_DB__PORT"
_OUTPUT_ENV = "MY_PACKAGE_OUTPUT_DIR (or --output-dir)"


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


# --------------------------------------------------------------------------- filesystem


class FilesystemTarget:
    """One JSON file per result at ``<output_dir>/<project_name>/<unique_hash>.json``."""

    def __init__(self, output_dir: str | os.PathLike[str]) -> None:
        self.output_dir = Path(output_dir)

    def path_for(self, result: Result) -> Path:
        return self.output_dir / result.project_name / f"{result.unique_hash}.json"

    def save(self, result: Result) -> ResultRef:
        path = self.path_for(result).absolute()
        ref = ResultRef(
            target="filesystem",
            location=str(path),
            unique_hash=result.unique_hash,
            project_name=result.project_name,
        )
        if path.exists():
            return ref  # same hash, same content: already saved
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            _write_once(path, result.json_chunks())
        except OSError as exc:
            failure = TargetError(
                f"cannot write result file {path}: {exc.strerror or exc}. "
                f"Set {_OUTPUT_ENV} to a writable directory, or use the mongodb target."
            )
        else:
            return ref
        raise failure  # outside the except block: no chained traceback noise

    def load(self, ref: ResultRef) -> Result:
        try:
            document = json.loads(Path(ref.location).read_text())
        except (OSError, ValueError) as exc:
            raise TargetError(f"cannot read result file {ref.location}: {exc}") from exc
        return Result.from_document(document, ref.project_name)


def _write_once(path: Path, chunks: Iterable[bytes]) -> None:
    """Write ``path`` atomically unless it exists: readers never see a partial file.

    The temporary file is unique (mkstemp) and in the same directory, so the final
    link/rename is atomic. ``os.link`` refuses to overwrite: when saves of the same
    result race, the first one wins, like MongoDB's unique index.
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.stem}.", suffix=".tmp")
    try:
        # mkstemp creates 0600; results are not secret and other users (a container's
        # non-root user, the host user) must read them.
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "wb") as fh:
            fh.writelines(chunks)
            fh.flush()
            os.fsync(fh.fileno())
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


class MongoTarget:
    """One document per result in ``<database>.<project_name>``, unique on ``unique_hash``.

    One client per target object, closed by ``close()`` or the ``with`` block.
    :func:`save_result` opens and closes one per call: a run saves one result, the
    connection costs milliseconds against Prefect's ~1 s per run, and a client never
    outlives the run (a cached client would leak threads and is unsafe across fork).
    Bulk savers (benchmarks, notebooks) keep one ``MongoTarget`` open instead.
    """

    def __init__(self, db: ResultsDBSettings) -> None:
        self.db = db
        self._client: Any = None
        self._indexed: set[str] = set()

    @property
    def address(self) -> str:
        return f"{self.db.host}:{self.db.port}"

    def ping(self) -> None:
        """Check that the server answers and accepts the credentials within the timeout."""
        self._call(lambda: self._connect().admin.command("ping"), "answer a ping")

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

    def save(self, result: Result) -> ResultRef:
        from pymongo.errors import DuplicateKeyError

        def insert() -> str:
            collection = self._collection(result.project_name)
            try:
                return str(collection.insert_one(result.to_document()).inserted_id)
            except DuplicateKeyError:
                existing = collection.find_one({"unique_hash": result.unique_hash}, {"_id": 1})
                return str(existing["_id"])

        object_id = self._call(insert, f"save result {result.unique_hash}")
        return ResultRef(
            target="mongodb",
            location=object_id,
            unique_hash=result.unique_hash,
            project_name=result.project_name,
        )

    def load(self, ref: ResultRef) -> Result:
        from bson import ObjectId

        def find() -> Any:
            return self._collection(ref.project_name).find_one({"_id": ObjectId(ref.location)})

        document = self._call(find, f"load result {ref.location}")
        if document is None:
            raise TargetError(
                f"no result with _id {ref.location} in collection "
                f"{self.db.database}.{ref.project_name} on {self.address}"
            )
        return Result.from_document(document, ref.project_name)

    def _call(self, operation: Any, what: str) -> Any:
        """Run ``operation``, turning pymongo errors into a TargetError without secrets."""
        from bson.errors import InvalidDocument
        from pymongo.errors import DocumentTooLarge, OperationFailure, PyMongoError

        try:
            return operation()
        except DocumentTooLarge:
            failure = TargetError(
                "the result is too large for one MongoDB document (16 MB limit). "
                "Use the filesystem target (MY_PACKAGE_TARGET=filesystem) or a smaller scan."
            )
        except InvalidDocument as exc:
            failure = TargetError(f"the result cannot be stored in MongoDB: {exc}")
        except OperationFailure as exc:
            failure = TargetError(
                f"MongoDB at {self.address} refused to {what}: {self._scrub(exc)}. "
                "Check LUME_RESULTS_DB__USERNAME / __PASSWORD / __DATABASE / __AUTHMECHANISM.",
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


def save_result(result: Result, settings: Settings, target: str | None = None) -> ResultRef:
    """Save ``result`` to ``target`` (default ``settings.target``) and say where it went."""
    target = target or settings.target
    if target == "filesystem":
        return FilesystemTarget(settings.output_dir).save(result)
    if target == "mongodb":
        with MongoTarget(settings.results_db) as mongo:
            return mongo.save(result)
    raise ValueError(f"unknown target {target!r}: use 'filesystem' or 'mongodb'")


def load_result(ref: ResultRef | dict[str, Any], settings: Settings | None = None) -> Result:
    """Read a saved result back; ``settings`` (default: from the environment) for MongoDB.

    Array variables (NDVariable) come back as numpy arrays of their declared shape and dtype.
    """
    from my_package.variables import declared_arrays, load_variables

    ref = ResultRef.model_validate(ref)
    if ref.target == "filesystem":
        result = FilesystemTarget(Path(ref.location).parent.parent).load(ref)
    else:
        with MongoTarget((settings or Settings()).results_db) as mongo:
            result = mongo.load(ref)
    inputs, outputs = load_variables()
    return result.model_copy(
        update={
            "inputs": declared_arrays(result.inputs, inputs),
            "outputs": declared_arrays(result.outputs, outputs),
        }
    )
