"""Large arrays of a result as HDF5 files, referenced from the result the way lume-services does.

An array above the size threshold is written to ``<directory>/<sha256>.h5`` and the
result holds, in its place, lume-services' file reference::

    {"filename": ".../<sha256>.h5",
     "file_type_string": "lume_services.files.file:File[HDF5Serializer]",
     "filesystem_identifier": "local" | "mounted",
     "sha256": "<hex>", "shape": [...], "dtype": "float64"}

The reference is part of the result's inputs or outputs, so the file's sha256 enters
``unique_hash``: a changed file is a changed result. The file is written in lume-base's
``HDF5Serializer`` layout (attributes ``_version``, ``object``, ``_pkg_version``), so
lume-services' ``HDF5File`` reads it back as an :class:`ArrayArchive`. Files are named by
their content: writing the same array twice finds the first file and checks it.
"""

import hashlib
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

FILE_TYPE = "lume_services.files.file:File[HDF5Serializer]"
REF_KEYS = {"filename", "file_type_string", "filesystem_identifier"}
DATASET = "array"
_LIBVER = ("earliest", "v108")  # lume-base's HDF5Serializer: readable by HDF5 1.8 and later
_CHUNK = 1 << 20
# Temporary files of every save start with this; later saves remove stale ones (targets.py).
TEMP_PREFIX = ".tmp-my_package-"


class ArrayFileError(ValueError):
    """An array file that is missing, unreadable or not the one its reference names."""


class StoredArray(np.ndarray):
    """A numpy array that lives in an HDF5 file; ``file_ref`` is its reference.

    Results hash and store a StoredArray as its reference, so a result read back has the
    ``unique_hash`` it was saved with. Anything computed from it (a slice, ``a * 2``) is
    plain data again: ``file_ref`` is None there.
    """

    file_ref: dict[str, Any] | None = None

    def __array_finalize__(self, obj: Any) -> None:
        self.file_ref = None  # views and results of arithmetic are not the stored file

    def __reduce__(self) -> Any:
        # Pickled (Prefect, multiprocessing) as a plain array plus its reference.
        return (_rebuild, (np.asarray(self), self.file_ref))


def _rebuild(array: np.ndarray, ref: dict[str, Any] | None) -> np.ndarray:
    return with_ref(array, ref) if ref else array


def with_ref(array: np.ndarray, ref: dict[str, Any]) -> StoredArray:
    """``array`` as a StoredArray that carries ``ref`` (no copy)."""
    stored = np.asarray(array).view(StoredArray)
    stored.file_ref = ref
    return stored


def file_ref_of(value: Any) -> dict[str, Any] | None:
    """The file reference ``value`` is stored as, or None for plain data."""
    return getattr(value, "file_ref", None) if isinstance(value, StoredArray) else None


def is_file_ref(value: Any) -> bool:
    """True for a stored file reference (a dict with lume-services' file keys)."""
    return isinstance(value, dict) and value.keys() >= REF_KEYS


def is_large(value: Any, threshold_bytes: int) -> bool:
    """True for a numeric numpy array of more than ``threshold_bytes`` (it goes to a file)."""
    return (
        isinstance(value, np.ndarray)
        and value.dtype.kind in "biuf"
        and value.nbytes > threshold_bytes
        and file_ref_of(value) is None
    )


class ArrayArchive:
    """One array in lume-base's ``HDF5Serializer`` layout (its ``Base.archive`` protocol).

    lume-services reads a referenced file with ``HDF5Serializer.deserialize``, which
    imports this class by the name in the file, builds it without arguments and calls
    ``load_archive``; the array is then ``.array``.
    """

    def __init__(self, array: np.ndarray | None = None) -> None:
        self.array = array

    def archive(self, h5: Any) -> None:
        # Fixed layout and no timestamps: the same array gives the same bytes, so the
        # same result saved twice (a retried save) has the same sha256 and unique_hash.
        h5.create_dataset(DATASET, data=self.array, track_times=False)

    def load_archive(self, h5: Any) -> None:
        self.array = h5[DATASET][()]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        while block := fh.read(_CHUNK):
            digest.update(block)
    return digest.hexdigest()


