"""Training loops: minibatches, the ``Trainer`` and the ``History`` it returns.

One training step is the derivation's loop, in this order:
forward → loss → loss.backward → model.backward → optimizer.step → zero_grad.
"""
from __future__ import annotations

import html
import math
import sys
import time
from dataclasses import dataclass, field, fields

import numpy as np

from ._args import flag, non_negative_int, positive_int
from .backend import get_array_module, is_array, to_device, to_host
from .init import as_rng
from .module import evaluation_mode
from .optim import Optimizer

__all__ = ["Trainer", "History", "TrainingDivergedError", "accuracy", "minibatches"]


class TrainingDivergedError(FloatingPointError):
    """The training loss, the validation loss or a weight became NaN or infinite.

    The model's weights and buffers and the optimizer's state were put back to
    the last point known to be finite (the message says which), so training
    can resume, e.g. with a smaller learning rate. ``history`` holds the
    epochs finished before.
    """

    def __init__(self, message: str, history: "History" = None):
        super().__init__(message)
        self.history = history


def accuracy(pred, target) -> float:
    """Fraction of rows whose arg-max of ``pred`` (N×K scores) equals the label.

    ``target`` is N integer labels or N×K one-hot rows. A single output column
    (N×1, e.g. a sigmoid) counts pred ≥ 0.5 as class 1.
    """
    pred = pred if is_array(pred) else np.asarray(pred)          # a GPU array stays on its device
    target = target if is_array(target) else np.asarray(target)
    if pred.ndim == 2 and pred.shape[1] == 1:
        predicted = (pred[:, 0] >= 0.5).astype(np.int64)
        labels = target.reshape(-1) >= 0.5 if target.dtype.kind == "f" else target.reshape(-1)
    else:
        predicted = pred.argmax(axis=1)
        labels = target.argmax(axis=1) if target.ndim == 2 else target
    if len(labels) != len(predicted):
        raise ValueError(f"accuracy: {len(predicted)} predictions but {len(labels)} labels")
    return float((predicted == labels).mean()) if len(labels) else float("nan")


def minibatches(n: int, batch_size: int | None, *, shuffle: bool = True, rng=None):
    """Index arrays covering ``range(n)`` once, in batches of ``batch_size`` (the last may be
    smaller); ``batch_size=None`` means one full batch. Shuffled with ``rng`` if ``shuffle``."""
    non_negative_int(n, "n", "minibatches")
    if batch_size is not None:
        positive_int(batch_size, "batch_size", "minibatches")
    order = as_rng(rng).permutation(n) if flag(shuffle, "shuffle", "minibatches") else np.arange(n)
    size = n if batch_size is None else batch_size
    for start in range(0, n, size):
        yield order[start:start + size]


