"""Linear and Bias against the derivation's worked examples, computed by hand."""
import re

import numpy as np
import pytest

import nnlayers as nl


def linear_with(W):
    layer = nl.Linear(*np.shape(W), rng=0)
    layer.W.data[...] = W
    return layer


def test_linear_1x2_times_2x1_by_hand():
    layer = linear_with([[3.0], [4.0]])
    X = np.array([[1.0, 2.0]])
    np.testing.assert_array_equal(layer.forward(X), [[11.0]])            # 1·3 + 2·4
    dX = layer.backward(np.array([[2.0]]))
    np.testing.assert_array_equal(dX, [[6.0, 8.0]])                     # δZ Wᵀ = 2·[3, 4]
    np.testing.assert_array_equal(layer.W.grad, [[2.0], [4.0]])         # Xᵀ δZ = [1, 2]ᵀ · 2


def test_linear_1x2_times_2x3_by_hand():
    layer = linear_with([[1.0, 2.0, 3.0], [4.0, 5.0, 6.0]])
    X = np.array([[1.0, 2.0]])
    np.testing.assert_array_equal(layer.forward(X), [[9.0, 12.0, 15.0]])  # [1+8, 2+10, 3+12]
    dX = layer.backward(np.array([[1.0, -1.0, 2.0]]))
    # δX = δZ Wᵀ: [1·1 − 1·2 + 2·3, 1·4 − 1·5 + 2·6] = [5, 11]
    np.testing.assert_array_equal(dX, [[5.0, 11.0]])
    # δW = Xᵀ δZ: row i is xᵢ·δZ
    np.testing.assert_array_equal(layer.W.grad, [[1.0, -1.0, 2.0], [2.0, -2.0, 4.0]])


def test_bias_gradient_sums_over_a_2x8_batch():
    layer = nl.Bias(8)
    X = np.zeros((2, 8))
    np.testing.assert_array_equal(layer.forward(X), X)                  # b starts at zero
    dZ = np.array([np.arange(8.0), np.arange(10.0, 18.0)])
    dX = layer.backward(dZ)
    np.testing.assert_array_equal(dX, dZ)                               # δX = δZ
    np.testing.assert_array_equal(layer.b.grad, [[10, 12, 14, 16, 18, 20, 22, 24]])  # Σₖ δZₖ,:
    layer.b.data[...] = np.arange(8.0)
    np.testing.assert_array_equal(layer.forward(X), np.tile(np.arange(8.0), (2, 1)))


def test_linear_initialisation_is_xavier_and_seeded():
    a, b = nl.Linear(200, 300, rng=7), nl.Linear(200, 300, rng=7)
    np.testing.assert_array_equal(a.W.data, b.W.data)
    bound = np.sqrt(6 / 500)
    assert np.abs(a.W.data).max() <= bound
    assert np.isclose(a.W.data.std(), bound / np.sqrt(3), rtol=0.02)   # std of U(−a, a) is a/√3
    he = nl.Linear(400, 50, rng=0, init="he")
    assert np.isclose(he.W.data.std(), np.sqrt(2 / 400), rtol=0.03)
    custom = nl.Linear(2, 3, init=lambda shape, fan_in, fan_out, rng: np.full(shape, fan_in + fan_out))
    np.testing.assert_array_equal(custom.W.data, np.full((2, 3), 5.0))
    with pytest.raises(ValueError, match="unknown initialiser"):
        nl.Linear(2, 3, init="nope")


def test_dtype_float32_is_kept():
    layer = nl.Linear(3, 2, rng=0, dtype=np.float32)
    bias = nl.Bias(2, dtype=np.float32)
    Z = bias.forward(layer.forward(np.ones((4, 3), np.float32)))
    assert layer.W.data.dtype == np.float32 and Z.dtype == np.float32
    assert layer.backward(bias.backward(np.ones((4, 2), np.float32))).dtype == np.float32


def test_integer_input_is_converted_not_wrapped():
    layer = linear_with([[1.0], [1.0]])
    X = np.array([[200, 100]], dtype=np.uint8)                          # uint8 sum would wrap to 44
    np.testing.assert_array_equal(layer.forward(X), [[300.0]])
    np.testing.assert_array_equal(layer.forward([[1, 2]]), [[3.0]])      # lists are accepted


@pytest.mark.parametrize("X, shape", [(np.ones((4, 3)), "(4, 3)"), (np.ones(2), "(2,)"),
                                      (np.ones((1, 4, 3)), "(1, 4, 3)")])
def test_linear_wrong_shape_names_layer_and_shapes(X, shape):
    with pytest.raises(nl.ShapeError) as info:
        nl.Linear(2, 8, rng=0).forward(X)
    assert str(info.value) == ("Linear(in_features=2, out_features=8): expected input with 2 features, "
                               f"shape (N, 2), got shape {shape}")


