"""Exporter of ``nnlayers/layers/dropout.py``: Dropout, the identity at inference."""
from __future__ import annotations

from ..layers import Dropout
from . import register_exporter

__all__ = ["export_dropout"]


@register_exporter(Dropout)
def export_dropout(layer, graph, X):
    """Inference: Z = X, an Identity."""
    return graph.node("Identity", [X])
