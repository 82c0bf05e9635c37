"""Time training steps of nnlayers against a lean hand-written numpy loop and PyTorch (CPU).

    python scripts/bench.py [--threads 1|2] [--repeats 15] [--only vgg] [--json run.json]
    python scripts/bench.py --full            # 1 and 2 threads, with and without OPENBLAS_CORETYPE (~4 min)
    python scripts/bench.py --memory          # VGG-like, batch 128: process growth per framework
    python scripts/bench.py --convs           # single 3×3 convolutions, and numpy's products alone

Every candidate runs in the same process, interleaved round by round so that
any background load hits all of them alike; each round times a block of
steps, and the table reports the median time per step and ratios of medians.
With two threads each block starts after a pause (``SETTLE_SECONDS``) in
which the thread pools of the candidate before it stop spinning.
A step is forward, loss, backward, optimizer step and zero_grad; no network
computes the gradient of its input data (``input_grad=False`` on the first
nnlayers layer, as PyTorch and the lean loop do not compute it either).

The convolutional nets (the Fashion-MNIST reference CNN, LeNet-5, a
CIFAR-sized VGG-like net and a ResNet basic-block stack, each at batch 64 and
128) train with Adam in float32. For them the script also times every
nnlayers layer's forward and backward pass on its own and gives each
convolution's achieved rate (forward + backward floating-point operations per
second) beside numpy's float32 matrix-product rate measured on the spot.

``--threads`` sets the thread count of numpy's BLAS and of PyTorch alike
(it must be known before numpy starts, so it is read first); nnlayers' own
helper threads keep the library's default, one, unless NNLAYERS_NUM_THREADS
says otherwise. ``--blas-threads`` gives numpy's BLAS another count: with
``NNLAYERS_NUM_THREADS=2 … --threads 2 --blas-threads 1`` each of nnlayers'
two lanes of convolution chunks has a core of its own, against PyTorch on
two threads. OPENBLAS_CORETYPE, if this machine sets it, pins OpenBLAS to an
older kernel; for numbers comparable with a stock numpy, unset it (and
OPENBLAS_L2_SIZE) for the command alone: ``env -u OPENBLAS_CORETYPE -u
OPENBLAS_L2_SIZE …``. ``--full`` runs all four combinations one after another
in fresh processes and prints one table of ratios.

Like the training scripts, the benchmark keeps freed memory for reuse
(``nl.reuse_freed_memory``, glibc's malloc) unless ``--system-malloc``: both
frameworks run in this one process, so both gain alike.
"""
from __future__ import annotations

import os
import sys


def _option_from_argv(argv, name: str, default: str) -> str:
    """The value of option ``name``, read before argparse: BLAS thread pools are sized when numpy loads."""
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            return argv[i + 1]
        if arg.startswith(name + "="):
            return arg.split("=", 1)[1]
    return default


THREADS = _option_from_argv(sys.argv[1:], "--threads", "1")
BLAS_THREADS = _option_from_argv(sys.argv[1:], "--blas-threads", THREADS)
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = BLAS_THREADS
# nnlayers' own helper threads (lanes of conv chunks, copies, pooling) keep the library's default,
# one, unless NNLAYERS_NUM_THREADS says otherwise.

import argparse  # noqa: E402
import json  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

import nnlayers as nl  # noqa: E402
from nnlayers.cli import add_malloc_option, apply_malloc_option  # noqa: E402
from nnlayers import _threads as nl_threads  # noqa: E402
from nnlayers.examples import mnist  # noqa: E402
from nnlayers.examples.xor import XOR_X, XOR_Y, xor_network  # noqa: E402

try:
    import torch
    torch.set_num_threads(int(THREADS))
except ImportError:  # the benchmark still compares nnlayers with plain numpy
    torch = None


# -- XOR: 2-8-1 sigmoid network, Euclidean loss, float64, full batch --------------------------
XOR_LR = 0.5


def nnlayers_step(model, loss, X, Y, lr, optimizer=None):
    """One training step of the library, the derivation's loop (plain SGD unless ``optimizer``)."""
    optimizer = optimizer or nl.SGD(model.parameters(), lr=lr)

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


