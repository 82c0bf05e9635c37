"""Export a model to ONNX, the exchange format that ONNX Runtime and most deployment tools read.

    nl.export_onnx(model, "model.onnx", input_shape=(1, 28, 28))     # one sample's shape; N stays free

The graph is the model's inference function (eval mode: Dropout is the
identity, BatchNorm uses its running statistics), with one input ``X`` of
shape (N, *input_shape), the batch dimension N symbolic, and one output ``Z``
(``P`` = softmax(Z) over the last axis with ``softmax=True``). Each parameter
becomes an initializer named by its dotted name (``0.W``, ``3.block.1.b``),
its values copied bit for bit, so a weight in the file is found under the
name ``state_dict`` gives it.

Each layer class maps to ONNX operators through an *exporter*,
``exporter(layer, graph, X) -> Z``: it reads the layer's ``settings()`` and
parameters, adds the layer's nodes to ``graph`` (an ``OnnxGraph``) and returns
the name of the layer's output. The library's layers map as follows (the
formulas are the layers' own, written in ONNX operators)::

    Linear       Z = X W               MatMul(X, W)          W stays in×out: no transpose
    Bias         Z = X + b             Add(X, b)             b is 1×F, broadcast over N
    Sigmoid, Tanh, ReLU                Sigmoid, Tanh, Relu
    Conv2D       Z = W ⋆ X + b         Conv(X, W, b)         W is F×C×kh×kw as stored; pads (ph, pw) on both
                                                             sides (padding="same": (kh//2, kw//2))
    MaxPool2D, AvgPool2D               MaxPool, AveragePool  no padding, floor rule (ceil_mode=0)
    Flatten      N×C×H×W → N×(C·H·W)   Flatten(axis=1)
    Dropout      Z = X (eval)          Identity
    BatchNorm1d/2d                     BatchNormalization    running_mean, running_var, eps (inference)
    GlobalAvgPool2D                    GlobalAveragePool, then Flatten(axis=1)
    Residual     Z = S(X) + F(X)       Add(S, F)             S = X or the shortcut's output
    Sequential   Z = fₙ(…f₁(X))        each child in turn

A user's own layer registers its exporter (``register_exporter``); a
subclass uses its base class's exporter unless it redefines ``forward`` (or an
``Elementwise``'s ``function``). A layer without one, a user's container
included (nnlayers cannot see how its ``forward`` combines its children), is
refused with an error naming it and its place in the model.

``onnx`` is an optional dependency, imported on first use:
``pip install -e '.[onnx]'`` installs it with ``onnxruntime``.
"""
from __future__ import annotations

import copy
from pathlib import Path
from typing import Callable

import numpy as np

from .atomic import atomic_write
from .layers import (AvgPool2D, BatchNorm1d, BatchNorm2d, Bias, Conv2D, Dropout, Flatten, GlobalAvgPool2D, Linear,
                     MaxPool2D, ReLU, Sigmoid, Tanh)
from .errors import path_label
from .module import Module, Residual, Sequential

__all__ = ["export_onnx", "register_exporter", "exporter_for", "OnnxGraph", "OnnxExportError", "EXPORTERS",
           "DEFAULT_OPSET", "MIN_OPSET", "require_onnx",
           # the library's exporters, for reuse: register_exporter(MyLayer, export_batch_norm)
           "export_linear", "export_bias", "export_conv2d", "export_max_pool", "export_avg_pool", "export_flatten",
           "export_dropout", "export_sequential", "export_residual", "export_batch_norm", "export_global_avg_pool"]

#: The opset written unless ``opset=`` says otherwise: read by every ONNX Runtime since 1.12.
DEFAULT_OPSET = 17
#: The oldest opset the exporters write correctly (Softmax over one axis, as opset 13 defines it).
MIN_OPSET = 13

#: The exporters by layer class: ``{Linear: export_linear, …}``. ``register_exporter`` adds to it.
EXPORTERS: dict = {}

# Methods whose redefinition in a subclass means it computes something else than its base.
_COMPUTING = ("forward", "function")


class OnnxExportError(ValueError):
    """A model, or a layer in it, that cannot be written as ONNX; the message names the layer and its place."""


def require_onnx():
    """The ``onnx`` package, or an ImportError that says how to install it."""
    try:
        import onnx
    except ImportError as error:
        raise ImportError("exporting to ONNX needs the optional 'onnx' package: install it with "
                          "pip install -e '.[onnx]' (from a clone) or pip install 'nnlayers[onnx]'") from error
    return onnx


# -- the registry -------------------------------------------------------------------------------

