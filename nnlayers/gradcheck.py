"""Finite-difference gradient checking, for the library's layers and for yours.

A backward pass is right when it agrees with central differences of the
forward pass. For a module Z = f(X; θ) we pick a random upstream gradient
G (shape of Z) and check the scalar L = Σ G ⊙ f(X; θ): its exact gradient is
what ``backward(G)`` returns (δX) and accumulates (δθ), and its numerical
gradient costs two forward passes per input element:

    ∂L/∂xᵢ ≈ (L(x + εeᵢ) − L(x − εeᵢ)) / 2ε        (error O(ε²))

Several inputs and outputs (the contract in ``nnlayers.module``): pass the
inputs as a tuple, ``gradcheck(layer, (X1, X2))``; every floating input is
checked (named ``input 0``, ``input 1``, …), an integer input (ids) is passed
as it is and its gradient must be None. A module returning (Z₁, …, Zₘ) gets
one random Gₖ per output: L = Σₖ Σ Gₖ ⊙ Zₖ.

Run it in float64: with ε = 1e-6 the difference quotient then has about
ten correct digits, where float32 has none to spare.

Example::

    report = nl.gradcheck(MyLayer(), np.random.default_rng(0).normal(size=(3, 4)))
    print(report)          # worst relative error per tensor, with its index
"""
from __future__ import annotations

import copy
import html
import warnings
from dataclasses import dataclass, field

import numpy as np

from .backend import device_of, get_array_module, is_array, to_device, to_host
from .init import as_rng
from .losses import Loss
from .module import Module, as_tuple

