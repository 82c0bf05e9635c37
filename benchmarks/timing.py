"""Interleaved timing: every candidate in the same process, round by round, and the median of the rounds.

Any background load hits all candidates alike. Each round times a block of
steps (sized in the warm-up to about ``block_seconds``), and a candidate's
time is the median of its rounds; comparisons are ratios of medians. With
more than one thread each block starts after a pause (``threads.SETTLE_SECONDS``)
in which the thread pools of the candidate before it stop spinning.
"""
from __future__ import annotations

import statistics
import time

import numpy as np

from . import threads

WARM_UP_STEPS = 3


def measure(candidates, repeats: int, block_seconds: float, settle: float | None = None) -> dict:
    """Median seconds per step for each (name, make) candidate: ``make()`` returns the step to time.

    ``settle``: the pause before each timed block (default: ``threads.settle_seconds()``).
    """
    settle = threads.settle_seconds() if settle is None else settle
    steps = {name: make() for name, make in candidates}
    blocks = {}
    for name, step in steps.items():  # warm up, and size each block to about block_seconds
        for _ in range(WARM_UP_STEPS):
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


def ratios(medians: dict, base: str = "nnlayers") -> dict:
    """``base``'s time over each other candidate's: below 1, ``base`` is faster."""
    return {name: medians[base] / seconds for name, seconds in medians.items() if name != base}


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
