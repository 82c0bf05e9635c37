"""Export a model to ONNX, the exchange format that ONNX Runtime and most deployment tools read.

    nl.export_onnx(model, "model.onnx", input_shape=(1, 28, 28))     # one sample's shape; N stays free

The graph is the model's inference function (eval mode: Dropout is the
identity, BatchNorm uses its running statistics), with one input ``X`` of
shape ``(N, *input_shape)``, the batch dimension N symbolic, and one output ``Z``
(``P`` = softmax(Z) over the last axis with ``softmax=True``). A model of
several inputs takes a tuple of shapes and gets inputs ``X0``, ``X1``, …; a
model returning a tuple gets outputs ``Z0``, ``Z1``, … Each parameter becomes
an initializer named by its dotted name (``0.W``, ``3.block.1.b``), its values
copied bit for bit, so a weight in the file is found under the name
``state_dict`` gives it.

Each layer class maps to ONNX operators through an *exporter*,
``exporter(layer, graph, *inputs) -> Z``: it reads the layer's ``settings()``
and parameters, adds the layer's nodes to ``graph`` (an ``OnnxGraph``) and
returns the name of the layer's output (a tuple of names for several). The
library's layers map as follows (the formulas are the layers' own, written in
ONNX operators); each exporter sits in the file named as its layer's
(``nnlayers/layers/conv.py`` → ``nnlayers/onnx/conv.py``)::

    Linear       Z = X W               MatMul(X, W)          W stays in×out: no transpose
    Bias         Z = X + b             Add(X, b)             b is 1×F, broadcast over N
    Sigmoid, Tanh, ReLU                Sigmoid, Tanh, Relu
    Conv2D       Z = W ⋆ X + b         Conv(X, W, b)         W is F×C×kh×kw as stored; pads (ph, pw) on both
                                                             sides (padding="same": (kh//2, kw//2))
    MaxPool2D, AvgPool2D               MaxPool, AveragePool  no padding, floor rule (ceil_mode=0)
    GlobalAvgPool2D                    GlobalAveragePool, then Flatten(axis=1)
    BatchNorm1d/2d                     BatchNormalization    running_mean, running_var, eps (inference)
    Flatten      N×C×H×W → N×(C·H·W)   Flatten(axis=1)
    Dropout      Z = X (eval)          Identity
    Embedding    Z = W[ids]            Gather(W, ids)        ids an int64 input
    RNN, LSTM, GRU                     RNN, LSTM, GRU        time first, gates rows in ONNX's order (recurrent.py);
                                                             initial states as further inputs
    RNNCell, LSTMCell, GRUCell         RNN, LSTM, GRU        over one step: Y_h (and Y_c)
    GELU         Z = X Φ(X)            X · ½ (1 + Erf(X/√2))
    Softmax      Z = softmax(X)        Softmax(axis)         a mask first: Where(mask, −∞, X)
    LayerNorm    Z = γ x̂ + β           LayerNormalization    opset ≥ 17; before, ReduceMean, Sub, Sqrt, Div …
    MultiHeadAttention                 MatMul, Reshape, Transpose, Softmax; masks by Where, the causal one
                                                             built from the inputs' shapes (any length runs)
    PositionalEmbedding  Z = X + P[:T] Add(X, Slice(P))      T read from X's shape at run time
    Sequential   Z = fₙ(…f₁(X))        each child in turn    a tuple is the next child's inputs
    Residual     Z = S(X) + F(X)       Add(S, F)             S = X or the shortcut's output
    Parallel     Zₖ = branchₖ(X…)      each branch           every branch reads every input
    Add          Z = X₁ + … + Xₖ       Sum(X₁, …, Xₖ)
    Concatenate  Z = [X₁ … Xₖ]         Concat(axis)

A user's own layer registers its exporter (``register_exporter``); a
subclass uses its base class's exporter unless it redefines ``forward`` (or an
``Elementwise``'s ``function``). A layer without one, a user's container
included (nnlayers cannot see how its ``forward`` combines its children), is
refused with an error naming it and its place in the model.

``onnx`` is an optional dependency, imported on first use:
``pip install -e '.[onnx]'`` installs it with ``onnxruntime``.
"""
from __future__ import annotations