def register_exporter(layer_class, exporter: Callable | None = None):
    """Register ``exporter(layer, graph, X) -> Z`` for ``layer_class``; usable as a decorator too.

    ``exporter`` adds the layer's nodes to ``graph`` (an ``OnnxGraph``) and
    returns the name of its output; ``X`` is the name of its input::

        class Cube(nl.Module): ...                          # Z = X³

        @nl.onnx.register_exporter(Cube)
        def export_cube(layer, graph, X):
            return graph.node("Mul", [X, graph.node("Mul", [X, X])])

    ``graph.parameter(layer, "W")`` gives a parameter's initializer,
    ``graph.constant(array, "name")`` a fixed array's, ``graph.export(child, X)``
    exports a child (for containers) and ``layer.settings()`` the layer's settings.
    A later registration for the same class replaces the earlier one.
    """
    if not (isinstance(layer_class, type) and issubclass(layer_class, Module)):
        raise TypeError(f"register_exporter: expected a Module subclass, got {layer_class!r}")

    def register(function):
        if not callable(function):
            raise TypeError(f"register_exporter({layer_class.__name__}): {function!r} is not callable")
        EXPORTERS[layer_class] = function
        return function

    return register if exporter is None else register(exporter)


def exporter_for(layer_or_class):
    """The exporter that ``export_onnx`` uses for a layer (or a layer class), or None.

    A class's own registration comes first; failing that, its nearest
    registered base class's, provided no class on the way redefines
    ``forward`` (or an ``Elementwise``'s ``function``): such a subclass computes
    something else and needs an exporter of its own.
    """
    cls = layer_or_class if isinstance(layer_or_class, type) else type(layer_or_class)
    for base in cls.__mro__:
        if base in EXPORTERS:
            return EXPORTERS[base]
        if any(name in base.__dict__ for name in _COMPUTING):
            return None
    return None


# -- the graph under construction -------------------------------------------------------------

class OnnxGraph:
    """What exporters add nodes to: the ONNX graph of one model, built layer by layer.

    ``dtype`` is the graph's floating-point type (numpy), ``opset`` the ONNX
    opset written, ``path`` the dotted path of the layer being exported.
    Value names: the input is ``X``, a parameter's initializer is its dotted
    name (``3.W``), a node's output is ``/3/MatMul_output`` (its node name,
    ``/3/MatMul``, plus ``_output``).
    """

    def __init__(self, model: Module, dtype, opset: int, input_name: str = "X"):
        self._onnx = require_onnx()
        self.dtype = np.dtype(dtype)
        self.opset = opset
        self.nodes: list = []
        self.initializers: dict = {}                          # name → TensorProto, in order of first use
        self._paths = {id(module): path for path, module in model.named_modules()}
        self._stack: list = []                                # paths of the layers being exported
        self._values = {input_name}                           # every name a node may read
        self._node_names: set = set()

    @property
    def path(self) -> str:
        """The dotted path of the layer being exported (``""`` for the model itself)."""
        return self._stack[-1] if self._stack else ""

    def export(self, module: Module, X: str) -> str:
        """Add ``module``'s nodes, reading the value ``X``; returns the name of its output."""
        path = self._paths.get(id(module))
        if path is None:
            raise OnnxExportError(f"{_label(module)} is not part of the model being exported")
        exporter = exporter_for(module)
        if exporter is None:
            raise OnnxExportError(_no_exporter_message(module, path))
        self._stack.append(path)
        try:
            Z = exporter(module, self, X)
        except OnnxExportError:
            raise
        except Exception as error:
            raise OnnxExportError(f"{path_label(path)} ({_label(module)}) ONNX export: "
                                  f"{type(error).__name__}: {error}") from error
        finally:
            self._stack.pop()
        if not isinstance(Z, str) or Z not in self._values:
            raise OnnxExportError(f"{path_label(path)} ({_label(module)}): its exporter "
                                  f"{getattr(exporter, '__name__', exporter)!r} returned {Z!r}, "
                                  "not the name of a value in the graph")
        return Z

    def node(self, op_type: str, inputs, **attributes) -> str:
        """Add the ONNX operator ``op_type`` reading ``inputs`` (value names; ``""`` for an omitted
        optional input) with ``attributes``; returns the name of its output."""
        inputs = list(inputs)
        for name in inputs:
            if name and name not in self._values:
                raise OnnxExportError(f"{path_label(self.path)}: {op_type} reads {name!r}, which no earlier "
                                      "node, initializer or input produces")
        base = "/" + "/".join(filter(None, [*self.path.split("."), op_type]))
        name, count = base, 0
        while name in self._node_names:
            count += 1
            name = f"{base}_{count}"
        self._node_names.add(name)
        output = f"{name}_output"
        self.nodes.append(self._onnx.helper.make_node(op_type, inputs, [output], name=name, **attributes))
        self._values.add(output)
        return output

    def parameter(self, layer: Module, name: str) -> str:
        """The initializer of ``layer``'s parameter or buffer ``name``, named by its dotted name
        (``3.W``); floating-point values in the graph's dtype."""
        owned = layer._parameters.get(name, layer._buffers.get(name))
        if owned is None:
            raise OnnxExportError(f"{_label(layer)} has no parameter or buffer {name!r}")
        path = self._paths.get(id(layer))
        if path is None:
            raise OnnxExportError(f"{_label(layer)} is not part of the model being exported")
        full = f"{path}.{name}" if path else name
        if full not in self.initializers:
            self._add_initializer(full, owned.data)
        return full

    def constant(self, value, name: str, dtype=None) -> str:
        """An initializer for a fixed array that is not a parameter (a shape, a scale), named
        ``<node path>/<name>``; floating-point values take the graph's dtype unless ``dtype`` is given."""
        full = "/" + "/".join(filter(None, [*self.path.split("."), name]))
        if full in self.initializers:
            raise OnnxExportError(f"{path_label(self.path)}: a constant named {name!r} already exists here")
        self._add_initializer(full, np.asarray(value, dtype=dtype))
        return full

    def _add_initializer(self, name: str, array: np.ndarray) -> None:
        if array.dtype.kind == "f" and array.dtype != self.dtype:
            with np.errstate(over="ignore"):
                cast = array.astype(self.dtype)
            if not np.all(np.isfinite(cast) | ~np.isfinite(array)):
                raise OnnxExportError(f"{name} holds values too large for {self.dtype}")
            array = cast
        self.initializers[name] = self._onnx.numpy_helper.from_array(np.ascontiguousarray(array), name)
        self._values.add(name)


