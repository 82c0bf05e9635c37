"""Weights files: a model's state dict as an ``.npz`` archive, written atomically, read without pickle.

A state dict (``Module.state_dict``) maps each parameter's and buffer's dotted
name (``0.W``, ``3.b``, ``1.running_mean``) to a copy of its array; a weights
file holds one array per name: a zip archive of ``.npy`` entries, as
``np.savez`` writes it. What fits the model is decided by
``Module.load_state_dict``; this module reads and writes the files.

Reading trusts nothing in the file. Each entry's ``.npy`` header (name, dtype,
shape: a few hundred bytes) is read and checked against the model before any
array data is, so a file whose entry claims a huge array, or whose names do
not match, costs no more than its headers; the data are then read straight
into arrays of the model's shapes. Pickled data are never loaded.
"""
from __future__ import annotations

import io
import math
import struct
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ._args import shown_path
from .backend import to_host
from .atomic import atomic_write
from .errors import WeightsFileError
from .state import check_state_layout

__all__ = ["save", "load", "WeightsFileError"]

_NPY_MAGIC = b"\x93NUMPY"
_ZIP_MAGICS = (b"PK\x03\x04", b"PK\x05\x06")          # a zip's first entry, or an empty zip
_MAX_HEADER = 10_000                                   # numpy's own limit on a .npy header's length
_CHUNK = 1 << 20                                       # decompressed bytes read at a time


def save(model, path) -> Path:
    """Write the model's parameters and buffers to ``path`` (an ``.npz`` archive), atomically.

    The archive is written to a temporary file beside ``path``, flushed to
    disk, then renamed over it: a crash mid-save leaves any previous file whole.
    An array that ``load`` would refuse (not numbers) is refused before the
    file is touched. A model on a GPU is saved as host arrays, so any device loads it.
    """
    path = Path(path)
    state = host_state(model, path)
    with atomic_write(path) as file:
        np.savez(file, **state)
    return path


def host_state(model, path) -> dict:
    """The model's state dict as host arrays (files hold host arrays), refusing before any file is
    touched an array that ``load`` would refuse (not numbers)."""
    state = {name: to_host(array) for name, array in model.state_dict().items()}
    for name, array in state.items():
        if array.dtype.kind not in "fiu":
            raise WeightsFileError(f"{shown_path(path)}: not saved, {name} holds {array.dtype} values, "
                                   "not numbers")
    return state


def load(model, path, *, allow_nonfinite: bool = False) -> None:
    """Load weights saved by ``save`` into ``model``, all or nothing; never unpickles.

    Refuses with ``WeightsFileError`` naming the file, leaving the model
    unchanged: anything that is not an ``.npz`` archive, a truncated or
    corrupt one, object (pickled) arrays, names or shapes that do not
    match the model (checked from the entries' headers before any data is
    read), NaN or inf unless ``allow_nonfinite``, and dtypes that do not fit
    (the rule of ``nnlayers.state``): float arrays load into the model's float
    dtype whatever their precision (a float64 file into a float32 model is
    rounded to float32; a value too large for float32 is refused), integer
    arrays only into integer buffers and only if they fit exactly: an integer
    array for a float parameter is refused. A missing file raises ``FileNotFoundError``.
    A whole-model file (``nl.save_model``) loads into an existing model as well.
    """
    def read(archive, entries, name):
        entries = {key: entry for key, entry in entries.items() if key != MODEL_ENTRY}
        check_state_layout(model, {key: (dtype, shape) for key, (_, dtype, shape, _, _) in entries.items()}, name)
        return {key: read_entry(archive, entries, key, name) for key in entries}

    name = shown_path(path)
    state = read_archive(path, read)
    model.load_state_dict(state, source=name, allow_nonfinite=allow_nonfinite)


#: The entry of a whole-model file (``nl.save_model``) that holds its architecture as JSON bytes.
MODEL_ENTRY = "__model__"


def read_archive(path, read):
    """``read(archive, entries, name)`` on the ``.npz`` archive at ``path``, every entry's header read and
    checked first (``entries``: ``{key: (info, dtype, shape, fortran, offset)}``, no object arrays);
    any damage found on the way is a ``WeightsFileError`` naming the file. What ``read`` returns."""
    name = shown_path(path)
    with open(path, "rb") as file:
        start = file.read(8)
        if start.startswith(_NPY_MAGIC):
            raise WeightsFileError(f"{name}: holds a single array, not an .npz archive of named weights")
        if start[:4] not in _ZIP_MAGICS:
            raise WeightsFileError(f"{name}: is not an .npz archive")
        file.seek(0)
        try:
            with zipfile.ZipFile(file) as archive:
                return read(archive, _read_headers(archive, name), name)
        except WeightsFileError:
            raise
        except (zipfile.BadZipFile, zlib.error, EOFError, OSError, ValueError, NotImplementedError,
                RuntimeError) as error:                  # RuntimeError: an encrypted entry
            raise WeightsFileError(f"{name}: is not a readable .npz archive (truncated or corrupt: "
                                   f"{error})") from error


