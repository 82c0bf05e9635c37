"""Containers and the several-inputs contract: Sequential (one list of children, tuples passed on),
Parallel, Add, Concatenate; modules of two inputs and of two outputs, checked and trained."""
import numpy as np
import pytest

import nnlayers as nl
from tests.helpers import importable, require


class Bilinear(nl.Module):
    """A bilinear merge of two inputs: Z = (X₁ W) ⊙ X₂, X₁ (N, a), W (a, b), X₂ (N, b), Z (N, b).

    With P = X₁ W:  δX₂ = P ⊙ δZ;  δP = X₂ ⊙ δZ;  δX₁ = δP Wᵀ;  δW = X₁ᵀ δP.
    Cache: X₁, X₂ and P.
    """

    cache_names = ("_X1", "_X2", "_P")

    def __init__(self, a, b, rng=None):
        super().__init__()
        self.W = self.add_parameter("W", nl.init.as_rng(rng).normal(size=(a, b)) / np.sqrt(a))
        self._X1 = self._X2 = self._P = None

    def forward(self, X1, X2):
        self._X1, self._X2 = self.float_input(X1), self.float_input(X2)
        self._P = self._X1 @ self.W.data
        return self._P * self._X2

    def backward(self, dZ):
        X1, X2, P = self.forward_cache(self._X1), self._X2, self._P
        dZ = self.check_grad(dZ, P.shape)
        dP = X2 * dZ
        self.W.grad += X1.T @ dP
        return dP @ self.W.data.T, P * dZ


class TwoHeads(nl.Module):
    """Two outputs from one input: Z₁ = X W₁ and Z₂ = tanh(X W₂).

    Backward takes one gradient per output: δX = δZ₁ W₁ᵀ + δA W₂ᵀ with δA = (1 − Z₂²) ⊙ δZ₂;
    δW₁ = Xᵀ δZ₁, δW₂ = Xᵀ δA. Cache: X and Z₂.
    """

    cache_names = ("_X", "_Z2")

    def __init__(self, features, out, rng=None):
        super().__init__()
        rng = nl.init.as_rng(rng)
        self.W1 = self.add_parameter("W1", rng.normal(size=(features, out)) / np.sqrt(features))
        self.W2 = self.add_parameter("W2", rng.normal(size=(features, out)) / np.sqrt(features))
        self._X = self._Z2 = None

    def forward(self, X):
        self._X = X = self.float_input(X)
        self._Z2 = np.tanh(X @ self.W2.data)
        return X @ self.W1.data, self._Z2

    def backward(self, dZ1, dZ2):
        X = self.forward_cache(self._X)
        dA = (1 - self._Z2 ** 2) * dZ2
        self.W1.grad += X.T @ dZ1
        self.W2.grad += X.T @ dA
        return dZ1 @ self.W1.data.T + dA @ self.W2.data.T


class Scaled(nl.Module):
    """Z = X ⊙ s[ids] (row n scaled by s of its id): an integer input, whose gradient is None."""

    cache_names = ("_X", "_ids")

    def __init__(self, classes):
        super().__init__()
        self.s = self.add_parameter("s", np.linspace(0.5, 1.5, classes))
        self._X = self._ids = None

    def forward(self, X, ids):
        self._X, self._ids = X, ids
        return X * self.s.data[ids][:, None]

    def backward(self, dZ):
        np.add.at(self.s.grad, self._ids, (dZ * self._X).sum(axis=1))
        return dZ * self.s.data[self._ids][:, None], None


def hand_loop(model, inputs, Y, steps=60, lr=0.02):
    """The explicit loop: forward, loss, backward, step, zero_grad; returns the losses."""
    loss, optimizer, losses = nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=lr), []
    for _ in range(steps):
        losses.append(loss.forward(model.forward(*inputs), Y))
        model.backward(loss.backward())
        optimizer.step()
        optimizer.zero_grad()
    return losses


