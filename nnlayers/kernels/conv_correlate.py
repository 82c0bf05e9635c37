"""δX of a stride-1 convolution as a forward convolution of δZ: the correlation backward.

For stride 1, col2im(W₂ᵀ δZ) is, term for term, the correlation of δZ
(padded by kh − 1 − ph, kw − 1 − pw) with the flipped kernel
W̃_c,f,i,j = W_f,c,kh−1−i,kw−1−j::

    δXₙ,c,h,w = Σ_f,i,j W_f,c,i,j δZₙ,f,h+ph−i,w+pw−j      (terms outside δZ are zero)

a forward convolution with C filters over the F channels of δZ. It replaces
col2im's kh·kw read-add-write passes over δX by im2col's plain copies, and
its product W̃₂ cols (C×F·kh·kw · F·kh·kw×n·G) has a long inner dimension,
where W₂ᵀ δZ's is only F. The fast "gemm" path (``conv_gemm``) takes it when
``correlates_back`` says so; tests/kernels/test_conv_paths.py proves it equal
to col2im(W₂ᵀ δZ).
"""
from __future__ import annotations

import numpy as np

from .conv_unfolding import Unfolding, layout_for
from .threads import map_chunks

__all__ = ["correlates_back", "correlate_back"]


def correlates_back(layer) -> bool:
    """Whether ``conv_gemm`` computes δX by ``correlate_back``: it can with stride 1 and padding
    ≤ kernel − 1, and it is chosen when C ≥ F, where it was measured faster than col2im (with
    fewer input channels than filters col2im is as fast or faster)."""
    (kh, kw), (ph, pw) = layer.kernel_size, layer.padding
    return layer.stride == (1, 1) and ph <= kh - 1 and pw <= kw - 1 and layer.in_channels >= layer.out_channels


def correlate_back(layer, dZ: np.ndarray, dX: np.ndarray) -> None:
    """δX (into ``dX``) = W̃ ⋆ δZ with δZ padded by (kh − 1 − ph, kw − 1 − pw), a chunk of samples at a time."""
    (kh, kw), (ph, pw), C, F = layer.kernel_size, layer.padding, layer.in_channels, layer.out_channels
    back = layout_for(layer, "back_unfolding", Unfolding, dZ.shape, dX.dtype, C,
                      layer.kernel_size, (1, 1), (kh - 1 - ph, kw - 1 - pw))
    W2_flipped = layer.W.data[:, :, ::-1, ::-1].transpose(1, 2, 3, 0).reshape(C, kh * kw * F)

    def chunk(rows, _scratch):
        cols = back.unfold(dZ, rows)                                  # (kh·kw·F)×n×G of δZ
        grid = back.output_grid(dX, rows)                             # C×n×G
        back.matmul(W2_flipped, cols, out=grid)                       # W̃₂ cols
        back.finish(grid, dX, rows, None)                             # onto the H×W pixels of δX
    map_chunks(chunk, back.chunks)
