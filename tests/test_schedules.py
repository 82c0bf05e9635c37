"""Learning-rate schedules by hand (PyTorch parity over 60 steps lives in test_torch_parity.py)."""
import math

import numpy as np
import pytest

import nnlayers as nl
from nnlayers import schedules as S


def optimizer(lr=1.0):
    return nl.SGD([nl.Parameter(np.zeros(1), "w")], lr=lr)


def lrs(schedule, steps):
    """η(0), η(1), …, η(steps) as the optimizer sees them."""
    values = [schedule.optimizer.lr]
    for _ in range(steps):
        schedule.step()
        values.append(schedule.optimizer.lr)
    return values


def test_step_lr():
    assert lrs(S.StepLR(optimizer(0.8), 2, gamma=0.5), 5) == pytest.approx([0.8, 0.8, 0.4, 0.4, 0.2, 0.2])


def test_cosine_annealing_from_base_to_eta_min():
    values = lrs(S.CosineAnnealingLR(optimizer(1.0), 4, eta_min=0.2), 4)
    # η(t) = 0.2 + 0.8·(1 + cos(πt/4))/2
    assert values == pytest.approx([1.0, 0.2 + 0.4 * (1 + math.sqrt(0.5)), 0.6, 0.2 + 0.4 * (1 - math.sqrt(0.5)),
                                    0.2], abs=1e-15)


def test_linear_warmup_then_flat():
    assert lrs(S.LinearLR(optimizer(2.0), start_factor=0.25, total_iters=3), 5) == pytest.approx(
        [0.5, 1.0, 1.5, 2.0, 2.0, 2.0])


def test_sequential_restarts_each_schedule_at_its_milestone():
    opt = optimizer(1.0)
    warmup = S.LinearLR(opt, start_factor=0.5, total_iters=2)
    cosine = S.CosineAnnealingLR(opt, 2)
    schedule = S.SequentialLR(opt, [warmup, cosine], milestones=[2])
    assert cosine.base_lr == warmup.base_lr == opt.initial_lr == 1.0   # not the warm-up's η(0)
    assert lrs(schedule, 4) == pytest.approx([0.5, 0.75, 1.0, 0.5, 0.0])
    assert schedule.last_step == 4 and schedule.lr == opt.lr


def test_a_schedule_drives_the_optimizer_steps():
    p = nl.Parameter(np.array([0.0]), "w")
    opt = nl.SGD([p], lr=1.0)
    schedule = S.StepLR(opt, 1, gamma=0.1)
    for _ in range(3):
        p.grad[...] = -1.0
        opt.step()
        schedule.step()
    assert p.data[0] == pytest.approx(1.0 + 0.1 + 0.01)


@pytest.mark.parametrize("make, message", [
    (lambda o: S.StepLR(o, 0), "StepLR: step_size must be a positive integer"),
    (lambda o: S.StepLR(o, 2, gamma=-1), "gamma must be a finite number ≥ 0"),
    (lambda o: S.CosineAnnealingLR(o, 0), "T_max must be a positive integer"),
    (lambda o: S.CosineAnnealingLR(o, 3, eta_min=float("nan")), "eta_min must be a finite number"),
    (lambda o: S.LinearLR(o, start_factor=0), r"start_factor must be in \(0, 1\]"),
    (lambda o: S.LinearLR(o, end_factor=2), r"end_factor must be in \[0, 1\]"),
    (lambda o: S.SequentialLR(o, [], []), "needs at least one schedule"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(o, 2)], []), "2 schedules need 1 milestones"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(o, 2)], [0]), "increasing positive integers"),
    (lambda o: S.SequentialLR(o, [S.StepLR(optimizer(), 2)], []), "belongs to another optimizer"),
    (lambda o: S.StepLR(object(), 2), "expected an Optimizer"),
])
def test_bad_arguments(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make(optimizer())


def test_repr():
    opt = optimizer()
    assert repr(S.StepLR(opt, 3)) == "StepLR(step_size=3, gamma=0.1)"
    assert repr(S.CosineAnnealingLR(opt, 10)) == "CosineAnnealingLR(T_max=10, eta_min=0.0)"
