"""The cost model on paper: what an allreduce per step costs, and the scaling to expect.

With n ranks and a fixed global batch, each rank computes 1/n of the step, then the ranks
average G bytes of gradients. A ring (or recursive-halving) allreduce sends and receives
about 2(n − 1)/n · G bytes per rank, so on a network of bandwidth β (bytes/s)::

    t_allreduce(n) ≈ 2 (n − 1)/n · G / β
    speedup(n)     ≈ T / (T/n + t_allreduce(n))          T: one process's step at the global batch

Latency (microseconds per message) and the compute lost to smaller per-rank batches are left
out: the speedups are upper bounds. The table the docs show is ``python -m
nnlayers.distributed.cost`` (``scaling_table()``; a test checks docs/data-parallel.rst holds exactly it).
"""
from __future__ import annotations

__all__ = ["REFERENCE_NETS", "gradient_bytes", "allreduce_seconds", "expected_speedup", "scaling_table"]

#: The reference nets: (name, builder, one process's step at batch 64 in seconds). The step times are
#: assumptions for the table, measured once (float32, Adam, one BLAS thread, a 2-core cloud machine,
#: December 2026; benchmarks' cases fmnist-cnn-64, vgg-64, and build("resnet")): rerun ``python -m
#: benchmarks --only …`` and pass your own to ``scaling_table(step_seconds=…)``.
REFERENCE_NETS = (
    ("reference CNN", lambda: _mnist().build("cnn", rng=0), 0.016),
    ("VGG-like", lambda: _mnist().vgg(3, 32, 10, widths=(32, 64), hidden=256, rng=0), 0.178),
    ("ResNet", lambda: _mnist().build("resnet", rng=0), 0.091),
)
BANDWIDTHS = (("1 Gbit/s", 1e9 / 8), ("10 Gbit/s", 10e9 / 8))
RANKS = (2, 4, 8, 16)


def _mnist():
    from ..examples import mnist
    return mnist


def gradient_bytes(model) -> int:
    """G: the bytes of all parameter gradients, the allreduce's payload each step."""
    return sum(p.data.nbytes for p in model.parameters())


def allreduce_seconds(G: float, ranks: int, bandwidth: float) -> float:
    """2(n − 1)/n · G / β: one allreduce of G bytes over ``ranks`` ranks at ``bandwidth`` bytes/s."""
    return 2.0 * (ranks - 1) / ranks * G / bandwidth


def expected_speedup(step_seconds: float, G: float, ranks: int, bandwidth: float) -> float:
    """T / (T/n + t_allreduce(n)): the speedup over one process at a fixed global batch (an upper bound)."""
    return step_seconds / (step_seconds / ranks + allreduce_seconds(G, ranks, bandwidth))


def scaling_table(step_seconds: dict | None = None) -> str:
    """The expected speedups of the reference nets, as reStructuredText (docs/data-parallel.rst's table)."""
    step_seconds = step_seconds or {}
    ranks = ", ".join(map(str, RANKS))
    header = ["net", "parameters", "G (float32)", "T (1 process)"] + \
        [f"{label}: n = {ranks}" for label, _ in BANDWIDTHS]
    lines = []
    for name, build, seconds in REFERENCE_NETS:
        model = build()
        T = step_seconds.get(name, seconds)
        G = gradient_bytes(model)
        lines.append([name, f"{model.num_parameters():,}", f"{G / 1e6:.2f} MB", f"{T * 1e3:.0f} ms"] +
                     ["  ".join(f"{expected_speedup(T, G, n, beta):4.1f}" for n in RANKS) for _, beta in BANDWIDTHS])
    widths = [max(len(row[k]) for row in [header] + lines) for k in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    render = lambda row: "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, render(header), rule] + [render(row) for row in lines] + [rule])
