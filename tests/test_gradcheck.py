"""The shared finite-difference check over every layer and loss (float64), and the checker itself."""
import warnings

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.examples.xor import XOR_X, xor_network

def normal(*shape):
    return lambda rng: rng.normal(size=shape)


def away_from_zero(*shape):
    """Values with |x| ≥ 0.1: no ReLU kink within the finite-difference step."""
    return lambda rng: rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)


def distinct(*shape):
    """All values different by at least 0.05: no max-pool tie flips under a step of 1e-6."""
    return lambda rng: rng.permutation(np.prod(shape)).reshape(shape) * 0.05 - 1.0


class FixedMaskDropout(nl.Dropout):
    """Dropout whose mask is the same on every forward, so finite differences see one function."""

    def forward(self, X):
        self.rng = np.random.default_rng(0)
        return super().forward(X)


# Every layer of the library, in float64; random shapes include batch 1 and one output unit.
LAYER_CASES = [
    ("linear-4x3->5", lambda: nl.Linear(3, 5, rng=0), normal(4, 3)),
    ("linear-batch1-1out", lambda: nl.Linear(6, 1, rng=1), normal(1, 6)),
    ("bias-3x7", lambda: nl.Bias(7), normal(3, 7)),
    ("bias-batch1", lambda: nl.Bias(1), normal(1, 1)),
    ("sigmoid-2x5", nl.Sigmoid, normal(2, 5)),
    ("sigmoid-4d", nl.Sigmoid, normal(2, 1, 3, 2)),
    ("tanh", nl.Tanh, normal(3, 4)),
    ("relu", nl.ReLU, away_from_zero(2, 3, 4)),
    ("flatten", nl.Flatten, normal(2, 3, 2, 2)),
    ("dropout-train", lambda: FixedMaskDropout(0.4), normal(3, 6)),
    ("dropout-eval", lambda: nl.Dropout(0.4, rng=0).eval(), normal(3, 6)),
    ("conv-3x3-pad1", lambda: nl.Conv2D(2, 3, 3, padding=1, rng=0), normal(2, 2, 5, 5)),
    ("conv-2x3-stride2-odd", lambda: nl.Conv2D(3, 2, (2, 3), stride=2, padding=(1, 2), rng=1), normal(1, 3, 7, 9)),
    ("conv-1x1-nobias", lambda: nl.Conv2D(2, 4, 1, bias=False, rng=2), normal(2, 2, 3, 4)),
    ("maxpool-2", lambda: nl.MaxPool2D(2), distinct(2, 2, 4, 6)),
    ("maxpool-3-stride2-odd", lambda: nl.MaxPool2D(3, stride=2), distinct(1, 2, 7, 9)),
    ("avgpool-2x3", lambda: nl.AvgPool2D((2, 3)), normal(2, 2, 5, 7)),
    ("global-avgpool", nl.GlobalAvgPool2D, normal(2, 3, 3, 4)),
    ("conv-same-3x5", lambda: nl.Conv2D(2, 2, (3, 5), padding="same", rng=3), normal(2, 2, 4, 5)),
    ("conv-winograd-odd", lambda: nl.Conv2D(2, 3, 3, padding=1, rng=4, algorithm="winograd"), normal(2, 2, 5, 6)),
    # BatchNorm in training mode (batch statistics; a batch needs ≥ 2 values per channel) and in eval mode
    ("batchnorm1d-train", lambda: nl.BatchNorm1d(3), normal(4, 3)),
    ("batchnorm1d-batch2", lambda: nl.BatchNorm1d(2), normal(2, 2)),
    ("batchnorm2d-train", lambda: nl.BatchNorm2d(3), normal(2, 3, 3, 3)),
    ("batchnorm2d-batch1", lambda: nl.BatchNorm2d(2), normal(1, 2, 2, 3)),
    ("batchnorm2d-eval", lambda: nl.BatchNorm2d(2).eval(), normal(2, 2, 3, 3)),
    ("xor-network", lambda: xor_network(8, rng=3), normal(4, 2)),
    ("deep-mlp", lambda: nl.Sequential(nl.Linear(3, 4, rng=0), nl.Bias(4), nl.Tanh(),
                                       nl.Linear(4, 4, rng=1), nl.Bias(4), nl.Sigmoid(),
                                       nl.Linear(4, 1, rng=2)), normal(5, 3)),
    ("residual-identity", lambda: nl.Residual(nl.Sequential(nl.Linear(4, 4, rng=0), nl.Bias(4), nl.Tanh())),
     normal(3, 4)),
    ("residual-projection", lambda: nl.Residual(nl.Sequential(nl.Conv2D(2, 3, 3, padding=1, rng=0), nl.Tanh()),
                                                shortcut=nl.Conv2D(2, 3, 1, bias=False, rng=1)), normal(2, 2, 4, 4)),
    ("resnet-basic-block", lambda: nl.Residual(
        nl.Sequential(nl.Conv2D(2, 3, 3, padding="same", bias=False, rng=0), nl.BatchNorm2d(3), nl.Tanh(),
                      nl.Conv2D(3, 3, 3, padding="same", bias=False, rng=1), nl.BatchNorm2d(3)),
        shortcut=nl.Sequential(nl.Conv2D(2, 3, 1, bias=False, rng=2), nl.BatchNorm2d(3))), normal(2, 2, 3, 3)),
    ("small-cnn", lambda: nl.Sequential(nl.Conv2D(1, 2, 3, padding=1, rng=0), nl.Tanh(), nl.AvgPool2D(2),
                                        nl.Flatten(), nl.Linear(8, 3, rng=1), nl.Bias(3)), normal(2, 1, 4, 4)),
    # recurrent layers of one input (N×T×F → N×T×H) and the cells of one output (N×F → N×H)
    ("rnn-tanh", lambda: nl.RNN(3, 4, rng=0), normal(2, 5, 3)),
    ("rnn-relu-batch1", lambda: nl.RNN(2, 3, "relu", rng=1), normal(1, 4, 2)),
    ("lstm", lambda: nl.LSTM(3, 4, rng=2), normal(2, 5, 3)),
    ("gru-one-step", lambda: nl.GRU(2, 3, rng=3), normal(3, 1, 2)),
    ("rnn-cell", lambda: nl.RNNCell(3, 2, rng=4), normal(2, 3)),
    ("gru-cell", lambda: nl.GRUCell(2, 3, rng=5), normal(3, 2)),
    # attention and its parts (N×T×D sequences), alone and as a pre-norm block
    ("layernorm", lambda: nl.LayerNorm(5), normal(3, 4, 5)),
    ("gelu", nl.GELU, normal(3, 7)),
    ("softmax", nl.Softmax, normal(3, 5)),
    ("attention-self-causal", lambda: nl.MultiHeadAttention(6, 2, causal=True, rng=0), normal(2, 4, 6)),
    ("positional-learned", lambda: nl.PositionalEmbedding(6, 4, rng=0), normal(2, 5, 4)),
    ("attention-pre-norm-block", lambda: nl.Sequential(
        nl.PositionalEmbedding(8, 6, "sinusoidal"),
        nl.Residual(nl.Sequential(nl.LayerNorm(6), nl.MultiHeadAttention(6, 3, causal=True, rng=0))),
        nl.Residual(nl.Sequential(nl.LayerNorm(6), nl.Linear(6, 12, rng=1), nl.Bias(12), nl.GELU(),
                                  nl.Linear(12, 6, rng=2), nl.Bias(6)))), normal(2, 5, 6)),
]


