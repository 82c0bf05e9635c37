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
    ``/3/MatMul_output`` (its node name, ``/3/MatMul``, plus ``_output``).
    """

    def __init__(self, model: Module, dtype, opset: int, input_names=("X",)):
        self._onnx = require_onnx()
        self.dtype = np.dtype(dtype)
        self.opset = opset
        self.nodes: list = []
        self.initializers: dict = {}                          # name → TensorProto, in order of first use
        self._paths = {id(module): path for path, module in model.named_modules()}
        self._stack: list = []                                # paths of the layers being exported
        self._values = {input_names} if isinstance(input_names, str) else set(input_names)  # what nodes may read
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
