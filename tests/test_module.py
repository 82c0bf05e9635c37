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
    assert message.startswith("layer 0 forward: Linear(in_features=2, out_features=3)")
    assert "got shape (4, 3)" in message


def test_nested_error_keeps_innermost_text():
    model = nl.Sequential(nl.Sigmoid(), nl.Sequential(nl.Linear(2, 2, rng=0)))
    with pytest.raises(nl.ShapeError, match=r"^layer 1 > layer 0 forward: Linear"):
        model.forward(np.ones((1, 5)))


def test_backward_before_forward_names_the_layer():
    for layer in (nl.Linear(2, 3, rng=0), nl.Bias(3), nl.Sigmoid()):
        with pytest.raises(RuntimeError, match=r"backward called before forward") as info:
            layer.backward(np.ones((1, 3)))
        assert str(info.value).startswith(repr(layer))
    with pytest.raises(RuntimeError, match=r"^layer 4 backward: Bias\(features=1\): backward called"):
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


# -- children, buffers and a user's own container ----------------------------------------------

class Block(nl.Module):
    """A user's container: two layers held as attributes, a buffer counting forwards.

    Z = σ(X W + b), written by hand: forward and backward call the children."""

    def __init__(self, features, hidden, rng=0):
        super().__init__()
        self.linear = self.add_module("linear", nl.Linear(features, hidden, rng=rng))
        self.bias = self.add_module("bias", nl.Bias(hidden))
        self.act = self.add_module("act", nl.Sigmoid())
        self.calls = self.add_buffer("calls", np.zeros((), dtype=np.int64))

    def forward(self, X):
        if self.training:
            self.calls.data += 1
        return self.act.forward(self.bias.forward(self.linear.forward(X)))

    def backward(self, dZ):
        return self.linear.backward(self.bias.backward(self.act.backward(dZ)))


def block_model():
    return nl.Sequential(nl.Linear(2, 3, rng=1), Block(3, 4, rng=2), nl.Linear(4, 1, rng=3), nl.Bias(1))


def test_user_container_parameters_buffers_and_children_are_walked():
    model = block_model()
    assert [name for name, _ in model.named_parameters()] == ["0.W", "1.linear.W", "1.bias.b", "2.W", "3.b"]
    assert [name for name, _ in model.named_buffers()] == ["1.calls"]
    assert [name for name, _ in model[1].named_children()] == ["linear", "bias", "act"]
    assert [path for path, _ in model.named_modules()] == ["", "0", "1", "1.linear", "1.bias", "1.act", "2", "3"]
    assert model.num_parameters() == 2 * 3 + 3 * 4 + 4 + 4 + 1
    assert list(model.state_dict()) == ["0.W", "1.linear.W", "1.bias.b", "2.W", "3.b", "1.calls"]
    model.eval()
    assert not model[1].act.training
    model.train()
    assert model[1].linear.training


def test_user_container_trains_every_inner_layer(rng):
    model = block_model()
    X, Y = rng.normal(size=(8, 2)), rng.normal(size=(8, 1))
    before = {name: p.data.copy() for name, p in model.named_parameters()}
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.05))
    history = trainer.fit(X, Y, epochs=20, progress=False)
    assert history.loss[-1] < history.loss[0]
    for name, p in model.named_parameters():
        assert not np.array_equal(p.data, before[name]), name     # the inner Linear and Bias moved too
    assert int(model[1].calls.data) == 20                           # the buffer counted the training forwards
    assert all(id(p) not in {id(b) for b in model.buffers()} for p in trainer.optimizer.parameters)


def test_user_container_passes_gradcheck_and_gradcheck_leaves_buffers(rng):
    model = block_model()
    model[1].calls.data[...] = 7
    report = nl.gradcheck(model, rng.normal(size=(3, 2)))
    assert [check.name for check in report.checks] == ["X", "0.W", "1.linear.W", "1.bias.b", "2.W", "3.b"]
    assert int(model[1].calls.data) == 7


def test_user_container_round_trips_through_a_weights_file_with_its_buffer(tmp_path, rng):
    model = block_model()
    model.forward(rng.normal(size=(2, 2)))
    model.forward(rng.normal(size=(2, 2)))
    nl.save(model, tmp_path / "block.npz")
    other = block_model()
    for p in other.parameters():
        p.data[...] = 0
    nl.load(other, tmp_path / "block.npz")
    assert int(other[1].calls.data) == 2
    for (name, a), (_, b) in zip(model.state_dict().items(), other.state_dict().items()):
        assert np.array_equal(a, b), name


