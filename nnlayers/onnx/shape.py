"""Exporter of ``nnlayers/layers/shape.py``: Flatten."""
from __future__ import annotations

from ..layers import Flatten
from . import register_exporter

__all__ = ["export_flatten"]


@register_exporter(Flatten)
def export_flatten(layer, graph, X):
    """N×C×H×W → N×(C·H·W): Flatten(axis=1)."""
    return graph.node("Flatten", [X], axis=1)
