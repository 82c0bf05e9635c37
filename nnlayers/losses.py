"""Losses: separate objects, not layers. ``forward(pred, target)`` returns a Python
float and caches what ``backward()`` needs; ``backward()`` returns δpred = ∂L/∂pred."""
from __future__ import annotations

import numpy as np

from .module import ShapeError, as_float_input

__all__ = ["Loss", "EuclideanLoss"]


class Loss:
    """Base class: ``loss(pred, target)`` is ``loss.forward(pred, target)``."""

    def forward(self, pred, target) -> float:
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, pred, target) -> float:
        return self.forward(pred, target)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def _no_forward_error(self) -> RuntimeError:
        return RuntimeError(f"{self!r}: backward called before forward (nothing cached to differentiate)")


class EuclideanLoss(Loss):
    """L = ½ Σᵢⱼ (Yᵖᵢⱼ − Yᵢⱼ)², pred Yᵖ and target Y of the same shape (N×F).

    Reduction: a **sum** over the batch and the features, halved, and *not*
    divided by N: exactly the derivation's convention, so its worked numbers
    carry over. (Caffe's EuclideanLoss divides by N as well; this one does not.)

    Cache: the difference Yᵖ − Y.
    """

    def __init__(self):
        self._diff = None

    def forward(self, pred, target) -> float:
        """L = ½ Σ (Yᵖ − Y)²."""
        pred = as_float_input(self, pred)
        target = as_float_input(self, target, pred.dtype)
        if pred.shape != target.shape:
            raise ShapeError(f"{self!r}: prediction shape {pred.shape} and target shape "
                             f"{target.shape} differ")
        self._diff = diff = pred - target
        flat = diff.ravel()
        return 0.5 * float(flat @ flat)

    def backward(self) -> np.ndarray:
        """δYᵖ = Yᵖ − Y  (same shape as pred)."""
        if self._diff is None:
            raise self._no_forward_error()
        return self._diff.copy()  # fresh each call: the caller may modify it
