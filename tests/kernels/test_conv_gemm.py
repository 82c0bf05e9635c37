"""The fast "gemm" path (nnlayers/kernels/conv_gemm.py, conv_unfolding.py, conv_correlate.py): each
layout, chunking and thread count against the readable formulas, and the same bits at any lane count.

tests/kernels/test_conv_paths.py compares every path with the reference path over random geometries.
"""
import numpy as np
import pytest

import nnlayers as nl
from nnlayers.kernels import conv_unfolding, threads as _threads, winograd
from nnlayers.kernels.conv_correlate import correlates_back
from tests.layers.test_conv import reference_conv

# (id, C, F, kernel, stride, padding, input shape, expected layout flags: row_flat, per_sample,
#  direct, and whether δX comes from the correlation of δZ with the flipped kernel or from col2im)
LAYOUT_CASES = [
    ("row-flat-per-sample", 4, 3, 3, 1, 1, (5, 4, 9, 8), (True, True, False, True)),
    ("row-flat-chunk-wide", 16, 32, 3, 1, 1, (5, 16, 6, 5), (True, False, False, False)),
    ("row-flat-chunk-wide-correlated", 32, 32, 3, 1, 1, (3, 32, 6, 5), (True, False, False, True)),
    ("row-flat-5x5-unpadded", 6, 4, 5, 1, 0, (3, 6, 9, 10), (True, True, False, True)),
    ("row-flat-padding-beyond-kernel", 5, 3, (3, 2), 1, (1, 2), (3, 5, 6, 7), (True, True, False, False)),
    ("exact-direct-few-inputs", 1, 12, 3, 1, (1, 2), (5, 1, 7, 6), (False, True, True, False)),
    ("strided-direct", 3, 4, 3, 2, 1, (5, 3, 9, 8), (False, True, True, False)),
    ("strided-chunk-wide", 16, 32, 3, 2, 1, (5, 16, 7, 7), (False, False, False, False)),
    # A batch of one sample is one chunk: with two threads its copies are cut by channels.
    ("one-sample-chunk-wide", 16, 32, 3, 1, 1, (1, 16, 6, 5), (True, False, False, False)),
    ("one-sample-correlated", 32, 32, 3, 1, 1, (1, 32, 6, 5), (True, False, False, True)),
]


@pytest.mark.parametrize("threads", [1, 2])
@pytest.mark.parametrize("chunk_bytes", [1, 2000, None], ids=["one-sample-chunks", "small-chunks", "default"])
@pytest.mark.parametrize("C, F, kernel, stride, padding, shape, flags",
                         [case[1:] for case in LAYOUT_CASES], ids=[case[0] for case in LAYOUT_CASES])
def test_every_layout_chunking_and_thread_count_computes_the_formulas(
        C, F, kernel, stride, padding, shape, flags, chunk_bytes, threads, rng, monkeypatch, set_threads):
    """Each internal layout (see ``Unfolding``), cut into chunks of one sample, a few or all,
    on one thread or over two (whole chunks in two lanes, or a lone chunk's copies in pieces by
    channels), gives the reference numbers; every scratch array starts full of NaN, so a value
    read before it is written shows."""
    if chunk_bytes is not None:
        monkeypatch.setattr(conv_unfolding, "CHUNK_BYTES", chunk_bytes)
    monkeypatch.setattr(conv_unfolding, "SPREAD_MIN", 0)           # spread even these small chunks
    monkeypatch.setattr(_threads, "_local", __import__("threading").local())   # fresh scratch
    set_threads(threads)

    def poison(_lane, scratch):                                 # every lane's scratch, helpers' too
        for name in ("conv.Xpad", "conv.cols", "conv.grid", "conv.dXpad"):
            scratch.array(name, (1 << 16,), np.float64).fill(np.nan)
    _threads.map_chunks(poison, range(threads))
    conv = nl.Conv2D(C, F, kernel, stride, padding, rng=0)
    conv.b.data[...] = rng.normal(size=F)
    X = rng.normal(size=shape)
    Z = conv.forward(X)
    layout = conv._layouts["unfolding"]
    assert (layout.row_flat, layout.per_sample, layout.direct, correlates_back(conv)) == flags
    assert len(layout.chunks) == (shape[0] if chunk_bytes == 1 else len(layout.chunks))
    dZ = rng.normal(size=Z.shape)
    dX = conv.backward(dZ)
    expected = reference_conv(conv, X, dZ)
    for ours, theirs in zip((Z, conv.W.grad, conv.b.grad, dX), expected):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("C, F, algorithm, training", [
    (8, 16, "gemm", True),          # columns kept; δX by col2im (C < F)
    (16, 8, "gemm", True),          # δX as the correlation of δZ (C ≥ F)
    (24, 24, "gemm", False),        # columns unfolded again in backward
    (24, 40, "gemm", False),        # chunk-wide products (K·F > 4096)
    (8, 16, "winograd", True),
])
def test_results_do_not_depend_on_the_thread_count(C, F, algorithm, training, rng, monkeypatch, set_threads):
    """Threads take whole chunks (or cut a lone chunk's copies); each chunk's products are the
    same, and δW adds up the chunks in one order: the same bits."""
    monkeypatch.setattr(conv_unfolding, "CHUNK_BYTES", 50_000)
    monkeypatch.setattr(winograd._Winograd, "chunk_bytes", 20_000)
    X = rng.normal(size=(9, C, 12, 11)).astype(np.float32)
    results = []
    for threads in (1, 2, 3):
        set_threads(threads)
        conv = nl.Conv2D(C, F, 3, padding=1, rng=0, dtype=np.float32, algorithm=algorithm)
        conv.train(training)
        Z = conv.forward(X)
        layout = conv._layouts["winograd" if algorithm == "winograd" else "unfolding"]
        assert len(layout.chunks) > 3
        results.append((Z, conv.backward(np.cos(Z)), conv.W.grad))
    for other in results[1:]:
        for ours, theirs in zip(results[0], other):
            np.testing.assert_array_equal(ours, theirs)
