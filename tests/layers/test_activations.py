"""Sigmoid, ReLU and Tanh (and the Elementwise base they share): hand values, finite differences, stability, dtypes and errors."""
import math
import warnings

import numpy as np
import pytest
import nnlayers as nl


def test_sigmoid_values_and_derivative_by_hand():
    layer = nl.Sigmoid()
    X = np.array([[0.0, math.log(3.0), -math.log(3.0)]])
    Z = layer.forward(X)
    np.testing.assert_allclose(Z, [[0.5, 0.75, 0.25]], rtol=1e-15)       # σ(ln 3) = 3/(3+1)
    dX = layer.backward(np.array([[1.0, 2.0, -4.0]]))
    # σ′ = σ(1 − σ): 1/4, 3/16, 3/16
    np.testing.assert_allclose(dX, [[0.25, 2 * 3 / 16, -4 * 3 / 16]], rtol=1e-15)


def test_sigmoid_never_overflows_or_warns():
    X = np.array([-1e308, -1000.0, -745.5, -720.0, -40.0, 0.0, 40.0, 1000.0, 1e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        Z = nl.sigmoid(X)
    assert Z[0] == 0.0 and Z[1] == 0.0 and Z[-1] == 1.0 and Z[-2] == 1.0
    assert Z[3] == pytest.approx(math.exp(-720.0), rel=1e-12)           # a subnormal, kept
    assert Z[4] == pytest.approx(1 / (1 + math.exp(40.0)), rel=1e-15)
    assert np.all(np.isfinite(Z))


def test_sigmoid_within_two_ulps_of_exact():
    X = np.linspace(-30, 30, 2001)
    exact = np.array([1 / (1 + math.exp(-x)) if x >= 0 else math.exp(x) / (1 + math.exp(x)) for x in X])
    ulps = np.abs(nl.sigmoid(X) - exact) / np.spacing(exact)
    assert ulps.max() <= 2


def test_sigmoid_keeps_float32_and_converts_integers():
    assert nl.sigmoid(np.zeros(3, np.float32)).dtype == np.float32
    Z = nl.Sigmoid().forward(np.array([-128, 0, 127], dtype=np.int8))   # −(−128) would wrap in int8
    assert Z.dtype == np.float64
    np.testing.assert_allclose(Z, [1 / (1 + math.exp(128)), 0.5, 1 / (1 + math.exp(-127))], rtol=1e-14)


def test_sigmoid_does_not_modify_its_input():
    X = np.array([[-2.0, 3.0]])
    copy = X.copy()
    layer = nl.Sigmoid()
    layer.forward(X)
    layer.backward(np.ones_like(X))
    np.testing.assert_array_equal(X, copy)


def test_sigmoid_dz_shape_checked():
    layer = nl.Sigmoid()
    layer.forward(np.zeros((2, 3)))
    with pytest.raises(nl.ShapeError, match=r"Sigmoid\(\): backward expected dZ of shape \(2, 3\)"):
        layer.backward(np.zeros((2, 1)))


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


@pytest.mark.parametrize("cls", [nl.Sigmoid, nl.ReLU, nl.Tanh])
def test_settings_round_trip_and_the_kits_errors(cls, rng):
    layer = cls()
    assert layer.settings() == {} and repr(type(layer)(**layer.settings())) == f"{cls.__name__}()"
    with pytest.raises(RuntimeError, match=rf"^{cls.__name__}\(\): backward called before forward"):
        layer.backward(np.ones((2, 3)))
    Z = layer.forward(rng.normal(size=(2, 3)))
    np.testing.assert_array_equal(layer.backward(np.ones((2, 3)).tolist()), layer.backward(np.ones_like(Z)))
    with pytest.raises(TypeError, match=rf"^{cls.__name__}\(\): expected a numeric array"):
        layer.forward(np.array(["a"]))