@dataclass
class History:
    """Per-epoch records of a ``fit``: training ``loss`` and ``val_loss``, each metric under
    its name (``accuracy``, ``val_accuracy``), wall-clock ``seconds`` per epoch, and ``lr``,
    the learning rate at the start of each epoch (its first step's). ``best_epoch`` (1-based)
    is the epoch with the best monitored value when ``fit`` watched one (``restore_best``,
    ``patience``), else None.

    Losses are in the loss's own reduction over the whole set: the mean per
    sample for a mean loss (SoftmaxCrossEntropy), the total over all samples
    for a sum loss (EuclideanLoss: for full-batch XOR, exactly ½ Σ (Yᵖ − Y)²).
    The training loss is gathered batch by batch while the weights change.
    """

    loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)
    seconds: list = field(default_factory=list)
    lr: list = field(default_factory=list)
    best_epoch: int | None = None

    def __getattr__(self, name):
        metrics = self.__dict__.get("metrics") or {}
        if name in metrics:
            return metrics[name]
        raise AttributeError(f"History has no record {name!r} (has loss, val_loss, seconds"
                             + "".join(f", {key}" for key in metrics) + ")")

    @property
    def epochs(self) -> int:
        return len(self.loss)

    def record(self, name: str, value: float) -> None:
        self.metrics.setdefault(name, []).append(value)

    # -- display: the last values, not every one (the lists stay as they are) ----------------
    def records(self) -> dict:
        """Every per-epoch record by name (``loss``, ``val_loss`` when validated, each metric, …),
        ``seconds`` left out; empty records left out."""
        records = {}
        for item in fields(self):
            value = getattr(self, item.name)
            if item.name == "metrics":
                records.update((name, values) for name, values in value.items() if len(values))
            elif item.name != "seconds" and isinstance(value, list) and value:
                records[item.name] = value
        return records

    def _notes(self) -> str:
        """Single values beside the records (e.g. a best epoch), as ``; name=value``."""
        values = ((item.name, getattr(self, item.name)) for item in fields(self))
        return "".join(f"; {name}={value}" for name, value in values
                       if value is not None and not isinstance(value, (list, dict)))

    def __repr__(self) -> str:
        if not self.epochs:
            return "History(0 epochs)"
        last = ", ".join(f"{name}={_number(values[-1])}" for name, values in self.records().items())
        return (f"History({self.epochs} epoch{'s' if self.epochs != 1 else ''}, {sum(self.seconds):.1f} s; "
                f"last: {last}{self._notes()})")

    def _repr_html_(self) -> str:
        head = (f"<p>History: {self.epochs} epoch{'s' if self.epochs != 1 else ''}, {sum(self.seconds):.1f} s"
                f"{html.escape(self._notes())}</p>")
        if not self.epochs:
            return head
        rows = "".join(
            f"<tr><td style='text-align:left'>{html.escape(name)}</td><td>{_number(values[0])}</td>"
            f"<td>{_number(values[-1])}</td><td>{_number(min(values))}</td><td>{_number(max(values))}</td></tr>"
            for name, values in self.records().items())
        return (head + "<table><thead><tr><th>record</th><th>epoch 1</th>"
                f"<th>epoch {self.epochs} (last)</th><th>min</th><th>max</th></tr></thead>"
                f"<tbody>{rows}</tbody></table>")


def _number(value) -> str:
    return f"{value:.6g}" if isinstance(value, (float, np.floating)) else str(value)


