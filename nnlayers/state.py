"""Checking a state dict against a model before anything is written.

``Module.load_state_dict`` and the weights-file reader (``nnlayers.io``) share
these checks: the names must match the model's exactly, each shape must match,
each array must be numeric, values must fit the model's dtype and be finite.

The dtype rule: a floating-point array loads into a floating-point parameter or buffer of any
precision, rounded to it (float64 → float32 rounds; a value too large for float32 is refused,
never turned into inf); an integer array loads into an integer buffer (a counter) only if its
values fit exactly; integers never load into floating-point arrays (weights are never integers:
such a file is not weights), nor floats into integer buffers unless they are whole numbers that fit.
Everything is checked first, so a refused state leaves the model untouched;
every refusal is a ``WeightsFileError`` naming where the state came from.
"""
from __future__ import annotations

import numpy as np

from .backend import to_host
from .errors import WeightsFileError

__all__ = ["check_state_layout", "state_targets", "converted_state"]


def state_targets(model) -> dict:
    """``{dotted name: Parameter or Buffer}``: what a state dict of ``model`` must name, in order."""
    targets = dict(model.named_parameters())
    targets.update(model.named_buffers())
    return targets


def check_state_layout(model, layout: dict, source: str) -> None:
    """Refuse, as ``load_state_dict`` would, a state whose names, dtypes or shapes do not fit
    ``model``, knowing only its layout ``{name: (dtype, shape)}``: for readers (``nl.load``) that
    learn the layout from a file's headers before reading any data."""
    targets = state_targets(model)
    _check_names(targets, layout, source)
    for name, target in targets.items():
        dtype, shape = layout[name]
        _check_entry(f"{source}: {name}", np.dtype(dtype), tuple(shape), target.data)


def converted_state(model, state, source: str, allow_nonfinite: bool = False) -> dict:
    """``{name: (target, host array of the target's dtype)}`` for every entry of ``state``, all checked;
    a ``WeightsFileError`` naming ``source`` for the first entry that does not fit."""
    if not isinstance(state, dict):
        raise WeightsFileError(f"{source}: expected a dict of named arrays, got {type(state).__name__}")
    targets = state_targets(model)
    _check_names(targets, state, source)
    return {name: (target, _converted(state[name], target.data, f"{source}: {name}", allow_nonfinite))
            for name, target in targets.items()}


def _check_names(targets: dict, state, source: str) -> None:
    missing = [name for name in targets if name not in state]
    unexpected = [str(name) for name in state if name not in targets]
    if missing or unexpected:
        parts = ([f"missing {', '.join(missing)}"] if missing else []) + \
                ([f"unexpected {', '.join(unexpected)}"] if unexpected else [])
        raise WeightsFileError(f"{source} does not match the model: " + "; ".join(parts))


def _check_entry(where: str, dtype: np.dtype, shape: tuple, target: np.ndarray) -> None:
    if dtype.kind not in "fiu":
        raise WeightsFileError(f"{where} holds {dtype} values, not numbers")
    if dtype.kind in "iu" and target.dtype.kind == "f":
        raise WeightsFileError(f"{where} holds integers ({dtype}), the model's {target.dtype} weights need "
                               "floating-point values")
    if shape != target.shape:
        raise WeightsFileError(f"{where} has shape {shape}, the model's has shape {target.shape}")


def _converted(value, target: np.ndarray, where: str, allow_nonfinite: bool) -> np.ndarray:
    """``value`` as an array of ``target``'s dtype and shape, or a WeightsFileError saying why not."""
    try:
        array = to_host(value)  # a GPU model's state dict holds device arrays
    except ValueError as error:  # ragged nested lists
        raise WeightsFileError(f"{where} is not a rectangular array ({error})") from None
    _check_entry(where, array.dtype, array.shape, target)
    finite = np.isfinite(array) if array.dtype.kind == "f" else None
    if finite is not None and not allow_nonfinite and not finite.all():
        raise WeightsFileError(f"{where} holds NaN or infinite values (pass allow_nonfinite=True to load "
                               "them anyway)")
    with np.errstate(over="ignore", invalid="ignore"):
        cast = array.astype(target.dtype)
    if target.dtype.kind == "f":
        overflow = ~np.isfinite(cast) & (finite if finite is not None else True)
        if np.any(overflow):
            raise WeightsFileError(f"{where} holds values too large for {target.dtype} "
                                   f"(e.g. {array[overflow].flat[0].item()!r})")
    elif not np.array_equal(cast, array):
        raise WeightsFileError(f"{where} holds values that {target.dtype} cannot represent exactly")
    return cast
