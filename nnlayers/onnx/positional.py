"""Exporter of ``nnlayers/layers/positional.py``: PositionalEmbedding → Slice of P to the input's length, Add."""
from __future__ import annotations

import numpy as np

from ..layers import PositionalEmbedding
from . import register_exporter

__all__ = ["export_positional_embedding"]


@register_exporter(PositionalEmbedding)
def export_positional_embedding(layer, graph, X):
    """Z = X + P[:T]: T read from X's shape at run time (Shape, Slice), so any length up to max_length runs."""
    def integers(values, name):
        return graph.constant(np.array(values), name, dtype=np.int64)

    T = graph.node("Slice", [graph.node("Shape", [X]), integers([1], "length_start"), integers([2], "length_end")])
    rows = graph.node("Slice", [graph.parameter(layer, "P"), integers([0], "first_row"), T, integers([0], "row_axis")])
    return graph.node("Add", [X, rows])
