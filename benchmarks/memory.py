"""Memory: the growth of the process while training, one child process per framework."""
from __future__ import annotations

import subprocess

from . import process
from .models import NETS
from .steps import net_candidates


def memory_child(framework: str, key: str, size: int, steps: int) -> float:
    """MiB by which the peak resident set grows over ``steps`` training steps (after setup)."""
    import resource
    step = dict(net_candidates(key, size))[framework]()   # the benchmark's own step, built the same way
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    for _ in range(steps):
        step()
    return (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024


def memory_report(key: str, size: int, steps: int, malloc_flag: list) -> dict:
    """Each framework's growth (MiB), measured in a child process of its own, printed and returned."""
    growth = {}
    for framework in ("nnlayers", "PyTorch"):
        command = process.command("--memory-child", framework, "--memory-case", f"{key}-{size}",
                                  "--memory-steps", steps, *malloc_flag)
        output = subprocess.run(command, check=True, capture_output=True, text=True,
                                env=process.environment()).stdout
        growth[framework] = float(output.split()[-1])
    malloc = "system settings" if malloc_flag else "freed memory kept for reuse"
    print(f"{NETS[key][0]}, batch {size}, {steps} Adam steps: peak resident set growth "
          f"(ru_maxrss, one process each; malloc: {malloc})")
    for framework, mib in growth.items():
        print(f"  {framework:<10} {mib:8.1f} MiB")
    print(f"  nnlayers / PyTorch: {growth['nnlayers'] / growth['PyTorch']:.2f}")
    return growth
