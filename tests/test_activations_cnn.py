"""ReLU, Tanh, Flatten and Dropout: values, finite differences, modes, dtypes and errors."""
import numpy as np
import pytest

import nnlayers as nl


def away_from_zero(shape, rng):
    """Normal values pushed at least 0.1 away from 0, the kink of ReLU."""
    X = rng.normal(size=shape)
    return X + 0.1 * np.sign(X)


# -- ReLU ---------------------------------------------------------------------------------------

def test_relu_values_and_gradient_by_hand():
    relu = nl.ReLU()
    np.testing.assert_array_equal(relu.forward(np.array([[-2.0, 0.0, 3.0]])), [[0.0, 0.0, 3.0]])
    # derivative [X > 0]: 0 at the kink X = 0, as PyTorch
    np.testing.assert_array_equal(relu.backward(np.array([[5.0, 6.0, 7.0]])), [[0.0, 0.0, 7.0]])


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 4, 5), (1, 1)])
def test_relu_passes_gradcheck(shape, rng):
    assert nl.gradcheck(nl.ReLU(), away_from_zero(shape, rng)).passed


# -- Tanh ---------------------------------------------------------------------------------------

def test_tanh_values_and_gradient_by_hand():
    tanh = nl.Tanh()
    Z = tanh.forward(np.array([[0.0, np.log(2.0)]]))        # tanh(ln 2) = (2 − ½)/(2 + ½) = 0.6
    np.testing.assert_allclose(Z, [[0.0, 0.6]], rtol=1e-15, atol=0)
    np.testing.assert_allclose(tanh.backward(np.array([[2.0, 1.0]])), [[2.0, 0.64]], rtol=1e-15)  # 1 − Z²


@pytest.mark.parametrize("shape", [(3, 4), (2, 3, 2, 2)])
def test_tanh_passes_gradcheck(shape, rng):
    assert nl.gradcheck(nl.Tanh(), rng.normal(size=shape)).passed


def test_tanh_saturates_without_warnings():
    with np.errstate(all="raise"):
        tanh = nl.Tanh()
        np.testing.assert_array_equal(tanh.forward(np.array([[-1e4, 1e4]])), [[-1.0, 1.0]])
        np.testing.assert_array_equal(tanh.backward(np.ones((1, 2))), [[0.0, 0.0]])


