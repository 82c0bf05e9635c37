"""Checks for constructor and call arguments, shared across the package."""
from __future__ import annotations

import numpy as np

__all__ = ["pair", "positive_int", "show"]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def positive_int(value, name: str, owner: str) -> int:
    """``value`` as an int ≥ 1, or a ValueError naming ``owner`` and the argument."""
    if not _is_int(value) or value < 1:
        raise ValueError(f"{owner}: {name} must be a positive integer, got {value!r}")
    return int(value)


def pair(value, name: str, owner: str, minimum: int = 1) -> tuple:
    """An int or a pair of ints, each ≥ ``minimum``, as a (height, width) tuple."""
    items = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(items) != 2 or not all(_is_int(v) and v >= minimum for v in items):
        kind = "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"
        raise ValueError(f"{owner}: {name} must be {kind} or a pair of them, got {value!r}")
    return int(items[0]), int(items[1])


def show(pair) -> str:
    """3 for (3, 3), else (3, 5): as short as the user would write it."""
    return str(pair[0]) if pair[0] == pair[1] else str(pair)