def batch(shape, size=BATCH):
    rng = np.random.default_rng(0)
    return rng.random((size, *shape), dtype=np.float32), rng.integers(0, 10, size)


def torch_step(model, X, labels, adam=False):
    X, labels = torch.from_numpy(X), torch.from_numpy(labels)
    loss = torch.nn.CrossEntropyLoss()
    optimizer = (torch.optim.Adam(model.parameters(), lr=1e-3) if adam
                 else torch.optim.SGD(model.parameters(), lr=LR))

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


# -- the nets people train: float32, Adam (η = 10⁻³), softmax cross-entropy ---------------------
# Each net is written twice, layer for layer: an nnlayers model and the PyTorch one.

def fmnist_cnn_nnlayers():
    """The Fashion-MNIST reference CNN of scripts/train_mnist.py (conv 16, pool, conv 32, pool, 128, 10)."""
    return mnist.build("cnn", rng=0)


def fmnist_cnn_torch():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * 7 * 7, 128), nn.ReLU(), nn.Dropout(0.25), nn.Linear(128, 10))


def lenet5_nnlayers():
    """LeNet-5 on 28×28 (pad 2 first, as on MNIST): conv 6 5×5, pool, conv 16 5×5, pool, 120, 84, 10."""
    f32 = np.float32
    return nl.Sequential(
        nl.Conv2D(1, 6, 5, padding=2, rng=0, dtype=f32, input_grad=False), nl.ReLU(), nl.MaxPool2D(2),
        nl.Conv2D(6, 16, 5, rng=1, dtype=f32), nl.ReLU(), nl.MaxPool2D(2), nl.Flatten(),
        nl.Linear(400, 120, init="he", rng=2, dtype=f32), nl.Bias(120, dtype=f32), nl.ReLU(),
        nl.Linear(120, 84, init="he", rng=3, dtype=f32), nl.Bias(84, dtype=f32), nl.ReLU(),
        nl.Linear(84, 10, rng=4, dtype=f32), nl.Bias(10, dtype=f32))


def lenet5_torch():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def vgg_nnlayers(algorithm="gemm"):
    """CIFAR-sized VGG-like: conv 32, 32, pool, 64, 64, pool (3×3, pad 1), then 4096 → 256 → 10.

    ``algorithm`` is that of the convolutions on 32 or more channels (the first, on the 3 colour
    channels, always uses "gemm": Winograd's products over 3 channels run too slowly to gain).
    """
    f32 = np.float32
    conv = lambda c, f, seed, **kw: nl.Conv2D(c, f, 3, padding=1, rng=seed, dtype=f32, **kw)  # noqa: E731
    wide = lambda c, f, seed: conv(c, f, seed, algorithm=algorithm)  # noqa: E731
    return nl.Sequential(
        conv(3, 32, 0, input_grad=False), nl.ReLU(), wide(32, 32, 1), nl.ReLU(), nl.MaxPool2D(2),
        wide(32, 64, 2), nl.ReLU(), wide(64, 64, 3), nl.ReLU(), nl.MaxPool2D(2), nl.Flatten(),
        nl.Linear(64 * 8 * 8, 256, init="he", rng=4, dtype=f32), nl.Bias(256, dtype=f32), nl.ReLU(),
        nl.Linear(256, 10, rng=5, dtype=f32), nl.Bias(10, dtype=f32))


def vgg_torch():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64 * 8 * 8, 256), nn.ReLU(), nn.Linear(256, 10))


RESNET_WIDTH = 32


def _basic_block_nnlayers(width, seed, algorithm="gemm"):
    """ReLU(X + BN(conv(ReLU(BN(conv(X)))))), 3×3 convolutions, identity shortcut."""
    f32 = np.float32
    conv = lambda s: nl.Conv2D(width, width, 3, padding=1, bias=False, rng=s, dtype=f32,  # noqa: E731
                               algorithm=algorithm)
    block = nl.Sequential(conv(seed), nl.BatchNorm2d(width, dtype=f32), nl.ReLU(), conv(seed + 1),
                          nl.BatchNorm2d(width, dtype=f32))
    return [nl.Residual(block), nl.ReLU()]


