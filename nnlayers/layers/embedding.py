"""Embedding: integer ids → learned vectors, the first layer of a model of text."""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..kernels import fast_paths_on
from ..kernels.scatter import scatter_add_rows
from ..module import Module, ShapeError
from .._args import positive_int as _positive_int

__all__ = ["Embedding"]


class Embedding(Module):
    """Z = W[ids]: each id picks a row of W, so ids of any shape S give Z of shape S×D.

    W has shape V×D (``num_embeddings`` × ``embedding_dim``); an id is an integer
    in 0…V−1 (for characters: a position in the vocabulary). Picking row v is
    multiplying W by the one-hot row eᵥ (Z = eᵥ W), so the backward pass is
    Linear's δW = Xᵀ δZ with one-hot rows X: every position k adds its δZₖ to
    the row it picked,

        δW[v] += Σ_{k: ids_k = v} δZₖ          (a scatter-add; an id used twice gets both)

    and the ids, being integers, get no gradient: backward returns None.

    ``init``: W ~ N(0, 1) as in PyTorch (``"normal"``), or a callable
    ``init(shape, rng)``; ``rng`` an int seed or a ``numpy.random.Generator``.
    ``dtype``: of W. Ids may be any integer array, or floats holding whole
    numbers; an id out of range, negative, fractional or NaN is refused with
    a ValueError naming its position.

    Cache: the ids (flat, for δW).
    """

    cache_names = ("_ids", "_shape")

    def __init__(self, num_embeddings: int, embedding_dim: int, *, init="normal", rng=None, dtype=np.float64):
        super().__init__()
        name = type(self).__name__
        self.num_embeddings = _positive_int(num_embeddings, "num_embeddings", name)
        self.embedding_dim = _positive_int(embedding_dim, "embedding_dim", name)
        shape = (self.num_embeddings, self.embedding_dim)
        if init == "normal":
            values = np.random.default_rng(rng).normal(size=shape)
        elif callable(init):
            values = np.asarray(init(shape, np.random.default_rng(rng)))
            if values.shape != shape:
                raise ValueError(f"{name}: init returned shape {values.shape}, expected {shape}")
        else:
            raise ValueError(f"{name}: init must be 'normal' or a callable init(shape, rng), got {init!r}")
        self.W = self.add_parameter("W", values.astype(dtype))
        self._ids = self._shape = None

    def forward(self, ids):
        """Z = W[ids]  (S ids → S×D)."""
        ids = self.check_ids(ids)
        self._ids, self._shape = ids.reshape(-1), ids.shape
        return self.W.data[ids]

    def backward(self, dZ):
        """δW[v] += Σ_{k: ids_k = v} δZₖ  (scatter-add over the positions); returns None (ids have no gradient)."""
        ids = self.forward_cache(self._ids)
        dZ = self.check_grad(dZ, self._shape + (self.embedding_dim,))
        rows = dZ.reshape(-1, self.embedding_dim)
        if fast_paths_on() and type(rows) is np.ndarray:   # the same sums, grouped by id: nnlayers.kernels.scatter
            scatter_add_rows(self.W.grad, ids, rows)
        else:
            get_array_module(rows).add.at(self.W.grad, ids, rows)
        return None

    def check_ids(self, ids):
        """``ids`` as an integer array on W's device, or an error naming the first bad position."""
        xp = get_array_module(self.W.data)
        ids = xp.asarray(ids)
        whole_floats = ids.dtype.kind == "f"
        if whole_floats:
            whole = xp.isfinite(ids) & (ids == xp.round(ids))
            if not bool(whole.all()):
                raise ValueError(f"{self!r}: ids must be whole numbers, got {ids[_first(~whole)]} "
                                 f"at position {_first(~whole)}")
        elif ids.dtype.kind not in "iu":
            raise TypeError(f"{self!r}: ids must be an integer array, got dtype {ids.dtype}")
        if ids.ndim == 0:
            raise ShapeError(f"{self!r}: expected an array of ids (N, …), got a scalar")
        bad = (ids < 0) | (ids >= self.num_embeddings)     # before any cast: 1e300 must not wrap around
        if ids.size and bool(bad.any()):
            where = _first(bad)
            value = float(ids[where]) if whole_floats else int(ids[where])
            raise ValueError(f"{self!r}: ids must lie in 0…{self.num_embeddings - 1}, got {value} "
                             f"at position {where}")
        return ids.astype(np.int64) if whole_floats else ids

    def settings(self) -> dict:
        return {"num_embeddings": self.num_embeddings, "embedding_dim": self.embedding_dim,
                "dtype": self.W.data.dtype.name}

    def extra_repr(self) -> str:
        text = f"num_embeddings={self.num_embeddings}, embedding_dim={self.embedding_dim}"
        dtype = self.W.data.dtype.name
        return text if dtype == "float64" else f"{text}, dtype={dtype!r}"


def _first(mask) -> tuple:
    """The index (a tuple, one entry per axis) of the first True of ``mask``, in row-major order."""
    flat = int(mask.reshape(-1).argmax())
    return tuple(int(i) for i in np.unravel_index(flat, mask.shape))
