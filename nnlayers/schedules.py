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

from ._args import positive_int as _positive_int
from .optim import Optimizer

__all__ = ["Schedule", "StepLR", "CosineAnnealingLR", "LinearLR", "SequentialLR"]


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
        if not isinstance(start_factor, (int, float)) or not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor!r}")
        if not isinstance(end_factor, (int, float)) or not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor!r}")
        self.start_factor, self.end_factor = float(start_factor), float(end_factor)
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
        self.milestones = [int(m) for m in milestones]
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


def _number(value, name: str, owner: str, minimum: float) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
            or value < minimum:
        raise ValueError(f"{owner}: {name} must be a finite number ≥ {minimum}, got {value!r}")
    return float(value)
