"""Conv2D(algorithm="winograd"): F(2×2, 3×3) against the direct formulas, by hand, and its transforms.

PyTorch parity for the same layer lives in test_torch_parity.py; test_conv.py checks that its
outputs are fresh arrays, as for "gemm".
"""
import numpy as np
import pytest

import nnlayers as nl
from nnlayers.kernels import threads as _threads, winograd
from tests.layers.test_conv import reference_conv

# (id, C, F, padding, bias, input shape N×C×H×W): even and odd outputs (Ho odd leaves half a
# tile), every padding the algorithm takes, a 1×1 output and one wider layer.
WINOGRAD_CASES = [
    ("p1-even", 2, 3, 1, True, (2, 2, 6, 6)),
    ("p1-odd-7x9", 3, 2, 1, True, (2, 3, 7, 9)),
    ("p0-no-bias", 2, 2, 0, False, (3, 2, 5, 6)),
    ("p2", 1, 3, 2, True, (2, 1, 4, 5)),
    ("p1x2", 2, 2, (1, 2), True, (1, 2, 5, 4)),
    ("p2x0", 2, 3, (2, 0), True, (2, 2, 3, 7)),
    ("one-output-pixel", 3, 2, 0, True, (2, 3, 3, 3)),
    ("several-per-chunk", 2, 3, 1, True, (7, 2, 5, 6)),
    ("wide", 20, 17, 1, True, (3, 20, 8, 7)),
]
CASE_IDS = [case[0] for case in WINOGRAD_CASES]
CASES = [case[1:] for case in WINOGRAD_CASES]


def winograd_conv(C, F, padding, bias, rng, dtype=np.float64):
    conv = nl.Conv2D(C, F, 3, padding=padding, bias=bias, rng=0, dtype=dtype, algorithm="winograd")
    if bias:
        conv.b.data[...] = rng.normal(size=F)
    return conv


# Not the last two: with more terms per sum, finite differences of Winograd's forward (whose
# transforms round at larger intermediate values than the direct sum) land at 1e-6 to 1e-4 there;
# test_winograd_computes_the_formulas checks those gradients to 1e-12 instead.
@pytest.mark.parametrize("C, F, padding, bias, shape", CASES[:-2], ids=CASE_IDS[:-2])
def test_winograd_passes_gradcheck(C, F, padding, bias, shape, rng):
    conv = winograd_conv(C, F, padding, bias, rng)
    report = nl.gradcheck(conv, rng.normal(size=shape))
    assert report.passed
    assert [c.name for c in report.checks] == ["X", "W"] + (["b"] if bias else [])
    assert max(c.max_rel_error for c in report.checks) < 1e-6


def poisoned_scratch(monkeypatch):
    """Every scratch array comes back full of NaN, so a value read before it is written shows."""
    handed_out = _threads.Scratch.array

    def poisoned(self, name, shape, dtype):
        array = handed_out(self, name, shape, dtype)
        array.fill(np.nan)
        return array
    monkeypatch.setattr(_threads.Scratch, "array", poisoned)


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("chunk_bytes", [1, 13_000, None], ids=["one-sample-chunks", "small-chunks", "default"])
@pytest.mark.parametrize("C, F, padding, bias, shape", CASES, ids=CASE_IDS)
def test_winograd_computes_the_formulas(C, F, padding, bias, shape, chunk_bytes, threads, rng, monkeypatch,
                                        set_threads):
    """Z, δW, δb and δX equal the im2col formulas' to rounding, in chunks of one sample, a few or
    all, on one thread or in two lanes, with every scratch array handed out full of NaN."""
    set_threads(threads)
    if chunk_bytes is not None:
        monkeypatch.setattr(winograd._Winograd, "chunk_bytes", chunk_bytes)
    poisoned_scratch(monkeypatch)
    conv = winograd_conv(C, F, padding, True, rng)                 # reference_conv needs a bias
    X = rng.normal(size=shape)
    Z = conv.forward(X)
    chunks = conv._layouts["winograd"].chunks
    if chunk_bytes == 1:
        assert len(chunks) == shape[0]
    if chunk_bytes == 13_000 and CASE_IDS[CASES.index((C, F, padding, bias, shape))] == "several-per-chunk":
        assert 1 < len(chunks) < shape[0]                          # chunks of more than one sample
    dZ = rng.normal(size=Z.shape)
    dX = conv.backward(dZ)
    for ours, theirs in zip((Z, conv.W.grad, conv.b.grad, dX), reference_conv(conv, X, dZ)):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


