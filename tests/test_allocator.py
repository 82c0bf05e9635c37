"""reuse_freed_memory (nnlayers/allocator.py): freed blocks stay in the process, so no page faults."""
import os
import subprocess
import sys
import textwrap

import pytest

import nnlayers as nl
from nnlayers import allocator
from tests.helpers import GLIBC

# Each round allocates and frees six 3 MiB arrays, as a training step does its activations; the page
# faults of ten rounds are counted, with glibc's defaults and then kept. Transparent huge pages are
# turned off for the child (prctl PR_SET_THP_DISABLE), so that each page is one fault whatever the
# system's setting; reuse_freed_memory is called twice, as calling it again must be harmless.
CHILD = textwrap.dedent("""
    import ctypes, resource
    ctypes.CDLL(None).prctl(41, 1, 0, 0, 0)
    import numpy as np
    import nnlayers as nl

    def faults(rounds):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        for _ in range(rounds):
            arrays = [np.ones(3 << 17) for _ in range(6)]
            del arrays
        return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

    faults(2)
    default = faults(10)
    applied = nl.reuse_freed_memory(), nl.reuse_freed_memory()
    faults(2)
    print(*applied, default, faults(10), resource.getpagesize())
""")


@pytest.mark.skipif(not GLIBC, reason="reuse_freed_memory acts on glibc's malloc only")
@pytest.mark.skipif("LD_PRELOAD" in os.environ, reason="a preloaded library may replace glibc's malloc")
def test_freed_arrays_are_reused_without_page_faults():
    env = {key: value for key, value in os.environ.items()
           if not key.startswith("MALLOC_") and key != "GLIBC_TUNABLES"}    # glibc's defaults
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=True)
    first, again, default, kept, page = result.stdout.split()
    assert (first, again) == ("True", "True")
    # glibc's defaults: the heap top beyond 2 × 3 MiB goes back to the system after every round, so
    # most of the pages fault in again (46,080 touched with 4 KiB pages); kept, none do.
    assert int(default) > 0.5 * 10 * 6 * (3 << 20) // int(page)
    assert int(kept) < 100


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    assert allocator._mallopt() is None
    assert nl.reuse_freed_memory() is False


def fake_mallopt(monkeypatch, refuse=()):
    """Replace glibc's mallopt by a recorder that refuses the (parameter, value) pairs in ``refuse``."""
    calls = []

    def mallopt(parameter, value):
        calls.append((parameter, value))
        return int((parameter, value) not in refuse)         # glibc: 1 for done, 0 for refused

    monkeypatch.setattr(allocator, "_mallopt", lambda: mallopt)
    return calls


def test_both_thresholds_are_set(monkeypatch):
    calls = fake_mallopt(monkeypatch)
    assert nl.reuse_freed_memory() is True
    assert calls == [(-3, 1 << 30), (-1, 1 << 30)]             # M_MMAP_THRESHOLD, M_TRIM_THRESHOLD


def test_an_older_glibc_gets_its_largest_mmap_threshold(monkeypatch):
    calls = fake_mallopt(monkeypatch, refuse={(-3, 1 << 30)})  # older releases: at most 32 MiB
    assert nl.reuse_freed_memory() is True
    assert calls == [(-3, 1 << 30), (-3, 32 << 20), (-1, 1 << 30)]


def test_a_refused_value_is_reported(monkeypatch):
    calls = fake_mallopt(monkeypatch, refuse={(-3, 1 << 30), (-3, 32 << 20)})
    assert nl.reuse_freed_memory() is False
    assert calls == [(-3, 1 << 30), (-3, 32 << 20)]
    calls = fake_mallopt(monkeypatch, refuse={(-1, 1 << 30)})
    assert nl.reuse_freed_memory() is False and calls[-1] == (-1, 1 << 30)


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_glibc_mallopt_is_found_with_its_c_signature():
    mallopt = allocator._mallopt()
    assert mallopt is not None and mallopt.restype is __import__("ctypes").c_int
    assert len(mallopt.argtypes) == 2
