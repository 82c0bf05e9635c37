"""Pooling's fast CPU path: the batch cut into one slice per lane, the slices pooled at once.

``MaxPool2D`` and ``AvgPool2D`` (``nnlayers.layers.pooling``) compute their
formulas on a batch; ``over_batch`` runs that same computation on slices of
the batch in parallel (numpy releases the GIL in its loops), one per thread
of ``threads``. Each sample's numbers do not depend on the others', so the
result is the same bits as one call (tests/kernels/test_pooling_paths.py).
"""
from __future__ import annotations

import numpy as np

from . import fast_paths_on
from .threads import even_slices, map_chunks, num_threads

__all__ = ["over_batch", "SPREAD_MIN"]

#: Batches of fewer values than this are pooled on one thread: handing work over costs more.
SPREAD_MIN = 1 << 17


def over_batch(compute, arrays, out=None):
    """``compute(*arrays)`` (or ``compute(*arrays, out)``, which fills ``out`` and is returned), with
    the batch (axis 0 of each array; None passes as is) cut into one slice per thread and the
    slices computed in parallel (numpy releases the GIL in its loops).

    Without ``out`` the results, an array or a tuple of arrays (or None), are joined along the
    batch axis in order. With one thread, a batch under ``SPREAD_MIN`` values, arrays other than
    numpy's or inside ``reference_paths()``, it is one call.
    """
    N, threads = len(arrays[0]), num_threads()
    host = type(arrays[0]) is np.ndarray and fast_paths_on()   # a GPU array is one call: the device spreads it
    lanes = min(threads, N) if host and arrays[0].size >= SPREAD_MIN else 1
    if lanes <= 1:
        return compute(*arrays) if out is None else compute(*arrays, out)
    slices = even_slices(N, lanes)

    def piece(rows, _scratch):
        inputs = [a if a is None else a[rows] for a in arrays]
        return compute(*inputs) if out is None else compute(*inputs, out[rows])

    parts = map_chunks(piece, slices)
    if out is not None:
        return out
    if not isinstance(parts[0], tuple):
        return np.concatenate(parts)
    return tuple(None if items[0] is None else np.concatenate(items) for items in zip(*parts))
