"""The shared finite-difference check over every layer and loss (float64), and the checker itself."""
import warnings

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.xor import XOR_X, xor_network

# (id, factory, input shape): random shapes include batch 1 and one output unit.
LAYER_CASES = [
    ("linear-4x3->5", lambda: nl.Linear(3, 5, rng=0), (4, 3)),
    ("linear-batch1-1out", lambda: nl.Linear(6, 1, rng=1), (1, 6)),
    ("bias-3x7", lambda: nl.Bias(7), (3, 7)),
    ("bias-batch1", lambda: nl.Bias(1), (1, 1)),
    ("sigmoid-2x5", nl.Sigmoid, (2, 5)),
    ("sigmoid-4d", nl.Sigmoid, (2, 1, 3, 2)),
    ("xor-network", lambda: xor_network(8, rng=3), (4, 2)),
    ("deep-mlp", lambda: nl.Sequential(nl.Linear(3, 4, rng=0), nl.Bias(4), nl.Sigmoid(),
                                       nl.Linear(4, 4, rng=1), nl.Bias(4), nl.Sigmoid(),
                                       nl.Linear(4, 1, rng=2)), (5, 3)),
]


@pytest.mark.parametrize("make, shape", [case[1:] for case in LAYER_CASES], ids=[c[0] for c in LAYER_CASES])
def test_every_layer_passes_gradcheck(make, shape, rng):
    module = make()
    for parameter in module.parameters():        # non-zero biases, so their gradients matter
        parameter.data += rng.normal(scale=0.1, size=parameter.shape)
    report = nl.gradcheck(module, rng.normal(size=shape))
    assert report.passed
    assert [c.name for c in report.checks] == ["X"] + [name for name, _ in module.named_parameters()]
    assert max(c.max_rel_error for c in report.checks) < 1e-6


def test_xor_network_at_the_derivation_inputs():
    report = nl.gradcheck(xor_network(8, rng=0), XOR_X)
    assert report.passed and len(report.checks) == 5


@pytest.mark.parametrize("shape", [(4, 1), (1, 3), (2, 5)])
def test_euclidean_loss_passes_gradcheck(shape, rng):
    report = nl.gradcheck(nl.EuclideanLoss(), rng.normal(size=shape), rng.normal(size=shape))
    assert report.passed and report["pred"].max_rel_error < 1e-8


class WrongLinear(nl.Linear):
    """δW computed as Xᵀ δZ / N: the classic normalisation slip."""

    def backward(self, dZ):
        dX = super().backward(dZ)
        self.W.grad /= len(self._X)
        return dX


class WrongSigmoid(nl.Sigmoid):
    """σ′ taken as σ instead of σ(1 − σ)."""

    def backward(self, dZ):
        return self._Z * dZ


@pytest.mark.parametrize("layer, bad", [(WrongLinear(3, 2, rng=0), "W"), (WrongSigmoid(), "X")])
def test_a_wrong_backward_fails(layer, bad, rng):
    X = rng.normal(size=(4, 3))
    with pytest.raises(nl.GradcheckError, match=f"(?s)gradcheck failed for .*\\n{bad}: FAILED"):
        nl.gradcheck(layer, X)
    report = nl.gradcheck(layer, X, raise_on_failure=False)
    assert not report[bad].passed and report[bad].max_rel_error > 0.1


def test_report_names_worst_element():
    layer = WrongLinear(2, 2, rng=0)
    report = nl.gradcheck(layer, np.array([[1.0, 2.0], [3.0, 4.0]]), raise_on_failure=False)
    check = report["W"]
    i = check.worst_index
    assert len(i) == 2
    assert abs(check.analytic[i] - check.numeric[i]) == pytest.approx(check.max_abs_error)
    assert f"worst at W[{i[0]}, {i[1]}]" in str(check)


def test_parameters_and_grads_are_restored_exactly(rng):
    model = xor_network(4, rng=0)
    X = rng.normal(size=(3, 2))
    model.forward(X)
    model.backward(np.ones((3, 1)))
    data = [p.data.copy() for p in model.parameters()]
    grads = [p.grad.copy() for p in model.parameters()]
    nl.gradcheck(model, X)
    for p, d, g in zip(model.parameters(), data, grads):
        np.testing.assert_array_equal(p.data, d)
        np.testing.assert_array_equal(p.grad, g)


def test_float32_warns():
    layer = nl.Linear(2, 2, rng=0, dtype=np.float32)
    with pytest.warns(UserWarning, match="float32"):
        nl.gradcheck(layer, np.ones((1, 2), np.float32), rtol=1e-1, atol=1e-1, raise_on_failure=False)


def test_float64_does_not_warn(rng):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        nl.gradcheck(nl.Sigmoid(), rng.normal(size=(2, 2)))


def test_numerical_jacobian_of_known_function():
    # f(x) = [x₀ x₁, sin x₀, x₁²]: J = [[x₁, x₀], [cos x₀, 0], [0, 2x₁]]
    x = np.array([0.5, -2.0])
    J = nl.numerical_jacobian(lambda v: np.array([v[0] * v[1], np.sin(v[0]), v[1] ** 2]), x)
    np.testing.assert_allclose(J, [[-2.0, 0.5], [np.cos(0.5), 0.0], [0.0, -4.0]], atol=1e-9)
    assert J.shape == (3, 2)
    np.testing.assert_array_equal(x, [0.5, -2.0])                       # the caller's x is untouched


def test_gradcheck_refuses_other_objects():
    with pytest.raises(TypeError, match="expected a Module or a Loss"):
        nl.gradcheck(lambda x: x, np.ones(2))
    with pytest.raises(TypeError, match="needs the target"):
        nl.gradcheck(nl.EuclideanLoss(), np.ones((1, 1)))
