"""Losses: separate objects, not layers. ``forward(pred, target)`` returns a Python
float and caches what ``backward()`` needs; ``backward()`` returns δpred = ∂L/∂pred.

``value(pred, target)`` is the same computation with the result left where ``pred``
lives: a float64 scalar on numpy, a 0-d array on a GPU. The Trainer sums these
per batch and converts once per epoch, so a GPU run does not wait for the device
after every batch (``float()`` of a GPU array is such a wait).
"""
from __future__ import annotations

import numpy as np

from .backend import check_same_device, get_array_module, is_array
from .module import ShapeError, as_float_input

__all__ = ["Loss", "EuclideanLoss", "SoftmaxCrossEntropy", "softmax", "log_softmax"]


class Loss:
    """Base class: ``loss(pred, target)`` is ``loss.forward(pred, target)``.

    ``reduction`` says how a batch's per-sample losses combine: ``"sum"`` or
    ``"mean"``. The Trainer uses it to report an epoch's loss in the same
    convention over the whole data set.

    A loss implements ``value`` (or, the older way, ``forward`` alone): ``forward`` is
    ``float(value(pred, target))``. The Trainer calls ``value`` when ``forward`` is this
    base one, and ``forward`` when a subclass overrides it (then every batch converts
    to a float: on a GPU, one wait per batch).
    """

    reduction = "mean"

    def value(self, pred, target):
        """The batch's loss as a float64 scalar on ``pred``'s device (numpy: ``np.float64``; CuPy:
        a 0-d array); caches what ``backward`` needs, as ``forward`` does."""
        if type(self).forward is Loss.forward:
            raise NotImplementedError(f"{type(self).__name__} implements neither value nor forward")
        return self.forward(pred, target)

    def forward(self, pred, target) -> float:
        return float(self.value(pred, target))

    def checked_value(self, pred, target):
        """``value`` for targets that ``check_target`` has already accepted (the Trainer checks all of Y
        before the first step, and its batches are rows of Y): a loss may then skip the checks that
        read the targets' values, each of which waits for the device on a GPU. The shapes are still
        checked. The base class calls ``value``."""
        return self.value(pred, target)

    def backward(self) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def check_target(self, target, sample_shape: tuple) -> None:
        """Raise the error ``forward`` would raise for ``target`` against predictions whose
        samples have shape ``sample_shape``, without computing anything else.

        The Trainer calls it once on all of Y before the first optimizer step, so
        a bad target anywhere is reported by its position in the data set, not
        inside a shuffled batch some epochs later. The base class checks nothing.
        """

    def __call__(self, pred, target) -> float:
        return self.forward(pred, target)

    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def _no_forward_error(self) -> RuntimeError:
        return RuntimeError(f"{self!r}: backward called before forward (nothing cached to differentiate)")


_FLOAT64 = np.dtype(np.float64)


def _float64(total):
    """A sum as float64 where it is (a numpy scalar, or a 0-d array on a GPU): a float32 sum is
    widened exactly, as ``float()`` would, without leaving the device."""
    return total if total.dtype is _FLOAT64 else total.astype(np.float64)


class EuclideanLoss(Loss):
    """L = ½ Σᵢⱼ (Yᵖᵢⱼ − Yᵢⱼ)², pred Yᵖ and target Y of the same shape (N×F).

    Reduction: a **sum** over the batch and the features, halved, and *not*
    divided by N: exactly the derivation's convention, so its worked numbers
    carry over. (Caffe's EuclideanLoss divides by N as well; this one does not.)

    Cache: the difference Yᵖ − Y.
    """

    reduction = "sum"

    def __init__(self):
        self._diff = None

    def value(self, pred, target):
        """L = ½ Σ (Yᵖ − Y)²."""
        if type(pred) is not np.ndarray or pred.dtype.kind != "f":
            pred = as_float_input(self, pred)
        if type(target) is not type(pred) or target.dtype is not pred.dtype:
            target = as_float_input(self, target, pred.dtype)  # δYᵖ keeps the prediction's dtype
            check_same_device(self, pred, target)
        if pred.shape != target.shape:
            raise ShapeError(f"{self!r}: prediction shape {pred.shape} and target shape "
                             f"{target.shape} differ")
        self._diff = diff = pred - target
        return 0.5 * _float64(np.vdot(diff, diff))  # vdot: Σ over every element, no reshaping

    def backward(self) -> np.ndarray:
        """δYᵖ = Yᵖ − Y  (same shape as pred)."""
        if self._diff is None:
            raise self._no_forward_error()
        return self._diff.copy()  # fresh each call: the caller may modify it

    def check_target(self, target, sample_shape: tuple) -> None:
        """Y must be numeric, each sample of the predictions' shape."""
        target = np.asarray(target)
        if target.dtype.kind not in "fiub":
            raise TypeError(f"{self!r}: expected a numeric target, got dtype {target.dtype}")
        if target.shape[1:] != tuple(sample_shape):
            raise ShapeError(f"{self!r}: each prediction has shape {tuple(sample_shape)} but each target has "
                             f"shape {target.shape[1:]}")