@pytest.mark.parametrize("make, make_input", [case[1:] for case in LAYER_CASES], ids=[c[0] for c in LAYER_CASES])
def test_every_layer_passes_gradcheck(make, make_input, rng):
    module = make()
    for parameter in module.parameters():        # non-zero biases, so their gradients matter
        parameter.data += rng.normal(scale=0.1, size=parameter.shape)
    report = nl.gradcheck(module, make_input(rng))
    assert report.passed
    assert [c.name for c in report.checks] == ["X"] + [name for name, _ in module.named_parameters()]
    assert max(c.max_abs_error for c in report.checks) < 1e-7


def test_xor_network_at_the_derivation_inputs():
    report = nl.gradcheck(xor_network(8, rng=0), XOR_X)
    assert report.passed and len(report.checks) == 5


@pytest.mark.parametrize("shape", [(4, 1), (1, 3), (2, 5)])
def test_euclidean_loss_passes_gradcheck(shape, rng):
    report = nl.gradcheck(nl.EuclideanLoss(), rng.normal(size=shape), rng.normal(size=shape))
    assert report.passed and report["pred"].max_rel_error < 1e-8


@pytest.mark.parametrize("target", [np.array([2, 0, 1]), np.eye(4)[[3, 1, 1]],
                                    np.array([[0.5, 0.25, 0.25, 0.0]] * 3)], ids=["labels", "one-hot", "soft"])
