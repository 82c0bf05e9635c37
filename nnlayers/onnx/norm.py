"""Exporter of ``nnlayers/layers/norm.py``: BatchNorm1d and BatchNorm2d → BatchNormalization (inference)."""
from __future__ import annotations

from ..layers import BatchNorm1d, BatchNorm2d
from . import register_exporter

__all__ = ["export_batch_norm"]


@register_exporter(BatchNorm1d)
@register_exporter(BatchNorm2d)
def export_batch_norm(layer, graph, X):
    """Inference: Z = γ (X − running_mean) / √(running_var + ε) + β, per channel (axis 1):
    BatchNormalization(X, γ, β, running_mean, running_var) with epsilon = ε.

    Inference never uses the momentum; it is written for the record. ONNX's
    ``momentum`` weighs the old running value (PyTorch's and ours weigh the
    new batch), so it is written as 1 − momentum; ``momentum=None`` (the
    cumulative average, which ONNX has no attribute for) leaves it out.
    """
    settings = layer.settings()
    inputs = [X] + [graph.parameter(layer, name) for name in ("gamma", "beta", "running_mean", "running_var")]
    momentum = {} if settings["momentum"] is None else {"momentum": 1.0 - settings["momentum"]}
    return graph.node("BatchNormalization", inputs, epsilon=settings["eps"], **momentum)