class Trainer:
    """Trains ``model`` against ``loss`` with ``optimizer``; knows nothing of their insides.

    ``metric`` is a callable ``metric(pred, target) -> float`` (e.g.
    ``nl.accuracy``) reported per epoch on training and validation data.

    ``schedule`` is a learning-rate schedule on ``optimizer`` (``nl.schedules``),
    stepped after every epoch (``schedule_every="epoch"``, its t counts epochs)
    or after every optimizer step (``"batch"``, t counts batches).
    """

    def __init__(self, model, loss, optimizer, *, metric=None, schedule=None, schedule_every: str = "epoch",
                 device=None):
        self.model = model
        self.device = device  # None: wherever the model's parameters are when fit/predict runs
        self.loss = loss
        self.optimizer = optimizer
        if metric is not None and not callable(metric):
            raise TypeError(f"Trainer: metric must be a function metric(pred, target) -> float, got {metric!r}")
        self.metric = metric
        self.metric_name = getattr(metric, "__name__", "metric") if metric is not None else None
        if schedule is not None and getattr(schedule, "optimizer", None) is not optimizer:
            raise ValueError(f"Trainer: the schedule {schedule!r} does not act on this trainer's optimizer")
        if schedule_every not in ("epoch", "batch"):
            raise ValueError(f"Trainer: schedule_every must be 'epoch' or 'batch', got {schedule_every!r}")
        self.schedule = schedule
        self.schedule_every = schedule_every

    # -- training --------------------------------------------------------------
    def fit(self, X, Y, epochs: int, batch_size: int | None = None, shuffle: bool = True, rng=None,
            validation_data=None, progress: bool = True, *, restore_best: bool = False, monitor: str | None = None,
            patience: int | None = None, callbacks=(), augment=None) -> History:
        """Run ``epochs`` passes over (X, Y); returns the ``History``.

        Keeping the best epoch: ``monitor`` names a record of the history
        (``"val_loss"``, the default with validation data, else ``"loss"``; or
        a metric such as ``"val_accuracy"``), lower is better for names ending
        in ``loss``, higher for the others. With ``restore_best=True`` the
        weights and buffers of the best epoch are put back when ``fit`` ends;
        with ``patience=k`` training stops after k epochs without a strict
        improvement. ``history.best_epoch`` says which epoch was best.
        ``callbacks``: objects with ``on_epoch_end(epoch, history)``, called
        after each epoch (after the schedule's step); one that returns True
        stops training.

        ``augment``: a transform ``augment(X_batch, rng) -> X_batch`` (``nl.augment``)
        applied to every training batch before its forward pass, with fit's
        ``rng``; the validation data are never augmented.

        ``batch_size=None`` trains on the full batch (never shuffled: its order
        changes nothing). Minibatches are reshuffled every epoch from ``rng``
        (int seed or Generator). Gradients are zeroed after every step.
        ``progress=False`` silences all output.

        Before the first step, X and Y (and ``validation_data``) are checked
        once for NaN and inf, and all of Y against the loss (a label out of
        range is reported by its position in Y). fit never leaves the weights
        non-finite: if the training loss, the validation loss or a weight
        becomes NaN or infinite, the weights, buffers and optimizer state go
        back to the last point known to be finite and ``TrainingDivergedError``
        says where and when. An exception in the middle of a step (Ctrl-C, a
        warning turned into an error) undoes that step before it propagates.
        """
        X, Y = np.asarray(X), np.asarray(Y)  # data stay on the host; each batch moves to the device
        _check_pair(X, Y, "fit")
        positive_int(epochs, "epochs", "fit")
        if batch_size is not None:
            positive_int(batch_size, "batch_size", "fit")
        shuffle = flag(shuffle, "shuffle", "fit")
        progress = flag(progress, "progress", "fit")
        _check_finite(X, Y, "fit")
        if augment is not None and not callable(augment):
            raise TypeError(f"fit: augment must be a transform augment(X_batch, rng) -> X_batch, got {augment!r}")
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError(f"fit: validation_data must be a pair (X_val, Y_val), got "
                                f"{type(validation_data).__name__}")
            X_val, Y_val = (np.asarray(a) for a in validation_data)
            _check_pair(X_val, Y_val, "fit (validation_data)")
            _check_finite(X_val, Y_val, "fit (validation_data)")
        entries = self.model.named_parameters() + self.model.named_buffers()  # walked once, not per epoch
        watched = _Watched(entries, self.optimizer)
        bad = watched.first_non_finite()
        if bad is not None:
            raise ValueError(f"fit: {bad} holds NaN or inf before training")
        rng = as_rng(rng)
        device = self._device()
        n = len(X)
        full_batch = batch_size is None or batch_size >= n  # one batch: its order changes nothing
        batches_per_epoch = 1 if full_batch else math.ceil(n / batch_size)
        tracker = _BestEpoch(self, monitor, restore_best, patience, validation_data is not None) \
            if restore_best or patience is not None else None
        display = _Progress(progress, epochs, batches_per_epoch, self.metric_name)
        # Copies of all that a step changes: ``last`` before each step whose loss was finite, ``checked``
        # at the end of each epoch whose weights (and validation loss) were finite. With one step per
        # epoch, ``last`` is always the state the previous epoch ended with, so it serves as both.
        last = _Snapshot(entries, self.optimizer)
        checked = last if full_batch else _Snapshot(entries, self.optimizer)
        history = History()
        per_sample = self._loss_is_mean()
        self.model.train()
        self.optimizer.zero_grad()
        step = 0
        in_step = False  # between the save of ``last`` and the end of the optimizer step
        try:
            for epoch in range(1, epochs + 1):
                started = time.perf_counter()
                history.lr.append(self.optimizer.lr)
                display.start_epoch(epoch)
                loss_sum = metric_sum = 0.0
                batches = [(X, Y)] if full_batch else (
                    (X[index], Y[index]) for index in minibatches(n, batch_size, shuffle=shuffle, rng=rng))
                for batch, (Xb, Yb) in enumerate(batches, 1):
                    if augment is not None:
                        Xb = _augmented(augment, Xb, rng)
                    Xb, Yb = to_device(Xb, device), to_device(Yb, device)
                    pred = self.model.forward(Xb)
                    if step == 0:  # all the targets, before any weight changes
                        self._check_targets(Y, pred, "fit: Y")
                        if validation_data is not None:
                            self._check_targets(Y_val, pred, "fit: validation_data's Y")
                    value = self.loss.forward(pred, Yb)
                    step += 1
                    if not math.isfinite(value):
                        self._diverged(f"loss became {value} at epoch {epoch}, batch {batch} (step {step})",
                                       history, last, checked)
                    last.save(epoch, batch)
                    in_step = True
                    self.model.backward(self.loss.backward())
                    self.optimizer.step()
                    self.optimizer.zero_grad()
                    in_step = False
                    if self.schedule is not None and self.schedule_every == "batch":
                        self.schedule.step()
                    loss_sum += value * len(Xb) if per_sample else value
                    if self.metric is not None:
                        metric_sum += self.metric(pred, Yb) * len(Xb)
                    display.batch_done(batch, loss_sum, metric_sum, len(Xb), per_sample)
                bad = watched.first_non_finite()
                if bad is not None:
                    self._diverged(f"{bad} became NaN or infinite during epoch {epoch} while the loss stayed "
                                   "finite", history, last, checked)
                if validation_data is not None:
                    val_loss, val_metric = self.evaluate(X_val, Y_val)
                    if not math.isfinite(val_loss):
                        self._diverged(f"validation loss became {val_loss} after epoch {epoch}", history,
                                       checked)
                history.loss.append(loss_sum / n if per_sample else loss_sum)
                if self.metric is not None:
                    history.record(self.metric_name, metric_sum / n)
                if validation_data is not None:
                    history.val_loss.append(val_loss)
                    if self.metric is not None:
                        history.record("val_" + self.metric_name, val_metric)
                if checked is not last:
                    checked.save(epoch)
                history.seconds.append(time.perf_counter() - started)
                display.end_epoch(history)
                if self._end_epoch(epoch, history, tracker, callbacks):
                    break
        except BaseException:
            if in_step:  # interrupted between the save and the update's end: undo the half step
                (last if last.is_finite() else checked).restore()
            raise
        finally:
            display.close()
        if tracker is not None:
            tracker.finish(history)
        return history

    def _device(self) -> str:
        return self.model.device if self.device is None else self.device

    def _check_targets(self, Y, pred, where: str) -> None:
        """All of Y against the loss, so that a bad target is named by its position in Y."""
        try:
            self.loss.check_target(Y, np.shape(pred)[1:])
        except (ValueError, TypeError) as error:
            raise type(error)(f"{where} does not suit the loss: {error}") from None

    def _diverged(self, reason: str, history: History, *snapshots) -> None:
        """Put back the first finite snapshot and raise ``TrainingDivergedError``."""
        snapshot = next(s for s in snapshots if s.is_finite())  # the last, ``checked``, always is
        snapshot.restore()
        raise TrainingDivergedError(
            f"{reason}; weights and optimizer state restored to {snapshot.label}. The data hold no NaN or "
            "inf (checked before training), so the updates grew too large: try a smaller learning rate.",
            history)

    def _end_epoch(self, epoch: int, history: History, tracker, callbacks) -> bool:
        """Step a per-epoch schedule, watch the best epoch, run the callbacks; True means stop."""
        if self.schedule is not None and self.schedule_every == "epoch":
            self.schedule.step()
        stop = tracker.update(epoch, history) if tracker is not None else False
        for callback in callbacks:
            stop = bool(callback.on_epoch_end(epoch, history)) or stop
        return stop

    # -- inference ---------------------------------------------------------------
    def predict(self, X, batch_size: int = 1024, *, host: bool = True) -> np.ndarray:
        """Model outputs for X, computed in batches in eval mode (each module's mode is restored after).

        Each batch runs on the model's device; the outputs come back as a host
        (numpy) array unless ``host=False``, which leaves them on the device.

        Zero samples give the output's shape with N = 0, e.g. (0, K). Forward
        caches are dropped afterwards (``Module.clear_cache``), so a large
        prediction leaves no unfolded inputs behind."""
        X = np.asarray(X)
        positive_int(batch_size, "batch_size", "predict")
        if X.ndim == 0:
            raise ValueError(f"predict: X needs a first (sample) axis, got shape {X.shape}")
        starts = range(0, len(X), batch_size) if len(X) else [0]   # no samples: one empty batch
        device = self._device()
        try:
            with evaluation_mode(self.model):
                outputs = [self.model.forward(to_device(X[start:start + batch_size], device)) for start in starts]
        finally:
            self.model.clear_cache()  # inference needs no backward: free what forward kept
        if host:
            outputs = [to_host(output) for output in outputs]
        return get_array_module(outputs[0]).concatenate(outputs) if len(outputs) > 1 else outputs[0]

    def evaluate(self, X, Y, batch_size: int = 1024) -> tuple[float, float | None]:
        """(loss, metric or None) over all of (X, Y), in eval mode.

        The loss is in the loss's own reduction over the whole set: the mean per
        sample for a mean loss (SoftmaxCrossEntropy), the total for a sum loss
        (EuclideanLoss), whatever the batch size.
        """
        X, Y = np.asarray(X), np.asarray(Y)
        _check_pair(X, Y, "evaluate")
        positive_int(batch_size, "batch_size", "evaluate")
        per_sample = self._loss_is_mean()
        loss_sum = metric_sum = 0.0
        device = self._device()
        try:
            with evaluation_mode(self.model):
                for start in range(0, len(X), batch_size):
                    Xb = to_device(X[start:start + batch_size], device)
                    Yb = to_device(Y[start:start + batch_size], device)
                    pred = self.model.forward(Xb)
                    value = self.loss.forward(pred, Yb)
                    loss_sum += value * len(Xb) if per_sample else value
                    if self.metric is not None:
                        metric_sum += self.metric(pred, Yb) * len(Xb)
        finally:
            self.model.clear_cache()  # inference needs no backward: free what forward kept
        n = len(X)
        return (loss_sum / n if per_sample else loss_sum), (metric_sum / n if self.metric is not None else None)

    def _loss_is_mean(self) -> bool:
        reduction = getattr(self.loss, "reduction", "mean")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"{self.loss!r}: reduction must be 'mean' or 'sum', got {reduction!r}")
        return reduction == "mean"


