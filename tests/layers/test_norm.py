"""BatchNorm1d and BatchNorm2d: hand-computed values, running statistics, modes, finite differences,
state round trips and errors. PyTorch parity lives in test_torch_parity.py."""
import numpy as np
import pytest

import nnlayers as nl
from nnlayers.examples import mnist


def randomised(layer, rng):
    """γ and β away from their initial ones and zeros, so that a slip in either would show."""
    layer.gamma.data[...] = rng.uniform(0.5, 2.0, size=layer.gamma.shape)
    layer.beta.data[...] = rng.normal(size=layer.beta.shape)
    return layer


def test_batchnorm1d_by_hand():
    # Feature 0: x = (1, 3) → μ = 2, v = 1 (biased), ẑ = (−1, 1)/√(1 + ε)
    # Feature 1: x = (0, 0) → μ = 0, v = 0, ẑ = (0, 0)
    bn = nl.BatchNorm1d(2)
    bn.gamma.data[...] = [2.0, 1.0]
    bn.beta.data[...] = [0.5, -1.0]
    Z = bn.forward(np.array([[1.0, 0.0], [3.0, 0.0]]))
    s = 1 / np.sqrt(1 + 1e-5)
    np.testing.assert_allclose(Z, [[0.5 - 2 * s, -1.0], [0.5 + 2 * s, -1.0]], rtol=1e-15)
    # running_mean = 0.9·0 + 0.1·μ;  running_var = 0.9·1 + 0.1·v·M/(M − 1)  (unbiased: 1·2/1 = 2)
    np.testing.assert_allclose(bn.running_mean.data, [0.2, 0.0], rtol=1e-15)
    np.testing.assert_allclose(bn.running_var.data, [0.9 + 0.2, 0.9], rtol=1e-15)
    assert bn.num_batches_tracked.data == 1 and bn.num_batches_tracked.data.shape == ()
    # δZ = (1, 0) on feature 0: δβ = 1, δγ = −s, δẑ = γ δZ = (2, 0), mean(δẑ) = 1,
    # mean(δẑ ⊙ ẑ) = −s;  δx = s (δẑ − 1 − ẑ·(−s)) = s ((2, 0) − 1 + s²(−1, 1)) = s (1 − s², −1 + s²)
    dX = bn.backward(np.array([[1.0, 0.0], [0.0, 0.0]]))
    np.testing.assert_allclose(dX[:, 0], [s * (1 - s * s), s * (-1 + s * s)], rtol=1e-9)
    np.testing.assert_array_equal(dX[:, 1], [0.0, 0.0])
    np.testing.assert_allclose(bn.beta.grad, [1.0, 0.0])
    np.testing.assert_allclose(bn.gamma.grad, [-s, 0.0], rtol=1e-15)


def test_training_output_has_zero_mean_unit_variance_per_channel(rng):
    bn = nl.BatchNorm2d(3)
    X = rng.normal(loc=[5.0, -2.0, 0.0], scale=[3.0, 0.1, 1.0], size=(4, 5, 6, 3)).transpose(0, 3, 1, 2)
    Z = bn.forward(X)
    np.testing.assert_allclose(Z.mean(axis=(0, 2, 3)), 0, atol=1e-12)
    np.testing.assert_allclose(Z.var(axis=(0, 2, 3)), X.var(axis=(0, 2, 3)) / (X.var(axis=(0, 2, 3)) + 1e-5))


def test_backward_formula_against_the_long_form(rng):
    """The compact δX equals the textbook chain of δẑ, δv and δμ, written out step by step."""
    bn = randomised(nl.BatchNorm2d(3), rng)
    X = rng.normal(size=(2, 3, 4, 5))
    dZ = rng.normal(size=X.shape)
    bn.forward(X)
    dX = bn.backward(dZ)
    axes, M = (0, 2, 3), 2 * 4 * 5
    g = bn.gamma.data[None, :, None, None]
    mu = X.mean(axis=axes, keepdims=True)
    v = X.var(axis=axes, keepdims=True)
    dzhat = g * dZ
    dv = np.sum(dzhat * (X - mu), axis=axes, keepdims=True) * -0.5 * (v + 1e-5) ** -1.5
    dmu = -np.sum(dzhat, axis=axes, keepdims=True) / np.sqrt(v + 1e-5)
    expected = dzhat / np.sqrt(v + 1e-5) + dv * 2 * (X - mu) / M + dmu / M
    np.testing.assert_allclose(dX, expected, rtol=1e-10, atol=1e-12)