def resnet_nnlayers(algorithm="gemm"):
    """3×32×32: conv 32 (+BN), ReLU, pool, two basic blocks of 32 channels at 16×16, avg-pool, 2048 → 10.

    ``algorithm`` is that of the blocks' convolutions (the first layer's, on 3 channels, is "gemm").
    """
    f32 = np.float32
    return nl.Sequential(nl.Conv2D(3, RESNET_WIDTH, 3, padding=1, bias=False, rng=0, dtype=f32, input_grad=False),
                         nl.BatchNorm2d(RESNET_WIDTH, dtype=f32), nl.ReLU(), nl.MaxPool2D(2),
                         *_basic_block_nnlayers(RESNET_WIDTH, 1, algorithm),
                         *_basic_block_nnlayers(RESNET_WIDTH, 3, algorithm),
                         nl.AvgPool2D(2), nl.Flatten(), nl.Linear(RESNET_WIDTH * 8 * 8, 10, rng=5, dtype=f32),
                         nl.Bias(10, dtype=f32))


class _TorchBasicBlock(torch.nn.Module if torch else object):
    def __init__(self, width):
        super().__init__()
        nn = torch.nn
        self.block = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                   nn.ReLU(), nn.Conv2d(width, width, 3, padding=1, bias=False),
                                   nn.BatchNorm2d(width))

    def forward(self, X):
        return torch.relu(X + self.block(X))


def resnet_torch():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, RESNET_WIDTH, 3, padding=1, bias=False), nn.BatchNorm2d(RESNET_WIDTH),
                         nn.ReLU(), nn.MaxPool2d(2), _TorchBasicBlock(RESNET_WIDTH),
                         _TorchBasicBlock(RESNET_WIDTH), nn.AvgPool2d(2), nn.Flatten(),
                         nn.Linear(RESNET_WIDTH * 8 * 8, 10))


# key: (title, nnlayers builder, torch builder, input shape)
NETS = {
    "fmnist-cnn": ("Fashion-MNIST reference CNN (conv 16, pool, conv 32, pool, 128, 10; dropout)",
                   fmnist_cnn_nnlayers, fmnist_cnn_torch, (1, 28, 28)),
    "lenet5": ("LeNet-5 (5×5 conv 6, pool, 5×5 conv 16, pool, 120, 84, 10)",
               lenet5_nnlayers, lenet5_torch, (1, 28, 28)),
    "vgg": ("VGG-like 3×32×32 (conv 32, 32, pool, 64, 64, pool, 256, 10)", vgg_nnlayers, vgg_torch, (3, 32, 32)),
    "resnet": ("ResNet basic blocks 3×32×32 (conv 32, pool, 2 blocks of 32, BN, avg-pool, 10)",
               resnet_nnlayers, resnet_torch, (3, 32, 32)),
}
NET_BATCHES = (64, 128)

#: Nets also timed with Winograd's F(2×2, 3×3) on their wide 3×3 convolutions (``algorithm="winograd"``),
#: a third candidate named "Winograd"; their builders take the algorithm as an argument.
WINOGRAD_NETS = ("vgg", "resnet")


def net_candidates(key, size):
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


def selected(only) -> list[str]:
    """Case keys named by --only: a full key (vgg-64) or a net's name for both batches (vgg)."""
    if not only:
        return list(CASES)
    keys = [key for key in CASES if key in only or key.rsplit("-", 1)[0] in only]
    unknown = [name for name in only if not any(key == name or key.rsplit("-", 1)[0] == name for key in CASES)]
    if unknown:
        raise SystemExit(f"bench.py: unknown case {', '.join(unknown)}; choose from "
                         f"{', '.join(list(CASES) + list(NETS))}")
    return keys


#: With more than one thread, a pause before each timed block. After its work, an idle thread
#: pool keeps spinning on the cores for a while (OpenBLAS's workers about 0.1 s, PyTorch's OpenMP
#: threads up to 0.2 s) and would slow down whichever candidate runs next: measured here without the
#: pause, PyTorch's VGG-like step at 2 threads took 61 ms right after nnlayers' steps and 48–55 ms when
#: OpenBLAS's threads were told to sleep at once (OPENBLAS_THREAD_TIMEOUT=4) or given this pause.
SETTLE_SECONDS = 0.5


