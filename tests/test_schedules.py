"""Learning-rate schedules by hand (PyTorch parity over 60 steps lives in test_torch_parity.py)."""
import math

import numpy as np
import pytest

import nnlayers as nl
from nnlayers import schedules as S
from tests.helpers import lrs


def optimizer(lr=1.0):
    return nl.SGD([nl.Parameter(np.zeros(1), "w")], lr=lr)


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


def test_one_cycle_by_hand():
    # T = 10, p = 0.3: up over steps 0 → 2 (p·T − 1), down over 2 → 9; η₀ = 1/10, η_min = η₀/10.
    schedule = S.OneCycleLR(optimizer(), max_lr=1.0, total_steps=10, anneal_strategy="linear",
                            cycle_momentum=False, div_factor=10, final_div_factor=10)
    expected = [0.1, 0.55, 1.0] + [1.0 + (0.01 - 1.0) * k / 7 for k in range(1, 8)] + [0.01]
    np.testing.assert_allclose(lrs(schedule, 10), expected, rtol=1e-14)      # t = 10 = T: stays at η_min
    with pytest.raises(ValueError, match="OneCycleLR: step 11 is past total_steps=10"):
        schedule.step()
    cosine = S.OneCycleLR(optimizer(), max_lr=1.0, total_steps=10, cycle_momentum=False, div_factor=10)
    values = lrs(cosine, 9)
    assert values[1] == pytest.approx(1.0 + (0.1 - 1.0) * (1 + math.cos(math.pi / 2)) / 2, rel=1e-14)
    assert values[2] == 1.0 and values[9] == pytest.approx(1e-5, rel=1e-12)


def test_one_cycle_cycles_momentum_and_adam_beta1_the_other_way():
    sgd = nl.SGD([nl.Parameter(np.zeros(1), "w")], lr=1.0, momentum=0.5)
    schedule = S.OneCycleLR(sgd, max_lr=1.0, total_steps=10, anneal_strategy="linear", div_factor=10)
    seen = [sgd.momentum]
    for _ in range(9):
        schedule.step()
        seen.append(sgd.momentum)
    np.testing.assert_allclose(seen[:3], [0.95, 0.90, 0.85], rtol=1e-14)   # down while η rises
    assert seen[9] == pytest.approx(0.95, rel=1e-14)                       # back up while it falls
    adam = nl.Adam([nl.Parameter(np.zeros(1), "w")], betas=(0.9, 0.99))
    S.OneCycleLR(adam, max_lr=0.01, total_steps=10, three_phase=True)
    assert adam.betas == (0.95, 0.99)
    with pytest.raises(ValueError, match="cycle_momentum needs an optimizer with betas"):
        S.OneCycleLR(optimizer(), max_lr=1.0, total_steps=10)               # SGD without momentum


@pytest.mark.parametrize("make, message", [
    (lambda o: S.StepLR(o, 0), "StepLR: step_size must be a positive integer"),
    (lambda o: S.StepLR(o, 2, gamma=-1), "gamma must be a finite number ≥ 0"),
    (lambda o: S.CosineAnnealingLR(o, 0), "T_max must be a positive integer"),
    (lambda o: S.CosineAnnealingLR(o, 3, eta_min=float("nan")), "eta_min must be a finite number"),
    (lambda o: S.LinearLR(o, start_factor=0), r"start_factor must be a number in \(0, 1\]"),
    (lambda o: S.LinearLR(o, end_factor=2), r"end_factor must be a number in \[0, 1\]"),
    (lambda o: S.SequentialLR(o, [], []), "needs at least one schedule"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(o, 2)], []), "2 schedules need 1 milestones"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(o, 2)], [0]), "increasing positive integers"),
    (lambda o: S.SequentialLR(o, [S.StepLR(optimizer(), 2)], []), "belongs to another optimizer"),
    (lambda o: S.StepLR(object(), 2), "expected an Optimizer"),
    (lambda o: S.OneCycleLR(o, 1.0, 0, cycle_momentum=False), "total_steps must be a positive integer"),
    (lambda o: S.OneCycleLR(o, 1.0, 10, pct_start=1.5, cycle_momentum=False), r"pct_start must be .* \[0, 1\]"),
    (lambda o: S.OneCycleLR(o, 1.0, 10, anneal_strategy="exp", cycle_momentum=False), "'cos' or 'linear'"),
    (lambda o: S.OneCycleLR(o, 1.0, 10, div_factor=0, cycle_momentum=False), "div_factor must be > 0"),
    (lambda o: S.OneCycleLR(o, 1.0, 10, final_div_factor=0.0, cycle_momentum=False), "final_div_factor must be > 0"),
])
def test_bad_arguments(make, message):
    with pytest.raises((ValueError, TypeError), match=message):
        make(optimizer())


