"""MaxPool2D and AvgPool2D: finite differences, ties, hand-computed values, shapes and errors.

PyTorch parity for the same layers lives in test_torch_parity.py.
"""
import numpy as np
import pytest

import nnlayers as nl

# (id, kernel, stride, input shape): non-overlapping, overlapping, gaps, floor rule, batch 1
POOL_CASES = [
    ("k1", 1, None, (2, 2, 3, 4)),
    ("k2-even", 2, None, (2, 3, 4, 6)),
    ("k2-odd-7x9-floor", 2, None, (1, 2, 7, 9)),
    ("k3-s1-overlap", 3, 1, (2, 2, 5, 6)),
    ("k3-s2-overlap", 3, 2, (2, 1, 7, 7)),
    ("k2-s3-gaps", 2, 3, (2, 2, 7, 8)),
    ("k2x3-s1x2-nonsquare", (2, 3), (1, 2), (1, 2, 5, 7)),
    ("k3x1", (3, 1), None, (2, 2, 6, 3)),
    ("kernel-equals-input", (3, 4), None, (2, 2, 3, 4)),
]


def distinct_values(shape, rng):
    """Values 0.1 apart in random order: no ties, and no maximum changes under ±ε."""
    return (rng.permutation(int(np.prod(shape))).reshape(shape) - np.prod(shape) / 2) * 0.1


@pytest.mark.parametrize("kernel, stride, shape", [c[1:] for c in POOL_CASES], ids=[c[0] for c in POOL_CASES])
def test_maxpool_passes_gradcheck(kernel, stride, shape, rng):
    report = nl.gradcheck(nl.MaxPool2D(kernel, stride), distinct_values(shape, rng))
    assert report.passed and report["X"].max_abs_error < 1e-8


@pytest.mark.parametrize("kernel, stride, shape", [c[1:] for c in POOL_CASES], ids=[c[0] for c in POOL_CASES])
def test_avgpool_passes_gradcheck(kernel, stride, shape, rng):
    report = nl.gradcheck(nl.AvgPool2D(kernel, stride), rng.normal(size=shape))
    assert report.passed and report["X"].max_abs_error < 1e-8


def test_maxpool_by_hand():
    X = np.array([[[[1.0, 5.0, 2.0, 0.0],
                    [3.0, 4.0, 8.0, 7.0],
                    [0.0, 0.0, 1.0, 1.0],
                    [9.0, 0.0, 1.0, 1.0]]]])
    pool = nl.MaxPool2D(2)
    np.testing.assert_array_equal(pool.forward(X), [[[[5.0, 8.0], [9.0, 1.0]]]])
    dX = pool.backward(np.array([[[[10.0, 20.0], [30.0, 40.0]]]]))
    np.testing.assert_array_equal(dX, [[[[0, 10, 0, 0],
                                         [0, 0, 20, 0],
                                         [0, 0, 40, 0],      # four tied 1s: the first one takes all 40
                                         [30, 0, 0, 0]]]])


def test_avgpool_by_hand():
    X = np.arange(16.0).reshape(1, 1, 4, 4)
    pool = nl.AvgPool2D(2)
    np.testing.assert_array_equal(pool.forward(X), [[[[2.5, 4.5], [10.5, 12.5]]]])   # (0+1+4+5)/4, …
    dX = pool.backward(np.array([[[[4.0, 8.0], [12.0, 16.0]]]]))
    np.testing.assert_array_equal(dX[0, 0], np.kron([[1.0, 2.0], [3.0, 4.0]], np.ones((2, 2))))


