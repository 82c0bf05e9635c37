"""Training loops: minibatches, the ``Trainer`` and the ``History`` it returns.

One training step is the derivation's loop, in this order:
forward → loss → loss.backward → model.backward → optimizer.step → zero_grad.
"""
from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass, field

import numpy as np

from ._args import positive_int
from .init import as_rng
from .module import evaluation_mode

__all__ = ["Trainer", "History", "TrainingDivergedError", "accuracy", "minibatches"]


class TrainingDivergedError(FloatingPointError):
    """The loss became NaN or infinite. ``history`` holds the epochs finished before."""

    def __init__(self, message: str, history: "History" = None):
        super().__init__(message)
        self.history = history


def accuracy(pred, target) -> float:
    """Fraction of rows whose arg-max of ``pred`` (N×K scores) equals the label.

    ``target`` is N integer labels or N×K one-hot rows. A single output column
    (N×1, e.g. a sigmoid) counts pred ≥ 0.5 as class 1.
    """
    pred = np.asarray(pred)
    target = np.asarray(target)
    if pred.ndim == 2 and pred.shape[1] == 1:
        predicted = (pred[:, 0] >= 0.5).astype(np.int64)
        labels = target.reshape(-1) >= 0.5 if target.dtype.kind == "f" else target.reshape(-1)
    else:
        predicted = pred.argmax(axis=1)
        labels = target.argmax(axis=1) if target.ndim == 2 else target
    if len(labels) != len(predicted):
        raise ValueError(f"accuracy: {len(predicted)} predictions but {len(labels)} labels")
    return float(np.mean(predicted == labels)) if len(labels) else float("nan")


def minibatches(n: int, batch_size: int | None, *, shuffle: bool = True, rng=None):
    """Index arrays covering ``range(n)`` once, in batches of ``batch_size`` (the last may be
    smaller); ``batch_size=None`` means one full batch. Shuffled with ``rng`` if ``shuffle``."""
    order = as_rng(rng).permutation(n) if shuffle else np.arange(n)
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


