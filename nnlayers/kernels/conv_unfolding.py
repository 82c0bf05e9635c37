"""Conv2D's chunked im2col: the layout behind the fast "gemm" path (``conv_gemm``).

The readable ``im2col`` (``nnlayers.layers.conv``) unfolds the whole batch at
once with rows ordered (c, i, j). ``Unfolding`` computes the same columns for
a few samples at a time, so that each chunk's columns go straight from the
copies into the matrix products while still in the cache, in work arrays
reused from step to step (``threads.scratch``), with rows ordered (i, j, c),
kernel offset first, so that each offset's C rows are filled by one copy.
Its layouts ("row-flat" or "exact" grid, per-sample or chunk-wide products)
are described in the class docstring; each is proven equal to the readable
formulas by tests/kernels/test_conv_paths.py.
"""
from __future__ import annotations

import numpy as np

from .threads import even_slices, map_chunks, num_threads, scratch as this_thread_scratch, slices_within

__all__ = ["Unfolding", "layout_for", "CHUNK_BYTES", "SPREAD_MIN"]


#: Target size in bytes of one chunk's columns (``cols`` of n samples): small enough to stay in
#: the cores' caches between im2col and the matrix products that read it, large enough that
#: the products run at full speed and the per-chunk Python overhead disappears.
CHUNK_BYTES = 3 << 20

#: Below this many values a chunk's copies run on one thread: handing them over costs more.
SPREAD_MIN = 1 << 16

#: Layout choices a test may force, True or False: "row_flat" (taken at stride 1 only) and
#: "per_sample" (tests/kernels/test_conv_paths.py runs every layout on every geometry it draws).
#: Empty: the rules in ``Unfolding.__init__`` decide.
FORCED: dict = {}


class Unfolding:
    """im2col and col2im of one Conv2D for one input shape, over chunks of samples.

    For a chunk of n samples the columns form a K×n×G array (K×(n·G) as a
    matrix), rows ordered (i, j, c), kernel offset first, columns (n, ho, w)::

        cols(i,j,c),n,(ho,w) = Xpadₙ,c,i+sh·ho,j+sw·w         (w < Wg, G = Ho·Wg)

    so that each offset's C rows are filled by one copy, and W₂ is W with its
    axes ordered F×kh×kw×C. Each matrix product of the layer is taken either
    once for the chunk (F×K · K×(n·G)) or once per sample (F×K · K×G, batched
    by ``np.matmul`` over strided views of the same arrays): ``per_sample``
    when K·F ≤ 4096 or G ≥ 4K: the chunk-wide product for small images and
    many channels, per-sample products when K or F is small (first layers),
    the cases where each was measured faster with OpenBLAS.

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

    #: What this layout was made for (``layout_for`` sets and compares it).
    key = None

    def __init__(self, input_shape, out_channels, kernel, stride, padding, dtype):
        N, C, H, W = input_shape
        (kh, kw), (sh, sw), (ph, pw) = kernel, stride, padding
        self.input_shape, self.kernel, self.stride, self.padding = tuple(input_shape), kernel, stride, padding
        self.dtype, self.C, self.F, self.K = np.dtype(dtype), C, out_channels, C * kh * kw
        self.Hp, self.Wp = H + 2 * ph, W + 2 * pw
        self.Ho, self.Wo = (self.Hp - kh) // sh + 1, (self.Wp - kw) // sw + 1
        self.row_flat = stride == (1, 1) and FORCED.get("row_flat", self.K > 2 * out_channels)
        self.Wg = self.Wp if self.row_flat else self.Wo
        self.G = self.Ho * self.Wg                                    # grid pixels per image
        self.per_sample = FORCED.get("per_sample", self.K * out_channels <= 4096 or self.G >= 4 * self.K)
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
        if isinstance(previous, list) and [(a.shape, a.dtype) for a in previous] == [(s, self.dtype) for s in shapes]:
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


def layout_for(layer, name: str, kind, input_shape, dtype, *settings):
    """``layer``'s layout ``name`` (an ``Unfolding`` or winograd's ``Tiles``) if ``kind`` made it for
    this input shape, dtype and settings, else a new ``kind(input_shape, *settings, dtype)``,
    kept in ``layer._layouts`` for the next call (a layout depends only on these, not on values)."""
    key = (kind, tuple(input_shape), np.dtype(dtype), *settings)
    layout = layer._layouts.get(name)
    if layout is None or layout.key != key:
        layout = layer._layouts[name] = kind(input_shape, *settings, dtype)
        layout.key = key
    return layout
