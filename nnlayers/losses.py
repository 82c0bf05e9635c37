"""Losses: separate objects, not layers. ``forward(pred, target)`` returns a Python
float and caches what ``backward()`` needs; ``backward()`` returns δpred = ∂L/∂pred.

``value(pred, target)`` is the same computation with the result left where ``pred``
lives: a float64 scalar on numpy, a 0-d array on a GPU. The Trainer sums these
per batch and converts once per epoch, so a GPU run does not wait for the device
after every batch (``float()`` of a GPU array is such a wait).
"""
from __future__ import annotations

import math

import numpy as np

from ._args import _is_int
from .backend import check_same_device, get_array_module, is_array
from .module import ShapeError, as_float_input

__all__ = ["Loss", "EuclideanLoss", "SoftmaxCrossEntropy", "softmax", "log_softmax", "perplexity"]


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
    """Softmax and cross-entropy fused, on scores (logits) Z whose **last** axis holds the V classes
    (no softmax layer before it): N×V for one label per sample, N×T×V (or any N×…×V) for one label
    per position of a sequence.

    Each position k of Z (a row Z_k of V scores) has a label y_k; with P_k = softmax(Z_k) and
    M the number of labels counted (all of them, less those equal to ``ignore_index``)::

        L   = −(1/M) Σ_k log P_k,y_k = (1/M) Σ_k (log Σ_v e^(Z_k,v) − Z_k,y_k)
        δZ_k = (P_k − onehot(y_k)) / M            (δZ_k = 0 where y_k is ignored)

    Shapes: Z (N, V) or (N, …, V); the labels Z's shape without its last axis, (N,) or (N, …);
    δZ the shape of Z. Reduction: the **mean** over the labels counted (M = N for N×V, N·T for
    N×T×V), summed over the V classes: PyTorch's ``cross_entropy`` (``reduction="mean"``) with the
    classes moved to axis 1 (Z as N×V×T). log Σ e^Z is computed with the row's maximum subtracted
    (log-sum-exp), once over the last axis, so any finite scores work, without a warning even at
    ±1.7e308 (where Z − m may overflow to −inf: those classes get probability 0, exactly what
    e^(Z − m) would round to).

    ``target`` is either integer labels in [0, V) of Z's shape without its last axis (integer
    dtype, or floats holding whole numbers), or rows of class probabilities of Z's own shape
    (one-hot or soft; each row non-negative and summing to 1; then M counts every row).

    ``ignore_index`` (None, or an integer such as PyTorch's −100): labels equal to it (padding)
    add neither loss nor gradient and are left out of M; other labels outside [0, V) are errors.
    It applies to labels only (probability rows: ValueError). A batch whose labels are *all*
    ignored has M = 0: L = 0 and δZ = 0, so it trains nothing (PyTorch's mean is then 0/0 = nan,
    which the Trainer would take for a diverging loss).

    In the Trainer, batch losses are weighted by their samples (sequences, N), so an epoch's loss
    is the mean over sequences of each batch's mean per label: exactly the mean per label over the
    set when every sequence counts the same number of labels (equal-length text windows, nothing
    ignored), a per-sequence-weighted mean otherwise.

    Cache: P = softmax(Z) as one row per position, the labels flattened (ignored ones replaced
    by 0) with each row's weight in δZ (1/M, or 0 where ignored), or the target rows.
    """

    def __init__(self, ignore_index: int | None = None):
        if ignore_index is not None and not _is_int(ignore_index):
            raise TypeError(f"SoftmaxCrossEntropy: ignore_index must be an integer (a label to skip, e.g. -100) "
                            f"or None, got {ignore_index!r} ({type(ignore_index).__name__})")
        self.ignore_index = None if ignore_index is None else int(ignore_index)
        self._P = self._labels = self._weights = self._Y = self._M = self._shape = None

    def extra_repr(self) -> str:
        return "" if self.ignore_index is None else f"ignore_index={self.ignore_index}"

    def value(self, pred, target):
        """L = (1/M) Σ_k (log Σ_v e^(Z_k,v) − Z_k,y_k), via Z − m with m each row's maximum."""
        return self._value(pred, target, check_values=True)

    def checked_value(self, pred, target):
        """``value`` without reading the targets' values (labels in range, whole numbers, rows summing to
        1): for targets ``check_target`` accepted; shapes are still checked."""
        return self._value(pred, target, check_values=False)

    def _value(self, pred, target, check_values: bool):
        Z = pred if type(pred) is np.ndarray and pred.dtype.kind == "f" else as_float_input(self, pred)
        if Z.ndim < 2 or Z.size == 0:                        # the mean of no labels is undefined
            raise ShapeError(f"{self!r}: expected scores of shape (N, V) or (N, …, V) (classes on the last axis), "
                             f"every dimension ≥ 1, got shape {Z.shape}")
        labels, Y = self._read_target(target, Z.shape, check_values)
        xp = get_array_module(Z)
        shape, Z = Z.shape, Z.reshape(-1, Z.shape[-1])     # one row Z_k per position k
        with np.errstate(over="ignore"):                   # Z − m below −1.8e308 is −inf: e^−inf = 0
            shifted = Z - Z.max(axis=1, keepdims=True)     # Z − m, every entry ≤ 0
        E = np.exp(shifted)
        S = E.sum(axis=1)                                  # Σ_v e^(Z_k,v − m)  (≥ 1)
        log_S = np.log(S)
        weights = None
        if labels is not None:
            if self.ignore_index is None:
                M = len(labels)
                terms = log_S - shifted[xp.arange(len(labels)), labels]      # −log P_k,y_k
                weights = xp.full(M, 1.0 / M, dtype=Z.dtype)
            else:
                kept = labels != self.ignore_index
                labels = xp.where(kept, labels, 0)        # ignored rows pick class 0, weighted 0 below
                M = xp.maximum(kept.sum(), 1)              # all ignored: L = 0/1, δZ = 0 (no branch, no wait)
                terms = xp.where(kept, log_S - shifted[xp.arange(len(labels)), labels], 0)
                weights = kept.astype(Z.dtype) / M.astype(Z.dtype)
        else:  # −Σ_v Y_k,v log P_k,v = Σ_v Y_k,v (log S − (Z − m))_k,v, a class with Y = 0 adding 0 (not 0·∞)
            Y = Y.reshape(Z.shape)
            M = len(Y)
            terms = np.multiply(Y, log_S[:, None] - shifted, out=xp.zeros(Y.shape, np.result_type(Y, Z)),
                                where=Y != 0)
        E /= S[:, None]                                    # P = e^(Z − m) / S
        self._P, self._labels, self._Y, self._weights, self._M, self._shape = E, labels, Y, weights, M, shape
        return _float64(np.sum(terms)) / M

    def backward(self) -> np.ndarray:
        """δZ_k = (P_k − onehot(y_k)) / M, 0 where y_k is ignored  (the shape of Z)."""
        P = self._P
        if P is None:
            raise self._no_forward_error()
        if self._labels is None:                           # probability rows: δZ = (P − Y) / M
            dZ = np.subtract(P, self._Y, dtype=P.dtype)
            dZ *= 1.0 / self._M
        else:
            w = self._weights                              # per row: 1/M, or 0 where the label is ignored
            dZ = P * w[:, None]                            # P_k / M
            dZ[get_array_module(P).arange(len(P)), self._labels] -= w   # − onehot(y_k) / M
        return dZ.reshape(self._shape)

    def check_target(self, target, sample_shape: tuple) -> None:
        """Labels of the samples' shape without the class axis ((N,) for N×V scores, (N, T) for
        N×T×V), in [0, V) or equal to ``ignore_index``; or probability rows of the scores' shape.
        The first bad label is named by its position in ``target``."""
        target = target if is_array(target) else np.asarray(target)
        if len(sample_shape) < 1 or target.ndim == 0:
            raise ShapeError(f"{self!r}: expected scores of shape (N, V) or (N, …, V), got samples of shape "
                             f"{tuple(sample_shape)}")
        self._read_target(target, (len(target),) + tuple(sample_shape))

    def _read_target(self, target, shape: tuple, check_values: bool = True):
        """(labels flattened, None) for class indices of shape ``shape[:-1]``, (None, Y) for probability
        rows of ``shape``; else a clear error. Without ``check_values`` only the dtype and shape are
        checked, nothing that reads the values."""
        target = target if is_array(target) else np.asarray(target)
        lead, V = tuple(shape[:-1]), shape[-1]
        if target.ndim == len(lead):
            if target.shape != lead:
                if len(lead) == 1:
                    raise ShapeError(f"{self!r}: got {lead[0]} rows of logits but {target.shape[0]} labels")
                raise self._target_shape_error(target, shape)
            kind = target.dtype.kind
            if kind not in "iuf":
                raise TypeError(f"{self!r}: labels must be integers (class indices), got dtype {target.dtype}")
            if check_values:
                if kind == "f":
                    whole = np.isfinite(target) & (target == target.round())
                    if not whole.all():
                        at = _position(np.argmin(whole), lead)
                        raise ValueError(f"{self!r}: labels must be whole numbers (class indices), "
                                         f"got {target[at].item()!r} at position {_shown(at)}")
                bad = (target < 0) | (target >= V)
                if self.ignore_index is not None:
                    bad &= target != self.ignore_index
                if bad.any():
                    at = _position(np.argmax(bad), lead)
                    also = "" if self.ignore_index is None else f", or ignore_index={self.ignore_index}"
                    raise ValueError(f"{self!r}: label {target[at].item()!r} at position {_shown(at)} out of range "
                                     f"for {V} classes (labels must be in [0, {V - 1}]{also})")
            return target.astype(np.intp, copy=False).reshape(-1), None
        if target.ndim == len(shape) and target.shape == tuple(shape):
            if target.dtype.kind not in "fiub":
                raise TypeError(f"{self!r}: target rows must be numeric, got dtype {target.dtype}")
            if self.ignore_index is not None:
                raise ValueError(f"{self!r}: ignore_index applies to class labels, not to rows of class "
                                 f"probabilities (target of the scores' shape {target.shape}); give labels of "
                                 f"shape {lead}, or drop ignore_index")
            Y = target.astype(np.float64 if target.dtype.kind != "f" else target.dtype, copy=False)
            if check_values and (np.any(Y < 0) or not np.allclose(Y.sum(axis=-1), 1.0, rtol=0, atol=1e-6 * V)):
                raise ValueError(f"{self!r}: target rows must be class probabilities (one-hot or soft: "
                                 "non-negative, each row summing to 1)")
            return None, Y
        raise self._target_shape_error(target, shape)

    def _target_shape_error(self, target, shape) -> ShapeError:
        lead = tuple(shape[:-1])
        if len(lead) == 1:
            wanted = f"{lead[0]} labels (shape {lead}) or {lead[0]}×{shape[-1]} target rows (shape {tuple(shape)})"
        else:
            wanted = f"labels of shape {lead} (one per position) or probability rows of shape {tuple(shape)}"
        return ShapeError(f"{self!r}: expected {wanted} for scores of shape {tuple(shape)}, got target shape "
                          f"{target.shape}")


