"""Conv2D, im2col and col2im: finite differences, hand-computed values, shapes and errors.

PyTorch parity for the same layer lives in test_torch_parity.py.
"""
import numpy as np
import pytest

import nnlayers as nl
from nnlayers.layers.conv import conv_output_size

# (id, in_channels, out_channels, kernel, stride, padding, bias, input shape N×C×H×W)
CONV_CASES = [
    ("k1-s1-p0", 2, 3, 1, 1, 0, True, (2, 2, 3, 4)),
    ("k2-s1-p0", 3, 2, 2, 1, 0, True, (2, 3, 4, 5)),
    ("k3-s1-p1-odd-7x9", 2, 2, 3, 1, 1, True, (1, 2, 7, 9)),
    ("k3-s2-p1", 2, 3, 3, 2, 1, True, (2, 2, 5, 6)),
    ("k3-s3-p2", 1, 2, 3, 3, 2, True, (2, 1, 7, 5)),
    ("k2x3-s2x1-p0x2-nonsquare", 2, 2, (2, 3), (2, 1), (0, 2), True, (2, 2, 5, 4)),
    ("k3x2-s1-p2x0", 2, 1, (3, 2), 1, (2, 0), False, (1, 2, 3, 4)),
    ("k3-s1-p0-no-bias-batch1", 3, 2, 3, 1, 0, False, (1, 3, 4, 4)),
    ("k1-s3-p0-strided-1x1", 2, 2, 1, 3, 0, True, (2, 2, 7, 7)),
    ("kernel-equals-input", 2, 3, (3, 4), 1, 0, True, (2, 2, 3, 4)),
]


@pytest.mark.parametrize("C, F, kernel, stride, padding, bias, shape",
                         [case[1:] for case in CONV_CASES], ids=[case[0] for case in CONV_CASES])
def test_conv2d_passes_gradcheck(C, F, kernel, stride, padding, bias, shape, rng):
    conv = nl.Conv2D(C, F, kernel, stride, padding, bias, rng=0)
    for parameter in conv.parameters():            # a non-zero bias, so its gradient matters
        parameter.data += rng.normal(scale=0.1, size=parameter.shape)
    report = nl.gradcheck(conv, rng.normal(size=shape))
    assert report.passed
    assert [c.name for c in report.checks] == ["X", "W"] + (["b"] if bias else [])
    assert max(c.max_rel_error for c in report.checks) < 1e-6


def test_conv2d_input_grad_false_skips_dx_but_not_dw(rng):
    X = rng.normal(size=(2, 2, 5, 5))
    conv = nl.Conv2D(2, 3, 3, padding=1, rng=0, input_grad=False)
    assert conv.backward(conv.forward(X)) is None  # δZ = Z
    report = nl.gradcheck(conv, X)                 # δX skipped, W and b still checked
    assert [c.name for c in report.checks] == ["W", "b"]
    assert "input_grad=False" in repr(conv)
    model = nl.Sequential(conv, nl.ReLU(), nl.Flatten(), nl.Linear(75, 2, rng=1))
    model.forward(X)
    assert model.backward(np.ones((2, 2))) is None  # the first layer may skip δX


@pytest.mark.parametrize("padding", [0, 1, (2, 0)])
def test_input_grad_false_gives_the_same_parameter_gradients(padding, rng):
    X = rng.normal(size=(3, 2, 6, 7))
    full, first = (nl.Conv2D(2, 3, (3, 2), padding=padding, rng=0, input_grad=g) for g in (True, False))
    full.b.data[...] = first.b.data[...] = [0.1, 0.2, -0.3]
    Z = full.forward(X)
    np.testing.assert_array_equal(first.forward(X), Z)
    dZ = rng.normal(size=Z.shape)
    full.backward(dZ)
    first.backward(dZ)
    np.testing.assert_array_equal(first.W.grad, full.W.grad)
    np.testing.assert_array_equal(first.b.grad, full.b.grad)
    first.input_grad = True                         # switched on after forward: δX all the same
    np.testing.assert_array_equal(first.backward(dZ), full.backward(dZ))


def reference_conv(conv, X, dZ):
    """Z, δW, δb, δX from the public im2col/col2im, one sample at a time (the module docstring's formulas)."""
    F, K = conv.out_channels, conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    cols = nl.im2col(X, conv.kernel_size, conv.stride, conv.padding)          # N×K×P
    W2 = conv.W.data.reshape(F, K)
    Z = (W2 @ cols + conv.b.data[:, None]).reshape(dZ.shape)                  # Zₙ = W₂ colsₙ + b
    dZ2 = dZ.reshape(dZ.shape[0], F, -1)
    dW = sum(dZ2[n] @ cols[n].T for n in range(len(X))).reshape(conv.W.shape)   # Σₙ δZₙ colsₙᵀ
    db = dZ.sum(axis=(0, 2, 3))
    dX = nl.col2im(W2.T @ dZ2, X.shape, conv.kernel_size, conv.stride, conv.padding)
    return Z, dW, db, dX


