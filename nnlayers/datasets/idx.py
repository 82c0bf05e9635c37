"""Reading and writing IDX files, the format MNIST and Fashion-MNIST ship in.

An IDX file is a header followed by the array's items, big-endian, last index fastest::

    bytes 0–1   0x00 0x00
    byte  2     type code: 0x08 uint8, 0x09 int8, 0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64
    byte  3     number of dimensions d
    4d bytes    the d sizes, each a big-endian uint32
    then        size₁ × … × size_d items

MNIST's images are ``idx3-ubyte`` (N×28×28 uint8) and its labels ``idx1-ubyte``
(N uint8), usually gzip'd. A header's sizes are checked against the bytes the
file really holds *before* anything is allocated (for gzip: against the most
its size can decompress to, then as data arrive), so a damaged or hostile
header fails with an ``IDXFormatError`` naming the file, in printable form
whatever the name's encoding.
"""
from __future__ import annotations

import gzip
import math
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .._args import shown_path
from ..atomic import atomic_write

__all__ = ["IDXFormatError", "load_idx", "save_idx", "IDX_TYPES"]

#: type code → big-endian dtype as stored in the file
IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}
_TYPE_NAMES = {0x08: "ubyte", 0x09: "byte", 0x0B: "short", 0x0C: "int", 0x0D: "float", 0x0E: "double"}
_CODE_OF = {dtype.newbyteorder("="): code for code, dtype in IDX_TYPES.items()}

_GZIP_MAGIC = b"\x1f\x8b"
# Deflate cannot compress better than about 1032:1 (a 258-byte match in under two bits), so a
# gzip file of n bytes holds at most ~1032·n bytes: a bound we can check before decompressing.
_DEFLATE_MAX_RATIO = 1032
_CHUNK = 1 << 20          # bytes decompressed at a time
_MAX_DIMENSIONS = 32      # what every numpy supports (numpy 1.x's limit)


class IDXFormatError(ValueError):
    """A file is not a valid IDX file, or an MNIST folder's files do not belong together."""


# -- reading --------------------------------------------------------------------------

def load_idx(path) -> np.ndarray:
    """Read the IDX file at ``path`` (plain or gzip'd) into a native-endian numpy array.

    Gzip is recognised by its first two bytes (1f 8b), whatever the file is
    called. The array's shape is the header's sizes, its dtype the type code's
    (uint8, int8, int16, int32, float32 or float64) in the machine's byte order.
    Raises ``IDXFormatError`` naming the file when the magic number or type
    code is wrong or the header's sizes do not match the data that follows.

    Memory follows the data that is really there: a plain file's size is
    checked against the header before anything is allocated, and a gzip'd
    file's buffer grows as data are decompressed (nothing in a gzip file, not
    even its length trailer, is trusted to size it), up to the header's claim
    and one byte past it to detect trailing data.
    """
    path = Path(path)
    name = shown_path(path)
    with open(path, "rb") as raw:
        compressed = raw.read(2) == _GZIP_MAGIC
        raw.seek(0)
        dtype, shape, buffer = _read_gzip(raw, name) if compressed else _read_plain(raw, name)
    array = np.frombuffer(buffer, dtype=dtype, count=math.prod(shape)).reshape(shape)
    if dtype.itemsize == 1:
        return array                      # single bytes have no byte order; bytearray → writable
    return array.astype(dtype.newbyteorder("="))


def _read_plain(raw, name: str):
    """(dtype, shape, data bytes) of an uncompressed IDX file; the size is checked first."""
    file_size = os.fstat(raw.fileno()).st_size
    dtype, shape, header_size = _read_header(raw, name)
    nbytes = math.prod(shape) * dtype.itemsize                  # Python ints: no overflow
    if header_size + nbytes != file_size:
        raise _size_error(name, dtype, shape, nbytes, file_size - header_size, "")
    buffer = bytearray(nbytes)
    filled = 0
    with memoryview(buffer) as view:
        while filled < nbytes and (got := raw.readinto(view[filled:])):
            filled += got
    if filled != nbytes or raw.read(1):                          # the file changed meanwhile
        raise _size_error(name, dtype, shape, nbytes, filled + (filled == nbytes), "")
    return dtype, shape, buffer


