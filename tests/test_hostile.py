"""Hostile inputs: forged files, non-finite numbers, wrong argument types, in-place edits.

Every file is built here, byte by byte where a writer would refuse to make it.
Claims about memory are measured in a fresh interpreter (its peak resident
size, ``resource.getrusage``), so nothing this process did before counts.
The whole module runs with warnings as errors (``filterwarnings`` below, and
``python -W error`` in CI): a hostile input must give a clear error, not a
numpy warning, a leaked file handle or a raw traceback.
"""
import gc
import gzip
import io
import json
import math
import os
import re
import struct
import subprocess
import sys
import time
import warnings
import zipfile
import zlib

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.datasets import IDXFormatError, load_idx
from nnlayers.examples.xor import xor_network
from tests.helpers import ROOT, assert_unchanged, idx_header, importable, require, weights
from tests.test_gradcheck import LAYER_CASES

pytestmark = pytest.mark.filterwarnings("error")

MiB = 1 << 20


# -- building files -----------------------------------------------------------------------------------

def npy_header(shape, descr="<f8") -> bytes:
    """A version 1.0 .npy header (magic string included) claiming ``shape``, whatever data follow."""
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(buffer, {"descr": descr, "fortran_order": False, "shape": shape})
    return buffer.getvalue()


def npy(array) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array)
    return buffer.getvalue()


def deflated_zeros(prefix: bytes, mebibytes: int):
    """A raw deflate stream of ``prefix`` then ``mebibytes`` MiB of zeros, built in milliseconds:
    one fully flushed 1 MiB block (about 1 kB) repeated. Returns (stream, crc32, length)."""
    first = zlib.compressobj(9, zlib.DEFLATED, -15)
    head = first.compress(prefix) + first.flush(zlib.Z_FULL_FLUSH)
    second = zlib.compressobj(9, zlib.DEFLATED, -15)
    block = second.compress(bytes(MiB)) + second.flush(zlib.Z_FULL_FLUSH)
    crc = zlib.crc32(prefix)
    zeros = bytes(MiB)
    for _ in range(mebibytes):
        crc = zlib.crc32(zeros, crc)
    return head + block * mebibytes + b"\x03\x00", crc, len(prefix) + mebibytes * MiB   # 03 00: final block


def write_zip(path, entries) -> None:
    """A zip archive written by hand from (name, stream, crc32, length, method) entries, so that an
    entry may hold a stream no zip writer would produce (method 8: raw deflate, 0: stored)."""
    local, central = b"", b""
    for name, stream, crc, length, method in entries:
        name = name.encode()
        fields = struct.pack("<HHHHHIII", 20, 0, method, 0, 0x21, crc, len(stream), length)
        central += b"PK\x01\x02" + struct.pack("<H", 20) + fields + struct.pack("<HHHHHII", len(name), 0, 0, 0,
                                                                                 0, 0, len(local)) + name
        local += b"PK\x03\x04" + fields + struct.pack("<HH", len(name), 0) + name + stream
    end = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(entries), len(entries), len(central), len(local), 0)
    with open(path, "wb") as file:
        file.write(local + central + end)


def stored(name, data: bytes):
    return name, data, zlib.crc32(data), len(data), 0


def gzip_of(stream: bytes, crc: int, length: int) -> bytes:
    """A gzip member around a raw deflate stream, its trailer (CRC-32, ISIZE) as given."""
    return b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + stream + struct.pack("<II", crc, length % 2 ** 32)


def non_utf8(folder, name: bytes):
    """A path in ``folder`` whose file name is not valid UTF-8 (Python holds it with surrogate escapes)."""
    return os.path.join(os.fsdecode(folder), os.fsdecode(name))


