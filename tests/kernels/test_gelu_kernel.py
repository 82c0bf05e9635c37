"""GELU's float32 kernel (nnlayers.kernels.gelu) against the reference path.

The kernel's Z = X Φ(X) and GELU′ = Φ(X) + X φ(X) equal the reference's (computed in float64 by
``GELU.forward`` inside ``reference_paths()``, then rounded to float32) within float32 rounding: at most
5e-7 · max(1, |x|) apart (about 2.6e-7 at worst, measured; the erf approximation alone is within 4.2e-7),
over a dense grid, both sides of |x| = 4√2 (where the kernel clamps x/√2 to ±4), tiny and huge values,
±0 and the non-finite values (NaN in gives NaN out, ±inf as the reference: GELU(inf) = inf, NaN where the
formulas give ∞·0, as PyTorch's float64 GELU does). Sizes around the chunk length, views, empty and 0-d
arrays; the layer takes the kernel in float32 only, and not inside ``reference_paths()``.
"""
import math

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.kernels import gelu as kernel
from nnlayers.kernels.gelu import CHUNK, erf_float32, gelu_float32

TOLERANCE = 5e-7          # × max(1, |x|): about twice the worst measured
BOUNDARY = np.float32(4 * math.sqrt(2))      # x/√2 = 4: beyond it the kernel's erf is clamped


def reference(X):
    """(Z, GELU′) by the reference path in float64, for float32 ``X``."""
    layer = nl.GELU()
    with nl.kernels.reference_paths(), np.errstate(invalid="ignore", over="ignore"):
        Z = layer.forward(np.asarray(X, dtype=np.float64))
    return Z, layer._D


def assert_like_reference(X):
    """Kernel's Z and GELU′ within TOLERANCE · max(1, |x|) of the reference's, NaN exactly where it has NaN."""
    with np.errstate(invalid="ignore", over="ignore"):
        Z, D = gelu_float32(X)
    Zr, Dr = reference(X)
    assert Z.dtype == D.dtype == np.float32 and Z.shape == D.shape == np.shape(X)
    scale = np.maximum(1.0, np.abs(np.asarray(X, dtype=np.float64)))
    for ours, theirs, what, allowed in ((Z, Zr, "Z", TOLERANCE * scale), (D, Dr, "GELU′", TOLERANCE)):
        np.testing.assert_array_equal(np.isnan(ours), np.isnan(theirs), err_msg=f"{what}: NaN where the reference "
                                                                                  "has none, or the reverse")
        finite = np.isfinite(theirs)
        np.testing.assert_array_equal(ours[~finite & ~np.isnan(theirs)], theirs[~finite & ~np.isnan(theirs)])
        allowed = np.broadcast_to(allowed, finite.shape)[finite]
        error = np.abs(ours[finite] - theirs[finite].astype(np.float32)) / allowed
        assert error.size == 0 or error.max() <= 1, (
            f"{what}: {error.max():.2f} × the tolerance at x = {np.asarray(X)[finite].ravel()[error.argmax()]}")
    return Z, D


def around(value, ulps):
    """The float32 numbers within ``ulps`` units of the last place of ``value`` (> 0)."""
    return (np.float32(value).view(np.int32) + np.arange(-ulps, ulps + 1, dtype=np.int32)).view(np.float32)


def test_dense_grid_tails_and_magnitudes():
    magnitudes = np.geomspace(1e-40, 3e38, 4001)
    X = np.concatenate([np.linspace(-12, 12, 240001), magnitudes, -magnitudes, around(BOUNDARY, 64),
                        -around(BOUNDARY, 64), around(1.0, 8), -around(1.0, 8)]).astype(np.float32)
    assert_like_reference(X)


