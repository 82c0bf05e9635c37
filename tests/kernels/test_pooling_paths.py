"""Pooling's fast path (nnlayers/kernels/pooling.py, the batch cut among lanes) equals its reference
path (one call over the whole batch) bit for bit, over random shapes, with ties in the data."""
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnlayers as nl
from nnlayers import kernels
from nnlayers.kernels import pooling, threads


def run(pool, X, dZ):
    Z = pool.forward(X)
    return Z, pool.backward(dZ)


@settings(max_examples=40, deadline=None)
@given(kind=st.sampled_from([nl.MaxPool2D, nl.AvgPool2D]), N=st.integers(1, 5), C=st.integers(1, 3),
       kernel=st.tuples(st.integers(1, 3), st.integers(1, 3)), stride=st.tuples(st.integers(1, 3), st.integers(1, 3)),
       extra=st.tuples(st.integers(0, 4), st.integers(0, 4)), seed=st.integers(0, 2**16))
def test_the_batch_split_equals_the_reference_path(kind, N, C, kernel, stride, extra, seed):
    rng = np.random.default_rng(seed)
    pool = kind(kernel, stride)
    X = rng.integers(0, 3, size=(N, C, kernel[0] + extra[0], kernel[1] + extra[1])).astype(np.float64)   # ties
    dZ = rng.normal(size=pool.output_shape(X.shape))
    with kernels.reference_paths():
        expected = run(pool, X, dZ)
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(pooling, "SPREAD_MIN", 0)
            for lanes in (1, 2, 3):
                threads.set_num_threads(lanes)
                for ours, theirs in zip(run(pool, X, dZ), expected):
                    np.testing.assert_array_equal(ours, theirs)
    finally:
        threads.set_num_threads(threads._default_threads())
