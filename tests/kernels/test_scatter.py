"""Embedding's δW kernel (nnlayers/kernels/scatter.py: rows grouped by id, each group summed once) equals
its reference path, ``np.add.at(target, ids, rows)``: within 1e-12 relative to the largest magnitude in
float64 (the sums are taken in another order), float32 within its rounding, rows no id picks untouched
bit for bit; and Embedding takes it on numpy arrays outside ``reference_paths()``."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnlayers as nl
from nnlayers import kernels
from nnlayers.kernels.scatter import scatter_add_rows


def both(target, ids, rows):
    """(kernel's result, np.add.at's result), each added into a copy of ``target``."""
    ours, reference = target.copy(), target.copy()
    scatter_add_rows(ours, ids, rows)
    np.add.at(reference, ids, rows)
    return ours, reference


def assert_close(ours, reference, tolerance):
    scale = max(float(np.abs(reference).max(initial=0.0)), 1e-300)
    assert float(np.abs(ours - reference).max(initial=0.0)) <= tolerance * scale


@settings(max_examples=40, deadline=None)
@given(V=st.integers(1, 12), M=st.integers(0, 60), D=st.integers(1, 5), seed=st.integers(0, 2**16),
       spread=st.sampled_from(["few", "all", "one"]))
def test_the_grouped_sums_equal_add_at(V, M, D, seed, spread):
    rng = np.random.default_rng(seed)
    high = {"few": min(V, 3), "all": V, "one": 1}[spread]                  # many repeats, any, one id only
    ids = rng.integers(0, high, size=M)
    rows = rng.normal(size=(M, D))
    target = rng.normal(size=(V, D))                                        # sums add to what is there
    ours, reference = both(target, ids, rows)
    assert_close(ours, reference, 1e-12)
    untouched = np.setdiff1d(np.arange(V), ids)
    np.testing.assert_array_equal(ours[untouched], target[untouched])


def test_float32_strided_rows_and_no_ids():
    rng = np.random.default_rng(0)
    ids = rng.integers(0, 4, size=50)
    rows = rng.normal(size=(3, 50)).astype(np.float32).T                   # a transposed view, 50×3
    ours, reference = both(np.zeros((4, 3), dtype=np.float32), ids, rows)
    assert ours.dtype == np.float32
    assert_close(ours, reference, 1e-6)
    target = rng.normal(size=(4, 3))
    ours, _ = both(target, np.zeros(0, dtype=np.int64), np.zeros((0, 3)))
    np.testing.assert_array_equal(ours, target)


@pytest.mark.parametrize("reference", [False, True])
def test_embedding_takes_the_kernel_on_numpy_arrays(monkeypatch, reference):
    calls = []
    monkeypatch.setattr("nnlayers.layers.embedding.scatter_add_rows",
                        lambda *args: (calls.append(args), scatter_add_rows(*args)))
    layer = nl.Embedding(5, 2, rng=0)
    layer.forward(np.array([[1, 1, 3]]))
    if reference:
        with kernels.reference_paths():
            layer.backward(np.ones((1, 3, 2)))
    else:
        layer.backward(np.ones((1, 3, 2)))
    assert len(calls) == (0 if reference else 1)
    np.testing.assert_array_equal(layer.W.grad[:, 0], [0, 2, 0, 1, 0])
