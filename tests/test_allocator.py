"""reuse_freed_memory (nnlayers/allocator.py): freed blocks stay in the process, so no page faults."""
import os
import platform
import subprocess
import sys
import textwrap

import pytest

import nnlayers as nl
from nnlayers import allocator

GLIBC = platform.system() == "Linux" and platform.libc_ver()[0] == "glibc"

# Each round allocates and frees six 3 MiB arrays (under numpy's 4 MiB huge-page size), as a
# training step does its activations; the page faults of the rounds after the first few are counted.
CHILD = textwrap.dedent("""
    import resource
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
    applied = nl.reuse_freed_memory()
    faults(2)
    print(applied, default, faults(10))
""")


@pytest.mark.skipif(not GLIBC, reason="reuse_freed_memory acts on glibc's malloc only")
def test_freed_arrays_are_reused_without_page_faults():
    env = {key: value for key, value in os.environ.items() if not key.startswith("MALLOC_")}
    result = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True, env=env, check=True)
    applied, default, kept = result.stdout.split()
    assert applied == "True"
    # glibc's defaults: the heap top beyond 2 × 3 MiB goes back to the system after every round, so
    # most of the 10 × 6 × 768 pages fault in again; kept, none do.
    assert int(default) > 20_000
    assert int(kept) < 100


def test_calling_it_again_is_harmless():
    assert nl.reuse_freed_memory() is GLIBC
    assert nl.reuse_freed_memory() is GLIBC


def test_other_c_libraries_are_left_alone(monkeypatch):
    monkeypatch.setattr(allocator.platform, "libc_ver", lambda: ("", ""))
    assert allocator._mallopt() is None
    assert nl.reuse_freed_memory() is False


@pytest.mark.skipif(not GLIBC, reason="glibc only")
def test_a_refused_value_is_reported(monkeypatch):
    calls = []

    class Refusing:
        argtypes = restype = None

        def __call__(self, parameter, value):
            calls.append((parameter, value))
            return 0                                      # glibc's answer to a value out of range

    monkeypatch.setattr(allocator, "_mallopt", Refusing)
    assert nl.reuse_freed_memory() is False
    assert calls == [(-3, 32 << 20)]
