"""The numpy peers: the two common numpy designs of a convolution layer, written minimally.

Both compute the same sums as ``nl.Conv2D`` (the formulas of its docstring),
with W of shape F×C×kh×kw, X of shape N×C×H×W and Z of shape N×F×Ho×Wo:

* ``Im2colConv``, the textbook design (CS231n's ``conv_forward_im2col``, the
  ``im2col`` of Saito's *Deep Learning from Scratch*, and the many courses that
  copy them): one copy per kernel offset (i, j) into a column matrix of
  (N·P)×K, K = C·kh·kw, P = Ho·Wo, then one matrix product,

      Z₂ = cols W₂ᵀ (+ b),    δW₂ = δZ₂ᵀ cols,    δcols = δZ₂ W₂,

  and col2im adds δcols back offset by offset.
* ``TensordotConv``, Chainer's CPU design (``Convolution2DFunction.forward_cpu``:
  ``im2col_cpu`` + ``numpy.tensordot``):
  the columns as a 6-D array N×C×kh×kw×Ho×Wo, contracted with W over (C, kh, kw)
  for Z, over (N, Ho, Wo) with δZ for δW, and over F for δcol.

Neither chunks the batch, reuses work arrays or threads its copies; that is
what the peers row of the speed table measures. ``peer_table`` times them beside
nnlayers' ``Conv2D`` and PyTorch's ``Conv2d`` on every convolution shape of the
reference nets (``reference_convolutions``), forward + backward, one layer at a
time; the speed page's row asks for one thread (``--threads 1``, the default).
"""
from __future__ import annotations

import numpy as np

import nnlayers as nl
from nnlayers.layers.conv import conv_output_size

from .models import NETS, torch
from .report import format_time
from .timing import measure


def _padded(X, ph, pw, extra_h=0, extra_w=0):
    return np.pad(X, ((0, 0), (0, 0), (ph, ph + extra_h), (pw, pw + extra_w)))


class Im2colConv:
    """The textbook convolution: per-offset copies into an (N·P)×K matrix, one product each way."""

    def __init__(self, W, b=None, stride=(1, 1), padding=(0, 0), input_grad=True):
        self.W, self.b, self.stride, self.padding, self.input_grad = W, b, stride, padding, input_grad

    def forward(self, X):
        (F, C, kh, kw), (sh, sw), (ph, pw), (N, _, H, W) = self.W.shape, self.stride, self.padding, X.shape
        Ho, Wo = conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw)
        Xp = _padded(X, ph, pw)
        cols = np.empty((N, Ho, Wo, C, kh, kw), dtype=X.dtype)
        for i in range(kh):
            for j in range(kw):
                cols[..., i, j] = Xp[:, :, i:i + sh * Ho:sh, j:j + sw * Wo:sw].transpose(0, 2, 3, 1)
        self.cols, self.X_shape = cols.reshape(N * Ho * Wo, C * kh * kw), X.shape
        Z2 = self.cols @ self.W.reshape(F, -1).T                      # (N·P)×F
        if self.b is not None:
            Z2 += self.b
        return Z2.reshape(N, Ho, Wo, F).transpose(0, 3, 1, 2)

    def backward(self, dZ):
        F, C, kh, kw = self.W.shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        N, _, H, W = self.X_shape
        Ho, Wo = dZ.shape[2:]
        dZ2 = dZ.transpose(0, 2, 3, 1).reshape(N * Ho * Wo, F)
        self.dW = (dZ2.T @ self.cols).reshape(self.W.shape)
        self.db = dZ.sum(axis=(0, 2, 3)) if self.b is not None else None
        if not self.input_grad:
            return None
        dcols = (dZ2 @ self.W.reshape(F, -1)).reshape(N, Ho, Wo, C, kh, kw)
        dXp = np.zeros((N, C, H + 2 * ph, W + 2 * pw), dtype=dZ.dtype)
        for i in range(kh):                                           # col2im: each offset adds back
            for j in range(kw):
                dXp[:, :, i:i + sh * Ho:sh, j:j + sw * Wo:sw] += dcols[..., i, j].transpose(0, 3, 1, 2)
        return dXp[:, :, ph:ph + H, pw:pw + W]