def test_winograd_by_hand():
    """A 4×4 ramp X[h, w] = 4h + w + 1 under the Sobel filter, one tile: every output is −8.

    Σᵢⱼ Wᵢⱼ (4(h + i) + (w + j) + 1): each row of W sums to 0, so only the
    column term is left, Σᵢ Wᵢ₀·w + Σᵢ Wᵢ₂·(w + 2) = 4w − 4(w + 2) = −8.
    """
    X = np.arange(1.0, 17.0).reshape(1, 1, 4, 4)
    conv = nl.Conv2D(1, 1, 3, rng=0, algorithm="winograd")
    conv.W.data[...] = [[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]]
    conv.b.data[...] = 0.5
    np.testing.assert_array_equal(conv.forward(X), np.full((1, 1, 2, 2), -7.5))
    # δZ = 1 everywhere: δb = 4; δW_ij = Σ over the 2×2 outputs of X[h + i, w + j]; δX = Σ of the
    # filter taps that reach each pixel (corners 1 tap, edges 2, inside 4).
    dX = conv.backward(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(conv.b.grad, [4.0])
    window_sums = [[X[0, 0, i:i + 2, j:j + 2].sum() for j in range(3)] for i in range(3)]
    np.testing.assert_array_equal(conv.W.grad[0, 0], window_sums)  # [[14 18 22] [30 34 38] [46 50 54]]
    assert window_sums[0] == [14.0, 18.0, 22.0]
    np.testing.assert_array_equal(dX[0, 0], [[1, 1, -1, -1], [3, 3, -3, -3], [3, 3, -3, -3], [1, 1, -1, -1]])


def test_one_dimensional_f23_by_hand():
    """y = Aᵀ[(G g) ⊙ (Bᵀ d)], the module docstring's matrices, gives y_k = Σⱼ gⱼ d_k+j."""
    BT = np.array([[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]])
    AT = np.array([[1, 1, 1, 0], [0, 1, -1, -1]])
    d, g = np.array([1.0, 2.0, 4.0, 8.0]), np.array([1.0, -1.0, 3.0])
    np.testing.assert_array_equal(AT @ ((winograd.G @ g) * (BT @ d)), [1 - 2 + 12, 2 - 4 + 24])


def test_filter_transform_and_its_adjoint(rng):
    W = rng.normal(size=(3, 2, 3, 3))
    U = winograd.filter_tiles(W)
    assert U.shape == (16, 3, 2)
    expected = np.einsum("xi,fcij,yj->xyfc", winograd.G, W, winograd.G).reshape(16, 3, 2)
    np.testing.assert_allclose(U, expected, rtol=0, atol=1e-15 * np.abs(W).max())
    dU = rng.normal(size=U.shape)
    dW = winograd.filter_gradient(dU)                              # ⟨G W Gᵀ, δU⟩ = ⟨W, Gᵀ δU G⟩
    assert dW.shape == W.shape
    np.testing.assert_allclose(np.vdot(U, dU), np.vdot(W, dW), rtol=1e-13)


@pytest.mark.parametrize("C, F, padding, shape", [(32, 32, 1, (4, 32, 10, 9)), (3, 5, 0, (2, 3, 7, 8))])
def test_float32_winograd_stays_float32_and_close_to_float64(C, F, padding, shape, rng):
    X = rng.normal(size=shape)
    exact = nl.Conv2D(C, F, 3, padding=padding, rng=0)
    fast = nl.Conv2D(C, F, 3, padding=padding, rng=0, dtype=np.float32, algorithm="winograd")
    Z, Z32 = exact.forward(X), fast.forward(X.astype(np.float32))
    dZ = rng.normal(size=Z.shape)
    dX, dX32 = exact.backward(dZ), fast.backward(dZ.astype(np.float32))
    for ours, theirs in ((Z32, Z), (dX32, dX), (fast.W.grad, exact.W.grad), (fast.b.grad, exact.b.grad)):
        assert ours.dtype == np.float32
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=2e-6 * np.abs(theirs).max())


def test_algorithm_can_change_between_forward_and_backward(rng):
    """Both algorithms compute the same sums: forward by one and backward by the other agree."""
    X = rng.normal(size=(2, 4, 6, 5))
    gemm = nl.Conv2D(4, 3, 3, padding=1, rng=0)
    mixed = nl.Conv2D(4, 3, 3, padding=1, rng=0, algorithm="winograd")
    Z = gemm.forward(X)
    np.testing.assert_allclose(mixed.forward(X), Z, rtol=1e-12, atol=1e-12)
    mixed.algorithm = "gemm"
    dZ = rng.normal(size=Z.shape)
    np.testing.assert_allclose(mixed.backward(dZ), gemm.backward(dZ), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(mixed.W.grad, gemm.W.grad, rtol=1e-12, atol=1e-12)


def test_non_contiguous_input_and_gradient(rng):
    X = rng.normal(size=(5, 6, 7, 3)).transpose(0, 3, 1, 2)           # N×C×H×W view, not contiguous
    conv = nl.Conv2D(3, 2, 3, padding=1, rng=0, algorithm="winograd")
    reference = nl.Conv2D(3, 2, 3, padding=1, rng=0)
    Z = conv.forward(X)
    np.testing.assert_allclose(Z, reference.forward(np.ascontiguousarray(X)), rtol=1e-12, atol=1e-12)
    dZ = rng.normal(size=Z.shape[::-1]).T                             # a transposed view again
    np.testing.assert_allclose(conv.backward(dZ), reference.backward(np.ascontiguousarray(dZ)),
                               rtol=1e-12, atol=1e-12)


def test_input_grad_false_skips_dx(rng):
    conv = nl.Conv2D(2, 3, 3, padding=1, rng=0, input_grad=False, algorithm="winograd")
    X = rng.normal(size=(2, 2, 4, 4))
    assert conv.backward(conv.forward(X)) is None
    assert [c.name for c in nl.gradcheck(conv, X).checks] == ["W", "b"]


def test_settings_and_repr_name_the_algorithm():
    conv = nl.Conv2D(3, 4, 3, padding=1, algorithm="winograd")
    assert conv.settings()["algorithm"] == "winograd"
    assert repr(conv) == "Conv2D(3, 4, kernel_size=3, stride=1, padding=1, algorithm='winograd')"
    assert repr(type(conv)(**conv.settings())) == repr(conv)
    assert "algorithm" not in repr(nl.Conv2D(3, 4, 3))


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(kernel_size=5), ValueError, "needs kernel_size 3, stride 1 and padding ≤ 2, got kernel_size=5"),
    (dict(kernel_size=3, stride=2), ValueError, "stride=2"),
    (dict(kernel_size=3, padding=3), ValueError, "padding=3"),
    (dict(kernel_size=(3, 1)), ValueError, "kernel_size=(3, 1)"),
])
def test_winograd_refuses_other_geometries(kwargs, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)")):
        nl.Conv2D(2, 2, algorithm="winograd", **kwargs)


