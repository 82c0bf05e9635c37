"""How a module reads its inputs: ``as_float_input`` (one array) and ``as_tuple`` (one or several).

Both are importable from ``nnlayers.module`` too, where the contract that uses them is written.
"""
from __future__ import annotations

import numpy as np

from .backend import is_array

__all__ = ["as_float_input", "as_tuple"]


def as_float_input(owner, X, dtype=None):
    """Return ``X`` as a floating-point array, or raise a clear error naming ``owner``.

    ``owner`` is the layer (or a name) the error messages start with. Integer
    and boolean inputs are converted (to ``dtype``, else float64) so that no
    later operation can wrap around; with ``dtype`` given, floating inputs of
    another precision are converted too, so a float32 layer computes in
    float32. Anything non-numeric is refused.
    """
    if type(X) is not np.ndarray and not is_array(X):  # a GPU array stays where it is
        X = np.asarray(X)
    kind = X.dtype.kind
    if kind == "f" and (dtype is None or X.dtype == dtype):
        return X
    if kind in "fiub":
        return X.astype(dtype or np.float64)
    name = owner if isinstance(owner, str) else repr(owner)
    raise TypeError(f"{name}: expected a numeric array, got dtype {X.dtype}")


def as_tuple(value) -> tuple:
    """``value`` if it is a tuple, else ``(value,)``: a module's inputs, outputs or gradients as a tuple,
    whether the module takes (or returns) one array or several."""
    return value if isinstance(value, tuple) else (value,)
