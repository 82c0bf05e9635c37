"""Exporters of ``nnlayers/layers/norm.py``: BatchNorm1d and BatchNorm2d → BatchNormalization (inference);
LayerNorm → LayerNormalization (opset 17 on), or the same formula in ReduceMean, Sub, Mul, Sqrt, Div, Add."""
from __future__ import annotations

import numpy as np

from ..layers import BatchNorm1d, BatchNorm2d, LayerNorm
from . import register_exporter

__all__ = ["export_batch_norm", "export_layer_norm"]


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


@register_exporter(LayerNorm)
def export_layer_norm(layer, graph, X):
    """Z = γ (X − μ)/√(v + ε) + β over the last k = len(normalized_shape) axes.

    Opset 17 and later: LayerNormalization(X, γ, β) with axis = −k. Earlier opsets
    (13–16) have no such operator, so the formula is written out::

        μ = ReduceMean(X);  C = X − μ;  v = ReduceMean(C · C);  Z = C / √(v + ε) · γ + β
    """
    settings = layer.settings()
    k = len(settings["normalized_shape"])
    gamma, beta = graph.parameter(layer, "gamma"), graph.parameter(layer, "beta")
    if graph.opset >= 17:
        return graph.node("LayerNormalization", [X, gamma, beta], axis=-k, epsilon=settings["eps"])
    axes = list(range(-k, 0))
    centred = graph.node("Sub", [X, graph.node("ReduceMean", [X], axes=axes, keepdims=1)])
    variance = graph.node("ReduceMean", [graph.node("Mul", [centred, centred])], axes=axes, keepdims=1)
    sigma = graph.node("Sqrt", [graph.node("Add", [variance, graph.constant(np.array(settings["eps"]), "eps")])])
    return graph.node("Add", [graph.node("Mul", [graph.node("Div", [centred, sigma]), gamma]), beta])
