"""One training step per framework, and the benchmark's cases built from them.

A step is forward, loss, backward, optimizer step and zero_grad; no network
computes the gradient of its input data (``input_grad=False`` on the first
nnlayers layer, as PyTorch and the lean loop do not compute it either). Each
case lists its candidates as (name, make) pairs: ``make()`` builds the model
and returns its step, a function of no arguments.
"""
from __future__ import annotations

import numpy as np

import nnlayers as nl
from nnlayers.examples.xor import XOR_X, XOR_Y

from . import models, sequences
from .models import NET_BATCHES, NETS, WINOGRAD_NETS, torch

XOR_LR = 0.5
BATCH, LR = 64, 0.01


def batch(shape, size=BATCH):
    """float32 inputs of ``shape`` and integer labels in 0…9, ``size`` of each (the same every call)."""
    rng = np.random.default_rng(0)
    return rng.random((size, *shape), dtype=np.float32), rng.integers(0, 10, size)


def nnlayers_step(model, loss, X, Y, lr, optimizer=None, clip=None):
    """One training step of the library, the derivation's loop (plain SGD unless ``optimizer``; the
    gradient's norm clipped to ``clip`` before the update when given)."""
    optimizer = optimizer or nl.SGD(model.parameters(), lr=lr)
    parameters = model.parameters()

    def step():
        loss.forward(model.forward(X), Y)
        model.backward(loss.backward())
        if clip is not None:
            nl.clip_grad_norm(parameters, clip)
        optimizer.step()
        optimizer.zero_grad()
    return step


def torch_step(model, X, labels, adam=False):
    """PyTorch's step: cross-entropy, then SGD (η = LR) or Adam (η = 10⁻³)."""
    X, labels = torch.from_numpy(X), torch.from_numpy(labels)
    loss = torch.nn.CrossEntropyLoss()
    optimizer = (torch.optim.Adam(model.parameters(), lr=1e-3) if adam
                 else torch.optim.SGD(model.parameters(), lr=LR))

    def step():
        loss(model(X), labels).backward()
        optimizer.step()
        optimizer.zero_grad()
    return step


# -- XOR: 2-8-1 sigmoid network, Euclidean loss, float64, full batch -----------------------------

def xor_nnlayers():
    return nnlayers_step(models.xor_nnlayers(), nl.EuclideanLoss(), XOR_X, XOR_Y, XOR_LR)


def xor_lean_numpy():
    """The derivation written straight out in numpy: no objects, no checks."""
    rng = np.random.default_rng(0)
    W1, b1 = rng.uniform(-0.8, 0.8, (2, 8)), np.zeros((1, 8))
    W2, b2 = rng.uniform(-0.8, 0.8, (8, 1)), np.zeros((1, 1))
    X, Y = XOR_X, XOR_Y

    def step():
        nonlocal W1, b1, W2, b2  # updated in place by -=
        A1 = 1.0 / (1.0 + np.exp(-(X @ W1 + b1)))
        A2 = 1.0 / (1.0 + np.exp(-(A1 @ W2 + b2)))
        diff = A2 - Y
        0.5 * float(np.sum(diff * diff))
        d2 = diff * A2 * (1.0 - A2)
        d1 = (d2 @ W2.T) * A1 * (1.0 - A1)
        W2 -= XOR_LR * (A1.T @ d2)
        b2 -= XOR_LR * d2.sum(axis=0, keepdims=True)
        W1 -= XOR_LR * (X.T @ d1)
        b1 -= XOR_LR * d1.sum(axis=0, keepdims=True)
    return step


def xor_torch():
    torch.manual_seed(0)
    model = models.xor_torch()
    optimizer = torch.optim.SGD(model.parameters(), lr=XOR_LR)
    X, Y = torch.from_numpy(XOR_X), torch.from_numpy(XOR_Y)

    def step():
        loss = 0.5 * ((model(X) - Y) ** 2).sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return step


# -- MLP and LeNet-like CNN: float32, batch 64, softmax cross-entropy, plain SGD -----------------

def mlp_nnlayers():
    return nnlayers_step(models.mlp_nnlayers(), nl.SoftmaxCrossEntropy(), *batch((784,)), LR)


def mlp_torch():
    torch.manual_seed(0)
    return torch_step(models.mlp_torch(), *batch((784,)))


def lenet_nnlayers():
    return nnlayers_step(models.lenet_nnlayers(), nl.SoftmaxCrossEntropy(), *batch((1, 28, 28)), LR)


def lenet_torch():
    torch.manual_seed(0)
    return torch_step(models.lenet_torch(), *batch((1, 28, 28)))


# -- the nets people train: float32, Adam (η = 10⁻³), softmax cross-entropy ----------------------

def net_candidates(key, size):
    """nnlayers, PyTorch and (for ``WINOGRAD_NETS``) nnlayers with Winograd, training net ``key``."""
    _, make_ours, make_theirs, shape = NETS[key]

    def ours(*arguments):
        model = make_ours(*arguments)
        return nnlayers_step(model, nl.SoftmaxCrossEntropy(), *batch(shape, size), None,
                             optimizer=nl.Adam(model.parameters(), lr=1e-3))

    def theirs():
        torch.manual_seed(0)
        return torch_step(make_theirs(), *batch(shape, size), adam=True)
    candidates = [("nnlayers", ours), ("PyTorch", theirs)]
    if key in WINOGRAD_NETS:
        candidates.append(("Winograd", lambda: ours("winograd")))
    return candidates


#: key: (title, [(candidate name, make)]).
CASES = {
    "xor": ("XOR 2-8-1 sigmoid, float64, batch 4", [
        ("nnlayers", xor_nnlayers), ("lean numpy", xor_lean_numpy), ("PyTorch", xor_torch)]),
    "mlp": ("MLP 784-256-10 ReLU, softmax cross-entropy, float32, batch 64", [
        ("nnlayers", mlp_nnlayers), ("PyTorch", mlp_torch)]),
    "lenet": ("LeNet-like CNN (conv 8, pool, conv 16, pool, linear), float32, batch 64", [
        ("nnlayers", lenet_nnlayers), ("PyTorch", lenet_torch)]),
}
for _key, (_title, *_rest) in NETS.items():
    for _size in NET_BATCHES:
        CASES[f"{_key}-{_size}"] = (f"{_title}, Adam, float32, batch {_size}", net_candidates(_key, _size))
CASES["char-lstm"] = ("Character LSTM (Embedding 81→64, LSTM 256, Linear 81), cross-entropy over N×T, clipping, "
                      "Adam, float32, N×T = 32×64", [("nnlayers", sequences.char_lstm_nnlayers),
                                                     ("PyTorch", sequences.char_lstm_torch)])
CASES["attention-block"] = ("Transformer block (pre-norm, causal attention 4 heads, MLP 512 with GELU), Euclidean "
                            "loss, Adam, float32, N×T×D = 16×128×128", [
                                ("nnlayers", sequences.attention_block_nnlayers),
                                ("PyTorch", sequences.attention_block_torch)])


def selected(only) -> list[str]:
    """Case keys named by --only: a full key (vgg-64) or a net's name for both batches (vgg)."""
    if not only:
        return list(CASES)
    keys = [key for key in CASES if key in only or key.rsplit("-", 1)[0] in only]
    unknown = [name for name in only if not any(key == name or key.rsplit("-", 1)[0] == name for key in CASES)]
    if unknown:
        raise SystemExit(f"benchmarks: unknown case {', '.join(unknown)}; choose from "
                         f"{', '.join(list(CASES) + list(NETS))}")
    return keys
