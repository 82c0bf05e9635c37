"""Element-wise activations. Each caches exactly what its derivative needs."""
from __future__ import annotations

import numpy as np

from ..module import Module, as_float_input

__all__ = ["Sigmoid", "sigmoid"]


def sigmoid(X: np.ndarray) -> np.ndarray:
    """σ(X) = 1 / (1 + e^(−X)), element-wise, for any finite X without overflow or warnings.

    With e = e^(−|X|) ∈ (0, 1], which cannot overflow:
    σ(X) = 1 / (1 + e) where X ≥ 0 and σ(X) = e / (1 + e) where X < 0
    (the same value, multiplied through by e^X). Both branches keep full
    relative precision, down to subnormal results such as σ(−720).
    """
    e = np.abs(X)
    np.negative(e, out=e)
    np.exp(e, out=e)
    numerator = np.where(X >= 0, 1.0, e).astype(e.dtype, copy=False)
    e += 1.0
    np.divide(numerator, e, out=numerator)
    return numerator


class Sigmoid(Module):
    """Z = σ(X) = 1 / (1 + e^(−X)), element-wise; any shape.

    Cache: Z (the output), because σ′(X) = σ(X)(1 − σ(X)) = Z (1 − Z).
    """

    def __init__(self):
        super().__init__()
        self._Z = None

    def forward(self, X):
        """Z = σ(X)."""
        X = as_float_input(self, X)
        self._Z = Z = sigmoid(X)
        return Z

    def backward(self, dZ):
        """δX = σ(X)(1 − σ(X)) ⊙ δZ = Z (1 − Z) ⊙ δZ  (same shape as X)."""
        Z = self._Z
        if Z is None:
            raise self._no_forward_error()
        dZ = self._check_grad_shape(dZ, Z.shape)
        dX = 1.0 - Z
        dX *= Z
        dX *= dZ
        return dX
