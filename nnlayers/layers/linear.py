"""Affine layers, split as in the derivation: ``Linear`` (Z = X W) and ``Bias`` (Z = X + b)."""
from __future__ import annotations

import numpy as np

from ..init import initial_weights
from ..module import Module, ShapeError
from .._args import flag as _flag, positive_int as _positive_int

__all__ = ["Linear", "Bias"]


class Linear(Module):
    """Z = X W, with X of shape N×in and W of shape in×out, so Z is N×out.

    An input with more axes, N×…×in (a sequence's N×T×in), is its rows: the
    formulas hold for X reshaped to (N·…)×in, one product each, and Z comes back
    as N×…×out.

    No bias inside: the bias is its own layer (``Bias``), as in the derivation.

    Initialisation (``init``): Xavier/Glorot uniform by default, which suits
    the sigmoid and tanh networks of the derivation; use ``init="he"`` before
    ReLU, or any callable ``init(shape, fan_in, fan_out, rng)``.
    ``rng`` is an int seed or a ``numpy.random.Generator``.

    ``input_grad=False`` skips δX (backward returns None): for a first layer,
    whose input is data that needs no gradient, it saves one matrix product.

    ``dtype``: of W (a numpy dtype or its name, ``"float32"``); the input is converted to it.

    Cache: X (the input, needed for δW).
    """

    cache_names = ("_X",)

    def __init__(self, in_features: int, out_features: int, *, init="xavier", rng=None, dtype=np.float64,
                 input_grad: bool = True):
        super().__init__()
        self.input_grad = _flag(input_grad, "input_grad", type(self).__name__)
        self.in_features = _positive_int(in_features, "in_features", type(self).__name__)
        self.out_features = _positive_int(out_features, "out_features", type(self).__name__)
        self.W = self.add_parameter("W", initial_weights(
            init, (in_features, out_features), in_features, out_features, rng, dtype))
        self._X = None

    def forward(self, X):
        """Z = X W  (N×in · in×out → N×out)."""
        W = self.W.data
        X = self.float_input(X, W.dtype, like=W)
        if X.ndim < 2 or X.shape[-1] != self.in_features:
            raise ShapeError(f"{self!r}: expected input with {self.in_features} features, "
                             f"shape (N, {self.in_features}), got shape {X.shape}")
        self._X = X
        if X.ndim == 2:
            return X @ W
        return (rows(X) @ W).reshape(X.shape[:-1] + (self.out_features,))

    def backward(self, dZ):
        """δW += Xᵀ δZ  (in×N · N×out → in×out);  returns δX = δZ Wᵀ  (N×out · out×in → N×in)."""
        X = self.forward_cache(self._X)
        dZ = self.check_grad(dZ, X.shape[:-1] + (self.out_features,))
        if X.ndim == 2:
            self.W.grad += X.T @ dZ
            return dZ @ self.W.data.T if self.input_grad else None
        self.W.grad += rows(X).T @ rows(dZ)         # the same two formulas over the rows of N×…×in
        return (rows(dZ) @ self.W.data.T).reshape(X.shape) if self.input_grad else None

    def settings(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features, "input_grad": self.input_grad,
                "dtype": self.W.data.dtype.name}

    def extra_repr(self) -> str:
        settings = self.settings()
        text = f"in_features={settings['in_features']}, out_features={settings['out_features']}"
        if not settings["input_grad"]:
            text += ", input_grad=False"
        return text if settings["dtype"] == "float64" else f"{text}, dtype={settings['dtype']!r}"


class Bias(Module):
    """Z = X + b, with X of shape N×F and b of shape 1×F broadcast over the N rows.

    An input N×…×F (a sequence's N×T×F) adds b to each of its rows, and δb sums over all of them.

    b starts at zero. ``dtype``: of b (a numpy dtype or its name, ``"float32"``); the input is
    converted to it. Cache: only the input's shape (δb needs no input values).
    """

    cache_names = ("_shape",)

    def __init__(self, features: int, *, dtype=np.float64):
        super().__init__()
        self.features = _positive_int(features, "features", type(self).__name__)
        self.b = self.add_parameter("b", np.zeros((1, features), dtype=dtype))
        self._shape = None

    def forward(self, X):
        """Z = X + b  (N×F + 1×F → N×F)."""
        b = self.b.data
        X = self.float_input(X, b.dtype, like=b)
        if X.ndim < 2 or X.shape[-1] != self.features:
            raise ShapeError(f"{self!r}: expected input with {self.features} features, "
                             f"shape (N, {self.features}), got shape {X.shape}")
        self._shape = X.shape
        return X + b

    def backward(self, dZ):
        """δb += Σₖ δZₖ,:  (sum over the N rows → 1×F);  returns δX = δZ  (N×F)."""
        dZ = self.check_grad(dZ, self.forward_cache(self._shape))
        self.b.grad += dZ.sum(axis=0, keepdims=True) if dZ.ndim == 2 else rows(dZ).sum(axis=0, keepdims=True)
        return dZ  # δX = δZ: passed on as is, since no layer modifies a gradient it receives

    def settings(self) -> dict:
        return {"features": self.features, "dtype": self.b.data.dtype.name}

    def extra_repr(self) -> str:
        settings = self.settings()
        text = f"features={settings['features']}"
        return text if settings["dtype"] == "float64" else f"{text}, dtype={settings['dtype']!r}"


def rows(A):
    """A of shape N×…×F as its rows, (N·…)×F: a view when A is contiguous, as layer inputs are."""
    return A.reshape(-1, A.shape[-1])
