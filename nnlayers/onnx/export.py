"""``export_onnx``: a model's inference function written as an ONNX file."""
from __future__ import annotations

import copy
from pathlib import Path

import numpy as np

from ..atomic import atomic_write
from ..inputs import as_tuple
from ..module import Module
from . import OnnxExportError, require_onnx
from .graph import OnnxGraph

__all__ = ["export_onnx", "DEFAULT_OPSET", "MIN_OPSET"]

#: The opset written unless ``opset=`` says otherwise: read by every ONNX Runtime since 1.12.
DEFAULT_OPSET = 17
#: The oldest opset the exporters write correctly (Softmax over one axis, as opset 13 defines it).
MIN_OPSET = 13


def export_onnx(model: Module, path, input_shape, *, opset: int = DEFAULT_OPSET, softmax: bool = False,
                dtype=None, input_dtype=None):
    """Write ``model``'s inference function as an ONNX file at ``path``; returns the ``onnx.ModelProto``.

    ``input_shape`` is one sample's shape, without the batch dimension (as
    for ``nl.summary``): ``(784,)`` or ``(1, 28, 28)``. The graph's input
    ``X`` has shape ``(N, *input_shape)`` with N symbolic, so any batch size runs;
    its output is ``Z`` (or ``P`` = softmax(Z) over the last axis with
    ``softmax=True``). A name in place of a size makes that dimension symbolic
    too: ``input_shape=("T", 64)`` for sequences of any length T (the
    outputs' dimensions that follow it are named so as well). ``opset``: the ONNX opset, ``MIN_OPSET`` (13) or later.
    ``dtype``: the graph's float type, by default the parameters'; ONNX
    Runtime's CPU provider runs Conv, AveragePool, RNN, LSTM and GRU in float32
    only, so export a float64 CNN or recurrent net with ``dtype=np.float32``. ``path=None`` writes no file.

    Several inputs and outputs: for a model whose ``forward`` takes several
    arrays, ``input_shape`` is a tuple of one sample's shapes, one per input
    (``((784,), (10,))``), and the graph's inputs are ``X0``, ``X1``, … in
    that order (with the same symbolic N). A model whose ``forward`` returns
    a tuple gets outputs ``Z0``, ``Z1``, … (``P0``, ``P1``, … with
    ``softmax=True``, each a softmax over its last axis).

    The inputs are of the graph's float type, except an input that the model
    reads as ids (an ``Embedding`` first): it is an int64 input, given
    integer ids as they are. ``input_dtype=np.int64`` says so explicitly
    (one dtype for every input, or a tuple of one per input, None where the
    model decides): the probe then gives that input integer zeros, and a
    model that reads it as numbers is refused.

    The model is not changed: no weight, buffer, mode, state or cache. One zero
    sample goes through a copy of it in eval mode first (twice, at sizes 5, 7, …
    and then 15, 21, …, when ``input_shape`` names dimensions), so an ``input_shape``
    the model cannot take fails with the layer's own error. A stateful
    recurrent layer is exported as it computes from zero states (or from
    the states given as inputs): the graph keeps nothing between runs. The graph passes
    ``onnx.checker.check_model(full_check=True)``; the file is written
    atomically (a temporary file renamed over ``path``).
    """
    onnx = require_onnx()
    from .. import __version__

    if not isinstance(model, Module):
        raise TypeError(f"export_onnx: expected a Module, got {type(model).__name__}")
    input_shapes = _sample_shapes(input_shape)
    opset = _checked_opset(opset, onnx)
    dtype = _graph_dtype(model, dtype)
    input_dtypes = _input_dtypes(input_dtype, len(input_shapes), dtype)
    output_shapes = _probe_output_shapes(model, input_shapes, input_dtypes)

    input_names = _numbered("X", len(input_shapes))
    graph = OnnxGraph(model, dtype, opset, input_names)
    outputs = graph.export(model, *input_names)
    for name, kind in zip(input_names, input_dtypes):
        if kind.kind == "i" and name not in graph.integer_inputs:
            raise OnnxExportError(f"export_onnx: input {name} is int64 (input_dtype), but the model reads it "
                                  "as numbers, not as ids (an Embedding first)")
    outputs = as_tuple(outputs)
    if len(outputs) != len(output_shapes):
        raise OnnxExportError(f"export_onnx: the model's exporter gave {len(outputs)} outputs, its forward "
                              f"{len(output_shapes)}")
    if softmax:
        outputs = tuple(graph.node("Softmax", [Z], axis=-1) for Z in outputs)
    output_names = _numbered("P" if softmax else "Z", len(outputs))
    _name_outputs(graph, outputs, output_names)

    helper = onnx.helper
    element = helper.np_dtype_to_tensor_dtype(dtype)
    graph_proto = helper.make_graph(
        graph.nodes, type(model).__name__,
        [helper.make_tensor_value_info(name, onnx.TensorProto.INT64 if name in graph.integer_inputs else element,
                                       ["N", *shape]) for name, shape in zip(input_names, input_shapes)],
        [helper.make_tensor_value_info(name, element, ["N", *shape])
         for name, shape in zip(output_names, output_shapes)],
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


def _numbered(stem: str, count: int) -> tuple:
    """``("X",)`` for one value, ``("X0", "X1", …)`` for several."""
    return (stem,) if count == 1 else tuple(f"{stem}{i}" for i in range(count))


def _is_dimension(d) -> bool:
    """A size (a positive integer) or the name of a symbolic dimension (an identifier other than N)."""
    if isinstance(d, str):
        return d.isidentifier() and d != "N"
    return isinstance(d, (int, np.integer)) and not isinstance(d, (bool, np.bool_)) and d > 0


def _is_shape(value) -> bool:
    return isinstance(value, (tuple, list)) and len(value) > 0 and all(map(_is_dimension, value))


def _sample_shapes(input_shape) -> tuple:
    """``input_shape`` as a tuple of sample shapes: one for ``(784,)``, several for ``((784,), (10,))``;
    sizes as ints, symbolic dimensions as their names."""
    def shape(dims):
        return tuple(d if isinstance(d, str) else int(d) for d in dims)
    if _is_shape(input_shape):
        return (shape(input_shape),)
    if isinstance(input_shape, (tuple, list)) and input_shape and all(map(_is_shape, input_shape)):
        return tuple(map(shape, input_shape))
    raise ValueError(f"export_onnx: input_shape must be one sample's shape, a tuple of positive integers "
                     f"without the batch dimension (e.g. (784,) or (1, 28, 28)), or a tuple of such shapes "
                     f"for a model of several inputs, got {input_shape!r}; a name in place of a size "
                     f"(('T', 64)) makes that dimension symbolic")


def _checked_opset(opset, onnx) -> int:
    newest = onnx.defs.onnx_opset_version()
    wanted = f"an integer from {MIN_OPSET} to {newest} (the newest this onnx {onnx.__version__} knows)"
    if isinstance(opset, (bool, np.bool_)) or not isinstance(opset, (int, np.integer)):
        raise TypeError(f"export_onnx: opset must be {wanted}, got {opset!r} ({type(opset).__name__})")
    if not MIN_OPSET <= opset <= newest:
        raise ValueError(f"export_onnx: opset must be {wanted}, got {opset!r}")
    return int(opset)


def _input_dtypes(input_dtype, count: int, dtype) -> tuple:
    """One dtype per input for the probe: int64 where ``input_dtype`` says ids, else the graph's float type."""
    given = tuple(input_dtype) if isinstance(input_dtype, (tuple, list)) else (input_dtype,) * count
    if len(given) != count:
        raise ValueError(f"export_onnx: input_dtype must be one dtype or a tuple of one per input ({count}), "
                         f"got {input_dtype!r}")
    checked = []
    for value in given:
        try:
            ids = value is not None and np.dtype(value) == np.int64
        except TypeError:
            ids = False
        if value is not None and not ids:
            raise ValueError(f"export_onnx: input_dtype must be np.int64 (ids) or None (the model decides), "
                             f"got {value!r}")
        checked.append(np.dtype(np.int64) if ids else dtype)
    return tuple(checked)


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


def _probe_output_shapes(model: Module, input_shapes: tuple, dtypes: tuple) -> tuple:
    """Each output's shape for one sample, from zero samples through a copy of the model in eval mode.

    Symbolic dimensions (names in ``input_shapes``) are run at two sets of sizes, 5, 7, 9, … and then
    one more each (small, so that a model with a largest length, a GPT's context, takes them): an
    output dimension that equals the same name's size both times is that name, one that changes
    otherwise is left unnamed (None: ONNX's unknown dimension), the others are sizes.
    """
    names = list(dict.fromkeys(d for shape in input_shapes for d in shape if isinstance(d, str)))
    if not names:
        return _probe(model, input_shapes, dtypes)
    first = {name: 5 + 2 * k for k, name in enumerate(names)}
    second = {name: size + 1 for name, size in first.items()}
    runs = [_probe(model, tuple(tuple(sizes.get(d, d) for d in shape) for shape in input_shapes), dtypes)
            for sizes in (first, second)]
    by_sizes = {(first[name], second[name]): name for name in names}
    return tuple(tuple(a if a == b else by_sizes.get((a, b)) for a, b in zip(*shapes))
                 for shapes in zip(*runs))


def _probe(model: Module, input_shapes: tuple, dtypes: tuple) -> tuple:
    """Each output's shape for one sample of the given sizes (zeros of ``dtypes``, one per input), through
    a copy of the model in eval mode.

    The copy leaves out the forward caches (``cache_names``) that hold arrays,
    so copying a model just after a training step costs no more than its weights;
    its stateful layers (``reset_state``) start from zeros, as the graph does.
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
    for module in probe.modules():
        if callable(getattr(module, "reset_state", None)):
            module.reset_state()
    try:
        zeros = [np.zeros((1, *shape), dtype=dtype) for shape, dtype in zip(input_shapes, dtypes)]
        outputs = probe(*zeros)                                                       # errors located
    except Exception as error:
        shapes = " and ".join(f"(N, {', '.join(map(str, shape))})" for shape in input_shapes)
        raise OnnxExportError(f"export_onnx: the model cannot take input of shape {shapes}: {error}") from error
    outputs = as_tuple(outputs)
    for Z in outputs:
        if not isinstance(Z, np.ndarray) or Z.ndim < 1 or Z.shape[0] != 1:
            raise OnnxExportError(f"export_onnx: the model returned {type(Z).__name__} of shape {np.shape(Z)} "
                                  "for one sample; expected an array with the batch dimension first")
    return tuple(Z.shape[1:] for Z in outputs)


def _name_outputs(graph: OnnxGraph, outputs: tuple, names: tuple) -> None:
    """Make the graph's output values ``outputs`` be called ``names``: each is renamed where a node
    produces it, or copied by an Identity where it is an input, an initializer or an earlier output."""
    produced = {value for node in graph.nodes for value in node.output}
    own = []
    for Z in outputs:
        own.append(graph.node("Identity", [Z]) if Z not in produced or Z in own else Z)
    renamed = dict(zip(own, names))
    for node in graph.nodes:
        node.input[:] = [renamed.get(value, value) for value in node.input]
        node.output[:] = [renamed.get(value, value) for value in node.output]
