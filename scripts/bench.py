"""Time training steps of nnlayers against a lean hand-written numpy loop and PyTorch (CPU).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 python scripts/bench.py [--repeats 15] [--only xor]

Every candidate runs in the same process, interleaved round by round so that
any background load hits all of them alike; each round times a block of
steps, and the table reports the median time per step and ratios of medians.
A step is forward, loss, backward, optimizer step and zero_grad; no network
computes the gradient of its input data (``input_grad=False`` on the first
nnlayers layer, as PyTorch and the lean loop do not compute it either).

OPENBLAS_CORETYPE, if this machine sets it, pins OpenBLAS to an older kernel;
for numbers comparable with a stock numpy, unset it (and OPENBLAS_L2_SIZE)
for this command alone: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE …``.
"""
from __future__ import annotations

import os

# One BLAS thread, set before numpy or torch load their thread pools.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import argparse  # noqa: E402
import statistics  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import nnlayers as nl  # noqa: E402
from nnlayers.examples import mnist  # noqa: E402
from nnlayers.examples.xor import XOR_X, XOR_Y, xor_network  # noqa: E402

try:
    import torch
    torch.set_num_threads(1)
except ImportError:  # the benchmark still compares nnlayers with plain numpy
    torch = None


# -- XOR: 2-8-1 sigmoid network, Euclidean loss, float64, full batch --------------------------
XOR_LR = 0.5


def nnlayers_step(model, loss, X, Y, lr):
    """One training step of the library, the derivation's loop."""
    optimizer = nl.SGD(model.parameters(), lr=lr)

    def step():
        loss.forward(model.forward(X), Y)
        model.backward(loss.backward())
        optimizer.step()
        optimizer.zero_grad()
    return step


def xor_nnlayers():
    model = xor_network(8, rng=0)
    model[0].input_grad = False  # X is data: like the others, skip its gradient
    return nnlayers_step(model, nl.EuclideanLoss(), XOR_X, XOR_Y, XOR_LR)


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
    model = torch.nn.Sequential(torch.nn.Linear(2, 8), torch.nn.Sigmoid(), torch.nn.Linear(8, 1),
                                torch.nn.Sigmoid()).double()
    optimizer = torch.optim.SGD(model.parameters(), lr=XOR_LR)
    X, Y = torch.from_numpy(XOR_X), torch.from_numpy(XOR_Y)

    def step():
        loss = 0.5 * ((model(X) - Y) ** 2).sum()
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    return step


# -- MLP and LeNet-like CNN: float32, batch 64, softmax cross-entropy, plain SGD --------------
BATCH, LR = 64, 0.01


def batch(shape):
    rng = np.random.default_rng(0)
    return rng.random((BATCH, *shape), dtype=np.float32), rng.integers(0, 10, BATCH)


def torch_step(model, X, labels):
    X, labels = torch.from_numpy(X), torch.from_numpy(labels)
    loss = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.SGD(model.parameters(), lr=LR)

    def step():
        loss(model(X), labels).backward()
        optimizer.step()
        optimizer.zero_grad()
    return step


def mlp_nnlayers():
    return nnlayers_step(mnist.mlp(784, 256, 10, rng=0), nl.SoftmaxCrossEntropy(), *batch((784,)), LR)  # no dropout


def mlp_torch():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(784, 256), torch.nn.ReLU(), torch.nn.Linear(256, 10))
    return torch_step(model, *batch((784,)))


def lenet_nnlayers():
    # Conv 1→8 3×3 pad 1, ReLU, MaxPool 2, Conv 8→16 3×3 pad 1, ReLU, MaxPool 2, Flatten, Linear 784→10
    return nnlayers_step(mnist.cnn(1, 28, 10, width=8, rng=0), nl.SoftmaxCrossEntropy(), *batch((1, 28, 28)), LR)


def lenet_torch():
    torch.manual_seed(0)
    nn = torch.nn
    model = nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                          nn.Flatten(), nn.Linear(784, 10))
    return torch_step(model, *batch((1, 28, 28)))


CASES = {
    "xor": ("XOR 2-8-1 sigmoid, float64, batch 4", [
        ("nnlayers", xor_nnlayers), ("lean numpy", xor_lean_numpy), ("PyTorch", xor_torch)]),
    "mlp": ("MLP 784-256-10 ReLU, softmax cross-entropy, float32, batch 64", [
        ("nnlayers", mlp_nnlayers), ("PyTorch", mlp_torch)]),
    "lenet": ("LeNet-like CNN (conv 8, pool, conv 16, pool, linear), float32, batch 64", [
        ("nnlayers", lenet_nnlayers), ("PyTorch", lenet_torch)]),
}


def measure(candidates, repeats: int, block_seconds: float) -> dict:
    """Median seconds per step for each candidate, interleaving candidates round by round."""
    steps = {name: make() for name, make in candidates}
    blocks = {}
    for name, step in steps.items():  # warm up, and size each block to about block_seconds
        for _ in range(3):
            step()
        started, count = time.perf_counter(), 0
        while time.perf_counter() - started < block_seconds:
            step()
            count += 1
        blocks[name] = max(1, count)
    times = {name: [] for name in steps}
    for _ in range(repeats):
        for name, step in steps.items():
            started = time.perf_counter()
            for _ in range(blocks[name]):
                step()
            times[name].append((time.perf_counter() - started) / blocks[name])
    return {name: statistics.median(values) for name, values in times.items()}


def format_time(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15, help="timed rounds per case (default 15)")
    parser.add_argument("--block", type=float, default=0.2, help="seconds per timed block (default 0.2)")
    parser.add_argument("--only", choices=sorted(CASES), action="append", help="run only these cases")
    args = parser.parse_args(argv)

    print(f"numpy {np.__version__}, torch {torch.__version__ if torch else 'not installed'}, "
          f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}; "
          f"median of {args.repeats} rounds")
    for key in args.only or CASES:
        title, candidates = CASES[key]
        if torch is None:
            candidates = [(name, make) for name, make in candidates if name != "PyTorch"]
        medians = measure(candidates, args.repeats, args.block)
        base = medians["nnlayers"]
        print(f"\n{title}")
        print(f"  {'':<12} {'per step':>12} {'nnlayers / this':>16}")
        for name, seconds in medians.items():
            print(f"  {name:<12} {format_time(seconds):>12} {base / seconds:>16.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
