"""Argument types shared by the command-line scripts: each turns a bad value into a clear
``argparse`` error (exit status 2) instead of a traceback further on."""
from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

__all__ = ["finite_float", "positive_float", "non_negative_float", "unit_fraction", "positive_int",
           "non_negative_int", "destination_problem", "check_destinations", "short_number", "check_show", "plural",
           "add_malloc_option", "apply_malloc_option"]


def finite_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be finite, got {text!r}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {text!r}")
    return value


def non_negative_float(text: str) -> float:
    """A number ≥ 0: weight decay."""
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {text!r}")
    return value


def unit_fraction(text: str) -> float:
    """A number in [0, 1): momentum, a share of the data."""
    value = finite_float(text)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be in [0, 1), got {text!r}")
    return value


def _integer(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer: {text!r}") from None


def positive_int(text: str) -> int:
    value = _integer(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def non_negative_int(text: str) -> int:
    """For seeds: numpy's generators take integers ≥ 0."""
    value = _integer(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be at least 0, got {value}")
    return value


def destination_problem(path) -> str | None:
    """Why no file can be written at ``path`` (for a message that names the path first), or None.

    Asked before a long run, so a typo in ``--save``/``--plot`` costs a second, not the run.
    Folders that do not exist yet are no problem (``check_destinations`` creates them) as long as
    the nearest existing one is a folder we may write in.
    """
    path = Path(path)
    if path.is_dir():
        return f"{path} is a folder; give a file name"
    folder = path.parent
    while not folder.exists() and folder != folder.parent:   # the nearest folder that exists
        if folder.is_symlink():                              # a dangling link: mkdir would fail
            return f"{folder} is a broken link"
        folder = folder.parent
    if not folder.is_dir():
        return f"{folder} is a file, not a folder"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"no permission to write in folder {folder}"
    return None


def check_destinations(parser: argparse.ArgumentParser, **options) -> None:
    """``parser.error`` (exit status 2) for the first option whose file cannot be written,
    e.g. ``check_destinations(parser, save=args.save, plot=args.plot)``; None values are skipped.
    Missing parent folders are then created (``--save out/cnn.npz`` makes ``out``)."""
    for name, path in options.items():
        if path is not None:
            problem = destination_problem(path)
            if problem:
                parser.error(f"--{name.replace('_', '-')} {path}: {problem}")
    for path in options.values():
        if path is not None:
            try:
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            except OSError as error:
                parser.error(f"cannot create folder {Path(path).parent}: {error.strerror or error}")


def short_number(value: float) -> str:
    """A number as a log shows it: at most 4 significant digits, exponents without padding
    (``0.00030000000000000003`` → ``3e-4``, ``0.05`` → ``0.05``, ``2e-3`` → ``0.002``): below 0.001
    and from 10,000 up in powers of ten."""
    if value and not 1e-3 <= abs(value) < 1e4:
        mantissa, exponent = f"{value:.3e}".split("e")
        return f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return f"{value:.4g}"


def check_show(show: bool, saving: bool = True) -> bool:
    """Whether ``--show`` can open a window. Where it cannot (no display), say so on stderr
    before the run starts, rather than finishing without a window and without a word."""
    if not show:
        return False
    from .plotting import can_show
    possible, why = can_show()
    if not possible:
        advice = "" if saving else "; use --plot FILE to save the figure instead"
        print(f"warning: --show: {why}, so no window will open{advice}", file=sys.stderr)
    return possible


def plural(count: int, noun: str) -> str:
    """``plural(1, "epoch")`` → "1 epoch", ``plural(8, "epoch")`` → "8 epochs"."""
    return f"{count} {noun}{'' if count == 1 else 's'}"


def add_malloc_option(parser: argparse.ArgumentParser) -> None:
    """``--system-malloc``: the switch of scripts that keep freed memory for reuse by default."""
    parser.add_argument("--system-malloc", action="store_true",
                        help="leave the C library's malloc settings alone (by default freed memory is kept "
                             "for the next step, nl.reuse_freed_memory: under glibc a step's arrays reuse pages "
                             "already mapped, and the process keeps its peak memory)")


def apply_malloc_option(args) -> bool:
    """Keep freed memory for reuse (``nl.reuse_freed_memory``) unless ``--system-malloc``; whether it applies."""
    if args.system_malloc:
        return False
    from .allocator import reuse_freed_memory
    return reuse_freed_memory()