@pytest.mark.parametrize("cls", [nl.ReLU, nl.Tanh])
def test_activations_keep_float32_and_check_errors(cls, rng):
    layer = cls()
    X = rng.normal(size=(2, 3)).astype(np.float32)
    Z = layer.forward(X)
    assert Z.dtype == layer.backward(np.ones((2, 3), np.float32)).dtype == np.float32
    with pytest.raises(nl.ShapeError, match=rf"{cls.__name__}\(\): backward expected dZ of shape \(2, 3\)"):
        layer.backward(np.ones((3, 2)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        cls().backward(np.ones((2, 3)))
    assert cls().forward(np.array([[1, -1]])).dtype == np.float64    # integers are converted


# -- Flatten ------------------------------------------------------------------------------------

def test_flatten_round_trip(rng):
    flatten = nl.Flatten()
    X = rng.normal(size=(2, 3, 4, 5))
    Z = flatten.forward(X)
    assert Z.shape == (2, 60)
    np.testing.assert_array_equal(Z[1], X[1].ravel())                # row-major, as PyTorch
    dZ = rng.normal(size=(2, 60))
    dX = flatten.backward(dZ)
    assert dX.shape == X.shape
    np.testing.assert_array_equal(dX, dZ.reshape(2, 3, 4, 5))
    assert repr(flatten) == "Flatten()"


@pytest.mark.parametrize("shape", [(2, 3, 2, 2), (1, 4), (3, 2, 5)])
def test_flatten_passes_gradcheck(shape, rng):
    assert nl.gradcheck(nl.Flatten(), rng.normal(size=shape)).passed


def test_flatten_errors():
    with pytest.raises(nl.ShapeError, match=r"Flatten\(\): expected input of shape \(N, \.\.\.\).*got shape \(5,\)"):
        nl.Flatten().forward(np.zeros(5))
    flatten = nl.Flatten()
    flatten.forward(np.zeros((2, 3, 4, 4)))
    with pytest.raises(nl.ShapeError, match=r"expected dZ of shape \(2, 48\).*got shape \(2, 3, 4, 4\)"):
        flatten.backward(np.zeros((2, 3, 4, 4)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        nl.Flatten().backward(np.zeros((2, 3)))


# -- Dropout ------------------------------------------------------------------------------------

def test_dropout_eval_mode_is_the_identity(rng):
    dropout = nl.Dropout(0.5, rng=0).eval()
    X = rng.normal(size=(4, 5))
    np.testing.assert_array_equal(dropout.forward(X), X)
    dZ = rng.normal(size=(4, 5))
    np.testing.assert_array_equal(dropout.backward(dZ), dZ)


def test_dropout_training_zeros_and_scales(rng):
    p = 0.3
    dropout = nl.Dropout(p, rng=0)
    X = np.ones((200, 500))
    Z = dropout.forward(X)
    kept = Z != 0
    assert abs(1 - kept.mean() - p) < 0.005                          # zeros fraction ≈ p (n = 100 000)
    np.testing.assert_allclose(Z[kept], 1 / (1 - p), rtol=1e-15)     # survivors scaled by 1/(1 − p)
    assert Z.mean() == pytest.approx(1.0, abs=0.01)                  # E[Z] = X
    dZ = rng.normal(size=X.shape)
    dX = dropout.backward(dZ)                                        # δX = M ⊙ δZ: the same mask
    np.testing.assert_array_equal(dX[~kept], 0.0)
    np.testing.assert_allclose(dX[kept], dZ[kept] / (1 - p), rtol=1e-15)


def test_dropout_mean_is_preserved_over_many_samples(rng):
    dropout = nl.Dropout(0.5, rng=1)
    X = rng.normal(size=(3, 4))
    average = np.mean([dropout.forward(X) for _ in range(20000)], axis=0)
    np.testing.assert_allclose(average, X, atol=0.05)


def test_dropout_is_reproducible_with_a_seed_and_resampled_each_forward():
    X = np.ones((10, 10))
    a, b = nl.Dropout(0.5, rng=42), nl.Dropout(0.5, rng=42)
    first = a.forward(X)
    np.testing.assert_array_equal(first, b.forward(X))
    second = a.forward(X)
    assert not np.array_equal(first, second)                         # a new mask every forward
    np.testing.assert_array_equal(second, b.forward(X))             # … the same sequence of masks


class FixedMaskDropout(nl.Dropout):
    """The mask drawn from the same seed on every forward: what gradcheck needs (see Dropout's docstring)."""

    def forward(self, X):
        self.rng = np.random.default_rng(0)
        return super().forward(X)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_training_path_passes_gradcheck(p, rng):
    report = nl.gradcheck(FixedMaskDropout(p), rng.normal(size=(4, 6)))
    assert report.passed
    assert nl.gradcheck(nl.Dropout(p).eval(), rng.normal(size=(4, 6))).passed


def test_dropout_p_zero_is_the_identity_in_training(rng):
    X = rng.normal(size=(3, 3))
    np.testing.assert_array_equal(nl.Dropout(0.0).forward(X), X)


def test_dropout_keeps_float32(rng):
    dropout = nl.Dropout(0.5, rng=0)
    Z = dropout.forward(rng.normal(size=(3, 4)).astype(np.float32))
    assert Z.dtype == dropout.backward(np.ones((3, 4), np.float32)).dtype == np.float32


@pytest.mark.parametrize("p", [-0.1, 1.0, 1.5, "0.5", True, None, float("nan")])
def test_dropout_rejects_bad_p(p):
    with pytest.raises(ValueError, match=r"Dropout: p must be a number in \[0, 1\)"):
        nl.Dropout(p)


def test_dropout_errors_and_repr():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        nl.Dropout(0.5).backward(np.ones(3))
    dropout = nl.Dropout(0.25)
    dropout.forward(np.ones((2, 2)))
    with pytest.raises(nl.ShapeError, match=r"Dropout\(p=0.25\): backward expected dZ of shape \(2, 2\)"):
        dropout.backward(np.ones((2, 3)))
    assert repr(nl.Dropout(0.25)) == "Dropout(p=0.25)"