def _write_hdf5(path: Path, array: np.ndarray) -> None:
    import h5py

    from my_package import __version__

    with h5py.File(path, "w", libver=_LIBVER, track_order=False) as h5:
        h5.attrs.create("_version", (0, 0, 0))
        h5.attrs.create("object", f"{ArrayArchive.__module__}.{ArrayArchive.__name__}")
        h5.attrs.create("_pkg_version", __version__)
        ArrayArchive(array).archive(h5)


def write_array(
    array: np.ndarray, directory: Path, recorded_dir: str, identifier: str
) -> StoredArray:
    """Write ``array`` to ``directory/<sha256>.h5`` atomically; return it with its reference.

    ``recorded_dir`` is the directory as the reference names it (the mount alias on a
    mounted filesystem). A file of that name is replaced atomically by the new one, so
    a corrupt file left by an earlier failure never survives a save of its array.
    Raises OSError for filesystem errors (the caller names the path).
    """
    array = np.ascontiguousarray(array)
    fd, tmp_name = tempfile.mkstemp(dir=directory, prefix=TEMP_PREFIX, suffix=".h5.tmp")
    tmp = Path(tmp_name)
    try:
        os.close(fd)
        _write_hdf5(tmp, array)
        os.chmod(tmp, 0o644)  # mkstemp makes 0600; other users (containers) read results
        sha = _sha256(tmp)
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        # Always the fresh file, even over one of the same name: an existing file may be
        # truncated or damaged, and replacing it costs less than reading it to check.
        os.replace(tmp, directory / f"{sha}.h5")
    finally:
        tmp.unlink(missing_ok=True)
    ref = {
        "filename": f"{recorded_dir.rstrip('/')}/{sha}.h5",
        "file_type_string": FILE_TYPE,
        "filesystem_identifier": identifier,
        "sha256": sha,
        "shape": list(array.shape),
        "dtype": array.dtype.name,
    }
    return with_ref(array, ref)


def read_array(ref: dict[str, Any], directory: Path) -> StoredArray:
    """Read the array ``ref`` names from ``directory`` and check its sha256.

    Only the file name is taken from the reference, and it must be ``<sha256>.h5``: a
    stored document can never make this read a file outside ``directory``.
    """
    sha = ref.get("sha256")
    if not isinstance(sha, str) or len(sha) != 64 or not all(c in "0123456789abcdef" for c in sha):
        raise ArrayFileError(f"file reference {ref.get('filename')!r} has no valid sha256")
    if ref.get("file_type_string") != FILE_TYPE:
        raise ArrayFileError(
            f"file reference {ref.get('filename')!r} has type {ref.get('file_type_string')!r}; "
            f"only {FILE_TYPE!r} is read here"
        )
    name = str(ref.get("filename", "")).rsplit("/", 1)[-1]
    if name != f"{sha}.h5":
        raise ArrayFileError(f"file reference {ref.get('filename')!r} does not match its sha256")
    path = directory / name
    try:
        actual = _sha256(path)
    except OSError as exc:
        raise ArrayFileError(f"cannot read array file {path}: {exc.strerror or exc}") from None
    if actual != sha:
        raise ArrayFileError(
            f"array file {path} has sha256 {actual}, not the {sha} its result records: "
            "the file was modified or damaged"
        )
    import h5py

    try:
        with h5py.File(path, "r") as h5:
            archive = ArrayArchive()
            archive.load_archive(h5)
    except (OSError, KeyError) as exc:
        raise ArrayFileError(f"cannot read array file {path}: {exc}") from None
    if archive.array is None:
        raise ArrayFileError(f"array file {path} holds no array")
    return with_ref(archive.array, ref)
