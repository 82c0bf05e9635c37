"""``Trainer``: the training loop, and evaluation and prediction in batches.

One training step is the derivation's loop, in this order:
forward → loss → loss.backward → model.backward → optimizer.step → zero_grad.
All else that ``fit`` does (the divergence rollback, the best epoch, the progress display)
is a callback (``callbacks.py``) called at fixed points of the loop.
"""
from __future__ import annotations

import math
import time
import warnings

from .._args import flag, positive_int
from ..init import as_rng
from ..losses import Loss
from ..errors import ShapeError
from ..module import as_tuple, evaluation_mode
from .callbacks import BestEpoch, CallbackList
from .clipping import GradientClipping, _positive
from .data import as_arrays, check_finite, check_pair, minibatches, rows, samples, shape_of
from .divergence import DivergenceGuard
from .history import History
from .predict import moved, predict
from .progress import Progress

__all__ = ["Trainer", "FitRun", "check_optimizer"]


class Trainer:
    """Trains ``model`` against ``loss`` with ``optimizer``; knows nothing of their insides.

    ``optimizer`` must hold the model's parameters, all of them, and in their current dtype: one
    built for another model (a notebook's model cell re-run without its optimizer cell) or before
    ``model.to(np.float32)`` would silently train nothing, or in the old dtype, so it is refused
    with a ValueError naming the first parameter missing (checked here and again when ``fit``
    starts). ``Trainer(model, None, None)`` only predicts and evaluates.

    ``metric`` is a callable ``metric(pred, target) -> float`` (e.g.
    ``nl.accuracy``) reported per epoch on training and validation data. A metric with a
    ``value`` attribute (``nl.accuracy.value``) is called through it: on a GPU its result
    stays on the device until the epoch's end, as the loss's does (``Loss.value``).

    ``schedule`` is a learning-rate schedule on ``optimizer`` (``nl.schedules``),
    stepped after every epoch (``schedule_every="epoch"``, its t counts epochs)
    or after every optimizer step (``"batch"``, t counts batches).

    ``clip_grad_norm=max_norm`` clips every step's gradients to that total (Euclidean) norm
    (``nl.clip_grad_norm``) between ``model.backward`` and ``optimizer.step``, by a
    ``GradientClipping`` callback kept as ``trainer.clipping``: its ``last_norm`` (before
    clipping), ``steps`` and ``clipped`` say how often it acted. The usual guard for recurrent
    nets, whose gradients now and then explode.

    **fit(X, Y, epochs, batch_size=None, shuffle=True, rng=None, validation_data=None,
    progress=True, *, restore_best=False, monitor=None, patience=None, callbacks=(), augment=None)**
    runs ``epochs`` passes over (X, Y) and returns the ``History``.

    * ``batch_size=None`` trains on the full batch (never shuffled: its order changes nothing).
      Minibatches are reshuffled every epoch from ``rng`` (int seed or Generator). Gradients are
      zeroed after every step.
    * Several inputs: X is a tuple of arrays with the same first dimension, ``(X1, X2)``, sliced
      together; each batch runs ``model.forward(X1b, X2b)`` (so do ``evaluate`` and ``predict``;
      ``validation_data=((X1, X2), Y)``). A model with several outputs gives the tuple of its
      outputs to the loss as ``pred`` (and to the metric); the loss's ``backward`` then returns
      one gradient per output, passed on as ``model.backward(*grads)``.
    * ``restore_best``, ``monitor``, ``patience`` add a ``BestEpoch`` callback (see it);
      ``progress=False`` silences all output, ``True`` adds a ``Progress`` callback.
    * ``augment``: a transform ``augment(X_batch, rng) -> X_batch`` (``nl.augment``) applied to
      every training batch before its forward pass, with fit's ``rng``; never to the validation data.
    * Integer X (token ids for a model whose first layer is an embedding) is passed on as it is:
      never cast, nor checked for NaN. Sequence targets (N×T labels for N×T×V scores) are checked
      whole against the loss like any other, a bad label named by its (sample, step) position.
    * Floating-point X of another dtype than the model's parameters is cast batch by batch: fit
      warns once, naming both dtypes (``model.to(np.float32)`` or ``X.astype(…)`` silences it). A
      shape error in the first step names X's shape (not only the batch's) and, for images given
      to a convolutional model as N×H×W, suggests the channel axis ``X[:, None]``.
    * Before the first step, X and Y (and ``validation_data``) are checked once for NaN and inf,
      and all of Y against the loss (a label out of range is reported by its position in Y). A
      ``DivergenceGuard`` callback keeps the weights finite: if the training loss, the validation
      loss or a weight becomes NaN or infinite, the weights, buffers and optimizer state go back
      to the last point known to be finite and ``TrainingDivergedError`` says where and when. An
      exception in the middle of a step (Ctrl-C, a warning turned into an error) undoes that step.
    * ``callbacks``: objects with any of the hooks listed in ``nnlayers.training.callbacks``
      (``on_epoch_end(epoch, history)`` alone is enough; returning True stops training). A
      ``DivergenceGuard`` or ``Progress`` passed there replaces the one fit would add. Your own::

          class StopAtLoss:                            # or a subclass of training.Callback
              "Stops once the epoch's loss is below ``target``; remembers when."

              def __init__(self, target):
                  self.target, self.stopped_at = target, None

              def on_epoch_end(self, epoch, history):
                  if history.loss[-1] < self.target:
                      self.stopped_at = epoch
                      return True                    # stop training

          trainer.fit(X, Y, epochs=1000, callbacks=[StopAtLoss(1e-3)])
    """

    def __init__(self, model, loss, optimizer, *, metric=None, schedule=None, schedule_every: str = "epoch",
                 device=None, clip_grad_norm: float | None = None):
        self.model = model
        self.device = device  # None: wherever the model's parameters are when fit/predict runs
        self.loss = loss
        check_optimizer(model, optimizer)
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
        if clip_grad_norm is not None:
            _positive(clip_grad_norm, "clip_grad_norm", "Trainer")
        self.clipping = GradientClipping(clip_grad_norm) if clip_grad_norm is not None else None

    # -- training --------------------------------------------------------------
    def fit(self, X, Y, epochs: int, batch_size: int | None = None, shuffle: bool = True, rng=None,
            validation_data=None, progress: bool = True, *, restore_best: bool = False, monitor: str | None = None,
            patience: int | None = None, callbacks=(), augment=None) -> History:
        """Run ``epochs`` passes over (X, Y); returns the ``History``. The arguments, the checks before
        the first step and the callbacks are described in the class docstring."""
        check_optimizer(self.model, self.optimizer)   # again: the model or optimizer may have been replaced
        run = FitRun(self, X, Y, epochs, batch_size, shuffle, rng, validation_data, augment)
        hooks = CallbackList(self._fit_callbacks(progress, restore_best, monitor, patience, callbacks))
        model, loss, optimizer, history = self.model, self.loss, self.optimizer, run.history
        try:
            hooks.call("on_fit_start", self, run)
            model.train()
            optimizer.zero_grad()
            for epoch in range(1, epochs + 1):
                started = time.perf_counter()
                history.lr.append(optimizer.lr)
                run.start_epoch()
                hooks.call("on_epoch_start", epoch)
                for batch, (Xb, Yb) in enumerate(run.epoch_batches(), 1):
                    pred = model.forward(*Xb) if run.step else run.first_forward(model, Xb)
                    if run.step == 0:                       # all the targets, before any weight changes
                        self._check_targets(run, pred)
                    value = _batch_loss(loss, pred, Yb, run.on_host, checked=True)
                    run.add(value, _batch_metric(self.metric, pred, Yb, run.on_host), Yb)
                    hooks.call("on_loss", epoch, batch, value)  # the guard: finite? then a copy to undo the step
                    model.backward(*as_tuple(loss.backward()))
                    hooks.call("on_backward_end", epoch, batch)  # gradient clipping
                    optimizer.step()
                    optimizer.zero_grad()
                    hooks.call("on_batch_end", epoch, batch)
                    if self.schedule is not None and self.schedule_every == "batch":
                        self.schedule.step()
                logs = self._epoch_logs(run)
                hooks.call("on_epoch_logs", epoch, logs)      # the guard: weights and validation loss finite?
                history.append(logs, time.perf_counter() - started)
                if self.schedule is not None and self.schedule_every == "epoch":
                    self.schedule.step()
                if hooks.epoch_end(epoch, history):
                    break
        except BaseException as error:
            hooks.call("on_exception", error)
            raise
        hooks.call("on_fit_end", history)
        return history

    def _fit_callbacks(self, progress, restore_best, monitor, patience, callbacks) -> list:
        """The built-in callbacks fit's keywords ask for among the user's: a guard passed there replaces the
        built-in one and takes its place, first; a ``GradientClipping`` or a display there replaces the
        trainer's (one that ``silences_progress`` leaves out the display)."""
        progress = flag(progress, "progress", "fit")
        callbacks = list(callbacks)
        guards = [c for c in callbacks if isinstance(c, DivergenceGuard)] or [DivergenceGuard()]
        added = []
        if self.clipping is not None and not any(isinstance(c, GradientClipping) for c in callbacks):
            added.append(self.clipping)
        if restore_best or patience is not None:
            if patience is not None:
                positive_int(patience, "patience", "fit")
            added.append(BestEpoch(monitor, restore_best, patience))
        if progress and not any(isinstance(c, Progress) or getattr(c, "silences_progress", False)
                                for c in callbacks):
            added.append(Progress())
        return guards + added + [c for c in callbacks if not isinstance(c, DivergenceGuard)]

    def _device(self) -> str:
        return self.model.device if self.device is None else self.device

    def _check_targets(self, run: "FitRun", pred) -> None:
        """All of Y against the loss, so that a bad target is named by its position in Y."""
        shape = tuple(p.shape[1:] for p in pred) if isinstance(pred, tuple) else pred.shape[1:]
        for Y, where in [(run.Y, "fit: Y")] + ([(run.validation[1], "fit: validation_data's Y")]
                                               if run.validation is not None else []):
            try:
                self.loss.check_target(Y, shape)
            except (ValueError, TypeError) as error:
                raise type(error)(f"{where} does not suit the loss: {error}") from None

    def _epoch_logs(self, run: "FitRun") -> dict:
        """The epoch's records: its loss (and metric) over the batches, then the validation's."""
        n = run.samples
        logs = {"loss": float(run.loss_sum) / n if run.per_sample else float(run.loss_sum)}  # one read per epoch
        if self.metric is not None:
            logs[self.metric_name] = float(run.metric_sum) / n
        if run.validation is not None:
            logs["val_loss"], val_metric = self.evaluate(*run.validation)
            if self.metric is not None:
                logs["val_" + self.metric_name] = val_metric
        return logs

    # -- inference ---------------------------------------------------------------
    def predict(self, X, batch_size: int = 1024, *, host: bool = True):
        """``nl.predict(model, X, batch_size, host=host)`` on the trainer's model and device (see it):
        outputs for X in batches, in eval mode, each module's mode restored after."""
        return predict(self.model, X, batch_size, host=host, device=self._device())

    def evaluate(self, X, Y, batch_size: int = 1024) -> tuple[float, float | None]:
        """(loss, metric or None) over all of (X, Y), in eval mode.

        The loss is in the loss's own reduction over the whole set: the mean per
        sample for a mean loss (SoftmaxCrossEntropy), the total for a sum loss
        (EuclideanLoss), whatever the batch size. Batch losses are summed where the
        model computes and read once.
        """
        X, Y = as_arrays(X, "X", "evaluate"), as_arrays(Y, "Y", "evaluate")
        check_pair(X, Y, "evaluate")
        positive_int(batch_size, "batch_size", "evaluate")
        per_sample = self._loss_is_mean()
        loss_sum = metric_sum = 0.0
        device = self._device()
        on_host = device == "cpu"
        try:
            with evaluation_mode(self.model):
                for start in range(0, samples(X), batch_size):
                    batch = slice(start, start + batch_size)
                    Xb, Yb = moved(as_tuple(rows(X, batch)), device), moved(rows(Y, batch), device)
                    pred = self.model.forward(*Xb)
                    value = _batch_loss(self.loss, pred, Yb, on_host, checked=False)
                    loss_sum = loss_sum + (value * samples(Yb) if per_sample else value)
                    metric_sum = metric_sum + _batch_metric(self.metric, pred, Yb, on_host) * samples(Yb)
        finally:
            self.model.clear_cache()  # inference needs no backward: free what forward kept
        n = samples(X)
        return (float(loss_sum) / n if per_sample else float(loss_sum)), \
            (float(metric_sum) / n if self.metric is not None else None)

    def _loss_is_mean(self) -> bool:
        reduction = getattr(self.loss, "reduction", "mean")
        if reduction not in ("mean", "sum"):
            raise ValueError(f"{self.loss!r}: reduction must be 'mean' or 'sum', got {reduction!r}")
        return reduction == "mean"


