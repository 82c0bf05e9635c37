"""Single 3×3 convolutions in isolation, against PyTorch's and against numpy's matrix products alone.

The products of the same shapes, with no im2col or col2im, are the floor of
any design that computes a convolution as matrix products in numpy.
"""
from __future__ import annotations

import numpy as np

import nnlayers as nl

from .layers import conv_flops
from .models import torch
from .report import format_time
from .steps import BATCH
from .timing import measure

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
    return [("nnlayers", ours)] + ([("PyTorch", theirs)] if torch is not None else []) + [("products", products)]


def conv_table(args, gemm: float) -> dict:
    names = ("nnlayers", "PyTorch", "products") if torch is not None else ("nnlayers", "products")
    print(f"\nSingle 3×3 convolutions, padding 1, batch {BATCH}, float32, forward + backward (δX unless C = 1); "
          f"'products': numpy's matrix products of the same shapes alone (GEMM {gemm:.0f} GFLOP/s)")
    print(f"  {'C → F, H×W':<16}" + "".join(f"{name:>22}" for name in names))
    report = {}
    for C, F, H in CONV_CASES:
        medians = measure(conv_candidates(C, F, H), args.repeats, args.block)
        flops = conv_flops(nl.Conv2D(C, F, 3, padding=1, input_grad=C > 1), (BATCH, C, H, H))
        cells = "".join(f"{format_time(seconds):>11} {flops / seconds / 1e9:>5.0f} GF/s"
                        for seconds in medians.values())
        print(f"  {f'{C} → {F}, {H}×{H}':<16}{cells}")
        report[f"{C}-{F}-{H}"] = {"seconds": medians, "flops": flops}
    return report