def _position(flat_index, shape: tuple) -> tuple:
    """The index tuple of element ``flat_index`` of an array of ``shape``."""
    return tuple(int(i) for i in np.unravel_index(int(flat_index), shape))


def _shown(at: tuple) -> str:
    """A position as a user writes it: 3 for a sample, (3, 17) for a sample and a time step."""
    return str(at[0]) if len(at) == 1 else str(at)


def perplexity(pred, target, ignore_index: int | None = None) -> float:
    """exp(L): the perplexity of one batch, L its mean softmax cross-entropy (``SoftmaxCrossEntropy``,
    scores N×V or N×…×V, labels N or N×…, ``ignore_index`` as there). A model that spreads its
    probability evenly over K classes has perplexity K; a perfect one, 1.

    Averaging batches' perplexities does not give the perplexity of their union (exp of a mean is
    not the mean of exps): for a data set, take exp of the mean loss (``nl.Perplexity``, a
    callback, adds ``perplexity`` and ``val_perplexity`` to fit's History that way); do not use
    this function as the Trainer's ``metric``.
    """
    loss = SoftmaxCrossEntropy(ignore_index=ignore_index).forward(pred, target)
    return exp_or_inf(loss)


def exp_or_inf(loss: float) -> float:
    """e^loss as a float: inf where it overflows (loss > 709.78), nan for nan."""
    return math.exp(loss) if not loss > 709.78 else math.inf
