"""Embedding: a worked example, PyTorch parity with repeated ids (ids of shape N, N×T, N×T×K) on both
paths of δW (the grouped scatter-add kernel and ``np.add.at``), whole-number float ids, and bad ids
refused with an error naming the first bad position, changing nothing."""
import contextlib

import numpy as np
import pytest

import nnlayers as nl
from nnlayers import kernels
from tests.helpers import importable, require

PATHS = ["fast", "reference"]


def path(name):
    return kernels.reference_paths() if name == "reference" else contextlib.nullcontext()


def test_embedding_by_hand():
    layer = nl.Embedding(3, 2)
    layer.W.data[...] = [[1.0, 2.0], [3.0, 4.0], [5.0, 6.0]]
    Z = layer.forward(np.array([[2, 0, 2]]))
    np.testing.assert_array_equal(Z, [[[5.0, 6.0], [1.0, 2.0], [5.0, 6.0]]])
    assert layer.backward(np.array([[[1.0, 10.0], [100.0, 1000.0], [2.0, 20.0]]])) is None   # ids: no gradient
    np.testing.assert_array_equal(layer.W.grad, [[100.0, 1000.0], [0.0, 0.0], [3.0, 30.0]])  # row 2 twice
    Z[...] = 0.0                                                            # Z is the caller's
    np.testing.assert_array_equal(layer.W.data[2], [5.0, 6.0])


@pytest.mark.parametrize("path_name", PATHS)
@pytest.mark.parametrize("shape", [(7,), (3, 5), (2, 3, 4), (1, 1)], ids=["N", "NxT", "NxTxK", "1x1"])
def test_matches_torch_with_repeated_ids(shape, path_name):
    require(importable("torch"), "PyTorch is not installed (pip install torch==2.13.0); parity tests need it")
    import torch
    rng = np.random.default_rng(len(shape))
    layer = nl.Embedding(5, 3, rng=0)
    twin = torch.nn.Embedding(5, 3).double()
    with torch.no_grad():
        twin.weight.copy_(torch.tensor(layer.W.data))
    ids = rng.integers(0, 5, size=shape)
    ids.flat[0] = ids.flat[-1]                                              # at least one id repeated
    dZ = rng.normal(size=shape + (3,))
    with path(path_name):
        Z = layer.forward(ids)
        for _ in range(2):                                                  # gradients accumulate
            assert layer.backward(dZ) is None
    Zt = twin(torch.tensor(ids))
    Zt.backward(torch.tensor(2 * dZ))
    np.testing.assert_array_equal(Z, Zt.detach().numpy())
    np.testing.assert_allclose(layer.W.grad, twin.weight.grad.numpy(), rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.uint16, np.int64, np.float32, np.float64])
def test_ids_of_any_integer_dtype_and_whole_floats(dtype):
    layer = nl.Embedding(6, 2, rng=0)
    ids = np.array([[5, 0, 3], [3, 3, 1]])
    np.testing.assert_array_equal(layer.forward(ids.astype(dtype)), layer.W.data[ids])
    layer.backward(np.ones((2, 3, 2)))
    np.testing.assert_array_equal(layer.W.grad[:, 0], [1, 1, 0, 3, 0, 1])
    assert layer.forward([1, 2]).shape == (2, 2)                            # a list too


def test_float32_embedding_and_an_empty_batch():
    layer = nl.Embedding(4, 3, rng=0, dtype=np.float32)
    Z = layer.forward(np.array([[1, 2]]))
    assert Z.dtype == np.float32
    layer.backward(np.ones((1, 2, 3)))                                      # float64 δZ into float32 δW
    assert layer.W.grad.dtype == np.float32 and layer.W.grad.sum() == 6
    for shape in [(0,), (0, 5), (2, 0)]:
        layer.zero_grad()
        Z = layer.forward(np.zeros(shape, dtype=np.int64))
        assert Z.shape == shape + (3,)
        assert layer.backward(np.zeros(Z.shape)) is None and not layer.W.grad.any()