# -- modules of two inputs and of two outputs ------------------------------------------------------
def test_a_two_input_module_passes_gradcheck_with_its_inputs_named(rng):
    report = nl.gradcheck(Bilinear(3, 2, rng=0), (rng.normal(size=(4, 3)), rng.normal(size=(4, 2))))
    assert [check.name for check in report.checks] == ["input 0", "input 1", "W"]
    assert "worst at input 1[" in str(report["input 1"])


def test_a_two_output_module_passes_gradcheck(rng):
    report = nl.gradcheck(TwoHeads(3, 2, rng=0), rng.normal(size=(5, 3)))
    assert [check.name for check in report.checks] == ["X", "W1", "W2"]


def test_two_input_and_two_output_modules_train_inside_a_sequential(rng):
    X = rng.normal(size=(16, 3))
    Y = np.sin(X[:, :1]) * X[:, 1:2]
    model = nl.Sequential(TwoHeads(3, 4, rng=1), Bilinear(4, 4, rng=2), nl.Linear(4, 1, rng=3), nl.Bias(1))
    nl.gradcheck(model, X[:4])
    losses = hand_loop(model, (X,), Y)
    assert losses[-1] < 0.5 * losses[0]


def test_a_sequential_of_two_inputs_returns_two_gradients_and_trains(rng):
    X1, X2 = rng.normal(size=(16, 3)), rng.normal(size=(16, 2))
    Y = X1[:, :1] * X2[:, 1:]
    model = nl.Sequential(Bilinear(3, 2, rng=0), nl.Linear(2, 1, rng=1))
    Z = model(X1, X2)
    dX1, dX2 = model.backward(np.ones_like(Z))
    assert dX1.shape == X1.shape and dX2.shape == X2.shape
    assert [c.name for c in nl.gradcheck(model, (X1[:3], X2[:3])).checks] == ["input 0", "input 1", "0.W", "1.W"]
    losses = hand_loop(model, (X1, X2), Y)
    assert losses[-1] < 0.5 * losses[0]


def test_an_integer_input_is_not_perturbed_and_needs_no_gradient(rng):
    X, ids = rng.normal(size=(5, 3)), np.array([0, 2, 1, 2, 0])
    report = nl.gradcheck(Scaled(3), (X, ids))
    assert [check.name for check in report.checks] == ["input 0", "input 1", "s"]
    assert report["input 1"].passed and "integer input (int64), not perturbed" in str(report["input 1"])
    assert "integer input" in report._repr_html_()

    class GradientForIds(Scaled):
        def backward(self, dZ):
            dX, _ = super().backward(dZ)
            return dX, np.zeros(self._ids.shape)

    failed = nl.gradcheck(GradientForIds(3), (X, ids), raise_on_failure=False)
    assert not failed.passed and "return None for it" in str(failed["input 1"])


def test_gradcheck_refuses_a_backward_without_one_gradient_per_input(rng):
    class OneGradient(Bilinear):
        def backward(self, dZ):
            return super().backward(dZ)[0]

    with pytest.raises(nl.GradcheckError, match=r"took 2 inputs, so its backward must return a tuple of 2 "
                                                r"gradients .* it returned ndarray"):
        nl.gradcheck(OneGradient(2, 2, rng=0), (rng.normal(size=(3, 2)), rng.normal(size=(3, 2))))


