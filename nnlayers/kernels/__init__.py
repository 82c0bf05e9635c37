"""Fast CPU paths of the layers: the machinery kept apart from the formulas.

A layer's own file (``nnlayers/layers/``) computes its docstring's formulas
in a few readable lines, with any array module (numpy, CuPy): that is its
*reference path*, the one a GPU takes and the oracle of the tests. On numpy
arrays the layer hands the same computation to a kernel from this package,
which takes the same products in a faster order: a few samples at a time so
that work arrays stay in the cache and are reused (``conv_unfolding``),
chunks spread over lanes of threads (``threads``), δX of a stride-1
convolution as a correlation (``conv_correlate``), Winograd's F(2×2, 3×3)
(``winograd``), pooling's batch cut among the lanes (``pooling``). Each of
them is proven equal to the reference path by tests/kernels/ (float64,
relative 1e-12, over random geometries); none changes what is computed,
only how (to rounding).

Dispatch: ``Conv2D.forward`` asks ``conv_kernel_for(layer, X)`` once; it
returns the fast CPU kernel for numpy arrays, or None, and then the layer
computes its formulas itself. ``backward`` takes the path its forward took.
The kernel computes with Winograd's tiles (``winograd``) when the layer's
``algorithm`` is "winograd", else with the chunked im2col and matrix
products (``conv_gemm``), reading ``algorithm`` at each call. Pooling calls
``pooling.over_batch``, which cuts the batch among the lanes.

``with reference_paths(): ...`` turns the fast paths off: inside it every
layer computes by its reference formulas, on numpy arrays too (the tests
compare both ways; switch it between steps, not between a forward and its
backward). Speed measurements: docs/speed.rst.
"""
from __future__ import annotations

from contextlib import contextmanager

import numpy as np

from . import conv_gemm, lstm, winograd
from .._args import show

__all__ = ["conv_kernel_for", "recurrent_kernel_for", "check_algorithm", "fast_paths_on", "reference_paths"]

_fast = [True]


def fast_paths_on() -> bool:
    """Whether layers may take this package's fast paths (False inside ``reference_paths()``)."""
    return _fast[0]


@contextmanager
def reference_paths():
    """Within ``with reference_paths():`` every layer computes by its readable reference formulas."""
    before, _fast[0] = _fast[0], False
    try:
        yield
    finally:
        _fast[0] = before


class _ConvCPU:
    """Conv2D on numpy arrays: ``winograd`` with algorithm="winograd", else ``conv_gemm``, chosen at each call
    (so ``algorithm`` may even change between a forward and its backward: both compute the same sums)."""

    @staticmethod
    def forward(layer, X: np.ndarray) -> np.ndarray:
        return (winograd if layer.algorithm == "winograd" else conv_gemm).forward(layer, X)

    @staticmethod
    def backward(layer, X: np.ndarray, dZ: np.ndarray):
        return (winograd if layer.algorithm == "winograd" else conv_gemm).backward(layer, X, dZ)


class _LSTMCPU:
    """The LSTM on numpy arrays: ``lstm``'s feature-major time loops. A class, as ``_ConvCPU``, since the
    layer keeps what its forward took for its backward, and a layer holding a module object could not
    be deep-copied (``export_onnx`` copies the model)."""

    forward = staticmethod(lstm.forward)
    backward = staticmethod(lstm.backward)


def check_algorithm(layer) -> None:
    """Refuse a Conv2D ``algorithm`` other than "gemm" or "winograd" (TypeError if not a string), or
    "winograd" where it does not fit the layer's geometry (``winograd.winograd_fits``)."""
    algorithm, name = layer.algorithm, type(layer).__name__
    if not isinstance(algorithm, str):
        raise TypeError(f"{name}: algorithm must be 'gemm' or 'winograd', got {algorithm!r} "
                        f"({type(algorithm).__name__})")
    if algorithm not in ("gemm", "winograd"):
        raise ValueError(f"{name}: algorithm must be 'gemm' or 'winograd', got {algorithm!r}")
    if algorithm == "winograd" and not winograd.winograd_fits(layer.kernel_size, layer.stride, layer.padding):
        raise ValueError(f"{name}: algorithm='winograd' needs kernel_size 3, stride 1 and "
                         f"padding ≤ 2, got kernel_size={show(layer.kernel_size)}, "
                         f"stride={show(layer.stride)}, padding={show(layer.padding)}")


def conv_kernel_for(layer, X):
    """The fast CPU kernel that computes ``layer`` (a Conv2D) on X, or None for the layer's reference path:
    None for arrays other than numpy's (a GPU's) and inside ``reference_paths()``."""
    if type(X) is not np.ndarray or not fast_paths_on():
        return None
    return _ConvCPU


def recurrent_kernel_for(layer, X):
    """The fast CPU time loops for ``layer`` (an RNN, LSTM or GRU) on X, or None for its reference path:
    the LSTM's feature-major loops (``lstm``) on numpy arrays; None elsewhere and inside ``reference_paths()``."""
    if type(X) is not np.ndarray or not fast_paths_on() or type(layer).__name__ != "LSTM":
        return None
    return _LSTMCPU
