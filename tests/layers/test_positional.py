"""PositionalEmbedding: Vaswani's table by hand, the learned table's start and gradient, sequences of any length
up to max_length, and the refusals."""
import math

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.layers.positional import sinusoidal_table


def test_sinusoidal_table_by_hand():
    P = sinusoidal_table(3, 5)
    # columns (2i, 2i + 1) = (sin, cos) of t / 10000^(2i/5); the odd D ends with a sine
    for t in range(3):
        for i, column in enumerate((0, 2, 4)):
            angle = t / 10000 ** (column / 5)
            assert P[t, column] == pytest.approx(math.sin(angle), abs=1e-15)
            if column + 1 < 5:
                assert P[t, column + 1] == pytest.approx(math.cos(angle), abs=1e-15)
    np.testing.assert_array_equal(P[0], [0, 1, 0, 1, 0])


def test_sinusoidal_layer_adds_the_table_and_trains_nothing(rng):
    layer = nl.PositionalEmbedding(10, 4, kind="sinusoidal")
    assert not layer.parameters() and [name for name, _ in layer.named_buffers()] == ["P"]
    X = rng.normal(size=(2, 6, 4))
    np.testing.assert_array_equal(layer.forward(X), X + sinusoidal_table(10, 4)[:6])
    dZ = rng.normal(size=X.shape)
    assert layer.backward(dZ) is dZ                               # δX = δZ, passed on as is


def test_learned_table_start_and_gradient(rng):
    layer = nl.PositionalEmbedding(2000, 64, rng=0)
    assert layer.P.data.std() == pytest.approx(0.02, rel=0.02) and abs(layer.P.data.mean()) < 1e-3
    small = nl.PositionalEmbedding(5, 3, rng=1)
    X, dZ = rng.normal(size=(4, 3, 3)), rng.normal(size=(4, 3, 3))
    np.testing.assert_array_equal(small.forward(X), X + small.P.data[:3])
    np.testing.assert_array_equal(small.backward(dZ), dZ)
    np.testing.assert_allclose(small.P.grad[:3], dZ.sum(axis=0), rtol=1e-15)   # δP[t] = Σₙ δZ[n, t]
    assert not small.P.grad[3:].any()                             # positions past T get nothing
    assert nl.gradcheck(small, X).passed


def test_any_length_up_to_max_length_and_a_clear_error_beyond(rng):
    layer = nl.PositionalEmbedding(4, 2, rng=0)
    for T in (1, 4):
        assert layer.forward(np.zeros((1, T, 2))).shape == (1, T, 2)
    with pytest.raises(nl.ShapeError, match=r"PositionalEmbedding\(4, 2\): sequences of length T = 5 are longer "
                                            r"than max_length = 4 \(input shape \(3, 5, 2\)\)"):
        layer.forward(np.zeros((3, 5, 2)))
    with pytest.raises(nl.ShapeError, match=r"expected input of shape \(N, T, 2\), got shape \(3, 2\)"):
        layer.forward(np.zeros((3, 2)))


def test_settings_and_refusals():
    layer = nl.PositionalEmbedding(8, 4, "sinusoidal", dtype=np.float32)
    assert layer.settings() == {"max_length": 8, "embed_dim": 4, "kind": "sinusoidal", "dtype": "float32"}
    assert layer.P.data.dtype == np.float32
    assert repr(layer) == "PositionalEmbedding(8, 4, kind='sinusoidal', dtype='float32')"
    with pytest.raises(ValueError, match=r"PositionalEmbedding: kind must be one of \('learned', 'sinusoidal'\), "
                                         r"got 'sine'"):
        nl.PositionalEmbedding(8, 4, "sine")
    with pytest.raises(TypeError, match="kind must be one of"):
        nl.PositionalEmbedding(8, 4, None)
    with pytest.raises(ValueError, match="max_length must be a positive integer, got 0"):
        nl.PositionalEmbedding(0, 4)