def test_softmax_cross_entropy_passes_gradcheck(target, rng):
    report = nl.gradcheck(nl.SoftmaxCrossEntropy(), rng.normal(size=(3, 4)), target)
    assert report.passed and report["pred"].max_abs_error < 1e-9


class WrongLinear(nl.Linear):
    """δW computed as Xᵀ δZ / N: the classic normalisation slip."""

    def backward(self, dZ):
        dX = super().backward(dZ)
        self.W.grad /= len(self._X)
        return dX


class WrongSigmoid(nl.Sigmoid):
    """σ′ taken as σ instead of σ(1 − σ)."""

    def derivative(self, X, Z):
        return Z.copy()


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


def test_report_prints_and_displays_as_a_table():
    X = np.random.default_rng(0).normal(size=(4, 3))
    report = nl.gradcheck(nl.Linear(3, 2, rng=0), X)
    assert repr(report) == "GradcheckReport(passed):\n" + str(report)
    assert repr(report["W"]) == f"<TensorCheck {report['W']}>"           # the verdict, not the arrays
    html = report._repr_html_()
    assert html.startswith("<p>gradcheck passed: 2 gradients against central differences</p><table>")
    w = report["W"]
    i = w.worst_index
    assert (f"<tr><td style='text-align:left'>W</td><td>ok</td><td>{w.max_rel_error:.2e}</td>"
            f"<td>{w.max_abs_error:.2e}</td><td style='text-align:left'>W[{i[0]}, {i[1]}]</td>"
            f"<td>{w.analytic[i]:.10g}</td><td>{w.numeric[i]:.10g}</td></tr>") in html
    assert html.count("<tr>") == 3                                          # header, X, W

    class Wrong(nl.Elementwise):
        def function(self, X):
            return X ** 2

        def derivative(self, X, Z):
            return np.ones_like(Z)

    failed = nl.gradcheck(Wrong(), X, raise_on_failure=False)
    assert repr(failed).startswith("GradcheckReport(FAILED):")
    assert "gradcheck FAILED" in failed._repr_html_() and "<b style='color:#c00'>FAILED</b>" in failed._repr_html_()


def test_dropout_in_training_mode_is_checked_with_one_mask(rng):
    """Every forward of the check used to draw a new mask, so a right backward failed; now each one
    starts from the same generator state, and the layer gets its own generator back afterwards."""
    model = nl.Sequential(nl.Linear(4, 6, rng=0), nl.Dropout(0.5, rng=1), nl.Tanh(), nl.Linear(6, 2, rng=2))
    dropout, X = model[1], rng.normal(size=(5, 4))
    generator, twin = dropout.rng, np.random.default_rng(1)
    report = nl.gradcheck(model, X)
    assert report.passed and dropout.training
    assert dropout.rng is generator                                    # its own generator, as one forward left it
    twin.random((5, 6))
    assert generator.bit_generator.state == twin.bit_generator.state
    assert (dropout._M == 0).any() and (dropout._M == 2).any()         # the mask acted during the check


def test_a_module_of_several_inputs_and_outputs_is_checked_per_input_and_output(rng):
    class Products(nl.Module):                                         # (Z₁, Z₂) = (X₁ ⊙ X₂, X₁ ⊙ X₁)
        def forward(self, X1, X2):
            self._X1, self._X2 = X1, X2
            return X1 * X2, X1 * X1

        def backward(self, dZ1, dZ2):
            return dZ1 * self._X2 + 2 * dZ2 * self._X1, dZ1 * self._X1

    report = nl.gradcheck(Products(), (rng.normal(size=(2, 3)), rng.normal(size=(2, 3))))
    assert [check.name for check in report.checks] == ["input 0", "input 1"]

    class ForgetsTheSecondOutput(Products):
        def backward(self, dZ1, dZ2):
            return dZ1 * self._X2, dZ1 * self._X1

    failed = nl.gradcheck(ForgetsTheSecondOutput(), (rng.normal(size=(2, 3)), rng.normal(size=(2, 3))),
                          raise_on_failure=False)
    assert not failed["input 0"].passed and failed["input 1"].passed
