"""Embedding's δW on numpy arrays: the scatter-add δW[v] += Σ_{k: ids_k = v} δZ_k, summed per id first.

The reference path is ``np.add.at(dW, ids, rows)``, one addition per row, in
order. Here the rows are grouped by id (a stable sort), each group summed in
one ``np.add.reduceat``, and each id's sum added to its row of δW once: for
the repeated ids of text (a few dozen characters over thousands of
positions) several times faster, and only the touched rows of δW are read
or written. Equal to the reference to rounding (the sums are taken in
another order); tests/kernels/test_scatter.py.
"""
from __future__ import annotations

import numpy as np

__all__ = ["scatter_add_rows"]


def scatter_add_rows(target: np.ndarray, ids: np.ndarray, rows: np.ndarray) -> None:
    """target[v] += Σ_{k: ids[k] = v} rows[k] for a flat ``ids`` (M) and ``rows`` (M×D), in place."""
    if len(ids) == 0:
        return
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.concatenate(([True], sorted_ids[1:] != sorted_ids[:-1])))
    target[sorted_ids[starts]] += np.add.reduceat(rows[order], starts, axis=0)   # each id once: no collisions
