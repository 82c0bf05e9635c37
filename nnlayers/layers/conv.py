"""Two-dimensional convolution as one matrix product per sample: ``im2col``, ``Conv2D``, ``col2im``.

Notation (the derivation's, batch-first): X is N×C×H×W, the weights W are
F×C×kh×kw (F = out_channels), Z is N×F×Ho×Wo with stride (sh, sw) and
zero padding (ph, pw)::

    Zₙ,f,ho,wo = b_f + Σ_c Σ_i Σ_j W_f,c,i,j · Xpadₙ,c,ho·sh+i,wo·sw+j
    Ho = ⌊(H + 2ph − kh) / sh⌋ + 1,   Wo = ⌊(W + 2pw − kw) / sw⌋ + 1

(a cross-correlation, as in every deep-learning library). ``im2col`` copies
each receptive field into a column, so that with K = C·kh·kw and P = Ho·Wo
the whole layer is one matrix product per sample::

    colsₙ : K×P,   W₂ = W reshaped F×K,   Zₙ = W₂ colsₙ + b   (F×K · K×P → F×P)

and its backward pass two more, plus ``col2im`` (the adjoint of ``im2col``:
it adds each column entry back onto the input pixel it was copied from).
"""
from __future__ import annotations

import numpy as np

from ..init import initial_weights
from ..module import Module, ShapeError, as_float_input

__all__ = ["Conv2D", "im2col", "col2im", "conv_output_size"]


def conv_output_size(size: int, kernel: int, stride: int = 1, padding: int = 0) -> int:
    """⌊(size + 2·padding − kernel) / stride⌋ + 1: windows that fit, PyTorch's floor rule."""
    return (size + 2 * padding - kernel) // stride + 1


def im2col(X, kernel_size, stride=1, padding=0) -> np.ndarray:
    """Unfold the receptive fields of X (N×C×H×W) into columns: shape N×K×P, K = C·kh·kw, P = Ho·Wo.

    colsₙ,(c·kh + i)·kw + j, ho·Wo + wo = Xpadₙ,c,ho·sh+i,wo·sw+j, where Xpad is X
    with ``padding`` zeros around H and W. Row order (c, i, j) matches
    W.reshape(F, C·kh·kw), so a convolution is ``W.reshape(F, -1) @ cols``.
    ``kernel_size``, ``stride`` and ``padding`` are ints or (height, width) pairs.
    """
    X = np.asarray(X)
    (kh, kw), (sh, sw), (ph, pw) = (_pair(kernel_size, "kernel_size", "im2col"),
                                    _pair(stride, "stride", "im2col"),
                                    _pair(padding, "padding", "im2col", minimum=0))
    if X.ndim != 4:
        raise ShapeError(f"im2col: expected X of shape (N, C, H, W), got shape {X.shape}")
    N, C, H, W = X.shape
    _check_fits("im2col", X.shape, (kh, kw), (ph, pw))
    Ho, Wo = conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw)
    cols = np.empty((N, C, kh, kw, Ho, Wo), dtype=X.dtype)
    _unfold(_padded(X, ph, pw), cols, (sh, sw))
    return cols.reshape(N, C * kh * kw, Ho * Wo)


def col2im(cols, input_shape, kernel_size, stride=1, padding=0) -> np.ndarray:
    """The adjoint of ``im2col``: add every column entry back onto the pixel it was copied from.

    dXpadₙ,c,ho·sh+i,wo·sw+j += colsₙ,(c·kh + i)·kw + j, ho·Wo + wo, summed over all
    windows that cover a pixel; the padding border is then cut off. ``cols``
    is N×K×P (as ``im2col`` returns); the result has ``input_shape`` (N, C, H, W).
    """
    cols = np.asarray(cols)
    (kh, kw), (sh, sw), (ph, pw) = (_pair(kernel_size, "kernel_size", "col2im"),
                                    _pair(stride, "stride", "col2im"),
                                    _pair(padding, "padding", "col2im", minimum=0))
    N, C, H, W = input_shape
    Ho, Wo = conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw)
    if cols.shape != (N, C * kh * kw, Ho * Wo):
        raise ShapeError(f"col2im: expected cols of shape {(N, C * kh * kw, Ho * Wo)} for input shape "
                         f"{tuple(input_shape)}, got shape {cols.shape}")
    return _fold(cols.reshape(N, C, kh, kw, Ho, Wo), (N, C, H, W), (sh, sw), (ph, pw))


