"""Exporters of the containers: Sequential, Residual, and the merges Parallel, Add and Concatenate.

A container's exporter exports its children with ``graph.export(child, *inputs)``
and wires their outputs together, as its ``forward`` does.
"""
from __future__ import annotations

from ..containers import Add, Concatenate, Parallel, Residual, Sequential
from ..module import as_tuple
from . import register_exporter

__all__ = ["export_sequential", "export_residual", "export_parallel", "export_add", "export_concatenate"]


@register_exporter(Sequential)
def export_sequential(layer, graph, *inputs):
    """Z = fₙ(… f₁(X)): each child's nodes in turn; a child's tuple of outputs is the next one's inputs."""
    values = inputs
    for child in layer.children():
        values = as_tuple(graph.export(child, *values))
    return values if len(values) > 1 else values[0]


@register_exporter(Residual)
def export_residual(layer, graph, X):
    """Z = S + F with F = block(X) and S = X or shortcut(X): Add(S, F)."""
    F = graph.export(layer.block, X)
    S = X if layer.shortcut is None else graph.export(layer.shortcut, X)
    return graph.node("Add", [S, F])


@register_exporter(Parallel)
def export_parallel(layer, graph, *inputs):
    """Zₖ = branchₖ(X₁, …): every branch reads every input; the tuple of the branches' outputs."""
    return tuple(graph.export(branch, *inputs) for branch in layer.children())


@register_exporter(Add)
def export_add(layer, graph, *inputs):
    """Z = X₁ + … + Xₖ: Sum(X₁, …, Xₖ)."""
    return graph.node("Sum", list(inputs))


@register_exporter(Concatenate)
def export_concatenate(layer, graph, *inputs):
    """Z = [X₁ … Xₖ] along the layer's axis: Concat(X₁, …, Xₖ, axis)."""
    return graph.node("Concat", list(inputs), axis=int(layer.axis))