def measure(candidates, repeats: int, block_seconds: float) -> dict:
    """Median seconds per step for each candidate, interleaving candidates round by round
    (with more than one thread, after a pause that lets the other candidates' threads go idle)."""
    settle = SETTLE_SECONDS if THREADS != "1" else 0.0
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
            time.sleep(settle)
            started = time.perf_counter()
            for _ in range(blocks[name]):
                step()
            times[name].append((time.perf_counter() - started) / blocks[name])
    return {name: statistics.median(values) for name, values in times.items()}


# -- per-layer times and each convolution's rate -----------------------------------------------

def leaf_layers(model):
    """(path, module) for every module without children, in forward order."""
    return [(path, module) for path, module in model.named_modules() if not module.named_children()]


def conv_flops(conv, input_shape) -> int:
    """Floating-point operations of one forward + backward: 2·N·F·K·P per matrix product
    (Z, δW and, unless input_grad=False, δX), K = C·kh·kw and P = Ho·Wo. A Winograd layer does
    fewer; its rate from these counts is an effective one (the direct formulas' work per second)."""
    N, F, Ho, Wo = conv.output_shape(input_shape)
    K = conv.in_channels * conv.kernel_size[0] * conv.kernel_size[1]
    return 2 * N * F * K * Ho * Wo * (3 if conv.input_grad else 2)


def layer_profile(model, shape, size, steps: int = 7) -> list[dict]:
    """Median forward and backward seconds of every leaf layer over ``steps`` training steps.

    Each leaf's bound ``forward``/``backward`` is wrapped on the instance (the class is left
    alone) to time it; the model is otherwise trained as in the benchmark (Adam, float32).
    """
    X, labels = batch(shape, size)
    loss, optimizer = nl.SoftmaxCrossEntropy(), nl.Adam(model.parameters(), lr=1e-3)
    leaves = leaf_layers(model)
    times = {path: {"forward": [], "backward": []} for path, _ in leaves}
    shapes = {}

    def timed(path, module, phase):
        call = getattr(module, phase)

        def wrapper(A):
            if phase == "forward":
                shapes[path] = A.shape
            started = time.perf_counter()
            result = call(A)
            times[path][phase].append(time.perf_counter() - started)
            return result
        return wrapper

    for path, module in leaves:
        module.forward, module.backward = timed(path, module, "forward"), timed(path, module, "backward")
    step = nnlayers_step(model, loss, X, labels, None, optimizer=optimizer)
    try:
        for _ in range(steps + 2):
            step()
    finally:
        for _, module in leaves:
            del module.forward, module.backward
    rows = []
    for path, module in leaves:
        forward = statistics.median(times[path]["forward"][2:])
        backward = statistics.median(times[path]["backward"][2:])
        row = {"layer": path, "module": repr(module), "forward_s": forward, "backward_s": backward}
        if isinstance(module, nl.Conv2D):
            row["gflops"] = conv_flops(module, shapes[path]) / (forward + backward) / 1e9
        rows.append(row)
    return rows


def gemm_rate(size: int = 1024, repeats: int = 9) -> float:
    """numpy's float32 matrix-product rate (GFLOP/s): the median of ``repeats`` size³ products."""
    rng = np.random.default_rng(0)
    A, B = rng.random((size, size), dtype=np.float32), rng.random((size, size), dtype=np.float32)
    A @ B
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        A @ B
        seconds.append(time.perf_counter() - started)
    return 2 * size ** 3 / statistics.median(seconds) / 1e9


