"""Every fast path of Conv2D equals its reference path (the formulas in nnlayers/layers/conv.py).

Over random geometries (batch of 1 or more, odd sizes, kernels 1–5, strides 1–3, padding 0–2), each
layout of the fast "gemm" kernel (exact or row-flat grid, per-sample or chunk-wide products, columns
kept from forward or unfolded again, δX by col2im or as the correlation of δZ), in small or default
chunks, on one lane or two, and Winograd where it fits, gives Z, δX, δW and δb within 1e-12 of the
reference path's, relative to the largest magnitude (float64).
"""
import itertools

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnlayers as nl
from nnlayers import kernels
from nnlayers.kernels import conv_gemm, conv_unfolding, threads, winograd

TOLERANCE = 1e-12


@st.composite
def geometries(draw, kernel=st.integers(1, 5), stride=st.integers(1, 3), padding=st.integers(0, 2)):
    """(N, C, F, H, W, kernel, stride, padding), each a pair where it can be one, the kernel fitting."""
    kh, kw = draw(kernel), draw(kernel)
    sh, sw = draw(stride), draw(stride)
    ph, pw = draw(padding), draw(padding)
    H = draw(st.integers(max(1, kh - 2 * ph), 9))
    W = draw(st.integers(max(1, kw - 2 * pw), 9))
    N, C, F = draw(st.integers(1, 3)), draw(st.integers(1, 6)), draw(st.integers(1, 6))
    return N, C, F, H, W, (kh, kw), (sh, sw), (ph, pw)


def run(conv, X, dZ):
    """(Z, δX, δW, δb) of one forward and backward, from zeroed gradients and fresh layouts."""
    conv.zero_grad()
    conv._layouts.clear()
    Z = conv.forward(X)
    dX = conv.backward(dZ)
    return Z, dX, conv.W.grad.copy(), conv.b.grad.copy()


def assert_close(ours, reference, what):
    for name, a, b in zip(("Z", "dX", "dW", "db"), ours, reference):
        scale = max(np.abs(b).max(), 1e-300)
        assert np.abs(a - b).max() <= TOLERANCE * scale, f"{name} differs ({what})"


def layer_and_data(N, C, F, H, W, kernel, stride, padding, seed, algorithm="gemm"):
    rng = np.random.default_rng(seed)
    conv = nl.Conv2D(C, F, kernel, stride, padding, rng=seed, algorithm=algorithm)
    conv.b.data[...] = rng.normal(size=F)
    X = rng.normal(size=(N, C, H, W))
    dZ = rng.normal(size=conv.output_shape(X.shape))
    return conv, X, dZ


def reference(conv, X, dZ):
    with kernels.reference_paths():
        result = run(conv, X, dZ)
    assert conv._kernel is None
    return result


@settings(max_examples=60, deadline=None)
@given(geometry=geometries(), small_chunks=st.booleans(), seed=st.integers(0, 2**16))
def test_every_gemm_layout_equals_the_reference_path(geometry, small_chunks, seed):
    N, C, F, H, W, kernel, stride, padding = geometry
    conv, X, dZ = layer_and_data(*geometry, seed)
    expected = reference(conv, X, dZ)
    (kh, kw), (ph, pw) = kernel, padding
    can_correlate = stride == (1, 1) and ph <= kh - 1 and pw <= kw - 1
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(conv_unfolding, "SPREAD_MIN", 0)                  # a lone chunk is cut by channels
            if small_chunks:
                patch.setattr(conv_unfolding, "CHUNK_BYTES", 1)              # one sample per chunk
            for row_flat, per_sample, keep, correlate, lanes in itertools.product(
                    (False, True), (False, True), (False, True), (False, can_correlate), (1, 2)):
                patch.setitem(conv_unfolding.FORCED, "row_flat", row_flat)
                patch.setitem(conv_unfolding.FORCED, "per_sample", per_sample)
                patch.setattr(conv_gemm, "KEEP_COLS_BYTES", 1 << 40 if keep else -1)
                patch.setattr(conv_gemm, "correlates_back", lambda layer, c=correlate: c)
                threads.set_num_threads(lanes)
                ours = run(conv, X, dZ)
                layout = conv._layouts["unfolding"]
                assert (layout.row_flat, layout.per_sample) == (row_flat and stride == (1, 1), per_sample)
                assert (conv._cols is not None) == keep
                assert_close(ours, expected, f"row_flat={row_flat}, per_sample={per_sample}, keep={keep}, "
                                             f"correlate={correlate}, lanes={lanes}")
    finally:
        threads.set_num_threads(threads._default_threads())


