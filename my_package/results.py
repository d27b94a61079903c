"""The result record a run produces, in lume-services' generic ``Result`` format.

Field names, the stored document keys and ``unique_hash`` match lume-services
(``lume_services.results.generic.Result``), so results saved here can be read by
lume-services tools and vice versa. Inputs and outputs may hold numpy arrays (a
scan): they are kept as arrays in memory and turned into lists only when hashed
or stored.
"""

import hashlib
import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Final, Literal

import numpy as np
import orjson
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    computed_field,
    field_validator,
)

from my_package.array_files import file_ref_of

RESULT_TYPE: Final = "lume_services.results.generic.Result"
DOCUMENT_KEYS = (
    "flow_id",
    "inputs",
    "outputs",
    "date_modified",
    "unique_hash",
    "result_type_string",
)
# A project name is a directory name and a MongoDB collection name: letters, digits, _ . -
_PROJECT_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")


class ResultIntegrityError(ValueError):
    """A stored result that is not what was saved: edited, truncated or incomplete."""


def check_project_name(name: str) -> str:
    """``name`` if it is safe as a sub-directory and a MongoDB collection; else ValueError.

    Refused: path separators and ``..`` (a save must never leave the output directory),
    MongoDB's reserved ``system.`` prefix, empty parts (``a..b``), ``$``.
    """
    if (
        not isinstance(name, str)
        or not _PROJECT_NAME.match(name)
        or ".." in name
        or name.endswith(".")
        or name.startswith("system.")
    ):
        raise ValueError(
            f"project name {name!r} is not allowed: use 1-64 letters, digits, '_', '.' or '-', "
            "starting with a letter, digit or '_', without '..' and not starting with 'system.'"
        )
    return name


def numpy_default(value: Any) -> Any:
    """``default=`` hook for ``json.dumps`` (and bson's fallback encoder): numpy to plain.

    Called only for objects json cannot encode itself, so plain data costs nothing.
    """
    ref = file_ref_of(value)
    if ref is not None:
        return ref  # an array kept in an HDF5 file is stored (and hashed) as its reference
    if isinstance(value, np.ndarray):
        return value.tolist()  # vectorized: one C call for the whole array
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"Object of type {type(value).__name__} is not JSON serializable")


def _json_float_array(values: np.ndarray) -> bytes:
    """``json.dumps(values.tolist())`` for a 1-D float64 array, byte for byte, as bytes.

    orjson writes the shortest round-trip digits, as ``float.__repr__`` does, without a
    Python float per element; only the notation differs: Python uses an exponent below
    1e-4 and from 1e16 up, and writes NaN/Infinity. Those few values are written by
    ``json.dumps`` itself, and the separators are made json.dumps' own ``", "``.
    """
    values = np.ascontiguousarray(values)  # orjson serializes C-contiguous arrays only
    magnitude = np.abs(values)
    special = ~((magnitude >= 1e-4) & (magnitude < 1e16)) & (values != 0)  # NaN too
    count = int(np.count_nonzero(special))
    if count > values.size // 8:  # mostly tiny or huge numbers: the plain path is faster
        return json.dumps(values.tolist()).encode()
    if not count:
        return orjson.dumps(values, option=orjson.OPT_SERIALIZE_NUMPY).replace(b",", b", ")
    patched = values.copy()
    patched[special] = np.nan  # orjson writes NaN as null: a marker to split on
    pieces = orjson.dumps(patched, option=orjson.OPT_SERIALIZE_NUMPY).split(b"null")
    texts = [json.dumps(value).encode() for value in values[special].tolist()]
    texts.append(b"")
    joined = b"".join(part for pair in zip(pieces, texts, strict=True) for part in pair)
    return joined.replace(b",", b", ")


def json_bytes(value: Any) -> bytes:
    """``json.dumps(value, default=numpy_default).encode()``, with float arrays written fast."""
    ref = file_ref_of(value)
    if ref is not None:
        return json.dumps(ref).encode()
    if isinstance(value, np.ndarray) and value.dtype == np.float64 and value.ndim == 1:
        return _json_float_array(value)
    if type(value) is dict and all(type(key) is str for key in value):
        items = (json.dumps(key).encode() + b": " + json_bytes(item) for key, item in value.items())
        return b"{" + b", ".join(items) + b"}"
    return json.dumps(value, default=numpy_default).encode()


