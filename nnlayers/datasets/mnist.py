"""MNIST-format folders (MNIST, Fashion-MNIST) and the 10,000 real digits shipped with nnlayers."""
from __future__ import annotations

from importlib import resources
from pathlib import Path

import numpy as np

from .._args import shown_path
from ..init import as_rng
from .idx import IDXFormatError, load_idx

__all__ = ["load_mnist", "load_mnist_sample", "mnist_sample_dir", "FASHION_MNIST_CLASSES", "class_names"]

# Fashion-MNIST's labels 0..9, in order (Xiao, Rasul and Vollgraf, 2017).
FASHION_MNIST_CLASSES = ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker",
                         "Bag", "Ankle boot")


def class_names(directory) -> tuple | None:
    """Names for the labels of an MNIST-format folder: Fashion-MNIST's classes when the folder's
    path says "fashion" (as Debian's ``/usr/share/datasets/fashion-mnist`` does), else None
    (digits are their own names)."""
    return FASHION_MNIST_CLASSES if "fashion" in str(directory).lower() else None


def _find(directory: Path, kind: str, what: str, idx: int) -> Path:
    """The first of ``{kind}-{what}-idx{idx}-ubyte``, the same with ``.gz``, or the dotted
    ``{kind}-{what}.idx{idx}-ubyte`` some mirrors unzip to, that exists in ``directory``."""
    plain = f"{kind}-{what}-idx{idx}-ubyte"
    names = [plain, plain + ".gz", f"{kind}-{what}.idx{idx}-ubyte"]
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(f"load_mnist: no {kind} {what} file in {directory} "
                            f"(looked for {', '.join(names)})")


def load_mnist(directory, kind: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images and labels from an MNIST-format folder: ``(images N×H×W uint8, labels N uint8)``.

    Reads ``{kind}-images-idx3-ubyte`` and ``{kind}-labels-idx1-ubyte``, each
    plain or with ``.gz`` (plain preferred when both exist). ``kind`` is
    ``"train"`` (60,000 for MNIST and Fashion-MNIST) or ``"t10k"`` (the 10,000
    test images); ``"sample"`` reads ``sample-*`` files, as the shipped sample's
    folder holds. H×W is 28×28 for MNIST.
    """
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"load_mnist: {directory} is not a directory")
    return _images_and_labels(_find(directory, kind, "images", 3), _find(directory, kind, "labels", 1))


def _images_and_labels(images_path: Path, labels_path: Path) -> tuple[np.ndarray, np.ndarray]:
    """Read an images file and a labels file and check that they belong together."""
    images, labels = load_idx(images_path), load_idx(labels_path)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise IDXFormatError(f"{shown_path(images_path)}: expected N×H×W unsigned bytes, got shape "
                             f"{images.shape} of {images.dtype}")
    if labels.ndim != 1 or labels.dtype != np.uint8:
        raise IDXFormatError(f"{shown_path(labels_path)}: expected N unsigned bytes, got shape "
                             f"{labels.shape} of {labels.dtype}")
    if len(images) != len(labels):
        raise IDXFormatError(f"load_mnist: {shown_path(images_path.name)} has {len(images)} images but "
                             f"{shown_path(labels_path.name)} has {len(labels)} labels "
                             f"(in {shown_path(images_path.parent)})")
    return images, labels


_SAMPLE_FILES = ("sample-images-idx3-ubyte.gz", "sample-labels-idx1-ubyte.gz")


def mnist_sample_dir() -> Path:
    """The folder of the shipped sample: package data of ``nnlayers.datasets`` (``mnist_sample/``),
    wherever nnlayers is installed (a clone, ``pip install .``, ``--user`` or ``--target``)."""
    return Path(str(resources.files(__package__) / "mnist_sample"))


def load_mnist_sample(shuffle: bool = False, rng=None) -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 real MNIST digits shipped with nnlayers: ``(images 10000×28×28 uint8, labels)``.

    The files are **ordered by label** (all 0s, then all 1s, …): taking the
    first n images gives only zeros. ``shuffle=True`` returns them in a random
    order (from ``rng``, an int seed or Generator), as any split should; see
    ``nnlayers.examples.mnist.load_split`` for the fixed 8,000 / 2,000 split.
    Provenance and per-digit counts: ``data/mnist-sample/README.rst`` in the
    source tree. Read with ``importlib.resources``, so it works from any install.
    """
    folder = resources.files(__package__) / "mnist_sample"
    with resources.as_file(folder / _SAMPLE_FILES[0]) as images_path, \
            resources.as_file(folder / _SAMPLE_FILES[1]) as labels_path:
        images, labels = _images_and_labels(Path(images_path), Path(labels_path))
    if shuffle:
        order = as_rng(rng).permutation(len(images))
        images, labels = images[order], labels[order]
    return images, labels
