"""LayerNorm: values by hand, per-sample statistics, the backward formula against the long chain rule,
PyTorch parity (1-d and 2-d normalized_shape, leading N×T), ONNX at opsets 13 and 17, and the refusals."""
import numpy as np
import pytest

import nnlayers as nl
from tests.helpers import importable, require


def randomised(layer, rng):
    layer.gamma.data[...] = rng.uniform(0.5, 2.0, size=layer.gamma.shape)
    layer.beta.data[...] = rng.normal(size=layer.beta.shape)
    return layer


def test_values_and_gradients_by_hand():
    # one sample x = (1, 3): μ = 2, v = 1, x̂ = (−1, 1)/s with s = √(1 + ε)
    layer = nl.LayerNorm(2)
    layer.gamma.data[...] = [2.0, 1.0]
    layer.beta.data[...] = [0.5, -1.0]
    s = np.sqrt(1 + 1e-5)
    Z = layer.forward(np.array([[1.0, 3.0]]))
    np.testing.assert_allclose(Z, [[0.5 - 2 / s, -1.0 + 1 / s]], rtol=1e-15)
    # δZ = (1, 0): δβ = (1, 0), δγ = (x̂₀, 0) = (−1/s, 0); δx̂ = γ δZ = (2, 0), mean(δx̂) = 1,
    # mean(δx̂ ⊙ x̂) = −1/s; δx = (1/s)(δx̂ − 1 − x̂·(−1/s)) = (1/s)((1, −1) + (−1, 1)/s²)
    dX = layer.backward(np.array([[1.0, 0.0]]))
    np.testing.assert_allclose(dX, [[(1 - 1 / s ** 2) / s, (-1 + 1 / s ** 2) / s]], rtol=1e-9)
    np.testing.assert_allclose(layer.beta.grad, [1.0, 0.0])
    np.testing.assert_allclose(layer.gamma.grad, [-1 / s, 0.0], rtol=1e-15)


def test_each_sample_gets_zero_mean_and_unit_variance(rng):
    X = rng.normal(loc=5.0, scale=3.0, size=(4, 7, 6))
    Z = nl.LayerNorm(6).forward(X)
    np.testing.assert_allclose(Z.mean(axis=-1), 0, atol=1e-13)
    np.testing.assert_allclose(Z.var(axis=-1), X.var(axis=-1) / (X.var(axis=-1) + 1e-5), rtol=1e-12)
    Z = nl.LayerNorm((7, 6)).forward(X)                           # over the last two axes together
    np.testing.assert_allclose(Z.mean(axis=(1, 2)), 0, atol=1e-13)


def test_statistics_do_not_depend_on_the_batch_or_the_mode(rng):
    layer = randomised(nl.LayerNorm(5), rng)
    X = rng.normal(size=(6, 5))
    Z = layer.forward(X)
    np.testing.assert_allclose(layer.forward(X[2:3]), Z[2:3], rtol=1e-15)
    np.testing.assert_array_equal(layer.eval().forward(X), Z)
    assert not layer.buffers()


def test_backward_formula_against_the_long_form(rng):
    """The compact δX equals the textbook chain through δv and δμ, written out step by step."""
    layer = randomised(nl.LayerNorm((3, 4)), rng)
    X, dZ = rng.normal(size=(2, 5, 3, 4)), rng.normal(size=(2, 5, 3, 4))
    layer.forward(X)
    dX = layer.backward(dZ)
    axes, M, eps = (2, 3), 12, 1e-5
    mu, v = X.mean(axis=axes, keepdims=True), X.var(axis=axes, keepdims=True)
    dxhat = dZ * layer.gamma.data
    dv = np.sum(dxhat * (X - mu), axis=axes, keepdims=True) * -0.5 * (v + eps) ** -1.5
    dmu = -np.sum(dxhat, axis=axes, keepdims=True) / np.sqrt(v + eps)
    expected = dxhat / np.sqrt(v + eps) + dv * 2 * (X - mu) / M + dmu / M
    np.testing.assert_allclose(dX, expected, rtol=1e-10, atol=1e-12)
    xhat = (X - mu) / np.sqrt(v + eps)
    np.testing.assert_allclose(layer.gamma.grad, (dZ * xhat).sum(axis=(0, 1)), rtol=1e-12)
    np.testing.assert_allclose(layer.beta.grad, dZ.sum(axis=(0, 1)), rtol=1e-12)