class Forgetful(nl.Module):
    """Holds layers in attributes without registering them: the mistake that used to lose parameters."""

    def __init__(self):
        super().__init__()
        self.first = nl.Linear(2, 2, rng=0)
        self.rest = [nl.Bias(2)]

    def forward(self, X):
        return self.rest[0].forward(self.first.forward(X))


def test_unregistered_layer_attribute_is_a_clear_error_everywhere():
    model = nl.Sequential(nl.Sigmoid(), Forgetful())
    calls = [model.parameters, model.state_dict, lambda: nl.SGD(model.parameters(), lr=0.1),
             lambda: nl.summary(model, (2,)), lambda: nl.gradcheck(model, np.ones((1, 2)))]
    for call in calls:
        with pytest.raises(TypeError, match=r"Forgetful at layer 1: attribute 'first' holds Linear\(in_features=2, "
                                            r"out_features=2\), which is not registered.*add_module\('first'"):
            call()
    with pytest.raises(TypeError, match="attribute 'rest' holds Bias"):
        fixed = Forgetful()
        fixed.first = fixed.add_module("first", fixed.first)
        fixed.parameters()


def test_registration_refuses_clashes_and_bad_names():
    module = nl.Module()
    module.add_parameter("W", np.zeros(2))
    for name in ("W", "", "a.b", 3):
        with pytest.raises(ValueError, match="name"):
            module.add_buffer(name, np.zeros(2))
    with pytest.raises(TypeError, match="not a Module"):
        module.add_module("x", np.zeros(2))
    child = nl.Sigmoid()
    module.add_module("child", child)
    with pytest.raises(ValueError, match="already the child 'child'"):
        module.add_module("again", child)
    with pytest.raises(TypeError, match="numeric"):
        module.add_buffer("s", np.array(["a"]))


def test_a_layer_in_two_containers_is_refused_with_both_paths():
    shared = nl.Linear(2, 2, rng=0)
    model = nl.Sequential(nl.Sequential(shared), nl.Residual(nl.Sequential(shared)))
    with pytest.raises(ValueError, match=r"appears twice in the model, at layer 0 > layer 0 and at "
                                         r"layer 1 > block > layer 0"):
        model.parameters()


def test_errors_name_the_whole_path_in_any_container():
    model = nl.Sequential(nl.Sigmoid(), nl.Sigmoid(), nl.Sigmoid(), nl.Residual(block_model()))
    with pytest.raises(nl.ShapeError) as info:
        model.forward(np.ones((2, 5)))
    assert str(info.value).startswith("layer 3 > block > layer 0 forward: Linear(in_features=2, out_features=3): "
                                      "expected input with 2 features")
    inner = nl.Sequential(nl.Linear(2, 3, rng=1), Block(4, 4))        # Block's own Linear gets 3 features
    with pytest.raises(nl.ShapeError, match=r"^layer 1 > linear forward: Linear\(in_features=4"):
        inner.forward(np.ones((2, 2)))
    with pytest.raises(nl.ShapeError, match=r"^linear forward: Linear\(in_features=4"):
        Block(4, 4)(np.ones((2, 3)))                                    # a user container at the top: via __call__


def test_errors_from_numpy_inside_a_user_layer_are_located():
    class Broken(nl.Module):
        def forward(self, X):
            return X @ np.ones((7, 2))

    model = nl.Sequential(nl.Linear(2, 3, rng=0), nl.Residual(nl.Sequential(Broken())))
    with pytest.raises(ValueError, match=r"^layer 1 > block > layer 0 \(Broken\(\)\) forward: matmul"):
        model.forward(np.ones((1, 2)))


