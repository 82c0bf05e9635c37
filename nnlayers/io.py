"""Keeping weights: state dicts, and ``.npz`` files written atomically and read without pickle.

A state dict maps each parameter's dotted name (``0.W``, ``3.b``) to a copy of
its array. A weights file is an ``.npz`` archive with one array per name.
"""
from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np

from .atomic import atomic_write

__all__ = ["state_dict", "load_state_dict", "save", "load", "WeightsFileError"]


class WeightsFileError(ValueError):
    """A weights file or state dict that does not fit the model; the model was left unchanged."""


def state_dict(model) -> dict:
    """``{name: copy of the parameter's array}`` in the model's parameter order."""
    return {name: parameter.data.copy() for name, parameter in model.named_parameters()}


def load_state_dict(model, state: dict, *, source: str = "state dict") -> None:
    """Copy ``state``'s arrays into the model's parameters, in place.

    Everything is checked before anything is written: the names must match the
    model's exactly, each shape must match, and each array must be numeric, so
    a refused state leaves the model as it was. Values are cast to each
    parameter's dtype (a float64 file loads into a float32 model).
    """
    named = dict(model.named_parameters())
    missing = [name for name in named if name not in state]
    unexpected = [name for name in state if name not in named]
    if missing or unexpected:
        raise WeightsFileError(
            f"{source} does not match the model: " + "; ".join(
                part for part in (f"missing {', '.join(missing)}" if missing else "",
                                  f"unexpected {', '.join(unexpected)}" if unexpected else "") if part))
    arrays = {}
    for name, parameter in named.items():
        array = np.asarray(state[name])
        if array.dtype.kind not in "fiu":
            raise WeightsFileError(f"{source}: {name} holds {array.dtype} values, not numbers")
        if array.shape != parameter.shape:
            raise WeightsFileError(f"{source}: {name} has shape {array.shape}, the model's has shape "
                                   f"{parameter.shape}")
        arrays[name] = array
    for name, parameter in named.items():
        np.copyto(parameter.data, arrays[name], casting="unsafe")


def save(model, path) -> Path:
    """Write the model's parameters to ``path`` (an ``.npz`` archive), atomically.

    The archive is written to a temporary file beside ``path``, flushed to
    disk, then renamed over it: a crash mid-save leaves any previous file whole.
    """
    path = Path(path)
    with atomic_write(path) as file:
        np.savez(file, **state_dict(model))
    return path


def load(model, path) -> None:
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
    load_state_dict(model, state, source=str(path))
