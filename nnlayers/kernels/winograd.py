"""Winograd's minimal filtering F(2×2, 3×3): a 3×3 convolution at stride 1 in 16 products per 2×2 outputs, not 36.

In one dimension, two outputs of a 3-tap correlation, yₖ = Σⱼ gⱼ dₖ₊ⱼ (k = 0, 1),
from four inputs d₀…d₃ take four multiplications instead of six (Lavin & Gray,
"Fast Algorithms for Convolutional Neural Networks", 2016)::

    y = Aᵀ [(G g) ⊙ (Bᵀ d)]

        ⎡1  0 −1  0⎤        ⎡ 1    0    0 ⎤
    Bᵀ= ⎢0  1  1  0⎥    G = ⎢ ½    ½    ½ ⎥    Aᵀ = ⎡1  1  1  0⎤
        ⎢0 −1  1  0⎥        ⎢ ½   −½    ½ ⎥         ⎣0  1 −1 −1⎦
        ⎣0  1  0 −1⎦        ⎣ 0    0    1 ⎦

Nested over rows and columns, a 2×2 output tile Y of one filter f comes from
the 4×4 input tile d of each channel c (tiles overlap by two pixels)::

    Y_f = Aᵀ [ Σ_c U_f,c ⊙ V_c ] A,    U_f,c = G W_f,c Gᵀ,    V_c = Bᵀ d_c B

For each of the 16 positions (ξ, ν) of a 4×4 tile, Σ_c is a matrix product
over all tiles of the batch: M_ξν = U_ξν V_ξν (F×C · C×tiles). That is 16
products of F·C·tiles, against the 36 of the direct formula (9 per output
pixel, 4 pixels per tile): 2.25× fewer multiply-adds, paid for with the
transforms Bᵀ d B and Aᵀ M A, a few additions per value. (The layout below
computes (th+1)(tw+1) tiles per image for th·tw used, so the saving here is
2.25·th·tw / ((th+1)(tw+1)): 2.0× for 32×32 outputs, 1.8× for 16×16, 1.4×
for 8×8.)

Gradients are the adjoints of these linear maps (exact, no new approximation):

    δM_ξν = (A δY Aᵀ)_ξν          δU_ξν = Σ_tiles δM_ξν V_ξνᵀ  (F×tiles · tiles×C)
    δW_f,c = Gᵀ δU_f,c G           δX = the same algorithm on δZ (see ``Conv2D``)

The arithmetic differs from the direct sum only in rounding: relative to the
largest value, about 1e-16 in float64 and 3e-7 in float32, comparable with
the direct product's.

Layout. A chunk of n samples is padded (with Ho or Wo odd, one more zero row
or column completes the last tiles, whose extra outputs are dropped) and
stored as four *deinterleaved planes* P[rp, cp] (even or odd rows × even or
odd columns), each C×n×(th+1)×(tw+1) for th×tw tiles per image. Element
(a, b) of tile (ty, tx) is padded pixel (2ty + a, 2tx + b), found in plane
(a mod 2, b mod 2) at (ty + a//2, tx + b//2): a shift of 0 or 1 plane row
and 0 or 1 plane column. With each plane flattened, those shifts are flat
offsets, so every step of d B (the columns) and of Bᵀ (d B) (the rows) is
one whole-array addition or subtraction over contiguous memory. The price:
the plane's last row and column of tiles (ty = th or tx = tw) read across an
edge and are computed for nothing ("extra tiles": dropped in forward, given
δM = 0 in backward, so they add exact zeros). Writing V for the th×tw tiles
only was measured slower: its strided additions cost more than the products save.

``forward`` and ``backward`` at the end are Conv2D's fast CPU path for
``algorithm="winograd"`` (chosen by ``nnlayers.kernels.conv_kernel_for``);
tests/kernels/test_conv_paths.py proves them equal to the readable formulas
of ``nnlayers.layers.conv`` to rounding.
"""
from __future__ import annotations

import numpy as np

from .conv_unfolding import CHUNK_BYTES, layout_for
from .threads import map_chunks, scratch as this_thread_scratch, slices_within

__all__ = ["G", "winograd_fits", "filter_tiles", "filter_gradient", "forward", "backward"]

#: G, the 4×3 filter transform (U = G W Gᵀ); Bᵀ and Aᵀ are applied as the additions they stand for.
G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])

