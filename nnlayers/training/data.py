"""The data side of training: minibatches, the accuracy metric, and the checks a data set
passes before the first step.

A model with several inputs takes X as a tuple of arrays with the same first (sample)
dimension, ``(X1, X2)``; a batch is the same rows of each, given to ``model.forward(X1b, X2b)``.
"""
from __future__ import annotations

import numpy as np

from .._args import flag, non_negative_int, positive_int
from ..backend import is_array
from ..init import as_rng

__all__ = ["accuracy", "minibatches", "as_arrays", "rows", "samples", "shape_of", "check_pair", "check_finite"]


def accuracy(pred, target) -> float:
    """Fraction of rows whose arg-max of ``pred`` (N×K scores) equals the label.

    ``target`` is N integer labels or N×K one-hot rows. A single output column
    (N×1, e.g. a sigmoid) counts pred ≥ 0.5 as class 1. Sequences: N×T×K scores (classes on
    the last axis) against N×T labels (or N×T×K one-hot rows) give the fraction of all N·T
    positions (padding included: none is skipped). ``accuracy.value`` gives the
    same fraction left on ``pred``'s device (the Trainer sums it there, as a loss's value).
    """
    return float(_accuracy_value(pred, target))


def _accuracy_value(pred, target):
    """``accuracy`` as a float64 scalar on the predictions' device (numpy: ``np.float64``)."""
    pred = pred if is_array(pred) else np.asarray(pred)          # a GPU array stays on its device
    target = target if is_array(target) else np.asarray(target)
    if pred.ndim == 2 and pred.shape[1] == 1:
        predicted = (pred[:, 0] >= 0.5).astype(np.int64)
        labels = target.reshape(-1) >= 0.5 if target.dtype.kind == "f" else target.reshape(-1)
    else:
        predicted = pred.argmax(axis=-1)
        labels = target.argmax(axis=-1) if target.ndim == pred.ndim else target
    if labels.shape != predicted.shape:
        raise ValueError(f"accuracy: {len(predicted)} predictions but {len(labels)} labels" if labels.ndim == 1 else
                         f"accuracy: predictions of shape {pred.shape} need labels of shape {predicted.shape}, got "
                         f"{target.shape}")
    return (predicted == labels).mean(dtype=np.float64) if len(labels) else np.float64("nan")


accuracy.value = _accuracy_value


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


# -- one array or a tuple of arrays (several inputs) ------------------------------------------------

def as_arrays(data, name: str, where: str):
    """``data`` as host arrays: one array, or a tuple of arrays with the same number of samples
    (a model with several inputs). Data stay on the host; each batch moves to the device."""
    if not isinstance(data, tuple):
        return np.asarray(data)
    arrays = tuple(np.asarray(array) for array in data)
    if not arrays or any(array.ndim == 0 for array in arrays) or len({len(a) for a in arrays}) > 1:
        raise ValueError(f"{where}: the arrays of {name} need the same number of samples (first dimension), "
                         f"got shapes {', '.join(str(a.shape) for a in arrays)}")
    return arrays


def rows(data, index):
    """The same rows (an index array or a slice) of one array or of each array of a tuple."""
    return tuple(array[index] for array in data) if isinstance(data, tuple) else data[index]


def samples(data) -> int:
    return len(data[0] if isinstance(data, tuple) else data)


def shape_of(data):
    """The shape of one array, or the shapes of a tuple's arrays (a type's name for what has none)."""
    if isinstance(data, tuple):
        return tuple(getattr(array, "shape", type(array).__name__) for array in data)
    return getattr(data, "shape", type(data).__name__)


def check_pair(X, Y, where: str) -> None:
    """X and Y (arrays, or tuples of arrays) hold the same number of samples, at least one."""
    first = [data[0] if isinstance(data, tuple) else data for data in (X, Y)]
    if any(array.ndim == 0 for array in first) or samples(X) != samples(Y):
        raise ValueError(f"{where}: X and Y need the same number of samples (first dimension), "
                         f"got shapes {shape_of(X)} and {shape_of(Y)}")
    if samples(X) == 0:
        raise ValueError(f"{where}: no samples (X has shape {shape_of(X)})")


def check_finite(X, Y, where: str) -> None:
    """Refuse data holding NaN or ±inf, naming the first such sample: its loss would be NaN and
    look like a diverging step. One pass, in chunks of about a million numbers."""
    named = [(f"{name}[{i}]" if isinstance(data, tuple) else name, array)
             for name, data in (("X", X), ("Y", Y))
             for i, array in enumerate(data if isinstance(data, tuple) else (data,))]
    for name, data in named:
        if data.dtype.kind not in "fc":
            continue
        chunk_rows = max(1, (1 << 20) // max(1, data[0].size))
        for start in range(0, len(data), chunk_rows):
            chunk = data[start:start + chunk_rows]
            if not np.isfinite(chunk).all():
                at = start + int(np.argmin(np.isfinite(chunk).reshape(len(chunk), -1).all(axis=1)))
                raise ValueError(f"{where}: {name} holds NaN or infinite values, first at sample {at} (of "
                                 f"{len(data)}); training on them gives a NaN loss, so clean the data first")