def _label(module: Module) -> str:
    """repr for a layer, ``Name(…)`` for a container (whose repr spans many lines)."""
    return f"{type(module).__name__}(…)" if module.named_children() else repr(module)


def _no_exporter_message(module: Module, path: str) -> str:
    name = type(module).__name__
    children = [child for child, _ in module.named_children()]
    base = next((cls for cls in type(module).__mro__[1:] if cls in EXPORTERS), None)
    if children:
        why = (f"it is a container (children {', '.join(children)}), and nnlayers cannot see how its "
               "forward combines them")
    elif base is not None:
        why = (f"it subclasses {base.__name__} but redefines how it computes, so {base.__name__}'s "
               f"exporter may not fit (if it does: nl.onnx.register_exporter({name}, "
               f"nl.onnx.exporter_for({base.__name__})))")
    else:
        why = "no exporter is registered for it"
    return (f"{path_label(path)} ({_label(module)}): cannot export {name} to ONNX: {why}; register one with "
            f"nl.onnx.register_exporter({name}, function) (see help(nl.onnx.register_exporter))")


# -- the library's exporters ------------------------------------------------------------------

def export_linear(layer, graph, X):
    """Z = X W: MatMul(X, W), W in×out as stored."""
    return graph.node("MatMul", [X, graph.parameter(layer, "W")])


def export_bias(layer, graph, X):
    """Z = X + b: Add(X, b), b 1×F broadcast over the batch."""
    return graph.node("Add", [X, graph.parameter(layer, "b")])


def _elementwise(op_type):
    def export(layer, graph, X):
        return graph.node(op_type, [X])
    export.__name__ = f"export_{op_type.lower()}"
    export.__doc__ = f"Z = f(X) element-wise: {op_type}(X)."
    return export


def _pair_of(value) -> tuple:
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


def export_conv2d(layer, graph, X):
    """Z = W ⋆ X + b: Conv(X, W[, b]) with the layer's stride and symmetric zero padding."""
    settings = layer.settings()
    (kh, kw), (sh, sw) = _pair_of(settings["kernel_size"]), _pair_of(settings["stride"])
    padding = settings["padding"]
    ph, pw = (kh // 2, kw // 2) if padding == "same" else _pair_of(padding)
    inputs = [X, graph.parameter(layer, "W")] + ([graph.parameter(layer, "b")] if settings["bias"] else [])
    return graph.node("Conv", inputs, kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw],
                      dilations=[1, 1], group=1)


def export_max_pool(layer, graph, X):
    """Z = the maximum of each window: MaxPool, no padding, floor rule."""
    settings = layer.settings()
    return graph.node("MaxPool", [X], kernel_shape=list(_pair_of(settings["kernel_size"])),
                      strides=list(_pair_of(settings["stride"])), pads=[0, 0, 0, 0], ceil_mode=0)