def log_softmax(logits, axis: int = -1) -> np.ndarray:
    """log softmax(X)ᵢ = Xᵢ − m − log Σⱼ e^(Xⱼ − m), with m = maxⱼ Xⱼ along ``axis``.

    Subtracting the maximum (log-sum-exp) keeps every exponent ≤ 0, so nothing
    overflows whatever the finite logits (up to ±1.7e308, quietly); the dtype of
    ``logits`` is kept.
    """
    X = as_float_input("log_softmax", logits)
    with np.errstate(over="ignore"):                       # X − m below −1.8e308 is −inf, as it should be
        shifted = X - X.max(axis=axis, keepdims=True)      # X − m  (≤ 0)
    shifted -= np.log(np.exp(shifted).sum(axis=axis, keepdims=True))
    return shifted


def softmax(logits, axis: int = -1) -> np.ndarray:
    """softmax(X)ᵢ = e^(Xᵢ − m) / Σⱼ e^(Xⱼ − m), with m = maxⱼ Xⱼ along ``axis`` (default: last).

    The class probabilities of N×K logits, for predictions; stable for any
    finite logits (see ``log_softmax``). Rows sum to 1.
    """
    X = as_float_input("softmax", logits)
    with np.errstate(over="ignore"):                       # X − m below −1.8e308 is −inf: e^−inf = 0
        E = X - X.max(axis=axis, keepdims=True)
    np.exp(E, out=E)
    E /= E.sum(axis=axis, keepdims=True)
    return E


