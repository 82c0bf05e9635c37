"""nl.clip_grad_norm and gradient clipping in Trainer.fit (Trainer(clip_grad_norm=…), GradientClipping).
PyTorch parity of clip_grad_norm is in tests/test_torch_parity.py."""
import math

import numpy as np
import pytest

import nnlayers as nl


def parameters_with_grads(*grads, dtype=np.float64):
    parameters = []
    for i, g in enumerate(grads):
        parameter = nl.Parameter(np.zeros(np.shape(g), dtype=dtype), f"p{i}")
        parameter.grad[...] = g
        parameters.append(parameter)
    return parameters


def test_clip_grad_norm_by_hand():
    """Gradients (3,) and (4,) laid end to end: ‖g‖ = 5; max_norm 1 scales both by 1/(5 + 10⁻⁶)."""
    a, b = parameters_with_grads([3.0], [4.0])
    assert nl.clip_grad_norm([a, b], 1.0) == 5.0
    np.testing.assert_allclose([a.grad[0], b.grad[0]], [3 / (5 + 1e-6), 4 / (5 + 1e-6)], rtol=1e-15)
    assert math.hypot(a.grad[0], b.grad[0]) < 1.0
    a, b = parameters_with_grads([3.0], [-4.0])
    assert nl.clip_grad_norm([a, b], 2.0, norm_type=math.inf) == 4.0          # max |gᵢ|
    np.testing.assert_allclose([a.grad[0], b.grad[0]], [3 * 2 / (4 + 1e-6), -4 * 2 / (4 + 1e-6)], rtol=1e-15)
    a, b = parameters_with_grads([3.0], [-4.0])
    assert nl.clip_grad_norm([a, b], 100.0, norm_type=1) == 7.0               # Σ |gᵢ|
    assert (a.grad[0], b.grad[0]) == (3.0, -4.0)                             # below the bound: untouched


def test_below_the_bound_nothing_changes_and_one_parameter_is_enough(rng):
    g = rng.normal(size=(4, 3))
    (parameter,) = parameters_with_grads(g)
    grad = parameter.grad
    total = nl.clip_grad_norm(parameter, 10.0)                                # a Parameter alone
    assert total == pytest.approx(np.linalg.norm(g), rel=1e-14)
    assert parameter.grad is grad and np.array_equal(grad, g)                # in place, unchanged
    assert nl.clip_grad_norm(parameter, math.inf) == total                    # inf: measure only
    assert nl.clip_grad_norm([], 1.0) == 0.0
    assert nl.clip_grad_norm(iter([parameter]), 10.0) == total               # any iterable


def test_a_model_s_parameters_are_clipped_as_one_vector(rng):
    model = nl.Sequential(nl.Linear(3, 4, rng=0), nl.ReLU(), nl.Linear(4, 2, rng=1))
    for parameter in model.parameters():
        parameter.grad[...] = rng.normal(size=parameter.shape)
    whole = np.concatenate([p.grad.ravel() for p in model.parameters()])
    total = nl.clip_grad_norm(model.parameters(), 0.5)
    assert total == pytest.approx(np.linalg.norm(whole), rel=1e-14)
    after = np.concatenate([p.grad.ravel() for p in model.parameters()])
    np.testing.assert_allclose(after, whole * 0.5 / (total + 1e-6), rtol=1e-15)
    assert np.linalg.norm(after) == pytest.approx(0.5, rel=1e-5)


def test_float32_gradients_keep_their_dtype_and_a_large_norm_does_not_overflow():
    a, b = parameters_with_grads([3e20], [4e20], dtype=np.float32)          # Σ g² overflows float32
    assert nl.clip_grad_norm([a, b], 1.0) == pytest.approx(5e20, rel=1e-6)
    assert a.grad.dtype == np.float32
    np.testing.assert_allclose([a.grad[0], b.grad[0]], [0.6, 0.8], rtol=1e-6)


@pytest.mark.parametrize("bad, norm_type", [(np.nan, 2.0), (np.inf, 2.0), (np.nan, math.inf), (-np.inf, 1.0)])
def test_a_non_finite_total_is_returned_and_nothing_is_changed(bad, norm_type):
    a, b = parameters_with_grads([3.0, bad], [4.0])
    total = nl.clip_grad_norm([a, b], 1.0, norm_type)
    assert (math.isnan(total) if np.isnan(bad) else total == math.inf)
    assert a.grad[0] == 3.0 and b.grad[0] == 4.0
    with pytest.raises(FloatingPointError, match=r"clip_grad_norm: the gradients' total .*-norm is (nan|inf)"):
        nl.clip_grad_norm([a, b], 1.0, norm_type, error_if_nonfinite=True)
    assert a.grad[0] == 3.0 and b.grad[0] == 4.0