def test_the_clamp_boundary_is_continuous():
    """Either side of x = ±4√2 the kernel's values step by no more than a few float32 units."""
    for side in (1, -1):
        X = side * around(BOUNDARY, 4)
        Z, D = assert_like_reference(X)
        assert np.abs(np.diff(Z.astype(np.float64))).max() < 1e-6 and np.abs(np.diff(D.astype(np.float64))).max() < 1e-6


def test_special_values():
    X = np.array([0.0, -0.0, 1e-45, -1e-45, np.finfo(np.float32).tiny, 3e38, -3e38, np.inf, -np.inf, np.nan],
                 dtype=np.float32)
    Z, D = assert_like_reference(X)
    np.testing.assert_array_equal(Z[:2], [0.0, -0.0])
    assert not np.signbit(Z[0]) and np.signbit(Z[1])                 # −0 stays −0, as x Φ(x) in the reference
    np.testing.assert_array_equal(D[:4], 0.5)                        # GELU′(0) = Φ(0) = ½
    np.testing.assert_array_equal([Z[5], D[5], Z[6], D[6]], np.array([3e38, 1.0, -0.0, 0.0], dtype=np.float32))
    assert Z[7] == np.inf                                            # inf · Φ(inf) = inf
    assert np.isnan(D[7]) and np.isnan(Z[8]) and np.isnan(D[8])      # ∞ · 0 in x φ(x) and in −∞ · Φ(−∞)
    assert np.isnan(Z[9]) and np.isnan(D[9])                         # NaN in, NaN out


