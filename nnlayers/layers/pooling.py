"""Pooling over kh×kw windows of N×C×H×W images: ``MaxPool2D`` and ``AvgPool2D``; and
``GlobalAvgPool2D``, the mean over each whole image (N×C×H×W → N×C).

Window (ho, wo) covers rows ho·sh … ho·sh + kh − 1 and columns
wo·sw … wo·sw + kw − 1; the stride defaults to the kernel size, and windows
that would run past the edge are dropped (PyTorch's floor rule, no padding)::

    Ho = ⌊(H − kh) / sh⌋ + 1,   Wo = ⌊(W − kw) / sw⌋ + 1

Both poolings are *separable*: a window's maximum (or sum) is the maximum
(or sum) over its kh rows of each row's maximum (or sum) over kw columns.
So each is computed in two passes, columns then rows, each pass a loop over
the kernel offsets of one strided view per offset: 2·k whole-array
operations instead of k², and no copied window tensor.

In the backward pass, each kernel offset's view hits distinct pixels, so
``+=`` on it is exact; overlapping windows (stride < kernel) add up across
offsets. When stride = kernel (the usual case) nothing overlaps and each
pixel is written exactly once, without zero-filling first.

On numpy arrays ``over_batch`` (``nnlayers.kernels.pooling``) may cut the
batch among lanes of threads; the numbers are the same bits as one call.
"""
from __future__ import annotations

import numpy as np

from ..module import Module, ShapeError, as_float_input
from ..backend import get_array_module
from .._args import pair as _pair, show as _show
from ..kernels.pooling import over_batch

__all__ = ["MaxPool2D", "AvgPool2D", "GlobalAvgPool2D"]


class _Pool2D(Module):
    """Shared geometry and checks of the two poolings."""

    cache_names = ("_input_shape",)

    def __init__(self, kernel_size, stride=None):
        super().__init__()
        name = type(self).__name__
        self.kernel_size = _pair(kernel_size, "kernel_size", name)
        self.stride = self.kernel_size if stride is None else _pair(stride, "stride", name)
        self._input_shape = None

    def output_shape(self, input_shape) -> tuple:
        """(N, C, Ho, Wo) for an input of shape (N, C, H, W)."""
        N, C, H, W = input_shape
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        return N, C, (H - kh) // sh + 1, (W - kw) // sw + 1

    def _checked_input(self, X) -> np.ndarray:
        X = as_float_input(self, X)
        if X.ndim != 4:
            raise ShapeError(f"{self!r}: expected input of shape (N, C, H, W), got shape {X.shape}")
        kh, kw = self.kernel_size
        if X.shape[2] < kh or X.shape[3] < kw:
            raise ShapeError(f"{self!r}: kernel {kh}×{kw} is larger than the input "
                             f"{X.shape[2]}×{X.shape[3]} (input shape {X.shape})")
        return X

    def settings(self) -> dict:
        return {"kernel_size": self.kernel_size, "stride": self.stride}

    def extra_repr(self) -> str:
        settings = self.settings()
        text = f"kernel_size={_show(settings['kernel_size'])}"
        if settings["stride"] != settings["kernel_size"]:
            text += f", stride={_show(settings['stride'])}"
        return text


def _offset_views(A: np.ndarray, axis: int, k: int, s: int, n_out: int):
    """The k strided views A[…, o + s·m, …] (m < n_out) along ``axis``, one per kernel offset o."""
    index = [slice(None)] * A.ndim
    views = []
    for o in range(k):
        index[axis] = slice(o, o + s * (n_out - 1) + 1, s)
        views.append(A[tuple(index)])
    return views


def _max_first(views, nan_aware: bool = False):
    """(M, I): the elementwise maximum over the views and the index of the *first* view holding it.

    Strict ``>`` keeps the earlier offset on ties, as PyTorch does, so the
    gradient of a window goes to one element only. I is uint8, or None for one view.
    M is NaN wherever a view is (``np.maximum`` propagates NaN). With
    ``nan_aware``, I names the *last* view holding a NaN there, as PyTorch's
    rule "take v if v > max or v is NaN" does; without it, I ignores NaNs.
    """
    if len(views) == 1:
        return views[0], None
    greater = np.greater(views[1], views[0])
    if nan_aware:
        greater |= np.isnan(views[1])
    M = np.maximum(views[0], views[1])
    if len(views) == 2:
        return M, greater.view(np.uint8)                # 0 or 1: which of the two is larger
    I = greater.astype(np.uint8)
    for o in range(2, len(views)):
        np.greater(views[o], M, out=greater)
        if nan_aware:
            greater |= np.isnan(views[o])
        np.maximum(M, views[o], out=M)
        np.copyto(I, o, where=greater)
    return M, I


