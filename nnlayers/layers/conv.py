"""Two-dimensional convolution as one matrix product: ``im2col``, ``Conv2D``, ``col2im``.

Notation (the derivation's, batch-first): X is N×C×H×W, the weights W are
F×C×kh×kw (F = out_channels), Z is N×F×Ho×Wo with stride (sh, sw) and
zero padding (ph, pw)::

    Zₙ,f,ho,wo = b_f + Σ_c Σ_i Σ_j W_f,c,i,j · Xpadₙ,c,ho·sh+i,wo·sw+j
    Ho = ⌊(H + 2ph − kh) / sh⌋ + 1,   Wo = ⌊(W + 2pw − kw) / sw⌋ + 1

(a cross-correlation, as in every deep-learning library). ``im2col`` copies
each receptive field into a column, so that with K = C·kh·kw and P = Ho·Wo
the whole layer is one matrix product::

    cols : K×(N·P),   W₂ = W as an F×K matrix,   Z = W₂ cols + b   (F×K · K×(N·P) → F×(N·P))

and its backward pass two more, plus ``col2im``, the adjoint of ``im2col``,
which adds each column entry back onto the input pixel it was copied from.
The public ``im2col``/``col2im`` give one K×P block per sample (N×K×P) with
rows in the usual (c, i, j) order, where W₂ = W.reshape(F, K).

``Conv2D`` computes the same products with these speed-ups, in ``_Unfolding``
and two small methods (the formulas in ``forward``/``backward`` are unchanged):

* rows ordered (i, j, c), kernel offset first, so that each offset's C rows
  are filled by one copy (and W₂ is W with its axes ordered F×kh×kw×C);
* the batch is taken a few samples at a time, each chunk's columns going
  straight from im2col into the matrix product while still in the cache,
  the work arrays reused from step to step; with more than one thread
  (``nnlayers._threads``) the chunks, an even number of them where the batch
  allows, go to lanes, one per thread, each
  unfolding and multiplying its own (a lone chunk's copies are cut into
  pieces instead); backward unfolds X again instead of keeping the columns,
  K/C times the input's size, from forward (only small layers keep them);
* with stride 1, a "row-flat" layout in which each offset's copy is one
  contiguous run per image (at the price of computing Wp − Wo extra columns
  per output row, which are dropped);
* with stride 1 and C ≥ F, δX as the correlation of δZ with the flipped
  kernel (``Conv2D._correlate_back``): the same sum as col2im(W₂ᵀ δZ),
  computed as a forward convolution.

With ``algorithm="winograd"`` (3×3 kernels, stride 1), ``Conv2D`` computes
the same sums by Winograd's F(2×2, 3×3) instead (``nnlayers.layers.winograd``):
up to 2.25× fewer multiply-adds, differing from the products above only in rounding.
"""
from __future__ import annotations

import numpy as np

from ..init import initial_weights
from ..module import Module, ShapeError
from ..backend import get_array_module
from .._args import flag as _flag, pair as _pair, positive_int as _positive_int, show as _show
from .._threads import even_slices, map_chunks, num_threads, scratch as this_thread_scratch, slices_within
from . import winograd as _winograd