@settings(max_examples=25, deadline=None)
@given(geometry=geometries(kernel=st.just(3), stride=st.just(1)), small_chunks=st.booleans(),
       seed=st.integers(0, 2**16))
def test_winograd_equals_the_reference_path(geometry, small_chunks, seed):
    conv, X, dZ = layer_and_data(*geometry, seed, algorithm="winograd")
    expected = reference(conv, X, dZ)
    try:
        with pytest.MonkeyPatch.context() as patch:
            if small_chunks:
                patch.setattr(winograd._Winograd, "chunk_bytes", 1)
            for lanes in (1, 2):
                threads.set_num_threads(lanes)
                assert_close(run(conv, X, dZ), expected, f"winograd, lanes={lanes}")
                assert "winograd" in conv._layouts
    finally:
        threads.set_num_threads(threads._default_threads())


@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 1), ((2, 3), (2, 1), (1, 0)), (1, 3, 2), (5, 2, 2)])
def test_the_reference_path_is_the_direct_sum_and_passes_gradcheck(kernel, stride, padding, rng):
    """The oracle itself: Zₙ,f,ho,wo = b_f + Σ_c,i,j W_f,c,i,j Xpadₙ,c,ho·sh+i,wo·sw+j, looped out, and
    gradients that agree with finite differences."""
    conv = nl.Conv2D(2, 3, kernel, stride, padding, rng=0)
    conv.b.data[...] = [0.1, -0.2, 0.3]
    X = rng.normal(size=(2, 2, 6, 5))
    (kh, kw), (sh, sw), (ph, pw) = conv.kernel_size, conv.stride, conv.padding
    Xpad = np.pad(X, ((0, 0), (0, 0), (ph, ph), (pw, pw)))
    with kernels.reference_paths():
        Z = conv.forward(X)
        expected = np.empty(Z.shape)
        for n, f, ho, wo in np.ndindex(*Z.shape):
            window = Xpad[n, :, ho * sh:ho * sh + kh, wo * sw:wo * sw + kw]
            expected[n, f, ho, wo] = conv.b.data[f] + np.sum(conv.W.data[f] * window)
        np.testing.assert_allclose(Z, expected, rtol=1e-12, atol=1e-12)
        report = nl.gradcheck(conv, X)
    assert report.passed


@pytest.mark.parametrize("input_grad", [True, False])
def test_the_reference_path_takes_an_empty_batch_and_other_gradient_dtypes(input_grad, rng):
    """A batch of no samples gives empty outputs and zero gradients; δZ of another dtype (integers,
    half or double precision) gives gradients in the layer's dtype, as on the fast path."""
    conv = nl.Conv2D(3, 4, 3, padding=1, rng=0, dtype=np.float32, input_grad=input_grad)
    with kernels.reference_paths():
        Z = conv.forward(np.zeros((0, 3, 5, 5), np.float32))
        dX = conv.backward(np.zeros(Z.shape, np.float32))
        assert Z.shape == (0, 4, 5, 5) and (dX is None or dX.shape == (0, 3, 5, 5))
        assert not conv.W.grad.any() and not conv.b.grad.any()
        X = rng.normal(size=(2, 3, 6, 5)).astype(np.float32)
        for dz_dtype in (np.int64, np.float16, np.float64):
            Z = conv.forward(X)
            dX = conv.backward(rng.integers(-3, 4, size=Z.shape).astype(dz_dtype))
            assert Z.dtype == conv.W.grad.dtype == conv.b.grad.dtype == np.float32
            assert dX is None or dX.dtype == np.float32


def test_reference_paths_nests_and_restores():
    assert kernels.fast_paths_on()
    with kernels.reference_paths():
        with kernels.reference_paths():
            assert not kernels.fast_paths_on()
        assert not kernels.fast_paths_on()
    assert kernels.fast_paths_on()


def test_backward_takes_the_path_its_forward_took(rng):
    """Switching the fast paths off between a forward and its backward changes nothing: backward
    follows forward (the reference path's cols and the fast kernel's cache never mix)."""
    conv = nl.Conv2D(2, 3, 3, padding=1, rng=0)
    X, dZ = rng.normal(size=(2, 2, 5, 5)), rng.normal(size=(2, 3, 5, 5))
    expected = reference(conv, X, dZ)
    conv.zero_grad()
    conv.forward(X)
    with kernels.reference_paths():
        dX = conv.backward(dZ)
    assert_close((expected[0], dX, conv.W.grad, conv.b.grad), expected, "fast forward, backward inside")
    conv.zero_grad()
    with kernels.reference_paths():
        conv.forward(X)
    dX = conv.backward(dZ)
    assert_close((expected[0], dX, conv.W.grad, conv.b.grad), expected, "reference forward, backward outside")
