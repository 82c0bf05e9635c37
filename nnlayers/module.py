"""The contract every layer follows: ``Module`` (with ``Parameter`` and ``Buffer``, what it owns,
from ``nnlayers.parameter``).

A module is a function Z = f(X; θ) that remembers what its backward pass needs.

* ``forward(X)`` computes Z and caches what ``backward`` will need.
* ``backward(dZ)`` receives δZ = ∂L/∂Z (same shape as Z), returns
  δX = ∂L/∂X (same shape as X) and *adds* ∂L/∂θ into each ``Parameter.grad``.
  Parameter gradients accumulate until ``zero_grad()``, so several backward
  passes (e.g. over chunks of a batch) sum up as the chain rule says they should.
* ``module(X)`` is ``forward(X)`` with any error located inside the model
  (``layer 3 > block > layer 1 (Linear(...)) forward: …``).

Several inputs, several outputs: a module Z = f(X₁, …, Xₙ; θ) takes its inputs
as positional arguments and may return several outputs as a tuple.

* ``forward(X1, …, Xn)`` returns one array Z, or a tuple ``(Z1, …, Zm)``.
* ``backward(dZ1, …, dZm)`` takes one gradient per output, in order, and
  returns one gradient per input: for a module of one input an array, as
  above; for n ≥ 2 inputs a tuple ``(dX1, …, dXn)``.
* ``None`` stands for "no gradient": for an input that is not differentiable
  (integer ids) or that the module was told not to differentiate
  (``Linear(input_grad=False)``). A module of one input returns ``None`` itself.
* ``as_tuple(v)`` turns either form into a tuple where code must handle both.

The containers (``nnlayers.containers``) follow it too: ``Sequential`` passes
a tuple output on as the next module's inputs, ``Parallel`` forks one input
into several branches, ``Add`` and ``Concatenate`` merge several into one.

A module owns three kinds of things, each registered by name:

* parameters (``add_parameter``): trained arrays θ with their gradients δθ;
* buffers (``add_buffer``): state that is saved and loaded but never trained
  (BatchNorm's running statistics, counters); optimizers never see them;
* children (``add_module``): the modules a container is built from.

The base class walks that tree for everything else: ``named_parameters``,
``named_buffers``, ``named_modules``, ``train``/``eval``, ``zero_grad``,
``state_dict``/``load_state_dict``, ``clear_cache``. Names are dotted paths
(``3.block.0.W``). A module kept in an attribute but never registered would
silently escape training, so every walk refuses it with an error naming the
attribute.

Who owns which array (the same for every layer, containers included):

* The Z that forward returns belongs to the caller: no layer keeps it for
  backward, so it may be modified in place without changing any gradient.
  It may share memory with the input X, though (Flatten returns a view of X,
  Dropout in eval mode X itself), so modifying Z may modify the X passed in.
* What forward receives it may keep for backward without copying (Linear
  keeps X for δW = Xᵀ δZ): do not modify an input in place before the
  matching backward.
* The δX that backward returns belongs to the caller too, and may share
  memory with δZ (Bias and Flatten pass δZ on without copying; Add returns
  the one δZ for every input, Concatenate views into it).
* Layers never modify the arrays they receive or the arrays they have returned.
"""
from __future__ import annotations

import contextlib
import gc

import numpy as np

from .backend import check_same_device, device_of, get_array_module, is_array, to_device
from .errors import ShapeError, WeightsFileError, locate_error, path_label
from .inputs import as_float_input, as_tuple
from .parameter import Buffer, Parameter
from .state import check_state_layout, converted_state

# Sequential and Residual live in nnlayers.containers and stay importable from here (see __getattr__ at
# the end), as do ShapeError, WeightsFileError (nnlayers.errors), check_state_layout (nnlayers.state),
# as_float_input and as_tuple (nnlayers.inputs).
__all__ = ["Parameter", "Buffer", "Module", "Sequential", "Residual", "ShapeError", "WeightsFileError",
           "as_float_input", "evaluation_mode", "as_tuple", "check_state_layout"]


