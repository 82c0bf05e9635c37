"""Divergence: fit never leaves the weights NaN or infinite.

``DivergenceGuard`` is the callback; ``_Watched`` finds a non-finite weight or optimizer
state; ``_Snapshot`` is a copy of all that a step changes, put back when training diverges.

On the CPU the guard looks at every batch's loss (a float: checking it costs nothing) and
keeps a copy from before each step, so the rollback lands on the last step whose loss was
finite. On a GPU, reading a loss means waiting for the device; there the guard reads the
epoch's running loss every ``check_every`` batches (default 50) and at the epoch's end,
and rolls back to the last check that passed: at most ``check_every`` steps are lost, in
exchange for ``check_every`` times fewer waits.
"""
from __future__ import annotations

import math

import numpy as np

from .._args import positive_int
from ..optim import Optimizer

__all__ = ["DivergenceGuard", "TrainingDivergedError"]


class TrainingDivergedError(FloatingPointError):
    """The training loss, the validation loss or a weight became NaN or infinite.

    The model's weights and buffers and the optimizer's state were put back to
    the last point known to be finite (the message says which), so training
    can resume, e.g. with a smaller learning rate. ``history`` holds the
    epochs finished before.
    """

    def __init__(self, message: str, history=None):
        super().__init__(message)
        self.history = history


class DivergenceGuard:
    """Stops ``fit`` with ``TrainingDivergedError`` when the loss, the validation loss, a weight or the
    optimizer's state becomes NaN or infinite, after putting back the last point known to be finite;
    an exception in the middle of a step (Ctrl-C, a warning made an error) undoes that step.

    ``check_every``: read the loss every k batches (None: 1 on the CPU, 50 on another device; see
    the module's docstring). ``fit`` adds one unless its ``callbacks`` hold one already.
    """

    def __init__(self, check_every: int | None = None):
        if check_every is not None:
            positive_int(check_every, "check_every", "DivergenceGuard")
        self.check_every = check_every
        self.in_step = False      # between the save of ``last`` and the end of the optimizer step

    def on_fit_start(self, trainer, run) -> None:
        entries = trainer.model.named_parameters() + trainer.model.named_buffers()  # walked once, not per epoch
        self.watched = _Watched(entries, trainer.optimizer)
        bad = self.watched.first_non_finite()
        if bad is not None:
            raise ValueError(f"fit: {bad} holds NaN or inf before training")
        self.run = run
        self.every = self.check_every or (1 if run.on_host else 50)
        # Copies of all that a step changes: ``last`` before each step (undoes a step cut short), ``good``
        # the last point whose loss was read finite, ``checked`` the end of the last epoch found finite.
        self.last = _Snapshot(entries, trainer.optimizer)
        if self.every == 1:     # every loss read: the copy before each step is the last finite point
            self.good = self.last
            # with one step per epoch, ``last`` is always the state the previous epoch ended with
            self.checked = self.last if run.batches == 1 else _Snapshot(entries, trainer.optimizer)
        else:                   # read every k steps: the last read that passed, or the last epoch's end
            self.good = self.checked = _Snapshot(entries, trainer.optimizer)
        self.in_step = False
        self.good_step = 0

    def on_loss(self, epoch: int, batch: int, loss) -> None:
        step = self.run.step
        if self.every == 1:
            value = float(loss)
            if not math.isfinite(value):
                self._diverged(f"loss became {value} at epoch {epoch}, batch {batch} (step {step})", self.last,
                               self.checked)
        elif step % self.every == 0:
            self._check_running_loss(f"epoch {epoch}, batch {batch}")
            self.good.save(epoch, batch)
            self.good_step = step
        self.last.save(epoch, batch)
        self.in_step = True

    def on_batch_end(self, epoch: int, batch: int) -> None:
        self.in_step = False

    def on_epoch_logs(self, epoch: int, logs: dict) -> None:
        if self.every > 1:
            self._check_running_loss(f"the end of epoch {epoch}", logs["loss"])
        bad = self.watched.first_non_finite()
        if bad is not None:
            self._diverged(f"{bad} became NaN or infinite during epoch {epoch} while the loss stayed finite",
                           self.last if self.every == 1 else self.good, self.checked)
        if "val_loss" in logs and not math.isfinite(logs["val_loss"]):
            self._diverged(f"validation loss became {logs['val_loss']} after epoch {epoch}", self.checked)
        if self.checked is not self.last:
            self.checked.save(epoch)
            self.good_step = self.run.step

    def on_exception(self, error: BaseException) -> None:
        if self.in_step:  # interrupted between the save and the update's end: undo the half step
            (self.last if self.last.is_finite() else self.checked).restore()
            self.in_step = False

    def _check_running_loss(self, where: str, value=None) -> None:
        """The epoch's running loss (read from the device: a wait) must be finite, else roll back."""
        value = float(self.run.loss_sum) if value is None else value
        if not math.isfinite(value):
            self._diverged(f"loss became {value} in steps {self.good_step + 1} to {self.run.step} (read at "
                           f"{where}: the loss is read every {self.every} steps)", self.good, self.checked)

    def _diverged(self, reason: str, *snapshots) -> None:
        """Put back the first finite snapshot and raise ``TrainingDivergedError``."""
        snapshot = next(s for s in snapshots if s.is_finite())  # the last, ``checked``, always is
        snapshot.restore()
        raise TrainingDivergedError(
            f"{reason}; weights and optimizer state restored to {snapshot.label}. The data hold no NaN or "
            "inf (checked before training), so the updates grew too large: try a smaller learning rate.",
            self.run.history)