__all__ = ["Conv2D", "im2col", "col2im", "conv_output_size"]


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """⌊(size + 2·padding − kernel) / stride⌋ + 1: the windows that fit (PyTorch's floor rule)."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(X, kernel_size, stride=1, padding=0) -> np.ndarray:
    """Unfold the receptive fields of X (N×C×H×W) into columns: shape N×K×P, K = C·kh·kw, P = Ho·Wo.

    colsₙ,(c·kh + i)·kw + j, ho·Wo + wo = Xpadₙ,c,ho·sh+i,wo·sw+j, where Xpad is X
    with ``padding`` zeros around H and W. Row order (c, i, j) matches
    W.reshape(F, C·kh·kw), so a convolution is ``W.reshape(F, -1) @ cols``.
    ``kernel_size``, ``stride`` and ``padding`` are ints or (height, width) pairs.
    """
    X = np.asarray(X)
    kernel, stride, padding = _geometry_args("im2col", kernel_size, stride, padding)
    if X.ndim != 4:
        raise ShapeError(f"im2col: expected X of shape (N, C, H, W), got shape {X.shape}")
    _check_fits("im2col", X.shape, kernel, padding)
    N, C, _, _ = X.shape
    cols = _unfold(X, kernel, stride, padding)                     # N×kh×kw×C×Ho×Wo
    Ho, Wo = cols.shape[4:]
    return cols.transpose(0, 3, 1, 2, 4, 5).reshape(N, C * kernel[0] * kernel[1], Ho * Wo)


def col2im(cols, input_shape, kernel_size, stride=1, padding=0) -> np.ndarray:
    """The adjoint of ``im2col``: add every column entry back onto the pixel it was copied from.

    dXpadₙ,c,ho·sh+i,wo·sw+j += colsₙ,(c·kh + i)·kw + j, ho·Wo + wo, summed over all
    windows that cover a pixel; the padding border is then cut off. ``cols``
    is N×K×P (as ``im2col`` returns); the result has ``input_shape`` (N, C, H, W).
    """
    cols = np.asarray(cols)
    (kh, kw), stride, padding = _geometry_args("col2im", kernel_size, stride, padding)
    N, C, H, W = input_shape
    Ho, Wo = conv_output_size(H, kh, stride[0], padding[0]), conv_output_size(W, kw, stride[1], padding[1])
    if cols.shape != (N, C * kh * kw, Ho * Wo):
        raise ShapeError(f"col2im: expected cols of shape {(N, C * kh * kw, Ho * Wo)} for input shape "
                         f"{tuple(input_shape)}, got shape {cols.shape}")
    cols6 = cols.reshape(N, C, kh, kw, Ho, Wo).transpose(0, 2, 3, 1, 4, 5)
    return _fold(cols6, (N, C, H, W), stride, padding)


# -- the general layout: one strided copy per kernel offset ------------------------------------

def _padded(X: np.ndarray, padding) -> np.ndarray:
    """X with ph zero rows above and below, pw zero columns left and right."""
    ph, pw = padding
    if not (ph or pw):
        return X
    N, C, H, W = X.shape
    Xpad = get_array_module(X).zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=X.dtype)
    Xpad[:, :, ph:ph + H, pw:pw + W] = X
    return Xpad


def _unfold(X: np.ndarray, kernel, stride, padding) -> np.ndarray:
    """cols[:, i, j] = Xpad[:, :, i + sh·ho, j + sw·wo] for all (ho, wo): N×kh×kw×C×Ho×Wo."""
    (kh, kw), (sh, sw) = kernel, stride
    Xpad = _padded(X, padding)
    N, C, Hp, Wp = Xpad.shape
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    cols = get_array_module(X).empty((N, kh, kw, C, Ho, Wo), dtype=X.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, i, j] = Xpad[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw]
    return cols


def _fold(cols6: np.ndarray, input_shape, stride, padding) -> np.ndarray:
    """dXpad[:, :, i + sh·ho, j + sw·wo] += cols6[:, i, j] for each offset (i, j), then cut the padding.

    ``cols6`` is N×kh×kw×C×Ho×Wo. Within one offset the windows hit distinct
    pixels, so ``+=`` on the strided view is exact; where windows overlap, the
    offsets add up across the loop.
    """
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = input_shape
    kh, kw, _, Ho, Wo = cols6.shape[1:]
    dXpad = get_array_module(cols6).zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols6.dtype)
    for i in range(kh):
        for j in range(kw):
            dXpad[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += cols6[:, i, j]
    if not (ph or pw):
        return dXpad
    return dXpad[:, :, ph:ph + H, pw:pw + W].copy()


# -- the layer's layout: chunks of samples, one matrix product per chunk --------------------------

#: Target size in bytes of one chunk's columns (``cols`` of n samples): small enough to stay in
#: the cores' caches between im2col and the matrix products that read it, large enough that
#: the products run at full speed and the per-chunk Python overhead disappears.
CHUNK_BYTES = 3 << 20

#: In training mode a layer whose columns for the whole batch take at most this many bytes
#: keeps them from forward for backward (small layers, such as a first layer on 1–3 channels,
#: where unfolding again would be a large share of the work); larger layers unfold again.
KEEP_COLS_BYTES = 16 << 20

#: Below this many values a chunk's copies run on one thread: handing them over costs more.
SPREAD_MIN = 1 << 16


class _Unfolding:
    """im2col and col2im of one Conv2D for one input shape, over chunks of samples.

    For a chunk of n samples the columns form a K×n×G array (K×(n·G) as a
    matrix), rows ordered (i, j, c), kernel offset first, columns (n, ho, w)::

        cols(i,j,c),n,(ho,w) = Xpadₙ,c,i+sh·ho,j+sw·w         (w < Wg, G = Ho·Wg)

    so that each offset's C rows are filled by one copy, and W₂ is W with its
    axes ordered F×kh×kw×C. Each matrix product of the layer is taken either
    once for the chunk (F×K · K×(n·G)) or once per sample (F×K · K×G, batched
    by ``np.matmul`` over strided views of the same arrays): ``per_sample``
    when K·F ≤ 4096 or G ≥ 4K. Measured with OpenBLAS, the chunk-wide product
    wins for small images and many channels (8×8 outputs, K = 576: 2× faster
    for δW); per-sample products win when K or F is small (first layers: 3–4×
    faster for δW with K = 9), and neither matters much in between.

    Which output pixels are computed (the "grid", G per image):

    * "row-flat" (stride 1, when K > 2F): Wg = Wp, the padded width. In the
      padded image flattened row by row, output pixel q = ho·Wp + w reads
      input pixel q + i·Wp + j, so an offset's slab is one contiguous run of
      Ho·Wp values per image and channel: long copies instead of one per
      output row. The Wp − Wo extra columns per output row read across the
      right edge; ``finish`` drops them and ``gradient_grid`` gives them
      δZ = 0, so they add exact zeros to δW and δX. Only the width is padded
      out, never the height: a 5×5 kernel on a 14×14 input computes 10×14 for
      10×10 used, where the whole padded grid would be 14×14.
    * "exact" (other strides, or K ≤ 2F): Wg = Wo, one strided copy per offset
      and output row. With per-sample products the outputs then land straight
      in Z and δZ is read in place, so no grid is copied at all: cheaper when
      the layer has few input channels (K ≤ 2F), where the copies of the
      row-flat grid (F rows per output row, in forward and again in backward)
      would outnumber the short copies of the unfold (K per output row, once
      when a small layer keeps its columns).

    Work arrays (the padded chunk, its columns, the output grid) come from the
    calling thread's ``Scratch`` and are reused from step to step.
    """

    #: What this layout was made for (``_kept_or_new`` sets and compares it).
    key = None

    def __init__(self, input_shape, out_channels, kernel, stride, padding, dtype):
        N, C, H, W = input_shape
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        self.input_shape, self.kernel, self.stride, self.padding = tuple(input_shape), kernel, stride, padding
        self.dtype, self.C, self.F, self.K = np.dtype(dtype), C, out_channels, C * kh * kw
        self.Hp, self.Wp = H + 2 * ph, W + 2 * pw
        self.Ho, self.Wo = (self.Hp - kh) // sh + 1, (self.Wp - kw) // sw + 1
        self.row_flat = stride == (1, 1) and self.K > 2 * out_channels
        self.Wg = self.Wp if self.row_flat else self.Wo
        self.G = self.Ho * self.Wg                                    # grid pixels per image
        self.per_sample = self.K * out_channels <= 4096 or self.G >= 4 * self.K
        self.direct = self.per_sample and self.Wg == self.Wo          # Z and δZ serve as the grid
        # Row-flat extra columns read up to kw − 1 values past the end of their image: each
        # image of the padded buffer is followed by that many zeros of its own.
        self.tail = kw - 1 if self.row_flat else 0
        self.chunks = slices_within(N, self.K * self.G * self.dtype.itemsize, CHUNK_BYTES)

    # -- spreading a chunk's copies over the threads ---------------------------------------------
    def _spread(self, work, channels: int, size: int) -> None:
        """Run ``work(part)`` for runs ``part`` of a chunk's ``channels`` (F or C), one per thread.

        With several threads the chunks themselves go to lanes (``map_chunks``),
        inside which this runs on one thread (``work(slice(None))``); only a
        chunk that has the batch to itself (a batch of one sample) is cut by
        channels. Pieces write disjoint parts of the arrays, so they need no
        locks; below ``SPREAD_MIN`` values (``size``) one thread does it all.
        """
        lanes = min(num_threads(), channels) if size >= SPREAD_MIN else 1
        if lanes <= 1:
            work(slice(None))
            return
        map_chunks(lambda part, _scratch: work(part), even_slices(channels, lanes))

    # -- im2col and col2im ---------------------------------------------------------------------
    def _padded_buffer(self, name: str, n: int):
        """A scratch padded chunk: (n×C×(Hp·Wp + tail) array, its n×C×Hp×Wp image view)."""
        flat = this_thread_scratch().array(name, (n, self.C, self.Hp * self.Wp + self.tail), self.dtype)
        return flat, flat[:, :, :self.Hp * self.Wp].reshape(n, self.C, self.Hp, self.Wp)

    def _slab_views(self, flat: np.ndarray):
        """For each kernel offset (i, j): the n×C×Ho×Wg view of the padded chunk ``flat`` it reads.

        Row-flat: image pixels q + i·Wp + j for q < Ho·Wp, a contiguous run per
        image; the extra columns' reads end at most kw − 1 values past the
        image, in its own zero tail. Otherwise: rows i + sh·ho, columns j + sw·wo.
        """
        (kh, kw), (sh, sw) = self.kernel, self.stride
        n, C, Hp, Wp, Ho, Wg = flat.shape[0], self.C, self.Hp, self.Wp, self.Ho, self.Wg
        image = flat[:, :, :Hp * Wp].reshape(n, C, Hp, Wp)
        for i in range(kh):
            for j in range(kw):
                if self.row_flat:
                    shift = i * Wp + j
                    yield i, j, flat[:, :, shift:shift + Ho * Wg].reshape(n, C, Ho, Wg)
                else:
                    yield i, j, image[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wg - 1) + 1:sw]

    def kept_columns(self, previous) -> list:
        """One K×n×G array per chunk, for columns kept from forward to backward: ``previous``
        (the list the last step kept) when it fits, else new arrays. Reusing them spares the
        operating system's zero-filling of fresh pages, which costs about as much as the copy."""
        shapes = [(self.K, rows.stop - rows.start, self.G) for rows in self.chunks]
        if previous is not None and [(a.shape, a.dtype) for a in previous] == [(s, self.dtype) for s in shapes]:
            return previous
        return [np.empty(shape, self.dtype) for shape in shapes]

    def unfold(self, X: np.ndarray, rows: slice, out=None) -> np.ndarray:
        """cols (K×n×G) of the chunk X[rows] (n×C×H×W): in ``out`` if given, else a scratch array.

        X is first copied into a zero-filled padded image (zeroing the whole
        buffer, one contiguous fill, costs less than writing the left and right
        borders, one or two values per image row); then one copy per offset.
        """
        n, (kh, kw), C, (ph, pw) = rows.stop - rows.start, self.kernel, self.C, self.padding
        H, W = self.input_shape[2], self.input_shape[3]
        flat, padded = self._padded_buffer("conv.Xpad", n)
        shape = (kh, kw, C, n, self.Ho, self.Wg)
        cols = out.reshape(shape) if out is not None else this_thread_scratch().array("conv.cols", shape, self.dtype)
        views = list(self._slab_views(flat))

        def piece(part):
            if ph or pw or self.tail:
                flat[:, part] = 0
            padded[:, part, ph:ph + H, pw:pw + W] = X[rows, part]
            for i, j, view in views:
                cols[i, j, part] = view[:, part].transpose(1, 0, 2, 3)

        self._spread(piece, C, cols.size)
        return cols.reshape(self.K, n, self.G)

    def scratch_columns(self, rows: slice) -> np.ndarray:
        """A scratch K×n×G array for the chunk ``rows`` (for dcols when cols is kept)."""
        return this_thread_scratch().array("conv.cols", (self.K, rows.stop - rows.start, self.G), self.dtype)

    def fold(self, dcols: np.ndarray, dX: np.ndarray, rows: slice) -> None:
        """δX[rows] (n×C×H×W) = col2im(dcols): the adjoint of ``unfold``.

        dXpad += each offset's rows of dcols on the view ``unfold`` copied them
        from (views of one offset never overlap; offsets add up), then the
        border is cut off.
        """
        n, (kh, kw), C, (ph, pw) = rows.stop - rows.start, self.kernel, self.C, self.padding
        H, W = self.input_shape[2], self.input_shape[3]
        flat, padded = self._padded_buffer("conv.dXpad", n)
        slabs = dcols.reshape(kh, kw, C, n, self.Ho, self.Wg)
        views = list(self._slab_views(flat))

        def piece(part):
            flat[:, part] = 0
            for i, j, view in views:
                view[:, part] += slabs[i, j, part].transpose(1, 0, 2, 3)
            dX[rows, part] = padded[:, part, ph:ph + H, pw:pw + W]

        self._spread(piece, C, dcols.size)

    # -- the products and the output grid ------------------------------------------------------
    def matmul(self, A: np.ndarray, B: np.ndarray, out: np.ndarray) -> None:
        """out = A B for a matrix A (M×R) and the chunk's R×n×G array B, into out (M×n×G)."""
        if self.per_sample:
            np.matmul(A, B.transpose(1, 0, 2), out=out.transpose(1, 0, 2))
        else:
            np.matmul(A, B.reshape(B.shape[0], -1), out=out.reshape(out.shape[0], -1))

    def inner(self, cols: np.ndarray, dZ_grid: np.ndarray) -> np.ndarray:
        """cols δZᵀ summed over the chunk's n·G pixels (K×n×G, F×n×G → K×F)."""
        if self.per_sample:
            return np.matmul(cols.transpose(1, 0, 2), dZ_grid.transpose(1, 2, 0)).sum(axis=0)
        return cols.reshape(self.K, -1) @ dZ_grid.reshape(self.F, -1).T

    def _grid_buffer(self, n: int) -> np.ndarray:
        """A scratch F×n×Ho×Wg grid (stored n×F×… for per-sample products, F×n×… otherwise)."""
        if self.per_sample:
            return this_thread_scratch().array("conv.grid", (n, self.F, self.Ho, self.Wg),
                                               self.dtype).transpose(1, 0, 2, 3)
        return this_thread_scratch().array("conv.grid", (self.F, n, self.Ho, self.Wg), self.dtype)

    def output_grid(self, Z: np.ndarray, rows: slice) -> np.ndarray:
        """Where the chunk's product W₂ cols goes (F×n×G): Z[rows] itself when ``direct``."""
        n = rows.stop - rows.start
        if self.direct:
            return Z[rows].reshape(n, self.F, self.G).transpose(1, 0, 2)
        return self._grid_buffer(n).reshape(self.F, n, self.G)

    def finish(self, grid: np.ndarray, Z: np.ndarray, rows: slice, b) -> None:
        """Z[rows] (n×F×Ho×Wo) = the grid + b, without the grid's extra columns.

        b is added on the grid, where each filter's values are long contiguous
        runs; broadcast over the cropped copy it would cost as much again.
        """
        n = rows.stop - rows.start
        grid = grid.reshape(self.F, n, self.Ho, self.Wg)

        def piece(part):
            if b is not None:
                grid[part] += b[part, None, None, None]
            if not self.direct:
                Z[rows, part] = grid[part, :, :, :self.Wo].transpose(1, 0, 2, 3)

        self._spread(piece, self.F, grid.size)

    def gradient_grid(self, dZ: np.ndarray, rows: slice) -> np.ndarray:
        """δZ[rows] (n×F×Ho×Wo) as the F×n×G grid of ``output_grid``, 0 on the extra columns."""
        n = rows.stop - rows.start
        if self.direct:
            return np.ascontiguousarray(dZ[rows], dtype=self.dtype).reshape(n, self.F, self.G).transpose(1, 0, 2)
        grid = self._grid_buffer(n)

        def piece(part):
            grid[part, :, :, :self.Wo] = dZ[rows, part].transpose(1, 0, 2, 3)
            if self.Wg > self.Wo:
                grid[part, :, :, self.Wo:] = 0

        self._spread(piece, self.F, grid.size)
        return grid.reshape(self.F, n, self.G)


