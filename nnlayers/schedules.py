"""Learning-rate schedules: η as a function of the step count t, written into ``optimizer.lr``.

They follow ``torch.optim.lr_scheduler`` (same names, arguments and values):
a schedule is created on an optimizer, which it sets to η(0); each
``step()`` advances t by one and sets η(t). Call ``step()`` after
``optimizer.step()``, once per epoch or once per batch (the ``Trainer``
does it for you: ``Trainer(..., schedule=s, schedule_every="epoch" | "batch")``);
t then counts epochs or batches. η₀ is the optimizer's learning rate when
the first schedule is attached to it (kept as ``optimizer.initial_lr``, as
PyTorch keeps ``initial_lr``), so several schedules on one optimizer share it::

    StepLR             η(t) = η₀ · γ^⌊t / step_size⌋
    CosineAnnealingLR  η(t) = η_min + (η₀ − η_min) · (1 + cos(π t / T_max)) / 2
    LinearLR           η(t) = η₀ · (s + (e − s) · min(t, T) / T)      (s, e: start and end factors)
    SequentialLR       schedule i from milestone i − 1 on, restarted there at t = 0
    OneCycleLR         up from η_max/d to η_max over the first p·T steps, then down to η_max/(d·d_f)
                       (cosine or linear), with the momentum (or Adam's β₁) cycling the other way

A warm-up then cosine decay over ``total`` steps, for example::

    warmup = LinearLR(optimizer, start_factor=0.1, total_iters=5)
    cosine = CosineAnnealingLR(optimizer, T_max=total - 5)
    schedule = SequentialLR(optimizer, [warmup, cosine], milestones=[5])

Each schedule computes η(t) in closed form, so it never drifts; PyTorch
computes most of them recursively from the previous η, which agrees to
rounding error.
"""
from __future__ import annotations

import bisect
import math

from ._args import flag as _flag, non_negative_int as _non_negative_int, positive_int as _positive_int
from ._args import real as _real
from .optim import Optimizer

__all__ = ["Schedule", "StepLR", "CosineAnnealingLR", "LinearLR", "SequentialLR", "OneCycleLR"]


class Schedule:
    """Base class: a subclass defines ``lr_at(t)``; ``step()`` moves to t + 1 and sets ``optimizer.lr``.

    ``last_step`` is t, the number of ``step()`` calls so far; ``base_lr`` is η₀.
    """

    def __init__(self, optimizer: Optimizer):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if getattr(optimizer, "initial_lr", None) is None:
            optimizer.initial_lr = optimizer.lr            # η₀, shared by every schedule on this optimizer
        self.base_lr = optimizer.initial_lr
        self.last_step = 0
        self._apply(0)

    def lr_at(self, t: int) -> float:
        """η(t): the learning rate after t steps of the schedule."""
        raise NotImplementedError

    def step(self) -> None:
        """t ← t + 1 and ``optimizer.lr`` ← η(t)."""
        self.last_step += 1
        self._apply(self.last_step)

    def _apply(self, t: int) -> None:
        self.optimizer.lr = self.lr_at(t)

    @property
    def lr(self) -> float:
        """The learning rate the schedule set last (η(last_step))."""
        return self.lr_at(self.last_step)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def extra_repr(self) -> str:
        return ""