def _padded(X: np.ndarray, ph: int, pw: int) -> np.ndarray:
    """X with ph zero rows above and below, pw zero columns left and right."""
    if not (ph or pw):
        return X
    N, C, H, W = X.shape
    Xpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=X.dtype)
    Xpad[:, :, ph:ph + H, pw:pw + W] = X
    return Xpad


def _unfold(Xpad: np.ndarray, cols: np.ndarray, stride) -> None:
    """cols[:, :, i, j] = Xpad[:, :, i::sh, j::sw] (Ho×Wo of them): one strided copy per kernel offset."""
    sh, sw = stride
    kh, kw, Ho, Wo = cols.shape[2:]
    for i in range(kh):
        for j in range(kw):
            cols[:, :, i, j] = Xpad[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw]


def _fold(cols6: np.ndarray, input_shape, stride, padding) -> np.ndarray:
    """dXpad[:, :, i::sh, j::sw] += cols6[:, :, i, j] for each kernel offset, then crop the padding.

    Within one offset the windows hit distinct pixels, so a plain ``+=`` on the
    strided view is exact; overlaps between offsets add up across the loop.
    """
    (sh, sw), (ph, pw) = stride, padding
    N, C, H, W = input_shape
    kh, kw, Ho, Wo = cols6.shape[2:]
    dXpad = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=cols6.dtype)
    for i in range(kh):
        for j in range(kw):
            dXpad[:, :, i:i + sh * (Ho - 1) + 1:sh, j:j + sw * (Wo - 1) + 1:sw] += cols6[:, :, i, j]
    if not (ph or pw):
        return dXpad
    return dXpad[:, :, ph:ph + H, pw:pw + W].copy()


