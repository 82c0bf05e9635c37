import os

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.examples.xor import XOR_X, xor_network
from tests.helpers import assert_unchanged, weights


def test_save_load_round_trip_gives_identical_predictions(tmp_path):
    model = xor_network(8, rng=0)
    path = nl.save(model, tmp_path / "xor.npz")
    other = xor_network(8, rng=1)
    nl.load(other, path)
    np.testing.assert_array_equal(other.forward(XOR_X), model.forward(XOR_X))
    with np.load(path, allow_pickle=False) as archive:                # names and shapes in the file
        assert archive.files == ["0.W", "1.b", "3.W", "4.b"]
        assert archive["0.W"].shape == (2, 8)
    umask = os.umask(0)
    os.umask(umask)
    assert os.stat(path).st_mode & 0o777 == 0o666 & ~umask          # as open() would have made it


def test_state_dict_is_a_copy_and_loads_in_place():
    model = xor_network(4, rng=0)
    state = model.state_dict()
    state["0.W"][...] = 0
    assert model[0].W.data.any()
    W = model[0].W.data
    model.load_state_dict(state)
    assert model[0].W.data is W and not W.any()


def test_float64_file_loads_into_float32_model(tmp_path):
    path = nl.save(xor_network(4, rng=0), tmp_path / "w.npz")
    small = xor_network(4, rng=1, dtype=np.float32)
    nl.load(small, path)
    assert small[0].W.data.dtype == np.float32


@pytest.mark.parametrize("change, message", [
    (lambda s: s.pop("1.b"), r"missing 1\.b"),
    (lambda s: s.update(extra=np.ones(2)), "unexpected extra"),
    (lambda s: s.update({"3.W": np.ones((5, 1))}), r"3\.W has shape \(5, 1\), the model's has shape \(4, 1\)"),
])
def test_mismatched_files_are_refused_and_model_unchanged(tmp_path, change, message):
    state = xor_network(4, rng=0).state_dict()
    for value in state.values():
        value += 1
    change(state)
    path = tmp_path / "w.npz"
    np.savez(path, **state)
    model = xor_network(4, rng=9)
    before = weights(model)
    with pytest.raises(nl.WeightsFileError, match=message) as info:
        nl.load(model, path)
    assert str(path) in str(info.value)
    assert_unchanged(model, before)


def test_truncated_file_is_refused(tmp_path):
    path = nl.save(xor_network(4, rng=0), tmp_path / "w.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    model = xor_network(4, rng=1)
    before = weights(model)
    with pytest.raises(nl.WeightsFileError, match="truncated or corrupt"):
        nl.load(model, path)
    assert_unchanged(model, before)


def test_object_array_is_never_unpickled(tmp_path):
    path = tmp_path / "evil.npz"
    np.savez(path, **{"0.W": np.array([{"a": 1}, None], dtype=object)})
    model = xor_network(4, rng=1)
    before = weights(model)
    with pytest.raises(nl.WeightsFileError, match="pickled data .* never loaded"):
        nl.load(model, path)
    assert_unchanged(model, before)


@pytest.mark.parametrize("content", [b"not a weights file at all", b""])
def test_non_npz_file_is_refused(tmp_path, content):
    path = tmp_path / "w.npz"
    path.write_bytes(content)
    with pytest.raises(nl.WeightsFileError, match=r"w\.npz: "):
        nl.load(xor_network(4, rng=1), path)


def test_single_npy_array_is_refused(tmp_path):
    path = tmp_path / "w.npy"
    np.save(path, np.ones(3))
    with pytest.raises(nl.WeightsFileError, match="not an .npz archive of named weights"):
        nl.load(xor_network(4, rng=1), path)


def test_interrupted_save_keeps_previous_file(tmp_path, monkeypatch):
    model = xor_network(4, rng=0)
    path = nl.save(model, tmp_path / "w.npz")
    previous = path.read_bytes()

    def failing_savez(file, **arrays):
        file.write(b"PK\x03\x04 half an archive")
        raise OSError("disk full")
    monkeypatch.setattr(np, "savez", failing_savez)
    with pytest.raises(OSError, match="disk full"):
        nl.save(xor_network(4, rng=5), path)
    assert path.read_bytes() == previous
    assert sorted(p.name for p in tmp_path.iterdir()) == ["w.npz"]     # no temporary left behind
    monkeypatch.undo()
    nl.load(model, path)


def test_missing_file():
    with pytest.raises(FileNotFoundError):
        nl.load(xor_network(2, rng=0), "/nonexistent/w.npz")


def test_save_into_a_missing_folder_names_the_given_path(tmp_path):
    target = tmp_path / "no-such-folder" / "w.npz"
    with pytest.raises(FileNotFoundError) as caught:
        nl.save(xor_network(8, rng=0), target)
    assert caught.value.filename == str(target) and str(target) in str(caught.value)
    assert ".tmp" not in str(caught.value)                 # not the hidden temporary file
    folder = tmp_path / "a-folder.npz"
    folder.mkdir()
    with pytest.raises(IsADirectoryError, match="a-folder.npz"):
        nl.save(xor_network(8, rng=0), folder)
    assert list(tmp_path.iterdir()) == [folder] and not list(folder.iterdir())   # no temporary left behind


def test_the_load_dtype_rule(tmp_path):
    """Floats load into any float precision (rounded, refused if too large); integers never load into
    float weights; integer counters load exactly (nnlayers.state's rule, as nl.load's docstring says)."""
    model = xor_network(4, rng=0)
    state = model.state_dict()
    small = xor_network(4, rng=1, dtype=np.float32)
    nl.load(small, nl.save(model, tmp_path / "w64.npz"))                       # float64 → float32: rounded
    np.testing.assert_array_equal(small[0].W.data, state["0.W"].astype(np.float32))
    big = xor_network(4, rng=1)
    nl.load(big, nl.save(small, tmp_path / "w32.npz"))                         # float32 → float64: exact
    np.testing.assert_array_equal(big[0].W.data, small[0].W.data.astype(np.float64))
    np.savez(tmp_path / "ints.npz", **{name: np.ones(a.shape, dtype=np.int64) for name, a in state.items()})
    before = weights(model)
    with pytest.raises(nl.WeightsFileError, match=r"0\.W holds integers \(int64\), the model's float64 weights"):
        nl.load(model, tmp_path / "ints.npz")
    assert_unchanged(model, before)
    huge = {**state, "0.W": np.full(state["0.W"].shape, 1e300)}
    np.savez(tmp_path / "huge.npz", **huge)
    with pytest.raises(nl.WeightsFileError, match="too large for float32"):
        nl.load(small, tmp_path / "huge.npz")
    bn = nl.Sequential(nl.BatchNorm1d(2))
    counters = bn.state_dict()
    counters["0.num_batches_tracked"] = np.array(7, dtype=np.int32)
    bn.load_state_dict(counters)
    assert bn[0].num_batches_tracked.data == 7
