"""The contract every layer follows: ``Parameter``, ``Module`` and ``Sequential``.

A module is a function Z = f(X; θ) that remembers what its backward pass needs.

* ``forward(X)`` computes Z and caches what ``backward`` will need.
* ``backward(dZ)`` receives δZ = ∂L/∂Z (same shape as Z), returns
  δX = ∂L/∂X (same shape as X) and *adds* ∂L/∂θ into each ``Parameter.grad``.
  Parameter gradients accumulate until ``zero_grad()``, so several backward
  passes (e.g. over chunks of a batch) sum up as the chain rule says they should.

Layers never modify the arrays they receive or the arrays they have returned,
so a layer whose δX equals δZ (Bias, Flatten) may pass δZ on without copying.
"""
from __future__ import annotations

import contextlib

import numpy as np

from . import io

__all__ = ["Parameter", "Module", "Sequential", "ShapeError", "as_float_input", "evaluation_mode"]


class ShapeError(ValueError):
    """An array reached a layer with a shape that layer cannot take."""


class Parameter:
    """A trainable array ``data`` and its accumulated gradient ``grad``.

    ``grad`` always has the shape and dtype of ``data`` and starts at zero.
    Optimizers see nothing but parameters: they read ``grad`` and update
    ``data`` in place, so a layer's reference to its parameter stays valid.
    """

    __slots__ = ("data", "grad", "name")

    def __init__(self, data, name: str = ""):
        self.data = np.array(data)  # an owned copy: a layer's weights are its own
        if self.data.dtype.kind != "f":
            raise TypeError(f"Parameter {name!r} needs a floating-point array, got dtype {self.data.dtype}")
        self.grad = np.zeros_like(self.data)
        self.name = name

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def size(self) -> int:
        return self.data.size

    def zero_grad(self) -> None:
        self.grad.fill(0)

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"


class Module:
    """Base class of every layer and container.

    Subclasses implement ``forward`` and ``backward`` and register their
    trainable arrays with ``add_parameter``; everything else (listing
    parameters, zeroing gradients, train/eval mode, ``repr``) lives here.
    """

    def __init__(self):
        self.training = True
        self._parameters: dict[str, Parameter] = {}

    # -- the contract -------------------------------------------------------
    def forward(self, X):
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, dZ):
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, X):
        return self.forward(X)

    # -- parameters ---------------------------------------------------------
    def add_parameter(self, name: str, data) -> Parameter:
        """Register ``data`` as the trainable parameter ``name`` and return it."""
        parameter = Parameter(data, name)
        self._parameters[name] = parameter
        return parameter

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """``(name, parameter)`` pairs in a stable order (registration order)."""
        return list(self._parameters.items())

    def parameters(self) -> list[Parameter]:
        return [parameter for _, parameter in self.named_parameters()]

    def zero_grad(self) -> None:
        for parameter in self.parameters():
            parameter.grad.fill(0)

    def modules(self):
        """This module and every module inside it, depth first."""
        yield self

    def num_parameters(self) -> int:
        return sum(parameter.size for parameter in self.parameters())

    def summary(self, input_shape, dtype=np.float64) -> str:
        """Each layer with its output shape and parameter count (see ``nnlayers.summary``)."""
        from .summary import summary  # summary walks modules: imported here to avoid a cycle
        return summary(self, input_shape, dtype)

    def state_dict(self) -> dict:
        """``{name: copy of array}`` for every parameter (see ``nnlayers.io``)."""
        return io.state_dict(self)

    def load_state_dict(self, state: dict) -> None:
        """Copy arrays into the parameters in place; refuses mismatches before changing anything."""
        io.load_state_dict(self, state)

    # -- modes --------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (the default): layers such as Dropout act stochastically."""
        self.training = mode
        return self

    def eval(self) -> "Module":
        """Evaluation mode: deterministic inference behaviour."""
        return self.train(False)

    # -- errors and printing --------------------------------------------------
    def extra_repr(self) -> str:
        """The constructor arguments shown inside ``repr``; layers override this."""
        return ""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"

    def _no_forward_error(self) -> RuntimeError:
        return RuntimeError(f"{self!r}: backward called before forward (nothing cached to differentiate)")

    def _check_grad_shape(self, dZ, expected: tuple):
        """Return ``dZ`` as an array, refusing a shape other than the forward output's.

        Hot layers call this only when ``dZ`` is not already an array of the expected shape.
        """
        if type(dZ) is not np.ndarray:
            dZ = np.asarray(dZ)
        if dZ.shape != expected:
            raise ShapeError(f"{self!r}: backward expected dZ of shape {expected} "
                             f"(the shape forward returned), got shape {dZ.shape}")
        return dZ


