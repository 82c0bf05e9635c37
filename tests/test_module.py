import numpy as np
import pytest

import nnlayers as nl


def xor_like():
    return nl.Sequential(nl.Linear(2, 3, rng=0), nl.Bias(3), nl.Sigmoid(), nl.Linear(3, 1, rng=1), nl.Bias(1))


def test_parameter_grad_matches_data_and_starts_at_zero():
    p = nl.Parameter(np.arange(6.0).reshape(2, 3), "W")
    assert p.grad.shape == (2, 3) and p.grad.dtype == np.float64
    assert not p.grad.any()
    assert p.shape == (2, 3) and p.size == 6 and p.name == "W"
    with pytest.raises(TypeError, match="floating-point"):
        nl.Parameter(np.arange(3), "n")


def test_sequential_names_order_and_container_protocol():
    model = xor_like()
    assert [name for name, _ in model.named_parameters()] == ["0.W", "1.b", "3.W", "4.b"]
    assert model.parameters()[0] is model[0].W
    assert len(model) == 5 and isinstance(model[2], nl.Sigmoid)
    assert [type(m).__name__ for m in model] == ["Linear", "Bias", "Sigmoid", "Linear", "Bias"]
    assert isinstance(model[1:3], nl.Sequential) and len(model[1:3]) == 2
    assert model.num_parameters() == 2 * 3 + 3 + 3 + 1


def test_nested_sequential_names():
    model = nl.Sequential(nl.Sequential(nl.Linear(2, 2, rng=0), nl.Bias(2)), nl.Sigmoid())
    assert [name for name, _ in model.named_parameters()] == ["0.0.W", "0.1.b"]


def test_sequential_repr_is_indexed_tree():
    assert repr(xor_like()) == (
        "Sequential(\n"
        "  (0): Linear(in_features=2, out_features=3)\n"
        "  (1): Bias(features=3)\n"
        "  (2): Sigmoid()\n"
        "  (3): Linear(in_features=3, out_features=1)\n"
        "  (4): Bias(features=1)\n"
        ")")


def test_sequential_backward_is_the_chain_rule_written_out(rng):
    model = xor_like()                       # X W1 + b1 → σ → A W2 + b2
    X = rng.normal(size=(5, 2))
    dZ = rng.normal(size=(5, 1))
    model.forward(X)
    dX = model.backward(dZ)
    W1, b1, W2 = model[0].W.data, model[1].b.data, model[3].W.data
    A = 1 / (1 + np.exp(-(X @ W1 + b1)))
    dA = dZ @ W2.T                           # δA = δZ W2ᵀ
    dZ1 = A * (1 - A) * dA                   # δZ1 = σ′ ⊙ δA
    np.testing.assert_allclose(dX, dZ1 @ W1.T, rtol=1e-13)                  # δX = δZ1 W1ᵀ
    np.testing.assert_allclose(model[0].W.grad, X.T @ dZ1, rtol=1e-13)      # δW1 = Xᵀ δZ1
    np.testing.assert_allclose(model[1].b.grad, dZ1.sum(0, keepdims=True), rtol=1e-13)
    np.testing.assert_allclose(model[3].W.grad, A.T @ dZ, rtol=1e-13)       # δW2 = Aᵀ δZ
    np.testing.assert_allclose(model[4].b.grad, dZ.sum(0, keepdims=True), rtol=1e-13)


def test_a_layer_object_cannot_appear_twice():
    layer = nl.Linear(2, 2, rng=0)
    with pytest.raises(ValueError, match="item 2 is the same Linear.* object as item 0"):
        nl.Sequential(layer, nl.Sigmoid(), layer)
    with pytest.raises(ValueError, match="listed twice"):
        nl.SGD(layer.parameters() * 2, lr=0.1)


def test_float32_layers_compute_in_float32_whatever_the_input():
    model = nl.Sequential(nl.Linear(3, 2, rng=0, dtype=np.float32), nl.Bias(2, dtype=np.float32), nl.Sigmoid())
    Z = model.forward(np.ones((4, 3)))                                    # float64 data
    assert Z.dtype == np.float32
    loss = nl.EuclideanLoss()
    loss.forward(Z, np.zeros((4, 2)))                                     # float64 target
    assert loss.backward().dtype == np.float32


def test_gradients_accumulate_until_zero_grad(rng):
    model = xor_like()
    X, dZ = rng.normal(size=(4, 2)), rng.normal(size=(4, 1))
    model.forward(X)
    model.backward(dZ)
    once = [p.grad.copy() for p in model.parameters()]
    model.backward(dZ)
    for p, g in zip(model.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-15)
    model.zero_grad()
    assert all(not p.grad.any() for p in model.parameters())


def test_error_inside_sequential_names_position_and_layer():
    model = xor_like()
    with pytest.raises(nl.ShapeError) as info:
        model.forward(np.ones((4, 3)))
    message = str(info.value)
    assert message.startswith("Sequential layer 0 forward: Linear(in_features=2, out_features=3)")
    assert "got shape (4, 3)" in message


def test_nested_error_keeps_innermost_text():
    model = nl.Sequential(nl.Sigmoid(), nl.Sequential(nl.Linear(2, 2, rng=0)))
    with pytest.raises(nl.ShapeError, match=r"^Sequential layer 1 > Sequential layer 0 forward: Linear"):
        model.forward(np.ones((1, 5)))


def test_backward_before_forward_names_the_layer():
    for layer in (nl.Linear(2, 3, rng=0), nl.Bias(3), nl.Sigmoid()):
        with pytest.raises(RuntimeError, match=r"backward called before forward") as info:
            layer.backward(np.ones((1, 3)))
        assert str(info.value).startswith(repr(layer))
    with pytest.raises(RuntimeError, match=r"^Sequential layer 4 backward: Bias\(features=1\): backward called"):
        xor_like().backward(np.ones((1, 1)))


def test_train_eval_propagates_to_children():
    model = xor_like()
    assert model.training and model[2].training
    assert model.eval() is model
    assert not model.training and not model[0].training
    model.train()
    assert all(m.training for m in model)


def test_sequential_refuses_non_modules():
    with pytest.raises(TypeError, match="item 1"):
        nl.Sequential(nl.Sigmoid(), lambda x: x)


def test_input_grad_false_only_on_first_layer(rng):
    first = nl.Linear(2, 3, rng=0, input_grad=False)
    model = nl.Sequential(first, nl.Sigmoid())
    model.forward(rng.normal(size=(2, 2)))
    assert model.backward(np.ones((2, 3))) is None
    assert first.W.grad.any()
    assert "input_grad=False" in repr(first)
    bad = nl.Sequential(nl.Sigmoid(), nl.Linear(2, 3, rng=0, input_grad=False), nl.Sigmoid())
    bad.forward(rng.normal(size=(2, 2)))
    with pytest.raises(RuntimeError, match="only the first layer may skip"):
        bad.backward(np.ones((2, 3)))