class TensordotConv:
    """Chainer's CPU convolution: a 6-D column array N×C×kh×kw×Ho×Wo and ``np.tensordot``."""

    def __init__(self, W, b=None, stride=(1, 1), padding=(0, 0), input_grad=True):
        self.W, self.b, self.stride, self.padding, self.input_grad = W, b, stride, padding, input_grad

    def forward(self, X):
        (F, C, kh, kw), (sh, sw), (ph, pw), (N, _, H, W) = self.W.shape, self.stride, self.padding, X.shape
        Ho, Wo = conv_output_size(H, kh, sh, ph), conv_output_size(W, kw, sw, pw)
        Xp = _padded(X, ph, pw, sh - 1, sw - 1)
        col = np.empty((N, C, kh, kw, Ho, Wo), dtype=X.dtype)
        for i in range(kh):
            for j in range(kw):
                col[:, :, i, j] = Xp[:, :, i:i + sh * Ho:sh, j:j + sw * Wo:sw]
        self.col, self.X_shape = col, X.shape
        Z = np.tensordot(col, self.W, ((1, 2, 3), (1, 2, 3)))         # N×Ho×Wo×F
        if self.b is not None:
            Z += self.b
        return np.rollaxis(Z, 3, 1)

    def backward(self, dZ):
        F, C, kh, kw = self.W.shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        N, _, H, W = self.X_shape
        Ho, Wo = dZ.shape[2:]
        self.dW = np.tensordot(dZ, self.col, ((0, 2, 3), (0, 4, 5)))  # F×C×kh×kw
        self.db = dZ.sum(axis=(0, 2, 3)) if self.b is not None else None
        if not self.input_grad:
            return None
        dcol = np.rollaxis(np.tensordot(self.W, dZ, (0, 1)), 3)        # C×kh×kw×N×Ho×Wo → N×C×kh×kw×Ho×Wo
        dXp = np.zeros((N, C, H + 2 * ph + sh - 1, W + 2 * pw + sw - 1), dtype=dZ.dtype)
        for i in range(kh):                                           # col2im
            for j in range(kw):
                dXp[:, :, i:i + sh * Ho:sh, j:j + sw * Wo:sw] += dcol[:, :, i, j]
        return dXp[:, :, ph:ph + H, pw:pw + W]


PEERS = {"im2col (CS231n)": Im2colConv, "tensordot (Chainer)": TensordotConv}


def peer_of(conv, design):
    """``design`` (a peer class) computing what the nnlayers ``conv`` computes, on its own arrays."""
    return design(conv.W.data, None if conv.b is None else conv.b.data, conv.stride, conv.padding, conv.input_grad)


def reference_convolutions() -> list[dict]:
    """Every distinct convolution of the reference nets (``models.NETS``): its net, layer, settings and
    input height and width (a forward pass of one image records them)."""
    rows, seen = [], set()
    for net, (_, build, _, shape) in NETS.items():
        model, shapes = build(), {}
        convs = [(path, m) for path, m in model.named_modules() if isinstance(m, nl.Conv2D)]
        for path, conv in convs:
            forward = conv.forward
            conv.forward = lambda X, path=path, forward=forward: (shapes.setdefault(path, X.shape), forward(X))[1]
        model.forward(np.zeros((1, *shape), dtype=np.float32))
        for path, conv in convs:
            row = {"net": net, "layer": path, "C": conv.in_channels, "F": conv.out_channels,
                   "kernel": list(conv.kernel_size), "stride": list(conv.stride), "padding": list(conv.padding),
                   "bias": conv.b is not None, "input_grad": conv.input_grad, "H": shapes[path][2],
                   "W": shapes[path][3]}
            key = tuple(str(value) for name, value in row.items() if name not in ("net", "layer"))
            if key not in seen:
                seen.add(key)
                rows.append(row)
    return rows


def case_key(row) -> str:
    """A short name for a reference convolution: net, C → F, kernel, input size."""
    return f"{row['net']} {row['C']}→{row['F']} {row['kernel'][0]}×{row['kernel'][1]} {row['H']}×{row['W']}"


def peer_candidates(row, size: int):
    """nnlayers' Conv2D, PyTorch's Conv2d and the two peers: forward + backward of one layer, float32."""
    rng = np.random.default_rng(0)
    X = rng.random((size, row["C"], row["H"], row["W"]), dtype=np.float32)

    def conv():
        return nl.Conv2D(row["C"], row["F"], tuple(row["kernel"]), tuple(row["stride"]), tuple(row["padding"]),
                         bias=row["bias"], rng=0, dtype=np.float32, input_grad=row["input_grad"])
    dZ = rng.random(conv().output_shape(X.shape), dtype=np.float32)

    def step_of(layer):
        def step():
            layer.forward(X)
            layer.backward(dZ)
        return step

    def ours():
        return step_of(conv())

    def theirs():
        layer = torch.nn.Conv2d(row["C"], row["F"], tuple(row["kernel"]), tuple(row["stride"]),
                                tuple(row["padding"]), bias=row["bias"])
        X_t, dZ_t = torch.from_numpy(X).requires_grad_(row["input_grad"]), torch.from_numpy(dZ)

        def step():
            layer(X_t).backward(dZ_t)
            layer.zero_grad()
            X_t.grad = None
        return step
    candidates = [("nnlayers", ours)] + ([("PyTorch", theirs)] if torch is not None else [])
    return candidates + [(name, lambda design=design: step_of(peer_of(conv(), design)))
                         for name, design in PEERS.items()]


def peer_table(args, size: int = 64) -> dict:
    """Time every reference convolution with every candidate; print the table and return its rows."""
    names = ["nnlayers", "PyTorch", *PEERS] if torch is not None else ["nnlayers", *PEERS]
    print(f"\nNumpy peers: one convolution layer of each reference net, forward + backward (δX unless the "
          f"layer takes data), float32, batch {size}; time per step, and the candidate's time / nnlayers'")
    print(f"  {'layer':<30}" + "".join(f"{name:>22}" for name in names))
    report = {}
    for row in reference_convolutions():
        medians = measure(peer_candidates(row, size), args.repeats, args.block)
        cells = "".join(f"{format_time(seconds):>14} {seconds / medians['nnlayers']:>6.2f}×"
                        for seconds in medians.values())
        print(f"  {case_key(row):<30}{cells}")
        report[case_key(row)] = {**row, "batch": size, "seconds": medians}
    return report