@pytest.mark.parametrize("algorithm", ["gemm", "winograd"])
def test_outputs_are_fresh_arrays_not_work_buffers(algorithm, rng):
    """Work arrays are reused between calls; what forward and backward return never is."""
    conv = nl.Conv2D(2, 3, 3, padding=1, rng=0, algorithm=algorithm)
    X = rng.normal(size=(2, 2, 5, 5))
    Z1 = conv.forward(X)
    dX1 = conv.backward(np.ones_like(Z1))
    saved = Z1.copy(), dX1.copy()
    Z2 = conv.forward(2 * X)
    dX2 = conv.backward(3 * np.ones_like(Z1))
    np.testing.assert_array_equal(Z1, saved[0])
    np.testing.assert_array_equal(dX1, saved[1])
    assert not np.shares_memory(Z1, Z2) and not np.shares_memory(dX1, dX2)


def test_conv2d_by_hand():
    """1×1×3×3 input, one 2×2 filter: every number below is worked out in the comments."""
    X = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)       # [[1 2 3] [4 5 6] [7 8 9]]
    conv = nl.Conv2D(1, 1, 2, rng=0)
    conv.W.data[...] = [[[[1.0, 2.0], [3.0, 4.0]]]]
    conv.b.data[...] = 0.5
    Z = conv.forward(X)
    # Z₀₀ = 1·1 + 2·2 + 3·4 + 4·5 = 37, Z₀₁ = 1·2 + 2·3 + 3·5 + 4·6 = 47,
    # Z₁₀ = 1·4 + 2·5 + 3·7 + 4·8 = 67, Z₁₁ = 1·5 + 2·6 + 3·8 + 4·9 = 77; each + b = 0.5
    np.testing.assert_array_equal(Z, [[[[37.5, 47.5], [67.5, 77.5]]]])
    dX = conv.backward(np.ones((1, 1, 2, 2)))
    # δW_ij = Σ over the 4 windows of the pixel under W_ij: [[1+2+4+5, 2+3+5+6], [4+5+7+8, 5+6+8+9]]
    np.testing.assert_array_equal(conv.W.grad, [[[[12.0, 16.0], [24.0, 28.0]]]])
    np.testing.assert_array_equal(conv.b.grad, [4.0])   # δb = Σ δZ
    # δX = W added at each window's place: the centre pixel is under all four weights
    np.testing.assert_array_equal(dX, [[[[1.0, 3.0, 2.0], [4.0, 10.0, 6.0], [3.0, 7.0, 4.0]]]])