def export_avg_pool(layer, graph, X):
    """Z = the mean of each window: AveragePool, no padding, floor rule."""
    settings = layer.settings()
    return graph.node("AveragePool", [X], kernel_shape=list(_pair_of(settings["kernel_size"])),
                      strides=list(_pair_of(settings["stride"])), pads=[0, 0, 0, 0], ceil_mode=0,
                      count_include_pad=0)


def export_flatten(layer, graph, X):
    """N×C×H×W → N×(C·H·W): Flatten(axis=1)."""
    return graph.node("Flatten", [X], axis=1)


def export_dropout(layer, graph, X):
    """Inference: Z = X, an Identity."""
    return graph.node("Identity", [X])


def export_sequential(layer, graph, X):
    """Z = fₙ(… f₁(X)): each child's nodes in turn."""
    for child in layer.layers:
        X = graph.export(child, X)
    return X


def export_residual(layer, graph, X):
    """Z = S + F with F = block(X) and S = X or shortcut(X): Add(S, F)."""
    F = graph.export(layer.block, X)
    S = X if layer.shortcut is None else graph.export(layer.shortcut, X)
    return graph.node("Add", [S, F])


def export_batch_norm(layer, graph, X):
    """Inference: Z = γ (X − running_mean) / √(running_var + ε) + β, per channel (axis 1):
    BatchNormalization(X, γ, β, running_mean, running_var) with epsilon = ε.

    ONNX's ``momentum`` weighs the old running value (PyTorch's and ours weigh
    the new batch), so it is written as 1 − momentum; inference never uses it.
    """
    inputs = [X] + [graph.parameter(layer, name) for name in ("gamma", "beta", "running_mean", "running_var")]
    return graph.node("BatchNormalization", inputs, epsilon=float(layer.eps), momentum=1.0 - float(layer.momentum))


def export_global_avg_pool(layer, graph, X):
    """N×C×H×W → N×C, the mean over H×W: GlobalAveragePool (N×C×1×1), then Flatten(axis=1)."""
    return graph.node("Flatten", [graph.node("GlobalAveragePool", [X])], axis=1)


for _class, _exporter in [(Linear, export_linear), (Bias, export_bias), (Sigmoid, _elementwise("Sigmoid")),
                          (Tanh, _elementwise("Tanh")), (ReLU, _elementwise("Relu")), (Conv2D, export_conv2d),
                          (MaxPool2D, export_max_pool), (AvgPool2D, export_avg_pool), (Flatten, export_flatten),
                          (Dropout, export_dropout), (Sequential, export_sequential),
                          (Residual, export_residual), (BatchNorm1d, export_batch_norm),
                          (BatchNorm2d, export_batch_norm), (GlobalAvgPool2D, export_global_avg_pool)]:
    register_exporter(_class, _exporter)


# -- export ----------------------------------------------------------------------------------

def export_onnx(model: Module, path, input_shape, *, opset: int = DEFAULT_OPSET, softmax: bool = False,
                dtype=None):
    """Write ``model``'s inference function as an ONNX file at ``path``; returns the ``onnx.ModelProto``.

    ``input_shape`` is one sample's shape, without the batch dimension (as
    for ``nl.summary``): ``(784,)`` or ``(1, 28, 28)``. The graph's input
    ``X`` has shape (N, *input_shape) with N symbolic, so any batch size runs;
    its output is ``Z`` (or ``P`` = softmax(Z) over the last axis with
    ``softmax=True``). ``opset``: the ONNX opset, ``MIN_OPSET`` (13) or later.
    ``dtype``: the graph's float type, by default the parameters'; ONNX
    Runtime's CPU provider runs Conv and AveragePool in float32 only, so
    export a float64 CNN with ``dtype=np.float32``. ``path=None`` writes no file.

    The model is not changed: no weight, buffer, mode or cache. One zero
    sample goes through a copy of it in eval mode first, so an ``input_shape``
    the model cannot take fails with the layer's own error. The graph passes
    ``onnx.checker.check_model(full_check=True)``; the file is written
    atomically (a temporary file renamed over ``path``).
    """
    onnx = require_onnx()
    from . import __version__

    if not isinstance(model, Module):
        raise TypeError(f"export_onnx: expected a Module, got {type(model).__name__}")
    input_shape = _sample_shape(input_shape)
    opset = _checked_opset(opset, onnx)
    dtype = _graph_dtype(model, dtype)
    output_shape = _probe_output_shape(model, input_shape, dtype)

    graph = OnnxGraph(model, dtype, opset)
    Z = graph.export(model, "X")
    if softmax:
        Z = graph.node("Softmax", [Z], axis=-1)
    output_name = "P" if softmax else "Z"
    _rename_output(graph, Z, output_name)

    helper = onnx.helper
    element = helper.np_dtype_to_tensor_dtype(dtype)
    graph_proto = helper.make_graph(
        graph.nodes, type(model).__name__,
        [helper.make_tensor_value_info("X", element, ["N", *input_shape])],
        [helper.make_tensor_value_info(output_name, element, ["N", *output_shape])],
        initializer=list(graph.initializers.values()))
    opset_ids = [helper.make_opsetid("", opset)]
    proto = helper.make_model(
        graph_proto, opset_imports=opset_ids, ir_version=helper.find_min_ir_version_for(opset_ids),
        producer_name="nnlayers", producer_version=__version__,
        doc_string=f"Exported by nnlayers {__version__} (nnlayers.export_onnx) from:\n{model!r}")
    try:
        onnx.checker.check_model(proto, full_check=True)
    except Exception as error:  # a custom exporter's mistake: say so rather than write a broken file
        raise OnnxExportError(f"export_onnx: the graph fails onnx.checker: {error}") from error
    if path is not None:
        with atomic_write(Path(path)) as file:
            file.write(proto.SerializeToString())
    return proto