from typing import Callable

from ..errors import path_label
from ..module import Module

__all__ = ["export_onnx", "register_exporter", "exporter_for", "OnnxGraph", "OnnxExportError", "EXPORTERS",
           "DEFAULT_OPSET", "MIN_OPSET", "require_onnx",
           # the library's exporters, for reuse: register_exporter(MyLayer, export_batch_norm)
           "export_linear", "export_bias", "export_conv2d", "export_max_pool", "export_avg_pool", "export_flatten",
           "export_dropout", "export_sequential", "export_residual", "export_batch_norm", "export_global_avg_pool",
           "export_parallel", "export_add", "export_concatenate", "export_gelu", "export_softmax",
           "export_layer_norm", "export_multi_head_attention", "export_positional_embedding", "export_embedding",
           "export_rnn", "export_lstm", "export_gru", "export_rnn_cell", "export_lstm_cell", "export_gru_cell"]

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
    """Register ``exporter(layer, graph, *inputs) -> Z`` for ``layer_class``; usable as a decorator too.

    ``exporter`` adds the layer's nodes to ``graph`` (an ``OnnxGraph``) and
    returns the name of its output; ``inputs`` are the names of its inputs,
    one per argument of the layer's ``forward``. A layer of one input and one
    output reads ``X`` and returns a name::

        class Cube(nl.Module): ...                          # Z = X³

        @nl.onnx.register_exporter(Cube)
        def export_cube(layer, graph, X):
            return graph.node("Mul", [X, graph.node("Mul", [X, X])])

    A layer of several inputs takes them in order (``def export_gate(layer,
    graph, X, G)``) and one of several outputs returns a tuple of names, one
    per array its ``forward`` returns.

    ``graph.parameter(layer, "W")`` gives a parameter's initializer,
    ``graph.constant(array, "name")`` a fixed array's, ``graph.export(child, *inputs)``
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


def label(module: Module) -> str:
    """repr for a layer, ``Name(…)`` for a container (whose repr spans many lines)."""
    return f"{type(module).__name__}(…)" if module.named_children() else repr(module)


def no_exporter_message(module: Module, path: str) -> str:
    """Why ``module`` (at ``path``) has no exporter, and how to register one."""
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
    return (f"{path_label(path)} ({label(module)}): cannot export {name} to ONNX: {why}; register one with "
            f"nl.onnx.register_exporter({name}, function) (see help(nl.onnx.register_exporter))")


# The graph, the entry point and the library's exporters by family (each family file registers its own),
# imported after the registry they use.
from .graph import OnnxGraph  # noqa: E402
from .export import DEFAULT_OPSET, MIN_OPSET, export_onnx  # noqa: E402
from .activations import export_gelu, export_relu, export_sigmoid, export_softmax, export_tanh  # noqa: E402,F401
from .attention import export_multi_head_attention, export_transformer_block  # noqa: E402,F401
from .containers import (export_add, export_concatenate, export_parallel, export_residual,  # noqa: E402
                         export_sequential)
from .conv import export_conv2d  # noqa: E402
from .dropout import export_dropout  # noqa: E402
from .embedding import export_embedding  # noqa: E402
from .linear import export_bias, export_linear  # noqa: E402
from .norm import export_batch_norm, export_layer_norm  # noqa: E402
from .pooling import export_avg_pool, export_global_avg_pool, export_max_pool  # noqa: E402
from .positional import export_positional_embedding  # noqa: E402
from .recurrent import (export_gru, export_gru_cell, export_lstm, export_lstm_cell, export_rnn,  # noqa: E402
                        export_rnn_cell)
from .shape import export_flatten  # noqa: E402