__all__ = ["numerical_jacobian", "gradcheck", "GradcheckError", "GradcheckReport", "TensorCheck", "NoGradientCheck"]

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
class NoGradientCheck:
    """An integer input (ids): not perturbed, and backward must return None as its gradient."""

    name: str
    dtype: np.dtype
    returned: object                    # what backward returned for it: None passes

    @property
    def passed(self) -> bool:
        return self.returned is None

    def __str__(self) -> str:
        if self.passed:
            return f"{self.name}: ok  integer input ({self.dtype}), not perturbed; no gradient (None)"
        return (f"{self.name}: FAILED  integer input ({self.dtype}) has no gradient, but backward returned "
                f"{type(self.returned).__name__} {getattr(self.returned, 'shape', '')}; return None for it")

    def _html_row(self) -> str:
        status = "ok" if self.passed else "<b style='color:#c00'>FAILED</b>"
        return (f"<tr><td style='text-align:left'>{html.escape(self.name)}</td><td>{status}</td>"
                f"<td colspan='5' style='text-align:left'>{html.escape(str(self).split('  ', 1)[1])}</td></tr>")


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
            if isinstance(check, NoGradientCheck):
                return check._html_row()
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
    a ``Loss`` (checked at prediction ``X`` against ``target``: δpred). For a
    module of several inputs ``X`` is a tuple ``(X1, X2, …)``: every floating
    input is checked (``input 0``, ``input 1``, … in the report), an integer
    input is passed unperturbed and its gradient must be None. An input whose
    gradient is None by the module's choice (``input_grad=False``) is skipped.
    A module returning a tuple gets a random upstream gradient per output.

    A gradient passes when every element satisfies ``|analytic − numeric| ≤
    atol + rtol·|numeric|``. Every parameter of the module and of all modules
    inside it is checked. Parameters are restored exactly afterwards, their
    ``.grad`` is left as it was found, and buffers (running statistics) too.

    Returns a ``GradcheckReport`` (print it for the worst element of each
    tensor); raises ``GradcheckError`` with that text if a check fails and
    ``raise_on_failure`` is true. Warns when an input or a parameter is not
    float64, where finite differences are too coarse to be conclusive.
    The forward pass must be deterministic: a module's random generator
    ``rng`` (Dropout's) is restarted from the same state before every
    forward pass of the check, so each one draws the same mask.
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
    inputs = [x if is_array(x) else np.asarray(x) for x in as_tuple(X)]  # a GPU input stays on its device
    names = ["X"] if len(inputs) == 1 else [f"input {i}" for i in range(len(inputs))]
    for name, x in zip(names, inputs):
        if x.dtype.kind == "f":
            _warn_if_not_float64("the input" if name == "X" else name, x)
    named = module.named_parameters()
    for name, parameter in named:
        _warn_if_not_float64(f"parameter {name}", parameter.data)
    saved_grads = [parameter.grad.copy() for _, parameter in named]
    # Buffers (BatchNorm's running statistics) change on every training-mode forward: put them back.
    saved_buffers = [(buffer, buffer.data.copy()) for buffer in module.buffers()]
    same_randomness = _same_randomness(module)

    def evaluate():                                        # f(X₁, …, Xₙ; θ), its random draws fixed
        same_randomness()
        return as_tuple(module.forward(*inputs))

    Zs = evaluate()
    Gs = [to_device(rng.standard_normal(np.shape(Z)), device_of(Z)) for Z in Zs]  # random upstream δZₖ

    def objective() -> float:                              # L = Σₖ Σ Gₖ ⊙ fₖ(X₁, …, Xₙ; θ)
        return sum(float((G * Z).sum()) for G, Z in zip(Gs, evaluate()))

    checks = []
    try:
        # Analytic: one backward pass into zeroed parameter gradients.
        for _, parameter in named:
            parameter.grad.fill(0)
        grads = module.backward(*(G.astype(Z.dtype) for G, Z in zip(Gs, Zs)))
        analytic = [to_host(parameter.grad).copy() for _, parameter in named]
        if check_input:
            checks += _input_checks(module, inputs, names, grads, objective, eps, rtol, atol)
        for (name, parameter), grad in zip(named, analytic):
            numeric = _parameter_numeric_gradient(parameter, objective, eps)
            checks.append(TensorCheck(name, grad, numeric, rtol, atol))
    finally:
        for (_, parameter), saved in zip(named, saved_grads):
            parameter.grad[...] = saved
        same_randomness(restore=True)
        module.forward(*inputs)  # leave the caches describing the caller's inputs
        for buffer, saved in saved_buffers:
            buffer.data = saved
    return checks


def _input_checks(module, inputs, names, grads, objective, eps, rtol, atol) -> list:
    """One check per input: δXᵢ against central differences (floating), or None (integer ids)."""
    if len(inputs) == 1:
        grads = (grads,)
    elif type(grads) is not tuple or len(grads) != len(inputs):
        got = f"a tuple of {len(grads)}" if type(grads) is tuple else type(grads).__name__
        raise GradcheckError(f"gradcheck: {module!r} took {len(inputs)} inputs, so its backward must return a "
                             f"tuple of {len(inputs)} gradients (None where an input has none); it returned {got}")
    checks = []
    for i, (name, x, grad) in enumerate(zip(names, inputs, grads)):
        if x.dtype.kind != "f":
            checks.append(NoGradientCheck(name, x.dtype, grad))
        elif grad is not None:  # None: the module skips this δX (input_grad=False)
            perturbed = get_array_module(x).array(x, dtype=np.float64)  # a copy, on x's device
            inputs[i] = perturbed
            try:
                numeric = _central_differences(perturbed.reshape(-1), objective, eps)
            finally:
                inputs[i] = x
            checks.append(TensorCheck(name, to_host(grad), numeric.reshape(x.shape), rtol, atol))
    return checks


def _same_randomness(module: Module):
    """A function that gives every module holding a random generator ``rng`` (Dropout) a fresh copy of
    that generator as it is now, so each forward pass draws the same numbers (the same mask);
    ``restore=True`` gives each module back its own generator, in the state it had."""
    generators = [(m, m.rng, copy.deepcopy(m.rng)) for m in module.modules()
                  if isinstance(getattr(m, "rng", None), np.random.Generator)]

    def reset(restore: bool = False) -> None:
        for owner, own, saved in generators:
            if restore:
                own.bit_generator.state = saved.bit_generator.state
                owner.rng = own
            else:
                owner.rng = copy.deepcopy(saved)  # a new object: a GPU Dropout reseeds its device generator
    return reset


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
