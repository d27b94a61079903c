"""The result record a run produces, in lume-services' generic ``Result`` format.

Field names, the stored document keys and ``unique_hash`` match lume-services
(``lume_services.results.generic.Result``), so results saved here can be read by
lume-services tools and vice versa. Inputs and outputs may hold numpy arrays (a
scan): they are kept as arrays in memory and turned into lists only when hashed
or stored.
"""

import hashlib
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cached_property
from typing import Any, Final, Literal

import numpy as np
import orjson
from pydantic import BaseModel, ConfigDict, Field, computed_field, field_validator

RESULT_TYPE: Final = "lume_services.results.generic.Result"


def numpy_default(value: Any) -> Any:
    """``default=`` hook for ``json.dumps`` (and bson's fallback encoder): numpy to plain.

    Called only for objects json cannot encode itself, so plain data costs nothing.
    """
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

    Treat it as immutable: ``unique_hash`` is computed once, on first use.
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
    def from_document(cls, document: Mapping[str, Any], project_name: str) -> "Result":
        """Rebuild a result from a stored document; raises ValueError if it was altered."""
        result = cls.model_validate({**document, "project_name": project_name})
        stored = document.get("unique_hash")
        if stored is not None and stored != result.unique_hash:
            raise ValueError(
                f"stored unique_hash {stored} does not match the document's content "
                f"({result.unique_hash}): the stored result was modified"
            )
        return result
