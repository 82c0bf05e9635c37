"""Softmax: values by hand, the mask (True = masked, exact zeros), the backward formula against the full
Jacobian, stability, PyTorch parity with a mask, and the refusals (a row masked entirely, shapes, dtypes)."""
import math

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.layers.activations import boolean_mask, masked_softmax
from tests.helpers import importable, require


def test_values_by_hand():
    layer = nl.Softmax()
    Z = layer.forward(np.array([[0.0, math.log(3.0)], [1.0, 1.0]]))
    np.testing.assert_allclose(Z, [[0.25, 0.75], [0.5, 0.5]], rtol=1e-15)
    # δX = Z ⊙ (δZ − Σ δZ ⊙ Z): row 0 with δZ = (1, 0): Σ = 0.25, δX = (0.25·0.75, 0.75·(−0.25))
    dX = layer.backward(np.array([[1.0, 0.0], [0.0, 0.0]]))
    np.testing.assert_allclose(dX, [[0.1875, -0.1875], [0.0, 0.0]], rtol=1e-15)


def test_a_masked_entry_gets_exactly_zero_and_the_rest_renormalise():
    layer = nl.Softmax()
    X = np.array([[1.0, 2.0, 3.0]])
    Z, dX = layer.forward(X, np.array([[False, True, False]])), None
    assert Z[0, 1] == 0.0
    np.testing.assert_allclose(Z[0, [0, 2]], np.exp([1.0, 3.0]) / np.exp([1.0, 3.0]).sum(), rtol=1e-15)
    dX, dmask = layer.backward(np.array([[0.3, 5.0, -1.0]]))
    assert dmask is None and dX[0, 1] == 0.0                     # no gradient through a masked entry


def test_backward_is_the_jacobian_applied_to_dz(rng):
    """δX = J ᵀ δZ with the full Jacobian Jᵢⱼ = ∂Zᵢ/∂Xⱼ = Zᵢ(δᵢⱼ − Zⱼ) of each row."""
    X, dZ = rng.normal(size=(3, 4)), rng.normal(size=(3, 4))
    mask = np.array([[False, True, False, False], [False] * 4, [True, True, False, True]])
    layer = nl.Softmax()
    Z = layer.forward(X, mask)
    dX, _ = layer.backward(dZ)
    for n in range(3):
        J = np.diag(Z[n]) - np.outer(Z[n], Z[n])
        np.testing.assert_allclose(dX[n], J.T @ dZ[n], rtol=1e-13, atol=1e-15)


def test_any_axis_and_broadcast_masks(rng):
    X = rng.normal(size=(2, 3, 4))
    Z = nl.Softmax(axis=1).forward(X)
    np.testing.assert_allclose(Z.sum(axis=1), 1.0, rtol=1e-15)
    np.testing.assert_allclose(Z, np.exp(X) / np.exp(X).sum(axis=1, keepdims=True), rtol=1e-14)
    causal = np.triu(np.ones((4, 4), dtype=bool), 1)              # a T×T mask for every sequence
    Z = nl.Softmax().forward(rng.normal(size=(2, 4, 4)), causal)
    assert np.all(Z[:, causal] == 0.0) and np.allclose(Z.sum(axis=-1), 1.0)
    np.testing.assert_array_equal(Z[:, 0], np.broadcast_to([1.0, 0, 0, 0], (2, 4)))


def test_stable_for_huge_logits():
    Z = nl.Softmax().forward(np.array([[1e308, -1e308, 0.0], [1000.0, 1000.0, -1000.0]]))
    np.testing.assert_array_equal(Z, [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])


def test_float_masks_of_zeros_and_ones_read_as_booleans():
    X = np.array([[1.0, 2.0, 3.0]])
    np.testing.assert_array_equal(nl.Softmax().forward(X, np.array([[0.0, 1.0, 0.0]])),
                                  nl.Softmax().forward(X, np.array([[False, True, False]])))
    np.testing.assert_array_equal(boolean_mask("m", np.array([0, 1, 1], dtype=np.int8)), [False, True, True])