class Conv2D(Module):
    """Z = W ⋆ X + b: a 2-D convolution (cross-correlation) of N×C×H×W images with F filters.

    Parameters: W of shape F×C×kh×kw and, with ``bias=True``, b of shape (F,)
    (starting at zero). ``kernel_size``, ``stride`` and ``padding`` take an int
    or an (height, width) pair; padding adds zeros on both sides. Output
    N×F×Ho×Wo with Ho = ⌊(H + 2ph − kh)/sh⌋ + 1 (likewise Wo).
    ``padding="same"`` keeps H×W: for odd kernels at stride 1 it is
    (ph, pw) = (kh//2, kw//2), stored in ``padding`` (``padding_mode`` is then
    ``"same"``, else None).

    Computed as im2col + one matrix product (see the module docstring): with
    K = C·kh·kw, P = Ho·Wo and W₂ = W as an F×K matrix,

        Z = W₂ cols + b        (F×K · K×(N·P) → F×(N·P), then arranged N×F×Ho×Wo)

    taken over chunks of a few samples at a time (``_Unfolding``), so that
    the columns stay in the cache and need no memory of their own between
    steps. With ``NNLAYERS_NUM_THREADS`` > 1 the chunks run in that many
    lanes, each with its own cores' share of the work: give BLAS one thread
    then (``OPENBLAS_NUM_THREADS=1``), or its threads and the lanes fight
    over the cores (README, "Speed").

    Initialisation (``init``): He normal by default (for ReLU networks), with
    fan_in = C·kh·kw and fan_out = F·kh·kw; ``"xavier"`` or any callable
    ``init(shape, fan_in, fan_out, rng)``. ``rng``: int seed or Generator.
    ``dtype``: of the parameters (float32 halves memory and time).

    ``input_grad=False`` skips δX (backward returns None) for a first layer
    whose input is data: it saves a matrix product and the col2im pass.

    ``algorithm``: how the sums are computed. ``"gemm"`` (the default):
    im2col and matrix products, as above. ``"winograd"``: Winograd's
    F(2×2, 3×3) (``nnlayers.layers.winograd``; 3×3 kernels, stride 1,
    padding ≤ 2), the same sums in up to 2.25× fewer multiply-adds, rounded
    differently (relative to the largest value, about 1e-16 in float64 and
    3e-7 in float32). Measured in float32 with 32–64 channels (README,
    "Speed"), a layer's forward + backward took 11–25 % less time than with
    "gemm" at one thread under OpenBLAS's Haswell kernel, between 15 % less
    and 3 % more under its SkylakeX kernel, and more at two threads with
    BLAS on both (only the products use the second core, not Winograd's
    additions); with two lanes of chunks (``NNLAYERS_NUM_THREADS=2``, BLAS
    at one thread) its additions run on both cores too, and it took about
    as long as "gemm" under the Haswell kernel and 12–19 % longer under
    SkylakeX. It is not chosen automatically: it pays only with one
    thread, and results (its rounding) should not depend on the thread count. The
    attribute ``algorithm`` may be changed between steps. On a GPU (CuPy
    arrays) the layer always takes the matrix products.

    Cache: X, the input; backward unfolds it again, chunk by chunk, rather
    than keeping K/C times its size in columns, except for small layers in
    training mode (``KEEP_COLS_BYTES``), which keep their columns too.
    """

    cache_names = ("_X", "_cols", "_device_cols")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, *, init="he", rng=None, dtype=np.float64, input_grad: bool = True,
                 algorithm: str = "gemm"):
        super().__init__()
        name = type(self).__name__
        self.in_channels = _positive_int(in_channels, "in_channels", name)
        self.out_channels = _positive_int(out_channels, "out_channels", name)
        self.padding_mode = None
        if isinstance(padding, str):
            if padding != "same":
                raise ValueError(f"{name}: padding must be 'same', an integer ≥ 0 or a pair of them, "
                                 f"got {padding!r}")
            self.padding_mode = "same"
            padding = _same_padding(name, kernel_size, stride)
        self.kernel_size, self.stride, self.padding = _geometry_args(name, kernel_size, stride, padding)
        self.input_grad = _flag(input_grad, "input_grad", name)
        self.algorithm = algorithm
        self._checked_algorithm()
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.W = self.add_parameter("W", initial_weights(
            init, shape, self.in_channels * kh * kw, self.out_channels * kh * kw, rng, dtype))
        self.b = self.add_parameter("b", np.zeros(self.out_channels, dtype=dtype)) \
            if _flag(bias, "bias", name) else None
        self._X = self._cols = self._device_cols = None
        self._unfolding = self._back_unfolding = None
        self._winograd_tiles = self._back_winograd_tiles = None

    def output_shape(self, input_shape) -> tuple:
        """(N, F, Ho, Wo) for an input of shape (N, C, H, W)."""
        N, _, H, W = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (N, self.out_channels, conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw))

    def _W2(self) -> np.ndarray:
        """W₂: W as an F×K matrix with rows ordered (i, j, c)  (F×kh×kw×C, a copy of F·K values)."""
        return self.W.data.transpose(0, 2, 3, 1).reshape(self.out_channels, -1)

    def _layout(self, X: np.ndarray) -> _Unfolding:
        """The chunked im2col for X's shape and dtype (kept while they stay the same)."""
        self._unfolding = _kept_or_new(self._unfolding, _Unfolding, X.shape, X.dtype, self.out_channels,
                                       self.kernel_size, self.stride, self.padding)
        return self._unfolding

    def _correlates_back(self) -> bool:
        """Whether δX is computed as a forward convolution of δZ (``_correlate_back``): it can be
        with stride 1 and padding ≤ kernel − 1, and measured, it pays when C ≥ F (1.1–1.4× faster
        for 32 → 32 channels); with fewer input channels than filters col2im is as fast or faster."""
        (kh, kw), (ph, pw) = self.kernel_size, self.padding
        return self.stride == (1, 1) and ph <= kh - 1 and pw <= kw - 1 and self.in_channels >= self.out_channels

    def _correlate_back(self, dZ: np.ndarray, dX: np.ndarray) -> None:
        """δX = W̃ ⋆ δZ with δZ padded by (kh − 1 − ph, kw − 1 − pw) and W̃_c,f,i,j = W_f,c,kh−1−i,kw−1−j.

        For stride 1 this is the same sum as col2im(W₂ᵀ δZ), term for term:
        δXₙ,c,h,w = Σ_f,i,j W_f,c,i,j δZₙ,f,h+ph−i,w+pw−j (terms outside δZ are
        zero), here taken as a forward convolution with C filters over the F
        channels of δZ. It replaces col2im's kh·kw read-add-write passes over
        δX by im2col's plain copies, and its product W̃₂ cols (C×F·kh·kw ·
        F·kh·kw×n·G) runs faster than W₂ᵀ δZ, whose inner dimension is only F.
        """
        (kh, kw), (ph, pw), C, F = self.kernel_size, self.padding, self.in_channels, self.out_channels
        self._back_unfolding = back = _kept_or_new(self._back_unfolding, _Unfolding, dZ.shape, dX.dtype, C,
                                                   self.kernel_size, (1, 1), (kh - 1 - ph, kw - 1 - pw))
        W2_flipped = self.W.data[:, :, ::-1, ::-1].transpose(1, 2, 3, 0).reshape(C, kh * kw * F)

        def chunk(rows, _scratch):
            cols = back.unfold(dZ, rows)                                  # (kh·kw·F)×n×G of δZ
            grid = back.output_grid(dX, rows)                             # C×n×G
            back.matmul(W2_flipped, cols, out=grid)                       # W̃₂ cols
            back.finish(grid, dX, rows, None)                             # onto the H×W pixels of δX
        map_chunks(chunk, back.chunks)

    def _checked_algorithm(self) -> str:
        algorithm = self.algorithm
        if not isinstance(algorithm, str):
            raise TypeError(f"{type(self).__name__}: algorithm must be 'gemm' or 'winograd', "
                            f"got {algorithm!r} ({type(algorithm).__name__})")
        if algorithm not in ("gemm", "winograd"):
            raise ValueError(f"{type(self).__name__}: algorithm must be 'gemm' or 'winograd', got {algorithm!r}")
        if algorithm == "winograd" and not _winograd.winograd_fits(self.kernel_size, self.stride, self.padding):
            raise ValueError(f"{type(self).__name__}: algorithm='winograd' needs kernel_size 3, stride 1 and "
                             f"padding ≤ 2, got kernel_size={_show(self.kernel_size)}, "
                             f"stride={_show(self.stride)}, padding={_show(self.padding)}")
        return algorithm

    def _winograd_for(self, X: np.ndarray):
        """The Winograd tiles for X (numpy) with ``algorithm="winograd"`` (already checked), else None."""
        if self.algorithm != "winograd" or type(X) is not np.ndarray:
            return None
        self._winograd_tiles = _kept_or_new(self._winograd_tiles, _winograd._Winograd, X.shape, X.dtype,
                                            self.out_channels, self.padding)
        return self._winograd_tiles

    def _forward_winograd(self, X: np.ndarray, wino) -> np.ndarray:
        """Z = Aᵀ [U ⊙ V] A + b, U = G W Gᵀ, V = Bᵀ d B (``nnlayers.layers.winograd``), a chunk at a time."""
        Z = np.empty(self.output_shape(X.shape), dtype=X.dtype)
        U = _winograd.filter_tiles(self.W.data)                           # 16×F×C
        b = None if self.b is None else self.b.data
        map_chunks(lambda rows, _scratch: wino.output(wino.products(U, wino.input_tiles(X, rows)), Z, rows, b),
                   wino.chunks)
        return Z

    def _backward_winograd(self, X: np.ndarray, dZ: np.ndarray, wino):
        """δW = Gᵀ [Σ δM Vᵀ] G with δM = A δZ Aᵀ; δX = W̃ ⋆ δZ (as ``_correlate_back``) by Winograd too."""
        dZ = dZ.astype(X.dtype, copy=False)                               # δX's tiles are made from δZ
        dU = np.zeros((16, self.out_channels, self.in_channels), dtype=X.dtype)

        def add(part):                                                    # in chunk order
            dU[...] += part
        map_chunks(lambda rows, _scratch: wino.filter_gradient_products(wino.gradient_tiles(dZ, rows),
                                                                          wino.input_tiles(X, rows)),
                   wino.chunks, combine=add)
        self.W.grad += _winograd.filter_gradient(dU)
        if not self.input_grad:
            return None
        (ph, pw), C = self.padding, self.in_channels
        # δX = the correlation of δZ, padded by 2 − padding, with W̃_c,f,i,j = W_f,c,2−i,2−j.
        back = self._back_winograd_tiles = _kept_or_new(self._back_winograd_tiles, _winograd._Winograd, dZ.shape,
                                                        X.dtype, C, (2 - ph, 2 - pw))
        dX = np.empty(X.shape, dtype=X.dtype)
        U = _winograd.filter_tiles(self.W.data[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
        map_chunks(lambda rows, _scratch: back.output(back.products(U, back.input_tiles(dZ, rows)), dX, rows, None),
                   back.chunks)
        return dX

    def forward(self, X):
        """Z = W₂ cols + b, cols = im2col(X)  (F×K · K×(N·P) → N×F×Ho×Wo), a chunk of samples at a time."""
        X = self.float_input(X, self.W.data.dtype, like=self.W.data)
        self._checked_algorithm()
        if X.ndim != 4 or X.shape[1] != self.in_channels:
            raise ShapeError(f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), "
                             f"got shape {X.shape}")
        _check_fits(repr(self), X.shape, self.kernel_size, self.padding)
        if type(X) is not np.ndarray:                                     # on a GPU: the plain im2col
            return self._forward_on_device(X)
        wino = self._winograd_for(X)
        if wino is not None:
            self._X, self._cols, self._device_cols = X, None, None
            return self._forward_winograd(X, wino)
        unfolding = self._layout(X)
        Z = np.empty(self.output_shape(X.shape), dtype=X.dtype)
        W2, b = self._W2(), None if self.b is None else self.b.data

        keep = self.training and unfolding.K * X.shape[0] * unfolding.G * X.itemsize <= KEEP_COLS_BYTES
        kept = unfolding.kept_columns(self._cols) if keep else None       # last step's arrays, reused

        def chunk(k_rows, _scratch):
            k, rows = k_rows
            cols = unfolding.unfold(X, rows, kept[k] if keep else None)   # K×n×G
            grid = unfolding.output_grid(Z, rows)                         # F×n×G
            unfolding.matmul(W2, cols, out=grid)                          # W₂ cols
            unfolding.finish(grid, Z, rows, b)                            # + b, onto the Ho×Wo outputs
        map_chunks(chunk, list(enumerate(unfolding.chunks)))
        self._X, self._cols, self._device_cols = X, kept, None          # no stale GPU columns after a move
        return Z

    def backward(self, dZ):
        """With δZ arranged as the F×(N·P) matrix of ``forward``'s product:

        δW₂ += δZ colsᵀ            (F×(N·P) · (N·P)×K → F×K, then back to F×C×kh×kw)
        δb  += Σₙ Σₚ δZₙ,:,p         (F)
        δX   = col2im(W₂ᵀ δZ)      (K×F · F×(N·P) → K×(N·P), folded to N×C×H×W)
        """
        X = self.forward_cache(self._X)
        dZ = self.check_grad(dZ, self.output_shape(X.shape))
        self._checked_algorithm()                                         # before any gradient is added
        N, F, Ho, Wo = dZ.shape
        (kh, kw), C = self.kernel_size, self.in_channels
        if self.b is not None:
            self.b.grad += dZ.sum(axis=0).reshape(F, Ho * Wo).sum(axis=1)   # Σₙ first: whole-row adds
        if type(X) is not np.ndarray:
            return self._backward_on_device(dZ)
        wino = self._winograd_for(X)
        if wino is not None:
            return self._backward_winograd(X, dZ, wino)
        unfolding = self._layout(X)
        W2T = np.ascontiguousarray(self._W2().T)                          # W₂ᵀ, K×F (for col2im)
        dX = np.empty(X.shape, dtype=X.dtype) if self.input_grad else None
        fold = dX is not None and not self._correlates_back()             # else δX by ``_correlate_back``

        dW2T = np.zeros((unfolding.K, F), dtype=X.dtype)                  # (δW₂)ᵀ: K×F

        def chunk(k_rows, _scratch):
            k, rows = k_rows
            dZ_grid = unfolding.gradient_grid(dZ, rows)                   # F×n×G, 0 on extra columns
            cols = self._cols[k] if self._cols else unfolding.unfold(X, rows)   # K×n×G, kept or again
            part = unfolding.inner(cols, dZ_grid)                         # (δZ colsᵀ)ᵀ of this chunk
            if fold:
                dcols = unfolding.scratch_columns(rows) if self._cols else cols   # scratch cols: used up
                unfolding.matmul(W2T, dZ_grid, out=dcols)                 # dcols = W₂ᵀ δZ
                unfolding.fold(dcols, dX, rows)                           # δX = col2im(dcols)
            return part

        def add(part):                                                    # in chunk order
            dW2T[...] += part
        map_chunks(chunk, list(enumerate(unfolding.chunks)), combine=add)
        self.W.grad += dW2T.reshape(kh, kw, C, F).transpose(3, 2, 0, 1)   # (i, j, c, f) → W's (f, c, i, j)
        if dX is not None and not fold:
            self._correlate_back(dZ, dX)                                  # the same δX, stride 1
        return dX

    # -- on another device (a GPU through CuPy): the same formulas, one product per sample -----------
    def _forward_on_device(self, X):
        """Zₙ = W₂ colsₙ + b with colsₙ = im2col(Xₙ) (rows (i, j, c)), in X's array module.

        The CPU path's chunking, threads and layouts are for two cores; a GPU
        takes the whole batch's columns in one batched product.
        """
        N, F, Ho, Wo = out_shape = self.output_shape(X.shape)
        K = self.in_channels * self.kernel_size[0] * self.kernel_size[1]
        cols = _unfold(X, self.kernel_size, self.stride, self.padding).reshape(N, K, Ho * Wo)
        Z = (self._W2() @ cols).reshape(out_shape)                        # W₂ colsₙ, every n
        if self.b is not None:
            Z += self.b.data[:, None, None]
        self._X, self._cols, self._device_cols = X, None, cols
        return Z

    def _backward_on_device(self, dZ):
        """δW₂ += Σₙ δZₙ colsₙᵀ;  δX = col2im(W₂ᵀ δZₙ)  (δb is added by ``backward``)."""
        cols = self.forward_cache(self._device_cols)
        N, F, Ho, Wo = dZ.shape
        (kh, kw), C = self.kernel_size, self.in_channels
        dZ_cols = dZ.reshape(N, F, Ho * Wo)
        dW2 = (dZ_cols @ cols.transpose(0, 2, 1)).sum(axis=0)             # Σₙ δZₙ colsₙᵀ  (F×K)
        self.W.grad += dW2.reshape(F, kh, kw, C).transpose(0, 3, 1, 2)
        if not self.input_grad:
            return None
        dcols = self._W2().T @ dZ_cols                                    # W₂ᵀ δZₙ, every n
        return _fold(dcols.reshape(N, kh, kw, C, Ho, Wo), self._X.shape, self.stride, self.padding)

    def settings(self) -> dict:
        # padding="same" keeps its name here, as the user wrote it; self.padding is the pair it became.
        padding = "same" if self.padding_mode == "same" else self.padding
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": padding,
                "bias": self.b is not None, "input_grad": self.input_grad, "algorithm": self.algorithm}

    def extra_repr(self) -> str:
        settings = self.settings()
        padding = settings["padding"]
        padding = repr(padding) if isinstance(padding, str) else _show(padding)
        text = (f"{settings['in_channels']}, {settings['out_channels']}, "
                f"kernel_size={_show(settings['kernel_size'])}, stride={_show(settings['stride'])}, "
                f"padding={padding}")
        if not settings["bias"]:
            text += ", bias=False"
        if not settings["input_grad"]:
            text += ", input_grad=False"
        if settings["algorithm"] != "gemm":
            text += f", algorithm={settings['algorithm']!r}"
        return text