class Conv2D(Module):
    """Z = W ⋆ X + b: a 2-D convolution (cross-correlation) of N×C×H×W images with F filters.

    Parameters: W of shape F×C×kh×kw and, with ``bias=True``, b of shape (F,)
    (starting at zero). ``kernel_size``, ``stride`` and ``padding`` take an int
    or an (height, width) pair; padding adds zeros on both sides. Output
    N×F×Ho×Wo with Ho = ⌊(H + 2ph − kh)/sh⌋ + 1 (likewise Wo).

    Computed as im2col + one matrix product per sample (see the module
    docstring): with K = C·kh·kw, P = Ho·Wo and W₂ = W reshaped F×K,

        Zₙ = W₂ colsₙ + b        (F×K · K×P → F×P, then reshaped F×Ho×Wo)

    Initialisation (``init``): He normal by default (for ReLU networks), with
    fan_in = C·kh·kw and fan_out = F·kh·kw; ``"xavier"`` or any callable
    ``init(shape, fan_in, fan_out, rng)``. ``rng``: int seed or Generator.

    ``input_grad=False`` skips δX (backward returns None) for a first layer
    whose input is data: it saves a matrix product and the col2im pass.

    Cache: cols (the unfolded input, N×K×P) and the input shape.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, *, init="he", rng=None, dtype=np.float64, input_grad: bool = True):
        super().__init__()
        name = type(self).__name__
        self.in_channels = _positive_int(in_channels, "in_channels", name)
        self.out_channels = _positive_int(out_channels, "out_channels", name)
        self.kernel_size = _pair(kernel_size, "kernel_size", name)
        self.stride = _pair(stride, "stride", name)
        self.padding = _pair(padding, "padding", name, minimum=0)
        self.input_grad = bool(input_grad)
        kh, kw = self.kernel_size
        shape = (self.out_channels, self.in_channels, kh, kw)
        self.W = self.add_parameter("W", initial_weights(
            init, shape, self.in_channels * kh * kw, self.out_channels * kh * kw, rng, dtype))
        self.b = self.add_parameter("b", np.zeros(self.out_channels, dtype=dtype)) if bias else None
        self._cols = None
        self._input_shape = None

    def output_shape(self, input_shape) -> tuple:
        """(N, F, Ho, Wo) for an input of shape (N, C, H, W)."""
        N, _, H, W = input_shape
        (kh, kw), (sh, sw), (ph, pw) = self.kernel_size, self.stride, self.padding
        return (N, self.out_channels, conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw))

    def forward(self, X):
        """Zₙ = W₂ colsₙ + b  (F×K · K×P → F×P, reshaped N×F×Ho×Wo), colsₙ = im2col(Xₙ)."""
        X = as_float_input(self, X, self.W.data.dtype)
        if X.ndim != 4 or X.shape[1] != self.in_channels:
            raise ShapeError(f"{self!r}: expected input of shape (N, {self.in_channels}, H, W), "
                             f"got shape {X.shape}")
        _check_fits(repr(self), X.shape, self.kernel_size, self.padding)
        N = X.shape[0]
        _, F, Ho, Wo = out_shape = self.output_shape(X.shape)
        kh, kw = self.kernel_size
        cols = np.empty((N, self.in_channels, kh, kw, Ho, Wo), dtype=X.dtype)
        _unfold(_padded(X, *self.padding), cols, self.stride)
        cols = cols.reshape(N, -1, Ho * Wo)                       # N×K×P
        Z = np.matmul(self.W.data.reshape(F, -1), cols)           # Zₙ = W₂ colsₙ   (N×F×P)
        if self.b is not None:
            Z += self.b.data[:, None]                              # + b_f on every pixel
        self._cols, self._input_shape = cols, X.shape
        return Z.reshape(out_shape)

    def backward(self, dZ):
        """With δZₙ the F×P gradient of sample n:

        δW₂ += Σₙ δZₙ colsₙᵀ        (F×P · P×K → F×K, reshaped F×C×kh×kw)
        δb  += Σₙ Σₚ δZₙ,:,p          (F)
        δX   = col2im(W₂ᵀ δZₙ)       (K×F · F×P → K×P per sample, folded to N×C×H×W)
        """
        cols = self._cols
        if cols is None:
            raise self._no_forward_error()
        N, K, P = cols.shape
        F = self.out_channels
        dZ = self._check_grad_shape(dZ, self.output_shape(self._input_shape))
        dZ3 = dZ.reshape(N, F, P)
        W2 = self.W.data.reshape(F, K)
        self.W.grad += np.matmul(dZ3, cols.transpose(0, 2, 1)).sum(axis=0).reshape(self.W.shape)
        if self.b is not None:
            self.b.grad += dZ3.sum(axis=2).sum(axis=0)
        if not self.input_grad:
            return None
        dcols = np.matmul(W2.T, dZ3)                               # W₂ᵀ δZₙ   (N×K×P)
        kh, kw = self.kernel_size
        _, _, Ho, Wo = dZ.shape
        return _fold(dcols.reshape(N, self.in_channels, kh, kw, Ho, Wo), self._input_shape,
                     self.stride, self.padding)

    def extra_repr(self) -> str:
        text = (f"{self.in_channels}, {self.out_channels}, kernel_size={_show(self.kernel_size)}, "
                f"stride={_show(self.stride)}, padding={_show(self.padding)}")
        if self.b is None:
            text += ", bias=False"
        if not self.input_grad:
            text += ", input_grad=False"
        return text


def _check_fits(where: str, shape, kernel, padding) -> None:
    (kh, kw), (ph, pw) = kernel, padding
    H, W = shape[2], shape[3]
    if H + 2 * ph < kh or W + 2 * pw < kw:
        raise ShapeError(f"{where}: kernel {kh}×{kw} is larger than the padded input "
                         f"{H + 2 * ph}×{W + 2 * pw} (input shape {tuple(shape)}, padding {ph, pw})")


def _pair(value, name: str, owner: str, minimum: int = 1) -> tuple[int, int]:
    """An int or a pair of ints, each ≥ ``minimum``, as a (height, width) tuple."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(_is_int(v) and v >= minimum for v in items):
        kind = "positive integer" if minimum == 1 else f"integer ≥ {minimum}"
        raise ValueError(f"{owner}: {name} must be a {kind} or a pair of them, got {value!r}")
    return int(items[0]), int(items[1])


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _positive_int(value, name: str, owner: str) -> int:
    if not _is_int(value) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def _show(pair) -> str:
    """3 for (3, 3), else (3, 5): as short as the user would write it."""
    return str(pair[0]) if pair[0] == pair[1] else str(pair)