@pytest.mark.parametrize("arguments, error, message", [
    (dict(max_norm=0.0), ValueError, "max_norm must be a positive number or math.inf, got 0.0"),
    (dict(max_norm=-1), ValueError, "max_norm must be a positive number"),
    (dict(max_norm=float("nan")), ValueError, "max_norm must be a positive number"),
    (dict(max_norm="1"), TypeError, "max_norm must be a positive number or math.inf, got '1' \\(str\\)"),
    (dict(max_norm=True), TypeError, "max_norm must be a positive number"),
    (dict(max_norm=1.0, norm_type=0), ValueError, "norm_type must be a positive number"),
    (dict(max_norm=1.0, norm_type="fro"), TypeError, "norm_type must be a positive number"),
])
def test_bad_arguments_give_clear_errors(arguments, error, message, rng):
    (parameter,) = parameters_with_grads(rng.normal(size=3))
    before = parameter.grad.copy()
    with pytest.raises(error, match="clip_grad_norm: " + message):
        nl.clip_grad_norm([parameter], **arguments)
    np.testing.assert_array_equal(parameter.grad, before)


def test_parameters_must_be_parameters():
    model = nl.Sequential(nl.Linear(2, 2, rng=0))
    with pytest.raises(TypeError, match=r"expected parameters, got a model; pass model.parameters\(\)"):
        nl.clip_grad_norm(model, 1.0)
    with pytest.raises(TypeError, match=r"item 1 is ndarray, not an nl.Parameter"):
        nl.clip_grad_norm([model[0].W, np.zeros(3)], 1.0)
    with pytest.raises(TypeError, match=r"expected an nl.Parameter or an iterable of them"):
        nl.clip_grad_norm(3.0, 1.0)


# -- in the Trainer ---------------------------------------------------------------------------------

def problem(n=40):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(n, 3)) * 3
    return X, (X @ rng.normal(size=(3, 1)) * 5) ** 2           # large targets: large gradients early on


def regression_model():
    return nl.Sequential(nl.Linear(3, 8, rng=0), nl.Tanh(), nl.Linear(8, 1, rng=1))


def test_fit_with_clipping_takes_the_hand_loop_s_steps():
    """Trainer(clip_grad_norm=…) equals forward, loss, backward, clip_grad_norm, step, zero_grad by hand."""
    X, Y = problem()
    model = regression_model()
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=1e-3, momentum=0.9),
                         clip_grad_norm=2.0)
    trainer.fit(X, Y, epochs=3, batch_size=8, shuffle=False, progress=False)

    hand = regression_model()
    optimizer, loss = nl.SGD(hand.parameters(), lr=1e-3, momentum=0.9), nl.EuclideanLoss()
    norms = []
    for _ in range(3):
        for start in range(0, len(X), 8):
            loss.forward(hand.forward(X[start:start + 8]), Y[start:start + 8])
            hand.backward(loss.backward())
            norms.append(nl.clip_grad_norm(hand.parameters(), 2.0))
            optimizer.step()
            optimizer.zero_grad()
    for ours, theirs in zip(model.parameters(), hand.parameters()):
        np.testing.assert_array_equal(ours.data, theirs.data)
    clipping = trainer.clipping
    assert clipping.steps == 15 and clipping.last_norm == norms[-1]
    assert clipping.clipped == sum(norm > 2.0 for norm in norms) > 0         # it acted, at least early on
    assert repr(clipping) == "GradientClipping(max_norm=2.0)"


def test_clipping_changes_the_run_and_a_callback_replaces_the_trainer_s():
    X, Y = problem()
    weights = []
    for clip, callbacks in [(None, []), (2.0, []), (None, [nl.GradientClipping(2.0)]),
                            (100.0, [nl.GradientClipping(2.0)])]:
        model = regression_model()
        trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=1e-3), clip_grad_norm=clip)
        trainer.fit(X, Y, epochs=2, batch_size=8, rng=0, progress=False, callbacks=callbacks)
        weights.append(np.concatenate([p.data.ravel() for p in model.parameters()]))
    assert not np.array_equal(weights[0], weights[1])
    np.testing.assert_array_equal(weights[1], weights[2])                    # the callback alone: the same
    np.testing.assert_array_equal(weights[1], weights[3])                    # the callback's bound wins


def test_clipping_by_norm_type_inf_in_fit():
    X, Y = problem()
    clipping = nl.GradientClipping(0.5, norm_type=math.inf)
    model = regression_model()
    nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=1e-3)).fit(
        X, Y, epochs=1, batch_size=40, progress=False, callbacks=[clipping])
    assert clipping.steps == 1 and clipping.clipped == 1 and clipping.last_norm > 0.5
    assert repr(clipping) == "GradientClipping(max_norm=0.5, norm_type=inf)"


@pytest.mark.parametrize("bad, error", [(0, ValueError), (-1.0, ValueError), ("1", TypeError), (True, TypeError)])
def test_the_trainer_refuses_a_bad_bound(bad, error):
    model = regression_model()
    with pytest.raises(error, match="Trainer: clip_grad_norm must be a positive number"):
        nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.1), clip_grad_norm=bad)
    with pytest.raises(error, match="GradientClipping: max_norm must be a positive number"):
        nl.GradientClipping(bad)
