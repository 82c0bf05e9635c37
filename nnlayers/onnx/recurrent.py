"""Exporters of ``nnlayers/layers/recurrent.py`` and ``rnn_cells.py``: RNN, LSTM, GRU and their cells →
ONNX's RNN, LSTM and GRU operators.

ONNX's recurrent operators compute the same steps as ours, in their own layout:

* weights with the gates as rows, one direction first: W = [W_xᵀ] (1 × gH × F), R = [W_hᵀ]
  (1 × gH × H), B = [b_x, b_h] (1 × 2gH);
* gates in another order: LSTM i, o, f, c (ours i, f, g, o, with c = g), GRU z, r, h (ours r, z, n);
  the GRU with ``linear_before_reset=1``, PyTorch's and our n = tanh(ax_n + r ⊙ (h W_h,n + b_h,n));
* time first: X of T × N × F, all hidden states Y of T × 1 × N × H (the 1: one direction), initial
  states of 1 × N × H.

So the parameters stay under their dotted names, as everywhere in an exported file, and a few nodes
put them in ONNX's layout: Gather picks the gate blocks in ONNX's order, Transpose makes the gates
rows, Unsqueeze adds the direction. X is transposed to time first and back (any T runs: export with
``input_shape=("T", F)``), and initial states, when the layer is given them, are further inputs.
A cell is the operator over a sequence of one step; its outputs are the final states Y_h (and Y_c).
"""
from __future__ import annotations

import numpy as np

from ..layers import GRU, LSTM, RNN, GRUCell, LSTMCell, RNNCell
from . import register_exporter

__all__ = ["export_rnn", "export_lstm", "export_gru", "export_rnn_cell", "export_lstm_cell", "export_gru_cell"]

#: ONNX's gate k is our gate block ORDER[k]: LSTM i, o, f, c from ours i, f, g, o; GRU z, r, h from r, z, n.
ORDER = {"RNN": [0], "LSTM": [0, 3, 1, 2], "GRU": [1, 0, 2]}


def _weights(layer, graph, op: str, first: str) -> tuple:
    """ONNX's W (1×gH×F), R (1×gH×H) and B (1×2gH) from W_x, W_h, b_x and b_h (``first``: the axes [0])."""
    H = layer.hidden_size
    index = graph.constant(np.concatenate([np.arange(k * H, (k + 1) * H) for k in ORDER[op]]), "gates", np.int64)

    def rows(name):                                  # F×gH (H×gH) → gates in ONNX's order, as rows: 1×gH×F
        picked = graph.node("Gather", [graph.parameter(layer, name), index], axis=1)
        return graph.node("Unsqueeze", [graph.node("Transpose", [picked], perm=[1, 0]), first])

    biases = [graph.node("Gather", [graph.parameter(layer, name), index], axis=0) for name in ("b_x", "b_h")]
    return rows("W_x"), rows("W_h"), graph.node("Unsqueeze", [graph.node("Concat", biases, axis=0), first])


def _attributes(layer, op: str) -> dict:
    attributes = {"hidden_size": layer.hidden_size}
    if op == "RNN":
        attributes["activations"] = ["Relu" if layer.nonlinearity == "relu" else "Tanh"]
    if op == "GRU":
        attributes["linear_before_reset"] = 1         # r scales h W_h + b_h, as PyTorch and ours
    return attributes


def _export_sequence(layer, graph, op: str, X, states):
    """H (N×T×H) = Transpose(Squeeze(op(Transpose(X), W, R, B, initial states)))."""
    first = graph.constant([0], "first_axis", np.int64)
    initial = [graph.node("Unsqueeze", [state, first]) for state in states]     # N×H → 1×N×H
    Xt = graph.node("Transpose", [X], perm=[1, 0, 2])                           # T×N×F
    Y = graph.node(op, [Xt, *_weights(layer, graph, op, first), *([""] + initial if initial else [])],
                   **_attributes(layer, op))                                      # T×1×N×H
    Y = graph.node("Squeeze", [Y, graph.constant([1], "direction_axis", np.int64)])
    return graph.node("Transpose", [Y], perm=[1, 0, 2])


def _export_cell(layer, graph, op: str, x, states):
    """The operator over one step: x (N×F) as 1×N×F; returns its final states Y_h (, Y_c), N×H each."""
    first = graph.constant([0], "first_axis", np.int64)
    initial = [graph.node("Unsqueeze", [state, first]) for state in states]     # N×H → 1×N×H
    one_step = graph.node("Unsqueeze", [x, first])                              # 1×N×F
    outputs = graph.node(op, [one_step, *_weights(layer, graph, op, first), *([""] + initial if initial else [])],
                         outputs=3 if op == "LSTM" else 2, **_attributes(layer, op))
    finals = tuple(graph.node("Squeeze", [state, first]) for state in outputs[1:])   # Y_h (, Y_c): 1×N×H
    return finals if op == "LSTM" else finals[0]


@register_exporter(RNN)
def export_rnn(layer, graph, X, *h0):
    """H of hₜ = f(xₜ W_x + b_x + hₜ₋₁ W_h + b_h): ONNX's RNN, activations [Tanh] or [Relu]."""
    return _export_sequence(layer, graph, "RNN", X, h0)


@register_exporter(LSTM)
def export_lstm(layer, graph, X, *states):
    """H of the LSTM: ONNX's LSTM (gates i, o, f, c); h0 and c0 as its initial_h and initial_c."""
    return _export_sequence(layer, graph, "LSTM", X, states)


@register_exporter(GRU)
def export_gru(layer, graph, X, *h0):
    """H of the GRU: ONNX's GRU (gates z, r, h) with linear_before_reset=1."""
    return _export_sequence(layer, graph, "GRU", X, h0)


@register_exporter(RNNCell)
def export_rnn_cell(layer, graph, x, *h):
    """h' = f(x W_x + b_x + h W_h + b_h): ONNX's RNN over one step, its Y_h."""
    return _export_cell(layer, graph, "RNN", x, h)


@register_exporter(LSTMCell)
def export_lstm_cell(layer, graph, x, *states):
    """(h', c'): ONNX's LSTM over one step, its Y_h and Y_c."""
    return _export_cell(layer, graph, "LSTM", x, states)


@register_exporter(GRUCell)
def export_gru_cell(layer, graph, x, *h):
    """h': ONNX's GRU over one step, its Y_h."""
    return _export_cell(layer, graph, "GRU", x, h)
