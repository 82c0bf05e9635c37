"""The stamp of a benchmark run: where, with what and when it was measured.

Every ``--json`` file carries one (``stamp()``), so that a number in docs/speed.rst
can be traced to the machine, BLAS kernel, versions, thread counts and date of
the run that produced it.
"""
from __future__ import annotations

import datetime
import os
import platform

import numpy as np

from . import threads


def cpu_model() -> str:
    """The CPU's model name (Linux: /proc/cpuinfo), else what the platform module knows."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def blas_description() -> str:
    """The BLAS library numpy calls and the kernel it picked at run time.

    threadpoolctl reports it when installed; otherwise OpenBLAS itself is
    asked (``openblas_get_corename``, under the prefixes numpy's wheels use)
    through the library file mapped into this process, with numpy's build
    configuration for the library's name.
    """
    try:
        import threadpoolctl
        infos = [info for info in threadpoolctl.threadpool_info() if info.get("user_api") == "blas"]
        if infos:
            return "; ".join(f"{info.get('internal_api')} {info.get('version')} kernel "
                             f"{info.get('architecture')} ({info.get('num_threads')} threads)" for info in infos)
    except ImportError:
        pass
    import ctypes
    config = np.show_config(mode="dicts") if "mode" in np.show_config.__code__.co_varnames else {}
    blas = config.get("Build Dependencies", {}).get("blas", {})
    name = f"{blas.get('name', 'BLAS')} {blas.get('version', '')}".strip()
    try:
        with open("/proc/self/maps") as maps:
            paths = sorted({line.split()[-1] for line in maps if "openblas" in line.lower() and "/" in line})
    except OSError:
        paths = []
    for path in paths:
        library = ctypes.CDLL(path)
        for symbol in ("openblas_get_corename", "scipy_openblas_get_corename64_", "openblas_get_corename64_",
                       "scipy_openblas_get_corename"):
            function = getattr(library, symbol, None)
            if function is not None:
                function.restype = ctypes.c_char_p
                return f"{name} kernel {function().decode()}"
    return f"{name} (kernel unknown)"


def kernel_name(blas: str) -> str:
    """The kernel's name in a ``blas_description`` ("Haswell", "SkylakeX"), or "?" if unknown."""
    _, found, rest = blas.partition(" kernel ")
    return rest.split()[0] if found and rest.split() else "?"


def nnlayers_threads() -> int:
    """nnlayers' helper threads (``NNLAYERS_NUM_THREADS``, default one), as the library counts them."""
    try:
        from nnlayers.kernels.threads import num_threads   # no public name for it yet
    except ImportError:
        return int(os.environ.get("NNLAYERS_NUM_THREADS") or 1)
    return num_threads()


def stamp(reuse_freed_memory: bool | None = None) -> dict:
    """Machine, BLAS kernel, versions, thread counts and date of this run (UTC, to the second)."""
    from nnlayers import __version__
    from .models import torch
    blas = blas_description()
    affinity = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat(),
        "cpu": cpu_model(), "cores": os.cpu_count(), "cores_available": affinity,
        "system": f"{platform.system()} {platform.release()}", "python": platform.python_version(),
        "numpy": np.__version__, "torch": torch.__version__ if torch else None, "nnlayers": __version__,
        "blas": blas, "kernel": kernel_name(blas),
        "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),   # None: OpenBLAS picked its own kernel
        "threads": int(threads.THREADS), "blas_threads": int(threads.BLAS_THREADS),
        "nnlayers_threads": nnlayers_threads(), "reuse_freed_memory": reuse_freed_memory,
    }


def describe(stamp: dict) -> str:
    """One line for a table's caption: threads, kernel, CPU, versions and date."""
    threads_text = f"{stamp['threads']} thread{'s' if stamp['threads'] != 1 else ''}"
    if stamp.get("blas_threads") not in (None, stamp["threads"]) or stamp.get("nnlayers_threads", 1) != 1:
        threads_text += f" (BLAS {stamp['blas_threads']}, nnlayers {stamp['nnlayers_threads']})"
    coretype = stamp.get("openblas_coretype")
    kernel = f"{stamp['kernel']} kernel" + (f" (OPENBLAS_CORETYPE={coretype})" if coretype else "")
    return (f"{threads_text}, {kernel}; {stamp['cpu']}, {stamp['cores']} cores; numpy {stamp['numpy']}, "
            f"PyTorch {stamp['torch'] or '–'}; {stamp['date'][:10]}")