def _same_padding(owner: str, kernel_size, stride) -> tuple:
    """(kh//2, kw//2): the padding that keeps H×W, for odd kernels at stride 1 only."""
    kernel, stride = _pair(kernel_size, "kernel_size", owner), _pair(stride, "stride", owner)
    if stride != (1, 1) or kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
        raise ValueError(f"{owner}: padding='same' needs an odd kernel_size and stride 1 (then the "
                         f"padding is kernel_size//2 on each side), got kernel_size={_show(kernel)}, "
                         f"stride={_show(stride)}")
    return kernel[0] // 2, kernel[1] // 2


def _kept_or_new(layout, kind, input_shape, dtype, *settings):
    """``layout`` if ``kind`` (``_Unfolding`` or ``_Winograd``) made it for this input shape, dtype
    and settings, else ``kind(input_shape, *settings, dtype)``, a new one."""
    key = (kind, tuple(input_shape), np.dtype(dtype), *settings)
    if layout is None or layout.key != key:
        layout = kind(input_shape, *settings, dtype)
        layout.key = key
    return layout


def _geometry_args(owner: str, kernel_size, stride, padding):
    return (_pair(kernel_size, "kernel_size", owner), _pair(stride, "stride", owner),
            _pair(padding, "padding", owner, minimum=0))


def _check_fits(where: str, shape, kernel, padding) -> None:
    (kh, kw), (ph, pw) = kernel, padding
    H, W = shape[2], shape[3]
    if H + 2 * ph < kh or W + 2 * pw < kw:
        raise ShapeError(f"{where}: kernel {kh}×{kw} is larger than the padded input "
                         f"{H + 2 * ph}×{W + 2 * pw} (input shape {tuple(shape)}, padding {(ph, pw)})")