class _BestEpoch:
    """The best epoch so far by one monitored record, its weights (with ``restore_best``),
    and the patience count."""

    def __init__(self, trainer: Trainer, monitor, restore_best: bool, patience, validating: bool):
        if patience is not None:
            positive_int(patience, "patience", "fit")
        monitor = monitor or ("val_loss" if validating else "loss")
        known = ["loss"] + (["val_loss"] if validating else [])
        if trainer.metric_name:
            known += [trainer.metric_name] + (["val_" + trainer.metric_name] if validating else [])
        if monitor not in known:
            raise ValueError(f"fit: cannot monitor {monitor!r}: this fit records {', '.join(known)}"
                             + ("" if validating else " (pass validation_data for val_ records)"))
        self.model, self.monitor, self.restore, self.patience = trainer.model, monitor, restore_best, patience
        self.lower_is_better = monitor.endswith("loss")
        self.best = None
        self.best_epoch = None
        self.best_state = None

    def update(self, epoch: int, history: History) -> bool:
        """Record this epoch; True when ``patience`` epochs have passed without improvement."""
        value = getattr(history, self.monitor)[-1]  # loss, val_loss, or a metric through History.__getattr__
        better = math.isfinite(value) and (self.best is None or (
            value < self.best if self.lower_is_better else value > self.best))
        if better:
            self.best, self.best_epoch = value, epoch
            if self.restore:
                self.best_state = self.model.state_dict()
        history.best_epoch = self.best_epoch
        return self.patience is not None and epoch - (self.best_epoch or 0) >= self.patience

    def finish(self, history: History) -> None:
        """Put the best epoch's weights and buffers back (with ``restore_best``)."""
        if self.restore and self.best_state is not None:
            self.model.load_state_dict(self.best_state, source="the best epoch's weights")