@pytest.mark.parametrize("shape, normalized", [((3, 4, 5), 5), ((2, 3, 4, 5), (4, 5)), ((6,), 6),
                                               ((2, 3, 4), (2, 3, 4))])
def test_gradcheck(rng, shape, normalized):
    layer = randomised(nl.LayerNorm(normalized), rng)
    assert nl.gradcheck(layer, rng.normal(size=shape)).passed


@pytest.mark.parametrize("shape, normalized", [((4, 7, 6), 6), ((3, 5, 2, 4), (2, 4)), ((5, 8), [8])])
def test_matches_torch(rng, shape, normalized):
    require(importable("torch"), "PyTorch is not installed (pip install torch==2.13.0); parity tests need it")
    import torch
    layer = randomised(nl.LayerNorm(normalized, eps=1e-4), rng)
    twin = torch.nn.LayerNorm(normalized, eps=1e-4).double()
    with torch.no_grad():
        twin.weight.copy_(torch.tensor(layer.gamma.data))
        twin.bias.copy_(torch.tensor(layer.beta.data))
    X, dZ = rng.normal(loc=2.0, size=shape), rng.normal(size=shape)
    Xt = torch.tensor(X, requires_grad=True)
    Zt = twin(Xt)
    Zt.backward(torch.tensor(dZ))
    np.testing.assert_allclose(layer.forward(X), Zt.detach().numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.backward(dZ), Xt.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.gamma.grad, twin.weight.grad.numpy(), rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(layer.beta.grad, twin.bias.grad.numpy(), rtol=1e-10, atol=1e-12)


def test_float32_and_settings(rng):
    layer = nl.LayerNorm((2, 3), eps=1e-3, dtype=np.float32)
    Z = layer.forward(rng.normal(size=(4, 2, 3)))
    assert Z.dtype == np.float32 and layer.backward(np.ones_like(Z)).dtype == np.float32
    assert layer.settings() == {"normalized_shape": (2, 3), "eps": 1e-3, "dtype": "float32"}
    assert repr(layer) == "LayerNorm((2, 3), eps=0.001, dtype='float32')"
    assert repr(nl.LayerNorm(8)) == "LayerNorm(8, eps=1e-05)" and nl.LayerNorm([8]).normalized_shape == (8,)


def test_refusals():
    with pytest.raises(nl.ShapeError, match=r"LayerNorm\(4, eps=1e-05\): expected input of shape \(\.\.\., 4\), "
                                            r"got shape \(2, 3\)"):
        nl.LayerNorm(4).forward(np.zeros((2, 3)))
    with pytest.raises(nl.ShapeError, match=r"expected input of shape \(\.\.\., 3, 4\), got shape \(4,\)"):
        nl.LayerNorm((3, 4)).forward(np.zeros(4))
    with pytest.raises(ValueError, match="LayerNorm: normalized_shape must name at least one dimension"):
        nl.LayerNorm(())
    with pytest.raises(ValueError, match="LayerNorm: normalized_shape must be a positive integer, got 0"):
        nl.LayerNorm((3, 0))
    with pytest.raises(TypeError, match="normalized_shape must be a positive integer"):
        nl.LayerNorm(4.0)
    with pytest.raises(ValueError, match="LayerNorm: eps must be a finite number > 0"):
        nl.LayerNorm(4, eps=0.0)


@pytest.mark.parametrize("opset", [13, 17])
def test_onnx_layer_normalization_and_its_composed_form(rng, opset):
    require(importable("onnx", "onnxruntime"), "onnx and onnxruntime are not installed (pip install -e '.[onnx]')")
    import onnxruntime
    layer = randomised(nl.LayerNorm((3, 4)), rng)
    proto = nl.export_onnx(layer, None, (5, 3, 4), opset=opset, dtype=np.float32)
    ops = {node.op_type for node in proto.graph.node}
    assert ("LayerNormalization" in ops) == (opset >= 17)
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    X = rng.normal(loc=3.0, size=(2, 5, 3, 4))
    got = session.run(None, {"X": X.astype(np.float32)})[0]
    np.testing.assert_allclose(got, layer.forward(X), rtol=1e-5, atol=1e-5)
