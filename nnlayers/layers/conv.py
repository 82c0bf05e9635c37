"""Two-dimensional convolution as one matrix product per sample: ``im2col``, ``Conv2D``, ``col2im``.

Notation (the derivation's, batch-first): X is N×C×H×W, the weights W are
F×C×kh×kw (F = out_channels), Z is N×F×Ho×Wo with stride (sh, sw) and
zero padding (ph, pw)::

    Zₙ,f,ho,wo = b_f + Σ_c Σ_i Σ_j W_f,c,i,j · Xpadₙ,c,ho·sh+i,wo·sw+j
    Ho = ⌊(H + 2ph − kh) / sh⌋ + 1,   Wo = ⌊(W + 2pw − kw) / sw⌋ + 1

(a cross-correlation, as in every deep-learning library). ``im2col`` copies
each receptive field into a column, so that with K = C·kh·kw and P = Ho·Wo
the whole layer is one matrix product per sample::

    colsₙ : K×P,   W₂ = W as an F×K matrix,   Zₙ = W₂ colsₙ + b   (F×K · K×P → F×P)

and its backward pass two more, plus ``col2im``, the adjoint of ``im2col``,
which adds each column entry back onto the input pixel it was copied from.

Inside ``Conv2D`` the K rows are ordered (i, j, c), kernel offset first, so
that all C rows of one offset (i, j) form one slab, filled by one copy:
colsₙ,(i·kw+j)·C+c,: = Xpadₙ,c,i+sh·:,j+sw·:, and W₂ = W with its axes
ordered F×kh×kw×C. The public ``im2col``/``col2im`` use the usual (c, i, j)
order instead, where W₂ = W.reshape(F, K).

Stride 1 has a faster layout ("flat"): in the padded image flattened row by
row (Hp·Wp values per channel), output pixel q = ho·Wp + wo reads input pixel
q + i·Wp + j, a fixed shift per kernel offset. So each offset's slab is one
contiguous copy of the whole flattened batch, and col2im is one contiguous
``+=`` per offset. The price: Z is computed on the whole Hp×Wp grid, and the
Ho×Wo valid outputs are cut out of it (the other rows and columns read
across an edge and are dropped; in the backward pass they carry δZ = 0).
A layer with ``input_grad=False`` has no col2im to speed up, so it keeps
the plain layout, which needs no cut.
"""
from __future__ import annotations

import numpy as np

from ..init import initial_weights
from ..module import Module, ShapeError, as_float_input
from .._args import flag as _flag, pair as _pair, positive_int as _positive_int, show as _show

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
    Xpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=X.dtype)
    Xpad[:, :, ph:ph + H, pw:pw + W] = X
    return Xpad