def test_overlapping_avgpool_by_hand():
    X = np.arange(9.0).reshape(1, 1, 3, 3)
    pool = nl.AvgPool2D(2, stride=1)
    np.testing.assert_array_equal(pool.forward(X), [[[[2.0, 3.0], [5.0, 6.0]]]])
    dX = pool.backward(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(dX[0, 0], [[0.25, 0.5, 0.25], [0.5, 1.0, 0.5], [0.25, 0.5, 0.25]])


def first_max_positions(window: np.ndarray):
    """(row, column) of the first maximum of a 2-D window in row-major order."""
    return np.unravel_index(int(np.argmax(window)), window.shape)   # argmax returns the first


@pytest.mark.parametrize("kernel, stride", [(2, None), (3, 1), (3, 2), ((2, 3), (1, 2)), (2, 3)])
def test_maxpool_ties_send_each_window_gradient_to_one_element_the_first_max(kernel, stride, rng):
    """Flat backgrounds make ties the common case: every window's δZ must go to exactly one pixel."""
    X = rng.integers(0, 3, size=(2, 2, 7, 8)).astype(np.float64)   # values 0, 1, 2: ties everywhere
    X[0, 0] = 0.0                                                   # one channel all ties
    pool = nl.MaxPool2D(kernel, stride)
    Z = pool.forward(X)
    (kh, kw), (sh, sw) = pool.kernel_size, pool.stride
    for n, c, ho, wo in np.ndindex(*Z.shape):
        dZ = np.zeros(Z.shape)
        dZ[n, c, ho, wo] = 3.0                                      # gradient of this window only
        dX = pool.backward(dZ)
        assert np.count_nonzero(dX) == 1 and dX.sum() == 3.0
        window = X[n, c, ho * sh:ho * sh + kh, wo * sw:wo * sw + kw]
        i, j = first_max_positions(window)
        assert dX[n, c, ho * sh + i, wo * sw + j] == 3.0
    # all windows together: the total is conserved, also where windows overlap
    dZ = rng.normal(size=Z.shape)
    assert pool.backward(dZ).sum() == pytest.approx(dZ.sum(), rel=1e-12)


def test_maxpool_all_equal_input():
    pool = nl.MaxPool2D(2)
    X = np.zeros((1, 1, 4, 4))
    np.testing.assert_array_equal(pool.forward(X), np.zeros((1, 1, 2, 2)))
    dX = pool.backward(np.ones((1, 1, 2, 2)))
    np.testing.assert_array_equal(dX[0, 0], [[1, 0, 1, 0], [0, 0, 0, 0], [1, 0, 1, 0], [0, 0, 0, 0]])


@pytest.mark.parametrize("cls", [nl.MaxPool2D, nl.AvgPool2D])
def test_floor_rule_drops_the_remainder(cls, rng):
    pool = cls(2)
    X = rng.normal(size=(1, 1, 7, 9))
    Z = pool.forward(X)
    assert Z.shape == (1, 1, 3, 4) == pool.output_shape(X.shape)
    dX = pool.backward(np.ones(Z.shape))
    assert not dX[:, :, 6, :].any() and not dX[:, :, :, 8].any()     # last row and column: unused
    assert dX.sum() == pytest.approx(Z.size)


@pytest.mark.parametrize("cls", [nl.MaxPool2D, nl.AvgPool2D])
@pytest.mark.parametrize("stride", [None, 1])
def test_float32_stays_float32(cls, stride, rng):
    pool = cls(2, stride)
    X = rng.normal(size=(2, 3, 6, 6)).astype(np.float32)
    Z = pool.forward(X)
    dX = pool.backward(np.ones(Z.shape, dtype=np.float32))
    assert Z.dtype == dX.dtype == np.float32


@pytest.mark.parametrize("cls", [nl.MaxPool2D, nl.AvgPool2D])
def test_output_is_fresh_and_input_untouched(cls, rng):
    X = rng.normal(size=(1, 2, 4, 4))
    saved = X.copy()
    pool = cls(1)                                   # even a 1×1 kernel returns a fresh array
    Z = pool.forward(X)
    dX = pool.backward(np.ones_like(Z))
    assert not np.shares_memory(Z, X) and not np.shares_memory(dX, X)
    np.testing.assert_array_equal(Z, X)
    np.testing.assert_array_equal(X, saved)


def test_repr():
    assert repr(nl.MaxPool2D(2)) == "MaxPool2D(kernel_size=2)"
    assert repr(nl.MaxPool2D(3, 1)) == "MaxPool2D(kernel_size=3, stride=1)"
    assert repr(nl.AvgPool2D((2, 3), (1, 2))) == "AvgPool2D(kernel_size=(2, 3), stride=(1, 2))"
    assert nl.MaxPool2D(3).stride == (3, 3)          # the stride defaults to the kernel size


# -- errors -----------------------------------------------------------------------------------

@pytest.mark.parametrize("cls", [nl.MaxPool2D, nl.AvgPool2D])
def test_errors(cls):
    pool = cls(3)
    with pytest.raises(nl.ShapeError, match=rf"{cls.__name__}\(kernel_size=3\): expected input of shape "
                                            r"\(N, C, H, W\), got shape \(4, 4\)"):
        pool.forward(np.zeros((4, 4)))
    with pytest.raises(nl.ShapeError, match=r"kernel 3×3 is larger than the input 2×5"):
        pool.forward(np.zeros((1, 1, 2, 5)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        cls(2).backward(np.zeros((1, 1, 1, 1)))
    pool.forward(np.zeros((1, 2, 6, 6)))
    with pytest.raises(nl.ShapeError, match=r"expected dZ of shape \(1, 2, 2, 2\).*got shape \(1, 2, 3, 3\)"):
        pool.backward(np.zeros((1, 2, 3, 3)))


@pytest.mark.parametrize("args, error", [((0,), ValueError), ((2, 0), ValueError), ((-1,), ValueError),
                                         ((2.0,), TypeError), (((2, 2, 2),), ValueError), ((True,), TypeError)])
def test_bad_kernel_or_stride(args, error):
    for cls in (nl.MaxPool2D, nl.AvgPool2D):
        with pytest.raises(error, match="must be a positive integer"):
            cls(*args)


def test_avgpool_backward_takes_an_integer_gradient():
    layer = nl.AvgPool2D(2)
    layer.forward(np.zeros((1, 1, 2, 2)))
    np.testing.assert_array_equal(layer.backward(np.array([[[[4]]]])), np.ones((1, 1, 2, 2)))   # 4 / (2·2)


# -- GlobalAvgPool2D ----------------------------------------------------------------------------

def test_global_avgpool_by_hand():
    X = np.arange(12, dtype=float).reshape(1, 2, 2, 3)          # channel means 2.5 and 8.5
    pool = nl.GlobalAvgPool2D()
    np.testing.assert_array_equal(pool.forward(X), [[2.5, 8.5]])
    dX = pool.backward(np.array([[6.0, -12.0]]))                 # each of the 6 pixels gets δZ / 6
    np.testing.assert_array_equal(dX, np.concatenate([np.full((1, 1, 2, 3), 1.0), np.full((1, 1, 2, 3), -2.0)], 1))
    assert repr(pool) == "GlobalAvgPool2D()"


@pytest.mark.parametrize("shape", [(2, 3, 4, 5), (1, 1, 1, 1), (3, 2, 7, 1)])
def test_global_avgpool_passes_gradcheck_and_keeps_float32(shape, rng):
    assert nl.gradcheck(nl.GlobalAvgPool2D(), rng.normal(size=shape)).passed
    pool = nl.GlobalAvgPool2D()
    X = rng.normal(size=shape).astype(np.float32)
    Z = pool.forward(X)
    dX = pool.backward(np.ones(Z.shape, np.float32))
    assert Z.shape == shape[:2] and Z.dtype == dX.dtype == np.float32
    dX[...] = 7.0                                                # a writable array of its own
    assert pool.backward(np.ones(Z.shape, np.float32)).max() == pytest.approx(1 / (shape[2] * shape[3]))


def test_global_avgpool_errors():
    pool = nl.GlobalAvgPool2D()
    with pytest.raises(nl.ShapeError, match=r"GlobalAvgPool2D\(\): expected input of shape \(N, C, H, W\), "
                                            r"got shape \(2, 3\)"):
        pool.forward(np.zeros((2, 3)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        pool.backward(np.zeros((1, 1)))
    pool.forward(np.zeros((2, 3, 4, 4)))
    with pytest.raises(nl.ShapeError, match=r"expected dZ of shape \(2, 3\).*got shape \(2, 3, 1, 1\)"):
        pool.backward(np.zeros((2, 3, 1, 1)))


@pytest.mark.parametrize("layer", [lambda: nl.MaxPool2D(2), lambda: nl.MaxPool2D(3, stride=2),
                                   lambda: nl.AvgPool2D((2, 3)), lambda: nl.AvgPool2D(3, stride=1)],
                         ids=["max-2", "max-3-stride-2", "avg-2x3", "avg-3-overlapping"])
def test_batch_spread_over_threads_gives_the_same_bits(layer, rng, monkeypatch, set_threads):
    """Pooling cuts the batch into one slice per thread: the same numbers as one thread,
    with ties (flat image-like data) routed to the same elements."""
    from nnlayers.kernels import pooling
    monkeypatch.setattr(pooling, "SPREAD_MIN", 0)
    X = rng.integers(0, 3, size=(5, 2, 9, 8)).astype(np.float64)
    dZ = None
    results = []
    for threads in (1, 2, 3):
        set_threads(threads)
        pool = layer()
        Z = pool.forward(X)
        dZ = rng.normal(size=Z.shape) if dZ is None else dZ
        results.append((Z, pool.backward(dZ)))
    for Z, dX in results[1:]:
        np.testing.assert_array_equal(Z, results[0][0])
        np.testing.assert_array_equal(dX, results[0][1])
    assert results[0][1].sum() == pytest.approx(dZ.sum())           # each window passes its whole δZ on