def _scatter(dM, I, target_views, exact_cover: bool) -> None:
    """Send each entry of dM to the view its index I names: target_views[o] (+)= dM ⊙ [I = o]."""
    if I is None:
        if exact_cover:
            target_views[0][...] = dM
        else:
            target_views[0] += dM
        return
    mask = get_array_module(I).empty(I.shape, dtype=np.bool_)
    for o, target in enumerate(target_views):
        np.equal(I, o, out=mask)
        if exact_cover:
            np.multiply(dM, mask, out=target)
        else:
            target += dM * mask


class MaxPool2D(_Pool2D):
    """Z = the maximum of each kh×kw window, per sample and channel (N×C×H×W → N×C×Ho×Wo).

    ``stride`` defaults to ``kernel_size``; both take an int or a pair.

    Gradient: δX gets each window's δZ at the window's *first* maximum in
    row-major order, and nothing elsewhere (as PyTorch). With ties, which are
    common in images with flat backgrounds, exactly one element receives it:
    a mask [X = max] would multiply the gradient by the number of ties.
    A window holding NaN outputs NaN, and its gradient goes to its *last* NaN
    in row-major order, as PyTorch sends it.

    Computed in two passes (see the module docstring): A = the maximum over
    each window's kw columns, with J the column offset of its first maximum;
    then Z = the maximum of A over each window's kh rows, with I the row
    offset. The first row holding the maximum, and the first column within
    it, is the row-major first maximum.

    Cache: I (N×C×Ho×Wo) and J (N×C×H′×Wo), uint8 offsets, and the input shape.
    """

    cache_names = ("_I", "_J", "_input_shape")

    def __init__(self, kernel_size, stride=None):
        super().__init__(kernel_size, stride)
        self._I = self._J = None

    def forward(self, X):
        """Aₙ,c,h,wo = maxⱼ Xₙ,c,h,wo·sw+j;  Zₙ,c,ho,wo = maxᵢ Aₙ,c,ho·sh+i,wo  (first maxima: J, I)."""
        X = self._checked_input(X)
        Z, self._I, self._J = over_batch(self._max_pool, (X,))
        self._input_shape = X.shape
        return Z

    def _max_pool(self, X):
        """(Z, I, J) for the images X: the two passes of ``forward``."""
        N, C, Ho, Wo = self.output_shape(X.shape)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        rows = X[:, :, :sh * (Ho - 1) + kh]                   # rows some window uses
        A, J = _max_first(_offset_views(rows, 3, kw, sw, Wo))
        Z, I = _max_first(_offset_views(A, 2, kh, sh, Ho))
        if Z.size and np.isnan(Z.max()):  # NaN in some window (max propagates it): route δZ to the NaN
            A, J = _max_first(_offset_views(rows, 3, kw, sw, Wo), nan_aware=True)
            Z, I = _max_first(_offset_views(A, 2, kh, sh, Ho), nan_aware=True)
        return (Z if Z.base is None else Z.copy()), I, J      # a 1×1 kernel returns X's own values

    def backward(self, dZ):
        """δAₙ,c,ho·sh+i,wo += δZₙ,c,ho,wo ⊙ [I = i];   δXₙ,c,h,wo·sw+j += δAₙ,c,h,wo ⊙ [J = j]."""
        dZ = self.check_grad(dZ, self.output_shape(self.forward_cache(self._input_shape)))
        dX = get_array_module(dZ).empty(self._input_shape, dtype=dZ.dtype)
        return over_batch(self._route, (dZ, self._I, self._J), dX)

    def _route(self, dZ, I, J, dX):
        """δX (into ``dX``) for the gradients dZ of some images, with their offsets I and J."""
        dA = _pool_buffers(dX, dZ, self.kernel_size, self.stride)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        N, C, Ho, Wo = dZ.shape
        _scatter(dZ, I, _offset_views(dA, 2, kh, sh, Ho), exact_cover=sh == kh)
        rows = dX[:, :, :dA.shape[2]]
        _scatter(dA, J, _offset_views(rows, 3, kw, sw, Wo), exact_cover=sw == kw)
        return dX


