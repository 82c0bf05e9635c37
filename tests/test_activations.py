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