def test_forward_returns_a_copy_of_what_it_caches(rng):
    layer = nl.Softmax()
    X = rng.normal(size=(2, 3))
    Z = layer.forward(X)
    expected = layer.backward(np.ones_like(Z))
    Z[...] = 7.0
    np.testing.assert_array_equal(layer.backward(np.ones_like(Z)), expected)


def test_gradcheck_with_a_mask(rng):
    mask = rng.random((2, 3, 5)) < 0.5
    mask[..., 2] = False
    report = nl.gradcheck(nl.Softmax(), (rng.normal(size=(2, 3, 5)), mask))
    assert report.passed and report["input 1"].returned is None


def test_matches_torch_masked_softmax(rng):
    require(importable("torch"), "PyTorch is not installed (pip install torch==2.13.0); parity tests need it")
    import torch
    X, dZ = rng.normal(size=(3, 4, 6)), rng.normal(size=(3, 4, 6))
    mask = rng.random((3, 1, 6)) < 0.5
    mask[..., 0] = False
    layer = nl.Softmax()
    Z = layer.forward(X, mask)
    dX, _ = layer.backward(dZ)
    Xt = torch.tensor(X, requires_grad=True)
    Zt = torch.softmax(Xt.masked_fill(torch.tensor(mask), float("-inf")), dim=-1)
    Zt.backward(torch.tensor(dZ))
    np.testing.assert_allclose(Z, Zt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), rtol=1e-10, atol=1e-12)


# -- refusals ----------------------------------------------------------------------------------------

def test_a_row_masked_entirely_is_a_clear_error_not_nan():
    layer = nl.Softmax()
    mask = np.array([[False, True], [True, True]])
    with pytest.raises(ValueError, match=r"Softmax\(axis=-1\): the mask hides every entry of row \(1,\) "
                                         r"\(input shape \(2, 2\), axis -1\); a softmax over no entries"):
        layer.forward(np.zeros((2, 2)), mask)
    with pytest.raises(ValueError, match=r"row \(0, 1\)"):             # a broadcast mask that hides a column
        nl.Softmax(axis=1).forward(np.zeros((1, 3, 2)), np.array([[[False, True]]]))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.zeros((2, 2)))                               # nothing was cached by the refusal


def test_mask_shape_dtype_and_values_are_checked():
    layer = nl.Softmax()
    X = np.zeros((2, 3))
    with pytest.raises(nl.ShapeError, match=r"Softmax\(axis=-1\): mask of shape \(3, 2\) does not broadcast "
                                            r"to the input's shape \(2, 3\)"):
        layer.forward(X, np.zeros((3, 2), dtype=bool))
    with pytest.raises(nl.ShapeError, match="does not broadcast"):   # broadcasting must not grow X
        layer.forward(X, np.zeros((4, 2, 3), dtype=bool))
    with pytest.raises(ValueError, match="only 0 and 1.*additive float mask"):
        layer.forward(X, np.array([[0.0, -np.inf, 0.0]]))
    with pytest.raises(TypeError, match="expected a boolean mask.*got dtype <U1"):
        layer.forward(X, np.array([["a", "b", "c"]]))


def test_axis_is_checked():
    with pytest.raises(TypeError, match="Softmax: axis must be an integer, got 1.0"):
        nl.Softmax(axis=1.0)
    with pytest.raises(TypeError, match="axis must be an integer"):
        nl.Softmax(axis=True)
    with pytest.raises(nl.ShapeError, match=r"Softmax\(axis=2\): input of shape \(2, 3\) has no axis 2"):
        nl.Softmax(axis=2).forward(np.zeros((2, 3)))


def test_masked_softmax_function_leaves_its_input_alone(rng):
    X = rng.normal(size=(2, 3))
    saved = X.copy()
    masked_softmax(X)
    masked_softmax(X, np.array([True, False, False]))
    np.testing.assert_array_equal(X, saved)