def test_running_statistics_follow_momentum_with_the_unbiased_variance(rng):
    bn = nl.BatchNorm2d(2, momentum=0.3)
    mean, var = np.zeros(2), np.ones(2)
    for _ in range(4):
        X = rng.normal(loc=3.0, scale=2.0, size=(3, 2, 2, 2))
        bn.forward(X)
        mean = 0.7 * mean + 0.3 * X.mean(axis=(0, 2, 3))
        var = 0.7 * var + 0.3 * X.var(axis=(0, 2, 3), ddof=1)
    np.testing.assert_allclose(bn.running_mean.data, mean, rtol=1e-13)
    np.testing.assert_allclose(bn.running_var.data, var, rtol=1e-13)
    assert bn.num_batches_tracked.data == 4


def test_momentum_none_averages_all_batches(rng):
    bn = nl.BatchNorm1d(3, momentum=None)
    batches = [rng.normal(size=(5, 3)) for _ in range(3)]
    for X in batches:
        bn.forward(X)
    np.testing.assert_allclose(bn.running_mean.data, np.mean([X.mean(axis=0) for X in batches], axis=0))
    np.testing.assert_allclose(bn.running_var.data, np.mean([X.var(axis=0, ddof=1) for X in batches], axis=0))


def test_eval_mode_uses_running_statistics_and_a_plain_affine_backward(rng):
    bn = randomised(nl.BatchNorm2d(2), rng)
    bn.running_mean.data[...] = [1.0, -2.0]
    bn.running_var.data[...] = [4.0, 0.25]
    bn.eval()
    X = rng.normal(size=(1, 2, 3, 3))                          # a batch of one is fine in eval mode
    Z = bn.forward(X)
    sigma = np.sqrt(np.array([4.0, 0.25]) + 1e-5)[None, :, None, None]
    gamma, beta = bn.gamma.data[None, :, None, None], bn.beta.data[None, :, None, None]
    np.testing.assert_allclose(Z, gamma * (X - np.array([1.0, -2.0])[None, :, None, None]) / sigma + beta)
    dZ = rng.normal(size=Z.shape)
    np.testing.assert_allclose(bn.backward(dZ), gamma / sigma * dZ)
    np.testing.assert_array_equal(bn.running_mean.data, [1.0, -2.0])     # untouched in eval mode
    assert bn.num_batches_tracked.data == 0
    assert nl.gradcheck(bn, rng.normal(size=(2, 2, 3, 3))).passed


@pytest.mark.parametrize("make, shape", [
    (lambda: nl.BatchNorm1d(4), (5, 4)),
    (lambda: nl.BatchNorm1d(3), (2, 3)),                       # the smallest batch training allows
    (lambda: nl.BatchNorm1d(2), (3, 2, 4)),                    # N×C×L
    (lambda: nl.BatchNorm2d(3), (2, 3, 3, 4)),
    (lambda: nl.BatchNorm2d(2), (1, 2, 3, 3)),                 # batch 1: statistics over H·W
    (lambda: nl.BatchNorm2d(2, momentum=None), (3, 2, 2, 1)),
], ids=["1d", "1d-batch2", "1d-NCL", "2d", "2d-batch1", "2d-momentum-none"])
def test_training_mode_passes_gradcheck(make, shape, rng):
    bn = randomised(make(), rng)
    report = nl.gradcheck(bn, rng.normal(size=shape))
    assert [c.name for c in report.checks] == ["X", "gamma", "beta"]
    assert max(c.max_abs_error for c in report.checks) < 1e-7


class EvalBackwardInTraining(nl.BatchNorm1d):
    """The slip of treating μ and σ as constants in training mode: δX = (γ/σ) δZ."""

    def backward(self, dZ):
        super().backward(dZ)
        return dZ * (self.gamma.data * self._inv_sigma)


def test_a_backward_that_ignores_the_batch_statistics_fails_gradcheck(rng):
    bn = randomised(EvalBackwardInTraining(3), rng)
    report = nl.gradcheck(bn, rng.normal(size=(4, 3)), raise_on_failure=False)
    assert not report["X"].passed and report["gamma"].passed and report["beta"].passed


def test_gradcheck_leaves_running_statistics_as_they_were(rng):
    bn = nl.BatchNorm2d(2)
    bn.forward(rng.normal(size=(2, 2, 3, 3)))
    saved = {name: value.copy() for name, value in bn.state_dict().items()}
    nl.gradcheck(bn, rng.normal(size=(2, 2, 3, 3)))
    for name, value in bn.state_dict().items():
        np.testing.assert_array_equal(value, saved[name])
    bn.forward(rng.normal(size=(2, 2, 3, 3)))                  # still updates in place afterwards
    assert bn.num_batches_tracked.data == 2


def test_float32_stays_float32(rng):
    bn = nl.BatchNorm2d(3, dtype=np.float32)
    X = rng.normal(size=(4, 3, 5, 5))                           # float64 input is converted
    Z = bn.forward(X)
    dX = bn.backward(np.ones(Z.shape, np.float32))
    assert Z.dtype == dX.dtype == np.float32
    assert {v.dtype for k, v in bn.state_dict().items() if k != "num_batches_tracked"} == {np.dtype(np.float32)}
    bn.eval()
    assert bn.forward(X).dtype == np.float32
    assert bn.backward(np.ones(Z.shape, np.float32)).dtype == np.float32