def read_entry(archive: zipfile.ZipFile, entries: dict, key: str, name: str) -> np.ndarray:
    """The array of entry ``key`` (its header already read by ``read_archive``)."""
    return _read_data(archive, *entries[key], name, key)


def _read_headers(archive: zipfile.ZipFile, name: str) -> dict:
    """{entry name: (info, dtype, shape, fortran, offset)}: every header read; pickles refused."""
    entries = {}
    for info in archive.infolist():
        key = info.filename[:-4] if info.filename.endswith(".npy") else info.filename
        if key in entries:
            raise WeightsFileError(f"{name}: holds two entries named {key!r}")
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise WeightsFileError(f"{name}: entry {key!r} uses zip compression method {info.compress_type}; "
                                   "weights files are stored or deflated")
        entries[key] = (info, *_read_header(archive, info, name, key))
    for key, (_, dtype, _, _, _) in entries.items():  # pickles first: the gravest reason to refuse
        if dtype.hasobject:
            raise WeightsFileError(f"{name}: holds pickled data (object arrays in {key!r}), which is never "
                                   "loaded")
    return entries


def _read_header(archive: zipfile.ZipFile, info, name: str, key: str):
    """(dtype, shape, Fortran order, header length) from an entry's .npy header; no data read."""
    with archive.open(info) as member:
        lead = member.read(len(_NPY_MAGIC) + 2)
        if len(lead) < 8 or not lead.startswith(_NPY_MAGIC):
            raise WeightsFileError(f"{name}: entry {key!r} is not a .npy array")
        version = (lead[6], lead[7])
        if version not in ((1, 0), (2, 0)):
            raise WeightsFileError(f"{name}: entry {key!r} is a .npy file of version {version[0]}.{version[1]} "
                                   "(weights are written as 1.0 or 2.0)")
        size_format = "<H" if version == (1, 0) else "<I"
        size_bytes = member.read(struct.calcsize(size_format))
        if len(size_bytes) < struct.calcsize(size_format):
            raise WeightsFileError(f"{name}: entry {key!r} ends inside its .npy header (truncated)")
        length = struct.unpack(size_format, size_bytes)[0]
        if length > _MAX_HEADER:  # checked before reading it: a header cannot claim gigabytes
            raise WeightsFileError(f"{name}: entry {key!r} has a {length:,}-byte .npy header (at most "
                                   f"{_MAX_HEADER:,})")
        header = member.read(length)
        if len(header) < length:
            raise WeightsFileError(f"{name}: entry {key!r} ends inside its .npy header (truncated)")
    reader = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
    try:
        shape, fortran, dtype = reader(io.BytesIO(size_bytes + header))   # after the magic, as numpy reads
    except ValueError as error:
        raise WeightsFileError(f"{name}: entry {key!r} has a damaged .npy header ({error})") from None
    return dtype, shape, fortran, len(lead) + len(size_bytes) + length


def _read_data(archive: zipfile.ZipFile, info, dtype, shape, fortran: bool, offset: int, name: str,
               key: str) -> np.ndarray:
    """The entry's array, read in chunks straight into its final buffer (its shape, already
    checked against the model, bounds the memory), refusing data that end early or run on."""
    array = np.empty(shape[::-1] if fortran else shape, dtype=dtype)
    expected = math.prod(shape) * dtype.itemsize
    with archive.open(info) as member, memoryview(array.reshape(-1).view(np.uint8)) as buffer:
        member.read(offset)
        filled = 0
        while filled < expected:
            got = member.readinto(buffer[filled:filled + _CHUNK])
            if not got:
                raise WeightsFileError(f"{name}: entry {key!r} holds {filled:,} bytes of data, its header "
                                       f"claims {expected:,} (truncated)")
            filled += got
        if member.read(1):                                 # also lets zipfile verify the CRC
            raise WeightsFileError(f"{name}: entry {key!r} holds more data than its header's shape {shape}")
    return array.T if fortran else array