class FitRun:
    """The live state of one ``fit``: what it trains on, and where the loop is. Callbacks read it
    (``on_fit_start`` hands it over); only fit changes it.

    ``epochs``, ``batches`` (per epoch), ``validating``, ``history``, ``on_host`` (the model
    computes with numpy); ``step`` (optimizer steps so far, all epochs); the epoch's running
    ``loss_sum`` and ``metric_sum`` (weighted by the batch's samples for a mean loss), ``seen``
    samples so far and ``batch_samples`` of the last batch. On a GPU ``loss_sum`` is a 0-d array
    on the device: reading it (``float``) waits for the device.
    """

    def __init__(self, trainer: Trainer, X, Y, epochs, batch_size, shuffle, rng, validation_data, augment):
        X, Y = as_arrays(X, "X", "fit"), as_arrays(Y, "Y", "fit")  # on the host; each batch moves to the device
        check_pair(X, Y, "fit")
        self.epochs = positive_int(epochs, "epochs", "fit")
        if batch_size is not None:
            positive_int(batch_size, "batch_size", "fit")
        self.shuffle = flag(shuffle, "shuffle", "fit")
        check_finite(X, Y, "fit")
        if augment is not None and not callable(augment):
            raise TypeError(f"fit: augment must be a transform augment(X_batch, rng) -> X_batch, got {augment!r}")
        self.validation = None
        if validation_data is not None:
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise TypeError(f"fit: validation_data must be a pair (X_val, Y_val), got "
                                f"{type(validation_data).__name__}")
            X_val, Y_val = (as_arrays(data, name, "fit (validation_data)")
                            for data, name in zip(validation_data, "XY"))
            check_pair(X_val, Y_val, "fit (validation_data)")
            check_finite(X_val, Y_val, "fit (validation_data)")
            self.validation = (X_val, Y_val)
        self.X, self.Y, self.augment, self.rng = X, Y, augment, as_rng(rng)
        warn_about_dtype(trainer.model, X, "fit")
        self.samples = samples(X)
        self.batch_size = None if batch_size is None or batch_size >= self.samples else batch_size
        self.batches = 1 if self.batch_size is None else math.ceil(self.samples / self.batch_size)
        self.validating = self.validation is not None
        self.device = trainer._device()
        self.on_host = self.device == "cpu"
        self.per_sample = trainer._loss_is_mean()
        self.history = History()
        self.step = 0
        self.whole = None

    def first_forward(self, model, Xb):
        """The first batch's forward pass, a shape error in it told in terms of X (not the batch),
        with the usual fix for images without their channel axis."""
        try:
            return model.forward(*Xb)
        except ShapeError as error:
            raise ShapeError(f"fit: X of shape {shape_of(self.X)} does not fit the model (in batches of "
                             f"{shape_of(Xb if len(Xb) > 1 else Xb[0])}): {error}"
                             f"{channel_axis_hint(model, self.X)}") from error

    def start_epoch(self) -> None:
        self.loss_sum = self.metric_sum = 0.0
        self.seen = 0

    def epoch_batches(self):
        """This epoch's (inputs as a tuple, targets), on the model's device, augmented if asked."""
        if self.batch_size is None and self.augment is None:   # the same full batch every epoch: moved once
            if self.whole is None:
                self.whole = (moved(as_tuple(self.X), self.device), moved(self.Y, self.device))
            yield self.whole
            return
        indices = [slice(None)] if self.batch_size is None else \
            minibatches(self.samples, self.batch_size, shuffle=self.shuffle, rng=self.rng)
        for index in indices:
            Xb = rows(self.X, index)
            if self.augment is not None:
                Xb = _augmented(self.augment, Xb, self.rng)
            yield moved(as_tuple(Xb), self.device), moved(rows(self.Y, index), self.device)

    def add(self, loss, metric, Yb) -> None:
        """One batch's loss (a float, or a 0-d device array: summed there) and metric."""
        n = samples(Yb)
        self.step += 1
        self.loss_sum = self.loss_sum + (loss * n if self.per_sample else loss)
        self.metric_sum = self.metric_sum + metric * n
        self.seen += n
        self.batch_samples = n


