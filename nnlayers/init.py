"""Weight initialisers.

Every initialiser is a callable ``init(shape, fan_in, fan_out, rng) -> ndarray``
(float64; the layer casts it to its own dtype). ``fan_in`` is the number of
inputs feeding one output unit (``in_features`` for Linear, C_in·kh·kw for a
convolution), ``fan_out`` the number of outputs one input feeds.
Layers accept the names below or any callable of that form.
"""
from __future__ import annotations

import numpy as np

__all__ = ["xavier_uniform", "he_normal", "get_initializer", "as_rng"]


def as_rng(rng=None) -> np.random.Generator:
    """A ``numpy.random.Generator`` from an int seed, a Generator, or None (fresh entropy)."""
    return np.random.default_rng(rng)


def xavier_uniform(shape, fan_in: int, fan_out: int, rng) -> np.ndarray:
    """Glorot & Bengio (2010): W ~ U(−a, a) with a = √(6 / (fan_in + fan_out)).

    Keeps the variance of activations and of gradients roughly constant across
    layers for activations that are linear near zero (sigmoid, tanh).
    """
    bound = np.sqrt(6.0 / (fan_in + fan_out))
    return as_rng(rng).uniform(-bound, bound, size=shape)


def he_normal(shape, fan_in: int, fan_out: int, rng) -> np.ndarray:
    """He et al. (2015): W ~ N(0, 2 / fan_in).

    The factor 2 compensates for ReLU zeroing half of its inputs, so the
    variance of activations stays constant through deep ReLU networks.
    """
    return as_rng(rng).normal(0.0, np.sqrt(2.0 / fan_in), size=shape)


_BY_NAME = {"xavier": xavier_uniform, "glorot": xavier_uniform, "he": he_normal, "kaiming": he_normal}


def get_initializer(init):
    """Resolve ``init`` (a name from ``xavier``/``glorot``/``he``/``kaiming`` or a callable)."""
    if callable(init):
        return init
    try:
        return _BY_NAME[init]
    except (KeyError, TypeError):
        raise ValueError(f"unknown initialiser {init!r}; use one of {sorted(_BY_NAME)} or a callable "
                         "init(shape, fan_in, fan_out, rng)") from None


def initial_weights(init, shape, fan_in: int, fan_out: int, rng, dtype) -> np.ndarray:
    """Draw initial weights with ``init`` and check that they came back as promised."""
    values = np.asarray(get_initializer(init)(shape, fan_in, fan_out, as_rng(rng)))
    if values.shape != tuple(shape):
        raise ValueError(f"initialiser {init!r} returned shape {values.shape}, expected {tuple(shape)}")
    return values.astype(dtype)
