"""``OnnxGraph``: the ONNX graph of one model, built layer by layer by the exporters."""
from __future__ import annotations

import numpy as np

from ..errors import path_label
from ..module import Module
from . import OnnxExportError, exporter_for, label, no_exporter_message, require_onnx

__all__ = ["OnnxGraph"]


class OnnxGraph:
    """What exporters add nodes to: the ONNX graph of one model, built layer by layer.

    ``dtype`` is the graph's floating-point type (numpy), ``opset`` the ONNX
    opset written, ``path`` the dotted path of the layer being exported.
    Value names: the inputs are ``input_names`` (``X``, or ``X0``, ``X1``, …),
    a parameter's initializer is its dotted name (``3.W``), a node's output is
    ``/3/MatMul_output`` (its node name, ``/3/MatMul``, plus ``_output``; a node
    of several outputs has ``_output0``, ``_output1``, …).

    The inputs are of the graph's float type, except those an exporter reads as
    ids through ``integer`` (Embedding's): ``integer_inputs``, declared int64.
    """

    def __init__(self, model: Module, dtype, opset: int, input_names=("X",)):
        self._onnx = require_onnx()
        self.dtype = np.dtype(dtype)
        self.opset = opset
        self.nodes: list = []
        self.initializers: dict = {}                          # name → TensorProto, in order of first use
        self._paths = {id(module): path for path, module in model.named_modules()}
        self._stack: list = []                                # paths of the layers being exported
        self._inputs = {input_names} if isinstance(input_names, str) else set(input_names)
        self._values = set(self._inputs)                      # what nodes may read
        self._read: set = set()                               # what nodes have read
        self.integer_inputs: set = set()                      # inputs declared int64: ids
        self._node_names: set = set()

    @property
    def path(self) -> str:
        """The dotted path of the layer being exported (``""`` for the model itself)."""
        return self._stack[-1] if self._stack else ""

    def export(self, module: Module, *inputs: str):
        """Add ``module``'s nodes, reading the values ``inputs`` (one name per input of its ``forward``);
        returns the name of its output, or a tuple of names for a module with several outputs."""
        path = self._paths.get(id(module))
        if path is None:
            raise OnnxExportError(f"{label(module)} is not part of the model being exported")
        exporter = exporter_for(module)
        if exporter is None:
            raise OnnxExportError(no_exporter_message(module, path))
        self._stack.append(path)
        try:
            Z = exporter(module, self, *inputs)
        except OnnxExportError:
            raise
        except Exception as error:
            raise OnnxExportError(f"{path_label(path)} ({label(module)}) ONNX export: "
                                  f"{type(error).__name__}: {error}") from error
        finally:
            self._stack.pop()
        names = Z if isinstance(Z, tuple) and Z else (Z,)
        if not all(isinstance(name, str) and name in self._values for name in names):
            raise OnnxExportError(f"{path_label(path)} ({label(module)}): its exporter "
                                  f"{getattr(exporter, '__name__', exporter)!r} returned {Z!r}, "
                                  "not the name of a value in the graph (or a tuple of such names)")
        return Z

    def node(self, op_type: str, inputs, *, outputs: int = 1, **attributes):
        """Add the ONNX operator ``op_type`` reading ``inputs`` (value names; ``""`` for an omitted
        optional input) with ``attributes``; returns the name of its output, or with ``outputs=k`` (an
        operator of several outputs: LSTM's Y, Y_h, Y_c) a tuple of the names of its first k outputs."""
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
        names = [f"{name}_output"] if outputs == 1 else [f"{name}_output{k}" for k in range(outputs)]
        self.nodes.append(self._onnx.helper.make_node(op_type, inputs, names, name=name, **attributes))
        self._read.update(inputs)
        self._values.update(names)
        return names[0] if outputs == 1 else tuple(names)

    def integer(self, value: str) -> str:
        """``value`` as int64, for indices (Embedding's Gather): a graph input that no node has read
        yet is declared int64, so that its ids come in as they are; any other value is cast
        (Cast to INT64). A node reading that input as numbers afterwards fails onnx.checker."""
        if value in self.integer_inputs:
            return value
        if value in self._inputs and value not in self._read:
            self.integer_inputs.add(value)
            return value
        return self.node("Cast", [value], to=self._onnx.TensorProto.INT64)

    def parameter(self, layer: Module, name: str) -> str:
        """The initializer of ``layer``'s parameter or buffer ``name``, named by its dotted name
        (``3.W``); floating-point values in the graph's dtype."""
        owned = dict(layer.named_parameters()).get(name) or dict(layer.named_buffers()).get(name)
        if owned is None:
            raise OnnxExportError(f"{label(layer)} has no parameter or buffer {name!r}")
        path = self._paths.get(id(layer))
        if path is None:
            raise OnnxExportError(f"{label(layer)} is not part of the model being exported")
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