def _unfold(X: np.ndarray, kernel, stride, padding) -> np.ndarray:
    """cols[:, i, j] = Xpad[:, :, i + sh·ho, j + sw·wo] for all (ho, wo): N×kh×kw×C×Ho×Wo."""
    (kh, kw), (sh, sw) = kernel, stride
    Xpad = _padded(X, padding)
    N, C, Hp, Wp = Xpad.shape
    Ho, Wo = (Hp - kh) // sh + 1, (Wp - kw) // sw + 1
    cols = np.empty((N, kh, kw, C, Ho, Wo), dtype=X.dtype)
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
    dXpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols6.dtype)
    for i in range(kh):
        for j in range(kw):
            dXpad[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += cols6[:, i, j]
    if not (ph or pw):
        return dXpad
    return dXpad[:, :, ph:ph + H, pw:pw + W].copy()


# -- the flat layout (stride 1): one contiguous copy per kernel offset -----------------------------

def _unfold_flat(X: np.ndarray, kernel, padding) -> np.ndarray:
    """colsₙ,(i·kw+j)·C+c,q = Xflatₙ,c,q+i·Wp+j for every q < Hp·Wp: N×K×(Hp·Wp).

    Xflat is the padded batch flattened; reads past an image's end land in
    the next image (or in a zero tail after the last) and only feed outputs
    that ``Conv2D.forward`` drops.
    """
    (kh, kw), (ph, pw) = kernel, padding
    N, C, H, W = X.shape
    Hp, Wp = H + 2 * ph, W + 2 * pw
    size = N * C * Hp * Wp
    Xflat = np.zeros(size + (kh - 1) * Wp + kw - 1, dtype=X.dtype)
    Xflat[:size].reshape(N, C, Hp, Wp)[:, :, ph:ph + H, pw:pw + W] = X
    cols = np.empty((N, kh, kw, C * Hp * Wp), dtype=X.dtype)
    for i in range(kh):
        for j in range(kw):
            shift = i * Wp + j
            cols[:, i, j] = Xflat[shift:shift + size].reshape(N, C * Hp * Wp)
    return cols.reshape(N, kh * kw * C, Hp * Wp)


def _fold_flat(dcols: np.ndarray, input_shape, kernel, padding) -> np.ndarray:
    """dXflatₙ,c,q+i·Wp+j += dcolsₙ,(i·kw+j)·C+c,q for each offset (i, j), then cut the padding.

    The adjoint of ``_unfold_flat``; the columns of dropped outputs are zero
    (their δZ is zero), so what they add across image edges is zero.
    """
    (kh, kw), (ph, pw) = kernel, padding
    N, C, H, W = input_shape
    Hp, Wp = H + 2 * ph, W + 2 * pw
    size = N * C * Hp * Wp
    dXflat = np.zeros(size + (kh - 1) * Wp + kw - 1, dtype=dcols.dtype)
    slabs = dcols.reshape(N, kh, kw, C * Hp * Wp)
    for i in range(kh):
        for j in range(kw):
            shift = i * Wp + j
            dXflat[shift:shift + size].reshape(N, C * Hp * Wp)[...] += slabs[:, i, j]
    return dXflat[:size].reshape(N, C, Hp, Wp)[:, :, ph:ph + H, pw:pw + W].copy()


class Conv2D(Module):
    """Z = W ⋆ X + b: a 2-D convolution (cross-correlation) of N×C×H×W images with F filters.

    Parameters: W of shape F×C×kh×kw and, with ``bias=True``, b of shape (F,)
    (starting at zero). ``kernel_size``, ``stride`` and ``padding`` take an int
    or an (height, width) pair; padding adds zeros on both sides. Output
    N×F×Ho×Wo with Ho = ⌊(H + 2ph − kh)/sh⌋ + 1 (likewise Wo).
    ``padding="same"`` keeps H×W: for odd kernels at stride 1 it is
    (ph, pw) = (kh//2, kw//2), stored in ``padding`` (``padding_mode`` is then
    ``"same"``, else None).

    Computed as im2col + one matrix product per sample (see the module
    docstring): with K = C·kh·kw, P = Ho·Wo and W₂ = W as an F×K matrix,

        Zₙ = W₂ colsₙ + b        (F×K · K×P → F×P, then reshaped F×Ho×Wo)

    Initialisation (``init``): He normal by default (for ReLU networks), with
    fan_in = C·kh·kw and fan_out = F·kh·kw; ``"xavier"`` or any callable
    ``init(shape, fan_in, fan_out, rng)``. ``rng``: int seed or Generator.
    ``dtype``: of the parameters (float32 halves memory and time).

    ``input_grad=False`` skips δX (backward returns None) for a first layer
    whose input is data: it saves a matrix product and the col2im pass.

    Cache: cols (the unfolded input: N×K×P, or N×K×(Hp·Wp) in the flat layout
    of stride 1), which layout it is, and the input shape.
    """

    cache_names = ("_cols", "_input_shape")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, *, init="he", rng=None, dtype=np.float64, input_grad: bool = True):
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
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.W = self.add_parameter("W", initial_weights(
            init, shape, self.in_channels * kh * kw, self.out_channels * kh * kw, rng, dtype))
        self.b = self.add_parameter("b", np.zeros(self.out_channels, dtype=dtype)) \
            if _flag(bias, "bias", name) else None
        self._cols = None
        self._flat = False
        self._input_shape = None

    def output_shape(self, input_shape) -> tuple:
        """(N, F, Ho, Wo) for an input of shape (N, C, H, W)."""
        N, _, H, W = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (N, self.out_channels, conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw))

    def _W2(self) -> np.ndarray:
        """W₂: W as an F×K matrix with rows ordered (i, j, c)  (F×kh×kw×C, a copy of F·K values)."""
        return self.W.data.transpose(0, 2, 3, 1).reshape(self.out_channels, -1)

    def forward(self, X):
        """Zₙ = W₂ colsₙ + b  (F×K · K×P → F×P, reshaped N×F×Ho×Wo), colsₙ = im2col(Xₙ)."""
        X = as_float_input(self, X, self.W.data.dtype)
        if X.ndim != 4 or X.shape[1] != self.in_channels:
            raise ShapeError(f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), "
                             f"got shape {X.shape}")
        _check_fits(repr(self), X.shape, self.kernel_size, self.padding)
        N, F, Ho, Wo = out_shape = self.output_shape(X.shape)
        # The flat layout makes col2im cheap but costs a crop here: only worth it when δX is
        # wanted, which in eval mode (inference) it is not.
        flat = self.stride == (1, 1) and self.input_grad and self.training
        if flat:
            cols = _unfold_flat(X, self.kernel_size, self.padding)        # N×K×(Hp·Wp)
        else:
            K = self.in_channels * self.kernel_size[0] * self.kernel_size[1]   # explicit: N may be 0
            cols = _unfold(X, self.kernel_size, self.stride, self.padding).reshape(N, K, Ho * Wo)
        Z = np.matmul(self._W2(), cols)                                   # W₂ colsₙ, every n
        if flat:  # keep the Ho×Wo valid outputs of the Hp×Wp grid
            Hp, Wp = Ho + self.kernel_size[0] - 1, Wo + self.kernel_size[1] - 1
            grid = Z.reshape(N, F, Hp, Wp)[:, :, :Ho, :Wo]
            Z = np.empty(out_shape, dtype=Z.dtype)
            if self.b is not None:
                np.add(grid, self.b.data[:, None, None], out=Z)           # + b_f on every pixel
            else:
                Z[...] = grid
        else:
            Z = Z.reshape(out_shape)
            if self.b is not None:
                Z += self.b.data[:, None, None]                           # + b_f on every pixel
        self._cols, self._flat, self._input_shape = cols, flat, X.shape
        return Z

    def backward(self, dZ):
        """With δZₙ the F×P gradient of sample n:

        δW₂ += Σₙ δZₙ colsₙᵀ        (F×P · P×K → F×K, then back to F×C×kh×kw)
        δb  += Σₙ Σₚ δZₙ,:,p          (F)
        δX   = col2im(W₂ᵀ δZₙ)       (K×F · F×P → K×P per sample, folded to N×C×H×W)
        """
        cols = self.forward_cache(self._cols)
        dZ = self.check_grad(dZ, self.output_shape(self._input_shape))
        N, F, Ho, Wo = dZ.shape
        (kh, kw), C = self.kernel_size, self.in_channels
        if self.b is not None:
            self.b.grad += dZ.sum(axis=0).reshape(F, Ho * Wo).sum(axis=1)   # Σₙ first: whole-row adds
        flat = self._flat
        if flat:  # δZ on the Hp×Wp grid: zero at the dropped outputs
            dZ_cols = np.zeros((N, F, Ho + kh - 1, Wo + kw - 1), dtype=dZ.dtype)
            dZ_cols[:, :, :Ho, :Wo] = dZ
            dZ_cols = dZ_cols.reshape(N, F, (Ho + kh - 1) * (Wo + kw - 1))
        else:
            dZ_cols = dZ.reshape(N, F, Ho * Wo)
        dW2 = np.matmul(dZ_cols, cols.transpose(0, 2, 1)).sum(axis=0)   # Σₙ δZₙ colsₙᵀ
        self.W.grad += dW2.reshape(F, kh, kw, C).transpose(0, 3, 1, 2)
        if not self.input_grad:
            return None
        dcols = np.matmul(self._W2().T, dZ_cols)                         # W₂ᵀ δZₙ, every n
        if flat:
            return _fold_flat(dcols, self._input_shape, self.kernel_size, self.padding)
        return _fold(dcols.reshape(N, kh, kw, C, Ho, Wo), self._input_shape, self.stride, self.padding)

    def settings(self) -> dict:
        # padding="same" (issue 9) keeps its name here, as the user wrote it; self.padding is the pair it became.
        padding = "same" if getattr(self, "padding_mode", None) == "same" else self.padding
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride, "padding": padding,
                "bias": self.b is not None, "input_grad": self.input_grad}

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
        return text


