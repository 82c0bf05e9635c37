"""Checks for constructor and call arguments, shared across the package.

One rule everywhere: a value of the wrong *type* raises ``TypeError`` (a
string, a bool, None or a float where an integer belongs); a value of the
right type outside its range raises ``ValueError``. Each message names the
owner (``SGD``, ``fit``, ``Conv2D``) and the argument, and shows the value.
"""
from __future__ import annotations

import math
import os

import numpy as np

__all__ = ["pair", "positive_int", "non_negative_int", "real", "flag", "show", "shown_path"]


def _is_int(value) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))


def _is_real(value) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, (bool, np.bool_))


def _got(value) -> str:
    return f"{value!r} ({type(value).__name__})"


def _kind(minimum: int) -> str:
    return "a positive integer" if minimum == 1 else f"an integer ≥ {minimum}"


def int_at_least(value, name: str, owner: str, minimum: int) -> int:
    """``value`` as an int ≥ ``minimum``: TypeError unless an integer (bool excluded), ValueError if smaller."""
    if not _is_int(value):
        raise TypeError(f"{owner}: {name} must be {_kind(minimum)}, got {_got(value)}")
    if value < minimum:
        raise ValueError(f"{owner}: {name} must be {_kind(minimum)}, got {value!r}")
    return int(value)


def positive_int(value, name: str, owner: str) -> int:
    """``value`` as an int ≥ 1 (a size)."""
    return int_at_least(value, name, owner, 1)


def non_negative_int(value, name: str, owner: str) -> int:
    """``value`` as an int ≥ 0 (a count)."""
    return int_at_least(value, name, owner, 0)


def pair(value, name: str, owner: str, minimum: int = 1) -> tuple:
    """An int or a pair of ints, each ≥ ``minimum``, as a (height, width) tuple.

    TypeError for anything but an integer or a tuple/list of integers; ValueError for a
    sequence that is not a pair, or a size below ``minimum``.
    """
    kind = _kind(minimum)
    items = tuple(value) if isinstance(value, (tuple, list)) else (value,)
    if not all(_is_int(v) for v in items):
        raise TypeError(f"{owner}: {name} must be {kind} or a pair of them, got {_got(value)}")
    if len(items) not in ((1,) if not isinstance(value, (tuple, list)) else (2,)) or \
            not all(v >= minimum for v in items):
        raise ValueError(f"{owner}: {name} must be {kind} or a pair of them, got {value!r}")
    return (int(items[0]), int(items[-1]))


def real(value, name: str, owner: str, *, low: float = -math.inf, high: float = math.inf,
         low_open: bool = False, high_open: bool = False, optional: bool = False) -> float | None:
    """``value`` as a finite float in [low, high] (``low_open``/``high_open``: without that end).

    TypeError unless a real number (int or float, numpy's included; not a bool, a string
    or None); ValueError for NaN, ±inf or a value outside the range. With ``optional``,
    None is accepted too, and returned as is (``momentum=None``).
    """
    opening, closing = "(" if low_open else "[", ")" if high_open else "]"
    if low > -math.inf and high < math.inf:
        wanted = f"a number in {opening}{low:g}, {high:g}{closing}"
    elif low > -math.inf:
        wanted = f"a finite number {'>' if low_open else '≥'} {low:g}"
    else:
        wanted = "a finite number"
    if optional:
        if value is None:
            return None
        wanted += " or None"
    if not _is_real(value):
        raise TypeError(f"{owner}: {name} must be {wanted}, got {_got(value)}")
    number = float(value)
    if not (math.isfinite(number) and low <= number <= high and not (low_open and number == low)
            and not (high_open and number == high)):
        raise ValueError(f"{owner}: {name} must be {wanted}, got {value!r}")
    return number


def flag(value, name: str, owner: str) -> bool:
    """``value`` as a bool: TypeError for anything but True or False (``"no"`` would be true)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{owner}: {name} must be True or False, got {_got(value)}")
    return bool(value)


def show(pair) -> str:
    """3 for (3, 3), else (3, 5): as short as the user would write it."""
    return str(pair[0]) if pair[0] == pair[1] else str(pair)


def shown_path(path) -> str:
    """A file name for an error message, printable whatever its encoding.

    A name that is not valid in the file system's encoding reaches Python with
    surrogate escapes, which no text stream can encode; those bytes are shown
    as ``\\xNN`` escapes instead (``caf\\xe9.idx``).
    """
    text = os.fsdecode(path)
    try:
        text.encode("utf-8")
        return text
    except UnicodeEncodeError:
        pass
    try:
        raw = os.fsencode(text)                      # the name's own bytes, surrogate escapes undone
    except UnicodeEncodeError:                       # a lone surrogate that no file system gave us
        return text.encode("utf-8", "backslashreplace").decode("utf-8")
    return raw.decode("utf-8", "backslashreplace")