# -- Sequential --------------------------------------------------------------------------------
def test_sequential_add_module_appends_a_step_that_runs(rng):
    """Defect 2: the registered children are the sequence, so a module added by name runs, counts and indexes."""
    model = nl.Sequential(nl.Linear(2, 3, rng=0), nl.Bias(3))
    head = model.add_module("head", nl.Sigmoid())
    model.append(nl.Linear(3, 1, rng=1))
    assert len(model) == 4 and model[2] is head and model[-1] is list(model)[3]
    assert [name for name, _ in model.named_children()] == ["0", "1", "head", "3"]
    assert [type(m).__name__ for m in model[1:3]] == ["Bias", "Sigmoid"] and len(model[2:]) == 2
    X = rng.normal(size=(4, 2))
    A = 1 / (1 + np.exp(-(X @ model[0].W.data + model[1].b.data)))
    np.testing.assert_allclose(model(X), A @ model[3].W.data, rtol=1e-14)       # the sigmoid ran
    assert [name for name, _ in model.named_parameters()] == ["0.W", "1.b", "3.W"]
    assert "(head): Sigmoid()" in repr(model)
    nl.gradcheck(model, X)                                                     # and its backward ran too
    with pytest.raises(ValueError, match="already registered"):
        model.add_module("head", nl.ReLU())


def test_sequential_layers_is_a_view_of_the_one_list():
    model = nl.Sequential(nl.ReLU())
    model.append(nl.Tanh())
    assert [type(m) for m in model.layers] == [nl.ReLU, nl.Tanh] == [type(m) for m in model]
    with pytest.raises(AttributeError):
        model.layers = []


def test_sequential_passes_a_tuple_on_as_the_next_modules_inputs(rng):
    X = rng.normal(size=(3, 2))
    heads = TwoHeads(2, 2, rng=0)
    model = nl.Sequential(heads, nl.Add())
    Z1, Z2 = heads.forward(X)
    np.testing.assert_array_equal(model(X), Z1 + Z2)
    empty = nl.Sequential()
    assert empty(X) is X and empty(X, X) == (X, X) and repr(empty) == "Sequential()"


# -- Parallel, Add, Concatenate: the formulas on hand-computed values ----------------------------
def test_add_is_the_sum_and_its_gradient_copies():
    add = nl.Add()
    Z = add(np.array([[1.0, 2.0]]), np.array([[10.0, 20.0]]), np.array([[100, 200]]))
    np.testing.assert_array_equal(Z, [[111.0, 222.0]])
    dZ = np.array([[0.5, -1.0]])
    dXs = add.backward(dZ)
    assert len(dXs) == 3 and all(dX is dZ for dX in dXs)                       # δXᵢ = δZ, the same array
    assert add(np.ones(2)) is not None and add.backward(np.ones(2)).shape == (2,)   # one input: an array


def test_concatenate_joins_and_its_gradient_slices():
    cat = nl.Concatenate()
    np.testing.assert_array_equal(cat(np.array([[1.0, 2.0]]), np.array([[3.0]])), [[1.0, 2.0, 3.0]])
    dZ = np.array([[4.0, 5.0, 6.0]])
    dX1, dX2 = cat.backward(dZ)
    np.testing.assert_array_equal(dX1, [[4.0, 5.0]])
    np.testing.assert_array_equal(dX2, [[6.0]])
    assert np.shares_memory(dX1, dZ)                                           # slices, not copies
    rows = nl.Concatenate(axis=0)
    assert rows(np.ones((1, 2)), np.zeros((2, 2))).shape == (3, 2)
    last = nl.Concatenate(axis=-1)
    assert last(np.ones((2, 3, 1)), np.ones((2, 3, 4))).shape == (2, 3, 5)
    assert [dX.shape for dX in last.backward(np.ones((2, 3, 5)))] == [(2, 3, 1), (2, 3, 4)]
    assert type(last)(**last.settings()).axis == -1 and repr(last) == "Concatenate(axis=-1)"


def test_parallel_forks_and_its_gradients_add():
    fork = nl.Parallel(nl.Linear(2, 1, rng=0), nl.Linear(2, 1, rng=1))
    fork[0].W.data[...] = [[1.0], [2.0]]
    fork[1].W.data[...] = [[3.0], [4.0]]
    Z1, Z2 = fork(np.array([[1.0, 1.0]]))
    np.testing.assert_array_equal(Z1, [[3.0]])
    np.testing.assert_array_equal(Z2, [[7.0]])
    dX = fork.backward(np.array([[1.0]]), np.array([[2.0]]))
    np.testing.assert_array_equal(dX, [[1.0 + 6.0, 2.0 + 8.0]])                # δX = δZ₁ W₁ᵀ + δZ₂ W₂ᵀ
    np.testing.assert_array_equal(fork[1].W.grad, [[2.0], [2.0]])


