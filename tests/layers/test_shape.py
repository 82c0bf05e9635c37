"""Flatten: round trips, finite differences and errors."""


import numpy as np
import pytest
import nnlayers as nl


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
