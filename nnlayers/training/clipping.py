"""Gradient clipping: ``clip_grad_norm`` (a hand loop calls it between backward and step) and
``GradientClipping``, the callback that ``Trainer(..., clip_grad_norm=max_norm)`` adds.

Why: one step of a recurrent net multiplies the gradient by W_h's Jacobian once per time step, so
an occasional batch gives a gradient thousands of times too long, and one such step undoes hours
of training (the exploding gradient). Scaling the whole gradient down to a fixed length keeps its
direction and bounds the step.
"""
from __future__ import annotations

import math

from .._args import _is_real
from ..backend import get_array_module
from ..parameter import Parameter

__all__ = ["clip_grad_norm", "GradientClipping"]


def clip_grad_norm(parameters, max_norm: float, norm_type: float = 2.0, *, error_if_nonfinite: bool = False) -> float:
    """Scale every parameter's gradient in place so that, taken together, their norm is at most
    ``max_norm``; returns the total norm before clipping (a float). ``torch.nn.utils.clip_grad_norm_``.

    With g the gradients of all ``parameters`` (a Parameter, or any iterable of them:
    ``model.parameters()``) laid end to end as one vector::

        ‖g‖_p = (Σᵢ |gᵢ|^p)^(1/p)          (p = ``norm_type``: 2 by default; ``math.inf``: maxᵢ |gᵢ|)
        c = max_norm / (‖g‖_p + 10⁻⁶)
        g ← c g   when c < 1   (that is, when ‖g‖_p > max_norm − 10⁻⁶; PyTorch's rule, the 10⁻⁶ included)

    so a clipped gradient has norm just under ``max_norm`` and keeps its direction. Each
    parameter's ``Σ |gᵢ|^p`` is added up in float64; a sum that overflows (float32 gradients beyond
    about 1e19) is taken again with g divided by its largest ``|gᵢ|``, so a finite gradient has a
    finite norm.

    A non-finite total (a NaN or ±inf in some gradient): no gradient is changed and the total
    (nan or inf) is returned, unless ``error_if_nonfinite``, which raises FloatingPointError
    instead. (PyTorch's default multiplies by max_norm/inf = 0, turning infinite entries into
    NaN and the finite ones into 0; either way the step should not be taken: the Trainer's
    divergence guard rolls it back.) ``max_norm = math.inf`` measures the norm and clips nothing.
    """
    parameters = _parameters(parameters)
    _positive(max_norm, "max_norm", "clip_grad_norm")
    _positive(norm_type, "norm_type", "clip_grad_norm")
    grads = [parameter.grad for parameter in parameters if parameter.grad.size]
    if not grads:
        return 0.0
    total = _norm(grads, float(norm_type))
    if not math.isfinite(total):
        if error_if_nonfinite:
            raise FloatingPointError(f"clip_grad_norm: the gradients' total {norm_type}-norm is {total} (a NaN "
                                     "or inf in some gradient); nothing was clipped")
        return total
    if clips(total, max_norm):
        scale = max_norm / (total + 1e-6)
        for grad in grads:
            grad *= scale                                   # in place: the parameters' own arrays
    return total


def clips(total: float, max_norm: float) -> bool:
    """Whether ``clip_grad_norm`` scales gradients of total norm ``total``: c = max_norm/(total + 10⁻⁶) < 1."""
    return max_norm / (total + 1e-6) < 1


def _positive(value, name: str, owner: str) -> None:
    """A real number > 0 (math.inf allowed); TypeError for another type, ValueError for 0, negatives, NaN."""
    if not _is_real(value):
        raise TypeError(f"{owner}: {name} must be a positive number or math.inf, got {value!r} "
                        f"({type(value).__name__})")
    if not value > 0:                                       # NaN fails ``> 0`` too
        raise ValueError(f"{owner}: {name} must be a positive number or math.inf, got {value!r}")


def _parameters(parameters) -> list:
    """A Parameter or an iterable of them, as a list; a clear TypeError otherwise."""
    if isinstance(parameters, Parameter):
        return [parameters]
    if hasattr(parameters, "named_parameters"):
        raise TypeError("clip_grad_norm: expected parameters, got a model; pass model.parameters()")
    try:
        parameters = list(parameters)
    except TypeError:
        raise TypeError(f"clip_grad_norm: expected an nl.Parameter or an iterable of them (model.parameters()), "
                        f"got {type(parameters).__name__}") from None
    for at, parameter in enumerate(parameters):
        if not isinstance(parameter, Parameter):
            raise TypeError(f"clip_grad_norm: item {at} is {type(parameter).__name__}, not an nl.Parameter "
                            "(pass model.parameters())")
    return parameters


def _norm(grads, p: float) -> float:
    """‖g‖_p of the gradients as one vector, in float64; one read from the device at the end."""
    xp = get_array_module(grads[0])
    if p == math.inf:                                       # a NaN anywhere gives NaN (numpy's max propagates it)
        return float(xp.stack([xp.abs(grad).max() for grad in grads]).max())
    if p == 2:
        total = sum(xp.vdot(grad, grad).astype(xp.float64) for grad in grads)   # Σ g², a BLAS dot each
    else:
        total = sum((xp.abs(grad).astype(xp.float64) ** p).sum() for grad in grads)
    total = float(total) ** (1.0 / p)
    if math.isinf(total):                                   # Σ |g|^p overflowed: rescale by the largest |gᵢ|
        largest = _norm(grads, math.inf)
        if math.isfinite(largest):
            return largest * _norm([grad / largest for grad in grads], p)
    return total


class GradientClipping:
    """A callback that clips the model's gradients (``clip_grad_norm``) after ``model.backward`` and
    before ``optimizer.step``, every step of ``fit``; ``Trainer(..., clip_grad_norm=max_norm)`` adds
    one (``trainer.clipping``).

    It records, for a script to report: ``last_norm`` (the total norm before clipping at the last
    step), ``steps`` (steps seen) and ``clipped`` (how many were scaled down), over all of fit's
    epochs since the callback was made.

    Data-parallel training: ``nl.distributed.DistributedOptimizer`` averages the ranks' gradients
    inside ``step``; clipping must act on that average (as it would on one process), so this
    callback asks an optimizer with ``allreduce_gradients`` to average first, then clips; the
    optimizer's step then does not average again.
    """

    def __init__(self, max_norm: float, norm_type: float = 2.0):
        _positive(max_norm, "max_norm", "GradientClipping")
        _positive(norm_type, "norm_type", "GradientClipping")
        self.max_norm, self.norm_type = max_norm, norm_type
        self.last_norm = None
        self.steps = self.clipped = 0

    def on_fit_start(self, trainer, run) -> None:
        self.parameters = trainer.model.parameters()
        self.average = getattr(trainer.optimizer, "allreduce_gradients", None)   # DistributedOptimizer's

    def on_backward_end(self, epoch: int, batch: int) -> None:
        if self.average is not None:
            self.average()
        self.last_norm = clip_grad_norm(self.parameters, self.max_norm, self.norm_type)
        self.steps += 1
        self.clipped += clips(self.last_norm, self.max_norm)

    def __repr__(self) -> str:
        norm = "" if self.norm_type == 2 else f", norm_type={self.norm_type}"
        return f"GradientClipping(max_norm={self.max_norm}{norm})"
