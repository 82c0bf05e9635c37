"""Project two digits (default 0 and 1) onto their top two singular directions and plot them.

The derivation's experiment: up to 1000 images of each digit, flattened to
N×784 rows with pixels in [0, 1], economy SVD X = U S Vᵀ (no mean removed,
unless --center), coordinates X V₂ = U₂ S₂. Writes a scatter plot (--out) and
a figure of a few digits beside their rank-k reconstructions (--recon-out),
and prints how well the classes separate in those two numbers
(nearest-centroid accuracy, centroids taken from the same points).

Usage::

    python scripts/mnist_svd.py                                   # shipped sample, 0 vs 1
    python scripts/mnist_svd.py --digits 3 8 --rank 2 10 50 --show
    python scripts/mnist_svd.py --data-dir /usr/share/datasets/fashion-mnist --kind t10k
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from nnlayers import datasets
from nnlayers.cli import check_destinations, check_show, non_negative_int, positive_int
from nnlayers.examples import projection
from nnlayers.plotting import script_pyplot


def digit(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an integer label: {text!r}") from None
    if not 0 <= value <= 255:
        raise argparse.ArgumentTypeError(f"labels are bytes 0..255, got {value}")
    return value


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--digits", nargs="+", type=digit, default=[0, 1], metavar="D",
                        help="labels to compare, at least two (default: 0 1)")
    parser.add_argument("--per-class", type=positive_int, default=1000,
                        help="at most this many images of each label (default: 1000)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed for choosing and shuffling (default: 0)")
    parser.add_argument("--data-dir", type=Path,
                        help="an MNIST-format folder (default: the shipped sample data/mnist-sample)")
    parser.add_argument("--kind", choices=["train", "t10k", "sample"],
                        help="which files of --data-dir to read: train (the default with --data-dir), "
                             "t10k or sample (sample-* files); only with --data-dir, as the shipped "
                             "sample is a single set")
    parser.add_argument("--center", action="store_true",
                        help="subtract the mean image before the SVD (PCA); the derivation does not")
    parser.add_argument("--rank", nargs="+", type=positive_int, default=[2, 10, 50], metavar="K",
                        help="ranks of the reconstructions shown (default: 2 10 50)")
    parser.add_argument("--examples", type=positive_int, default=8,
                        help="how many digits the reconstruction figure shows (default: 8)")
    parser.add_argument("--out", type=Path, default=Path("mnist_svd.png"),
                        help="scatter plot PNG (default: mnist_svd.png)")
    parser.add_argument("--recon-out", type=Path,
                        help="reconstruction PNG (default: --out with _recon before the suffix)")
    parser.add_argument("--show", action="store_true", help="also open the figures in a window")
    args = parser.parse_args(argv)
    if len(set(args.digits)) < 2:
        parser.error(f"--digits needs at least two different labels, got {args.digits}")
    if args.kind and args.data_dir is None:
        parser.error("--kind selects files of --data-dir; the shipped sample has only one kind")
    if args.recon_out is None:
        args.recon_out = args.out.with_name(f"{args.out.stem}_recon{args.out.suffix or '.png'}")
    check_destinations(parser, out=args.out, recon_out=args.recon_out)
    args.show = check_show(args.show)
    return parser, args


def main(argv=None) -> int:
    parser, args = parse_args(argv)
    try:
        if args.data_dir is None:
            source = f"shipped sample ({datasets.mnist_sample_dir()})"
            images, labels = datasets.load_mnist_sample()
            names = None
        else:
            source = f"{args.data_dir} ({args.kind or 'train'})"
            images, labels = datasets.load_mnist(args.data_dir, kind=args.kind or "train")
            names = datasets.class_names(args.data_dir)     # Fashion-MNIST: "Trouser", not 1
        images, labels = projection.select_digits(images, labels, args.digits, args.per_class, args.seed)
        if names is not None and max(args.digits) >= len(names):
            names = None                                    # labels beyond the known classes
    except (OSError, ValueError) as error:      # missing files, bad IDX, absent digit
        print(f"mnist_svd: {error}", file=sys.stderr)
        return 1
    X = projection.flatten(images)
    r = min(X.shape)
    if max(args.rank) > r:
        parser.error(f"--rank {max(args.rank)} exceeds the rank limit min(N, D) = {r} of the "
                     f"{X.shape[0]}×{X.shape[1]} data matrix")

    started = time.perf_counter()
    basis = projection.fit_svd(X, center=args.center)
    seconds = time.perf_counter() - started
    points = basis.project(X, 2)
    accuracy = projection.nearest_centroid_accuracy(points, labels)

    label = (lambda d: f"{d} {names[d]}") if names else str
    counts = ", ".join(f"{label(d)}: {int(np.sum(labels == d))}" for d in args.digits)
    print(f"data: {source}; {X.shape[0]} images ({counts}), flattened to {X.shape[0]}×{X.shape[1]}, "
          f"pixels in [0, 1]{', mean image subtracted' if args.center else ''}")
    print(f"economy SVD in {seconds:.2f} s: U {basis.U.shape}, S ({len(basis.S)},), Vt {basis.Vt.shape}")
    print("top singular values: " + ", ".join(f"{s:.2f}" for s in basis.S[:5]))
    print(f"energy kept by the top 2 directions: {basis.energy(2):.1%}")
    for k in args.rank:
        error = np.linalg.norm(X - basis.reconstruct(X, k)) / np.linalg.norm(X)
        print(f"rank {k} reconstruction: relative error ‖X − X̂‖/‖X‖ = {error:.3f}")
    print(f"nearest-centroid accuracy in 2-D: {accuracy:.4f}")

    plt = script_pyplot(args.show)              # files only, unless --show

    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    compared = " vs ".join(names[d] if names else str(d) for d in args.digits)
    projection.plot_projection(ax, points, labels, class_names=names, title=(
        f"{compared}: top two singular directions{' (centred)' if args.center else ''}\n"
        f"nearest-centroid accuracy {accuracy:.1%}"))
    fig.tight_layout()
    fig.savefig(args.out, dpi=120)

    examples = images[:args.examples]
    recon = plt.figure(figsize=(1.1 * len(examples) + 0.6, 1.2 * (1 + len(args.rank))))
    projection.plot_reconstructions(recon, examples, basis, args.rank)
    recon.suptitle(f"{compared}: {'images' if names else 'digits'} and their rank-k reconstructions")
    recon.tight_layout()
    recon.savefig(args.recon_out, dpi=120)
    print(f"wrote {args.out} and {args.recon_out}")
    if args.show:
        plt.show()
    return 0


if __name__ == "__main__":
    sys.exit(main())