def blas_description() -> str:
    """The BLAS library numpy calls and the kernel it picked at run time.

    threadpoolctl reports it when installed; otherwise OpenBLAS itself is
    asked (``openblas_get_corename``, under the prefixes numpy's wheels use)
    through the library file mapped into this process.
    """
    try:
        import threadpoolctl
        infos = [info for info in threadpoolctl.threadpool_info() if info.get("user_api") == "blas"]
        if infos:
            return "; ".join(f"{info.get('internal_api')} {info.get('version')} kernel "
                             f"{info.get('architecture')} ({info.get('num_threads')} threads)" for info in infos)
    except ImportError:
        pass
    import ctypes
    config = np.show_config(mode="dicts") if "mode" in np.show_config.__code__.co_varnames else {}
    blas = config.get("Build Dependencies", {}).get("blas", {})
    name = f"{blas.get('name', 'BLAS')} {blas.get('version', '')}".strip()
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        paths = []
    for path in paths:
        library = ctypes.CDLL(path)
        for symbol in ("openblas_get_corename", "scipy_openblas_get_corename64_", "openblas_get_corename64_",
                       "scipy_openblas_get_corename"):
            function = getattr(library, symbol, None)
            if function is not None:
                function.restype = ctypes.c_char_p
                return f"{name} kernel {function().decode()}"
    return f"{name} (kernel unknown)"