class Module:
    """Base class of every layer and container.

    Subclasses implement ``forward`` and ``backward`` and register what they own
    with ``add_parameter``, ``add_buffer`` and ``add_module``; everything else
    (walking the tree, zeroing gradients, train/eval mode, state dicts,
    ``repr``) lives here.

    The kit for layer authors, so that ``forward`` and ``backward`` read as formulas:

    * ``X = self.float_input(X, dtype)``: the input as a floating-point array, or a clear error;
    * ``X = self.forward_cache(self._X)``: what forward cached, or the backward-before-forward error;
    * ``dZ = self.check_grad(dZ, shape)``: δZ as an array of the forward output's shape, or a clear error;
    * ``cache_names``: the attributes holding forward caches, dropped by ``clear_cache()``.
    """

    #: Attributes that hold forward caches; ``clear_cache()`` sets them to None.
    cache_names: tuple = ()

    def __init__(self):
        self.training = True
        self._parameters: dict[str, Parameter] = {}
        self._buffers: dict[str, Buffer] = {}
        self._children: dict[str, Module] = {}

    # -- the contract (module docstring: one or several inputs and outputs) ------
    def forward(self, *inputs):
        """Z = f(X₁, …, Xₙ; θ): one array, or a tuple of arrays; caches what backward needs."""
        raise NotImplementedError(f"{type(self).__name__} does not implement forward")

    def backward(self, *grads):
        """One gradient per output in, one per input out (an array, or a tuple for several inputs)."""
        raise NotImplementedError(f"{type(self).__name__} does not implement backward")

    def __call__(self, *inputs):
        try:
            return self.forward(*inputs)
        except Exception as error:
            raise locate_error(self, error, "forward") from error

    # -- registration ---------------------------------------------------------
    def add_parameter(self, name: str, data) -> Parameter:
        """Register ``data`` as the trainable parameter ``name`` and return it."""
        self._check_new_name(name)
        parameter = self._parameters[name] = Parameter(data, name)
        return parameter

    def add_buffer(self, name: str, data) -> Buffer:
        """Register ``data`` as the buffer ``name`` (saved, loaded, never trained) and return it."""
        self._check_new_name(name)
        buffer = self._buffers[name] = Buffer(data, name)
        return buffer

    def add_module(self, name: str, module: "Module") -> "Module":
        """Register ``module`` as the child ``name`` and return it: ``self.block = self.add_module("block", …)``."""
        if not isinstance(module, Module):
            raise TypeError(f"{type(self).__name__}.add_module({name!r}): {module!r} is not a Module")
        if module is self:
            raise ValueError(f"{type(self).__name__}.add_module({name!r}): a module cannot contain itself")
        self._check_new_name(name)
        for other, child in self._children.items():
            if child is module:  # one forward cache per layer: a second place would overwrite the first's
                raise ValueError(f"{type(self).__name__}.add_module({name!r}): {module!r} is already the "
                                 f"child {other!r}; create a new layer for each place")
        self._children[name] = module
        return module

    def _check_new_name(self, name) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise ValueError(f"{type(self).__name__}: a name must be a non-empty string without '.', "
                             f"got {name!r}")
        if name in self._parameters or name in self._buffers or name in self._children:
            raise ValueError(f"{type(self).__name__}: the name {name!r} is already registered")

    # -- walking the tree -------------------------------------------------------
    def named_children(self) -> list[tuple[str, "Module"]]:
        """``(name, module)`` for each direct child, in registration order."""
        return list(self._children.items())

    def children(self) -> list["Module"]:
        return list(self._children.values())

    def named_modules(self) -> list[tuple[str, "Module"]]:
        """``(dotted path, module)`` for this module (path ``""``) and every module inside it, depth first.

        Refuses a tree in which one module object appears twice (its single
        forward cache cannot serve two places), and a module held in an
        attribute (or a list or tuple attribute) without being registered.
        """
        found: list[tuple[str, Module]] = []
        seen: dict[int, str] = {}

        def visit(path: str, module: Module) -> None:
            if id(module) in seen:
                raise ValueError(f"{module!r} appears twice in the model, at {path_label(seen[id(module)])} and at "
                                 f"{path_label(path)}; create a new layer for each place")
            seen[id(module)] = path
            found.append((path, module))
            module._check_registered(path)
            for name, child in module._children.items():
                visit(f"{path}.{name}" if path else name, child)

        visit("", self)
        return found

    def modules(self) -> list["Module"]:
        """This module and every module inside it, depth first."""
        return [module for _, module in self.named_modules()]

    def _check_registered(self, path: str) -> None:
        """Refuse modules held in attributes but never registered: their parameters would never train.

        The attribute values come from ``gc.get_referents``, not ``vars(self)``: on CPython 3.11,
        touching an instance's ``__dict__`` makes every later attribute access of that layer
        slower, which the smallest networks' steps would feel. A referent is the instance dict
        itself when something else already made one; containers are looked into one level deep.
        """
        registered = {id(child) for child in self._children.values()}
        for value in gc.get_referents(self):
            for item in _contents(value):
                if isinstance(item, Module) and id(item) not in registered and item is not self:
                    self._raise_unregistered(path, item)

    def _raise_unregistered(self, path: str, item: "Module"):
        attribute = next((name for name, value in vars(self).items()
                          if any(entry is item for entry in _contents(value))), "?")
        where = type(self).__name__ + (f" at {path_label(path)}" if path else "")
        raise TypeError(f"{where}: attribute {attribute!r} holds {item!r}, which is not registered, so its "
                        f"parameters would never be trained or saved; register it with "
                        f"self.{attribute} = self.add_module({attribute!r}, ...)")

    def _named_members(self, kind: str) -> list:
        return [(f"{path}.{name}" if path else name, member)
                for path, module in self.named_modules()
                for name, member in getattr(module, kind).items()]

    def named_parameters(self) -> list[tuple[str, Parameter]]:
        """``(dotted name, parameter)`` for every parameter in the tree (``0.W``, ``3.block.1.b``)."""
        return self._named_members("_parameters")

    def parameters(self) -> list[Parameter]:
        return [parameter for _, parameter in self.named_parameters()]

    def named_buffers(self) -> list[tuple[str, Buffer]]:
        """``(dotted name, buffer)`` for every buffer in the tree (``1.running_mean``)."""
        return self._named_members("_buffers")

    def buffers(self) -> list[Buffer]:
        return [buffer for _, buffer in self.named_buffers()]

    def zero_grad(self) -> None:
        for parameter in self.parameters():
            parameter.grad.fill(0)

    def num_parameters(self) -> int:
        return sum(parameter.size for parameter in self.parameters())

    # -- state --------------------------------------------------------------------
    def state_dict(self) -> dict:
        """``{dotted name: copy of array}`` for every parameter, then every buffer."""
        state = {name: parameter.data.copy() for name, parameter in self.named_parameters()}
        state.update((name, buffer.data.copy()) for name, buffer in self.named_buffers())
        return state

    def load_state_dict(self, state, *, source: str = "state dict", allow_nonfinite: bool = False) -> None:
        """Copy ``state``'s arrays into the parameters and buffers, all or nothing.

        Every entry is converted and checked before any is written: the names
        must match the model's exactly, each shape must match, each array must
        be numeric, values must fit the model's dtype (a float64 value too large
        for a float32 model is refused, not turned into inf) and, unless
        ``allow_nonfinite``, be free of NaN and inf. A refused state leaves the
        model as it was; errors are ``WeightsFileError`` naming ``source``.
        """
        checked = converted_state(self, state, source, allow_nonfinite)  # nnlayers.state: refuses or converts all
        for target, array in checked.values():  # checked on the host; copied to wherever the model lives
            target.data[...] = to_device(array, device_of(target.data))

    # -- devices ------------------------------------------------------------------
    def to(self, where) -> "Module":
        """Move every parameter (with its gradient) and buffer to a device, or cast them to a dtype;
        returns the module.

        A device: ``"cpu"`` (numpy), ``"cuda"`` or ``"cuda:N"`` (CuPy; ``pip install -e '.[gpu]'``).
        Layers then compute on that device: each uses the array module of its input.
        A floating-point dtype (``np.float32``, ``"float32"``): every parameter, its gradient and
        every floating-point buffer is cast to it (integer buffers, counters, stay as they are);
        layers then compute in it. Either way an optimizer built before holds arrays of the old
        device or dtype: build optimizers after ``to`` (or move theirs to a device with ``optimizer.to``;
        a Trainer refuses one whose state has another dtype than its parameters).
        """
        dtype = _float_dtype(where)
        if dtype is None:
            for parameter in self.parameters():
                parameter.data = to_device(parameter.data, where)
                parameter.grad = to_device(parameter.grad, where)
            for buffer in self.buffers():
                buffer.data = to_device(buffer.data, where)
            return self
        for parameter in self.parameters():
            parameter.data = parameter.data.astype(dtype, copy=False)
            parameter.grad = parameter.grad.astype(dtype, copy=False)
        for buffer in self.buffers():
            if buffer.data.dtype.kind == "f":
                buffer.data = buffer.data.astype(dtype, copy=False)
        return self

    @property
    def dtype(self):
        """The dtype of the first parameter (``np.float64`` for a module without parameters)."""
        for parameter in self.parameters():
            return parameter.data.dtype
        return np.dtype(np.float64)

    @property
    def device(self) -> str:
        """Where the parameters and buffers live: ``"cpu"`` or ``"cuda:N"`` (``"cpu"`` when it has none)."""
        for array in [p.data for p in self.parameters()] + [b.data for b in self.buffers()]:
            return device_of(array)
        return "cpu"

    def clear_cache(self) -> "Module":
        """Drop every module's forward caches (``cache_names``), e.g. after inference, to free memory.

        A backward pass after this raises the backward-before-forward error.
        """
        for module in self.modules():
            for name in type(module).cache_names:
                setattr(module, name, None)
        return self

    # -- modes --------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        """Training mode (the default) for this module and all inside it: Dropout acts, BatchNorm
        uses batch statistics."""
        for module in self.modules():
            module.training = bool(mode)
        return self

    def eval(self) -> "Module":
        """Evaluation mode: deterministic inference behaviour."""
        return self.train(False)

    # -- the kit for layer authors ----------------------------------------------
    def float_input(self, X, dtype=None, *, like=None) -> np.ndarray:
        """``X`` as a floating-point array (of ``dtype``, if given), or a TypeError naming this layer.

        With ``like`` (one of the layer's weight arrays), X on another device than
        ``like`` is refused with a ``DeviceError`` naming the layer and both devices.
        """
        if type(X) is np.ndarray and (X.dtype is dtype if dtype is not None else X.dtype.kind == "f") \
                and (like is None or type(like) is np.ndarray):
            return X  # the common case, a numpy array as the layer computes: no further call
        X = as_float_input(self, X, dtype)
        if like is not None:
            check_same_device(self, X, like)
        return X

    def forward_cache(self, cached):
        """Return ``cached`` (what forward stored), or raise the backward-before-forward error if None."""
        if cached is None:
            raise self._no_forward_error()
        return cached

    def check_grad(self, dZ, expected: tuple) -> np.ndarray:
        """Return ``dZ`` as an array, refusing a shape other than ``expected`` (the forward output's)."""
        if type(dZ) is np.ndarray and dZ.shape == expected:
            return dZ  # the common case: no further call
        if not is_array(dZ):
            dZ = np.asarray(dZ)
        if dZ.shape != expected:
            raise ShapeError(f"{self!r}: backward expected dZ of shape {expected} "
                             f"(the shape forward returned), got shape {dZ.shape}")
        return dZ

    def _no_forward_error(self) -> RuntimeError:
        return RuntimeError(f"{self!r}: backward called before forward (nothing cached to differentiate)")

    # -- settings and printing ---------------------------------------------------
    def settings(self) -> dict:
        """The constructor settings that define this layer, as data: ``{"in_features": 784, …}``.

        Not its parameters or buffers (those are in ``state_dict``), only what
        was chosen when it was built: sizes, kernel, stride, padding, p … For a
        layer without children, ``type(layer)(**layer.settings())`` builds a fresh
        layer of the same configuration. ``repr`` shows these settings, and
        exporters (``nl.onnx``) read them. A layer with settings overrides this;
        the default is none.
        """
        return {}

    def extra_repr(self) -> str:
        """The settings shown inside ``repr``: ``name=value, …`` from ``settings()`` unless a layer
        overrides this for a shorter form."""
        return ", ".join(f"{name}={value!r}" for name, value in self.settings().items())

    def __repr__(self) -> str:
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not self._children:
            return head + ")"
        lines = [f"  ({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._children.items()]
        return head + "\n" + "\n".join(lines) + "\n)"


def _float_dtype(where):
    """``where`` as a floating-point dtype, or None for a device name (``"cpu"``, ``"cuda:0"``)."""
    if isinstance(where, str) and (where == "cpu" or where.startswith("cuda")):
        return None
    try:
        dtype = np.dtype(where)
    except TypeError:
        if isinstance(where, str):        # not a dtype's name: a device name, which to_device checks
            return None
        raise TypeError(f"Module.to: expected a device ('cpu', 'cuda', 'cuda:N') or a floating-point "
                        f"dtype, got {where!r}") from None
    if dtype.kind != "f":
        raise TypeError(f"Module.to: parameters are floating-point, so the dtype must be too, got {dtype}")
    return dtype


def _contents(value):
    """What an attribute value holds, one level deep: a dict's values, a list's or tuple's items,
    or the value itself."""
    if isinstance(value, dict):
        return value.values()
    return value if isinstance(value, (list, tuple)) else (value,)


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


def __getattr__(name):
    """``from nnlayers.module import Sequential`` as before: the containers moved to nnlayers.containers,
    which imports this module, so they are looked up on first use instead of imported here."""
    if name in ("Sequential", "Residual"):
        from . import containers
        return getattr(containers, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
