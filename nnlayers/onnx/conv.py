"""Exporter of ``nnlayers/layers/conv.py``: Conv2D → Conv."""
from __future__ import annotations

from ..layers import Conv2D
from . import register_exporter

__all__ = ["export_conv2d", "pair_of"]


def pair_of(value) -> tuple:
    """(h, w) from a pair or from one number for both."""
    return tuple(value) if isinstance(value, (tuple, list)) else (value, value)


@register_exporter(Conv2D)
def export_conv2d(layer, graph, X):
    """Z = W ⋆ X + b: Conv(X, W[, b]) with the layer's stride and symmetric zero padding."""
    settings = layer.settings()
    (kh, kw), (sh, sw) = pair_of(settings["kernel_size"]), pair_of(settings["stride"])
    padding = settings["padding"]
    ph, pw = (kh // 2, kw // 2) if padding == "same" else pair_of(padding)
    inputs = [X, graph.parameter(layer, "W")] + ([graph.parameter(layer, "b")] if settings["bias"] else [])
    return graph.node("Conv", inputs, kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw],
                      dilations=[1, 1], group=1)