@pytest.mark.parametrize("make, error, message", [
    # one rule: TypeError for a wrong type, ValueError for a wrong value, each naming the argument
    (lambda o: S.StepLR(o, 2, gamma="0.1"), TypeError, r"StepLR: gamma must be a finite number ≥ 0, got '0\.1'"),
    (lambda o: S.StepLR(o, 2, gamma=None), TypeError, "StepLR: gamma must be"),
    (lambda o: S.StepLR(o, 2, gamma=True), TypeError, "StepLR: gamma must be"),
    (lambda o: S.StepLR(o, 2, gamma=-0.5), ValueError, "StepLR: gamma must be a finite number ≥ 0, got -0.5"),
    (lambda o: S.CosineAnnealingLR(o, 3, eta_min="0"), TypeError, "CosineAnnealingLR: eta_min must be"),
    (lambda o: S.CosineAnnealingLR(o, 3, eta_min=float("inf")), ValueError, "CosineAnnealingLR: eta_min must be"),
    (lambda o: S.LinearLR(o, start_factor="0.5"), TypeError, r"LinearLR: start_factor must be a number in \(0, 1\]"),
    (lambda o: S.LinearLR(o, end_factor=None), TypeError, r"LinearLR: end_factor must be a number in \[0, 1\]"),
    (lambda o: S.LinearLR(o, start_factor=1.5), ValueError, "LinearLR: start_factor must be"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(o, 2)], ["3"]), TypeError,
     "SequentialLR: milestones must be an integer ≥ 0, got '3'"),
    (lambda o: S.SequentialLR(o, [S.StepLR(o, 2), S.StepLR(o, 2)], [2.5]), TypeError, "milestones must be"),
    (lambda o: S.OneCycleLR(o, "1.0", 10, cycle_momentum=False), TypeError, "OneCycleLR: max_lr must be"),
    (lambda o: S.OneCycleLR(o, 1.0, 10, pct_start="0.3", cycle_momentum=False), TypeError,
     r"OneCycleLR: pct_start must be a number in \[0, 1\]"),
    (lambda o: S.OneCycleLR(o, 1.0, 10, div_factor="25", cycle_momentum=False), TypeError, "div_factor must be"),
    (lambda o: S.OneCycleLR(o, 1.0, 10, cycle_momentum="no"), TypeError,
     "OneCycleLR: cycle_momentum must be True or False"),
    (lambda o: S.OneCycleLR(o, 1.0, 10, cycle_momentum=False, three_phase=1), TypeError,
     "OneCycleLR: three_phase must be True or False"),
    (lambda o: S.OneCycleLR(o, 1.0, 10, base_momentum="0.85", cycle_momentum=False), TypeError, "base_momentum"),
])
def test_wrong_types_raise_type_error_wrong_values_value_error(make, error, message):
    with pytest.raises(error, match=message) as caught:
        make(optimizer())
    assert type(caught.value) is error


def test_repr():
    opt = optimizer()
    assert repr(S.StepLR(opt, 3)) == "StepLR(step_size=3, gamma=0.1)"
    assert repr(S.CosineAnnealingLR(opt, 10)) == "CosineAnnealingLR(T_max=10, eta_min=0.0)"