def format_time(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def print_layers(rows, gemm: float) -> None:
    print(f"  {'layer':<34} {'forward':>10} {'backward':>10} {'GFLOP/s':>8} {'of GEMM':>8}")
    for row in rows:
        rate = row.get("gflops")
        extra = f" {rate:8.1f} {rate / gemm:8.0%}" if rate is not None else ""
        name = f"{row['layer']} {row['module']}"
        name = name if len(name) <= 34 else name[:33] + "…"
        print(f"  {name:<34} {format_time(row['forward_s']):>10} {format_time(row['backward_s']):>10}{extra}")


# -- single convolutions in isolation, against PyTorch's and against numpy's products alone --------

#: (C, F, H): 3×3 convolutions with padding 1 on H×H images, batch 64: the wide layers of the
#: VGG-like net and the ResNet blocks, and both layers of the Fashion-MNIST reference CNN.
CONV_CASES = ((64, 64, 16), (32, 64, 16), (32, 32, 32), (16, 32, 14), (1, 16, 28))


def conv_candidates(C, F, H, size=BATCH):
    """Forward + backward of one convolution: nnlayers' ``Conv2D``, PyTorch's ``Conv2d`` and, as a
    floor, numpy's matrix products of the same shapes alone (Z = W₂ cols, δW₂ = δZ colsᵀ and,
    unless C = 1, whose layer takes data and skips δX, W₂ᵀ δZ), with no im2col or col2im."""
    rng = np.random.default_rng(0)
    X = rng.random((size, C, H, H), dtype=np.float32)
    dZ = rng.random((size, F, H, H), dtype=np.float32)
    input_grad = C > 1

    def ours():
        layer = nl.Conv2D(C, F, 3, padding=1, rng=0, dtype=np.float32, input_grad=input_grad)

        def step():
            layer.forward(X)
            layer.backward(dZ)
        return step

    def theirs():
        layer = torch.nn.Conv2d(C, F, 3, padding=1)
        X_t, dZ_t = torch.from_numpy(X).requires_grad_(input_grad), torch.from_numpy(dZ)

        def step():
            layer(X_t).backward(dZ_t)
            layer.zero_grad()
            X_t.grad = None
        return step

    def products():
        K, P = 9 * C, size * H * H
        W2, cols, dZ2 = (rng.random(shape, dtype=np.float32) for shape in ((F, K), (K, P), (F, P)))

        def step():
            W2 @ cols
            dZ2 @ cols.T
            if input_grad:
                W2.T @ dZ2
        return step
    return [("nnlayers", ours), ("PyTorch", theirs), ("products", products)]


def conv_table(args, gemm: float) -> dict:
    print(f"\nSingle 3×3 convolutions, padding 1, batch {BATCH}, float32, forward + backward (δX unless C = 1); "
          f"'products': numpy's matrix products of the same shapes alone (GEMM {gemm:.0f} GFLOP/s)")
    print(f"  {'C → F, H×W':<16}" + "".join(f"{name:>22}" for name in ("nnlayers", "PyTorch", "products")))
    report = {}
    for C, F, H in CONV_CASES:
        medians = measure(conv_candidates(C, F, H), args.repeats, args.block)
        flops = conv_flops(nl.Conv2D(C, F, 3, padding=1, input_grad=C > 1), (BATCH, C, H, H))
        cells = "".join(f"{format_time(seconds):>11} {flops / seconds / 1e9:>5.0f} GF/s" for seconds in medians.values())
        print(f"  {f'{C} → {F}, {H}×{H}':<16}{cells}")
        report[f"{C}-{F}-{H}"] = {"seconds": medians, "flops": flops}
    return report


# -- memory: growth of the process while training, one child process per framework ------------

def memory_child(framework: str, key: str, size: int, steps: int) -> float:
    """MiB by which the peak resident set grows over ``steps`` training steps (after setup)."""
    import resource
    step = dict(net_candidates(key, size))[framework]()   # the benchmark's own step, built the same way
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(steps):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def memory_report(key: str, size: int, steps: int, malloc_flag: list) -> dict:
    growth = {}
    for framework in ("nnlayers", "PyTorch"):
        command = [sys.executable, __file__, "--threads", THREADS, "--blas-threads", BLAS_THREADS,
                   "--memory-child", framework, "--memory-case", f"{key}-{size}", "--memory-steps", str(steps)]
        command += malloc_flag
        output = subprocess.run(command, check=True, capture_output=True, text=True).stdout
        growth[framework] = float(output.split()[-1])
    print(f"{NETS[key][0]}, batch {size}, {steps} Adam steps: peak resident set growth "
          f"(ru_maxrss, one process each; malloc: {'system settings' if malloc_flag else 'freed memory kept for reuse'})")
    for framework, mib in growth.items():
        print(f"  {framework:<10} {mib:8.1f} MiB")
    print(f"  nnlayers / PyTorch: {growth['nnlayers'] / growth['PyTorch']:.2f}")
    return growth


# -- the full table: both thread counts, both BLAS kernels, one fresh process each ---------------

def full_table(args, malloc_flag: list) -> int:
    configs = [(threads, coretype) for coretype in (False, True) for threads in ("1", "2")]
    results = {}
    started = time.perf_counter()
    for threads, coretype in configs:
        env = dict(os.environ)
        if not coretype:
            env.pop("OPENBLAS_CORETYPE", None)
            env.pop("OPENBLAS_L2_SIZE", None)
        elif "OPENBLAS_CORETYPE" not in env:
            continue  # this machine pins no kernel: the stock run covers it
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "run.json")
            command = [sys.executable, __file__, "--threads", threads, "--repeats", str(args.repeats),
                       "--block", str(args.block), "--json", path, "--quiet-layers"] + malloc_flag
            if args.blas_threads:
                command += ["--blas-threads", args.blas_threads]
            for key in args.only or []:
                command += ["--only", key]
            print(f"\n=== {threads} thread(s), OPENBLAS_CORETYPE="
                  f"{env.get('OPENBLAS_CORETYPE', 'unset')} ===", flush=True)
            subprocess.run(command, check=True, env=env)
            with open(path) as file:
                results[(threads, env.get("OPENBLAS_CORETYPE", "unset"))] = json.load(file)
    columns = list(results)
    print(f"\nnnlayers / PyTorch, median step time ratios ({time.perf_counter() - started:.0f} s in all; "
          f"the 'Winograd' rows: the same net with algorithm='winograd' / PyTorch)")
    header = "".join(f"{f'{t} thr, {core}':>18}" for t, core in columns)
    print(f"  {'case':<16}{header}")
    for key in next(iter(results.values()))["cases"]:
        for candidate, label in (("nnlayers", key), ("Winograd", "  Winograd")):
            cells = []
            for column in columns:
                seconds = results[column]["cases"].get(key, {}).get("seconds", {})
                ratio = seconds[candidate] / seconds["PyTorch"] if candidate in seconds and "PyTorch" in seconds \
                    else None
                cells.append(f"{ratio:>18.2f}" if ratio is not None else f"{'–':>18}")
            if candidate == "nnlayers" or any(cell.strip() != "–" for cell in cells):
                print(f"  {label:<16}{''.join(cells)}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({f"{t} threads, OPENBLAS_CORETYPE={core}": result
                       for (t, core), result in results.items()}, file, indent=1)
    return 0


