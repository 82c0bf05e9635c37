"""Conv2D's fast CPU path for ``algorithm="gemm"``: the formulas' matrix products, a chunk of samples at a time.

The same products as the readable ``Conv2D`` (``nnlayers.layers.conv``)::

    Z = W₂ cols + b,   δW₂ += δZ colsᵀ,   δX = col2im(W₂ᵀ δZ)

taken over chunks of a few samples (``conv_unfolding.Unfolding``): each
chunk's columns are unfolded into a work array that stays in the cache, the
product is taken at once, and the chunk's outputs are written out. With
``NNLAYERS_NUM_THREADS`` > 1 the chunks go to that many lanes (``threads``);
δW₂'s parts are added in chunk order, so results do not depend on the lane
count. Backward unfolds X again rather than keeping its columns (K/C times
its size) from forward, except for small layers in training mode
(``KEEP_COLS_BYTES``). With stride 1 and C ≥ F, δX comes from the
correlation of δZ with the flipped kernel instead (``conv_correlate``).
W₂'s columns here are ordered (i, j, c), the Unfolding's rows.
"""
from __future__ import annotations

import numpy as np

from .conv_correlate import correlate_back, correlates_back
from .conv_unfolding import Unfolding, layout_for
from .threads import map_chunks

__all__ = ["forward", "backward", "unfolding_for", "KEEP_COLS_BYTES"]

#: In training mode a layer whose columns for the whole batch take at most this many bytes
#: keeps them from forward for backward (small layers, such as a first layer on 1–3 channels,
#: where unfolding again would be a large share of the work); larger layers unfold again.
KEEP_COLS_BYTES = 16 << 20


def _W2(layer) -> np.ndarray:
    """W₂: W as an F×K matrix with columns ordered (i, j, c)  (F×kh×kw×C, a copy of F·K values)."""
    return layer.W.data.transpose(0, 2, 3, 1).reshape(layer.out_channels, -1)


def unfolding_for(layer, X: np.ndarray) -> Unfolding:
    """The chunked im2col for X's shape and dtype (kept while they stay the same)."""
    return layout_for(layer, "unfolding", Unfolding, X.shape, X.dtype, layer.out_channels,
                      layer.kernel_size, layer.stride, layer.padding)


def forward(layer, X: np.ndarray) -> np.ndarray:
    """Z = W₂ cols + b, cols = im2col(X), a chunk of samples at a time; caches X (and small layers' cols)."""
    unfolding = unfolding_for(layer, X)
    Z = np.empty(layer.output_shape(X.shape), dtype=X.dtype)
    W2, b = _W2(layer), None if layer.b is None else layer.b.data

    keep = layer.training and unfolding.K * X.shape[0] * unfolding.G * X.itemsize <= KEEP_COLS_BYTES
    kept = unfolding.kept_columns(layer._cols) if keep else None    # last step's arrays, reused

    def chunk(k_rows, _scratch):
        k, rows = k_rows
        cols = unfolding.unfold(X, rows, kept[k] if keep else None)   # K×n×G
        grid = unfolding.output_grid(Z, rows)                         # F×n×G
        unfolding.matmul(W2, cols, out=grid)                          # W₂ cols
        unfolding.finish(grid, Z, rows, b)                            # + b, onto the Ho×Wo outputs
    map_chunks(chunk, list(enumerate(unfolding.chunks)))
    layer._X, layer._cols = X, kept
    return Z


def backward(layer, X: np.ndarray, dZ: np.ndarray):
    """δW₂ += δZ colsᵀ and δX = col2im(W₂ᵀ δZ) (or the correlation of δZ), a chunk at a time; δb is
    the layer's. Returns δX, or None with ``input_grad=False``."""
    F, (kh, kw), C = layer.out_channels, layer.kernel_size, layer.in_channels
    unfolding = unfolding_for(layer, X)
    W2T = np.ascontiguousarray(_W2(layer).T)                          # W₂ᵀ, K×F (for col2im)
    dX = np.empty(X.shape, dtype=X.dtype) if layer.input_grad else None
    fold = dX is not None and not correlates_back(layer)              # else δX by ``correlate_back``
    kept = layer._cols                                                # columns kept by forward, or None

    dW2T = np.zeros((unfolding.K, F), dtype=X.dtype)                  # (δW₂)ᵀ: K×F

    def chunk(k_rows, _scratch):
        k, rows = k_rows
        dZ_grid = unfolding.gradient_grid(dZ, rows)                   # F×n×G, 0 on extra columns
        cols = kept[k] if kept else unfolding.unfold(X, rows)         # K×n×G, kept or again
        part = unfolding.inner(cols, dZ_grid)                         # (δZ colsᵀ)ᵀ of this chunk
        if fold:
            dcols = unfolding.scratch_columns(rows) if kept else cols   # scratch cols: used up
            unfolding.matmul(W2T, dZ_grid, out=dcols)                 # dcols = W₂ᵀ δZ
            unfolding.fold(dcols, dX, rows)                           # δX = col2im(dcols)
        return part

    def add(part):                                                    # in chunk order
        dW2T[...] += part
    map_chunks(chunk, list(enumerate(unfolding.chunks)), combine=add)
    layer.W.grad += dW2T.reshape(kh, kw, C, F).transpose(3, 2, 0, 1)  # (i, j, c, f) → W's (f, c, i, j)
    if dX is not None and not fold:
        correlate_back(layer, dZ, dX)                                 # the same δX, stride 1
    return dX