def test_input_untouched_output_fresh_and_gradients_accumulate(rng):
    bn = randomised(nl.BatchNorm1d(3), rng)
    X = rng.normal(size=(4, 3))
    saved = X.copy()
    Z = bn.forward(X)
    dZ = rng.normal(size=Z.shape)
    dX = bn.backward(dZ)
    np.testing.assert_array_equal(X, saved)
    assert not np.shares_memory(Z, X) and not np.shares_memory(dX, dZ)
    first = bn.gamma.grad.copy()
    bn.backward(dZ)
    np.testing.assert_allclose(bn.gamma.grad, 2 * first)
    bn.zero_grad()
    assert not bn.gamma.grad.any() and not bn.beta.grad.any()


def test_parameters_buffers_and_repr():
    bn = nl.BatchNorm2d(4)
    assert [name for name, _ in bn.named_parameters()] == ["gamma", "beta"]
    assert [name for name, _ in bn.named_buffers()] == ["running_mean", "running_var", "num_batches_tracked"]
    np.testing.assert_array_equal(bn.gamma.data, np.ones(4))
    np.testing.assert_array_equal(bn.beta.data, np.zeros(4))
    np.testing.assert_array_equal(bn.running_var.data, np.ones(4))
    assert bn.num_batches_tracked.data.dtype == np.int64
    assert (bn.num_features, bn.eps, bn.momentum) == (4, 1e-5, 0.1)
    assert repr(bn) == "BatchNorm2d(4, eps=1e-05, momentum=0.1)"
    assert repr(nl.BatchNorm1d(3, eps=1e-3, momentum=None)) == "BatchNorm1d(3, eps=0.001, momentum=None)"
    assert bn.num_parameters() == 8


def test_clear_cache_drops_the_normalised_input(rng):
    bn = nl.BatchNorm1d(2)
    bn.forward(rng.normal(size=(3, 2)))
    bn.clear_cache()
    with pytest.raises(RuntimeError, match="backward called before forward"):
        bn.backward(np.zeros((3, 2)))