def test_parallel_of_two_input_branches_sums_per_input(rng):
    fork = nl.Parallel(Bilinear(2, 3, rng=0), Bilinear(2, 3, rng=1))
    X1, X2 = rng.normal(size=(4, 2)), rng.normal(size=(4, 3))
    dZ1, dZ2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    fork(X1, X2)
    dX1, dX2 = fork.backward(dZ1, dZ2)
    first, second = Bilinear(2, 3, rng=0), Bilinear(2, 3, rng=1)
    first(X1, X2), second(X1, X2)
    a, b = first.backward(dZ1), second.backward(dZ2)
    np.testing.assert_allclose(dX1, a[0] + b[0], rtol=1e-14)
    np.testing.assert_allclose(dX2, a[1] + b[1], rtol=1e-14)


def test_parallel_skips_branches_without_an_input_gradient(rng):
    X = rng.normal(size=(2, 3))
    none = nl.Parallel(nl.Linear(3, 2, rng=0, input_grad=False), nl.Linear(3, 2, rng=1, input_grad=False))
    none(X)
    assert none.backward(np.ones((2, 2)), np.ones((2, 2))) is None
    one = nl.Parallel(nl.Linear(3, 2, rng=0, input_grad=False), nl.Linear(3, 2, rng=1))
    one(X)
    np.testing.assert_array_equal(one.backward(np.ones((2, 2)), np.ones((2, 2))), np.ones((2, 2)) @ one[1].W.data.T)


# -- gradcheck of each container ---------------------------------------------------------------
@pytest.mark.parametrize("make, shapes", [
    (lambda: nl.Parallel(nl.Linear(3, 2, rng=0), nl.Sequential(nl.Linear(3, 4, rng=1), nl.Tanh())), [(4, 3)]),
    (lambda: nl.Add(), [(3, 2), (3, 2), (3, 2)]),
    (lambda: nl.Concatenate(), [(3, 2), (3, 4)]),
    (lambda: nl.Concatenate(axis=1), [(2, 1, 3, 3), (2, 2, 3, 3)]),
    (lambda: nl.Sequential(nl.Parallel(nl.Linear(3, 2, rng=0), nl.Sequential(nl.Linear(3, 2, rng=1), nl.Sigmoid()),
                                       nl.Tanh()), nl.Concatenate(), nl.Linear(7, 1, rng=2)), [(4, 3)]),
    (lambda: nl.Sequential(nl.Parallel(nl.Linear(3, 2, rng=0), nl.Linear(3, 2, rng=1)), nl.Add(), nl.Sigmoid()),
     [(4, 3)]),
    (lambda: nl.Parallel(Bilinear(2, 3, rng=0), Bilinear(2, 3, rng=1)), [(4, 2), (4, 3)]),
], ids=["parallel", "add", "concatenate", "concatenate-channels", "two-branch-concat", "two-branch-add",
        "parallel-two-inputs"])
def test_every_container_passes_gradcheck(make, shapes, rng):
    inputs = tuple(rng.normal(size=shape) for shape in shapes)
    report = nl.gradcheck(make(), inputs if len(inputs) > 1 else inputs[0])
    assert report.passed and max(check.max_abs_error for check in report.checks) < 1e-7