def _sample_shape(input_shape) -> tuple:
    try:
        shape = tuple(input_shape)
    except TypeError:
        shape = None
    if not shape or not all(isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d > 0
                            for d in shape):
        raise ValueError(f"export_onnx: input_shape must be one sample's shape, a tuple of positive integers "
                         f"without the batch dimension (e.g. (784,) or (1, 28, 28)), got {input_shape!r}")
    return tuple(int(d) for d in shape)


def _checked_opset(opset, onnx) -> int:
    newest = onnx.defs.onnx_opset_version()
    if isinstance(opset, bool) or not isinstance(opset, (int, np.integer)) or not MIN_OPSET <= opset <= newest:
        raise ValueError(f"export_onnx: opset must be an integer from {MIN_OPSET} to {newest} (the newest this "
                         f"onnx {onnx.__version__} knows), got {opset!r}")
    return int(opset)


def _graph_dtype(model: Module, dtype) -> np.dtype:
    if dtype is not None:
        dtype = np.dtype(dtype)
        if dtype not in (np.float32, np.float64):
            raise ValueError(f"export_onnx: dtype must be float32 or float64, got {dtype}")
        return dtype
    found = sorted({str(parameter.data.dtype) for parameter in model.parameters()})
    if len(found) > 1:
        raise OnnxExportError(f"export_onnx: the model's parameters mix {' and '.join(found)}; "
                              "pass dtype=np.float32 or dtype=np.float64")
    return np.dtype(found[0]) if found else np.dtype(np.float32)


def _probe_output_shape(model: Module, input_shape: tuple, dtype) -> tuple:
    """One sample's output shape, from a zero sample through a copy of the model in eval mode.

    The copy leaves out the forward caches (``cache_names``) that hold arrays,
    so copying a model just after a training step costs no more than its weights.
    """
    kept = {id(array) for array in [*(p.data for p in model.parameters()), *(b.data for b in model.buffers())]}
    memo = {}
    for module in model.modules():
        for name in type(module).cache_names:
            value = getattr(module, name, None)
            if isinstance(value, np.ndarray) and id(value) not in kept:
                memo[id(value)] = None
    probe = copy.deepcopy(model, memo)
    probe.eval()
    try:
        Z = probe(np.zeros((1, *input_shape), dtype=dtype))
    except Exception as error:
        raise OnnxExportError(f"export_onnx: the model cannot take input of shape (N, "
                              f"{', '.join(map(str, input_shape))}): {error}") from error
    if not isinstance(Z, np.ndarray) or Z.ndim < 1 or Z.shape[0] != 1:
        raise OnnxExportError(f"export_onnx: the model returned {type(Z).__name__} of shape {np.shape(Z)} "
                              "for one sample; expected an array with the batch dimension first")
    return Z.shape[1:]


def _rename_output(graph: OnnxGraph, Z: str, name: str) -> None:
    """Make the graph's output value ``Z`` be called ``name`` (an Identity when Z is not a node's output)."""
    if not any(Z in node.output for node in graph.nodes):   # the input (an empty Sequential) or an initializer
        Z = graph.node("Identity", [Z])
    for node in graph.nodes:
        node.input[:] = [name if value == Z else value for value in node.input]
        node.output[:] = [name if value == Z else value for value in node.output]