def test_bias_wrong_shape_and_wrong_dz():
    with pytest.raises(nl.ShapeError, match=r"Bias\(features=8\): expected input with 8 features.*\(4, 7\)"):
        nl.Bias(8).forward(np.ones((4, 7)))
    layer = nl.Linear(2, 3, rng=0)
    layer.forward(np.ones((4, 2)))
    with pytest.raises(nl.ShapeError, match=r"expected dZ of shape \(4, 3\).*got shape \(4, 1\)"):
        layer.backward(np.ones((4, 1)))                                 # would broadcast silently
    with pytest.raises(nl.ShapeError, match=r"got shape \(3, 4\)"):
        layer.backward(np.ones((3, 4)))


def test_non_numeric_input_is_refused():
    with pytest.raises(TypeError, match=r"Linear\(in_features=2, out_features=1\): expected a numeric array"):
        linear_with([[1.0], [1.0]]).forward(np.array([["a", "b"]]))


@pytest.mark.parametrize("args, error", [((0, 3), ValueError), ((2, -1), ValueError), ((2.5, 3), TypeError),
                                         ((True, 3), TypeError)])
def test_bad_sizes(args, error):
    with pytest.raises(error, match="must be a positive integer"):
        nl.Linear(*args)


# -- settings as data, dtype included -----------------------------------------------------------------

@pytest.mark.parametrize("make", [
    lambda: nl.Linear(3, 2, rng=0, dtype=np.float32),
    lambda: nl.Linear(3, 2, rng=0, dtype="float32", input_grad=False),
    lambda: nl.Linear(3, 2, rng=0),
    lambda: nl.Bias(4, dtype=np.float32),
    lambda: nl.Bias(4),
], ids=["linear-float32", "linear-float32-name-no-input-grad", "linear-float64", "bias-float32", "bias-float64"])
def test_settings_rebuild_the_same_layer_dtype_included(make):
    layer = make()
    settings = layer.settings()
    assert settings["dtype"] == layer.parameters()[0].data.dtype.name
    rebuilt = type(layer)(**settings)
    assert rebuilt.settings() == settings and repr(rebuilt) == repr(layer)
    assert [p.data.dtype for p in rebuilt.parameters()] == [p.data.dtype for p in layer.parameters()]


def test_repr_names_the_dtype_unless_float64():
    assert repr(nl.Linear(2, 3)) == "Linear(in_features=2, out_features=3)"
    assert repr(nl.Linear(2, 3, dtype=np.float32)) == "Linear(in_features=2, out_features=3, dtype='float32')"
    assert repr(nl.Linear(2, 3, dtype="float32", input_grad=False)) == (
        "Linear(in_features=2, out_features=3, input_grad=False, dtype='float32')")
    assert repr(nl.Bias(3)) == "Bias(features=3)"
    assert repr(nl.Bias(3, dtype="float32")) == "Bias(features=3, dtype='float32')"
    assert nl.Linear(2, 3, dtype="float32").settings() == {"in_features": 2, "out_features": 3, "input_grad": True,
                                                           "dtype": "float32"}
    assert nl.Bias(3).settings() == {"features": 3, "dtype": "float64"}


# -- the layer-author kit: forward and backward read as the formulas ------------------------------

@pytest.fixture
def kit_calls(monkeypatch):
    """Which of Module's kit methods each layer calls (float_input, forward_cache, check_grad)."""
    calls = []
    for name in ("float_input", "forward_cache", "check_grad"):
        original = getattr(nl.Module, name)

        def spy(self, *args, _original=original, _name=name, **kwargs):
            calls.append((type(self).__name__, _name))
            return _original(self, *args, **kwargs)
        monkeypatch.setattr(nl.Module, name, spy)
    return calls


@pytest.mark.parametrize("make, shape", [(lambda: nl.Linear(3, 2, rng=0), (4, 3)), (lambda: nl.Bias(3), (4, 3)),
                                         (nl.Sigmoid, (4, 3)), (nl.ReLU, (4, 3)), (nl.Tanh, (4, 3))],
                         ids=["Linear", "Bias", "Sigmoid", "ReLU", "Tanh"])
def test_layers_use_the_kit(kit_calls, make, shape, rng):
    layer = make()
    Z = layer.forward(rng.normal(size=shape))
    layer.backward(np.ones_like(Z))
    name = type(layer).__name__
    assert kit_calls == [(name, "float_input"), (name, "forward_cache"), (name, "check_grad")]


def test_the_kits_errors_through_linear_and_bias():
    for layer, dZ in [(nl.Linear(2, 3, rng=0), np.ones((4, 3))), (nl.Bias(3), np.ones((4, 3)))]:
        with pytest.raises(RuntimeError, match=re.escape(f"{layer!r}: backward called before forward")):
            layer.backward(dZ)
        layer.forward(np.ones((4, layer.settings().get("in_features", 3))))
        with pytest.raises(nl.ShapeError, match=r"expected dZ of shape \(4, 3\).*got shape \(4,\)"):
            layer.backward(np.ones(4))
        np.testing.assert_array_equal(layer.backward([[1.0] * 3] * 4), layer.backward(np.ones((4, 3))))  # a list
        layer.clear_cache()
        with pytest.raises(RuntimeError, match="backward called before forward"):
            layer.backward(dZ)