# -- PyTorch parity -----------------------------------------------------------------------------
def test_a_two_branch_net_matches_torch(rng):
    require(importable("torch"), "PyTorch is not installed (pip install torch==2.13.0); parity tests need it")
    import torch
    ours = nl.Sequential(nl.Parallel(nl.Sequential(nl.Linear(4, 3, rng=0), nl.Bias(3)), nl.Linear(4, 2, rng=1)),
                         nl.Concatenate(), nl.Linear(5, 2, rng=2))
    for parameter in ours.parameters():
        parameter.data += rng.normal(scale=0.1, size=parameter.shape)
    t = lambda array: torch.tensor(array, dtype=torch.float64, requires_grad=True)  # noqa: E731
    W1, b1, W2, W3 = (t(parameter.data) for parameter in ours.parameters())
    X, dZ = rng.normal(size=(5, 4)), rng.normal(size=(5, 2))
    tX = t(X)
    reference = torch.cat([tX @ W1 + b1, tX @ W2], dim=1) @ W3
    reference.backward(torch.tensor(dZ))
    Z = ours(X)
    dX = ours.backward(dZ)
    np.testing.assert_allclose(Z, reference.detach().numpy(), rtol=0, atol=1e-10)
    np.testing.assert_allclose(dX, tX.grad.numpy(), rtol=0, atol=1e-10)
    for parameter, theirs in zip(ours.parameters(), (W1, b1, W2, W3)):
        np.testing.assert_allclose(parameter.grad, theirs.grad.numpy(), rtol=0, atol=1e-10)


# -- errors -------------------------------------------------------------------------------------
def test_merges_name_the_layer_and_both_shapes():
    with pytest.raises(nl.ShapeError, match=r"Add\(\): input 1 has shape \(2, 3\), input 0 has shape \(2, 2\)"):
        nl.Add()(np.ones((2, 2)), np.ones((2, 3)))
    with pytest.raises(nl.ShapeError, match=r"Concatenate\(axis=1\): input 1 has shape \(3, 2\), input 0 has "
                                            r"shape \(2, 2\); they must agree on every axis but axis 1"):
        nl.Concatenate()(np.ones((2, 2)), np.ones((3, 2)))
    with pytest.raises(nl.ShapeError, match=r"axis 2 is out of range for input 0 of shape \(2, 2\)"):
        nl.Concatenate(axis=2)(np.ones((2, 2)), np.ones((2, 2)))
    with pytest.raises(TypeError, match="Concatenate: axis must be an int, got '1'"):
        nl.Concatenate(axis="1")
    for merge in (nl.Add(), nl.Concatenate()):
        with pytest.raises(TypeError, match="forward needs at least one input"):
            merge()
        with pytest.raises(RuntimeError, match="backward called before forward"):
            merge.backward(np.ones((2, 2)))
        merge(np.ones((2, 2)), np.ones((2, 2)))
        with pytest.raises(nl.ShapeError, match=r"backward expected dZ of shape \(2, \d\)"):
            merge.backward(np.ones((2, 5)))


def test_parallel_refuses_wrong_branches_and_wrong_gradient_counts(rng):
    with pytest.raises(ValueError, match="at least one Module"):
        nl.Parallel()
    with pytest.raises(TypeError, match="branch 1 is 3, not a Module"):
        nl.Parallel(nl.ReLU(), 3)
    relu = nl.ReLU()
    with pytest.raises(ValueError, match="already the child '0'"):
        nl.Parallel(relu, relu)
    fork = nl.Parallel(nl.ReLU(), nl.Tanh())
    with pytest.raises(RuntimeError, match="backward called before forward"):
        fork.backward(np.ones(2), np.ones(2))
    fork(np.ones((2, 2)))
    with pytest.raises(TypeError, match=r"backward expected 2 gradients \(one per branch output\), got 1"):
        fork.backward(np.ones((2, 2)))
    with pytest.raises(TypeError, match="branch 0 returned 2 outputs"):
        nl.Parallel(TwoHeads(2, 2, rng=0))(np.ones((1, 2)))


