"""Test setup: one BLAS thread, and the shared fixtures (helpers live in tests/helpers.py).

Tests that need something heavy (PyTorch, the Debian Fashion-MNIST package)
skip with a visible reason when it is missing, unless NNLAYERS_REQUIRE_ALL=1
(set by .ci/run), where a missing requirement is a failure instead.
"""
import os

# One BLAS thread for the suite (set before numpy loads OpenBLAS): on 2-core machines a
# two-thread pool collapses under any other load, and the tests' matrices are small.
for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
import pytest  # noqa: E402


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


@pytest.fixture
def set_threads():
    """``nnlayers.kernels.threads.set_num_threads`` for this test; the default thread count comes back after it."""
    from nnlayers.kernels import threads as _threads
    yield _threads.set_num_threads
    _threads.set_num_threads(_threads._default_threads())
