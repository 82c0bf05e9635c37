"""Shared test helpers.

Tests that need something heavy (PyTorch, the Debian Fashion-MNIST package)
skip with a visible reason when it is missing, unless NNLAYERS_REQUIRE_ALL=1
(set by .ci/run), where a missing requirement is a failure instead.
"""
import os
import sys
from pathlib import Path

# One BLAS thread for the suite (set before numpy loads OpenBLAS): on 2-core machines a
# two-thread pool collapses under any other load, and the tests' matrices are small.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"


def require(available: bool, reason: str) -> None:
    """Skip (or, under NNLAYERS_REQUIRE_ALL=1, fail) the calling test unless ``available``."""
    if available:
        return
    if os.environ.get("NNLAYERS_REQUIRE_ALL") == "1":
        pytest.fail(f"required by NNLAYERS_REQUIRE_ALL=1 but missing: {reason}")
    pytest.skip(reason)


def run_script(name: str, *args, cwd=None, timeout=300):
    """Run scripts/<name> with this interpreter; returns the CompletedProcess."""
    import subprocess
    # One BLAS thread: a two-thread pool collapses when anything else loads these 2-core machines.
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env=env)


@pytest.fixture
def rng():
    return np.random.default_rng(1234)