def _same_padding(owner: str, kernel_size, stride) -> tuple:
    """(kh//2, kw//2): the padding that keeps H×W, for odd kernels at stride 1 only."""
    kernel, stride = _pair(kernel_size, "kernel_size", owner), _pair(stride, "stride", owner)
    if stride != (1, 1) or kernel[0] % 2 == 0 or kernel[1] % 2 == 0:
        raise ValueError(f"{owner}: padding='same' needs an odd kernel_size and stride 1 (then the "
                         f"padding is kernel_size//2 on each side), got kernel_size={_show(kernel)}, "
                         f"stride={_show(stride)}")
    return kernel[0] // 2, kernel[1] // 2


def _geometry_args(owner: str, kernel_size, stride, padding):
    return (_pair(kernel_size, "kernel_size", owner), _pair(stride, "stride", owner),
            _pair(padding, "padding", owner, minimum=0))


def _check_fits(where: str, shape, kernel, padding) -> None:
    (kh, kw), (ph, pw) = kernel, padding
    H, W = shape[2], shape[3]
    if H + 2 * ph < kh or W + 2 * pw < kw:
        raise ShapeError(f"{where}: kernel {kh}×{kw} is larger than the padded input "
                         f"{H + 2 * ph}×{W + 2 * pw} (input shape {tuple(shape)}, padding {(ph, pw)})")