def peak_growth(setup: str, action: str) -> dict:
    """Run ``setup`` then ``action`` in a fresh ``python -W error`` importing this checkout; returns
    {"outcome": the exception as "Type: message" (or "returned"), "growth": MiB the process's peak
    resident size grew during ``action``, "seconds": its wall time}."""
    code = "\n".join([
        "import json, resource, sys, time",
        f"sys.path.insert(0, {str(ROOT)!r})",
        "import numpy as np, nnlayers as nl",
        setup,
        "scale = 1024 if sys.platform != 'darwin' else 1024 * 1024   # ru_maxrss: KiB on Linux, bytes on macOS",
        "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss",
        "started = time.perf_counter()",
        "try:",
        "    " + action,
        "    outcome = 'returned'",
        "except Exception as error:",
        "    outcome = f'{type(error).__name__}: {error}'",
        "seconds = time.perf_counter() - started",
        "growth = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / scale",
        "print(json.dumps({'outcome': outcome, 'growth': growth, 'seconds': seconds}))",
    ])
    run = subprocess.run([sys.executable, "-W", "error", "-c", code], capture_output=True, text=True, timeout=120,
                         env=dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1"))
    assert run.returncode == 0, run.stderr
    return json.loads(run.stdout.strip().splitlines()[-1])


def no_unclosed_files(action) -> None:
    """Run ``action`` (expected to raise) and fail if it left a file object to the garbage collector."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        try:
            action()
        finally:
            gc.collect()
    leaks = [str(w.message) for w in caught if issubclass(w.category, ResourceWarning)]
    assert not leaks, leaks


# -- weights files ------------------------------------------------------------------------------------

XOR_NAMES = ["0.W", "1.b", "3.W", "4.b"]


def xor_state():
    return xor_network(4, rng=0).state_dict()


def test_npz_bomb_is_refused_from_its_headers_without_decompressing(tmp_path):
    # 256 MiB of zeros in a 260 kB entry the model has no place for, and 1.b missing: refused from the
    # names and headers alone. (Decompressing first cost the size of the bomb in memory and time.)
    state = xor_state()
    bomb, crc, length = deflated_zeros(npy_header((32 * MiB,)), 256)
    path = tmp_path / "bomb.npz"
    write_zip(path, [stored(f"{name}.npy", npy(state[name])) for name in ("0.W", "3.W", "4.b")]
              + [("big.npy", bomb, crc, length, 8)])
    assert path.stat().st_size < MiB
    result = peak_growth("from nnlayers.examples.xor import xor_network; model = xor_network(4, rng=0)",
                         f"nl.load(model, {str(path)!r})")
    assert result["outcome"] == f"WeightsFileError: {path} does not match the model: missing 1.b; unexpected big"
    assert result["growth"] < 16, result
    assert result["seconds"] < 1.0, result


def test_entry_whose_header_claims_2_40_elements_gets_a_weights_file_error(tmp_path):
    state = xor_state()
    path = tmp_path / "huge.npz"
    write_zip(path, [stored("0.W.npy", npy_header((2 ** 40,)) + bytes(64))]
              + [stored(f"{name}.npy", npy(state[name])) for name in XOR_NAMES[1:]])
    model = xor_network(4, rng=1)
    before = weights(model)
    with pytest.raises(nl.WeightsFileError, match=r"0\.W has shape \(1099511627776,\), the model's has shape "
                                                  r"\(2, 4\)"):
        nl.load(model, path)
    assert_unchanged(model, before)


def test_entry_with_the_right_shape_and_a_bomb_behind_it_reads_only_what_the_model_needs(tmp_path):
    state = xor_state()
    data = state["0.W"].tobytes()
    stream, crc, length = deflated_zeros(npy_header((2, 4)) + data, 256)   # 256 MiB after the array's 64 bytes
    path = tmp_path / "tail.npz"
    write_zip(path, [("0.W.npy", stream, crc, length, 8)]
              + [stored(f"{name}.npy", npy(state[name])) for name in XOR_NAMES[1:]])
    result = peak_growth("from nnlayers.examples.xor import xor_network; model = xor_network(4, rng=0)",
                         f"nl.load(model, {str(path)!r})")
    assert result["outcome"].startswith("WeightsFileError: ") and "holds more data than its header" in \
        result["outcome"], result
    assert result["growth"] < 16 and result["seconds"] < 1.0, result


def test_corrupt_deflate_stream_is_a_weights_file_error_and_closes_the_file(tmp_path):
    path = tmp_path / "corrupt.npz"
    np.savez_compressed(path, **{name: np.linspace(0, 1, value.size).reshape(value.shape)
                                 for name, value in xor_state().items()})
    data = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("0.W.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for i in range(start, start + info.compress_size):
        data[i] ^= 0x5A                                                    # scramble the whole stream
    path.write_bytes(bytes(data))
    model = xor_network(4, rng=1)
    before = weights(model)

    def load():
        with pytest.raises(nl.WeightsFileError, match=f"{path}: is not a readable .npz archive"):
            nl.load(model, path)
    no_unclosed_files(load)
    assert_unchanged(model, before)


@pytest.mark.parametrize("cut", [0.5, 0.9, 0.99])
def test_truncated_archive_is_refused_and_its_file_closed(tmp_path, cut):
    path = nl.save(xor_network(4, rng=0), tmp_path / "w.npz")
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * cut)])

    def load():
        with pytest.raises(nl.WeightsFileError, match="truncated or corrupt"):
            nl.load(xor_network(4, rng=1), path)
    no_unclosed_files(load)


def test_entry_shorter_than_its_header_claims_is_refused(tmp_path):
    state = xor_state()
    path = tmp_path / "short.npz"
    write_zip(path, [stored("0.W.npy", npy_header((2, 4)) + bytes(40))]
              + [stored(f"{name}.npy", npy(state[name])) for name in XOR_NAMES[1:]])
    with pytest.raises(nl.WeightsFileError, match=r"'0\.W' holds 40 bytes of data, its header claims 64"):
        nl.load(xor_network(4, rng=1), path)


@pytest.mark.parametrize("write", [np.savez, np.savez_compressed])
def test_files_numpy_writes_in_fortran_order_or_compressed_still_load(tmp_path, write):
    # The header-first reader is strict, not narrow: whatever numpy itself writes, it reads.
    state = {name: np.asfortranarray(value * 3 + 1) for name, value in xor_state().items()}
    path = tmp_path / "numpy.npz"
    write(path, **state)
    model = xor_network(4, rng=1)
    nl.load(model, path)
    for name, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[name])


def test_save_refuses_a_non_numeric_parameter_and_leaves_the_previous_file(tmp_path):
    model = xor_network(4, rng=0)
    path = nl.save(model, tmp_path / "w.npz")
    previous = path.read_bytes()
    model[0].W.data = np.array([[{"a": 1}] * 4] * 2, dtype=object)       # what a careless assignment makes
    with pytest.raises(nl.WeightsFileError, match=r"w\.npz: not saved, 0\.W holds object values"):
        nl.save(model, path)
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]


def test_load_state_dict_refuses_a_list_and_ragged_entries():
    model = xor_network(4, rng=0)
    before = weights(model)
    with pytest.raises(nl.WeightsFileError, match="expected a dict of named arrays, got list"):
        model.load_state_dict(list(xor_state().items()))
    state = xor_state()
    state["1.b"] = [[0.0, 1.0], [2.0]]
    with pytest.raises(nl.WeightsFileError, match=r"1\.b is not a rectangular array"):
        model.load_state_dict(state)
    assert_unchanged(model, before)


def test_load_state_dict_is_all_or_nothing_and_names_a_float32_overflow():
    model = xor_network(4, rng=0, dtype=np.float32)
    before = weights(model)
    state = {name: value + 1 for name, value in xor_state().items()}      # every entry would change
    state["4.b"] = np.array([[1e39]])                                     # the last entry: > float32's max
    with pytest.raises(nl.WeightsFileError, match=r"state dict: 4\.b holds values too large for float32 "
                                                  r"\(e\.g\. 1e\+39\)"):
        model.load_state_dict(state)
    assert_unchanged(model, before)                                      # the first three were not written


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_weights_are_refused_unless_allowed(tmp_path, bad):
    state = xor_state()
    state["3.W"][2, 0] = bad
    path = tmp_path / "w.npz"
    np.savez(path, **state)
    model = xor_network(4, rng=1)
    before = weights(model)
    with pytest.raises(nl.WeightsFileError, match=r"3\.W holds NaN or infinite values \(pass allow_nonfinite=True"):
        nl.load(model, path)
    assert_unchanged(model, before)
    nl.load(model, path, allow_nonfinite=True)
    np.testing.assert_array_equal(model[3].W.data, state["3.W"])


def test_weights_file_errors_are_printable_for_a_non_utf8_name(tmp_path):
    path = non_utf8(tmp_path, b"caf\xe9.npz")
    with open(path, "wb") as file:
        file.write(b"not an archive")
    with pytest.raises(nl.WeightsFileError) as caught:
        nl.load(xor_network(4, rng=0), path)
    message = str(caught.value)
    message.encode("utf-8")                                               # printable on any UTF-8 stream
    assert "caf\\xe9.npz: is not an .npz archive" in message


# -- IDX files ----------------------------------------------------------------------------------------

def test_gzip_trailer_agreeing_with_a_forged_header_costs_only_the_data(tmp_path):
    # 262 kB of data under a header claiming 200 MB; the length trailer forged to agree with the claim.
    data = np.random.default_rng(0).integers(0, 256, 262_000, dtype=np.uint8).tobytes()
    claim = 200_000_000
    blob = gzip.compress(idx_header(0x08, claim) + data, mtime=0)
    path = tmp_path / "forged.gz"
    path.write_bytes(blob[:-4] + struct.pack("<I", (8 + claim) % 2 ** 32))
    result = peak_growth("", f"nl.datasets.load_idx({str(path)!r})")
    assert result["outcome"].startswith(f"IDXFormatError: {path}: "), result
    assert result["growth"] < 16, result


def test_trailing_bytes_after_a_gzip_member_are_not_counted_to_the_end(tmp_path):
    # 6 bytes of data, then a GiB of zeros (1 MB on disk): stop at the first byte too many.
    stream, crc, length = deflated_zeros(idx_header(0x08, 2, 3) + b"abcdef", 1024)
    path = tmp_path / "trailing.gz"
    path.write_bytes(gzip_of(stream, crc, length))
    started = time.perf_counter()
    with pytest.raises(IDXFormatError, match=r"6 bytes of data, but the file holds more than 6 bytes after the "
                                             r"header once gunzipped \(trailing bytes after the data\)"):
        load_idx(path)
    assert time.perf_counter() - started < 1.0


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
@pytest.mark.parametrize("content, message", [
    (idx_header(0x08, *[1] * 33), "header announces 33 dimensions; at most 32 are supported"),
    (idx_header(0x08, *[1] * 255), "header announces 255 dimensions"),
    (idx_header(0x08, 0, 2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1), "more items than an array can index"),
    (idx_header(0x0E, 0, 2 ** 31, 2 ** 31), "more items than an array can index"),
], ids=["33-dims", "255-dims", "zero-times-overflow", "float64-overflow"])
def test_impossible_shapes_are_idx_errors_naming_the_file(tmp_path, content, message, compressed):
    path = tmp_path / "shape.idx"
    path.write_bytes(gzip.compress(content, mtime=0) if compressed else content)
    with pytest.raises(IDXFormatError, match=message) as caught:
        load_idx(path)
    assert str(path) in str(caught.value)


def test_idx_errors_are_printable_for_a_non_utf8_name(tmp_path):
    path = non_utf8(tmp_path, b"images-\xff\xfe.idx")
    with open(path, "wb") as file:
        file.write(b"\x01\x02\x03\x04")
    with pytest.raises(IDXFormatError) as caught:
        load_idx(path)
    message = str(caught.value)
    message.encode("utf-8")
    assert "images-\\xff\\xfe.idx: bad magic number" in message


# -- training -----------------------------------------------------------------------------------------

class LossTurningNaN(nl.EuclideanLoss):
    """The Euclidean loss, until its ``at``-th call: from then on NaN (a network diverging, quietly)."""

    def __init__(self, at):
        super().__init__()
        self.at, self.calls = at, 0

    def forward(self, pred, target):
        value = super().forward(pred, target)
        self.calls += 1
        return float("nan") if self.calls >= self.at else value


def small_net():
    return nl.Sequential(nl.Linear(2, 3, rng=0), nl.Bias(3), nl.Tanh(), nl.Linear(3, 1, rng=1))


def regression_data(n=8):
    rng = np.random.default_rng(5)
    X = rng.normal(size=(n, 2))
    return X, np.tanh(X @ np.array([[1.0], [-2.0]]))


def assert_same_state(model, optimizer, other_model, other_optimizer):
    for p, q in zip(model.parameters(), other_model.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
        assert np.all(np.isfinite(p.data))
    mine, theirs = optimizer.state_dict(), other_optimizer.state_dict()
    assert mine.keys() == theirs.keys() and mine["steps"] == theirs["steps"]
    for name in mine.keys() - {"steps"}:
        for a, b in zip(mine[name], theirs[name]):
            np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("batch_size, nan_at, clean_epochs, where", [
    (None, 5, 3, r"epoch 5, batch 1 \(step 5\).*restored to the last step whose loss was finite.*epoch 4, batch 1"),
    (4, 6, 2, r"epoch 3, batch 2 \(step 6\).*restored to the last step whose loss was finite.*epoch 3, batch 1"),
], ids=["full-batch", "minibatches"])
def test_divergence_restores_weights_and_optimizer_state_so_training_can_resume(batch_size, nan_at, clean_epochs,
                                                                                 where):
    # The loss turns NaN at step k: weights and Adam's moments go back to before step k − 1's update,
    # exactly the state k − 2 clean steps reach.
    X, Y = regression_data()
    model, clean = small_net(), small_net()
    trainer = nl.Trainer(model, LossTurningNaN(nan_at), nl.Adam(model.parameters(), lr=0.05))
    with pytest.raises(nl.TrainingDivergedError, match=f"loss became nan at {where}") as caught:
        trainer.fit(X, Y, epochs=10, batch_size=batch_size, shuffle=False, progress=False)
    assert "try a smaller learning rate" in str(caught.value)
    reference = nl.Trainer(clean, nl.EuclideanLoss(), nl.Adam(clean.parameters(), lr=0.05))
    reference.fit(X, Y, epochs=clean_epochs, batch_size=batch_size, shuffle=False, progress=False)
    assert_same_state(model, trainer.optimizer, clean, reference.optimizer)
    trainer.loss.at = math.inf                                          # resume: the run goes on from there
    trainer.fit(X, Y, epochs=1, batch_size=batch_size, shuffle=False, progress=False)
    reference.fit(X, Y, epochs=1, batch_size=batch_size, shuffle=False, progress=False)
    assert_same_state(model, trainer.optimizer, clean, reference.optimizer)


class PoisonedSGD(nl.SGD):
    """SGD whose ``at``-th step leaves a weight at ``value``: the loss never sees it if it is the last."""

    def __init__(self, parameters, at, value=np.inf, **options):
        super().__init__(parameters, **options)
        self.at, self.value = at, value

    def step(self):
        super().step()
        if self.steps == self.at:
            self.parameters[0].data[0, 0] = self.value


@pytest.mark.parametrize("batch_size", [None, 4])
@pytest.mark.parametrize("value", [np.inf, np.nan])
def test_fit_never_returns_non_finite_weights(batch_size, value):
    X, Y = regression_data()
    model, clean = small_net(), small_net()
    last_step = 3 if batch_size is None else 6
    trainer = nl.Trainer(model, nl.EuclideanLoss(),
                         PoisonedSGD(model.parameters(), last_step, value, lr=0.1, momentum=0.9))
    with pytest.raises(nl.TrainingDivergedError, match=r"0\.W became NaN or infinite during epoch 3 while the loss "
                                                       r"stayed finite.*restored to the last step whose loss"):
        trainer.fit(X, Y, epochs=3, batch_size=batch_size, shuffle=False, progress=False)
    reference = nl.Trainer(clean, nl.EuclideanLoss(), nl.SGD(clean.parameters(), lr=0.1, momentum=0.9))
    if batch_size is None:                                              # the state before the last step:
        reference.fit(X, Y, epochs=2, progress=False)                   # two full-batch steps
    else:                                                               # or five: two epochs of two batches,
        reference.fit(X, Y, epochs=2, batch_size=4, shuffle=False, progress=False)
        reference.fit(X[:4], Y[:4], epochs=1, progress=False)           # then the third epoch's first batch
    assert_same_state(model, trainer.optimizer, clean, reference.optimizer)


class PoisonedAdam(nl.Adam):
    """Adam whose third step leaves its second moment infinite: every later update of that weight would
    be 0 (m / ∞), silently, while the loss stays finite."""

    def step(self):
        super().step()
        if self.steps == 3:
            self._v[0][0, 0] = np.inf


def test_a_non_finite_optimizer_state_is_divergence_too():
    X, Y = regression_data()
    model, clean = small_net(), small_net()
    trainer = nl.Trainer(model, nl.EuclideanLoss(), PoisonedAdam(model.parameters(), lr=0.05))
    with pytest.raises(nl.TrainingDivergedError, match=r"the optimizer's v\[0\] became NaN or infinite during "
                                                       r"epoch 3"):
        trainer.fit(X, Y, epochs=4, progress=False)
    reference = nl.Trainer(clean, nl.EuclideanLoss(), nl.Adam(clean.parameters(), lr=0.05))
    reference.fit(X, Y, epochs=2, progress=False)
    assert_same_state(model, trainer.optimizer, clean, reference.optimizer)


def test_fit_refuses_to_start_from_non_finite_weights():
    X, Y = regression_data()
    model = small_net()
    model[3].W.data[1, 0] = np.nan
    with pytest.raises(ValueError, match=r"^fit: the model's 3\.W holds NaN or inf before training"):
        nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.1)).fit(X, Y, epochs=1,
                                                                                      progress=False)


class PlainDescent:
    """An optimizer written from scratch: the Trainer needs only step and zero_grad."""

    def __init__(self, parameters, lr):
        self.parameters, self.lr = list(parameters), lr

    def step(self):
        for p in self.parameters:
            p.data -= self.lr * p.grad

    def zero_grad(self):
        for p in self.parameters:
            p.grad.fill(0)


def test_divergence_with_a_users_own_optimizer_restores_the_weights():
    X, Y = regression_data()
    model, clean = small_net(), small_net()
    trainer = nl.Trainer(model, LossTurningNaN(4), PlainDescent(model.parameters(), 0.1))
    with pytest.raises(nl.TrainingDivergedError, match="loss became nan at epoch 4"):
        trainer.fit(X, Y, epochs=6, progress=False)
    nl.Trainer(clean, nl.EuclideanLoss(), PlainDescent(clean.parameters(), 0.1)).fit(X, Y, epochs=2,
                                                                                     progress=False)
    for p, q in zip(model.parameters(), clean.parameters()):
        np.testing.assert_array_equal(p.data, q.data)


def test_non_finite_validation_loss_is_divergence():
    X, Y = regression_data()
    model, clean = small_net(), small_net()
    trainer = nl.Trainer(model, LossTurningNaN(4), nl.SGD(model.parameters(), lr=0.1, momentum=0.5))
    # Calls: step 1, validation 1, step 2, validation 2 (NaN): the weights validated after epoch 1 come back.
    with pytest.raises(nl.TrainingDivergedError, match="validation loss became nan after epoch 2") as caught:
        trainer.fit(X, Y, epochs=5, validation_data=(X, Y), progress=False)
    assert caught.value.history.epochs == 1 and len(caught.value.history.val_loss) == 1
    reference = nl.Trainer(clean, nl.EuclideanLoss(), nl.SGD(clean.parameters(), lr=0.1, momentum=0.5))
    reference.fit(X, Y, epochs=1, progress=False)
    assert_same_state(model, trainer.optimizer, clean, reference.optimizer)


class WarningAdam(nl.Adam):
    """Adam whose third step updates one parameter, then meets an overflow warning (an error under -W error)."""

    def step(self):
        if self.steps == 2:
            self.parameters[0].data += 1.0
            np.multiply(np.float64(1e308), 10.0)
        super().step()


def test_an_error_in_the_middle_of_a_step_undoes_the_step():
    X, Y = regression_data()
    model, clean = small_net(), small_net()
    trainer = nl.Trainer(model, nl.EuclideanLoss(), WarningAdam(model.parameters(), lr=0.05))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(RuntimeWarning, match="overflow"):
            trainer.fit(X, Y, epochs=5, progress=False)
    reference = nl.Trainer(clean, nl.EuclideanLoss(), nl.Adam(clean.parameters(), lr=0.05))
    reference.fit(X, Y, epochs=2, progress=False)
    assert_same_state(model, trainer.optimizer, clean, reference.optimizer)
    assert not any(p.grad.any() for p in model.parameters())


@pytest.mark.parametrize("which, where", [("X", "fit"), ("Y", "fit"), ("X", "fit (validation_data)"),
                                          ("Y", "fit (validation_data)")])
@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_data_is_reported_as_a_data_problem_before_training(which, where, bad):
    X, Y = regression_data(20)
    data = {"X": X.copy(), "Y": Y.copy()}
    data[which][13, 0] = bad
    model = small_net()
    before = weights(model)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.1))
    train, val = (data, {"X": X, "Y": Y}) if where == "fit" else ({"X": X, "Y": Y}, data)
    with pytest.raises(ValueError, match=f"^{re.escape(where)}: {which} holds NaN or infinite values, first at "
                                         f"sample 13 \\(of 20\\)"):
        trainer.fit(train["X"], train["Y"], epochs=3, batch_size=4, rng=0, validation_data=(val["X"], val["Y"]),
                    progress=False)
    assert_unchanged(model, before)
    assert trainer.optimizer.steps == 0


@pytest.mark.parametrize("bad_label, message", [
    (3, r"label 3 at position 37 out of range for 3 classes"),
    (-1, r"label -1 at position 37 out of range"),
    (1.5, r"labels must be whole numbers \(class indices\), got 1.5 at position 37"),
])
def test_a_bad_label_is_named_by_its_position_in_the_data_before_any_step(bad_label, message):
    rng = np.random.default_rng(0)
    X, labels = rng.normal(size=(64, 2)), rng.integers(0, 3, 64)
    labels = labels.astype(type(bad_label))                              # integer labels, or floats for 1.5
    labels[37] = bad_label
    model = nl.Sequential(nl.Linear(2, 3, rng=0))
    before = weights(model)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match=f"^fit: Y does not suit the loss: SoftmaxCrossEntropy\\(\\): {message}"):
        trainer.fit(X, labels, epochs=2, batch_size=8, rng=0, progress=False)
    assert trainer.optimizer.steps == 0
    assert_unchanged(model, before)
    good = np.where(np.arange(64) == 37, 0, labels)
    val_labels = good[:10].copy()
    val_labels[4] = bad_label
    with pytest.raises(ValueError, match="^fit: validation_data's Y does not suit the loss: .*position 4"):
        trainer.fit(X, good, epochs=2, batch_size=8, rng=0, validation_data=(X[:10], val_labels), progress=False)
    assert trainer.optimizer.steps == 0


def test_predict_on_zero_samples_gives_zero_rows_of_the_output_shape():
    for model, shape in [(nl.Sequential(nl.Linear(3, 4, rng=0), nl.ReLU(), nl.Linear(4, 5, rng=1)), (0, 3)),
                         (nl.Sequential(nl.Conv2D(1, 2, 3, padding=1, rng=0), nl.ReLU(), nl.MaxPool2D(2),
                                        nl.Flatten(), nl.Linear(2 * 2 * 2, 5, rng=1)), (0, 1, 4, 4))]:
        trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(model.parameters(), lr=0.1))
        assert trainer.predict(np.zeros(shape)).shape == (0, 5)


@pytest.mark.parametrize("conv", [
    lambda: nl.Conv2D(2, 3, 3, rng=0),                                   # stride 1: the flat layout
    lambda: nl.Conv2D(2, 3, (3, 2), stride=2, padding=1, rng=0),          # the general layout
    lambda: nl.Conv2D(2, 3, 3, rng=0).eval(),
    lambda: nl.Conv2D(2, 3, 3, rng=0, input_grad=False),
])
def test_conv2d_takes_a_zero_sample_batch_like_every_other_layer(conv):
    layer = conv()
    Z = layer.forward(np.zeros((0, 2, 5, 5)))
    assert Z.shape == layer.output_shape((0, 2, 5, 5))
    dX = layer.backward(np.zeros(Z.shape))
    assert dX is None or dX.shape == (0, 2, 5, 5)
    assert not layer.W.grad.any() and not layer.b.grad.any()


@pytest.mark.parametrize("make, make_input", [case[1:] for case in LAYER_CASES], ids=[c[0] for c in LAYER_CASES])
def test_every_layer_takes_a_batch_of_zero_samples(make, make_input):
    X = make_input(np.random.default_rng(0))
    module = make()
    if any(isinstance(m, (nl.BatchNorm1d, nl.BatchNorm2d)) and m.training for m in module.modules()):
        with pytest.raises(ValueError, match="training mode needs more than one value per channel"):
            module.forward(X[:0])                           # no batch statistics from no samples (as PyTorch)
        module.eval()
    Z = module.forward(X[:0])
    assert Z.shape[0] == 0 and Z.shape[1:] == module.forward(X).shape[1:]
    module.forward(X[:0])
    assert module.backward(np.zeros(Z.shape)).shape == X[:0].shape
    assert not any(p.grad.any() for p in module.parameters())


def xor_trainer():
    model = xor_network(2, rng=0)
    return nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=1.0))


X4, Y4 = np.zeros((4, 2)), np.zeros((4, 1))

BAD_ARGUMENTS = [
    # one rule: TypeError for a wrong type, ValueError for a wrong value, in the optimizers and the trainer alike
    ("SGD lr str", lambda p: nl.SGD(p, lr="0.1"), TypeError, r"SGD: lr must be a finite number ≥ 0, got '0\.1'"),
    ("SGD lr bool", lambda p: nl.SGD(p, lr=True), TypeError, "lr must be a finite number ≥ 0, got True"),
    ("SGD lr None", lambda p: nl.SGD(p, lr=None), TypeError, "lr must be"),
    ("SGD lr nan", lambda p: nl.SGD(p, lr=float("nan")), ValueError, "lr must be a finite number ≥ 0, got nan"),
    ("SGD lr -1", lambda p: nl.SGD(p, lr=-1), ValueError, "lr must be a finite number ≥ 0"),
    ("SGD momentum str", lambda p: nl.SGD(p, lr=0.1, momentum="0.9"), TypeError, "momentum must be"),
    ("SGD momentum inf", lambda p: nl.SGD(p, lr=0.1, momentum=math.inf), ValueError, "momentum must be"),
    ("SGD weight_decay", lambda p: nl.SGD(p, lr=0.1, weight_decay=-0.1), ValueError, "weight_decay must be"),
    ("SGD nesterov str", lambda p: nl.SGD(p, lr=0.1, momentum=0.9, nesterov="no"), TypeError,
     "nesterov must be True or False"),
    ("Adam lr str", lambda p: nl.Adam(p, lr="1e-3"), TypeError, "Adam: lr must be"),
    ("Adam betas float", lambda p: nl.Adam(p, betas=0.9), TypeError, "betas must be a pair"),
    ("Adam betas str", lambda p: nl.Adam(p, betas="ab"), TypeError, "betas must be a pair"),
    ("Adam betas three", lambda p: nl.Adam(p, betas=(0.9, 0.99, 0.999)), ValueError, "betas must be a pair"),
    ("Adam beta str", lambda p: nl.Adam(p, betas=(0.9, "0.999")), TypeError, r"betas\[1\] must be"),
    ("Adam beta 1", lambda p: nl.Adam(p, betas=(1.0, 0.999)), ValueError, r"betas\[0\] must be a number in \[0, 1\)"),
    ("Adam eps", lambda p: nl.Adam(p, eps=-1e-8), ValueError, "eps must be"),
    ("lr setter", lambda p: setattr(nl.SGD(p, lr=0.1), "lr", "0.5"), TypeError, "lr must be"),
    ("fit batch_size str", lambda p: xor_trainer().fit(X4, Y4, epochs=1, batch_size="8"), TypeError,
     "fit: batch_size must be a positive integer, got '8'"),
    ("fit batch_size 0", lambda p: xor_trainer().fit(X4, Y4, epochs=1, batch_size=0), ValueError,
     "fit: batch_size must be a positive integer"),
    ("fit epochs float", lambda p: xor_trainer().fit(X4, Y4, epochs=2.0), TypeError, "fit: epochs must be"),
    ("fit shuffle", lambda p: xor_trainer().fit(X4, Y4, epochs=1, shuffle="yes"), TypeError,
     "fit: shuffle must be True or False"),
    ("fit validation_data", lambda p: xor_trainer().fit(X4, Y4, epochs=1, validation_data=X4), TypeError,
     r"validation_data must be a pair \(X_val, Y_val\)"),
    ("predict -1", lambda p: xor_trainer().predict(X4, batch_size=-1), ValueError,
     "predict: batch_size must be a positive integer, got -1"),
    ("predict str", lambda p: xor_trainer().predict(X4, batch_size="8"), TypeError, "predict: batch_size"),
    ("evaluate -1", lambda p: xor_trainer().evaluate(X4, Y4, batch_size=-1), ValueError,
     "evaluate: batch_size must be a positive integer, got -1"),
    ("evaluate float", lambda p: xor_trainer().evaluate(X4, Y4, batch_size=2.5), TypeError, "evaluate: batch_size"),
    ("minibatches -1", lambda p: list(nl.minibatches(10, -1)), ValueError, "minibatches: batch_size must be"),
    ("minibatches str", lambda p: list(nl.minibatches(10, "4")), TypeError, "minibatches: batch_size must be"),
    ("minibatches n", lambda p: list(nl.minibatches(-3, 4)), ValueError, "minibatches: n must be an integer ≥ 0"),
    ("minibatches n float", lambda p: list(nl.minibatches(10.0, 4)), TypeError, "minibatches: n must be"),
    ("Dropout p str", lambda p: nl.Dropout("0.5"), TypeError, r"Dropout: p must be a number in \[0, 1\)"),
    ("Linear input_grad", lambda p: nl.Linear(2, 3, input_grad="no"), TypeError, "input_grad must be True or False"),
    ("Conv2D bias", lambda p: nl.Conv2D(1, 2, 3, bias=None), TypeError, "Conv2D: bias must be True or False"),
    ("Trainer metric", lambda p: nl.Trainer(xor_network(2, rng=0), nl.EuclideanLoss(), None, metric="accuracy"),
     TypeError, "Trainer: metric must be a function"),
    ("state steps str", lambda p: nl.SGD(p, lr=0.1).load_state_dict({"steps": "2"}), TypeError,
     "steps must be an integer ≥ 0"),
    ("state steps -1", lambda p: nl.SGD(p, lr=0.1).load_state_dict({"steps": -1}), ValueError,
     "steps must be an integer ≥ 0"),
]


@pytest.mark.parametrize("make, error, message", [case[1:] for case in BAD_ARGUMENTS],
                         ids=[case[0] for case in BAD_ARGUMENTS])
def test_one_validation_for_every_argument(make, error, message):
    with pytest.raises(error, match=message) as caught:
        make([nl.Parameter(np.ones(2), "θ")])
    assert type(caught.value) is error                                  # exactly one of the two, never both


def test_optimizer_state_round_trips_and_loads_all_or_nothing():
    layer = nl.Linear(2, 3, rng=0)
    adam = nl.Adam(layer.parameters(), lr=0.1)
    layer.W.grad[...] = 1.0
    adam.step()
    saved = adam.state_dict()
    assert saved["steps"] == 1 and sorted(saved) == ["m", "steps", "v"]
    layer.W.grad[...] = -3.0
    adam.step()
    snapshot = adam.state_dict()
    assert snapshot["steps"] == 2 and not np.shares_memory(snapshot["m"][0], adam._m[0])   # a copy
    layer.W.grad[...] = 5.0
    adam.step()
    broken = dict(snapshot, v=[np.zeros((3, 2))])                          # wrong shape: nothing may change
    m_before = adam.state_dict()["m"][0].copy()
    with pytest.raises(ValueError, match=r"v\[0\] must have shape \(2, 3\), got shape \(3, 2\)"):
        adam.load_state_dict(broken)
    np.testing.assert_array_equal(adam.state_dict()["m"][0], m_before)
    assert adam.steps == 3
    adam.load_state_dict(snapshot)
    assert adam.steps == 2
    np.testing.assert_array_equal(adam.state_dict()["v"][0], snapshot["v"][0])
    with pytest.raises(ValueError, match=r"expected the entries \['steps', 'velocity'\]"):
        nl.SGD(layer.parameters(), lr=0.1, momentum=0.9).load_state_dict(snapshot)
    assert sorted(nl.SGD(layer.parameters(), lr=0.1).state_dict()) == ["steps"]     # no momentum, no buffer


# -- losses and layers --------------------------------------------------------------------------------

def test_softmax_cross_entropy_at_the_float64_limits_is_right_and_quiet():
    X = np.array([[1.7e308, -1.7e308], [-1.7e308, 1.7e308]])
    loss = nl.SoftmaxCrossEntropy()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert loss.forward(X, np.array([0, 1])) == 0.0                  # log(1 + e^(−3.4e308)) = 0
        np.testing.assert_array_equal(loss.backward(), np.zeros((2, 2)))
        assert loss.forward(X, np.array([1, 1])) == math.inf             # (3.4e308 + 0) / 2 overflows
        assert loss.forward(X, np.array([[1.0, 0.0], [0.0, 1.0]])) == 0.0     # one-hot rows: 0 · ∞ counts 0
        np.testing.assert_array_equal(nl.softmax(X), [[1.0, 0.0], [0.0, 1.0]])


def test_maxpool_sends_the_gradient_of_a_nan_window_to_its_nan():
    nan = np.nan
    X = np.array([[[[1.0, nan, 3.0, 0.0],
                    [nan, 2.0, 5.0, nan]]]])
    pool = nl.MaxPool2D(2)
    Z = pool.forward(X)
    assert np.isnan(Z).all()
    dX = pool.backward(np.array([[[[1.0, 2.0]]]]))
    # PyTorch's rule: take x if x > max or x is NaN, scanning row by row: the last NaN of each window.
    np.testing.assert_array_equal(dX, [[[[0, 0, 0, 0], [1, 0, 0, 2]]]])


def test_maxpool_nan_routing_matches_pytorch():
    require(importable("torch"), "PyTorch is not installed (pip install torch==2.13.0)")
    import torch
    rng = np.random.default_rng(0)
    for kernel, stride, shape in [(2, None, (2, 3, 6, 6)), (3, 2, (2, 2, 7, 9)), ((2, 3), 1, (1, 2, 5, 6))]:
        X = rng.integers(-2, 3, size=shape).astype(float)                 # small integers: ties too
        X[rng.random(shape) < 0.3] = np.nan
        pool = nl.MaxPool2D(kernel, stride)
        G = rng.normal(size=pool.output_shape(shape))
        ours = pool.forward(X), pool.backward(G)
        T = torch.tensor(X, requires_grad=True)
        Zt = torch.nn.functional.max_pool2d(T, kernel, stride)
        Zt.backward(torch.tensor(G))
        np.testing.assert_array_equal(ours[0], Zt.detach().numpy())
        np.testing.assert_array_equal(ours[1], T.grad.numpy())


def test_maxpool_without_nan_keeps_its_first_maximum_rule():
    pool = nl.MaxPool2D(2)
    pool.forward(np.array([[[[1.0, 4.0], [4.0, 4.0]]]]))
    np.testing.assert_array_equal(pool.backward(np.ones((1, 1, 1, 1))), [[[[0, 1], [0, 0]]]])


def text_model():
    """ids N×T → Embedding(5, 3) → LSTM(3, 4) → Linear(4, 5)."""
    return nl.Sequential(nl.Embedding(5, 3, rng=0), nl.LSTM(3, 4, rng=1), nl.Linear(4, 5, rng=2))


BAD_SEQUENCES = [
    # a text model's hostile inputs: each error located in the model and naming the first bad position
    ("id out of range", np.array([[0, 1, 2], [3, 5, 1]]), ValueError,
     r"layer 0 forward: Embedding\(num_embeddings=5, embedding_dim=3\): ids must lie in 0…4, "
     r"got 5 at position \(1, 1\)"),
    ("negative id", np.array([[0, -2, 2]]), ValueError, r"got -2 at position \(0, 1\)"),
    ("huge float id", np.array([[0.0, 1e300, 2.0]]), ValueError, r"got 1e\+300 at position \(0, 1\)"),
    ("fractional id", np.array([[0.0, 1.0, 2.5]]), ValueError,
     r"ids must be whole numbers, got 2.5 at position \(0, 2\)"),
    ("NaN id", np.array([[np.nan, 1.0]]), ValueError, r"whole numbers, got nan at position \(0, 0\)"),
    ("bool ids", np.array([[True, False]]), TypeError, "ids must be an integer array, got dtype bool"),
    ("string ids", np.array([["a", "b"]]), TypeError, "ids must be an integer array, got dtype <U1"),
    ("scalar id", np.array(3), nl.ShapeError, r"expected an array of ids \(N, …\), got a scalar"),
]


@pytest.mark.parametrize("ids, error, message", [case[1:] for case in BAD_SEQUENCES],
                         ids=[case[0] for case in BAD_SEQUENCES])
def test_bad_sequences_are_located_errors_that_change_nothing(ids, error, message):
    model = text_model()
    good = np.array([[0, 1, 4], [4, 4, 2]])
    Z = model(good)
    before = weights(model)
    with pytest.raises(error, match=message) as caught:
        model(ids)
    assert type(caught.value) is error
    assert_unchanged(model, before)
    model.backward(np.ones(Z.shape))                        # the caches still hold the good batch
    assert model[0].W.grad[3].sum() == 0 and model[0].W.grad[4].any()


def test_no_time_steps_an_empty_batch_and_float32_in_a_model_of_text():
    model = text_model()
    with pytest.raises(nl.ShapeError, match=r"layer 1 forward: LSTM\(input_size=3, hidden_size=4\): expected at "
                                            r"least one time step, got input of shape \(2, 0, 3\)"):
        model(np.zeros((2, 0), dtype=np.int64))
    Z = model(np.zeros((0, 7), dtype=np.int64))
    assert Z.shape == (0, 7, 5) and model.backward(np.zeros(Z.shape)) is None
    assert not any(p.grad.any() for p in model.parameters())
    model.to(np.float32)
    Z = model(np.array([[1, 2, 3]]))
    assert Z.dtype == np.float32 and model.backward(np.ones(Z.shape, dtype=np.float32)) is None


@pytest.mark.parametrize("make, make_input", [case[1:] for case in LAYER_CASES], ids=[c[0] for c in LAYER_CASES])
def test_a_returned_array_may_be_modified_without_changing_any_gradient(make, make_input):
    # The contract (module.py): forward's Z and backward's δX belong to the caller.
    rng = np.random.default_rng(0)
    X = make_input(rng)
    outputs = []
    for scribble in (False, True):
        module = make()
        Z = module.forward(X.copy())
        G = np.random.default_rng(1).normal(size=Z.shape)
        cached = [getattr(m, name) for m in module.modules() for name in type(m).cache_names]
        assert not any(isinstance(c, np.ndarray) and np.shares_memory(Z, c) for c in cached)
        if scribble:
            Z[...] = 1e6                                                   # the caller's to change
        dX = module.backward(G.copy())                                     # δX may be (a view of) δZ
        outputs.append([dX.copy()] + [p.grad.copy() for p in module.parameters()])
        if scribble:
            dX[...] = -7.0                                                 # and δX too: a second backward
            second = module.backward(G)                                    # must not see it
            np.testing.assert_array_equal(second, outputs[0][0])
    for clean, scribbled in zip(*outputs):
        np.testing.assert_array_equal(scribbled, clean)