def to_jsonable(value: Any) -> Any:
    """Return ``value`` with numpy arrays as (nested) lists and numpy scalars as Python ones.

    Mappings are converted key by key (keys are variable names, not data points);
    arrays with ``ndarray.tolist()``. Python lists are returned as they are: walking
    them would be a per-point loop, and any numpy scalar inside one is still
    encoded correctly by :func:`numpy_default` when the value is written.
    """
    if isinstance(value, np.ndarray | np.generic):
        return numpy_default(value)
    if isinstance(value, Mapping):
        return {key: to_jsonable(item) for key, item in value.items()}
    return value


def _utc_now() -> datetime:
    # Millisecond precision, as MongoDB stores dates: a result read back compares equal.
    now = datetime.now(UTC)
    return now.replace(microsecond=now.microsecond // 1000 * 1000)


class Result(BaseModel):
    """One run's inputs and outputs (lume-services' generic ``Result``).

    Treat it as immutable: ``unique_hash`` is computed once, on first use. ``metadata``
    (units, scan, run name, versions: see :func:`run_metadata`) is not part of the
    stored document, whose keys stay exactly lume-services' (its Result forbids extra
    keys); the targets store it beside the record, keyed by ``unique_hash``.
    """

    # arbitrary_types_allowed: inputs/outputs may hold numpy arrays.
    model_config = ConfigDict(
        frozen=True,
        validate_by_name=True,
        validate_by_alias=True,
        arbitrary_types_allowed=True,
        extra="ignore",  # stored documents carry _id and unique_hash
    )

    # The MongoDB collection (or filesystem sub-directory); lume-services calls it "collection".
    project_name: str = Field("local", alias="collection")
    flow_id: str
    inputs: dict[str, Any] = Field(default_factory=dict)
    outputs: dict[str, Any] = Field(default_factory=dict)
    date_modified: datetime = Field(default_factory=_utc_now)
    result_type_string: Literal["lume_services.results.generic.Result"] = RESULT_TYPE
    metadata: dict[str, Any] = Field(default_factory=dict)

    @field_validator("project_name")
    @classmethod
    def _safe_project_name(cls, value: str) -> str:
        # Checked here, not only in Settings: a result built in Python must not be able
        # to write outside the output directory either.
        return check_project_name(value)

    @field_validator("date_modified")
    @classmethod
    def _assume_utc(cls, value: datetime) -> datetime:
        # Naive datetimes (e.g. from a MongoClient without tz_aware) are UTC.
        return value if value.tzinfo else value.replace(tzinfo=UTC)

    @cached_property
    def json_parts(self) -> tuple[bytes, bytes, bytes]:
        """flow_id, inputs and outputs as JSON, written once for the hash and the file."""
        return json_bytes(self.flow_id), json_bytes(self.inputs), json_bytes(self.outputs)

    @computed_field  # type: ignore[prop-decorator]
    @cached_property
    def unique_hash(self) -> str:
        """md5 of inputs, outputs and flow_id, exactly as lume-services computes it.

        The hashed bytes are ``json.dumps({"inputs": ..., "outputs": ..., "flow_id": ...})``,
        assembled from :attr:`json_parts` (json.dumps writes a dict as its items' texts).
        An array kept in an HDF5 file enters as its reference, sha256 included.
        """
        flow_id, inputs, outputs = self.json_parts
        digest = hashlib.md5(usedforsecurity=False)  # an identity fingerprint, not security
        for part in (b'{"inputs": ', inputs, b', "outputs": ', outputs, b', "flow_id": '):
            digest.update(part)
        digest.update(flow_id + b"}")
        return digest.hexdigest()

    def json_chunks(self) -> tuple[bytes, ...]:
        """The stored document as JSON (the filesystem target's file), in pieces.

        Joined, the pieces equal ``json.dumps`` of :meth:`to_document` with the date as
        ISO text; written one by one, a scan's text is never copied into one string.
        """
        flow_id, inputs, outputs = self.json_parts
        tail = {
            "date_modified": self.date_modified.isoformat(),
            "unique_hash": self.unique_hash,
            "result_type_string": self.result_type_string,
        }
        return (
            b'{"flow_id": ',
            flow_id,
            b', "inputs": ',
            inputs,
            b', "outputs": ',
            outputs,
            b", ",
            json.dumps(tail).encode()[1:],
        )

    def to_document(self) -> dict[str, Any]:
        """The stored document (lume-services' keys); the collection is ``project_name``."""
        return {
            "flow_id": self.flow_id,
            "inputs": to_jsonable(self.inputs),
            "outputs": to_jsonable(self.outputs),
            "date_modified": self.date_modified,
            "unique_hash": self.unique_hash,
            "result_type_string": self.result_type_string,
        }

    @classmethod
    def from_document(cls, document: Any, project_name: str) -> "Result":
        """Rebuild a result from a stored document and check it against its unique_hash.

        Only lume-services' keys are read: a ``collection`` or ``project_name`` in the
        document is ignored, so stored content never decides where a later save goes.
        File references stay references here (the targets read the files).
        Raises ResultIntegrityError, whatever is wrong with the document.
        """
        if not isinstance(document, Mapping):
            raise ResultIntegrityError(f"is a {type(document).__name__}, not a result document")
        stored = document.get("unique_hash")
        if not isinstance(stored, str) or not stored:
            raise ResultIntegrityError("has no unique_hash, so its content cannot be checked")
        fields = {key: document[key] for key in DOCUMENT_KEYS if key in document}
        fields.pop("unique_hash")
        for key in ("inputs", "outputs"):
            if not isinstance(fields.get(key, {}), dict):
                raise ResultIntegrityError(f"has {key} that are not a mapping of names to values")
        try:
            result = cls.model_validate({**fields, "project_name": project_name})
            actual = result.unique_hash
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(map(str, error["loc"]))
            raise ResultIntegrityError(f"is not a valid result ({where}: {error['msg']})") from None
        except (ValueError, TypeError, RecursionError) as exc:
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise ResultIntegrityError(f"is not a valid result ({text})") from None
        if stored != actual:
            raise ResultIntegrityError(
                f"records unique_hash {stored} but its content hashes to {actual}: "
                "the stored result was modified"
            )
        return result

    def with_values(self, inputs: dict[str, Any], outputs: dict[str, Any]) -> "Result":
        """The same result with other input and output values (hash computed afresh)."""
        return type(self)(
            project_name=self.project_name,
            flow_id=self.flow_id,
            inputs=inputs,
            outputs=outputs,
            date_modified=self.date_modified,
            metadata=self.metadata,
        )


def run_metadata(
    model: Any, inputs: Mapping[str, Any], scan: Mapping[str, Any] | None, run_name: str | None
) -> dict[str, Any]:
    """What tells results apart, stored beside the record: units, scan, run, versions.

    ``scan`` maps each scanned input to its range (anything with ``start``, ``stop``
    and ``num``); the grid has one axis per scanned input, the first varying slowest.
    Unscanned inputs are recorded too, so ``results list --input`` can filter on them.
    """
    from my_package import __version__

    variables = [*model.input_variables, *model.output_variables]
    scan = dict(scan or {})
    return {
        "flow_run_name": run_name,
        "model_class": f"{type(model).__module__}.{type(model).__qualname__}",
        "package_version": __version__,
        "units": {var.name: var.unit or "" for var in variables},
        "scan": {
            name: {"start": float(r.start), "stop": float(r.stop), "num": int(r.num)}
            for name, r in scan.items()
        },
        "grid_shape": [int(r.num) for r in scan.values()],
        "points": int(np.prod([r.num for r in scan.values()], dtype=np.int64)) if scan else 1,
        "fixed_inputs": {
            name: float(value)
            for name, value in inputs.items()
            if name not in scan and np.ndim(value) == 0
        },
    }