def test_conv2d_stride_and_padding_by_hand():
    X = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    strided = nl.Conv2D(1, 1, 1, stride=2, bias=False, rng=0)
    strided.W.data[...] = 1.0
    np.testing.assert_array_equal(strided.forward(X), [[[[1.0, 3.0], [7.0, 9.0]]]])   # X[::2, ::2]
    np.testing.assert_array_equal(strided.backward(np.ones((1, 1, 2, 2))),
                                  [[[[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [1.0, 0.0, 1.0]]]])
    padded = nl.Conv2D(1, 1, 1, padding=(1, 2), bias=False, rng=0)
    padded.W.data[...] = 2.0
    Z = padded.forward(X[:, :, :2, :2])                 # [[1 2] [4 5]] inside a zero border
    assert Z.shape == (1, 1, 4, 6)
    expected = np.zeros((4, 6))
    expected[1:3, 2:4] = [[2.0, 4.0], [8.0, 10.0]]
    np.testing.assert_array_equal(Z[0, 0], expected)


def test_im2col_by_hand():
    X = np.arange(1.0, 10.0).reshape(1, 1, 3, 3)
    cols = nl.im2col(X, 2)
    # rows: kernel offsets (0,0) (0,1) (1,0) (1,1); columns: the 4 windows in row-major order
    np.testing.assert_array_equal(cols[0], [[1, 2, 4, 5], [2, 3, 5, 6], [4, 5, 7, 8], [5, 6, 8, 9]])
    np.testing.assert_array_equal(nl.col2im(np.ones_like(cols), X.shape, 2),
                                  [[[[1, 2, 1], [2, 4, 2], [1, 2, 1]]]])   # windows covering each pixel


@pytest.mark.parametrize("kernel, stride, padding", [(3, 1, 1), (2, 2, 0), ((2, 3), (1, 2), (1, 0)), (3, 2, 2),
                                                     (1, 3, 0), (3, 1, 0)])
def test_col2im_is_the_adjoint_of_im2col(kernel, stride, padding, rng):
    """⟨im2col(X), Y⟩ = ⟨X, col2im(Y)⟩ for every X and Y: col2im is im2col's transpose."""
    X = rng.normal(size=(2, 3, 7, 6))
    cols = nl.im2col(X, kernel, stride, padding)
    Y = rng.normal(size=cols.shape)
    assert np.vdot(cols, Y) == pytest.approx(np.vdot(X, nl.col2im(Y, X.shape, kernel, stride, padding)), rel=1e-12)


@pytest.mark.parametrize("stride, padding", [(1, 1), (2, 0), ((2, 1), (0, 2))])
def test_conv2d_is_a_matrix_product_of_im2col(stride, padding, rng):
    X = rng.normal(size=(2, 3, 6, 7))
    conv = nl.Conv2D(3, 4, (3, 2), stride, padding, bias=False, rng=0)
    Z = conv.forward(X)
    cols = nl.im2col(X, (3, 2), stride, padding)
    np.testing.assert_allclose(Z.reshape(2, 4, -1), conv.W.data.reshape(4, -1) @ cols, rtol=1e-12, atol=1e-12)


def test_conv2d_against_a_direct_sum(rng):
    """Zₙ,f,ho,wo = b_f + Σ_c,i,j W_f,c,i,j Xpadₙ,c,ho·sh+i,wo·sw+j, looped out in full."""
    X = rng.normal(size=(2, 2, 5, 6))
    conv = nl.Conv2D(2, 3, (2, 3), stride=(2, 1), padding=1, rng=0)
    conv.b.data[...] = [0.1, -0.2, 0.3]
    Z = conv.forward(X)
    Xpad = np.pad(X, ((0, 0), (0, 0), (1, 1), (1, 1)))
    expected = np.empty(Z.shape)
    for n, f, ho, wo in np.ndindex(*Z.shape):
        window = Xpad[n, :, 2 * ho:2 * ho + 2, wo:wo + 3]
        expected[n, f, ho, wo] = conv.b.data[f] + np.sum(conv.W.data[f] * window)
    np.testing.assert_allclose(Z, expected, rtol=1e-12, atol=1e-12)


def test_output_size_follows_the_floor_rule():
    assert conv_output_size(7, 3, 2, 0) == 3           # ⌊(7 − 3)/2⌋ + 1
    assert conv_output_size(8, 3, 2, 1) == 4           # ⌊(8 + 2 − 3)/2⌋ + 1
    conv = nl.Conv2D(1, 2, (3, 2), stride=(2, 3), padding=(1, 0), rng=0)
    assert conv.forward(np.zeros((3, 1, 8, 9))).shape == (3, 2, 4, 3) == conv.output_shape((3, 1, 8, 9))


def test_gradients_accumulate_until_zero_grad(rng):
    conv = nl.Conv2D(2, 2, 3, padding=1, rng=0)
    X, dZ = rng.normal(size=(2, 2, 4, 4)), rng.normal(size=(2, 2, 4, 4))
    conv.forward(X)
    conv.backward(dZ)
    once = conv.W.grad.copy(), conv.b.grad.copy()
    conv.backward(dZ)
    np.testing.assert_allclose(conv.W.grad, 2 * once[0], rtol=1e-14)
    np.testing.assert_allclose(conv.b.grad, 2 * once[1], rtol=1e-14)
    conv.zero_grad()
    assert not conv.W.grad.any() and not conv.b.grad.any()


def test_backward_returns_a_fresh_array_and_leaves_input_alone(rng):
    conv = nl.Conv2D(1, 1, 1, rng=0)
    X = rng.normal(size=(1, 1, 2, 2))
    saved = X.copy()
    Z = conv.forward(X)
    dX = conv.backward(np.ones_like(Z))
    assert not np.shares_memory(dX, X) and not np.shares_memory(Z, X)
    np.testing.assert_array_equal(X, saved)


@pytest.mark.parametrize("stride", [1, 2])
def test_float32_stays_float32(stride, rng):
    conv = nl.Conv2D(2, 3, 3, stride=stride, padding=1, rng=0, dtype=np.float32)
    X = rng.normal(size=(2, 2, 6, 6)).astype(np.float32)
    Z = conv.forward(X)
    dX = conv.backward(np.ones(Z.shape, dtype=np.float32))
    assert Z.dtype == dX.dtype == conv.W.grad.dtype == conv.b.grad.dtype == np.float32
    reference = nl.Conv2D(2, 3, 3, stride=stride, padding=1, rng=0)   # float64, same seed
    np.testing.assert_allclose(Z, reference.forward(X.astype(np.float64)), rtol=1e-4, atol=1e-5)


def test_integer_input_is_converted(rng):
    conv = nl.Conv2D(1, 1, 2, rng=0)
    X = rng.integers(0, 255, size=(1, 1, 3, 3), dtype=np.uint8)
    np.testing.assert_allclose(conv.forward(X), conv.forward(X.astype(np.float64)), rtol=1e-15)


def test_initialisation_he_by_default_with_conv_fans():
    seen = {}

    def spy(shape, fan_in, fan_out, rng):
        seen.update(shape=shape, fan_in=fan_in, fan_out=fan_out)
        return np.zeros(shape)

    nl.Conv2D(3, 5, (2, 4), init=spy)
    assert seen == {"shape": (5, 3, 2, 4), "fan_in": 3 * 2 * 4, "fan_out": 5 * 2 * 4}
    conv = nl.Conv2D(16, 64, 3, rng=0)                  # He: std √(2 / fan_in), fan_in = 16·3·3
    assert conv.W.data.std() == pytest.approx(np.sqrt(2 / 144), rel=0.03)
    assert not conv.b.data.any()
    np.testing.assert_array_equal(nl.Conv2D(2, 2, 3, rng=7).W.data, nl.Conv2D(2, 2, 3, rng=7).W.data)
    xavier = nl.Conv2D(16, 64, 3, init="xavier", rng=0).W.data   # U(±√(6/(fan_in + fan_out)))
    assert np.abs(xavier).max() <= np.sqrt(6 / (144 + 576))


def test_parameters_and_repr():
    conv = nl.Conv2D(3, 8, (3, 5), stride=2, padding=(1, 2), bias=False, rng=0)
    assert [name for name, _ in conv.named_parameters()] == ["W"]
    assert conv.num_parameters() == 8 * 3 * 3 * 5
    assert repr(conv) == "Conv2D(3, 8, kernel_size=(3, 5), stride=2, padding=(1, 2), bias=False)"
    assert repr(nl.Conv2D(1, 2, 3, rng=0)) == "Conv2D(1, 2, kernel_size=3, stride=1, padding=0)"
    assert nl.Conv2D(1, 2, 3, rng=0).b.shape == (2,)


@pytest.mark.parametrize("kernel, padding", [(3, (1, 1)), (5, (2, 2)), ((1, 3), (0, 1)), (1, (0, 0))])
def test_same_padding_keeps_the_image_size(kernel, padding, rng):
    same = nl.Conv2D(2, 3, kernel, padding="same", rng=0)
    explicit = nl.Conv2D(2, 3, kernel, padding=padding, rng=0)
    assert same.padding == padding and same.same_padding and not explicit.same_padding
    X = rng.normal(size=(2, 2, 5, 6))
    Z = same.forward(X)
    assert Z.shape == (2, 3, 5, 6)
    np.testing.assert_array_equal(Z, explicit.forward(X))
    assert "padding='same'" in repr(same) and "padding='same'" not in repr(explicit)
    assert nl.gradcheck(same, X).passed


def test_padding_mode_is_a_deprecated_alias():
    """``padding_mode`` (PyTorch's name for the fill mode) used to record padding="same": it still reads
    and writes that, with a DeprecationWarning; ``same_padding`` is the attribute now."""
    same, explicit = nl.Conv2D(2, 3, 3, padding="same", rng=0), nl.Conv2D(2, 3, 3, padding=1, rng=0)
    with pytest.deprecated_call(match="padding_mode is deprecated"):
        assert same.padding_mode == "same" and explicit.padding_mode is None
    with pytest.deprecated_call(match="padding_mode is deprecated"):
        explicit.padding_mode = "same"
    assert explicit.same_padding and explicit.settings()["padding"] == "same"


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("kwargs", [dict(kernel_size=3, padding="same", algorithm="winograd"),
                                    dict(kernel_size=(2, 3), stride=(2, 1), padding=(1, 0), bias=False,
                                         input_grad=False)])
def test_settings_rebuild_the_same_layer_including_dtype(kwargs, dtype):
    conv = nl.Conv2D(3, 4, rng=0, dtype=dtype, **kwargs)
    assert conv.settings()["dtype"] == np.dtype(dtype).name
    twin = type(conv)(**conv.settings())
    assert twin.settings() == conv.settings() and repr(twin) == repr(conv)
    assert twin.W.data.dtype == conv.W.data.dtype == dtype and twin.same_padding == conv.same_padding


@pytest.mark.parametrize("kwargs", [dict(kernel_size=2), dict(kernel_size=(3, 4)), dict(kernel_size=3, stride=2)])
def test_same_padding_needs_odd_kernels_at_stride_one(kwargs):
    with pytest.raises(ValueError, match=r"Conv2D: padding='same' needs an odd kernel_size and stride 1"):
        nl.Conv2D(1, 1, padding="same", **kwargs)
    with pytest.raises(ValueError, match=r"padding must be 'same', an integer ≥ 0 or a pair of them, got 'valid'"):
        nl.Conv2D(1, 1, 3, padding="valid")


# -- errors -----------------------------------------------------------------------------------

def test_wrong_channels_names_the_layer_and_both_shapes():
    conv = nl.Conv2D(3, 4, 3, rng=0)
    with pytest.raises(nl.ShapeError, match=r"Conv2D\(3, 4, kernel_size=3.*\): expected input of shape "
                                            r"\(N, 3, H, W\), got shape \(2, 1, 5, 5\)"):
        conv.forward(np.zeros((2, 1, 5, 5)))


@pytest.mark.parametrize("shape", [(3, 5, 5), (5, 5), (1, 3, 5, 5, 1)])
def test_wrong_ndim(shape):
    with pytest.raises(nl.ShapeError, match=r"expected input of shape \(N, 3, H, W\)"):
        nl.Conv2D(3, 4, 3, rng=0).forward(np.zeros(shape))


def test_kernel_larger_than_padded_input():
    with pytest.raises(nl.ShapeError, match=r"kernel 5×5 is larger than the padded input 4×6"):
        nl.Conv2D(1, 1, 5, padding=1, rng=0).forward(np.zeros((1, 1, 2, 4)))
    assert nl.Conv2D(1, 1, 5, padding=1, rng=0).forward(np.zeros((1, 1, 3, 3))).shape == (1, 1, 1, 1)


@pytest.mark.parametrize("kwargs, error, message", [
    (dict(kernel_size=0), ValueError, "kernel_size must be a positive integer"),
    (dict(kernel_size=(3, 0)), ValueError, "kernel_size must be a positive integer"),
    (dict(kernel_size=2.0), TypeError, "kernel_size must be a positive integer"),
    (dict(kernel_size=(1, 2, 3)), ValueError, "kernel_size must be a positive integer or a pair"),
    (dict(kernel_size=True), TypeError, "kernel_size must be a positive integer"),
    (dict(kernel_size=3, stride=0), ValueError, "stride must be a positive integer"),
    (dict(kernel_size=3, stride=-1), ValueError, "stride must be a positive integer"),
    (dict(kernel_size=3, padding=-1), ValueError, "padding must be an integer ≥ 0"),
    (dict(kernel_size=3, padding=0.5), TypeError, "padding must be"),
])
def test_bad_geometry_arguments(kwargs, error, message):
    with pytest.raises(error, match=message):       # TypeError for a wrong type, ValueError for a wrong value
        nl.Conv2D(1, 1, **kwargs)


@pytest.mark.parametrize("channels, error", [((0, 1), ValueError), ((1, 0), ValueError), ((1.0, 2), TypeError),
                                             ((2, -3), ValueError)])
def test_bad_channel_counts(channels, error):
    with pytest.raises(error, match="must be a positive integer"):
        nl.Conv2D(*channels, 3)


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match=r"Conv2D\(1, 1, .*\): backward called before forward"):
        nl.Conv2D(1, 1, 3, rng=0).backward(np.zeros((1, 1, 1, 1)))


def test_backward_with_wrong_dz_shape():
    conv = nl.Conv2D(1, 2, 3, rng=0)
    conv.forward(np.zeros((2, 1, 5, 5)))
    with pytest.raises(nl.ShapeError, match=r"backward expected dZ of shape \(2, 2, 3, 3\).*got shape \(2, 2, 5, 5\)"):
        conv.backward(np.zeros((2, 2, 5, 5)))


def test_im2col_checks_its_arguments():
    with pytest.raises(nl.ShapeError, match="im2col: expected X of shape"):
        nl.im2col(np.zeros((3, 3)), 2)
    with pytest.raises(nl.ShapeError, match="col2im: expected cols of shape"):
        nl.col2im(np.zeros((1, 4, 5)), (1, 1, 3, 3), 2)
    with pytest.raises(ValueError, match="stride must be"):
        nl.im2col(np.zeros((1, 1, 3, 3)), 2, stride=0)
