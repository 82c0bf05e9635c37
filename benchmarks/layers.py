"""Each layer's forward and backward time inside a training step, and each convolution's rate.

A convolution's rate is its forward + backward floating-point operations per
second, printed beside numpy's float32 matrix-product rate measured on the spot
(``timing.gemm_rate``): the fraction of GEMM a layer reaches.
"""
from __future__ import annotations

import statistics
import time

import nnlayers as nl

from .steps import batch, nnlayers_step


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

        def wrapper(*arrays):
            if phase == "forward":
                shapes[path] = arrays[0].shape
            started = time.perf_counter()
            result = call(*arrays)
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