@pytest.mark.parametrize("size", [1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK + 5])
def test_sizes_around_the_chunk_length(size):
    X = np.random.default_rng(size).normal(scale=3, size=size).astype(np.float32)
    Z, D = assert_like_reference(X)
    # each chunk computes its own numbers only: the same values as one element at a time would
    for i in sorted({0, size // 2, CHUNK - 1, CHUNK, size - 1} & set(range(size))):
        z, d = gelu_float32(X[i:i + 1])
        assert (z[0], d[0]) == (Z[i], D[i])


def test_shapes_views_empty_and_zero_d():
    rng = np.random.default_rng(0)
    X = rng.normal(scale=3, size=(7, 9, 11)).astype(np.float32)
    for view in (X[:, ::2], X.transpose(2, 0, 1), X[..., 3], X[::-1, :, 1:]):
        assert not view.flags.c_contiguous
        Z, D = assert_like_reference(view)
        contiguous = gelu_float32(np.ascontiguousarray(view))
        np.testing.assert_array_equal(Z, contiguous[0])
        np.testing.assert_array_equal(D, contiguous[1])
    before = X.copy()
    gelu_float32(X)
    np.testing.assert_array_equal(X, before)                         # the input is not written
    for empty in (np.zeros(0, np.float32), np.zeros((3, 0, 2), np.float32)):
        Z, D = gelu_float32(empty)
        assert Z.shape == D.shape == empty.shape and Z.dtype == np.float32
    Z, D = assert_like_reference(np.array(1.5, dtype=np.float32))
    assert Z.shape == () and Z == pytest.approx(1.5 * 0.5 * (1 + math.erf(1.5 / math.sqrt(2))), rel=1e-6)


def test_erf_float32_against_math_erf():
    X = np.concatenate([np.linspace(-6, 6, 120001), np.geomspace(1e-40, 1e30, 2001), -np.geomspace(1e-40, 1e30, 2001),
                        around(4.0, 8), -around(4.0, 8)]).astype(np.float32)
    ours = erf_float32(X)
    assert ours.dtype == np.float32 and ours.shape == X.shape
    exact = np.array([math.erf(float(x)) for x in X])
    assert np.abs(ours - exact).max() <= 5e-7
    np.testing.assert_array_equal(erf_float32(-X), -ours)            # odd
    # the rational function overshoots ±1 by up to two float32 units in 3.65 < |u| < 4 (and is exactly ±1 at 4)
    assert np.abs(ours).max() <= 1 + 2 * np.finfo(np.float32).eps
    special = erf_float32(np.array([0.0, -0.0, np.inf, -np.inf, np.nan], dtype=np.float32))
    np.testing.assert_array_equal(special[:4], [0.0, -0.0, 1.0, -1.0])
    assert np.signbit(special[1]) and np.isnan(special[4])
    sizes = np.random.default_rng(1).normal(size=2 * CHUNK + 4).astype(np.float32)
    np.testing.assert_array_equal(erf_float32(sizes.reshape(3, -1)).ravel(), erf_float32(sizes))
    assert erf_float32(np.zeros((0, 4), np.float32)).shape == (0, 4)
    assert erf_float32(np.float32(0.5)).shape == ()


# -- the dispatch in GELU.forward ------------------------------------------------------------------------

@pytest.fixture
def kernel_calls(monkeypatch):
    """The arrays GELU.forward hands to the kernel."""
    from nnlayers.layers import activations
    calls = []

    def spy(X):
        calls.append(X)
        return kernel.gelu_float32(X)
    monkeypatch.setattr(activations, "gelu_float32", spy)
    return calls


def test_the_layer_takes_the_kernel_in_float32_only(kernel_calls):
    X = np.random.default_rng(2).normal(scale=3, size=(4, 6, 5)).astype(np.float32)
    dZ = np.random.default_rng(3).normal(size=X.shape).astype(np.float32)
    layer = nl.GELU()
    Z, dX = layer.forward(X), layer.backward(dZ)
    assert len(kernel_calls) == 1 and kernel_calls[0] is X
    assert Z.dtype == dX.dtype == np.float32
    Zk, Dk = gelu_float32(X)
    np.testing.assert_array_equal(Z, Zk)
    np.testing.assert_array_equal(dX, Dk * dZ)

    with nl.kernels.reference_paths():                               # the readable path in float32
        reference_layer = nl.GELU()
        Zr, dXr = reference_layer.forward(X), reference_layer.backward(dZ)
    assert len(kernel_calls) == 1 and Zr.dtype == dXr.dtype == np.float32
    scale = np.maximum(1, np.abs(X))
    assert (np.abs(Z - Zr) / scale).max() <= 2 * TOLERANCE
    assert (np.abs(dX - dXr) / np.maximum(1, np.abs(dZ))).max() <= 2 * TOLERANCE

    X64 = X.astype(np.float64)
    Z64 = nl.GELU().forward(X64)                                     # float64 never takes the kernel
    assert len(kernel_calls) == 1 and Z64.dtype == np.float64
    with nl.kernels.reference_paths():
        np.testing.assert_array_equal(nl.GELU().forward(X64), Z64)
    assert (np.abs(Z - Z64) / scale).max() <= TOLERANCE

    nl.GELU().forward(X[:, ::2])                                     # a view goes to the kernel too
    assert len(kernel_calls) == 2
    nl.GELU().forward(np.array([[1, -2]]))                           # integers are read as float64
    assert len(kernel_calls) == 2


def test_the_kernel_path_trains_as_the_reference(kernel_calls):
    """Inside a network in float32, the two paths give the same loss and gradients to float32 rounding."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(8, 5)).astype(np.float32)

    def run():
        model = nl.Sequential(nl.Linear(5, 7, rng=0, dtype=np.float32), nl.GELU(),
                              nl.Linear(7, 3, rng=1, dtype=np.float32))
        Z = model.forward(X)
        dX = model.backward(np.ones_like(Z))
        return Z, dX, [p.grad for p in model.parameters()]

    fast = run()
    assert len(kernel_calls) == 1
    with nl.kernels.reference_paths():
        slow = run()
    assert len(kernel_calls) == 1
    for ours, theirs in zip((fast[0], fast[1], *fast[2]), (slow[0], slow[1], *slow[2])):
        np.testing.assert_allclose(ours, theirs, rtol=1e-5, atol=1e-6)
