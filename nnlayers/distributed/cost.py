"""The cost model on paper: what an allreduce per step costs, and the scaling to expect.

With n ranks and a fixed global batch, each rank computes 1/n of the step, then the ranks
average G bytes of gradients. A ring (or recursive-halving) allreduce sends and receives
about 2(n − 1)/n · G bytes per rank, so on a network of bandwidth β (bytes/s)::

    t_allreduce(n) ≈ 2 (n − 1)/n · G / β
    speedup(n)     ≈ T / (T/n + t_allreduce(n))          T: one process's step at the global batch

Latency (microseconds per message) and the compute lost to smaller per-rank batches are left
out: the speedups are upper bounds. The table the docs show is ``python -m nnlayers.distributed
benchmarks/results/steps-full.json`` (``scaling_table``, with T from a committed benchmark run: no
measured time lives in this file; a test checks docs/data-parallel.rst holds exactly it).
"""
from __future__ import annotations

__all__ = ["REFERENCE_NETS", "gradient_bytes", "allreduce_seconds", "expected_speedup", "step_seconds_from",
           "scaling_table"]

#: The reference nets: (name, builder, the benchmark case whose one-process step time T the table uses:
#: ``python -m benchmarks`` times it and writes it to a JSON file; see ``step_seconds_from``).
REFERENCE_NETS = (
    ("reference CNN", lambda: _mnist().build("cnn", rng=0), "fmnist-cnn-64"),
    ("VGG-like", lambda: _mnist().vgg(3, 32, 10, widths=(32, 64), hidden=256, rng=0), "vgg-64"),
    ("ResNet", lambda: _mnist().resnet(3, 10, widths=(32,), blocks=(2,), stem_pool=True, rng=0), "resnet-64"),
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


def step_seconds_from(path) -> dict:
    """{benchmark case: one process's step in seconds} from a ``python -m benchmarks --json`` file: the
    one-thread run's nnlayers times (the first one-thread run, for a ``--full`` file)."""
    import json

    with open(path, encoding="utf-8") as file:
        data = json.load(file)
    runs = data["runs"].values() if "runs" in data else [data]
    run = next((run for run in runs if run.get("threads") == 1), None)
    if run is None:
        raise ValueError(f"{path}: no one-thread run of the benchmarks")
    return {case: record["seconds"]["nnlayers"] for case, record in run["cases"].items()}


def scaling_table(step_seconds: dict) -> str:
    """The expected speedups of the reference nets, as reStructuredText (docs/data-parallel.rst's table);
    ``step_seconds``: {benchmark case: T in seconds}, e.g. ``step_seconds_from(a benchmark JSON)``."""
    missing = [case for _, _, case in REFERENCE_NETS if case not in step_seconds]
    if missing:
        raise ValueError(f"scaling_table: no step time for {', '.join(missing)} (run python -m benchmarks)")
    ranks = ", ".join(map(str, RANKS))
    header = ["net", "parameters", "G (float32)", "T (1 process)"] + \
        [f"{label}: n = {ranks}" for label, _ in BANDWIDTHS]
    lines = []
    for name, build, case in REFERENCE_NETS:
        model = build()
        T = step_seconds[case]
        G = gradient_bytes(model)
        lines.append([name, f"{model.num_parameters():,}", f"{G / 1e6:.2f} MB", f"{T * 1e3:.0f} ms"] +
                     ["  ".join(f"{expected_speedup(T, G, n, beta):4.1f}" for n in RANKS) for _, beta in BANDWIDTHS])
    widths = [max(len(row[k]) for row in [header] + lines) for k in range(len(header))]
    rule = "  ".join("=" * w for w in widths)
    render = lambda row: "  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip()  # noqa: E731
    return "\n".join([rule, render(header), rule] + [render(row) for row in lines] + [rule])
