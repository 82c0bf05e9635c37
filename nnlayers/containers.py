"""Containers: modules built from modules, each forward and backward a line of the chain rule.

* ``Sequential(f₁, …, fₙ)``: Z = fₙ(… f₂(f₁(X))), a chain;
* ``Residual(block)``: Z = X + block(X), a skip connection;
* ``Parallel(f₁, …, fₖ)``: (Z₁, …, Zₖ) = (f₁(X), …, fₖ(X)), a fork;
* ``Add()``: Z = X₁ + … + Xₖ and ``Concatenate(axis)``: Z = [X₁ … Xₖ], merges.

A two-branch net needs no class of its own::

    Sequential(Parallel(Linear(4, 3), Linear(4, 2)), Concatenate(), Linear(5, 1))

They follow the contract of ``nnlayers.module`` for several inputs and outputs:
a tuple returned by one module becomes the next module's inputs, and backward
returns one gradient per input (a tuple when there are several).
"""
from __future__ import annotations

import numpy as np

from .backend import get_array_module
from .errors import ShapeError, locate_error
from .module import Module

__all__ = ["Sequential", "Residual", "Parallel", "Add", "Concatenate"]


class Sequential(Module):
    """Modules applied one after another: Z = fₙ(… f₂(f₁(X))).

    Backward runs the chain rule in reverse: δXᵢ = backwardᵢ(δXᵢ₊₁), starting
    from δZ. Children are named by position, so parameters are ``0.W``, ``1.b``.

    The registered children *are* the sequence: ``append(module)`` and
    ``add_module(name, module)`` add a step at the end, and ``len``, indexing,
    iteration and slicing (a new Sequential of the same modules, renumbered)
    all read that one list.

    Several inputs and outputs: the first module gets all of ``forward``'s
    inputs; a module that returns a tuple passes it on as the next module's
    inputs (``next.forward(*Z)``), and backward does the same with gradients.
    Cache: none of its own; each module caches what it needs.

    ``dtype`` (keyword): the whole model's dtype in one place, ``Sequential(…, dtype=np.float32)``:
    every parameter and floating-point buffer inside is cast to it (``Module.to``), whatever
    dtype its layer was built with.
    """

    def __init__(self, *modules: Module, dtype=None):
        super().__init__()
        for position, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: item {position} is {module!r}, not a Module")
            for earlier in range(position):
                if modules[earlier] is module:  # one cache per layer: a second use would overwrite the first's
                    raise ValueError(f"Sequential: item {position} is the same {module!r} object as item "
                                     f"{earlier}; create a new layer for each position")
            self.add_module(str(position), module)
        if dtype is not None:
            self.to(dtype)

    def forward(self, *inputs):
        """Z = fₙ(… f₂(f₁(X))); a tuple between two modules is unpacked into the next one's inputs."""
        Z = inputs[0] if len(inputs) == 1 else inputs
        try:
            for module in self._children.values():
                Z = module.forward(*Z) if type(Z) is tuple else module.forward(Z)
        except Exception as error:
            raise locate_error(self, _at_the_call(error, module, Z, "forward"), "forward") from error
        return Z

    def backward(self, *grads):
        """δXᵢ = backwardᵢ(δXᵢ₊₁) from the last module to the first, starting from δZ."""
        dZ = grads[0] if len(grads) == 1 else grads
        try:
            for module in reversed(self._children.values()):
                dZ = module.backward(*dZ) if type(dZ) is tuple else module.backward(dZ)
        except Exception as error:
            if dZ is None:  # checked only on failure: the hot loop stays lean
                position = self.layers.index(module)
                raise RuntimeError(f"Sequential layer {position + 1} returned no input gradient "
                                   f"(input_grad=False), but layer {position} ({module!r}) needs one: "
                                   "only the first layer may skip δX") from None
            raise locate_error(self, _at_the_call(error, module, dZ, "backward"), "backward") from error
        return dZ

    def append(self, module: Module) -> "Sequential":
        """Add ``module`` as the last step, named by its position; returns the Sequential."""
        self.add_module(str(len(self._children)), module)
        return self

    @property
    def layers(self) -> list:
        """The modules in the order they run (a new list: ``append`` or ``add_module`` change the sequence)."""
        return list(self._children.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return Sequential(*self.layers[index])
        return self.layers[index]

    def __len__(self) -> int:
        return len(self._children)

    def __iter__(self):
        return iter(self._children.values())


class Residual(Module):
    """A skip connection around ``block``: Z = X + block(X), or Z = shortcut(X) + block(X).

    The sum's gradient flows unchanged into both branches, and the input's
    gradient is the sum of the two paths back (the chain rule over a fork)::

        δX = δZ + block.backward(δZ)                         (identity shortcut)
        δX = shortcut.backward(δZ) + block.backward(δZ)      (with ``shortcut``)

    block(X) must have X's shape (or shortcut(X)'s, with a shortcut), e.g. a
    1×1 convolution with BatchNorm as the projection when channels change.
    One input, one output. Cache: none of its own; the branches cache what they need.
    """

    def __init__(self, block: Module, shortcut: Module | None = None):
        super().__init__()
        self.block = self.add_module("block", block)
        self.shortcut = self.add_module("shortcut", shortcut) if shortcut is not None else None

    def forward(self, X):
        """Z = X + block(X)  or  Z = shortcut(X) + block(X)."""
        try:
            F = self.block.forward(X)
            S = X if self.shortcut is None else self.shortcut.forward(X)
        except Exception as error:
            raise locate_error(self, error, "forward") from error
        if np.shape(F) != np.shape(S):
            raise ShapeError(f"{self!r}: the block's output shape {np.shape(F)} differs from the "
                             f"{'input' if self.shortcut is None else 'shortcut'}'s shape {np.shape(S)}; "
                             "a shape-changing block needs a projection shortcut")
        return S + F

    def backward(self, dZ):
        """δX = δZ + block.backward(δZ)  or  δX = shortcut.backward(δZ) + block.backward(δZ)."""
        try:
            dX = self.block.backward(dZ)
            dS = dZ if self.shortcut is None else self.shortcut.backward(dZ)
        except Exception as error:
            raise locate_error(self, error, "backward") from error
        return dX + dS


class Parallel(Module):
    """Branches on the same inputs: (Z₁, …, Zₖ) = (f₁(X), …, fₖ(X)), a fork.

    Every branch reads X, so X's gradient is the sum over the paths back (the
    chain rule over a fork): the fork's gradients add::

        δX = f₁.backward(δZ₁) + … + fₖ.backward(δZₖ)

    With several inputs X₁, …, Xₙ each branch gets them all and returns n
    gradients; δXᵢ sums the branches' i-th gradients (None where none gives one).
    Shapes: Zₖ is whatever branch k returns (one array); merge the tuple with
    ``Add`` or ``Concatenate``. Branches are named by position (``0.W``, ``1.W``).
    Cache: the number of inputs; the branches cache what they need.
    """

    cache_names = ("_inputs",)

    def __init__(self, *branches: Module):
        super().__init__()
        if not branches:
            raise ValueError("Parallel: branches must name at least one Module")
        for position, branch in enumerate(branches):
            if not isinstance(branch, Module):
                raise TypeError(f"Parallel: branch {position} is {branch!r}, not a Module")
            self.add_module(str(position), branch)  # refuses the same object twice
        self._inputs = None

    def forward(self, *inputs):
        """(Z₁, …, Zₖ) = (f₁(X), …, fₖ(X)): the same inputs to every branch."""
        Zs = []
        try:
            for branch in self._children.values():
                Zs.append(branch.forward(*inputs))
        except Exception as error:
            raise locate_error(self, _at_the_call(error, branch, inputs, "forward"), "forward") from error
        for position, Z in enumerate(Zs):
            if type(Z) is tuple:
                raise TypeError(f"{self!r}: branch {position} returned {len(Z)} outputs; each branch of a "
                                "Parallel must return one array (merge its outputs inside the branch)")
        self._inputs = len(inputs)
        return tuple(Zs)

    def backward(self, *dZs):
        """δX = f₁.backward(δZ₁) + … + fₖ.backward(δZₖ), per input."""
        n = self.forward_cache(self._inputs)
        if len(dZs) != len(self._children):
            raise TypeError(f"{self!r}: backward expected {len(self._children)} gradients (one per branch "
                            f"output), got {len(dZs)}")
        dXs = (None,) * n
        try:
            for position, (branch, dZ) in enumerate(zip(self._children.values(), dZs)):
                grads = branch.backward(dZ)  # one array: a branch has one output
                if n > 1 and not (type(grads) is tuple and len(grads) == n):
                    raise TypeError(f"{self!r}: branch {position} ({branch!r}) took {n} inputs but its "
                                    f"backward returned {_count(grads)}, not a tuple of {n}")
                dXs = tuple(map(_add, dXs, grads if n > 1 else (grads,)))
        except Exception as error:
            raise locate_error(self, error, "backward") from error
        return dXs if n > 1 else dXs[0]

    def __getitem__(self, index: int) -> Module:
        return list(self._children.values())[index]

    def __len__(self) -> int:
        return len(self._children)


class Add(Module):
    """The sum of its inputs: Z = X₁ + X₂ + … + Xₖ, all of one shape (no broadcasting).

    Each input enters the sum with coefficient 1, so the sum's gradient copies::

        δXᵢ = δZ   for i = 1 … k

    (the one array δZ, returned k times: layers never modify what they receive).
    Shapes: each Xᵢ and Z of one shape, e.g. (N, F). Cache: Z's shape and k.
    """

    cache_names = ("_shape",)

    def __init__(self):
        super().__init__()
        self._shape = None
        self._count = 0

    def forward(self, *Xs):
        """Z = X₁ + X₂ + … + Xₖ."""
        if not Xs:
            raise TypeError(f"{self!r}: forward needs at least one input")
        Xs = [self.float_input(X) for X in Xs]
        for position, X in enumerate(Xs[1:], start=1):
            if X.shape != Xs[0].shape:
                raise ShapeError(f"{self!r}: input {position} has shape {X.shape}, input 0 has shape "
                                 f"{Xs[0].shape}; Add needs inputs of one shape (no broadcasting)")
        Z = Xs[0]
        for X in Xs[1:]:
            Z = Z + X
        self._shape, self._count = Z.shape, len(Xs)
        return Z

    def backward(self, dZ):
        """δXᵢ = δZ for every input."""
        dZ = self.check_grad(dZ, self.forward_cache(self._shape))
        return (dZ,) * self._count if self._count > 1 else dZ


class Concatenate(Module):
    """Its inputs joined along ``axis``: Z = [X₁ X₂ … Xₖ] (axis=1: the features side by side).

    Shapes: the inputs agree on every axis but ``axis``, and Z's size along it
    is the sum of theirs: (N, a) and (N, b) give (N, a + b). Each element of Z
    is one element of one input, so concatenation's gradient slices::

        δXᵢ = δZ[:, oᵢ : oᵢ + nᵢ]   (along ``axis``; nᵢ = Xᵢ's size there, oᵢ = n₁ + … + nᵢ₋₁)

    (views into δZ, not copies). Cache: the sizes nᵢ and Z's shape.
    """

    cache_names = ("_shape",)

    def __init__(self, axis: int = 1):
        super().__init__()
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(f"Concatenate: axis must be an int, got {axis!r}")
        self.axis = axis
        self._shape = None
        self._sizes = ()

    def forward(self, *Xs):
        """Z = [X₁ X₂ … Xₖ] along ``axis``."""
        if not Xs:
            raise TypeError(f"{self!r}: forward needs at least one input")
        Xs = [self.float_input(X) for X in Xs]
        ndim = Xs[0].ndim
        if not -ndim <= self.axis < ndim:
            raise ShapeError(f"{self!r}: axis {self.axis} is out of range for input 0 of shape {Xs[0].shape}")
        axis = self.axis % ndim
        for position, X in enumerate(Xs[1:], start=1):
            if X.ndim != ndim or X.shape[:axis] + X.shape[axis + 1:] != Xs[0].shape[:axis] + Xs[0].shape[axis + 1:]:
                raise ShapeError(f"{self!r}: input {position} has shape {X.shape}, input 0 has shape "
                                 f"{Xs[0].shape}; they must agree on every axis but axis {self.axis}")
        Z = get_array_module(Xs[0]).concatenate(Xs, axis=axis)
        self._shape, self._sizes = Z.shape, tuple(X.shape[axis] for X in Xs)
        return Z

    def backward(self, dZ):
        """δXᵢ = the slice of δZ that Xᵢ filled, along ``axis``."""
        dZ = self.check_grad(dZ, self.forward_cache(self._shape))
        before = (slice(None),) * (self.axis % dZ.ndim)
        dXs, start = [], 0
        for size in self._sizes:
            dXs.append(dZ[before + (slice(start, start + size),)])
            start += size
        return tuple(dXs) if len(dXs) > 1 else dXs[0]

    def settings(self) -> dict:
        return {"axis": self.axis}


def _add(a, b):
    """a + b where None means "no gradient" (a fresh array: the branches' gradients stay untouched)."""
    if a is None:
        return b
    return a if b is None else a + b


def _at_the_call(error: Exception, module: Module, values, phase: str) -> Exception:
    """``error`` marked as ``module``'s when the call itself failed (a TypeError raised before its
    ``forward``/``backward`` ran: it takes another number of inputs or gradients than it was given)."""
    if isinstance(error, TypeError) and error.__traceback__.tb_next is None and \
            getattr(error, "_nnlayers_origin", None) is None:
        count = len(values) if type(values) is tuple else 1
        what = "input" if phase == "forward" else "gradient"
        error._nnlayers_origin = (module, phase, f"given {count} {what}{'s' if count != 1 else ''}: {error}")
    return error


def _count(grads) -> str:
    return f"a tuple of {len(grads)}" if type(grads) is tuple else ("None" if grads is None else "one array")
