"""Finite-difference gradient checking, for the library's layers and for yours.

A backward pass is right when it agrees with central differences of the
forward pass. For a module Z = f(X; θ) we pick a random upstream gradient
G (shape of Z) and check the scalar L = Σ G ⊙ f(X; θ): its exact gradient is
what ``backward(G)`` returns (δX) and accumulates (δθ), and its numerical
gradient costs two forward passes per input element:

    ∂L/∂xᵢ ≈ (L(x + εeᵢ) − L(x − εeᵢ)) / 2ε        (error O(ε²))

Run it in float64: with ε = 1e-6 the difference quotient then has about
ten correct digits, where float32 has none to spare.

Example::

    report = nl.gradcheck(MyLayer(), np.random.default_rng(0).normal(size=(3, 4)))
    print(report)          # worst relative error per tensor, with its index
"""
from __future__ import annotations

import html
import warnings
from dataclasses import dataclass, field

import numpy as np

from .backend import device_of, get_array_module, is_array, to_device, to_host
from .init import as_rng
from .losses import Loss
from .module import Module

__all__ = ["numerical_jacobian", "gradcheck", "GradcheckError", "GradcheckReport", "TensorCheck"]

DEFAULT_EPS = 1e-6
DEFAULT_RTOL = 1e-5
DEFAULT_ATOL = 1e-7


class GradcheckError(AssertionError):
    """An analytic gradient disagrees with finite differences."""


def numerical_jacobian(f, x, eps: float = DEFAULT_EPS) -> np.ndarray:
    """Central-difference Jacobian J[i, j] = ∂fᵢ/∂xⱼ ≈ (fᵢ(x + εeⱼ) − fᵢ(x − εeⱼ)) / 2ε.

    ``f`` maps an array shaped like ``x`` to an array (or scalar). Works in
    float64 on a copy of ``x``; returns shape ``(f(x).size, x.size)``.
    """
    x = get_array_module(x).array(x, dtype=np.float64)  # a copy, on x's device
    return _central_differences(x.reshape(-1), lambda: f(x), eps)


def _central_differences(flat: np.ndarray, evaluate, eps: float) -> np.ndarray:
    """Jacobian of ``evaluate()`` with respect to ``flat``, a view perturbed in place and
    restored bit for bit after each element."""
    n_out = to_host(evaluate()).size
    jacobian = np.empty((n_out, flat.size))
    for j in range(flat.size):
        original = flat[j]
        flat[j] = original + eps
        plus = to_host(evaluate()).astype(np.float64).reshape(-1)
        flat[j] = original - eps
        minus = to_host(evaluate()).astype(np.float64).reshape(-1)
        flat[j] = original
        jacobian[:, j] = (plus - minus) / (2 * eps)
    return jacobian


@dataclass
class TensorCheck:
    """How one gradient (of the input or of one parameter) compared."""

    name: str
    analytic: np.ndarray
    numeric: np.ndarray
    rtol: float
    atol: float
    worst_index: tuple = field(init=False)
    max_abs_error: float = field(init=False)
    max_rel_error: float = field(init=False)
    passed: bool = field(init=False)

    def __post_init__(self):
        error = np.abs(self.analytic - self.numeric)
        scale = np.maximum(np.abs(self.analytic), np.abs(self.numeric))
        relative = error / np.maximum(scale, self.atol)
        # The element that breaks |a − n| ≤ atol + rtol·|n| by the most is the one to show.
        excess = error - (self.atol + self.rtol * np.abs(self.numeric))
        worst = int(np.argmax(excess)) if excess.size else 0
        self.worst_index = tuple(int(i) for i in np.unravel_index(worst, self.analytic.shape)) if excess.size else ()
        self.max_abs_error = float(error.max()) if error.size else 0.0
        self.max_rel_error = float(relative.max()) if relative.size else 0.0
        self.passed = bool(np.all(np.isfinite(self.analytic)) and np.all(excess <= 0))

    def __str__(self) -> str:
        if not self.analytic.size:
            return f"{self.name}: empty"
        i = self.worst_index
        status = "ok" if self.passed else "FAILED"
        return (f"{self.name}: {status}  max rel error {self.max_rel_error:.2e}, max abs error "
                f"{self.max_abs_error:.2e}; worst at {self.name}[{', '.join(map(str, i))}]: analytic "
                f"{self.analytic[i]:.10g}, numeric {self.numeric[i]:.10g}")

    def __repr__(self) -> str:          # the verdict, not the arrays
        return f"<TensorCheck {self}>"


@dataclass
class GradcheckReport:
    """The result of ``gradcheck``: one ``TensorCheck`` per checked gradient."""

    checks: list

    @property
    def passed(self) -> bool:
        return all(check.passed for check in self.checks)

    def __getitem__(self, name: str) -> TensorCheck:
        for check in self.checks:
            if check.name == name:
                return check
        raise KeyError(name)

    def __str__(self) -> str:
        return "\n".join(str(check) for check in self.checks)

    def __repr__(self) -> str:
        return f"GradcheckReport({'passed' if self.passed else 'FAILED'}):\n{self}"

    def _repr_html_(self) -> str:
        """The report as a table in a notebook: one row per tensor, its worst element named."""
        def row(check):
            if not check.analytic.size:
                return f"<tr><td>{html.escape(check.name)}</td><td>empty</td>" + "<td></td>" * 5 + "</tr>"
            i = check.worst_index
            status = "ok" if check.passed else "<b style='color:#c00'>FAILED</b>"
            return (f"<tr><td style='text-align:left'>{html.escape(check.name)}</td><td>{status}</td>"
                    f"<td>{check.max_rel_error:.2e}</td><td>{check.max_abs_error:.2e}</td>"
                    f"<td style='text-align:left'>{html.escape(check.name)}[{', '.join(map(str, i))}]</td>"
                    f"<td>{check.analytic[i]:.10g}</td><td>{check.numeric[i]:.10g}</td></tr>")
        head = "".join(f"<th>{cell}</th>" for cell in ("tensor", "status", "max rel error", "max abs error",
                                                        "worst element", "analytic", "numeric"))
        verdict = "passed" if self.passed else "FAILED"
        return (f"<p>gradcheck {verdict}: {len(self.checks)} gradient{'s' if len(self.checks) != 1 else ''} "
                f"against central differences</p><table><thead><tr>{head}</tr></thead>"
                f"<tbody>{''.join(row(check) for check in self.checks)}</tbody></table>")


