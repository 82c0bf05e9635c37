"""Keeping freed memory in the process for the next step: ``reuse_freed_memory()`` (glibc's malloc).

A training step allocates and frees the same large arrays step after step:
each layer's output, each gradient, the temporaries of numpy expressions.
glibc's malloc hands large blocks back to the operating system soon after
they are freed (a block above its *mmap threshold* is unmapped at once; free
space at the top of a heap beyond its *trim threshold* is released), so the
next step's arrays land on fresh pages, which the kernel zero-fills on first
touch, one page fault per page. Keeping freed memory saves those faults: it
helps most where a step's large arrays are allocated afresh (a process that
starts training at once, PyTorch's CPU steps as much as nnlayers'), and less
where glibc has already raised its thresholds by itself (it does so each time
it unmaps a block, up to 32 MiB: a script whose data loading first frees
large buffers). docs/speed.rst gives measured steps and epochs
with and without it (``--system-malloc``).

``reuse_freed_memory()`` sets both thresholds through ``mallopt``: blocks up
to ``MMAP_THRESHOLD`` (1 GiB; 32 MiB where glibc refuses more, as older releases
do) come from the heap, and freed memory stays there for the next
allocation instead of going back to the system. The price is that the
process keeps its peak memory until it ends. It is process-wide and cannot
be undone, so importing nnlayers never calls it: the training scripts and
the benchmarks do (``--system-malloc`` leaves malloc alone), and a program or
notebook may. The environment can set the same before Python starts::

    MALLOC_MMAP_THRESHOLD_=1073741824 MALLOC_TRIM_THRESHOLD_=1073741824 python train.py
"""
from __future__ import annotations

import ctypes
import platform

__all__ = ["reuse_freed_memory", "MMAP_THRESHOLD", "TRIM_THRESHOLD"]

#: Blocks up to this size come from the heap, where freed ones stay for reuse.
MMAP_THRESHOLD = 1 << 30
#: The largest mmap threshold older glibc releases accept (their documented maximum on 64-bit): the fallback.
OLD_GLIBC_MMAP_THRESHOLD = 32 << 20
#: Free memory at the top of a heap is returned to the system only beyond this size.
TRIM_THRESHOLD = 1 << 30

# mallopt's parameter numbers, from glibc's <malloc.h>.
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3


def _mallopt():
    """glibc's ``mallopt``, or None where glibc's malloc is not the one in use (another C library,
    or another allocator preloaded in front of it, such as jemalloc: mallopt would change nothing)."""
    if platform.system() != "Linux" or platform.libc_ver()[0] != "glibc":
        return None
    try:
        process, libc = ctypes.CDLL(None), ctypes.CDLL("libc.so.6")          # glibc's name on Linux
        if ctypes.cast(process.malloc, ctypes.c_void_p).value != ctypes.cast(libc.malloc, ctypes.c_void_p).value:
            return None
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return None
    mallopt.argtypes, mallopt.restype = (ctypes.c_int, ctypes.c_int), ctypes.c_int
    return mallopt


def reuse_freed_memory() -> bool:
    """Keep freed memory in this process for reuse (see the module docstring); True if it applied.

    False, changing nothing, where glibc's malloc is not in use (macOS,
    Windows, musl, a preloaded allocator) or glibc refused a value.
    Calling it again is harmless.
    """
    mallopt = _mallopt()
    if mallopt is None:
        return False
    # Both thresholds, always: setting either one turns off glibc's own adjustment of the other (with
    # only the trim threshold raised, every block over the current mmap threshold would be mapped
    # and unmapped: far more faults).
    kept = mallopt(_M_MMAP_THRESHOLD, MMAP_THRESHOLD) or mallopt(_M_MMAP_THRESHOLD, OLD_GLIBC_MMAP_THRESHOLD)
    return bool(kept) and bool(mallopt(_M_TRIM_THRESHOLD, TRIM_THRESHOLD))