class Trainer:
    """Trains ``model`` against ``loss`` with ``optimizer``; knows nothing of their insides.

    ``metric`` is a callable ``metric(pred, target) -> float`` (e.g.
    ``nl.accuracy``) reported per epoch on training and validation data.

    ``schedule`` is a learning-rate schedule on ``optimizer`` (``nl.schedules``),
    stepped after every epoch (``schedule_every="epoch"``, its t counts epochs)
    or after every optimizer step (``"batch"``, t counts batches).
    """

    def __init__(self, model, loss, optimizer, *, metric=None, schedule=None, schedule_every: str = "epoch"):
        self.model = model
        self.loss = loss
        self.optimizer = optimizer
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
            patience: int | None = None, callbacks=()) -> History:
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

        ``batch_size=None`` trains on the full batch (never shuffled: its order
        changes nothing). Minibatches are reshuffled every epoch from ``rng``
        (int seed or Generator). Gradients are zeroed after every
        step. If the loss becomes NaN or infinite the weights are put back to the
        last step whose loss was finite and ``TrainingDivergedError`` names the
        epoch and batch. ``progress=False`` silences all output.
        """
        X, Y = np.asarray(X), np.asarray(Y)
        _check_pair(X, Y, "fit")
        positive_int(epochs, "epochs", "fit")
        if batch_size is not None:
            positive_int(batch_size, "batch_size", "fit")
        if validation_data is not None:
            X_val, Y_val = (np.asarray(a) for a in validation_data)
            _check_pair(X_val, Y_val, "fit (validation_data)")
        rng = as_rng(rng)
        n = len(X)
        full_batch = batch_size is None or batch_size >= n  # one batch: its order changes nothing
        batches_per_epoch = 1 if full_batch else math.ceil(n / batch_size)
        tracker = _BestEpoch(self, monitor, restore_best, patience, validation_data is not None) \
            if restore_best or patience is not None else None
        display = _Progress(progress, epochs, batches_per_epoch, self.metric_name)
        parameters = self.model.parameters()
        last_good = [p.data.copy() for p in parameters]  # weights whose loss was last finite
        history = History()
        per_sample = self._loss_is_mean()
        self.model.train()
        self.optimizer.zero_grad()
        step = 0
        try:
            for epoch in range(1, epochs + 1):
                started = time.perf_counter()
                history.lr.append(self.optimizer.lr)
                display.start_epoch(epoch)
                loss_sum = metric_sum = 0.0
                batches = [(X, Y)] if full_batch else (
                    (X[index], Y[index]) for index in minibatches(n, batch_size, shuffle=shuffle, rng=rng))
                for batch, (Xb, Yb) in enumerate(batches, 1):
                    pred = self.model.forward(Xb)
                    value = self.loss.forward(pred, Yb)
                    step += 1
                    if not math.isfinite(value):
                        for parameter, saved in zip(parameters, last_good):
                            np.copyto(parameter.data, saved)
                        raise TrainingDivergedError(
                            f"loss became {value} at epoch {epoch}, batch {batch} (step {step}); "
                            f"weights restored to the last step with a finite loss. "
                            "Try a smaller learning rate.", history)
                    for parameter, saved in zip(parameters, last_good):
                        np.copyto(saved, parameter.data)
                    self.model.backward(self.loss.backward())
                    self.optimizer.step()
                    self.optimizer.zero_grad()
                    if self.schedule is not None and self.schedule_every == "batch":
                        self.schedule.step()
                    loss_sum += value * len(Xb) if per_sample else value
                    if self.metric is not None:
                        metric_sum += self.metric(pred, Yb) * len(Xb)
                    display.batch_done(batch, loss_sum, metric_sum, len(Xb), per_sample)
                history.loss.append(loss_sum / n if per_sample else loss_sum)
                if self.metric is not None:
                    history.record(self.metric_name, metric_sum / n)
                if validation_data is not None:
                    val_loss, val_metric = self.evaluate(X_val, Y_val)
                    history.val_loss.append(val_loss)
                    if self.metric is not None:
                        history.record("val_" + self.metric_name, val_metric)
                history.seconds.append(time.perf_counter() - started)
                display.end_epoch(history)
                if self._end_epoch(epoch, history, tracker, callbacks):
                    break
        finally:
            display.close()
        if tracker is not None:
            tracker.finish(history)
        return history

    def _end_epoch(self, epoch: int, history: History, tracker, callbacks) -> bool:
        """Step a per-epoch schedule, watch the best epoch, run the callbacks; True means stop."""
        if self.schedule is not None and self.schedule_every == "epoch":
            self.schedule.step()
        stop = tracker.update(epoch, history) if tracker is not None else False
        for callback in callbacks:
            stop = bool(callback.on_epoch_end(epoch, history)) or stop
        return stop

    # -- inference ---------------------------------------------------------------
    def predict(self, X, batch_size: int = 1024) -> np.ndarray:
        """Model outputs for X, computed in batches in eval mode (each module's mode is restored after).

        Forward caches are dropped afterwards (``Module.clear_cache``), so a large
        prediction leaves no unfolded inputs behind."""
        X = np.asarray(X)
        try:
            with evaluation_mode(self.model):
                outputs = [self.model.forward(X[start:start + batch_size])
                           for start in range(0, len(X), batch_size)]
        finally:
            self.model.clear_cache()  # inference needs no backward: free what forward kept
        return np.concatenate(outputs) if outputs else np.empty((0,))

    def evaluate(self, X, Y, batch_size: int = 1024) -> tuple[float, float | None]:
        """(loss, metric or None) over all of (X, Y), in eval mode.

        The loss is in the loss's own reduction over the whole set: the mean per
        sample for a mean loss (SoftmaxCrossEntropy), the total for a sum loss
        (EuclideanLoss), whatever the batch size.
        """
        X, Y = np.asarray(X), np.asarray(Y)
        _check_pair(X, Y, "evaluate")
        per_sample = self._loss_is_mean()
        loss_sum = metric_sum = 0.0
        try:
            with evaluation_mode(self.model):
                for start in range(0, len(X), batch_size):
                    Xb, Yb = X[start:start + batch_size], Y[start:start + batch_size]
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
        record = history.loss if self.monitor == "loss" else history.val_loss if self.monitor == "val_loss" \
            else history.metrics[self.monitor]
        value = record[-1]
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


def _check_pair(X: np.ndarray, Y: np.ndarray, where: str) -> None:
    if X.ndim == 0 or Y.ndim == 0 or len(X) != len(Y):
        raise ValueError(f"{where}: X and Y need the same number of samples (first dimension), "
                         f"got shapes {X.shape} and {Y.shape}")
    if len(X) == 0:
        raise ValueError(f"{where}: no samples (X has shape {X.shape})")


class _Progress:
    """What the user sees while training.

    On a terminal: a tqdm bar per epoch over its batches (or, with one batch per
    epoch, a single bar over the epochs), with running loss and metric. Elsewhere
    (a log, a pipe): one summary line per epoch, or about ten lines in all when
    epochs are single steps. Everything goes to stderr; ``enabled=False`` silences it.
    """

    def __init__(self, enabled: bool, epochs: int, batches: int, metric_name: str | None):
        self.enabled = bool(enabled)
        self.epochs, self.batches, self.metric_name = epochs, batches, metric_name
        self.per_epoch_bars = batches > 1
        self.tty = self.enabled and sys.stderr.isatty()
        self.bar = None
        self.seen = 0
        if self.enabled and self.tty and not self.per_epoch_bars:
            self.bar = _tqdm(total=epochs, desc="training", unit="epoch")

    def start_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self.seen = 0
        if self.tty and self.per_epoch_bars:
            self.bar = _tqdm(total=self.batches, desc=f"epoch {epoch}/{self.epochs}", unit="batch", leave=True)

    def batch_done(self, batch: int, loss_sum: float, metric_sum: float, size: int, per_sample: bool) -> None:
        if self.bar is not None and self.per_epoch_bars:
            self.seen += size
            self.bar.update(1)
            if batch % 10 == 0 or batch == self.batches:
                self.bar.set_postfix_str(self._running(loss_sum, metric_sum, per_sample), refresh=False)

    def _running(self, loss_sum: float, metric_sum: float, per_sample: bool) -> str:
        text = f"loss={loss_sum / self.seen if per_sample else loss_sum:.4g}"
        if self.metric_name:
            text += f" {self.metric_name}={metric_sum / self.seen:.4f}"
        return text

    def end_epoch(self, history: History) -> None:
        if not self.enabled:
            return
        summary = _summary(history)
        if self.tty:
            if self.per_epoch_bars:
                self.bar.set_postfix_str(summary, refresh=True)
                self.bar.close()
                self.bar = None
            else:
                self.bar.update(1)
                if self.epoch % max(1, self.epochs // 100) == 0 or self.epoch == self.epochs:
                    self.bar.set_postfix_str(summary, refresh=False)
        elif self.per_epoch_bars or self.epoch % max(1, self.epochs // 10) == 0 or self.epoch == self.epochs:
            print(f"epoch {self.epoch}/{self.epochs}: {summary}", file=sys.stderr, flush=True)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def _summary(history: History) -> str:
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


def _tqdm(**kwargs):
    from tqdm.auto import tqdm  # imported only when a bar is shown
    return tqdm(file=sys.stderr, dynamic_ncols=True, **kwargs)
