"""Train a classifier on MNIST-format images: the shipped digit sample or any MNIST-format folder.

    python scripts/train_mnist.py --model cnn                       # shipped sample, 8,000 / 2,000
    python scripts/train_mnist.py --model mlp --data /usr/share/datasets/fashion-mnist --epochs 20

Prints the test accuracy at the end; ``--save`` keeps the weights (.npz),
``--plot`` draws learning curves, the confusion matrix and misclassified test images.
"""
from __future__ import annotations

import argparse
import sys
import time

import numpy as np

import nnlayers as nl
from nnlayers.cli import (check_destinations, check_show, non_negative_int, plural, positive_float, positive_int,
                          unit_fraction)
from nnlayers.examples import mnist

FASHION_NAMES = nl.datasets.FASHION_MNIST_CLASSES

# Defaults per model: on the shipped sample (with shift augmentation) they reach
# test accuracy ≥ 0.97 (MLP) and ≥ 0.98 (CNN) within two minutes on two cores.
DEFAULTS = {
    "mlp": dict(epochs=20, lr=1e-3, batch_size=64),
    "cnn": dict(epochs=8, lr=1e-3, batch_size=64),
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=("mlp", "cnn"), default="cnn", help="network (default cnn)")
    parser.add_argument("--data", default="sample",
                        help="'sample' (the shipped digits) or an MNIST-format folder (default sample)")
    parser.add_argument("--epochs", type=positive_int, help="passes over the training set (default: " + ", ".join(
        f"{settings['epochs']} for {model}" for model, settings in DEFAULTS.items()) + ")")
    parser.add_argument("--batch-size", type=positive_int, help="minibatch size (default 64)")
    parser.add_argument("--lr", type=positive_float, help="learning rate (default 1e-3 for adam, 0.05 for sgd)")
    parser.add_argument("--optimizer", choices=("adam", "sgd"), default="adam", help="default adam")
    parser.add_argument("--momentum", type=unit_fraction, default=0.9, help="SGD momentum (default 0.9)")
    parser.add_argument("--val-fraction", type=unit_fraction, default=0.1,
                        help="share of the training set held out for validation curves (default 0.1)")
    parser.add_argument("--augment", choices=sorted(mnist.AUGMENTATIONS),
                        help="'shift' adds training copies moved one pixel each way (5× the data), "
                             "'flip' mirrored copies (2×, for clothes, not digits); "
                             "default shift for the sample, none for a folder")
    parser.add_argument("--limit", type=positive_int, help="use at most this many train and test images")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="weights, shuffling and validation split (default 0)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    parser.add_argument("--save", metavar="PATH", help="save the trained weights (.npz)")
    parser.add_argument("--export-onnx", metavar="PATH",
                        help="also write the trained model as ONNX (input X: N×784 or N×1×H×W floats in [0, 1]; "
                             "output P: class probabilities); needs pip install -e '.[onnx]'")
    parser.add_argument("--plot", metavar="PATH", help="save curves, confusion matrix and mistakes as PNG")
    parser.add_argument("--show", action="store_true", help="also show the plot in a window")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--device", default="cpu",
                        help="where to train: cpu (default), cuda or cuda:N (a GPU through CuPy: "
                             "pip install -e '.[gpu]')")
    args = parser.parse_args(argv)
    check_destinations(parser, save=args.save, plot=args.plot)     # before training, not after it
    args.show = check_show(args.show, saving=bool(args.plot))
    defaults = DEFAULTS[args.model]
    args.epochs = args.epochs or defaults["epochs"]
    args.batch_size = args.batch_size or defaults["batch_size"]
    args.lr = args.lr or (defaults["lr"] if args.optimizer == "adam" else 0.05)
    args.augment = args.augment or ("shift" if args.data == "sample" else "none")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.export_onnx:
        try:
            nl.onnx.require_onnx()  # before training, not after
        except ImportError as error:
            print(f"error: --export-onnx: {error}", file=sys.stderr)
            return 2
    dtype = np.dtype(args.dtype)
    try:
        split = mnist.load_split(args.data)
    except (FileNotFoundError, nl.datasets.IDXFormatError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    train_images, train_labels = split.train_images[:args.limit], split.train_labels[:args.limit]
    test_images, test_labels = split.test_images[:args.limit], split.test_labels[:args.limit]
    classes = int(max(train_labels.max(), test_labels.max())) + 1

    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(train_images))
    n_val = int(round(args.val_fraction * len(train_images)))
    val, train = order[:n_val], order[n_val:]
    images, labels = train_images[train], train_labels[train]
    images, labels = mnist.augment(images, labels, args.augment)
    X = mnist.prepare(images, args.model, dtype)
    X_val = mnist.prepare(train_images[val], args.model, dtype)
    X_test = mnist.prepare(test_images, args.model, dtype)

    height, width = train_images.shape[1:]
    model = mnist.build(args.model, classes, height=height, width=width, rng=rng, dtype=dtype)
    try:
        model.to(args.device)          # before the optimizer, whose state is made where the weights are
    except (ValueError, nl.backend.DeviceError) as error:
        print(f"train_mnist: --device {args.device}: {error}", file=sys.stderr)
        return 2
    optimizer = (nl.Adam(model.parameters(), lr=args.lr) if args.optimizer == "adam"
                 else nl.SGD(model.parameters(), lr=args.lr, momentum=args.momentum))
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), optimizer, metric=nl.accuracy)

    if not args.quiet:
        print(f"{split.source}: {len(train)} training images ({len(X)} with augmentation '{args.augment}'), "
              f"{len(X_val)} validation, {len(X_test)} test")
        print(nl.summary(model, X.shape[1:], dtype=dtype))
        print(f"{args.optimizer} lr={args.lr}, batch {args.batch_size}, {args.epochs} epochs, {dtype}")
    started = time.perf_counter()
    try:
        history = trainer.fit(X, labels, epochs=args.epochs, batch_size=args.batch_size, rng=rng,
                              validation_data=(X_val, train_labels[val]) if len(val) else None,
                              progress=not args.quiet)
    except nl.TrainingDivergedError as error:
        print(f"error: training diverged: {error}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started

    predicted = trainer.predict(X_test).argmax(axis=1)
    accuracy = float(np.mean(predicted == test_labels))
    print(f"test accuracy: {accuracy:.4f} ({np.sum(predicted == test_labels)}/{len(test_labels)}) "
          f"after {plural(args.epochs, 'epoch')}, {seconds:.1f} s ({seconds / args.epochs:.2f} s per epoch)")
    if args.save:
        try:
            nl.save(model, args.save)
        except OSError as error:
            print(f"error: weights not saved to {args.save}: {error.strerror or error}", file=sys.stderr)
            return 1
        print(f"saved weights to {args.save}")
    if args.export_onnx:
        nl.export_onnx(model, args.export_onnx, X.shape[1:], softmax=True)
        print(f"exported to {args.export_onnx} (ONNX; input X, output P = class probabilities)")
    if args.plot or args.show:
        names = FASHION_NAMES if "fashion" in str(args.data).lower() and classes == 10 else None
        save_plot(history, test_images, test_labels, predicted, classes, names, args.plot, args.show)
    return 0


def save_plot(history, images, labels, predicted, classes, names, path, show):
    from nnlayers.plotting import (finish_figure, plot_confusion, plot_image_grid, plot_loss, plot_metric,
                                   script_pyplot)

    figure = script_pyplot(show).figure(figsize=(13, 10), layout="constrained")
    top, bottom = figure.subfigures(2, 1, height_ratios=[1.6, 1])
    loss_ax, accuracy_ax, confusion_ax = top.subplots(1, 3, width_ratios=[1, 1, 1.3])
    plot_loss(loss_ax, history, log_scale=False)
    plot_metric(accuracy_ax, history, "accuracy")
    plot_confusion(confusion_ax, mnist.confusion_matrix(labels, predicted, classes), names)
    confusion_ax.set_title(f"test set: accuracy {np.mean(predicted == labels):.4f}")
    wrong = np.flatnonzero(predicted != labels)[:16]
    label = (lambda i: names[i]) if names else str
    plot_image_grid(bottom, images[wrong], [f"{label(labels[i])} → {label(predicted[i])}" for i in wrong])
    bottom.suptitle(f"misclassified test images (true → predicted), {len(wrong)} of "
                    f"{int(np.sum(predicted != labels))}")
    finish_figure(figure, path, show, dpi=90)


if __name__ == "__main__":
    sys.exit(main())