def test_load_state_dict_is_all_or_nothing_and_explains(rng):
    model = block_model()
    good = model.state_dict()
    before = model.state_dict()
    cases = {
        "expected a dict": [("0.W", good["0.W"])],
        "missing 3.b": {k: v for k, v in good.items() if k != "3.b"},
        "unexpected extra": {**good, "extra": np.zeros(1)},
        "1.bias.b has shape": {**good, "1.bias.b": np.zeros((4, 1))},
        "holds <U1 values": {**good, "3.b": np.array([["a"]])},
        "not a rectangular array": {**good, "3.b": [[1.0, 2.0], [3.0]]},
        "NaN or infinite": {**good, "2.W": np.full((4, 1), np.nan)},
        "1.calls holds values that int64 cannot represent": {**good, "1.calls": np.array(2.5)},
    }
    for message, state in cases.items():
        if message.startswith("NaN"):
            state = dict(state)
            state["0.W"] = good["0.W"] + 1                          # a valid change before the bad entry
        with pytest.raises(nl.WeightsFileError, match=message):
            model.load_state_dict(state)
        for name, array in model.state_dict().items():
            assert np.array_equal(array, before[name]), (message, name)
    model.load_state_dict({**good, "2.W": np.full((4, 1), np.inf)}, allow_nonfinite=True)
    assert np.isinf(model[2].W.data).all()


def test_float64_values_too_large_for_a_float32_model_are_refused():
    model = nl.Sequential(nl.Linear(2, 1, rng=0, dtype=np.float32))
    with pytest.raises(nl.WeightsFileError, match=r"0.W holds values too large for float32 \(e.g. 1e\+300\)"):
        model.load_state_dict({"0.W": np.array([[1.0], [1e300]])})
    model.load_state_dict({"0.W": np.array([[1.0], [3e38]])})
    assert model[0].W.data.dtype == np.float32 and model[0].W.data[1, 0] == np.float32(3e38)


def test_weights_files_of_the_previous_release_still_load():
    from nnlayers.examples import mnist
    from nnlayers.examples.xor import xor_network
    from tests.helpers import FIXTURES
    expected = np.load(FIXTURES / "outputs-0.1.0.npz")
    xor = xor_network(rng=99)
    nl.load(xor, FIXTURES / "xor-0.1.0.npz")
    # The same weights give the same outputs up to rounding: products summed in another order by
    # another BLAS kernel (OpenBLAS picks one per processor unless OPENBLAS_CORETYPE says) differ
    # in the last bits, so the comparison allows a few float64 / float32 ulps, not a wrong weight.
    np.testing.assert_allclose(xor.forward(expected["xor_in"]), expected["xor_out"], rtol=1e-13, atol=1e-15)
    cnn = mnist.cnn(1, 8, 3, width=2, hidden=5, rng=99, dtype=np.float32).eval()
    nl.load(cnn, FIXTURES / "cnn-0.1.0.npz")
    np.testing.assert_allclose(cnn.forward(expected["cnn_in"]), expected["cnn_out"], rtol=1e-5, atol=1e-6)


def test_clear_cache_drops_every_forward_cache(rng):
    model = nl.Sequential(nl.Conv2D(1, 2, 3, rng=0), nl.ReLU(), nl.MaxPool2D(2), nl.Flatten(),
                          nl.Dropout(0.5, rng=0), nl.Linear(8, 2, rng=0), nl.Bias(2), nl.Sigmoid())
    model.forward(rng.normal(size=(2, 1, 6, 6)))
    assert model[0]._X is not None
    assert model.clear_cache() is model
    for module in model.modules():
        for name in type(module).cache_names:
            assert getattr(module, name) is None, (module, name)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        model.backward(np.ones((2, 2)))


def test_predict_and_evaluate_leave_no_caches(rng):
    model = nl.Sequential(nl.Conv2D(1, 4, 3, rng=0), nl.Flatten(), nl.Linear(4 * 36, 3, rng=0))
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(model.parameters()))
    X, y = rng.normal(size=(20, 1, 8, 8)), rng.integers(0, 3, size=20)
    assert trainer.predict(X, batch_size=8).shape == (20, 3)
    assert model[0]._X is None and model[2]._X is None
    trainer.evaluate(X, y)
    assert model[0]._X is None


# -- Residual ------------------------------------------------------------------------------------

def test_residual_forward_and_backward_by_hand(rng):
    block = nl.Sequential(nl.Linear(3, 3, rng=0), nl.Tanh())
    residual = nl.Residual(block)
    X, dZ = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    W = block[0].W.data
    Z = residual.forward(X)
    np.testing.assert_allclose(Z, X + np.tanh(X @ W), rtol=1e-14)          # Z = X + block(X)
    dX = residual.backward(dZ)
    dA = (1 - np.tanh(X @ W) ** 2) * dZ
    np.testing.assert_allclose(dX, dZ + dA @ W.T, rtol=1e-13)              # δX = δZ + block.backward(δZ)
    np.testing.assert_allclose(block[0].W.grad, X.T @ dA, rtol=1e-13)