@pytest.mark.parametrize("algorithm, error", [("fast", ValueError), ("Winograd", ValueError), (1, TypeError),
                                              (None, TypeError)])
def test_bad_algorithm_names(algorithm, error):
    with pytest.raises(error, match="algorithm must be 'gemm' or 'winograd'"):
        nl.Conv2D(2, 2, 3, algorithm=algorithm)
    conv = nl.Conv2D(2, 2, 3)
    conv.algorithm = algorithm                                        # set later: refused at forward
    with pytest.raises(error, match="algorithm must be"):
        conv.forward(np.zeros((1, 2, 3, 3)))


@pytest.mark.parametrize("dz_dtype", [np.int64, np.float16, np.float64])
def test_gradient_of_another_dtype_is_taken_in_the_layer_dtype(dz_dtype, rng):
    """δZ of another dtype (integers, half or double precision) gives float32 gradients, as "gemm" does."""
    X = rng.normal(size=(2, 3, 6, 5)).astype(np.float32)
    dZ = rng.integers(-3, 4, size=(2, 4, 6, 5)).astype(dz_dtype)
    results = []
    for algorithm in ("gemm", "winograd"):
        conv = nl.Conv2D(3, 4, 3, padding=1, rng=0, dtype=np.float32, algorithm=algorithm)
        conv.forward(X)
        dX = conv.backward(dZ)
        assert dX.dtype == conv.W.grad.dtype == np.float32
        results.append((dX, conv.W.grad))
    for ours, theirs in zip(*results):
        np.testing.assert_allclose(ours, theirs, rtol=0, atol=1e-5 * np.abs(theirs).max())


def test_batch_size_may_change_between_calls(rng):
    conv = nl.Conv2D(3, 2, 3, padding=1, rng=0, algorithm="winograd")
    reference = nl.Conv2D(3, 2, 3, padding=1, rng=0)
    for N in (4, 1, 6):
        X = rng.normal(size=(N, 3, 5, 6))
        Z = conv.forward(X)
        np.testing.assert_allclose(Z, reference.forward(X), rtol=1e-12, atol=1e-12)
        dZ = rng.normal(size=Z.shape)
        np.testing.assert_allclose(conv.backward(dZ), reference.backward(dZ), rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(conv.W.grad, reference.W.grad, rtol=1e-12, atol=1e-12)


def test_switching_to_winograd_after_a_forward_that_kept_columns(rng):
    """A small layer in training mode keeps its im2col columns from forward; backward by Winograd
    must not use them, and a later "gemm" forward must not find stale ones."""
    X = rng.normal(size=(3, 2, 6, 6))
    conv = nl.Conv2D(2, 3, 3, padding=1, rng=0)
    reference = nl.Conv2D(2, 3, 3, padding=1, rng=0)
    Z = conv.forward(X)
    assert conv._cols is not None                                     # columns kept for backward
    conv.algorithm = "winograd"
    dZ = rng.normal(size=Z.shape)
    reference.forward(X)
    np.testing.assert_allclose(conv.backward(dZ), reference.backward(dZ), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.W.grad, reference.W.grad, rtol=1e-12, atol=1e-12)
    conv.forward(2 * X)
    assert conv._cols is None
    conv.algorithm = "gemm"
    X2 = rng.normal(size=X.shape)
    np.testing.assert_allclose(conv.forward(X2), reference.forward(X2), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(conv.backward(dZ), reference.backward(dZ), rtol=1e-12, atol=1e-12)


def test_bad_algorithm_is_refused_before_any_gradient_is_added(rng):
    conv = nl.Conv2D(2, 2, 3, padding=1, rng=0)
    Z = conv.forward(rng.normal(size=(1, 2, 4, 4)))
    conv.algorithm = "fastest"
    with pytest.raises(ValueError, match="algorithm must be"):
        conv.backward(np.ones_like(Z))
    assert not conv.b.grad.any() and not conv.W.grad.any()