class SoftmaxCrossEntropy(Loss):
    """Softmax and cross-entropy fused, on logits X (N×K, no softmax layer before it).

    With P = softmax(X) row by row and Y the one-hot rows of the labels::

        L = −(1/N) Σₙ Σₖ Yₙₖ log Pₙₖ = (1/N) Σₙ (log Σₖ e^(Xₙₖ) − Xₙ,yₙ)

    Reduction: the **mean** over the batch (divided by N), summed over the K
    classes, as PyTorch's ``CrossEntropyLoss`` does by default. log Σ e^X is
    computed with the maximum subtracted (log-sum-exp), so any finite logits work,
    without a warning even at ±1.7e308 (where X − m may overflow to −inf: those
    classes get probability 0, exactly what e^(X − m) would round to).

    ``target`` is either N integer labels in [0, K) (integer dtype, or floats
    holding whole numbers), or N×K rows of class probabilities (one-hot or soft;
    each row non-negative and summing to 1).

    Cache: P = softmax(X) and the labels (or the target rows).
    """

    def __init__(self):
        self._P = None
        self._labels = None
        self._Y = None

    def value(self, pred, target):
        """L = (1/N) Σₙ (log Σₖ e^(Xₙₖ) − Xₙ,yₙ), via X − m with m the row maxima."""
        return self._value(pred, target, check_values=True)

    def checked_value(self, pred, target):
        """``value`` without reading the targets' values (labels in range, whole numbers, rows summing to
        1): for targets ``check_target`` accepted; shapes are still checked."""
        return self._value(pred, target, check_values=False)

    def _value(self, pred, target, check_values: bool):
        X = pred if type(pred) is np.ndarray and pred.dtype.kind == "f" else as_float_input(self, pred)
        if X.ndim != 2 or X.shape[0] == 0 or X.shape[1] == 0:  # the mean of no samples is undefined
            raise ShapeError(f"{self!r}: expected logits of shape (N, K) with N, K ≥ 1, got shape {X.shape}")
        N, K = X.shape
        labels, Y = self._read_target(target, N, K, check_values)
        xp = get_array_module(X)
        with np.errstate(over="ignore"):                   # X − m below −1.8e308 is −inf: e^−inf = 0
            shifted = X - X.max(axis=1, keepdims=True)     # X − m, every entry ≤ 0
        E = np.exp(shifted)
        S = E.sum(axis=1)                                  # Σₖ e^(Xₙₖ − m)  (≥ 1)
        log_S = np.log(S)
        if labels is not None:
            picked = shifted[xp.arange(N), labels]         # Xₙ,yₙ − m
            loss = _float64(np.sum(log_S - picked)) / N
        else:  # −Σₖ Yₙₖ log Pₙₖ = Σₖ Yₙₖ (log S − (X − m))ₙₖ, a class with Yₙₖ = 0 adding 0 (not 0·∞)
            terms = np.multiply(Y, log_S[:, None] - shifted, out=xp.zeros(Y.shape, np.result_type(Y, X)),
                                where=Y != 0)
            loss = _float64(np.sum(terms)) / N
        E /= S[:, None]                                    # P = e^(X − m) / S
        self._P, self._labels, self._Y = E, labels, Y
        return loss

    def backward(self) -> np.ndarray:
        """δX = (P − Y) / N  (N×K), with Y the one-hot rows of the labels."""
        P = self._P
        if P is None:
            raise self._no_forward_error()
        N = P.shape[0]
        if self._labels is not None:
            dX = P.copy()
            dX[get_array_module(P).arange(N), self._labels] -= 1
        else:
            dX = np.subtract(P, self._Y, dtype=P.dtype)
        dX *= 1.0 / N
        return dX

    def check_target(self, target, sample_shape: tuple) -> None:
        """N labels in [0, K) or N×K probability rows, K = the logits' columns."""
        target = np.asarray(target)
        if len(sample_shape) != 1 or target.ndim == 0:
            raise ShapeError(f"{self!r}: expected logits of shape (N, K), got samples of shape "
                             f"{tuple(sample_shape)}")
        self._read_target(target, len(target), sample_shape[0])

    def _read_target(self, target, N: int, K: int, check_values: bool = True):
        """(labels, None) for N class indices, (None, Y) for N×K probability rows; else a clear error.
        Without ``check_values`` only the dtype and shape are checked, nothing that reads the values."""
        target = target if is_array(target) else np.asarray(target)
        if target.ndim == 1:
            if target.shape[0] != N:
                raise ShapeError(f"{self!r}: got {N} rows of logits but {target.shape[0]} labels")
            kind = target.dtype.kind
            if kind == "f" and check_values:
                whole = np.isfinite(target) & (target == target.round())
                if not whole.all():
                    at = int(np.argmin(whole))
                    raise ValueError(f"{self!r}: labels must be whole numbers (class indices), "
                                     f"got {target[at].item()!r} at position {at}")
            elif kind not in "iuf":
                raise TypeError(f"{self!r}: labels must be integers (class indices), got dtype {target.dtype}")
            if check_values and N and (target.min() < 0 or target.max() >= K):
                at = int(np.argmax((target < 0) | (target >= K)))
                raise ValueError(f"{self!r}: label {target[at].item()!r} at position {at} out of range for "
                                 f"{K} classes (labels must be in [0, {K - 1}])")
            return target.astype(np.intp, copy=False), None
        if target.ndim == 2 and target.shape == (N, K):
            if target.dtype.kind not in "fiub":
                raise TypeError(f"{self!r}: target rows must be numeric, got dtype {target.dtype}")
            Y = target.astype(np.float64 if target.dtype.kind != "f" else target.dtype, copy=False)
            if check_values and (np.any(Y < 0) or not np.allclose(Y.sum(axis=1), 1.0, rtol=0, atol=1e-6 * K)):
                raise ValueError(f"{self!r}: target rows must be class probabilities (one-hot or soft: "
                                 "non-negative, each row summing to 1)")
            return None, Y
        raise ShapeError(f"{self!r}: expected {N} labels (shape ({N},)) or {N}×{K} target rows "
                         f"(shape ({N}, {K})) for logits of shape ({N}, {K}), got target shape {target.shape}")
