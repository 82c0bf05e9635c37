"""Optimizer updates against hand-computed steps (PyTorch parity lives in test_torch_parity.py)."""
import numpy as np
import pytest

import nnlayers as nl


def param(value=1.0):
    return nl.Parameter(np.array([value]), "θ")


def run(optimizer, p, grads):
    values = []
    for g in grads:
        p.grad[...] = g
        optimizer.step()
        values.append(float(p.data[0]))
    return values


def test_plain_sgd():
    p = param()
    assert run(nl.SGD([p], lr=0.1), p, [0.5, 0.5]) == pytest.approx([0.95, 0.90], abs=1e-15)


def test_sgd_momentum_by_hand():
    p = param()
    # v₁ = 1, θ = 1 − 0.1·1 = 0.9; v₂ = 0.9·1 + 1 = 1.9, θ = 0.9 − 0.19 = 0.71
    assert run(nl.SGD([p], lr=0.1, momentum=0.9), p, [1.0, 1.0]) == pytest.approx([0.9, 0.71], abs=1e-15)


def test_sgd_nesterov_by_hand():
    p = param()
    # v₁ = 1, g + μv = 1.9, θ = 0.81; v₂ = 1.9, g + μv = 2.71, θ = 0.81 − 0.271 = 0.539
    assert run(nl.SGD([p], lr=0.1, momentum=0.9, nesterov=True), p, [1.0, 1.0]) == pytest.approx(
        [0.81, 0.539], abs=1e-15)


def test_sgd_weight_decay_by_hand():
    p = param()
    # g = 1 + 0.1·1 = 1.1, θ = 1 − 0.11 = 0.89
    assert run(nl.SGD([p], lr=0.1, weight_decay=0.1), p, [1.0]) == pytest.approx([0.89], abs=1e-15)


def test_adam_bias_correction_uses_the_step_power():
    p = param()
    # With a constant gradient g, m̂ₜ = g and v̂ₜ = g² for every t, so each step is η·g/(|g| + ε).
    # Correcting with β instead of βᵗ would make step 2 larger (m̂₂ = 0.38/0.1 = 3.8).
    values = run(nl.Adam([p], lr=0.01), p, [2.0, 2.0, 2.0])
    step = 0.01 * 2.0 / (2.0 + 1e-8)
    assert values == pytest.approx([1 - step, 1 - 2 * step, 1 - 3 * step], abs=1e-14)


def test_zero_grad_and_steps_count():
    p = param()
    optimizer = nl.SGD([p], lr=0.1)
    p.grad[...] = 3.0
    optimizer.step()
    optimizer.zero_grad()
    assert p.grad[0] == 0.0 and optimizer.steps == 1


def test_updates_are_in_place():
    layer = nl.Linear(2, 2, rng=0)
    data = layer.W.data
    layer.W.grad[...] = 1.0
    nl.Adam(layer.parameters()).step()
    assert layer.W.data is data


@pytest.mark.parametrize("make, error, message", [
    (lambda p: nl.SGD([p], lr=-1), ValueError, "lr must be a finite number ≥ 0, got -1"),
    (lambda p: nl.SGD([p], lr="fast"), TypeError, "lr must be a finite number ≥ 0, got 'fast' \\(str\\)"),
    (lambda p: nl.SGD([p], lr=0.1, nesterov=True), ValueError, "nesterov=True needs a momentum"),
    (lambda p: nl.Adam([p], betas=(0.9, 1.0)), ValueError, r"betas\[1\] must be a number in \[0, 1\)"),
    (lambda p: nl.SGD([], lr=0.1), ValueError, "empty parameter list"),
    (lambda p: nl.SGD([np.zeros(2)], lr=0.1), TypeError, "not a Parameter"),
])
def test_bad_arguments(make, error, message):
    with pytest.raises(error, match=message):
        make(param())


def test_learning_rate_can_change_between_steps():
    p = param()
    optimizer = nl.SGD([p], lr=0.1)
    run(optimizer, p, [1.0])
    optimizer.lr = 0.5                                                  # e.g. a schedule
    assert run(optimizer, p, [1.0]) == pytest.approx([0.9 - 0.5], abs=1e-15)
    with pytest.raises(ValueError, match="lr must be a finite number"):
        optimizer.lr = float("nan")
    p32 = nl.Parameter(np.ones(2, np.float32), "w")
    nl.SGD([p32], lr=0.1).step()
    assert p32.data.dtype == np.float32


def test_adamw_decays_theta_apart_from_the_gradient():
    # Zero gradient: Adam's m and v stay 0, so the only change is θ ← θ(1 − ηλ) per step.
    p = param(2.0)
    values = run(nl.AdamW([p], lr=0.1, weight_decay=0.5), p, [0.0, 0.0])
    assert values == pytest.approx([2.0 * 0.95, 2.0 * 0.95 ** 2], abs=1e-15)
    # Adam adds λθ to g instead: with g = 0 its first step is a full η-sized step, −η·sign(λθ).
    q = param(2.0)
    assert run(nl.Adam([q], lr=0.1, weight_decay=0.5), q, [0.0]) == pytest.approx([1.9], abs=1e-8)
    assert nl.AdamW([param()]).weight_decay == 0.01                     # PyTorch's default
    assert repr(nl.AdamW([param()], lr=0.1)).startswith("AdamW(lr=0.1,")
    with pytest.raises(ValueError, match=r"AdamW: betas\[0\] must be a number in \[0, 1\)"):
        nl.AdamW([param()], betas=(1.0, 0.9))