def test_errors():
    with pytest.raises(nl.ShapeError, match=r"BatchNorm2d\(3, .*\): expected input of shape \(N, 3, H, W\), "
                                            r"got shape \(2, 4, 5, 5\)"):
        nl.BatchNorm2d(3).forward(np.zeros((2, 4, 5, 5)))
    with pytest.raises(nl.ShapeError, match=r"expected input of shape \(N, 3\) or \(N, 3, L\), got shape \(2, 3, 1, 1\)"):
        nl.BatchNorm1d(3).forward(np.zeros((2, 3, 1, 1)))
    with pytest.raises(ValueError, match=r"training mode needs more than one value per channel.*\(1, 3\).*eval"):
        nl.BatchNorm1d(3).forward(np.zeros((1, 3)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        nl.BatchNorm1d(3).backward(np.zeros((2, 3)))
    bn = nl.BatchNorm1d(3)
    bn.forward(np.zeros((2, 3)))
    with pytest.raises(nl.ShapeError, match=r"expected dZ of shape \(2, 3\).*got shape \(3, 2\)"):
        bn.backward(np.zeros((3, 2)))
    with pytest.raises(TypeError, match="expected a numeric array"):
        bn.forward(np.array([["a", "b", "c"]] * 2))


@pytest.mark.parametrize("kwargs, error, message", [
    # one rule: TypeError for a wrong type, ValueError for a wrong value, each naming the argument
    (dict(num_features=0), ValueError, "num_features must be a positive integer"),
    (dict(num_features=3, eps=0), ValueError, "eps must be a finite number > 0, got 0"),
    (dict(num_features=3, eps=-1e-5), ValueError, "eps must be a finite number > 0"),
    (dict(num_features=3, eps=float("inf")), ValueError, "eps must be a finite number > 0"),
    (dict(num_features=3, eps="0.1"), TypeError, r"BatchNorm2d: eps must be a finite number > 0, got '0\.1' \(str\)"),
    (dict(num_features=3, eps=None), TypeError, "eps must be a finite number > 0"),
    (dict(num_features=3, eps=True), TypeError, "eps must be"),
    (dict(num_features=3, momentum=1.5), ValueError, r"momentum must be a number in \[0, 1\] or None"),
    (dict(num_features=3, momentum=float("nan")), ValueError, r"momentum must be a number in \[0, 1\] or None"),
    (dict(num_features=3, momentum="0.1"), TypeError,
     r"BatchNorm2d: momentum must be a number in \[0, 1\] or None, got '0\.1' \(str\)"),
    (dict(num_features=3, momentum="fast"), TypeError, "momentum must be"),
    (dict(num_features=3, momentum=False), TypeError, "momentum must be"),
])
def test_bad_arguments(kwargs, error, message):
    with pytest.raises(error, match=message) as caught:
        nl.BatchNorm2d(**kwargs)
    assert type(caught.value) is error


def test_numpy_numbers_are_accepted_and_stored_as_floats():
    bn = nl.BatchNorm1d(np.int64(3), eps=np.float32(1e-3), momentum=np.float64(0.5))
    assert (bn.num_features, bn.eps, bn.momentum) == (3, pytest.approx(1e-3), 0.5)
    assert type(bn.eps) is float and type(bn.momentum) is float


# -- inside containers, and saved with the weights ----------------------------------------------

def basic_block(C, rng):
    """conv-BN-ReLU-conv-BN with an identity shortcut, then ReLU after the sum: the reference ResNet block."""
    return mnist.basic_block(C, C, rng=rng, dtype=np.float64)


def test_batchnorm_inside_residual_and_sequential_passes_gradcheck(rng):
    model = basic_block(2, rng)
    for bn in (model[0].block[1], model[0].block[4]):
        randomised(bn, rng)
    X = rng.normal(size=(2, 2, 4, 4))
    report = nl.gradcheck(model, X + np.sign(X) * 0.5)
    assert [c.name for c in report.checks] == ["X", "0.block.0.W", "0.block.1.gamma", "0.block.1.beta",
                                               "0.block.3.W", "0.block.4.gamma", "0.block.4.beta"]


def test_state_dict_and_weights_files_keep_running_statistics(tmp_path, rng):
    model = nl.Sequential(nl.Conv2D(1, 3, 3, padding="same", rng=0), nl.BatchNorm2d(3), nl.ReLU(),
                          nl.Flatten(), nl.Linear(48, 4, rng=1), nl.BatchNorm1d(4))
    model_res = basic_block(3, rng)
    for _ in range(3):
        model.forward(rng.normal(loc=2.0, size=(5, 1, 4, 4)))
        model_res.forward(rng.normal(loc=1.0, size=(2, 3, 4, 4)))
    for trained, fresh, buffer_name in (
            (model, nl.Sequential(nl.Conv2D(1, 3, 3, padding="same", rng=5), nl.BatchNorm2d(3), nl.ReLU(),
                                  nl.Flatten(), nl.Linear(48, 4, rng=6), nl.BatchNorm1d(4)), "5.running_var"),
            (model_res, basic_block(3, np.random.default_rng(7)), "0.block.4.running_mean")):
        state = trained.state_dict()
        assert not np.array_equal(state[buffer_name], fresh.state_dict()[buffer_name])   # trained ≠ fresh
        path = tmp_path / "weights.npz"
        nl.save(trained, path)
        nl.load(fresh, path)
        for name, value in fresh.state_dict().items():
            np.testing.assert_array_equal(value, state[name], err_msg=name)
        assert all(fresh_buffer.data.dtype == buffer.data.dtype
                   for fresh_buffer, buffer in zip(fresh.buffers(), trained.buffers()))
        X = rng.normal(size=(3,) + ((1, 4, 4) if trained is model else (3, 4, 4)))
        trained.eval(), fresh.eval()
        np.testing.assert_array_equal(fresh.forward(X), trained.forward(X))   # eval uses the loaded statistics
    tracked = dict(model.named_buffers())["1.num_batches_tracked"].data
    assert tracked == 3


@pytest.mark.parametrize("make", [
    lambda: nl.BatchNorm1d(3, dtype=np.float32),
    lambda: nl.BatchNorm2d(4, eps=1e-3, momentum=None, dtype="float32"),
    lambda: nl.BatchNorm2d(4, momentum=0.3),
], ids=["1d-float32", "2d-float32-name-momentum-none", "2d-float64"])
def test_settings_rebuild_the_same_layer_dtype_included(make):
    bn = make()
    settings = bn.settings()
    assert settings["dtype"] == bn.gamma.data.dtype.name
    rebuilt = type(bn)(**settings)
    assert rebuilt.settings() == settings and repr(rebuilt) == repr(bn)
    assert {array.dtype for name, array in rebuilt.state_dict().items() if name != "num_batches_tracked"} == \
        {np.dtype(settings["dtype"])}


def test_repr_names_the_dtype_unless_float64():
    assert repr(nl.BatchNorm2d(4, dtype=np.float32)) == "BatchNorm2d(4, eps=1e-05, momentum=0.1, dtype='float32')"
    assert nl.BatchNorm1d(3, momentum=None).settings() == {"num_features": 3, "eps": 1e-5, "momentum": None,
                                                           "dtype": "float64"}
