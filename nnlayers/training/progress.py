"""The progress display: tqdm bars in a notebook or on a terminal, ``key=value`` lines in a log.

``Progress`` is the callback ``fit(progress=True)`` adds; ``_Progress`` draws.
"""
from __future__ import annotations

import sys

from .history import History

__all__ = ["Progress"]


class Progress:
    """Shows training as it goes (see ``_Progress`` for the four ways); ``fit(progress=True)`` adds one.
    Pass ``Progress(file=…)`` in ``callbacks`` to write elsewhere (``fit`` then adds none)."""

    def __init__(self, *, mode: str | None = None, file=None):
        self.mode, self.file = mode, file
        self.display = None

    def on_fit_start(self, trainer, run) -> None:
        self.run = run
        self.display = _Progress(True, run.epochs, run.batches, trainer.metric_name, mode=self.mode, file=self.file)

    def on_epoch_start(self, epoch: int) -> None:
        self.display.start_epoch(epoch)

    def on_batch_end(self, epoch: int, batch: int) -> None:
        run = self.run
        self.display.batch_done(batch, run.loss_sum, run.metric_sum, run.batch_samples, run.per_sample)

    def on_epoch_end(self, epoch: int, history) -> None:
        self.display.end_epoch(history)

    def on_fit_end(self, history) -> None:
        self.display.close()

    def on_exception(self, error: BaseException) -> None:
        if self.display is not None:
            self.display.close()


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

    def _running(self, loss_sum, metric_sum, per_sample: bool) -> str:
        """The running means; the sums may be 0-d GPU arrays, read here only (every tenth batch)."""
        loss_sum, metric_sum = float(loss_sum), float(metric_sum)
        text = f"loss {loss_sum / self.seen if per_sample else loss_sum:.4g}"
        if self.metric_name:
            text += f" {_short_name(self.metric_name)} {metric_sum / self.seen:.4f}"
        return text

    def end_epoch(self, history) -> None:
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
_SHORT_NAMES = {"accuracy": "acc", "perplexity": "ppl"}


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