# -- on a GPU: the same steps with CuPy against PyTorch's CUDA build ----------------------------

GPU_NETS = ("fmnist-cnn", "vgg", "resnet")


def gpu_candidates(key, size):
    """nnlayers on CuPy and PyTorch on CUDA, the same net, batch and Adam step; each step ends in a
    device synchronisation so that the clock measures the work, not its queueing."""
    import cupy
    _, make_ours, make_theirs, shape = NETS[key]
    X, labels = batch(shape, size)

    def ours():
        model = make_ours().to("cuda")
        step = nnlayers_step(model, nl.SoftmaxCrossEntropy(), cupy.asarray(X), cupy.asarray(labels), None,
                             optimizer=nl.Adam(model.parameters(), lr=1e-3))

        def synchronised():
            step()
            cupy.cuda.Device().synchronize()
        return synchronised

    def theirs():
        torch.manual_seed(0)
        model = make_theirs().cuda()
        loss, optimizer = torch.nn.CrossEntropyLoss(), torch.optim.Adam(model.parameters(), lr=1e-3)
        Xt, yt = torch.from_numpy(X).cuda(), torch.from_numpy(labels).cuda()

        def step():
            loss(model(Xt), yt).backward()
            optimizer.step()
            optimizer.zero_grad()
            torch.cuda.synchronize()
        return step
    return [("nnlayers", ours), ("PyTorch", theirs)]


