"""Thread counts of a benchmark run, read from the command line before numpy loads.

BLAS sizes its thread pool when numpy is imported, so ``configure`` must run
before anything imports numpy (``benchmarks/__main__.py`` and ``scripts/bench.py``
call it first). ``--threads`` is PyTorch's count and, unless ``--blas-threads``
says otherwise, numpy's BLAS's; nnlayers' own helper threads keep the
library's default, one, unless ``NNLAYERS_NUM_THREADS`` says otherwise.
"""
from __future__ import annotations

import os

#: The counts in use, as the command line gave them ("1" or "2"); set by ``configure``.
THREADS = "1"
BLAS_THREADS = "1"

#: With more than one thread, a pause before each timed block. After its work, an idle thread
#: pool keeps spinning on the cores for a while (OpenBLAS's workers, PyTorch's OpenMP threads) and
#: would slow down whichever candidate runs next.
SETTLE_SECONDS = 0.5


def option_from_argv(argv, name: str, default: str) -> str:
    """The value of option ``name`` in ``argv`` (``--name value`` or ``--name=value``), else ``default``;
    the last one where it is given twice, as argparse reads it."""
    value = default
    for i, arg in enumerate(argv):
        if arg == name and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(name + "="):
            value = arg.split("=", 1)[1]
    return value


def configure(argv) -> None:
    """Read --threads and --blas-threads from ``argv`` and give BLAS its count through the environment."""
    global THREADS, BLAS_THREADS
    THREADS = option_from_argv(argv, "--threads", "1")
    BLAS_THREADS = option_from_argv(argv, "--blas-threads", THREADS)
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = BLAS_THREADS


def settle_seconds() -> float:
    """The pause before each timed block: ``SETTLE_SECONDS`` with more than one thread, else none."""
    return SETTLE_SECONDS if THREADS != "1" else 0.0