BAD_IDS = [
    # (ids, error, message): the first bad position in row-major order
    (np.array([[0, 1], [2, 7]]), ValueError, r"ids must lie in 0…4, got 7 at position \(1, 1\)"),
    (np.array([[0, 9], [5, 1]]), ValueError, r"got 9 at position \(0, 1\)"),
    (np.array([3, -1, 2]), ValueError, r"ids must lie in 0…4, got -1 at position \(1,\)"),
    (np.array([[[0, 1, 2]], [[3, 4, 5]]]), ValueError, r"got 5 at position \(1, 0, 2\)"),
    (np.array([2 ** 63], dtype=np.uint64), ValueError, r"got 9223372036854775808 at position \(0,\)"),
    (np.array([1.0, 2.5]), ValueError, r"ids must be whole numbers, got 2.5 at position \(1,\)"),
    (np.array([[1.0, 0.0], [np.nan, 0.5]]), ValueError, r"whole numbers, got nan at position \(1, 0\)"),
    (np.array([np.inf]), ValueError, r"whole numbers, got inf at position \(0,\)"),
    (np.array([1.0, 1e300]), ValueError, r"ids must lie in 0…4, got 1e\+300 at position \(1,\)"),
    (np.array([1.0, -3.0]), ValueError, r"got -3.0 at position \(1,\)"),
    (np.array([True, False]), TypeError, "ids must be an integer array, got dtype bool"),
    (np.array(["1", "2"]), TypeError, "ids must be an integer array, got dtype <U1"),
    (np.array([1 + 0j]), TypeError, "ids must be an integer array, got dtype complex128"),
    (np.array(3), nl.ShapeError, r"expected an array of ids \(N, …\), got a scalar"),
]


@pytest.mark.parametrize("ids, error, message", BAD_IDS, ids=[str(case[0].dtype) + "-" + str(i)
                                                             for i, case in enumerate(BAD_IDS)])
def test_bad_ids_are_named_by_position_and_change_nothing(ids, error, message):
    layer = nl.Embedding(5, 2, rng=0)
    good = np.array([[1, 1, 4]])
    layer.forward(good)
    layer.backward(np.ones((1, 3, 2)))
    W, grad = layer.W.data.copy(), layer.W.grad.copy()
    with pytest.raises(error, match=r"Embedding\(num_embeddings=5, embedding_dim=2\): .*" + message) as caught:
        layer.forward(ids)
    assert type(caught.value) is error
    np.testing.assert_array_equal(layer.W.data, W)
    np.testing.assert_array_equal(layer.W.grad, grad)
    layer.backward(np.ones((1, 3, 2)))                                      # the cache is still the good forward's
    np.testing.assert_array_equal(layer.W.grad, 2 * grad)


def test_backward_errors():
    layer = nl.Embedding(5, 2, rng=0)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.ones((1, 3, 2)))
    layer.forward(np.array([[1, 2, 3]]))
    with pytest.raises(nl.ShapeError, match=r"backward expected dZ of shape \(1, 3, 2\).*got shape \(1, 3\)"):
        layer.backward(np.ones((1, 3)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.clear_cache().backward(np.ones((1, 3, 2)))


@pytest.mark.parametrize("make, error, message", [
    (lambda: nl.Embedding(0, 3), ValueError, "Embedding: num_embeddings must be a positive integer"),
    (lambda: nl.Embedding(4, 2.0), TypeError, "Embedding: embedding_dim must be a positive integer"),
    (lambda: nl.Embedding(4, 2, init="uniform"), ValueError, "init must be 'normal' or a callable"),
    (lambda: nl.Embedding(4, 2, init=lambda shape, rng: np.zeros((2, 4))), ValueError,
     r"init returned shape \(2, 4\), expected \(4, 2\)"),
])
def test_constructor_arguments(make, error, message):
    with pytest.raises(error, match=message) as caught:
        make()
    assert type(caught.value) is error


def test_init_settings_and_repr():
    layer = nl.Embedding(4, 2, init=lambda shape, rng: np.arange(8.0).reshape(shape))
    np.testing.assert_array_equal(layer.W.data, np.arange(8.0).reshape(4, 2))
    assert np.array_equal(nl.Embedding(4, 2, rng=3).W.data, np.random.default_rng(3).normal(size=(4, 2)))  # N(0, 1)
    small = nl.Embedding(4, 2, dtype=np.float32)
    assert small.settings() == {"num_embeddings": 4, "embedding_dim": 2, "dtype": "float32"}
    assert repr(small) == "Embedding(num_embeddings=4, embedding_dim=2, dtype='float32')"
    assert repr(nl.Embedding(4, 2)) == "Embedding(num_embeddings=4, embedding_dim=2)"
