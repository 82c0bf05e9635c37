"""Helpers shared by the test modules: skipping for missing requirements and running scripts."""
import os
import struct
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPTS = ROOT / "scripts"
FIXTURES = Path(__file__).resolve().parent / "fixtures"
FASHION = Path("/usr/share/datasets/fashion-mnist")
GLIBC = sys.platform == "linux" and __import__("platform").libc_ver()[0] == "glibc"   # nl.reuse_freed_memory acts


def require(available: bool, reason: str) -> None:
    """Skip (or, under NNLAYERS_REQUIRE_ALL=1, fail) the calling test unless ``available``."""
    if available:
        return
    if os.environ.get("NNLAYERS_REQUIRE_ALL") == "1":
        pytest.fail(f"required by NNLAYERS_REQUIRE_ALL=1 but missing: {reason}")
    pytest.skip(reason)


def run_script(name: str, *args, cwd=None, timeout=300):
    """Run scripts/<name> with this interpreter; returns the CompletedProcess."""
    import subprocess
    # One BLAS thread: a two-thread pool collapses when anything else loads these 2-core machines.
    env = dict(os.environ, MPLBACKEND="Agg", OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    # This checkout's nnlayers, not whichever one is installed (an editable install of another worktree).
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p])
    return subprocess.run([sys.executable, str(SCRIPTS / name), *map(str, args)], capture_output=True,
                          text=True, cwd=cwd, timeout=timeout, env=env)


def load_script(name: str):
    """scripts/<name> imported as a module (its ``main`` not run), to call its functions directly."""
    import importlib.util
    spec = importlib.util.spec_from_file_location(Path(name).stem, SCRIPTS / name)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def require_fashion() -> Path:
    """The Fashion-MNIST folder, or a skip (a failure under NNLAYERS_REQUIRE_ALL) saying how to get it."""
    require(FASHION.is_dir(), f"{FASHION} is missing (Debian package dataset-fashion-mnist)")
    return FASHION


def lrs(schedule, steps: int) -> list:
    """η(0), η(1), …, η(steps) as the schedule's optimizer sees them."""
    values = [schedule.optimizer.lr]
    for _ in range(steps):
        schedule.step()
        values.append(schedule.optimizer.lr)
    return values


def importable(*names: str) -> bool:
    """Whether every named module imports (a broken install counts as missing)."""
    import importlib
    try:
        for name in names:
            importlib.import_module(name)
    except ImportError:
        return False
    return True


def weights(model):
    """Copies of the model's parameter arrays, to compare with later."""
    return [p.data.copy() for p in model.parameters()]


def assert_unchanged(model, before):
    """Every parameter still holds exactly what ``weights(model)`` returned before."""
    import numpy as np
    for p, w in zip(model.parameters(), before):
        np.testing.assert_array_equal(p.data, w)


def twin_layers(make, rng):
    """Two modules from ``make`` with the same (perturbed, so biases matter) parameters: one to keep on
    the CPU, one to move to another device."""
    host, other = make(), make()
    for p_host, p_other in zip(host.parameters(), other.parameters()):
        p_host.data += rng.normal(scale=0.1, size=p_host.shape)
        p_other.data[...] = p_host.data
    return host, other


def draws_at_random(module) -> bool:
    """Whether ``module`` holds a Dropout in training mode with p > 0 (its masks differ between devices)."""
    from nnlayers import Dropout
    return any(isinstance(m, Dropout) and m.training and m.p > 0 for m in module.modules())


def idx_header(code: int, *shape: int) -> bytes:
    """The header of an IDX file: two zero bytes, the type code, the number of dimensions, then each
    size as a big-endian 32-bit integer."""
    return bytes([0, 0, code, len(shape)]) + struct.pack(f">{len(shape)}I", *shape)