def as_float_input(owner, X, dtype=None):
    """Return ``X`` as a floating-point array, or raise a clear error naming ``owner``.

    ``owner`` is the layer (or a name) the error messages start with. Integer
    and boolean inputs are converted (to ``dtype``, else float64) so that no
    later operation can wrap around; with ``dtype`` given, floating inputs of
    another precision are converted too, so a float32 layer computes in
    float32. Anything non-numeric is refused.
    """
    if type(X) is not np.ndarray:
        X = np.asarray(X)
    kind = X.dtype.kind
    if kind == "f" and (dtype is None or X.dtype == dtype):
        return X
    if kind in "fiub":
        return X.astype(dtype or np.float64)
    name = owner if isinstance(owner, str) else repr(owner)
    raise TypeError(f"{name}: expected a numeric array, got dtype {X.dtype}")


@contextlib.contextmanager
def evaluation_mode(model: "Module"):
    """``with evaluation_mode(model):`` run ``model`` in eval mode, then put back every
    module's own ``training`` flag (a sub-layer the user had set to eval stays in eval)."""
    saved = [(module, module.training) for module in model.modules()]
    model.eval()
    try:
        yield model
    finally:
        for module, training in saved:
            module.training = training


class Sequential(Module):
    """Modules applied one after another: Z = fₙ(… f₂(f₁(X))).

    Backward runs the chain rule in reverse: δXᵢ = backwardᵢ(δXᵢ₊₁), starting
    from δZ. Parameters are named by position, e.g. ``0.W`` and ``1.b``.
    """

    def __init__(self, *modules: Module):
        super().__init__()
        seen = {}
        for position, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: item {position} is {module!r}, not a Module")
            if id(module) in seen:  # one cache per layer: a second use would overwrite the first's
                raise ValueError(f"Sequential: item {position} is the same {module!r} object as item "
                                 f"{seen[id(module)]}; create a new layer for each position")
            seen[id(module)] = position
        self.layers = list(modules)

    def forward(self, X):
        for module in self.layers:
            try:
                X = module.forward(X)
            except Exception as error:
                raise _located(error, self.layers.index(module), module, "forward") from error
        return X

    def backward(self, dZ):
        for module in reversed(self.layers):
            try:
                dZ = module.backward(dZ)
            except Exception as error:
                position = self.layers.index(module)
                if dZ is None:  # checked only on failure: the hot loop stays lean
                    raise RuntimeError(f"Sequential layer {position + 1} returned no input gradient "
                                       f"(input_grad=False), but layer {position} ({module!r}) needs one: "
                                       "only the first layer may skip δX") from None
                raise _located(error, position, module, "backward") from error
        return dZ

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        return [(f"{position}.{name}", parameter)
                for position, module in enumerate(self.layers)
                for name, parameter in module.named_parameters()]

    def modules(self):
        yield self
        for layer in self.layers:
            yield from layer.modules()

    def train(self, mode: bool = True) -> "Sequential":
        self.training = mode
        for module in self.layers:
            module.train(mode)
        return self

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def __len__(self) -> int:
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def __repr__(self) -> str:
        lines = [f"  ({position}): " + repr(module).replace("\n", "\n  ")
                 for position, module in enumerate(self.layers)]
        return "Sequential(\n" + "\n".join(lines) + "\n)" if lines else "Sequential()"


def _located(error: Exception, position: int, module: Module, phase: str) -> Exception:
    """The same kind of error, its message prefixed with where in the Sequential it happened."""
    text = str(error)
    if getattr(error, "_nnlayers_located", False):  # nested containers: keep the innermost text
        message = f"Sequential layer {position} > {text}"
    elif text.startswith(repr(module)):             # our own errors already name the layer
        message = f"Sequential layer {position} {phase}: {text}"
    else:
        message = f"Sequential layer {position} ({module!r}) {phase}: {text}"
    try:
        located = type(error)(message)
    except Exception:  # an exception type with an unusual constructor: keep it as it is
        return error
    located._nnlayers_located = True
    return located