def gpu_table(args) -> int:
    try:
        import cupy
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"].decode()
    except Exception as error:  # no CuPy or no GPU
        print(f"bench.py --device cuda: {error}", file=sys.stderr)
        return 2
    if torch is None or not torch.cuda.is_available():
        print("bench.py --device cuda: PyTorch with CUDA is needed for the comparison", file=sys.stderr)
        return 2
    print(f"GPU {name}; cupy {cupy.__version__}, torch {torch.__version__}; median of {args.repeats} rounds, "
          "float32, Adam, each step synchronised")
    print(f"  {'case':<16} {'nnlayers':>12} {'PyTorch':>12} {'nnlayers / PyTorch':>20}")
    report = {}
    for key in GPU_NETS:
        for size in NET_BATCHES:
            medians = measure(gpu_candidates(key, size), args.repeats, args.block)
            ratio = medians["nnlayers"] / medians["PyTorch"]
            report[f"{key}-{size}"] = {**medians, "ratio": ratio}
            print(f"  {key + '-' + str(size):<16} {format_time(medians['nnlayers']):>12} "
                  f"{format_time(medians['PyTorch']):>12} {ratio:>20.2f}")
    if args.json:
        with open(args.json, "w") as file:
            json.dump({"device": name, "cases": report}, file, indent=1)
    return 0


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", choices=("1", "2"), default="1",
                        help="numpy's BLAS and PyTorch threads (default 1; nnlayers' own: NNLAYERS_NUM_THREADS)")
    parser.add_argument("--blas-threads", choices=("1", "2"),
                        help="numpy's BLAS threads, if not --threads (with NNLAYERS_NUM_THREADS=2, "
                             "--blas-threads 1 gives each of nnlayers' conv lanes a core)")
    parser.add_argument("--repeats", type=int, help="timed rounds per case (default 15; 9 with --full)")
    parser.add_argument("--block", type=float, default=0.2, help="seconds per timed block (default 0.2)")
    parser.add_argument("--only", action="append", help="run only these cases (a key such as vgg-64, or vgg)")
    parser.add_argument("--json", metavar="PATH", help="also write the results as JSON")
    parser.add_argument("--quiet-layers", action="store_true", help="no per-layer tables (JSON keeps them)")
    parser.add_argument("--full", action="store_true",
                        help="1 and 2 threads, with and without OPENBLAS_CORETYPE, in fresh processes")
    parser.add_argument("--convs", action="store_true",
                        help="only single 3×3 convolutions in isolation: nnlayers, PyTorch and numpy's matrix "
                             "products of the same shapes alone")
    parser.add_argument("--memory", action="store_true",
                        help="peak memory growth of training the VGG-like net at batch 128, per framework")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: the reference CNN, VGG-like net and ResNet stack on a GPU (CuPy) against "
                             "PyTorch on the same GPU")
    add_malloc_option(parser)
    parser.add_argument("--memory-child", choices=("nnlayers", "PyTorch"), help=argparse.SUPPRESS)
    parser.add_argument("--memory-case", default="vgg-128", help=argparse.SUPPRESS)
    parser.add_argument("--memory-steps", type=int, default=5, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.repeats = args.repeats or (9 if args.full else 15)
    kept = apply_malloc_option(args)      # for both frameworks alike: they share this process
    malloc_flag = ["--system-malloc"] if args.system_malloc else []   # the same for child processes

    if args.memory_child:
        key, size = args.memory_case.rsplit("-", 1)
        print(f"{memory_child(args.memory_child, key, int(size), args.memory_steps):.1f}")
        return 0
    if args.memory:
        key, size = args.memory_case.rsplit("-", 1)
        memory_report(key, int(size), args.memory_steps, malloc_flag)
        return 0
    if args.device == "cuda":
        return gpu_table(args)
    if args.full:
        return full_table(args, malloc_flag)

    keys = [] if args.convs else selected(args.only)
    gemm = gemm_rate()
    blas = blas_description()
    helpers = nl_threads.num_threads()
    print(f"numpy {np.__version__} ({blas}), torch {torch.__version__ if torch else 'not installed'}; "
          f"{THREADS} thread(s) (BLAS: {BLAS_THREADS}, nnlayers: {helpers}); "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}; median of {args.repeats} rounds"
          f"{f', {SETTLE_SECONDS} s pause before each block' if THREADS != '1' else ''}; "
          f"malloc: {'freed memory kept for reuse' if kept else 'system settings'}")
    print(f"numpy float32 GEMM (1024³): {gemm:.0f} GFLOP/s")
    report = {"numpy": np.__version__, "torch": torch.__version__ if torch else None, "blas": blas,
              "threads": int(THREADS), "blas_threads": int(BLAS_THREADS), "nnlayers_threads": helpers,
              "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
              "gemm_gflops": gemm, "repeats": args.repeats,
              "settle_seconds": SETTLE_SECONDS if THREADS != "1" else 0.0, "reuse_freed_memory": kept,
              "cases": {}}
    for key in keys:
        title, candidates = CASES[key]
        if torch is None:
            candidates = [(name, make) for name, make in candidates if name != "PyTorch"]
        medians = measure(candidates, args.repeats, args.block)
        base = medians["nnlayers"]
        print(f"\n{title}")
        print(f"  {'':<12} {'per step':>12} {'nnlayers / this':>16}")
        for name, seconds in medians.items():
            print(f"  {name:<12} {format_time(seconds):>12} {base / seconds:>16.2f}")
        case = {"title": title, "seconds": medians,
                "ratios": {name: base / seconds for name, seconds in medians.items() if name != "nnlayers"}}
        net, _, size = key.rpartition("-")
        if net in NETS:
            variants = [("layers", "", ())] + ([("layers_winograd", "Winograd: ", ("winograd",))]
                                               if net in WINOGRAD_NETS else [])
            for field, label, arguments in variants:
                case[field] = layer_profile(NETS[net][1](*arguments), NETS[net][3], int(size))
                rates = [row["gflops"] for row in case[field] if "gflops" in row]
                print(f"  {label}conv forward+backward GFLOP/s: {', '.join(f'{r:.0f}' for r in rates)} "
                      f"(GEMM {gemm:.0f}; {', '.join(f'{r / gemm:.0%}' for r in rates)})")
                if not args.quiet_layers:
                    print_layers(case[field], gemm)
        report["cases"][key] = case
    if args.convs:
        report["convs"] = conv_table(args, gemm)
    if args.json:
        with open(args.json, "w") as file:
            json.dump(report, file, indent=1)
    return 0


if __name__ == "__main__":
    sys.exit(main())
