"""Inverted dropout: random zeros in training, the identity in evaluation."""
from __future__ import annotations

import numpy as np

from .._args import real
from ..backend import get_array_module
from ..init import as_rng
from ..module import Module, as_float_input

__all__ = ["Dropout"]


class Dropout(Module):
    """Inverted dropout (Srivastava et al., 2014) with drop probability p; any shape.

    Training mode (the default, ``train()``): each element is kept with
    probability 1 − p and scaled by 1/(1 − p), so E[Z] = X::

        M = [U ≥ p] / (1 − p),  U ~ Uniform[0, 1) elementwise;   Z = M ⊙ X

    Evaluation mode (``eval()``): Z = X, and backward passes δZ through.

    A new mask M is drawn from ``rng`` (an int seed, a ``numpy.random.Generator``
    or None; on a GPU, from that backend's generator seeded from ``rng``) on every
    training-mode forward, so two forwards of the same X
    differ. The same seed gives the same sequence of masks. To gradient-check
    the training path, the mask must be the same on every forward:
    ``nl.gradcheck`` gives the layer a copy of ``rng`` in the same state before
    each one (and its own generator back afterwards), so it checks δX = M ⊙ δZ.

    Cache: M in training mode (None in evaluation mode, where δX = δZ).
    """

    cache_names = ("_M", "_shape")

    def __init__(self, p: float = 0.5, rng=None):
        super().__init__()
        self.p = real(p, "p", "Dropout", low=0.0, high=1.0, high_open=True)
        self.rng = as_rng(rng)
        self._device_rng = None  # (array module, the rng it was seeded from, its generator)
        self._M = None
        self._shape = None

    def forward(self, X):
        """Training: Z = M ⊙ X with M = [U ≥ p]/(1 − p).  Evaluation: Z = X."""
        X = as_float_input(self, X)
        self._shape = X.shape
        if not self.training or self.p == 0.0:
            self._M = None
            return X
        uniform_dtype = X.dtype if X.dtype in (np.float32, np.float64) else np.float64
        keep = self._generator(X).random(X.shape, dtype=uniform_dtype) >= self.p   # [U ≥ p]: probability 1 − p
        self._M = M = np.multiply(keep, 1.0 / (1.0 - self.p), dtype=X.dtype)
        return X * M

    def _generator(self, X):
        """``rng`` for numpy input; for a GPU input, that backend's generator, seeded once from ``rng``
        (so a seed gives the same sequence of masks on each device, drawn where X lives)."""
        xp = get_array_module(X)
        if xp is np:
            return self.rng
        if self._device_rng is None or self._device_rng[:2] != (xp, self.rng):
            seed = int(self.rng.integers(2 ** 63))
            self._device_rng = (xp, self.rng, xp.random.default_rng(seed))
        return self._device_rng[2]

    def backward(self, dZ):
        """Training: δX = M ⊙ δZ.  Evaluation: δX = δZ  (same shape as X)."""
        dZ = self.check_grad(dZ, self.forward_cache(self._shape))
        return dZ if self._M is None else dZ * self._M

    def settings(self) -> dict:
        return {"p": self.p}
