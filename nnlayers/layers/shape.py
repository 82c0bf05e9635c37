"""Layers that only rearrange: ``Flatten`` joins image axes into one feature axis."""
from __future__ import annotations

import numpy as np

from ..module import Module, ShapeError, as_float_input

__all__ = ["Flatten"]


class Flatten(Module):
    """Z = X reshaped from N×C×H×W (or any N×…) to N×(C·H·W), row-major, as PyTorch flattens.

    No arithmetic: the gradient only changes shape back. Z is a view of X and
    δX a view of δZ when they are contiguous (no copies): no layer modifies
    the arrays it receives, and modifying Z modifies the X passed in, never a cache.

    Cache: the input shape.
    """

    cache_names = ("_shape",)

    def __init__(self):
        super().__init__()
        self._shape = None

    def forward(self, X):
        """Z = reshape(X, (N, C·H·W))."""
        X = as_float_input(self, X)
        if X.ndim < 2:
            raise ShapeError(f"{self!r}: expected input of shape (N, ...) with at least 2 axes, "
                             f"got shape {X.shape}")
        self._shape = X.shape
        return X.reshape(X.shape[0], int(np.prod(X.shape[1:], dtype=np.int64)))  # N may be 0

    def backward(self, dZ):
        """δX = reshape(δZ, (N, C, H, W))  (N×(C·H·W) → the input's shape)."""
        shape = self.forward_cache(self._shape)
        dZ = self.check_grad(dZ, (shape[0], int(np.prod(shape[1:], dtype=np.int64))))
        return dZ.reshape(shape)
