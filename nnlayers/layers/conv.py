"""Two-dimensional convolution as one matrix product: ``im2col``, ``Conv2D``, ``col2im``.

Notation (the derivation's, batch-first): X is N×C×H×W, W is F×C×kh×kw, Z is
N×F×Ho×Wo, with stride (sh, sw) and zero padding (ph, pw); a cross-correlation,
as in every deep-learning library::

    Zₙ,f,ho,wo = b_f + Σ_c Σ_i Σ_j W_f,c,i,j · Xpadₙ,c,ho·sh+i,wo·sw+j
    Ho = ⌊(H + 2ph − kh) / sh⌋ + 1,   Wo = ⌊(W + 2pw − kw) / sw⌋ + 1

``im2col`` copies each receptive field of sample n into a column of colsₙ
(K×P, K = C·kh·kw, P = Ho·Wo). With W₂ = W reshaped F×K the layer is one
matrix product per sample, and its backward pass two more plus ``col2im``,
the adjoint of ``im2col`` (each column entry added back onto its pixel)::

    Zₙ = W₂ colsₙ + b        δW₂ += Σₙ δZₙ colsₙᵀ        δb += Σₙ Σₚ δZₙ,:,p        δXₙ = col2im(W₂ᵀ δZₙ)

``Conv2D.forward``/``backward`` are these lines. On numpy arrays the same
products go to a fast CPU kernel (``nnlayers.kernels``), proven equal by tests.
"""
from __future__ import annotations

import warnings

import numpy as np

from ..init import initial_weights
from ..module import Module, ShapeError
from ..backend import get_array_module
from ..kernels import check_algorithm, conv_kernel_for
from .._args import flag as _flag, pair as _pair, positive_int as _positive_int, show as _show

