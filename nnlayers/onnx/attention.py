"""Exporter of ``nnlayers/layers/attention.py``: MultiHeadAttention → MatMul, Reshape, Transpose, Softmax.

Nothing in the graph fixes the sequence lengths T and S: the heads are split by
Reshape to (0, 0, H, d) (0 keeps that dimension of the input) and merged by
Reshape to (0, 0, D), and the causal mask is built at run time from the inputs'
shapes (Shape, Range, Greater), so one file serves sequences of any length.
"""
from __future__ import annotations

import math

import numpy as np

from ..layers import MultiHeadAttention, TransformerBlock
from . import register_exporter, require_onnx

__all__ = ["export_multi_head_attention", "export_transformer_block"]


@register_exporter(MultiHeadAttention)
def export_multi_head_attention(layer, graph, X, memory=None, key_padding_mask=None):
    """Z = softmax(Q Kᵀ/√d, masked) V, heads merged, then O W_o + b_o (the layer's docstring), in eval mode
    (dropout is the identity). ``memory`` None (or "") is self-attention; the key padding mask (the graph's
    float 0/1, or a boolean value) is cast to bool, True = padding."""
    onnx = require_onnx()
    D, H = layer.embed_dim, layer.num_heads
    M = X if not memory else memory

    def projection(Y, name):                               # Y W + b
        product = graph.node("MatMul", [Y, graph.parameter(layer, f"W_{name}")])
        return graph.node("Add", [product, graph.parameter(layer, f"b_{name}")])

    heads = graph.constant(np.array([0, 0, H, D // H]), "heads_shape", dtype=np.int64)

    def split(Y, perm):                                    # N×L×D → N×L×H×d, then transposed by perm
        return graph.node("Transpose", [graph.node("Reshape", [Y, heads])], perm=perm)

    Q = split(projection(X, "q"), [0, 2, 1, 3])            # N×H×T×d
    Kt = split(projection(M, "k"), [0, 2, 3, 1])           # N×H×d×S  (Kᵀ directly)
    V = split(projection(M, "v"), [0, 2, 1, 3])            # N×H×S×d
    Q = graph.node("Mul", [Q, graph.constant(1.0 / math.sqrt(D // H), "scale")])     # Q/√d
    A = graph.node("MatMul", [Q, Kt])                      # N×H×T×S

    hidden = None
    if layer.causal:                                       # key s > query t, from the lengths at run time
        index, zero, one = (graph.constant(np.array(v), name, dtype=np.int64)
                            for v, name in ((1, "length_index"), (0, "zero"), (1, "one")))
        T = graph.node("Gather", [graph.node("Shape", [X]), index], axis=0)
        S = graph.node("Gather", [graph.node("Shape", [M]), index], axis=0)
        t = graph.node("Unsqueeze", [graph.node("Range", [zero, T, one]),
                                     graph.constant(np.array([1]), "column_axis", dtype=np.int64)])    # T×1
        s = graph.node("Unsqueeze", [graph.node("Range", [zero, S, one]),
                                     graph.constant(np.array([0]), "row_axis", dtype=np.int64)])       # 1×S
        hidden = graph.node("Greater", [s, t])                                                         # T×S
    if key_padding_mask is not None:
        padding = graph.node("Cast", [key_padding_mask], to=onnx.TensorProto.BOOL)                    # N×S
        padding = graph.node("Unsqueeze", [padding, graph.constant(np.array([1, 2]), "padding_axes",
                                                                   dtype=np.int64)])                  # N×1×1×S
        hidden = padding if hidden is None else graph.node("Or", [hidden, padding])
    if hidden is not None:
        A = graph.node("Where", [hidden, graph.constant(-np.inf, "minus_infinity"), A])
    P = graph.node("Softmax", [A], axis=-1)
    O = graph.node("Transpose", [graph.node("MatMul", [P, V])], perm=[0, 2, 1, 3])                    # N×T×H×d
    O = graph.node("Reshape", [O, graph.constant(np.array([0, 0, D]), "merged_shape", dtype=np.int64)])
    return projection(O, "o")


@register_exporter(TransformerBlock)
def export_transformer_block(layer, graph, X):
    """Z = mlp(attention(X)): its two residual children in turn, as its forward."""
    return graph.export(layer.mlp, graph.export(layer.attention, X))
