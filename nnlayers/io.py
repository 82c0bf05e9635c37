"""Weights files: a model's state dict as an ``.npz`` archive, written atomically, read without pickle.

A state dict (``Module.state_dict``) maps each parameter's and buffer's dotted
name (``0.W``, ``3.b``, ``1.running_mean``) to a copy of its array; a weights
file holds one array per name. This module only reads and writes files: what
fits the model is decided by ``Module.load_state_dict``.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_write
from .module import WeightsFileError

__all__ = ["save", "load", "WeightsFileError"]


def save(model, path) -> Path:
    """Write the model's parameters and buffers to ``path`` (an ``.npz`` archive), atomically.

    The archive is written to a temporary file beside ``path``, flushed to
    disk, then renamed over it: a crash mid-save leaves any previous file whole.
    """
    path = Path(path)
    state = model.state_dict()
    for name, array in state.items():  # refused before the file is touched: load would refuse it
        if array.dtype.kind not in "fiu":
            raise WeightsFileError(f"{path}: not saved, {name} holds {array.dtype} values, not numbers")
    with atomic_write(path) as file:
        np.savez(file, **state)
    return path


def load(model, path, *, allow_nonfinite: bool = False) -> None:
    """Load weights saved by ``save`` into ``model``; never unpickles (``allow_pickle=False``).

    Refuses, naming the file and leaving the model unchanged, anything that
    is not an ``.npz`` archive, a truncated archive, object arrays, and
    names or shapes that do not match the model.
    """
    path = Path(path)
    try:
        archive = np.load(path, allow_pickle=False)
        if not isinstance(archive, np.lib.npyio.NpzFile):
            raise WeightsFileError(f"{path}: holds a single array, not an .npz archive of named weights")
        with archive:
            state = {name: archive[name] for name in archive.files}
    except (WeightsFileError, FileNotFoundError):
        raise
    except (ValueError, OSError, EOFError, zipfile.BadZipFile, KeyError) as error:
        if "allow_pickle" in str(error):
            reason = ("holds pickled data (object arrays or a pickle), which is never loaded"
                      if "Object arrays" in str(error) else "is not an .npz archive")
        else:
            reason = f"is not a readable .npz archive (truncated or corrupt: {error})"
        raise WeightsFileError(f"{path}: {reason}") from error
    model.load_state_dict(state, source=str(path), allow_nonfinite=allow_nonfinite)
