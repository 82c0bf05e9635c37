"""Exporters of ``nnlayers/layers/linear.py``: Linear → MatMul, Bias → Add."""
from __future__ import annotations

from ..layers import Bias, Linear
from . import register_exporter

__all__ = ["export_linear", "export_bias"]


@register_exporter(Linear)
def export_linear(layer, graph, X):
    """Z = X W: MatMul(X, W), W in×out as stored."""
    return graph.node("MatMul", [X, graph.parameter(layer, "W")])


@register_exporter(Bias)
def export_bias(layer, graph, X):
    """Z = X + b: Add(X, b), b 1×F broadcast over the batch."""
    return graph.node("Add", [X, graph.parameter(layer, "b")])
