"""Random data augmentation for image batches, drawn afresh for every minibatch.

Pass one to ``Trainer.fit(..., augment=...)``: each training batch (never the
validation data) goes through it before the forward pass, so every epoch sees
different crops and mirror images of the same pictures, where a fixed enlarged
copy of the data (``examples.mnist.augment``) shows the same few every time.

A transform is any callable ``transform(X, rng) -> X`` taking a batch with
the image axes last (N×C×H×W, or N×H×W) and a ``numpy.random.Generator``; it
returns a new array of the same shape and leaves X as it was. Each one here is
vectorised over the batch: one gather, no loop over samples.
"""
from __future__ import annotations

import numpy as np

from ._args import non_negative_int, real

__all__ = ["RandomCrop", "RandomHorizontalFlip", "Compose"]


def _image_batch(X, where: str) -> np.ndarray:
    X = np.asarray(X)
    if X.ndim < 3:
        raise ValueError(f"{where}: expected a batch of images (N×H×W or N×C×H×W), got shape {X.shape}; "
                         "reshape rows of flattened images to N×H×W first")
    return X


def _holds(dtype: np.dtype, value: float) -> bool:
    """Whether ``value`` is exactly a value of ``dtype`` (any value for floating-point types)."""
    if dtype.kind == "b":
        return value in (0.0, 1.0)
    if dtype.kind in "iu":
        info = np.iinfo(dtype)
        return value.is_integer() and info.min <= value <= info.max
    return True


class RandomCrop:
    """Shift each image by up to ``padding`` = p pixels in each direction, filling with ``fill``.

    The image is padded by p on every side and a window of its own size is
    cut out at a random offset (aₙ, bₙ), each of the (2p + 1)² offsets
    equally likely and drawn per sample (torchvision's ``RandomCrop(size,
    padding)`` with size = the image size)::

        outₙ,…,i,j = Xpadₙ,…,i+aₙ,j+bₙ      aₙ, bₙ ~ U{0, …, 2p}

    p must be smaller than the image's height and width (a larger shift
    could move the whole picture out of view), and ``fill`` must be a value
    of the images' dtype (e.g. 0–255 for uint8 images).
    """

    def __init__(self, padding: int = 2, fill: float = 0.0):
        self.padding = non_negative_int(padding, "padding", "RandomCrop")
        self.fill = real(fill, "fill", "RandomCrop")

    def __call__(self, X, rng: np.random.Generator) -> np.ndarray:
        X = _image_batch(X, "RandomCrop")
        p = self.padding
        height, width = X.shape[-2:]
        if p >= min(height, width):
            raise ValueError(f"RandomCrop: padding {p} must be smaller than the images' {height}×{width} "
                             "(a shift that large can move a whole image out of view)")
        if not _holds(X.dtype, self.fill):
            raise ValueError(f"RandomCrop: fill {self.fill} is not a value of the images' dtype {X.dtype}")
        if p == 0:
            return X.copy()
        pad = [(0, 0)] * (X.ndim - 2) + [(p, p), (p, p)]
        padded = np.pad(X, pad, constant_values=self.fill)
        # windows[n, ..., i, j] is the H×W view starting at row i, column j of the padded image n
        windows = np.lib.stride_tricks.sliding_window_view(padded, (height, width), axis=(-2, -1))
        n = len(X)
        rows, columns = rng.integers(0, 2 * p + 1, size=(2, n))
        middle = (slice(None),) * (X.ndim - 3)
        return windows[(np.arange(n),) + middle + (rows, columns)]

    def __repr__(self) -> str:
        return f"RandomCrop(padding={self.padding}, fill={self.fill})"


class RandomHorizontalFlip:
    """Mirror each image left–right with probability ``p`` (right for clothes, wrong for digits)."""

    def __init__(self, p: float = 0.5):
        self.p = real(p, "p", "RandomHorizontalFlip", low=0.0, high=1.0)

    def __call__(self, X, rng: np.random.Generator) -> np.ndarray:
        X = _image_batch(X, "RandomHorizontalFlip")
        flip = rng.random(len(X)) < self.p
        return np.where(flip.reshape((-1,) + (1,) * (X.ndim - 1)), X[..., ::-1], X)

    def __repr__(self) -> str:
        return f"RandomHorizontalFlip(p={self.p})"


class Compose:
    """Apply transforms one after another: ``Compose(RandomCrop(2), RandomHorizontalFlip())``."""

    def __init__(self, *transforms):
        for transform in transforms:
            if not callable(transform):
                raise TypeError(f"Compose: every transform must be callable as transform(X, rng), got "
                                f"{transform!r}")
        self.transforms = transforms

    def __call__(self, X, rng: np.random.Generator) -> np.ndarray:
        if not self.transforms:
            return np.array(X, copy=True)
        for transform in self.transforms:
            X = transform(X, rng)
        return X

    def __repr__(self) -> str:
        return f"Compose({', '.join(map(repr, self.transforms))})"
