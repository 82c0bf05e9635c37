"""Predict the classes of images with a model saved by ``train_mnist.py --save``.

    python scripts/train_mnist.py --model cnn --save out/cnn.npz
    python scripts/predict.py out/cnn.npz t10k-images-idx3-ubyte.gz            # IDX images (MNIST format)
    python scripts/predict.py out/cnn.npz digits.npy --names fashion            # or a .npy of N×H×W images

Prints one line per image: its index, the predicted class (with its name for Fashion-MNIST) and
the model's probability for it. Images are bytes (0–255, scaled to [0, 1] as in training) or
floats already in [0, 1]; they are shaped for the model (N×784 rows for an MLP, N×1×H×W for a CNN).
"""
from __future__ import annotations

import argparse
import sys

import numpy as np

import nnlayers as nl
from nnlayers.cli import positive_int


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="a whole-model file (train_mnist.py --save, nl.save_model)")
    parser.add_argument("images", help="images: an IDX file (.gz or not) or a .npy array, N×H×W (or one H×W)")
    parser.add_argument("--names", choices=("digits", "fashion"),
                        help="class names to print (default: fashion when the images' path says so, else digits)")
    parser.add_argument("--limit", type=positive_int, help="predict at most this many images")
    parser.add_argument("--batch-size", type=positive_int, default=256, help="images per batch (default 256)")
    return parser.parse_args(argv)


def read_images(path) -> np.ndarray:
    """N×H×W images from an IDX or .npy file (one H×W image becomes N = 1)."""
    if str(path).endswith(".npy"):
        images = np.load(path, allow_pickle=False)
    else:
        images = nl.datasets.load_idx(path)
    return images[None] if images.ndim == 2 else images


def shaped_for(model, images: np.ndarray) -> np.ndarray:
    """Images as the model takes them: scaled to [0, 1] if bytes, in the model's dtype, as rows for a
    model that starts with a Linear layer, with a channel axis for one that starts with a convolution."""
    X = np.divide(images, 255, dtype=model.dtype) if images.dtype == np.uint8 else images.astype(model.dtype)
    first = next(module for module in model.modules() if module._parameters)
    if isinstance(first, nl.Linear):
        return X.reshape(len(X), -1)
    return X[:, None] if X.ndim == 3 else X


def main(argv=None) -> int:
    args = parse_args(argv)
    try:
        model = nl.load_model(args.model)
        images = read_images(args.images)[:args.limit]
    except (OSError, ValueError) as error:       # missing files, nl.WeightsFileError, IDXFormatError
        print(f"predict: {error}", file=sys.stderr)
        return 2
    try:
        scores = nl.predict(model, shaped_for(model, images), batch_size=args.batch_size)
    except ValueError as error:                  # images of another size than the model's
        print(f"predict: {args.images} does not fit the model: {error}", file=sys.stderr)
        return 2
    P = nl.softmax(scores)
    kind = args.names or ("fashion" if nl.datasets.class_names(args.images) else "digits")
    names = nl.datasets.FASHION_MNIST_CLASSES if kind == "fashion" else None
    for index, (label, probability) in enumerate(zip(P.argmax(axis=1), P.max(axis=1))):
        name = f" {names[label]}" if names and label < len(names) else ""
        print(f"{index}: {label}{name} ({probability:.3f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