def check_optimizer(model, optimizer) -> None:
    """Refuse an optimizer that does not hold every parameter of ``model`` (one built for another
    model, e.g. a notebook's model cell re-run without its optimizer cell): it would train nothing.
    Identity is what counts: ``optimizer.parameters`` must hold the model's Parameter objects. An
    optimizer built before ``model.to(dtype)`` (its state of the old dtype) is refused too."""
    held = getattr(optimizer, "parameters", None)
    if held is None or callable(held):          # no optimizer (predict/evaluate only), or not ours to read
        return
    ids = {id(parameter) for parameter in held}
    for name, parameter in model.named_parameters():
        if id(parameter) not in ids:
            raise ValueError(f"Trainer: the optimizer does not hold the model's parameter {name} ({parameter!r}), "
                             f"so training would never change it; build the optimizer from this model's "
                             f"parameters: {type(optimizer).__name__}(model.parameters(), …)")
    held = list(held)
    states = optimizer.state_arrays() if callable(getattr(optimizer, "state_arrays", None)) else []
    for state, arrays in states + [("work", getattr(optimizer, "_scratch", None) or [])]:
        for parameter, array in zip(held, arrays):
            if getattr(array, "dtype", parameter.data.dtype) != parameter.data.dtype:
                raise ValueError(f"Trainer: the optimizer's {state} arrays are {array.dtype} but its parameter "
                                 f"{parameter!r} is {parameter.data.dtype}: it was built before model.to(…); "
                                 f"build the optimizer again after casting the model")


