"""``predict``: a model's outputs for many samples, in eval mode and in batches, without a Trainer."""
from __future__ import annotations

from .._args import positive_int
from ..backend import get_array_module, to_device, to_host
from ..module import as_tuple, evaluation_mode
from .data import as_arrays, rows, samples

__all__ = ["predict"]


def predict(model, X, batch_size: int = 1024, *, host: bool = True, device=None):
    """Model outputs for X (an array, or a tuple of arrays for a model with several inputs), computed
    in batches of ``batch_size`` in eval mode: Dropout passes X through, BatchNorm uses its running
    statistics. Each module's mode is put back as it was found, and forward caches are dropped
    afterwards (``Module.clear_cache``), so a large prediction leaves no unfolded inputs behind.

    Each batch runs on ``device`` (default: where the model's parameters are); the outputs come back
    as a host (numpy) array unless ``host=False``, which leaves them on the device. A model with
    several outputs gives a tuple of arrays. Zero samples give the output's shape with N = 0, e.g. (0, K)::

        P = nl.predict(model, X_test)          # N×K scores; P.argmax(axis=1): the classes
    """
    X = as_arrays(X, "X", "predict")
    positive_int(batch_size, "batch_size", "predict")
    if not isinstance(X, tuple) and X.ndim == 0:
        raise ValueError(f"predict: X needs a first (sample) axis, got shape {X.shape}")
    n = samples(X)
    starts = range(0, n, batch_size) if n else [0]   # no samples: one empty batch
    device = model.device if device is None else device
    try:
        with evaluation_mode(model):
            outputs = [model.forward(*moved(as_tuple(rows(X, slice(start, start + batch_size))), device))
                       for start in starts]
    finally:
        model.clear_cache()  # inference needs no backward: free what forward kept
    return joined(outputs, host)


def moved(data, device):
    """One array, or each of a tuple, on ``device``."""
    return tuple(to_device(array, device) for array in data) if isinstance(data, tuple) else to_device(data, device)


def joined(outputs: list, host: bool):
    """The batches' outputs as one array (or one per output of a model with several), on the host if asked."""
    if isinstance(outputs[0], tuple):
        return tuple(joined([output[k] for output in outputs], host) for k in range(len(outputs[0])))
    if host:
        outputs = [to_host(output) for output in outputs]
    return get_array_module(outputs[0]).concatenate(outputs) if len(outputs) > 1 else outputs[0]