class AvgPool2D(_Pool2D):
    """Z = the mean of each kh×kw window, per sample and channel (N×C×H×W → N×C×Ho×Wo).

    ``stride`` defaults to ``kernel_size``; both take an int or a pair.
    Computed in two passes: A = the sum over each window's kw columns, then
    Z = the sum of A over its kh rows, divided by kh·kw.

    Cache: only the input shape (the gradient needs no input values).
    """

    def forward(self, X):
        """Aₙ,c,h,wo = Σⱼ Xₙ,c,h,wo·sw+j;  Zₙ,c,ho,wo = (1/(kh·kw)) Σᵢ Aₙ,c,ho·sh+i,wo."""
        X = self._checked_input(X)
        Z = over_batch(self._average, (X,))
        self._input_shape = X.shape
        return Z

    def _average(self, X):
        N, C, Ho, Wo = self.output_shape(X.shape)
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        A = _sum(_offset_views(X[:, :, :sh * (Ho - 1) + kh], 3, kw, sw, Wo))
        Z = _sum(_offset_views(A, 2, kh, sh, Ho))
        return np.multiply(Z, 1.0 / (kh * kw), dtype=Z.dtype)   # always a fresh array, dtype kept

    def backward(self, dZ):
        """δAₙ,c,ho·sh+i,wo += δZₙ,c,ho,wo / (kh·kw) for each i;   δXₙ,c,h,wo·sw+j += δAₙ,c,h,wo for each j."""
        dZ = self.check_grad(dZ, self.output_shape(self.forward_cache(self._input_shape)))
        dtype = dZ.dtype if dZ.dtype.kind == "f" else np.float64
        return over_batch(self._spread_back, (dZ,), get_array_module(dZ).empty(self._input_shape, dtype=dtype))

    def _spread_back(self, dZ, dX):
        (kh, kw), (sh, sw) = self.kernel_size, self.stride
        dZ = np.multiply(dZ, 1.0 / (kh * kw), dtype=dX.dtype)
        dA = _pool_buffers(dX, dZ, self.kernel_size, self.stride)
        N, C, Ho, Wo = dZ.shape
        for view in _offset_views(dA, 2, kh, sh, Ho):
            if sh == kh:
                view[...] = dZ
            else:
                view += dZ
        rows = dX[:, :, :dA.shape[2]]
        for view in _offset_views(rows, 3, kw, sw, Wo):
            if sw == kw:
                view[...] = dA
            else:
                view += dA
        return dX


class GlobalAvgPool2D(Module):
    """Z = the mean of each channel over the whole image: N×C×H×W → N×C (a ResNet's last pooling).

        Zₙ,c = (1/(H·W)) Σₕ Σ_w Xₙ,c,h,w
        δXₙ,c,h,w = δZₙ,c / (H·W)        (every pixel gets an equal share)

    Cache: only the input shape.
    """

    cache_names = ("_input_shape",)

    def __init__(self):
        super().__init__()
        self._input_shape = None

    def forward(self, X):
        """Zₙ,c = (1/(H·W)) Σₕ,w Xₙ,c,h,w  (N×C×H×W → N×C)."""
        X = as_float_input(self, X)
        if X.ndim != 4:
            raise ShapeError(f"{self!r}: expected input of shape (N, C, H, W), got shape {X.shape}")
        N, C, H, W = self._input_shape = X.shape
        return np.einsum("ncl->nc", X.reshape(N, C, H * W)) * X.dtype.type(1.0 / (H * W))

    def backward(self, dZ):
        """δXₙ,c,h,w = δZₙ,c / (H·W)  (N×C → N×C×H×W)."""
        N, C, H, W = shape = self.forward_cache(self._input_shape)
        dZ = self.check_grad(dZ, (N, C))
        dX = get_array_module(dZ).empty(shape, dtype=dZ.dtype if dZ.dtype.kind == "f" else np.float64)
        np.multiply(dZ[:, :, None, None], 1.0 / (H * W), out=dX, casting="unsafe")  # broadcast over H, W
        return dX


def _sum(views):
    total = views[0].copy() if len(views) == 1 else np.add(views[0], views[1])
    for view in views[2:]:
        total += view
    return total


def _pool_buffers(dX, dZ, kernel, stride):
    """δA (N×C×H′×Wo, the gradient after the row pass, returned) and δX (given), zeroed only where needed.

    H′ = sh·(Ho − 1) + kh rows are used by some window. A buffer needs zeros
    first unless stride = kernel along the pass's axis *and* the windows
    cover every element (then each element is written exactly once).
    """
    N, C, H, W = dX.shape
    (kh, kw), (sh, sw) = kernel, stride
    Ho, Wo = dZ.shape[2], dZ.shape[3]
    used_rows = sh * (Ho - 1) + kh
    xp = get_array_module(dX)
    dA = (xp.empty if sh == kh else xp.zeros)((N, C, used_rows, Wo), dtype=dX.dtype)
    if not (sw == kw and used_rows == H and sw * (Wo - 1) + kw == W):
        dX.fill(0)
    return dA