__all__ = ["Conv2D", "im2col", "col2im", "conv_output_size"]


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """⌊(size + 2·padding − kernel) / stride⌋ + 1: the windows that fit (PyTorch's floor rule)."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(X, kernel_size, stride=1, padding=0):
    """Unfold the receptive fields of X (N×C×H×W) into columns: shape N×K×P, K = C·kh·kw, P = Ho·Wo.

    colsₙ,(c·kh + i)·kw + j, ho·Wo + wo = Xpadₙ,c,ho·sh+i,wo·sw+j, where Xpad is X
    with ``padding`` zeros around H and W. Row order (c, i, j) matches
    W.reshape(F, C·kh·kw), so a convolution is ``W.reshape(F, -1) @ cols``.
    ``kernel_size``, ``stride`` and ``padding`` are ints or (height, width) pairs.
    """
    xp = get_array_module(X)
    X = xp.asarray(X)
    (kh, kw), (sh, sw), padding = _geometry_args("im2col", kernel_size, stride, padding)
    if X.ndim != 4:
        raise ShapeError(f"im2col: expected X of shape (N, C, H, W), got shape {X.shape}")
    _check_fits("im2col", X.shape, (kh, kw), padding)
    (N, C, H, W), (ph, pw) = X.shape, padding
    Ho, Wo = conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw)
    Xpad = X
    if ph or pw:                                                     # X inside a border of zeros
        Xpad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=X.dtype)
        Xpad[:, :, ph:ph + H, pw:pw + W] = X
    cols = xp.empty((N, C, kh, kw, Ho, Wo), dtype=X.dtype)
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = Xpad[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw]
    return cols.reshape(N, C * kh * kw, Ho * Wo)


def col2im(cols, input_shape, kernel_size, stride=1, padding=0):
    """The adjoint of ``im2col``: add every column entry back onto the pixel it was copied from.

    dXpadₙ,c,ho·sh+i,wo·sw+j += colsₙ,(c·kh + i)·kw + j, ho·Wo + wo, summed over all
    windows that cover a pixel (the offsets (i, j) add up; within one they hit
    distinct pixels), then the border is cut off. ``cols`` is N×K×P (as
    ``im2col`` returns); the result has ``input_shape`` (N, C, H, W).
    """
    xp = get_array_module(cols)
    cols = xp.asarray(cols)
    (kh, kw), (sh, sw), (ph, pw) = _geometry_args("col2im", kernel_size, stride, padding)
    N, C, H, W = input_shape
    Ho, Wo = conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw)
    if cols.shape != (N, C * kh * kw, Ho * Wo):
        raise ShapeError(f"col2im: expected cols of shape {(N, C * kh * kw, Ho * Wo)} for input shape "
                         f"{tuple(input_shape)}, got shape {cols.shape}")
    cols = cols.reshape(N, C, kh, kw, Ho, Wo)
    dXpad = xp.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols.dtype)
    for i in range(kh):
        for j in range(kw):
            dXpad[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += cols[:, :, i, j]
    return dXpad[:, :, ph:ph + H, pw:pw + W].copy() if ph or pw else dXpad


class Conv2D(Module):
    """Z = W ⋆ X + b: a 2-D convolution (cross-correlation) of N×C×H×W images with F filters.

    Parameters: W (F×C×kh×kw) and, with ``bias=True``, b (F,), starting at zero.
    ``kernel_size``, ``stride`` and ``padding`` (zeros on both sides) take an int
    or an (height, width) pair. ``padding="same"`` keeps H×W for odd kernels at
    stride 1: ``padding`` is then (kh//2, kw//2) and ``same_padding`` True
    (``padding_mode``, its former name, is deprecated).

    With K = C·kh·kw, P = Ho·Wo, W₂ = W as an F×K matrix and colsₙ = im2col(Xₙ)::

        Zₙ = W₂ colsₙ + b           (F×K · K×P → F×P, arranged F×Ho×Wo)
        δW₂ += Σₙ δZₙ colsₙᵀ        (F×P · P×K → F×K, back to F×C×kh×kw)
        δb  += Σₙ Σₚ δZₙ,:,p         (F)
        δXₙ  = col2im(W₂ᵀ δZₙ)       (K×F · F×P → K×P, folded onto C×H×W)

    ``forward``/``backward`` compute these lines with the input's array module (numpy,
    or CuPy on a GPU). On numpy arrays ``conv_kernel_for`` hands them to a fast CPU
    kernel (``nnlayers.kernels``; lanes with ``NNLAYERS_NUM_THREADS``), proven equal
    to them by tests; ``backward`` takes the path its forward took.

    ``init``: He normal (the default), ``"xavier"`` or any ``init(shape, fan_in, fan_out, rng)``,
    fan_in = C·kh·kw, fan_out = F·kh·kw; ``rng``: seed or Generator; ``dtype``: the parameters'.
    ``input_grad=False`` skips δX (backward returns None), for a first layer on data.
    ``algorithm``: ``"gemm"`` (the default), the products above; ``"winograd"``,
    Winograd's F(2×2, 3×3) on the CPU (``nnlayers.kernels.winograd``; 3×3
    kernels, stride 1, padding ≤ 2): the same sums in fewer multiply-adds,
    rounded differently (about 1e-16 of the largest value in float64, 3e-7 in
    float32). Not chosen automatically: whether it pays depends on the BLAS
    kernel and thread count (docs/speed.rst). A GPU takes the products.

    Cache: X and cols (the fast kernel: X, and the columns of small layers in training).
    """

    cache_names = ("_X", "_cols")

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, *, init="he", rng=None, dtype=np.float64, input_grad: bool = True,
                 algorithm: str = "gemm"):
        super().__init__()
        name = type(self).__name__
        self.in_channels = _positive_int(in_channels, "in_channels", name)
        self.out_channels = _positive_int(out_channels, "out_channels", name)
        self.same_padding = isinstance(padding, str)
        if self.same_padding:
            if padding != "same":
                raise ValueError(f"{name}: padding must be 'same', an integer ≥ 0 or a pair of them, "
                                 f"got {padding!r}")
            padding = _padding_for_same(name, kernel_size, stride)
        self.kernel_size, self.stride, self.padding = _geometry_args(name, kernel_size, stride, padding)
        self.input_grad = _flag(input_grad, "input_grad", name)
        self.algorithm = algorithm
        check_algorithm(self)
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.W = self.add_parameter("W", initial_weights(
            init, shape, self.in_channels * kh * kw, self.out_channels * kh * kw, rng, dtype))
        self.b = self.add_parameter("b", np.zeros(self.out_channels, dtype=dtype)) \
            if _flag(bias, "bias", name) else None
        self._X = self._cols = None          # the forward cache
        self._kernel, self._layouts = None, {}   # the fast kernel forward took, or None; its work layouts

    def output_shape(self, input_shape) -> tuple:
        """(N, F, Ho, Wo) for an input of shape (N, C, H, W)."""
        N, _, H, W = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (N, self.out_channels, conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw))

    def forward(self, X):
        """Zₙ = W₂ colsₙ + b with colsₙ = im2col(Xₙ)  (N×C×H×W → N×F×Ho×Wo)."""
        X = self._checked_input(X)
        self._kernel = conv_kernel_for(self, X)                          # numpy: a fast CPU kernel, else None
        if self._kernel is not None:
            return self._kernel.forward(self, X)
        cols = im2col(X, self.kernel_size, self.stride, self.padding)    # N×K×P
        Z = self.W.data.reshape(self.out_channels, -1) @ cols            # W₂ colsₙ for every n: N×F×P
        if self.b is not None:
            Z += self.b.data[:, None]
        self._X, self._cols = X, cols
        return Z.reshape(self.output_shape(X.shape))

    def backward(self, dZ):
        """δW₂ += Σₙ δZₙ colsₙᵀ;  δb += Σₙ Σₚ δZₙ,:,p;  δXₙ = col2im(W₂ᵀ δZₙ) (None if not input_grad)."""
        X, dZ = self._checked_gradient(dZ)
        N, F, Ho, Wo = dZ.shape
        if self.b is not None:
            self.b.grad += dZ.sum(axis=0).reshape(F, Ho * Wo).sum(axis=1)    # Σₙ first: whole-row adds
        if self._kernel is not None:
            return self._kernel.backward(self, X, dZ)
        dZ, W2 = dZ.reshape(N, F, Ho * Wo).astype(X.dtype, copy=False), self.W.data.reshape(F, -1)  # δZₙ: F×P
        self.W.grad += (dZ @ self._cols.transpose(0, 2, 1)).sum(axis=0).reshape(self.W.shape)
        if not self.input_grad:
            return None
        return col2im(W2.T @ dZ, X.shape, self.kernel_size, self.stride, self.padding)

    def _checked_input(self, X):
        """X as a float array of the layer's dtype and device, of shape (N, C, H, W) with the kernel fitting."""
        X = self.float_input(X, self.W.data.dtype, like=self.W.data)
        check_algorithm(self)
        if X.ndim != 4 or X.shape[1] != self.in_channels:
            raise ShapeError(f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), "
                             f"got shape {X.shape}")
        _check_fits(repr(self), X.shape, self.kernel_size, self.padding)
        return X

    def _checked_gradient(self, dZ):
        """(X, δZ): forward's input and δZ of forward's output shape, checked before any gradient is added."""
        X = self.forward_cache(self._X)
        dZ = self.check_grad(dZ, self.output_shape(X.shape))
        check_algorithm(self)
        return X, dZ

    @property
    def padding_mode(self):
        """Deprecated (PyTorch's ``padding_mode`` is the fill mode): "same" if ``same_padding``, else None."""
        warnings.warn("Conv2D.padding_mode is deprecated: read same_padding (True when padding='same' "
                      "was asked for)", DeprecationWarning, stacklevel=2)
        return "same" if self.same_padding else None

    @padding_mode.setter
    def padding_mode(self, value):
        warnings.warn("Conv2D.padding_mode is deprecated: set same_padding", DeprecationWarning, stacklevel=2)
        self.same_padding = value == "same"

    def settings(self) -> dict:
        # padding="same" keeps its name here, as the user wrote it; self.padding is the pair it became.
        return {"in_channels": self.in_channels, "out_channels": self.out_channels,
                "kernel_size": self.kernel_size, "stride": self.stride,
                "padding": "same" if self.same_padding else self.padding, "bias": self.b is not None,
                "input_grad": self.input_grad, "algorithm": self.algorithm, "dtype": self.W.data.dtype.name}

    def extra_repr(self) -> str:
        s = self.settings()
        padding = repr(s["padding"]) if isinstance(s["padding"], str) else _show(s["padding"])
        text = (f"{s['in_channels']}, {s['out_channels']}, kernel_size={_show(s['kernel_size'])}, "
                f"stride={_show(s['stride'])}, padding={padding}")
        text += ("" if s["bias"] else ", bias=False") + ("" if s["input_grad"] else ", input_grad=False")
        return text + ("" if s["algorithm"] == "gemm" else f", algorithm={s['algorithm']!r}")


def _padding_for_same(owner: str, kernel_size, stride) -> tuple:
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
    (kh, kw), (ph, pw), (H, W) = kernel, padding, shape[2:4]
    if H + 2 * ph < kh or W + 2 * pw < kw:
        raise ShapeError(f"{where}: kernel {kh}×{kw} is larger than the padded input "
                         f"{H + 2 * ph}×{W + 2 * pw} (input shape {tuple(shape)}, padding {(ph, pw)})")
