"""``History``: what a ``fit`` records, epoch by epoch, and how it shows in a console or a notebook."""
from __future__ import annotations

import html
from dataclasses import dataclass, field, fields

import numpy as np

__all__ = ["History"]


@dataclass
class History:
    """Per-epoch records of a ``fit``: training ``loss`` and ``val_loss``, each metric under
    its name (``accuracy``, ``val_accuracy``) and each record a callback adds to the epoch's
    logs (``Perplexity``: ``perplexity``, ``val_perplexity``), wall-clock ``seconds`` per epoch, and ``lr``,
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

    def append(self, logs: dict, seconds: float) -> None:
        """One epoch's records (``{"loss": …, "accuracy": …, "val_loss": …}``) and its duration."""
        for name, value in logs.items():
            if name in ("loss", "val_loss"):
                getattr(self, name).append(value)
            else:
                self.record(name, value)
        self.seconds.append(seconds)

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
