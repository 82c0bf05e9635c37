"""Element-wise activations. Each caches exactly what its derivative needs."""
from __future__ import annotations

import numpy as np

from ..module import Module, as_float_input

__all__ = ["Sigmoid", "sigmoid", "ReLU", "Tanh"]


def sigmoid(X: np.ndarray) -> np.ndarray:
    """σ(X) = 1 / (1 + e^(−X)), element-wise, for any finite X without overflow or warnings.

    Multiplying numerator and denominator by e^min(X, 0) gives

        σ(X) = e^min(X, 0) / (e^min(X, 0) + e^−max(X, 0))

    where both exponents are ≤ 0, so neither exponential can overflow, and
    both are computed exactly (−max(X, 0) = min(X, 0) − X). The result keeps
    full relative precision (within 2 ulps), down to subnormals such as σ(−720).
    """
    low = np.minimum(X, 0.0)              # min(X, 0)
    numerator = np.exp(low)               # e^min(X, 0)
    np.subtract(low, X, out=low)          # −max(X, 0)
    np.exp(low, out=low)                  # e^−max(X, 0)
    low += numerator
    numerator /= low
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
        if type(X) is not np.ndarray or X.dtype.kind != "f":
            X = as_float_input(self, X)
        self._Z = Z = sigmoid(X)
        return Z

    def backward(self, dZ):
        """δX = σ(X)(1 − σ(X)) ⊙ δZ = Z (1 − Z) ⊙ δZ  (same shape as X)."""
        Z = self._Z
        if Z is None:
            raise self._no_forward_error()
        if type(dZ) is not np.ndarray or dZ.shape != Z.shape:
            dZ = self._check_grad_shape(dZ, Z.shape)
        dX = 1.0 - Z
        dX *= Z
        dX *= dZ
        return dX


class ReLU(Module):
    """Z = max(X, 0), element-wise; any shape.

    Cache: Z (the output), because ReLU′(X) = [X > 0] = [Z > 0].
    At X = 0 the derivative is taken as 0 (as PyTorch does).
    """

    def __init__(self):
        super().__init__()
        self._Z = None

    def forward(self, X):
        """Z = max(X, 0)."""
        X = as_float_input(self, X)
        # Against an array of zeros, not the scalar 0: numpy (2.4) runs maximum with a scalar
        # operand in a loop without SIMD, about 2.5× slower on float32. Same values, same dtype.
        self._Z = Z = np.maximum(X, np.zeros_like(X))
        return Z

    def backward(self, dZ):
        """δX = [Z > 0] ⊙ δZ  (same shape as X)."""
        Z = self._Z
        if Z is None:
            raise self._no_forward_error()
        if type(dZ) is not np.ndarray or dZ.shape != Z.shape:
            dZ = self._check_grad_shape(dZ, Z.shape)
        return np.multiply(dZ, Z > 0)


class Tanh(Module):
    """Z = tanh(X), element-wise; any shape.

    Cache: Z (the output), because tanh′(X) = 1 − tanh²(X) = 1 − Z².
    """

    def __init__(self):
        super().__init__()
        self._Z = None

    def forward(self, X):
        """Z = tanh(X)."""
        X = as_float_input(self, X)
        self._Z = Z = np.tanh(X)
        return Z

    def backward(self, dZ):
        """δX = (1 − Z²) ⊙ δZ  (same shape as X)."""
        Z = self._Z
        if Z is None:
            raise self._no_forward_error()
        if type(dZ) is not np.ndarray or dZ.shape != Z.shape:
            dZ = self._check_grad_shape(dZ, Z.shape)
        dX = np.square(Z)
        np.subtract(1, dX, out=dX)
        dX *= dZ
        return dX