def _read_gzip(raw, name: str):
    """(dtype, shape, data bytes) of a gzip'd IDX file, whose true size is known only after
    decompressing: an impossible claim fails at once, a wrong one after reading what exists."""
    gz_size = os.fstat(raw.fileno()).st_size
    try:
        with gzip.GzipFile(fileobj=raw, mode="rb") as stream:
            dtype, shape, header_size = _read_header(stream, name)
            nbytes = math.prod(shape) * dtype.itemsize
            limit = _DEFLATE_MAX_RATIO * gz_size
            if header_size + nbytes > limit:
                raise IDXFormatError(
                    f"{name}: header claims shape {shape} of {_TYPE_NAMES[_code(dtype)]} = "
                    f"{nbytes:,} bytes of data, but a {gz_size:,}-byte gzip file can hold at "
                    f"most about {limit:,} bytes (file truncated or header corrupt)")
            # Grow with the data: bytearray's += reallocates in place when it can, so the buffer
            # costs about the bytes decompressed so far (plus an eighth), whatever was claimed.
            buffer = bytearray()
            while len(buffer) < nbytes and (chunk := stream.read(min(_CHUNK, nbytes - len(buffer)))):
                buffer += chunk
            trailing = len(buffer) == nbytes and stream.read(1)  # one byte past: no need to count more
    except (OSError, EOFError, zlib.error) as error:           # BadGzipFile is an OSError
        raise IDXFormatError(f"{name}: damaged gzip data ({error})") from error
    if len(buffer) != nbytes or trailing:
        raise _size_error(name, dtype, shape, nbytes, len(buffer) + bool(trailing), " once gunzipped")
    return dtype, shape, buffer


def _code(dtype: np.dtype) -> int:
    return _CODE_OF[dtype.newbyteorder("=")]


def _read_header(stream, name: str):
    """Parse magic number and sizes; returns (big-endian dtype, shape, header length in bytes)."""
    magic = stream.read(4)
    if len(magic) < 4:
        raise IDXFormatError(f"{name}: {len(magic)} bytes is too short for an IDX header (needs 4+)")
    if magic[0] != 0 or magic[1] != 0:
        raise IDXFormatError(f"{name}: bad magic number 0x{magic.hex().upper()}; an IDX file starts "
                             "with two zero bytes, a type code and the number of dimensions "
                             "(e.g. 0x00000803 for MNIST images)")
    code, ndim = magic[2], magic[3]
    if code not in IDX_TYPES:
        known = ", ".join(f"0x{c:02X} {type_name}" for c, type_name in _TYPE_NAMES.items())
        raise IDXFormatError(f"{name}: unknown IDX type code 0x{code:02X} (known: {known})")
    if ndim > _MAX_DIMENSIONS:
        raise IDXFormatError(f"{name}: header announces {ndim} dimensions; at most {_MAX_DIMENSIONS} "
                             "are supported")
    sizes = stream.read(4 * ndim)
    if len(sizes) < 4 * ndim:
        raise IDXFormatError(f"{name}: header announces {ndim} dimensions but ends after "
                             f"{len(sizes) // 4} of their sizes (file truncated)")
    shape = struct.unpack(f">{ndim}I", sizes)
    dtype = IDX_TYPES[code]
    # numpy multiplies all sizes, zeros aside, with the item size; past the index range it refuses.
    if math.prod(max(size, 1) for size in shape) * dtype.itemsize > np.iinfo(np.intp).max:
        raise IDXFormatError(f"{name}: header claims shape {shape}, more items than an array can index")
    return dtype, shape, 4 + 4 * ndim


def _size_error(name, dtype, shape, nbytes, available, note) -> IDXFormatError:
    """``available`` is the bytes found, or ``nbytes + 1`` when more follow than the header needs."""
    if available < nbytes:
        found, kind = f"{available:,} bytes", "truncated"
    elif available == nbytes + 1:
        found, kind = f"more than {nbytes:,} bytes", "trailing bytes after the data"
    else:
        found, kind = f"{available:,} bytes", "trailing bytes after the data"
    return IDXFormatError(f"{name}: header claims shape {shape} of {_TYPE_NAMES[_code(dtype)]} = "
                          f"{nbytes:,} bytes of data, but the file holds {found} after the "
                          f"header{note} ({kind})")


# -- writing --------------------------------------------------------------------------

def save_idx(path, array) -> Path:
    """Write ``array`` to ``path`` as an IDX file, gzip'd when the name ends in ``.gz``.

    The dtype picks the type code (uint8, int8, int16, int32, float32,
    float64; any byte order); other dtypes are refused rather than silently
    cast. Gzip output is reproducible (no time stamp, no file name inside).
    The file is written beside its destination and renamed into place, so a
    reader never sees half a file. Returns the path.
    """
    path = Path(path)
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=")
    if native not in _CODE_OF:
        allowed = ", ".join(str(dtype.newbyteorder("=")) for dtype in IDX_TYPES.values())
        raise TypeError(f"save_idx({shown_path(path)}): IDX has no type for dtype {array.dtype}; "
                        f"convert with .astype() to one of {allowed}")
    if array.ndim > 255 or any(size >= 2 ** 32 for size in array.shape):
        raise ValueError(f"save_idx({shown_path(path)}): shape {array.shape} does not fit an IDX header "
                         "(at most 255 dimensions, each below 2³²)")
    code = _CODE_OF[native]
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    data = np.ascontiguousarray(array, dtype=IDX_TYPES[code])

    with atomic_write(path) as out:
        if path.name.endswith(".gz"):
            with gzip.GzipFile(filename="", mode="wb", fileobj=out, mtime=0) as stream:
                stream.write(header)
                stream.write(data.data)
        else:
            out.write(header)
            out.write(data.data)
    return path