#: Sign of δU_ξν from the unsigned gradient planes of ``_Winograd.gradient_tiles``:
#: A's last row is (0, −1), so δM's row 3 and column 3 are negated copies.
_SIGNS = np.array([1, 1, 1, -1])[:, None] * np.array([1, 1, 1, -1])[None, :]


def winograd_fits(kernel, stride, padding) -> bool:
    """Whether F(2×2, 3×3) computes this geometry: a 3×3 kernel, stride 1 and padding ≤ 2.

    Padding ≤ 2 (= kernel − 1) because δX is computed as the same algorithm
    on δZ padded by 2 − padding.
    """
    return tuple(kernel) == (3, 3) and tuple(stride) == (1, 1) and max(padding) <= 2


def filter_tiles(W: np.ndarray) -> np.ndarray:
    """U = G W Gᵀ for each (f, c): W (F×C×3×3) → U (16×F×C), positions (ξ, ν) row-major."""
    Gd = G.astype(W.dtype)
    U = np.tensordot(np.tensordot(Gd, W, axes=(1, 2)), Gd, axes=(3, 1))   # ξ×F×C×ν
    return np.ascontiguousarray(U.transpose(0, 3, 1, 2)).reshape(16, W.shape[0], W.shape[1])


def filter_gradient(dU: np.ndarray) -> np.ndarray:
    """δW = Gᵀ δU G for each (f, c): δU (16×F×C) → δW (F×C×3×3), the adjoint of ``filter_tiles``."""
    Gd = G.astype(dU.dtype)
    dU = dU.reshape(4, 4, *dU.shape[1:])
    dW = np.tensordot(np.tensordot(Gd, dU, axes=(0, 0)), Gd, axes=(1, 0))  # i×F×C×j
    return dW.transpose(1, 2, 0, 3)