def test_residual_with_projection_shortcut(rng):
    residual = nl.Residual(nl.Sequential(nl.Linear(3, 5, rng=0), nl.Sigmoid()), shortcut=nl.Linear(3, 5, rng=1))
    assert [name for name, _ in residual.named_parameters()] == ["block.0.W", "shortcut.W"]
    X = rng.normal(size=(2, 3))
    S = residual.shortcut.W.data
    np.testing.assert_allclose(residual.forward(X), X @ S + nl.sigmoid(X @ residual.block[0].W.data), rtol=1e-14)
    nl.gradcheck(residual, X)
    with pytest.raises(nl.ShapeError, match=r"block's output shape \(2, 5\) differs from the input's shape "
                                            r"\(2, 3\); a shape-changing block needs a projection shortcut"):
        nl.Residual(nl.Linear(3, 5, rng=0)).forward(X)
    assert repr(residual).startswith("Residual(\n  (block): Sequential(\n")


# -- the kit for layer authors -----------------------------------------------------------------------

class Cube(nl.Module):
    """Z = X³; δX = 3X² ⊙ δZ — written with the kit."""

    cache_names = ("_X",)

    def __init__(self):
        super().__init__()
        self._X = None

    def forward(self, X):
        self._X = X = self.float_input(X)
        return X ** 3

    def backward(self, dZ):
        X = self.forward_cache(self._X)
        return 3 * X ** 2 * self.check_grad(dZ, X.shape)


class Softplus(nl.Elementwise):
    """Z = log(1 + eˣ); f′(X) = σ(X), from the input."""

    def function(self, X):
        return np.logaddexp(0, X)

    def derivative(self, X, Z):
        return nl.sigmoid(X)


def test_layer_kit_gives_the_library_errors_and_passes_gradcheck(rng):
    cube = Cube()
    with pytest.raises(RuntimeError, match=r"^Cube\(\): backward called before forward"):
        cube.backward(np.ones(2))
    with pytest.raises(TypeError, match=r"^Cube\(\): expected a numeric array"):
        cube.forward(np.array(["x"]))
    cube.forward(np.arange(3))                                              # integers become float64
    with pytest.raises(nl.ShapeError, match=r"^Cube\(\): backward expected dZ of shape \(3,\)"):
        cube.backward(np.ones(4))
    nl.gradcheck(cube, rng.normal(size=(2, 3)))
    nl.gradcheck(Softplus(), rng.normal(size=(2, 3)))
    cube.clear_cache()
    assert cube._X is None


def test_every_layer_states_its_settings_as_data():
    from tests.test_gradcheck import LAYER_CASES
    leaves = [make() for _, make, _ in LAYER_CASES]
    leaves = [layer for layer in leaves if not layer.named_children()]
    assert len(leaves) >= 15
    for layer in leaves:
        settings = layer.settings()
        assert isinstance(settings, dict)
        rebuilt = type(layer)(**settings)                 # the constructor's own arguments, nothing else
        assert rebuilt.settings() == settings and repr(rebuilt) == repr(layer)
    conv = nl.Conv2D(3, 8, (3, 5), stride=2, padding=(1, 2), bias=False, rng=0)
    assert conv.settings() == {"in_channels": 3, "out_channels": 8, "kernel_size": (3, 5), "stride": (2, 2),
                               "padding": (1, 2), "bias": False, "input_grad": True,
                               "algorithm": "gemm", "dtype": "float64"}
    assert nl.Linear(2, 3, input_grad=False).settings() == {"in_features": 2, "out_features": 3,
                                                            "input_grad": False, "dtype": "float64"}
    assert nl.MaxPool2D(3, 1).settings() == {"kernel_size": (3, 3), "stride": (1, 1)}
    assert nl.Dropout(0.25).settings() == {"p": 0.25} and nl.Bias(4).settings() == {"features": 4, "dtype": "float64"}
    assert nl.ReLU().settings() == {} and nl.Flatten().settings() == {} and xor_like().settings() == {}


