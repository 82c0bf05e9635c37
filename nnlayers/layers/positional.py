"""Positional embeddings: Z = X + P[:T], so that attention can tell positions apart.

Attention alone ignores order: permuting the keys and values of a query permutes
the terms of its weighted average and leaves the sum as it was. Adding a vector
that depends on the position t to the t-th input of every sequence gives each
position an identity the projections can read.
"""
from __future__ import annotations

import numpy as np

from .._args import positive_int
from ..init import as_rng
from ..module import Module, ShapeError

__all__ = ["PositionalEmbedding", "sinusoidal_table"]

KINDS = ("learned", "sinusoidal")


def sinusoidal_table(max_length: int, embed_dim: int, dtype=np.float64) -> np.ndarray:
    """Vaswani et al.'s (2017) fixed embeddings, max_length × embed_dim::

        P[t, 2i] = sin(t / 10000^(2i/D)),     P[t, 2i + 1] = cos(t / 10000^(2i/D))

    each pair of columns a sine and a cosine of one frequency, wavelengths from 2π
    to 10000·2π, so that P[t + k] is a linear function (a rotation per pair) of P[t].
    An odd D ends with a sine column.
    """
    t = np.arange(max_length, dtype=np.float64)[:, None]
    even = np.arange(0, embed_dim, 2, dtype=np.float64)                   # the column indices 2i
    angles = t / 10000.0 ** (even / embed_dim)                            # max_length × ⌈D/2⌉
    table = np.empty((max_length, embed_dim))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, :embed_dim // 2])
    return table.astype(dtype)


class PositionalEmbedding(Module):
    """Z = X + P[:T]: row t of P added to position t of every sequence (X, Z: N×T×D).

    ``kind="learned"`` (the default): P (``max_length`` × D) is a parameter, drawn
    from N(0, 0.02²) as GPT-2 draws its position embeddings (``rng``: an int seed or a
    ``numpy.random.Generator``). Backward: δX = δZ, and row t of δP gathers every
    sequence's gradient at position t::

        δP[t] += Σₙ δZ[n, t]   for t < T  (rows T … max_length − 1 get nothing)

    ``kind="sinusoidal"``: P is ``sinusoidal_table(max_length, D)``, fixed, held as a
    buffer (saved with the weights, never trained); backward is δX = δZ alone.

    Sequences longer than ``max_length`` are refused (a ShapeError naming both
    lengths): there is no P row for them. ``dtype``: of P; the input is converted to it.

    Cache: the input shape.
    """

    cache_names = ("_shape",)

    def __init__(self, max_length: int, embed_dim: int, kind: str = "learned", *, rng=None, dtype=np.float64):
        super().__init__()
        name = type(self).__name__
        self.max_length = positive_int(max_length, "max_length", name)
        self.embed_dim = positive_int(embed_dim, "embed_dim", name)
        if not isinstance(kind, str):
            raise TypeError(f"{name}: kind must be one of {KINDS}, got {kind!r} ({type(kind).__name__})")
        if kind not in KINDS:
            raise ValueError(f"{name}: kind must be one of {KINDS}, got {kind!r}")
        self.kind = kind
        shape = (self.max_length, self.embed_dim)
        if kind == "learned":
            self.P = self.add_parameter("P", as_rng(rng).normal(0.0, 0.02, size=shape).astype(dtype))
        else:
            self.P = self.add_buffer("P", sinusoidal_table(*shape, dtype=dtype))
        self._shape = None

    def forward(self, X):
        """Z = X + P[:T]  (N×T×D + T×D, broadcast over the N sequences)."""
        P = self.P.data
        X = self.float_input(X, P.dtype, like=P)
        if X.ndim != 3 or X.shape[2] != self.embed_dim:
            raise ShapeError(f"{self!r}: expected input of shape (N, T, {self.embed_dim}), got shape {X.shape}")
        T = X.shape[1]
        if T > self.max_length:
            raise ShapeError(f"{self!r}: sequences of length T = {T} are longer than max_length = "
                             f"{self.max_length} (input shape {X.shape}); build the layer with a larger max_length")
        self._shape = X.shape
        return X + P[:T]

    def backward(self, dZ):
        """δP[:T] += Σₙ δZ (learned P only);  returns δX = δZ."""
        dZ = self.check_grad(dZ, self.forward_cache(self._shape))
        if self.kind == "learned":
            self.P.grad[:dZ.shape[1]] += dZ.sum(axis=0)
        return dZ          # δX = δZ: passed on as is, since no layer modifies a gradient it receives

    def settings(self) -> dict:
        return {"max_length": self.max_length, "embed_dim": self.embed_dim, "kind": self.kind,
                "dtype": self.P.data.dtype.name}

    def extra_repr(self) -> str:
        settings = self.settings()
        text = f"{self.max_length}, {self.embed_dim}"
        if self.kind != "learned":
            text += f", kind={self.kind!r}"
        return text if settings["dtype"] == "float64" else f"{text}, dtype={settings['dtype']!r}"
