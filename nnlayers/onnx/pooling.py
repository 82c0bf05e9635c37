"""Exporters of ``nnlayers/layers/pooling.py``: MaxPool2D, AvgPool2D and GlobalAvgPool2D."""
from __future__ import annotations

from ..layers import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from . import register_exporter
from .conv import pair_of

__all__ = ["export_max_pool", "export_avg_pool", "export_global_avg_pool"]


@register_exporter(MaxPool2D)
def export_max_pool(layer, graph, X):
    """Z = the maximum of each window: MaxPool, no padding, floor rule."""
    settings = layer.settings()
    return graph.node("MaxPool", [X], kernel_shape=list(pair_of(settings["kernel_size"])),
                      strides=list(pair_of(settings["stride"])), pads=[0, 0, 0, 0], ceil_mode=0)


@register_exporter(AvgPool2D)
def export_avg_pool(layer, graph, X):
    """Z = the mean of each window: AveragePool, no padding, floor rule."""
    settings = layer.settings()
    return graph.node("AveragePool", [X], kernel_shape=list(pair_of(settings["kernel_size"])),
                      strides=list(pair_of(settings["stride"])), pads=[0, 0, 0, 0], ceil_mode=0,
                      count_include_pad=0)


@register_exporter(GlobalAvgPool2D)
def export_global_avg_pool(layer, graph, X):
    """N×C×H×W → N×C, the mean over H×W: GlobalAveragePool (N×C×1×1), then Flatten(axis=1)."""
    return graph.node("Flatten", [graph.node("GlobalAveragePool", [X])], axis=1)
