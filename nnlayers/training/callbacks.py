"""Callbacks: what ``Trainer.fit`` does besides the training step, as objects a user can pass,
replace or write.

The protocol: a callback defines any of these methods (a missing one is skipped, so an
object with ``on_epoch_end`` alone is a callback; subclassing ``Callback`` is optional)::

    on_fit_start(trainer, run)      before the first step; ``run`` is the loop's live state (a ``FitRun``:
                                    epochs, batches per epoch, step, running sums, history); keep it
    on_epoch_start(epoch)
    on_loss(epoch, batch, loss)     the batch's loss is known, the weights not yet updated; raise to
                                    stop before the update (``loss``: a float on the CPU, a 0-d array
                                    on a GPU, so that no batch waits for the device)
    on_backward_end(epoch, batch)   the gradients are known (after ``model.backward``), the step not yet
                                    taken: change them here (``GradientClipping`` clips them)
    on_batch_end(epoch, batch)      after the optimizer step
    on_epoch_logs(epoch, logs)      the epoch's records ({"loss": …, "val_loss": …, metrics}) before they
                                    join the history; raise to reject them
    on_epoch_end(epoch, history)    after the epoch (and the schedule's step); True stops training
    on_fit_end(history)             after the last epoch (not after an error)
    on_exception(error)             fit is being left by ``error`` (Ctrl-C, a divergence): undo or close

``fit`` calls them in the order of its list: the divergence guard (the built-in one, or the
one passed in ``callbacks``: ``nl.distributed.DistributedCallback`` is one, so the records it
combines over the ranks are whole before any other callback reads them), the gradient clipping,
the best-epoch tracker, the progress display (those its keywords ask for), then the user's other
callbacks, in their order.
Epochs and batches count from 1. A callback with the attribute ``silences_progress = True``
keeps ``fit`` from adding its progress display (``nl.distributed.DistributedCallback`` sets it
on every rank but 0, so that one process speaks for the job).
"""
from __future__ import annotations

import math

from .._args import positive_int
from ..losses import exp_or_inf

__all__ = ["Callback", "BestEpoch", "Perplexity", "CallbackList"]

HOOKS = ("on_fit_start", "on_epoch_start", "on_loss", "on_backward_end", "on_batch_end", "on_epoch_logs",
         "on_epoch_end", "on_fit_end", "on_exception")


class Callback:
    """A base whose every hook does nothing: override the ones you need (see the module's docstring)."""

    def on_fit_start(self, trainer, run) -> None: ...
    def on_epoch_start(self, epoch: int) -> None: ...
    def on_loss(self, epoch: int, batch: int, loss) -> None: ...
    def on_backward_end(self, epoch: int, batch: int) -> None: ...
    def on_batch_end(self, epoch: int, batch: int) -> None: ...
    def on_epoch_logs(self, epoch: int, logs: dict) -> None: ...
    def on_epoch_end(self, epoch: int, history) -> bool | None: ...
    def on_fit_end(self, history) -> None: ...
    def on_exception(self, error: BaseException) -> None: ...


class CallbackList:
    """The callbacks of one ``fit``, each hook looked up once (duck typing: missing hooks are skipped)."""

    def __init__(self, callbacks):
        self.callbacks = list(callbacks)
        self.hooks = {name: [getattr(c, name) for c in self.callbacks if _defines(c, name)] for name in HOOKS}

    def call(self, name: str, *args) -> None:
        for hook in self.hooks[name]:
            hook(*args)

    def epoch_end(self, epoch: int, history) -> bool:
        """Every ``on_epoch_end``, all of them even when an early one asks to stop; True means stop."""
        stop = False
        for hook in self.hooks["on_epoch_end"]:
            stop = bool(hook(epoch, history)) or stop
        return stop


def _defines(callback, name: str) -> bool:
    """Whether ``callback`` has hook ``name``, other than ``Callback``'s no-op (skipped: no call per batch)."""
    hook = getattr(type(callback), name, None)
    return callable(getattr(callback, name, None)) and (hook is None or hook is not getattr(Callback, name))


class BestEpoch(Callback):
    """The best epoch by one monitored record: ``history.best_epoch``; its weights and buffers put back
    when fit ends (``restore_best``); a stop after ``patience`` epochs without a strict improvement.

    ``monitor`` names a record of the history (``"val_loss"``, the default with validation
    data, else ``"loss"``; or a metric such as ``"val_accuracy"``); lower is better for
    names ending in ``loss``, higher for the others. ``fit(restore_best=…, monitor=…,
    patience=…)`` adds one.
    """

    def __init__(self, monitor: str | None = None, restore_best: bool = False, patience: int | None = None):
        if patience is not None:
            positive_int(patience, "patience", "BestEpoch")
        self.monitor, self.restore, self.patience = monitor, restore_best, patience

    def on_fit_start(self, trainer, run) -> None:
        monitor = self.monitor or ("val_loss" if run.validating else "loss")
        known = ["loss"] + (["val_loss"] if run.validating else [])
        if trainer.metric_name:
            known += [trainer.metric_name] + (["val_" + trainer.metric_name] if run.validating else [])
        if monitor not in known:
            raise ValueError(f"fit: cannot monitor {monitor!r}: this fit records {', '.join(known)}"
                             + ("" if run.validating else " (pass validation_data for val_ records)"))
        self.model, self.watching = trainer.model, monitor
        self.lower_is_better = monitor.endswith("loss")
        self.best = self.best_epoch = self.best_state = None

    def on_epoch_end(self, epoch: int, history) -> bool:
        """Record this epoch; True when ``patience`` epochs have passed without improvement."""
        value = getattr(history, self.watching)[-1]  # loss, val_loss, or a metric through History.__getattr__
        better = math.isfinite(value) and (self.best is None or (
            value < self.best if self.lower_is_better else value > self.best))
        if better:
            self.best, self.best_epoch = value, epoch
            if self.restore:
                self.best_state = self.model.state_dict()
        history.best_epoch = self.best_epoch
        return self.patience is not None and epoch - (self.best_epoch or 0) >= self.patience

    def on_fit_end(self, history) -> None:
        if self.restore and self.best_state is not None:
            self.model.load_state_dict(self.best_state, source="the best epoch's weights")


class Perplexity(Callback):
    """Adds ``perplexity`` = exp(loss) and, with validation data, ``val_perplexity`` = exp(val_loss) to
    each epoch's records (``history.perplexity``, shown by the progress display), for a model trained
    on a mean cross-entropy (``SoftmaxCrossEntropy``: nats per label; a character model's loss per
    character). exp of the epoch's mean loss is the set's perplexity; a mean of the batches'
    perplexities (``nl.perplexity`` as a metric) would not be."""

    def on_fit_start(self, trainer, run) -> None:
        if not trainer._loss_is_mean():
            raise ValueError(f"Perplexity: perplexity is exp of a mean cross-entropy, but {trainer.loss!r} sums "
                             "over the batch")

    def on_epoch_logs(self, epoch: int, logs: dict) -> None:
        logs["perplexity"] = exp_or_inf(logs["loss"])
        if "val_loss" in logs:
            logs["val_perplexity"] = exp_or_inf(logs["val_loss"])
