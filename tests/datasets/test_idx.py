"""IDX reading and writing: round trips, the bytes on disk, damaged and hostile files."""
from pathlib import Path
import gzip
import struct
import time
import tracemalloc

import numpy as np
import pytest
from tests.helpers import idx_header
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from nnlayers.datasets import IDX_TYPES, IDXFormatError, load_idx, save_idx


NATIVE_DTYPES = [dtype.newbyteorder("=") for dtype in IDX_TYPES.values()]


def extreme_values(dtype: np.dtype, size: int) -> np.ndarray:
    """``size`` values covering the dtype's range: its limits, zero, and (floats) inf and −0."""
    if dtype.kind == "f":
        pool = np.array([0.0, -0.0, 1.5, -2.25, np.inf, -np.inf, np.finfo(dtype).max,
                         np.finfo(dtype).tiny, 1e-3], dtype=dtype)
    else:
        info = np.iinfo(dtype)
        pool = np.array([0, 1, -1 if info.min else 2, info.min, info.max, info.max // 3], dtype=dtype)
    return np.resize(pool, size)


# -- round trips ------------------------------------------------------------------------

@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("shape", [(5,), (2, 3), (2, 3, 4), (1, 2, 3, 2)], ids=lambda s: f"{len(s)}d")
@pytest.mark.parametrize("dtype", NATIVE_DTYPES, ids=str)
def test_round_trip_every_type_code_and_1_to_4_dimensions(tmp_path, dtype, shape, compressed):
    array = extreme_values(dtype, int(np.prod(shape))).reshape(shape)
    path = save_idx(tmp_path / ("a.idx.gz" if compressed else "a.idx"), array)
    assert (path.read_bytes()[:2] == b"\x1f\x8b") == compressed
    loaded = load_idx(path)
    assert loaded.shape == shape
    assert loaded.dtype == dtype and loaded.dtype.isnative
    assert loaded.tobytes() == array.tobytes()           # bit for bit, −0.0 and inf included


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(array=hnp.arrays(st.sampled_from(NATIVE_DTYPES), hnp.array_shapes(min_dims=0, max_dims=4, min_side=0,
                                                                           max_side=4)),
       compressed=st.booleans())
def test_round_trip_any_array(tmp_path, array, compressed):
    path = save_idx(tmp_path / ("h.gz" if compressed else "h.idx"), array)
    loaded = load_idx(path)
    assert loaded.shape == array.shape and loaded.dtype == array.dtype
    assert loaded.tobytes() == array.tobytes()


def test_bytes_on_disk_follow_the_format(tmp_path):
    # Pinned independently of our reader: header 00 00 type ndim, big-endian sizes, big-endian items.
    save_idx(tmp_path / "u8", np.array([[1, 2, 3], [4, 5, 6]], dtype=np.uint8))
    assert (tmp_path / "u8").read_bytes() == b"\0\0\x08\x02" b"\0\0\0\x02\0\0\0\x03" b"\x01\x02\x03\x04\x05\x06"
    save_idx(tmp_path / "i16", np.array([1, -2], dtype="<i2"))
    assert (tmp_path / "i16").read_bytes() == b"\0\0\x0b\x01" b"\0\0\0\x02" b"\x00\x01\xff\xfe"
    save_idx(tmp_path / "f64", np.array([1.0]))
    assert (tmp_path / "f64").read_bytes() == b"\0\0\x0e\x01\0\0\0\x01" + struct.pack(">d", 1.0)


def test_big_endian_input_is_written_and_read_back_natively(tmp_path):
    array = np.array([[1, -70000], [3, 2 ** 31 - 1]], dtype=">i4")
    loaded = load_idx(save_idx(tmp_path / "be.idx", array))
    assert loaded.dtype == np.dtype("=i4") and loaded.flags.writeable
    np.testing.assert_array_equal(loaded, array)


def test_gzip_is_recognised_by_its_bytes_not_its_name(tmp_path):
    array = np.arange(24, dtype=np.int32).reshape(2, 3, 4)
    compressed = save_idx(tmp_path / "a.gz", array)
    renamed = compressed.rename(tmp_path / "no-suffix-idx3")
    np.testing.assert_array_equal(load_idx(renamed), array)
    plain = save_idx(tmp_path / "b.idx", array).rename(tmp_path / "misleading.gz")
    np.testing.assert_array_equal(load_idx(plain), array)


def test_gzip_output_is_reproducible_and_leaves_no_temporary_files(tmp_path):
    array = np.arange(1000, dtype=np.uint8)
    first = save_idx(tmp_path / "a.gz", array).read_bytes()
    second = save_idx(tmp_path / "a.gz", array).read_bytes()   # overwrites in place
    assert first == second
    assert first[4:8] == b"\0\0\0\0"          # gzip MTIME field: no time stamp
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.gz"]


def test_multi_member_gzip_reads_through_the_growing_buffer(tmp_path):
    # Two concatenated gzip members: the trailer's ISIZE covers the last one only, so it does
    # not vouch for the header and the reader grows its buffer from 1 MiB (doubling twice).
    data = np.arange(3_000_000, dtype=np.uint8)
    blob = idx_header(0x08, data.size) + data.tobytes()
    path = tmp_path / "two-members"
    path.write_bytes(gzip.compress(blob[:1000], mtime=0) + gzip.compress(blob[1000:], mtime=0))
    np.testing.assert_array_equal(load_idx(path), data)


@pytest.mark.parametrize("dtype", [np.int64, np.uint16, bool, np.complex128])
def test_save_refuses_dtypes_idx_cannot_hold(tmp_path, dtype):
    with pytest.raises(TypeError, match=r"save_idx\(.*bad\.idx\).*astype"):
        save_idx(tmp_path / "bad.idx", np.zeros(3, dtype=dtype))
    assert not list(tmp_path.iterdir())


# -- bad files --------------------------------------------------------------------------

BAD_FILES = {
    "empty": (b"", "too short for an IDX header"),
    "short header": (b"\0\0", "too short for an IDX header"),
    "wrong magic": (b"\x01\x00\x08\x01" + struct.pack(">I", 3) + b"abc", "bad magic number 0x01000801"),
    "unknown type code": (idx_header(0x07, 3) + b"abc", "unknown IDX type code 0x07"),
    "sizes cut off": (b"\0\0\x08\x03" + struct.pack(">I", 5), "announces 3 dimensions but ends after 1"),
    "truncated data": (idx_header(0x08, 2, 3) + b"abcde", "6 bytes of data, but the file holds 5 bytes"),
    "trailing bytes": (idx_header(0x08, 2, 3) + b"abcdefg", "trailing bytes"),
    "int items cut": (idx_header(0x0C, 2) + b"\0\0\0\1\0\0\0", "8 bytes of data, but the file holds 7 bytes"),
}


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_raise_naming_the_file(tmp_path, case, compressed):
    content, message = BAD_FILES[case]
    path = tmp_path / f"bad-{case.replace(' ', '-')}"
    path.write_bytes(gzip.compress(content, mtime=0) if compressed else content)
    with pytest.raises(IDXFormatError) as caught:
        load_idx(path)
    assert str(path) in str(caught.value)
    assert message in str(caught.value)


def test_damaged_gzip_stream_raises_idx_error_naming_the_file(tmp_path):
    good = gzip.compress(idx_header(0x08, 3000) + bytes(range(256)) * 11 + bytes(184), mtime=0)
    path = tmp_path / "cut.gz"
    path.write_bytes(good[:-20])
    with pytest.raises(IDXFormatError, match="damaged gzip data") as caught:
        load_idx(path)
    assert str(path) in str(caught.value)


def test_missing_file_is_file_not_found(tmp_path):
    with pytest.raises(FileNotFoundError):
        load_idx(tmp_path / "nowhere.idx")


def assert_fails_fast_without_allocating(path: Path, message: str):
    tracemalloc.start()
    started = time.perf_counter()
    try:
        with pytest.raises(IDXFormatError, match=message) as caught:
            load_idx(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert time.perf_counter() - started < 0.5
    assert peak < 2 ** 20, f"peak {peak} bytes traced while rejecting {path.name}"
    assert str(path) in str(caught.value)


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_header_claiming_2_62_bytes_fails_before_allocating(tmp_path, compressed):
    content = idx_header(0x08, 2 ** 31, 2 ** 31)
    content += bytes(100 - len(content))                       # a 100-byte file
    path = tmp_path / ("huge.gz" if compressed else "huge.idx")
    path.write_bytes(gzip.compress(content, mtime=0) if compressed else content)
    assert_fails_fast_without_allocating(path, "4,611,686,018,427,387,904 bytes of data")


def test_gzip_of_zeros_claiming_more_than_deflate_can_hold_fails_before_decompressing(tmp_path):
    # 2 MB of zeros gzip to about 2 kB; the header claims 2 GiB: more than 1032× the file.
    path = tmp_path / "zeros.gz"
    path.write_bytes(gzip.compress(idx_header(0x08, 2 ** 31) + bytes(2_000_000), mtime=0))
    assert_fails_fast_without_allocating(path, "can hold at most about")


def test_gzip_claim_beyond_the_data_reads_only_what_exists(tmp_path):
    # Claim 3 MB, hold 300 kB of incompressible bytes: within deflate's bound, ISIZE disagrees,
    # so the reader grows its buffer with the data and reports what it found.
    data = np.random.default_rng(0).integers(0, 256, 300_000, dtype=np.uint8).tobytes()
    path = tmp_path / "short.gz"
    path.write_bytes(gzip.compress(idx_header(0x08, 3_000_000) + data, mtime=0))
    with pytest.raises(IDXFormatError, match="3,000,000 bytes of data, but the file holds 300,000 bytes"):
        load_idx(path)



def test_all_zero_gzip_near_deflates_best_ratio_still_loads(tmp_path):
    # 10 MB of zeros gzip about 1025:1, close to deflate's 1032:1 limit the reader checks against.
    path = save_idx(tmp_path / "zeros.gz", np.zeros((10, 1000, 1000), dtype=np.uint8))
    assert (10 * 1000 * 1000) / path.stat().st_size > 1000
    loaded = load_idx(path)
    assert loaded.shape == (10, 1000, 1000) and not loaded.any()