def _augmented(augment, X: np.ndarray, rng) -> np.ndarray:
    new = augment(X, rng)
    if getattr(new, "shape", None) != X.shape:
        raise ValueError(f"fit: augment {augment!r} turned a batch of shape {X.shape} into "
                         f"{getattr(new, 'shape', type(new).__name__)}; it must keep the shape")
    return new


def _check_pair(X: np.ndarray, Y: np.ndarray, where: str) -> None:
    if X.ndim == 0 or Y.ndim == 0 or len(X) != len(Y):
        raise ValueError(f"{where}: X and Y need the same number of samples (first dimension), "
                         f"got shapes {X.shape} and {Y.shape}")
    if len(X) == 0:
        raise ValueError(f"{where}: no samples (X has shape {X.shape})")


def _check_finite(X: np.ndarray, Y: np.ndarray, where: str) -> None:
    """Refuse data holding NaN or ±inf, naming the first such sample: its loss would be NaN and
    look like a diverging step. One pass, in chunks of about a million numbers."""
    for name, data in (("X", X), ("Y", Y)):
        if data.dtype.kind not in "fc":
            continue
        rows = max(1, (1 << 20) // max(1, data[0].size))
        for start in range(0, len(data), rows):
            chunk = data[start:start + rows]
            if not np.isfinite(chunk).all():
                at = start + int(np.argmin(np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1)))
                raise ValueError(f"{where}: {name} holds NaN or infinite values, first at sample {at} (of "
                                 f"{len(data)}); training on them gives a NaN loss, so clean the data first")


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


