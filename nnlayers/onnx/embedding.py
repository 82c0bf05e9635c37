"""Exporter of ``nnlayers/layers/embedding.py``: Embedding → Gather."""
from __future__ import annotations

from ..layers import Embedding
from . import register_exporter

__all__ = ["export_embedding"]


@register_exporter(Embedding)
def export_embedding(layer, graph, ids):
    """Z = W[ids]: Gather(W, ids) along W's rows (axis 0), ids of any shape S giving S×D.

    The ids are int64 (``graph.integer``): a graph input read here is declared int64, so
    ONNX Runtime takes integer ids as they are."""
    return graph.node("Gather", [graph.parameter(layer, "W"), graph.integer(ids)], axis=0)