def test_mismatched_inputs_are_located_inside_the_model(rng):
    model = nl.Sequential(nl.Parallel(nl.Linear(3, 2, rng=0), nl.Linear(3, 4, rng=1)), nl.Add())
    with pytest.raises(nl.ShapeError, match=r"layer 1 forward: Add\(\): input 1 has shape \(5, 4\)"):
        model(rng.normal(size=(5, 3)))
    with pytest.raises(TypeError, match=r"(?s)layer 1 \(Residual\(.*\)\) forward: given 2 inputs: "):
        nl.Sequential(TwoHeads(2, 2, rng=0), nl.Residual(nl.ReLU()))(np.ones((1, 2)))   # a tuple into one input
    with pytest.raises(TypeError, match=r"layer 0 \(Bilinear\(\)\) forward: given 1 input: "):
        nl.Sequential(Bilinear(2, 2, rng=0))(np.ones((1, 2)))                  # one input for two
    fork = nl.Sequential(nl.Parallel(nl.ReLU(), nl.Tanh()))
    with pytest.raises(TypeError, match=r"layer 0 > layer 0 \(ReLU\(\)\) forward: given 2 inputs"):
        fork(np.ones(2), np.ones(2))

    class OneGradient(Bilinear):                                               # returns δX₁ only
        def backward(self, dZ):
            return super().backward(dZ)[0]

    model = nl.Sequential(TwoHeads(2, 2, rng=0), OneGradient(2, 2, rng=0))
    model(np.ones((1, 2)))
    with pytest.raises(TypeError, match=r"layer 0 \(TwoHeads\(\)\) backward: given 1 gradient: "):
        model.backward(np.ones((1, 2)))


# -- summary, devices, the module split -----------------------------------------------------------
def test_summary_of_a_two_input_model_and_of_tuple_outputs():
    model = nl.Sequential(Bilinear(3, 2, rng=0), nl.Parallel(nl.Linear(2, 4, rng=1), nl.Linear(2, 1, rng=2)))
    table = nl.summary(model, ((3,), (2,)))
    lines = str(table).splitlines()
    assert "(N, 4), (N, 1)" in lines[2] and "(N, 2)" in lines[3]
    assert lines[-1] == "total parameters: 16  (inputs: (N, 3), (N, 2))"
    assert table.rows[0][1] == ((1, 4), (1, 1))


def test_containers_compute_on_the_device_of_their_input(rng):
    from nnlayers import backend
    from tests.strict_backend import StrictArray
    model = nl.Sequential(nl.Parallel(nl.Linear(3, 2, rng=0), nl.Linear(3, 2, rng=1)), nl.Concatenate(),
                          nl.Linear(4, 2, rng=2), nl.Parallel(nl.Sigmoid(), nl.Tanh()), nl.Add())
    X, dZ = rng.normal(size=(4, 3)), rng.normal(size=(4, 2))
    expected, expected_dX = model(X), model.backward(dZ)
    model.to("strict")
    Z = model(backend.to_device(X, "strict"))
    dX = model.backward(backend.to_device(dZ, "strict"))
    assert type(Z) is StrictArray and type(dX) is StrictArray
    np.testing.assert_allclose(backend.to_host(Z), expected, rtol=1e-14)
    np.testing.assert_allclose(backend.to_host(dX), expected_dX, rtol=1e-14)


def test_the_module_split_keeps_every_old_import():
    from nnlayers import containers, errors, inputs, state
    from nnlayers.module import (Residual, Sequential, ShapeError, WeightsFileError, as_float_input, as_tuple,
                                 check_state_layout, evaluation_mode)
    assert Sequential is containers.Sequential is nl.Sequential and Residual is containers.Residual
    assert ShapeError is errors.ShapeError and WeightsFileError is errors.WeightsFileError
    assert check_state_layout is state.check_state_layout and as_tuple is inputs.as_tuple is nl.as_tuple
    assert as_float_input is nl.as_float_input and evaluation_mode is nl.evaluation_mode
    import nnlayers.module
    with pytest.raises(AttributeError, match="no attribute 'Parallel2'"):
        nnlayers.module.Parallel2