class _Progress:
    """What the user sees while training.

    Four ways, picked once per ``fit``:

    * ``"widgets"``: in a Jupyter notebook with ipywidgets installed, tqdm's notebook bars;
    * ``"bars"``: on a terminal (or in a notebook without ipywidgets), text bars on stderr: one
      per epoch over its batches, or, with one batch per epoch, one bar over the epochs. A bar
      line keeps within 80 columns, so the validation numbers stay in view: the running loss
      and metric while an epoch runs, then one line per epoch, ``epoch 3/8: loss 0.1234 acc
      0.9612 · val loss 0.0812 acc 0.9750 · 6.3 s``;
    * ``"lines"``: elsewhere (a log, a pipe), one ``key=value`` line per epoch, or about ten lines
      in all when epochs are single steps;
    * ``"off"``: ``enabled=False`` silences it.
    """

    def __init__(self, enabled: bool, epochs: int, batches: int, metric_name: str | None, *,
                 mode: str | None = None, file=None):
        self.file = file if file is not None else sys.stderr
        self.mode = mode or (_display_mode(self.file) if enabled else "off")
        self.enabled = self.mode != "off"
        self.epochs, self.batches, self.metric_name = epochs, batches, metric_name
        self.per_epoch_bars = batches > 1
        self.bar = None
        self.seen = 0
        if self.mode in ("bars", "widgets") and not self.per_epoch_bars:
            self.bar = self._new_bar(total=epochs, desc="epoch", unit="epoch")

    def _new_bar(self, **kwargs):
        if self.mode == "widgets":
            from tqdm.notebook import tqdm
            return tqdm(**kwargs)
        from tqdm import tqdm
        # The bar takes the columns the text leaves (dynamic_ncols), never the numbers' place.
        return tqdm(file=self.file, dynamic_ncols=True, bar_format=_BAR_FORMAT, **kwargs)

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.seen = 0
        if self.mode in ("bars", "widgets") and self.per_epoch_bars:
            self.bar = self._new_bar(total=self.batches, desc=f"epoch {epoch}/{self.epochs}", unit="batch",
                                     leave=True)

    def batch_done(self, batch: int, loss_sum: float, metric_sum: float, size: int, per_sample: bool) -> None:
        if self.bar is not None and self.per_epoch_bars:
            self.seen += size
            self.bar.update(1)
            if batch % 10 == 0 or batch == self.batches:
                self.bar.set_postfix_str(self._running(loss_sum, metric_sum, per_sample), refresh=False)

    def _running(self, loss_sum: float, metric_sum: float, per_sample: bool) -> str:
        text = f"loss {loss_sum / self.seen if per_sample else loss_sum:.4g}"
        if self.metric_name:
            text += f" {_short_name(self.metric_name)} {metric_sum / self.seen:.4f}"
        return text

    def end_epoch(self, history: History) -> None:
        if not self.enabled:
            return
        if self.mode == "lines":
            if self.per_epoch_bars or self.epoch % max(1, self.epochs // 10) == 0 or self.epoch == self.epochs:
                print(f"epoch {self.epoch}/{self.epochs}: {_summary(history)}", file=self.file, flush=True)
        elif self.per_epoch_bars:
            # The finished epoch's bar becomes its summary line: the numbers, not the bar, fill the row.
            line = f"epoch {self.epoch}/{self.epochs}: {_compact_summary(history)} · {history.seconds[-1]:.1f} s"
            if self.mode == "widgets":
                self.bar.set_postfix_str(_compact_summary(history), refresh=False)
            else:
                self.bar.bar_format = "{desc}"
                self.bar.set_description_str(line, refresh=False)
            self.bar.close()
            self.bar = None
        else:                                       # one bar over all epochs
            self.bar.update(1)
            if self.epoch % max(1, self.epochs // 100) == 0 or self.epoch == self.epochs:
                text = _compact_summary(history)
                if history.val_loss and self.mode == "bars":  # too long beside a bar: the numbers get the row
                    self.bar.bar_format = "{desc}"
                    self.bar.set_description_str(f"epoch {self.epoch}/{self.epochs}: {text}", refresh=False)
                else:
                    self.bar.set_postfix_str(text, refresh=False)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


# desc, percentage, bar, count, times, then ", " and the numbers (tqdm puts the comma before a postfix).
_BAR_FORMAT = "{desc} {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} [{elapsed}<{remaining}{postfix}]"
_SHORT_NAMES = {"accuracy": "acc"}


def _short_name(name: str) -> str:
    return _SHORT_NAMES.get(name, name)


def _display_mode(stream) -> str:
    """'widgets' in a Jupyter kernel with ipywidgets, 'bars' there without them or on a terminal,
    'lines' otherwise (a file, a pipe, a CI log)."""
    if _in_jupyter_kernel():
        import importlib.util
        return "widgets" if importlib.util.find_spec("ipywidgets") is not None else "bars"
    isatty = getattr(stream, "isatty", None)
    return "bars" if isatty is not None and isatty() else "lines"


def _in_jupyter_kernel() -> bool:
    if "ipykernel" not in sys.modules:
        return False
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    return shell is not None and type(shell).__name__ == "ZMQInteractiveShell"


def _summary(history: History) -> str:
    """One epoch as ``key=value`` pairs, for logs: ``loss=… accuracy=… val_loss=… val_accuracy=… (6.30 s)``."""
    parts = [f"loss={history.loss[-1]:.6g}"]
    for name, values in history.metrics.items():
        if not name.startswith("val_"):
            parts.append(f"{name}={values[-1]:.4f}")
    if history.val_loss:
        parts.append(f"val_loss={history.val_loss[-1]:.6g}")
    for name, values in history.metrics.items():
        if name.startswith("val_"):
            parts.append(f"{name}={values[-1]:.4f}")
    parts.append(f"({history.seconds[-1]:.2f} s)")
    return " ".join(parts)


def _compact_summary(history: History) -> str:
    """One epoch for a bar, short enough for 80 columns: ``loss 0.1234 acc 0.9612 · val loss 0.0812 acc 0.9750``."""
    def group(loss, metrics):
        return " ".join([f"loss {loss:.4g}"] + [f"{_short_name(name)} {value:.4f}" for name, value in metrics])

    train = [(name, values[-1]) for name, values in history.metrics.items() if not name.startswith("val_")]
    text = group(history.loss[-1], train)
    if history.val_loss:
        val = [(name[4:], values[-1]) for name, values in history.metrics.items() if name.startswith("val_")]
        text += " · val " + group(history.val_loss[-1], val)
    return text
