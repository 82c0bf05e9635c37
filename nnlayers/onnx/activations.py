"""Exporters of ``nnlayers/layers/activations.py``: Z = f(X) element-wise, one ONNX operator each."""
from __future__ import annotations

from ..layers import ReLU, Sigmoid, Tanh
from . import register_exporter

__all__ = ["export_sigmoid", "export_tanh", "export_relu"]


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
