"""Element-wise activations: Z = f(X) and δX = f′ ⊙ δZ, each stating only f and f′.

``Elementwise`` holds what they share (the input check, the cache, the
gradient-shape check, δX = f′ ⊙ δZ); a subclass writes ``function`` (f) and
``derivative`` (f′, from the input X and the output Z).
"""
from __future__ import annotations

import numpy as np

from ..module import Module

__all__ = ["Elementwise", "Sigmoid", "sigmoid", "ReLU", "Tanh"]

_MASK = np.dtype(np.bool_)


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


class Elementwise(Module):
    """Z = f(X) element-wise, any shape; δX = f′(X) ⊙ δZ.

    A subclass defines ``function(X)`` (f) and ``derivative(X, Z)`` (f′ at
    each element, from the input X or the output Z, whichever is simpler):
    a new array, or a boolean mask for a 0/1 derivative.

    f′ is computed in forward and cached, rather than Z: the Z returned is
    then the caller's to modify, and backward is a single product. The
    arithmetic is the same as computing f′ from a cached Z in backward.

    Cache: f′ (an array like X, or a boolean mask).
    """

    cache_names = ("_D",)

    def __init__(self):
        super().__init__()
        self._D = None

    def function(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not define function (f)")

    def derivative(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not define derivative (f′)")

    def forward(self, X):
        """Z = f(X); caches f′(X)."""
        X = self.float_input(X)
        Z = self.function(X)
        D = self.derivative(X, Z)
        if D is Z or D is X:  # f′ = f (eˣ) or the identity's X: keep our own copy
            D = D.copy()
        self._D = D
        return Z

    def backward(self, dZ):
        """δX = f′ ⊙ δZ  (same shape as X)."""
        D = self.forward_cache(self._D)
        dZ = self.check_grad(dZ, D.shape)
        return np.multiply(dZ, D) if D.dtype is _MASK else np.multiply(D, dZ)  # fresh: D is kept


class Sigmoid(Elementwise):
    """Z = σ(X) = 1 / (1 + e^(−X)); σ′(X) = σ(X)(1 − σ(X)) = Z (1 − Z), so δX = Z (1 − Z) ⊙ δZ."""

    def function(self, X):
        """Z = σ(X), overflow-free (see ``sigmoid``)."""
        return sigmoid(X)

    def derivative(self, X, Z):
        """σ′ = Z (1 − Z)."""
        D = 1.0 - Z
        D *= Z
        return D


class ReLU(Elementwise):
    """Z = max(X, 0); ReLU′(X) = [X > 0] = [Z > 0], so δX = [Z > 0] ⊙ δZ.

    At X = 0 the derivative is taken as 0 (as PyTorch does).
    """

    def function(self, X):
        """Z = max(X, 0)."""
        # Against an array of zeros, not the scalar 0: numpy (2.4) runs maximum with a scalar
        # operand in a loop without SIMD, markedly slower on float32. Same values, same dtype.
        return np.maximum(X, np.zeros_like(X))       # ufuncs dispatch to the array's backend

    def derivative(self, X, Z):
        """ReLU′ = [Z > 0] (a mask)."""
        return Z > 0


class Tanh(Elementwise):
    """Z = tanh(X); tanh′(X) = 1 − tanh²(X) = 1 − Z², so δX = (1 − Z²) ⊙ δZ."""

    def function(self, X):
        """Z = tanh(X)."""
        return np.tanh(X)

    def derivative(self, X, Z):
        """tanh′ = 1 − Z²."""
        D = np.square(Z)
        np.subtract(1, D, out=D)
        return D