class StepLR(Schedule):
    """η(t) = η₀ · γ^⌊t / step_size⌋: multiplied by ``gamma`` every ``step_size`` steps."""

    def __init__(self, optimizer: Optimizer, step_size: int, gamma: float = 0.1):
        self.step_size = _positive_int(step_size, "step_size", "StepLR")
        self.gamma = _number(gamma, "gamma", "StepLR", minimum=0.0)
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        return self.base_lr * self.gamma ** (t // self.step_size)

    def extra_repr(self) -> str:
        return f"step_size={self.step_size}, gamma={self.gamma}"


class CosineAnnealingLR(Schedule):
    """η(t) = η_min + (η₀ − η_min) · (1 + cos(π t / T_max)) / 2  (Loshchilov & Hutter, 2017).

    From η₀ at t = 0 down to ``eta_min`` at t = ``T_max`` along half a cosine;
    past T_max it rises again, as PyTorch's does (one schedule per run: set
    T_max to the number of steps).
    """

    def __init__(self, optimizer: Optimizer, T_max: int, eta_min: float = 0.0):
        self.T_max = _positive_int(T_max, "T_max", "CosineAnnealingLR")
        self.eta_min = _number(eta_min, "eta_min", "CosineAnnealingLR", minimum=0.0)
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        return self.eta_min + (self.base_lr - self.eta_min) * (1 + math.cos(math.pi * t / self.T_max)) / 2

    def extra_repr(self) -> str:
        return f"T_max={self.T_max}, eta_min={self.eta_min}"


class LinearLR(Schedule):
    """η(t) = η₀ · (s + (e − s) · min(t, T) / T): from s·η₀ to e·η₀ in T = ``total_iters`` steps, then flat.

    With the defaults of PyTorch (s = 1/3, e = 1, T = 5) and s small, a linear warm-up.
    """

    def __init__(self, optimizer: Optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0,
                 total_iters: int = 5):
        self.start_factor = _real(start_factor, "start_factor", "LinearLR", low=0.0, high=1.0, low_open=True)
        self.end_factor = _real(end_factor, "end_factor", "LinearLR", low=0.0, high=1.0)
        self.total_iters = _positive_int(total_iters, "total_iters", "LinearLR")
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        s, e = self.start_factor, self.end_factor
        return self.base_lr * (s + (e - s) * min(t, self.total_iters) / self.total_iters)

    def extra_repr(self) -> str:
        return f"start_factor={self.start_factor}, end_factor={self.end_factor}, total_iters={self.total_iters}"


class SequentialLR(Schedule):
    """Schedules one after another: ``schedules[i]`` runs from ``milestones[i − 1]`` (0 for the first),
    restarted at its own t = 0 there, as ``torch.optim.lr_scheduler.SequentialLR`` does::

        η(t) = schedules[i].lr_at(t − milestones[i − 1])   for milestones[i − 1] ≤ t < milestones[i]
    """

    def __init__(self, optimizer: Optimizer, schedules, milestones):
        self.schedules = list(schedules)
        self.milestones = [_non_negative_int(m, "milestones", "SequentialLR") for m in milestones]
        if not self.schedules:
            raise ValueError("SequentialLR: needs at least one schedule")
        for position, schedule in enumerate(self.schedules):
            if not isinstance(schedule, Schedule):
                raise TypeError(f"SequentialLR: item {position} is {type(schedule).__name__}, not a Schedule")
            if schedule.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: schedule {position} ({schedule!r}) belongs to another optimizer")
        if len(self.milestones) != len(self.schedules) - 1:
            raise ValueError(f"SequentialLR: {len(self.schedules)} schedules need {len(self.schedules) - 1} "
                             f"milestones, got {len(self.milestones)}")
        if any(m < 1 for m in self.milestones) or self.milestones != sorted(set(self.milestones)):
            raise ValueError(f"SequentialLR: milestones must be increasing positive integers, got {milestones!r}")
        super().__init__(optimizer)

    def lr_at(self, t: int) -> float:
        i = bisect.bisect_right(self.milestones, t)
        start = self.milestones[i - 1] if i else 0
        return self.schedules[i].lr_at(t - start)

    def extra_repr(self) -> str:
        return f"{self.schedules!r}, milestones={self.milestones}"


class OneCycleLR(Schedule):
    """The 1cycle policy (Smith & Topin, 2019), as ``torch.optim.lr_scheduler.OneCycleLR``, over
    ``total_steps`` = T steps (stepped once per batch). With η₀ = max_lr / div_factor and
    η_min = η₀ / final_div_factor, the phases run between these step counts::

        two phases:    0 → p·T − 1: η₀ → max_lr;    p·T − 1 → T − 1: max_lr → η_min
        three phases:  0 → p·T − 1: η₀ → max_lr;    p·T − 1 → 2p·T − 2: max_lr → η₀;
                       2p·T − 2 → T − 1: η₀ → η_min

    (p = ``pct_start``) and within a phase from a to b, at the fraction s of it,

        cos:     η = b + (a − b) · (1 + cos(π s)) / 2
        linear:  η = a + (b − a) · s

    With ``cycle_momentum`` the momentum (SGD's ``momentum``, or β₁ of Adam's ``betas``) runs the
    other way, from ``max_momentum`` down to ``base_momentum`` while η rises, and back (and stays
    at ``max_momentum`` in the third phase). The
    optimizer's own lr is not used; it starts at η₀. Stepping past T raises ValueError, as PyTorch does.
    At t = T, after the last of the T optimizer steps, η stays at η_min, where PyTorch extrapolates
    the last phase (with ``"linear"`` to a negative rate, which nnlayers' optimizers refuse).
    """

    def __init__(self, optimizer: Optimizer, max_lr: float, total_steps: int, pct_start: float = 0.3,
                 anneal_strategy: str = "cos", cycle_momentum: bool = True, base_momentum: float = 0.85,
                 max_momentum: float = 0.95, div_factor: float = 25.0, final_div_factor: float = 1e4,
                 three_phase: bool = False):
        name = type(self).__name__
        self.max_lr = _number(max_lr, "max_lr", name, 0.0)
        self.total_steps = _positive_int(total_steps, "total_steps", name)
        self.pct_start = _real(pct_start, "pct_start", name, low=0.0, high=1.0)
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"{name}: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.anneal_strategy = anneal_strategy
        self.div_factor = _number(div_factor, "div_factor", name, 0.0)
        self.final_div_factor = _number(final_div_factor, "final_div_factor", name, 0.0)
        for label, value in (("div_factor", self.div_factor), ("final_div_factor", self.final_div_factor)):
            if value == 0:  # η₀ = max_lr / div_factor, η_min = η₀ / final_div_factor
                raise ValueError(f"{name}: {label} must be > 0 (it divides the learning rate), got {value!r}")
        self.three_phase = _flag(three_phase, "three_phase", name)
        self.initial_lr = self.max_lr / self.div_factor
        self.min_lr = self.initial_lr / self.final_div_factor
        self.cycle_momentum = _flag(cycle_momentum, "cycle_momentum", name)
        self.base_momentum = _number(base_momentum, "base_momentum", name, 0.0)
        self.max_momentum = _number(max_momentum, "max_momentum", name, 0.0)
        # Each phase: the step it ends at, then η and the momentum at its start and at its end.
        T, p, low, high = self.total_steps, self.pct_start, self.base_momentum, self.max_momentum
        if self.three_phase:
            self._phases = [(p * T - 1, self.initial_lr, self.max_lr, high, low),
                            (2 * p * T - 2, self.max_lr, self.initial_lr, low, high),
                            (T - 1, self.initial_lr, self.min_lr, high, high)]
        else:
            self._phases = [(p * T - 1, self.initial_lr, self.max_lr, high, low),
                            (T - 1, self.max_lr, self.min_lr, low, high)]
        if self.cycle_momentum:
            if hasattr(optimizer, "betas"):
                self._momentum_name = "betas"
            elif getattr(optimizer, "momentum", 0):
                self._momentum_name = "momentum"
            else:
                raise ValueError(f"{name}: cycle_momentum needs an optimizer with betas (Adam, AdamW) or "
                                 f"with momentum > 0 (SGD), got {optimizer!r}; pass cycle_momentum=False")
        super().__init__(optimizer)

    def _position(self, t: int):
        """(phase, fraction s of it) at step t."""
        if t > self.total_steps:
            raise ValueError(f"OneCycleLR: step {t} is past total_steps={self.total_steps}")
        start = 0.0
        for index, phase in enumerate(self._phases):
            end = phase[0]
            if t <= end or index == len(self._phases) - 1:
                return phase, min((t - start) / (end - start), 1.0)
            start = end

    def _anneal(self, a: float, b: float, s: float) -> float:
        if self.anneal_strategy == "cos":
            return b + (a - b) / 2.0 * (math.cos(math.pi * s) + 1)
        return a + (b - a) * s

    def lr_at(self, t: int) -> float:
        (_, a, b, _, _), s = self._position(t)
        return self._anneal(a, b, s)

    def momentum_at(self, t: int) -> float:
        """The momentum (or β₁) at step t: max_momentum → base_momentum while η rises, and back
        (in the third phase of ``three_phase`` it stays at max_momentum)."""
        (_, _, _, a, b), s = self._position(t)
        return self._anneal(a, b, s)

    def _apply(self, t: int) -> None:
        super()._apply(t)
        if self.cycle_momentum:
            momentum = self.momentum_at(t)
            if self._momentum_name == "betas":
                self.optimizer.betas = (momentum, self.optimizer.betas[1])
            else:
                self.optimizer.momentum = momentum

    def extra_repr(self) -> str:
        return (f"max_lr={self.max_lr}, total_steps={self.total_steps}, pct_start={self.pct_start}, "
                f"anneal_strategy={self.anneal_strategy!r}, three_phase={self.three_phase}")



def _number(value, name: str, owner: str, minimum: float) -> float:
    """``value`` as a finite float ≥ ``minimum``: TypeError for a wrong type, ValueError for a wrong value."""
    return _real(value, name, owner, low=minimum)
