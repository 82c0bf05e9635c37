"""The benchmark in a fresh process (``--full``'s configurations, ``--memory``'s children)."""
from __future__ import annotations

import os
import sys
from pathlib import Path

from . import threads

#: The folder holding ``benchmarks/`` and ``nnlayers/``: the children import both from there.
ROOT = Path(__file__).resolve().parent.parent


def command(*arguments) -> list[str]:
    """``python -m benchmarks`` with this run's thread counts, then ``arguments`` (later ones win)."""
    return [sys.executable, "-m", "benchmarks", "--threads", threads.THREADS, "--blas-threads",
            threads.BLAS_THREADS, *map(str, arguments)]


def environment(base=None) -> dict:
    """``base`` (default: this process's environment) with ROOT first on PYTHONPATH."""
    env = dict(os.environ if base is None else base)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    return env