def test_repr_shows_a_user_layers_settings():
    class Scale(nl.Module):
        def __init__(self, factor=2.0, axis_name="x"):
            super().__init__()
            self.factor, self.axis_name = factor, axis_name

        def settings(self):
            return {"factor": self.factor, "axis_name": self.axis_name}

    assert repr(Scale()) == "Scale(factor=2.0, axis_name='x')"
    assert repr(nl.Sequential(Scale(0.5))) == "Sequential(\n  (0): Scale(factor=0.5, axis_name='x')\n)"


def test_weights_files_of_release_0_2_still_load():
    """A CNN with BatchNorm and a small ResNet saved by 0.2.0 (BatchNorm buffers moved off their
    initial values) load into today's builders and give the outputs 0.2.0 gave."""
    from nnlayers.examples import mnist
    from tests.helpers import FIXTURES
    expected = np.load(FIXTURES / "outputs-0.2.0.npz")
    models = {"cnn_bn": mnist.cnn(1, 8, 3, width=2, hidden=5, batch_norm=True, rng=1, dtype=np.float64),
              "resnet": mnist.resnet(1, 3, widths=(2, 4, 4), blocks=(1, 1, 1), rng=1, dtype=np.float64)}
    for key, model in models.items():
        nl.load(model, FIXTURES / f"{key.replace('_', '-')}-0.2.0.npz")
        np.testing.assert_allclose(model.eval().forward(expected[f"{key}_in"]), expected[f"{key}_out"],
                                   rtol=1e-12, atol=1e-14)


def test_call_takes_several_inputs_and_the_base_names_what_is_missing():
    class Product(nl.Module):                          # Z = X₁ ⊙ X₂; δX₁ = δZ ⊙ X₂, δX₂ = δZ ⊙ X₁
        def forward(self, X1, X2):
            self._X1, self._X2 = X1, X2
            return X1 * X2

        def backward(self, dZ):
            return dZ * self._X2, dZ * self._X1

    product = Product()
    np.testing.assert_array_equal(product(np.array([2.0]), np.array([3.0])), [6.0])
    assert product.backward(np.array([1.0])) == (3.0, 2.0)
    with pytest.raises(NotImplementedError, match="Module does not implement forward"):
        nl.Module()(np.ones(1), np.ones(1))
    with pytest.raises(NotImplementedError, match="Module does not implement backward"):
        nl.Module().backward(np.ones(1), np.ones(1))
    assert nl.as_tuple(np.ones(1))[0].shape == (1,) and nl.as_tuple((1, 2)) == (1, 2)


def test_to_a_dtype_casts_parameters_grads_and_float_buffers_and_keeps_the_parameters():
    from nnlayers.examples import mnist
    model = mnist.build("cnn-bn", rng=0, dtype=np.float64)
    parameters = model.parameters()
    before = {name: array.copy() for name, array in model.state_dict().items()}
    assert model.to(np.float32) is model and model.dtype == np.float32
    assert model.parameters() == parameters                    # the same Parameter objects: only their arrays change
    assert {p.data.dtype for p in parameters} == {p.grad.dtype for p in parameters} == {np.dtype(np.float32)}
    counters = {b.data.dtype for b in model.buffers() if b.name == "num_batches_tracked"}
    assert counters == {np.dtype(np.int64)}                     # integer buffers stay integers
    assert {b.data.dtype for b in model.buffers() if b.name != "num_batches_tracked"} == {np.dtype(np.float32)}
    for name, array in model.state_dict().items():
        np.testing.assert_array_equal(array, before[name].astype(array.dtype))
    X = np.random.default_rng(0).random((2, 1, 28, 28))
    assert model.forward(X).dtype == np.float32
    model.to("float64")
    assert model.dtype == np.float64
    with pytest.raises(TypeError, match="must be too, got int32"):
        model.to(np.int32)


def test_sequential_dtype_sets_the_whole_models_dtype():
    model = nl.Sequential(nl.Linear(3, 4, rng=0), nl.BatchNorm1d(4), nl.ReLU(), nl.Bias(4), dtype=np.float32)
    assert {a.dtype for a in model.state_dict().values() if a.dtype.kind == "f"} == {np.dtype(np.float32)}
    reference = nl.Linear(3, 4, rng=0, dtype=np.float32)
    np.testing.assert_array_equal(model[0].W.data, reference.W.data)     # the same initial values