def warn_about_dtype(model, X, where: str) -> None:
    """One warning when floating-point data are of another dtype than the model's parameters: every
    batch is then cast to the model's dtype (precision lost, or time spent, without a word)."""
    if not model.parameters():                  # no weights: the data's dtype is the model's
        return
    dtype = model.dtype
    for array in (X if isinstance(X, tuple) else (X,)):
        if array.dtype.kind == "f" and array.dtype != dtype:
            warnings.warn(f"{where}: X is {array.dtype} but the model computes in {dtype}, so every batch is "
                          f"cast to {dtype}; cast the model (model.to(np.{array.dtype})) or the data "
                          f"(X.astype(np.{dtype})) to silence this", UserWarning, stacklevel=4)
            return


def channel_axis_hint(model, X) -> str:
    """The usual fix when an image model (its first layer with parameters a convolution) is given
    N×H×W images: the channel axis."""
    if isinstance(X, tuple) or X.ndim != 3:
        return ""
    first = next((module for module in model.modules() if module._parameters), None)
    if type(first).__name__ != "Conv2D":
        return ""
    return (f"; images need a channel axis (N, C, H, W): for one channel pass X[:, None], of shape "
            f"{(X.shape[0], 1) + X.shape[1:]}")


def _batch_loss(loss, pred, target, on_host: bool, checked: bool):
    """The batch's loss: a float on the CPU; on a device, ``loss.value``'s 0-d array (no wait), unless the
    loss overrides ``forward`` (then its float). ``checked``: fit has checked all the targets before the
    first step, so ``loss.checked_value`` may skip reading them again (``evaluate``'s are not checked)."""
    if getattr(type(loss), "forward", None) is not Loss.forward:
        return loss.forward(pred, target)
    value = (getattr(loss, "checked_value", loss.value) if checked else loss.value)(pred, target)
    return float(value) if on_host else value


def _batch_metric(metric, pred, target, on_host: bool):
    """The batch's metric (0 without one): ``metric.value`` when the metric has one (``nl.accuracy`` does),
    which on a device stays there like a loss's value; else ``metric``'s float."""
    if metric is None:
        return 0.0
    value = getattr(metric, "value", metric)(pred, target)
    return float(value) if on_host else value


def _augmented(augment, X, rng):
    new = augment(X, rng)
    if shape_of(new) != shape_of(X):
        raise ValueError(f"fit: augment {augment!r} turned a batch of shape {shape_of(X)} into "
                         f"{shape_of(new)}; it must keep the shape")
    return new