class _Watched:
    """What must stay finite: the model's floating-point parameters and buffers, and the optimizer's
    state arrays (an optimizer that is not an ``nl.Optimizer`` shows none: the Trainer needs only
    its ``step`` and ``zero_grad``)."""

    def __init__(self, entries, optimizer):
        self.entries = [(f"the model's {name}", entry) for name, entry in entries if entry.data.dtype.kind == "f"]
        self.state = [(f"the optimizer's {name}[{i}]", array)
                      for name, arrays in (optimizer.state_arrays() if isinstance(optimizer, Optimizer) else [])
                      for i, array in enumerate(arrays) if array.dtype.kind == "f"]

    def first_non_finite(self) -> str | None:
        """The name of the first array holding NaN or ±inf, or None."""
        arrays = [entry.data for _, entry in self.entries] + [array for _, array in self.state]
        # Fast path: Σ a² (a BLAS dot, no warnings) is finite unless some a is NaN or ±inf, or the sum
        # overflowed (|a| ≳ 1e154 in float64, 1e19 in float32), which the exact check below sorts out.
        if all(math.isfinite(np.vdot(a, a)) for a in arrays):
            return None
        names = [name for name, _ in self.entries] + [name for name, _ in self.state]
        return next((name for name, a in zip(names, arrays) if not np.isfinite(a).all()), None)


class _Snapshot:
    """A copy of all that a training step changes: the model's parameters and buffers (``entries``,
    (name, object) pairs) and the optimizer's state. ``save`` copies into arrays allocated once;
    ``restore`` puts them back; ``label`` says when the copy was taken, for the messages."""

    def __init__(self, entries, optimizer):
        self.entries = [entry for _, entry in entries]
        self.arrays = [entry.data.copy() for entry in self.entries]
        self.optimizer = optimizer if isinstance(optimizer, Optimizer) else None
        self.state = self.optimizer.state_dict() if self.optimizer is not None else {}
        # (copy, live array) for each state array: copied in place at every save
        self.state_pairs = [(saved, live) for name, arrays in (self.optimizer.state_arrays() if self.optimizer else [])
                            for saved, live in zip(self.state[name], arrays)]
        self.when = None                       # (epoch,) after an epoch, (epoch, batch) before a step

    def save(self, *when) -> None:
        for saved, entry in zip(self.arrays, self.entries):
            np.copyto(saved, entry.data)
        for saved, live in self.state_pairs:
            np.copyto(saved, live)
        if self.optimizer is not None:
            self.state["steps"] = self.optimizer.steps
        self.when = when

    def restore(self) -> None:
        for saved, entry in zip(self.arrays, self.entries):
            np.copyto(entry.data, saved)
        if self.optimizer is not None:
            self.optimizer.load_state_dict(self.state)
            self.optimizer.zero_grad()
        else:
            for entry in self.entries:
                if hasattr(entry, "grad"):
                    entry.grad.fill(0)

    @property
    def label(self) -> str:
        if not self.when:
            return "the start of training"
        if len(self.when) == 1:
            return f"the end of epoch {self.when[0]}"
        return f"the last step whose loss was finite (epoch {self.when[0]}, batch {self.when[1]})"

    def is_finite(self) -> bool:
        state = [array for name, arrays in self.state.items() if name != "steps" for array in arrays]
        return all(np.isfinite(array).all() for array in self.arrays + state if array.dtype.kind == "f")


