"""Exporters of ``nnlayers/layers/activations.py``: Z = f(X) element-wise, one ONNX operator each (GELU a few,
around Erf); Softmax, masked by a Where."""
from __future__ import annotations

import numpy as np

from ..layers import GELU, ReLU, Sigmoid, Softmax, Tanh
from . import register_exporter, require_onnx

__all__ = ["export_sigmoid", "export_tanh", "export_relu", "export_gelu", "export_softmax"]


@register_exporter(Sigmoid)
def export_sigmoid(layer, graph, X):
    """Z = σ(X): Sigmoid(X)."""
    return graph.node("Sigmoid", [X])


@register_exporter(Tanh)
def export_tanh(layer, graph, X):
    """Z = tanh(X): Tanh(X)."""
    return graph.node("Tanh", [X])


@register_exporter(ReLU)
def export_relu(layer, graph, X):
    """Z = max(X, 0): Relu(X)."""
    return graph.node("Relu", [X])


@register_exporter(GELU)
def export_gelu(layer, graph, X):
    """Z = X Φ(X) = X · ½ (1 + erf(X/√2)): Erf (opset 9), then Add and Muls."""
    erf = graph.node("Erf", [graph.node("Mul", [X, graph.constant(np.sqrt(0.5), "one_over_sqrt2")])])
    Phi = graph.node("Mul", [graph.node("Add", [erf, graph.constant(1.0, "one")]), graph.constant(0.5, "half")])
    return graph.node("Mul", [X, Phi])


@register_exporter(Softmax)
def export_softmax(layer, graph, X, mask=None):
    """Z = softmax(X) along the axis: Softmax(axis); with a mask, first Where(mask, −∞, X), the mask
    (the graph's float 0/1, or a boolean value) cast to bool."""
    if mask is not None:
        hidden = graph.node("Cast", [mask], to=require_onnx().TensorProto.BOOL)
        X = graph.node("Where", [hidden, graph.constant(-np.inf, "minus_infinity"), X])
    return graph.node("Softmax", [X], axis=layer.axis)