class _Winograd:
    """The tiles of F(2×2, 3×3) for one input shape (N×C×H×W), padding and filter count.

    Tiles of a chunk of n samples are numbered (c or f, sample, ty, tx), th+1 by
    tw+1 per image with the extra tiles (see the module docstring), so each
    of the 16 positions is a C×(n·T) (or F×(n·T)) matrix, T = (th+1)(tw+1).
    Work arrays come from the calling thread's ``Scratch``.
    """

    #: Target size in bytes of one chunk's largest tile array (V: 16 × C × n·T values, or M and
    #: the gradient planes: 16 × F × n·T), the im2col chunks' own target.
    chunk_bytes = CHUNK_BYTES

    #: What these tiles were made for (``conv_unfolding.layout_for`` sets and compares it).
    key = None

    def __init__(self, input_shape, out_channels, padding, dtype):
        N, C, H, W = input_shape
        self.input_shape, self.padding, self.dtype = tuple(input_shape), tuple(padding), np.dtype(dtype)
        self.C, self.F = C, out_channels
        ph, pw = padding
        self.Ho, self.Wo = H + 2 * ph - 2, W + 2 * pw - 2
        self.th, self.tw = -(-self.Ho // 2), -(-self.Wo // 2)
        self.R = self.tw + 1                                        # one plane row, flat
        self.T = (self.th + 1) * self.R                             # tiles per image and channel
        per_sample = 16 * max(C, out_channels) * self.T * self.dtype.itemsize
        self.chunks = slices_within(N, per_sample, self.chunk_bytes)

    def _scratch(self, name: str, shape) -> np.ndarray:
        return this_thread_scratch().array(name, shape, self.dtype)

    def _planes(self, name: str, source: np.ndarray, offset) -> np.ndarray:
        """The four deinterleaved planes of ``source`` (n×K×h×w), each K×n×(th+1)×(tw+1), flat.

        Plane (rp, cp) holds source pixel (2r + rp − oh, 2c + cp − ow) at (r, c), for
        ``offset`` = (oh, ow) (the padding), and 0 where that is outside the source.
        The flat planes run on R + 1 zeros, for the shifted reads of the last tiles.
        """
        n, K, h, w = source.shape
        size = K * n * self.T
        flat = self._scratch(name, (2, 2, size + self.R + 1))
        flat.fill(0)
        planes = flat[:, :, :size].reshape(2, 2, K, n, self.th + 1, self.R)
        for rp in (0, 1):
            r0 = max(0, -(-(offset[0] - rp) // 2))                  # first plane row inside the source
            h0 = 2 * r0 + rp - offset[0]
            for cp in (0, 1):
                c0 = max(0, -(-(offset[1] - cp) // 2))
                w0 = 2 * c0 + cp - offset[1]
                part = source[:, :, h0::2, w0::2]
                planes[rp, cp, :, :, r0:r0 + part.shape[2], c0:c0 + part.shape[3]] = part.transpose(1, 0, 2, 3)
        return flat

    def input_tiles(self, X: np.ndarray, rows: slice) -> np.ndarray:
        """V = Bᵀ d B for every 4×4 tile d of the padded chunk X[rows]: 16×C×(n·T).

        With d₀…d₃ a tile's columns (then its rows), d B (then Bᵀ (d B)) is
        (d₀ − d₂, d₁ + d₂, d₂ − d₁, d₁ − d₃): four additions of whole planes each.
        """
        n = rows.stop - rows.start
        size, R = self.C * n * self.T, self.R
        P = self._planes("wino.P", X[rows], self.padding)
        # Columns first: d_b, column b of every tile, is plane column b//2 (shift 0 or 1)
        # of the even (b = 0, 2) or odd (b = 1, 3) columns.
        half = self._scratch("wino.half", (2, 4, size + R))
        for rp in (0, 1):
            even, odd, s = P[rp, 0], P[rp, 1], size + R
            np.subtract(even[:s], even[1:s + 1], out=half[rp, 0])         # d₀ − d₂
            np.add(odd[:s], even[1:s + 1], out=half[rp, 1])               # d₁ + d₂
            np.subtract(even[1:s + 1], odd[:s], out=half[rp, 2])          # d₂ − d₁
            np.subtract(odd[:s], odd[1:s + 1], out=half[rp, 3])           # d₁ − d₃
        # Then rows: row a of a tile is plane row a//2 (shift 0 or R) of the even or odd rows.
        V = self._scratch("wino.V", (4, 4, size))
        for b in range(4):
            even, odd = half[0, b], half[1, b]
            np.subtract(even[:size], even[R:size + R], out=V[0, b])
            np.add(odd[:size], even[R:size + R], out=V[1, b])
            np.subtract(even[R:size + R], odd[:size], out=V[2, b])
            np.subtract(odd[:size], odd[R:size + R], out=V[3, b])
        return V.reshape(16, self.C, n * self.T)

    def products(self, U: np.ndarray, V: np.ndarray) -> np.ndarray:
        """M_ξν = U_ξν V_ξν for the 16 positions (F×C · C×(n·T) → 16×F×(n·T))."""
        M = self._scratch("wino.M", (16, U.shape[1], V.shape[2]))
        for k in range(16):
            np.matmul(U[k], V[k], out=M[k])
        return M

    def output(self, M: np.ndarray, Z: np.ndarray, rows: slice, b) -> None:
        """Z[rows] = Aᵀ M A (+ b): each tile's 2×2 outputs, the extra tiles dropped.

        With m₀…m₃ a tile's rows (then columns), Aᵀ m = (m₀ + m₁ + m₂, m₁ − m₂ − m₃).
        """
        n, F = rows.stop - rows.start, self.F
        M = M.reshape(4, 4, F * n * self.T)
        half = self._scratch("wino.Mhalf", (2, 4, F * n * self.T))
        for v in range(4):
            np.add(M[0, v], M[1, v], out=half[0, v])
            half[0, v] += M[2, v]
            np.subtract(M[1, v], M[2, v], out=half[1, v])
            half[1, v] -= M[3, v]
        Y = self._scratch("wino.Y", (2, 2, F * n * self.T))
        for a in (0, 1):
            np.add(half[a, 0], half[a, 1], out=Y[a, 0])
            Y[a, 0] += half[a, 2]
            np.subtract(half[a, 1], half[a, 2], out=Y[a, 1])
            Y[a, 1] -= half[a, 3]
        Y = Y.reshape(2, 2, F, n, self.th + 1, self.R)
        out = Z[rows]
        for a in (0, 1):
            for b_ in (0, 1):
                target = out[:, :, a::2, b_::2]                          # output pixels (2ty + a, 2tx + b)
                target[...] = Y[a, b_, :, :, :target.shape[2], :target.shape[3]].transpose(1, 0, 2, 3)
        if b is not None:
            out += b[:, None, None]

    def gradient_tiles(self, dZ: np.ndarray, rows: slice) -> list:
        """δM = A δY Aᵀ for every 2×2 tile δY of δZ[rows], as 16 unsigned F×(n·T) planes.

        With y₀, y₁ a tile's two rows (then columns), A y = (y₀, y₀ + y₁, y₀ − y₁, −y₁);
        the minus of the last is left out here and applied to δU (``_SIGNS``), so
        rows 0 and 3 are δZ's own deinterleaved planes. Extra tiles, and the
        missing outputs of the last tiles when Ho or Wo is odd, get δY = 0.
        """
        n, F = rows.stop - rows.start, self.F
        size = F * n * self.T
        Q = self._planes("wino.Q", dZ[rows], (0, 0))                     # δY's (a, b) entries
        Q = Q[:, :, :size]
        mixed = self._scratch("wino.Qmix", (2, 2, size))                 # rows y₀ + y₁ and y₀ − y₁
        for b_ in (0, 1):
            np.add(Q[0, b_], Q[1, b_], out=mixed[0, b_])
            np.subtract(Q[0, b_], Q[1, b_], out=mixed[1, b_])
        tile_rows = [Q[0], mixed[0], mixed[1], Q[1]]                     # A y over rows, each (column 0, 1)
        cross = self._scratch("wino.Qcross", (4, 2, size))               # then over columns
        planes = []
        for xi, (y0, y1) in enumerate(tile_rows):
            np.add(y0, y1, out=cross[xi, 0])
            np.subtract(y0, y1, out=cross[xi, 1])
            planes += [y0, cross[xi, 0], cross[xi, 1], y1]
        return [plane.reshape(F, n * self.T) for plane in planes]

    def filter_gradient_products(self, planes: list, V: np.ndarray) -> np.ndarray:
        """δU_ξν = ± δM_ξν V_ξνᵀ (F×(n·T) · (n·T)×C), the signs of ``_SIGNS``: 16×F×C."""
        dU = np.empty((16, self.F, self.C), dtype=self.dtype)
        for k, (plane, sign) in enumerate(zip(planes, _SIGNS.ravel())):
            np.matmul(plane, V[k].T, out=dU[k])
            if sign < 0:
                np.negative(dU[k], out=dU[k])
        return dU


# -- Conv2D's path for algorithm="winograd" ---------------------------------------------------------

def forward(layer, X: np.ndarray) -> np.ndarray:
    """Z = Aᵀ [U ⊙ V] A + b, U = G W Gᵀ, V = Bᵀ d B, a chunk of samples at a time; caches X."""
    wino = layout_for(layer, "winograd", _Winograd, X.shape, X.dtype, layer.out_channels, layer.padding)
    layer._X, layer._cols = X, None
    Z = np.empty(layer.output_shape(X.shape), dtype=X.dtype)
    U = filter_tiles(layer.W.data)                                    # 16×F×C
    b = None if layer.b is None else layer.b.data
    map_chunks(lambda rows, _scratch: wino.output(wino.products(U, wino.input_tiles(X, rows)), Z, rows, b),
               wino.chunks)
    return Z


def backward(layer, X: np.ndarray, dZ: np.ndarray):
    """δW = Gᵀ [Σ δM Vᵀ] G with δM = A δZ Aᵀ; δX = W̃ ⋆ δZ (as ``conv_correlate``) by Winograd too.
    δb is the layer's. Returns δX, or None with ``input_grad=False``."""
    wino = layout_for(layer, "winograd", _Winograd, X.shape, X.dtype, layer.out_channels, layer.padding)
    dZ = dZ.astype(X.dtype, copy=False)                               # δX's tiles are made from δZ
    dU = np.zeros((16, layer.out_channels, layer.in_channels), dtype=X.dtype)

    def add(part):                                                    # in chunk order
        dU[...] += part
    map_chunks(lambda rows, _scratch: wino.filter_gradient_products(wino.gradient_tiles(dZ, rows),
                                                                      wino.input_tiles(X, rows)),
               wino.chunks, combine=add)
    layer.W.grad += filter_gradient(dU)
    if not layer.input_grad:
        return None
    (ph, pw), C = layer.padding, layer.in_channels
    # δX = the correlation of δZ, padded by 2 − padding, with W̃_c,f,i,j = W_f,c,2−i,2−j.
    back = layout_for(layer, "back_winograd", _Winograd, dZ.shape, X.dtype, C, (2 - ph, 2 - pw))
    dX = np.empty(X.shape, dtype=X.dtype)
    U = filter_tiles(layer.W.data[:, :, ::-1, ::-1].transpose(1, 0, 2, 3))
    map_chunks(lambda rows, _scratch: back.output(back.products(U, back.input_tiles(dZ, rows)), dX, rows, None),
               back.chunks)
    return dX