def gradcheck(obj, X, target=None, *, eps: float = DEFAULT_EPS, rtol: float = DEFAULT_RTOL,
              atol: float = DEFAULT_ATOL, rng=0, check_input: bool = True,
              raise_on_failure: bool = True) -> GradcheckReport:
    """Compare ``obj``'s backward pass with central finite differences.

    ``obj`` is a ``Module`` (checked on input ``X``: δX and every parameter) or
    a ``Loss`` (checked at prediction ``X`` against ``target``: δpred).
    A gradient passes when every element satisfies |analytic − numeric| ≤
    atol + rtol·|numeric|. Every parameter of the module and of all modules
    inside it is checked. Parameters are restored exactly afterwards, their
    ``.grad`` is left as it was found, and buffers (running statistics) too.

    Returns a ``GradcheckReport`` (print it for the worst element of each
    tensor); raises ``GradcheckError`` with that text if a check fails and
    ``raise_on_failure`` is true. Warns when the input or a parameter is not
    float64, where finite differences are too coarse to be conclusive.
    The forward pass must be deterministic: put stochastic layers (Dropout)
    in ``eval()`` mode or fix their randomness first.
    """
    if isinstance(obj, Loss):
        if target is None:
            raise TypeError("gradcheck: checking a Loss needs the target as the third argument")
        checks = _check_loss(obj, X, target, eps, rtol, atol)
    elif isinstance(obj, Module):
        checks = _check_module(obj, X, eps, rtol, atol, as_rng(rng), check_input)
    else:
        raise TypeError(f"gradcheck: expected a Module or a Loss, got {type(obj).__name__}")
    report = GradcheckReport(checks)
    if raise_on_failure and not report.passed:
        raise GradcheckError(f"gradcheck failed for {obj!r}:\n{report}")
    return report


def _warn_if_not_float64(what: str, array: np.ndarray) -> None:
    if array.dtype != np.float64:
        warnings.warn(f"gradcheck: {what} is {array.dtype}; finite differences need float64 "
                      "to be conclusive", stacklevel=4)


def _check_module(module: Module, X, eps, rtol, atol, rng, check_input) -> list:
    X = X if is_array(X) else np.asarray(X)  # a GPU input stays on its device
    _warn_if_not_float64("the input", X)
    named = module.named_parameters()
    for name, parameter in named:
        _warn_if_not_float64(f"parameter {name}", parameter.data)
    saved_grads = [parameter.grad.copy() for _, parameter in named]
    # Buffers (BatchNorm's running statistics) change on every training-mode forward: put them back.
    saved_buffers = [(buffer, buffer.data.copy()) for buffer in module.buffers()]

    Z = module.forward(X)
    G = to_device(rng.standard_normal(np.shape(Z)), device_of(Z))  # random upstream gradient δZ

    def objective(x) -> float:                             # L = Σ G ⊙ f(x; θ)
        return float((G * module.forward(x)).sum())

    checks = []
    try:
        # Analytic: one backward pass into zeroed parameter gradients.
        for _, parameter in named:
            parameter.grad.fill(0)
        dX = module.backward(G.astype(Z.dtype))
        analytic = [to_host(parameter.grad).copy() for _, parameter in named]
        if check_input and dX is not None:  # None: the module skips δX (input_grad=False)
            numeric = numerical_jacobian(objective, X, eps).reshape(X.shape)
            checks.append(TensorCheck("X", to_host(dX), numeric, rtol, atol))
        for (name, parameter), grad in zip(named, analytic):
            numeric = _parameter_numeric_gradient(parameter, lambda: objective(X), eps)
            checks.append(TensorCheck(name, grad, numeric, rtol, atol))
    finally:
        for (_, parameter), saved in zip(named, saved_grads):
            parameter.grad[...] = saved
        module.forward(X)  # leave the caches describing the caller's input
        for buffer, saved in saved_buffers:
            buffer.data = saved
    return checks


def _parameter_numeric_gradient(parameter, objective, eps) -> np.ndarray:
    """∂L/∂θ by central differences, perturbing θ in place (the layer sees each change)."""
    flat = parameter.data.reshape(-1)
    if not np.shares_memory(flat, parameter.data):
        raise ValueError(f"gradcheck: parameter {parameter.name!r} is not contiguous")
    return _central_differences(flat, objective, eps).reshape(parameter.data.shape)


def _check_loss(loss: Loss, pred, target, eps, rtol, atol) -> list:
    pred = pred if is_array(pred) else np.asarray(pred)
    _warn_if_not_float64("the prediction", pred)
    loss.forward(pred, target)
    analytic = to_host(loss.backward())
    numeric = numerical_jacobian(lambda p: loss.forward(p, target), pred, eps).reshape(pred.shape)
    loss.forward(pred, target)  # leave the loss's cache describing the caller's input
    return [TensorCheck("pred", analytic, numeric, rtol, atol)]
