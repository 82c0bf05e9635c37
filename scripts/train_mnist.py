"""Train a classifier on MNIST-format images: the shipped digit sample or any MNIST-format folder.

    python scripts/train_mnist.py --model cnn                       # shipped sample, 8,000 / 2,000
    python scripts/train_mnist.py --model mlp --data /usr/share/datasets/fashion-mnist --epochs 20
    python scripts/train_mnist.py --model resnet --data /usr/share/datasets/fashion-mnist --augment crop-flip --epochs 14
    mpiexec -n 2 python scripts/train_mnist.py --model cnn --data /usr/share/datasets/fashion-mnist   # 2 processes

Prints the test accuracy at the end; ``--save`` keeps the trained model (architecture and weights,
.npz: ``nl.load_model(path)`` rebuilds it, ``scripts/predict.py`` uses it),
``--plot`` draws learning curves, the confusion matrix and misclassified test images.

Under ``mpiexec -n R`` (or with ``--distributed``) the R processes train data-parallel
(``nl.distributed``): each takes 1/R of every batch of ``--batch-size`` rows (the global batch),
the gradients are averaged before each step, rank 0 alone prints and saves, and each process
keeps to one BLAS thread unless OPENBLAS_NUM_THREADS / OMP_NUM_THREADS say otherwise.
"""
from __future__ import annotations

import argparse
import math
import os
import sys
import time

# Under an MPI launcher, one BLAS thread per process unless the user chose: set before numpy starts
# OpenBLAS, or the ranks' thread pools fight for the cores. The names are nl.distributed's
# LAUNCHER_VARIABLES, written out because nnlayers (and numpy with it) may not be imported yet.
if any(name in os.environ for name in ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MPI_LOCALRANKID")):
    for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(_name, "1")

import numpy as np

import nnlayers as nl
from nnlayers.cli import (add_malloc_option, apply_malloc_option, check_destinations, check_show,
                          non_negative_float, non_negative_int, plural, positive_float, positive_int, short_number,
                          unit_fraction)
from nnlayers.examples import mnist

# Defaults per model: on the shipped sample (with shift augmentation) they reach
# test accuracy ≥ 0.97 (MLP) and ≥ 0.98 (CNN) within two minutes on two cores.
# The BatchNorm networks train with AdamW, a one-epoch linear warm-up and cosine decay.
LR = {"adam": 1e-3, "adamw": 2e-3, "sgd": 0.05}    # each optimizer's default (peak) learning rate
ADAMW_WEIGHT_DECAY = 0.05                          # AdamW's default decoupled decay; the others get none
DEFAULTS = {
    "mlp": dict(epochs=20, batch_size=64, optimizer="adam", schedule="none", warmup=0),
    "cnn": dict(epochs=8, batch_size=64, optimizer="adam", schedule="none", warmup=0),
    "cnn-bn": dict(epochs=8, batch_size=64, optimizer="adamw", schedule="cosine", warmup=1),
    "resnet": dict(epochs=6, batch_size=64, optimizer="adamw", schedule="cosine", warmup=1),
}


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=mnist.MODELS, default="cnn", help="network (default cnn)")
    parser.add_argument("--data", default="sample",
                        help="'sample' (the shipped digits) or an MNIST-format folder (default sample)")
    parser.add_argument("--epochs", type=positive_int, help="passes over the training set (default: " + ", ".join(
        f"{settings['epochs']} for {model}" for model, settings in DEFAULTS.items()) + ")")
    parser.add_argument("--batch-size", type=positive_int, help="minibatch size (default 64)")
    parser.add_argument("--lr", type=positive_float,
                        help="(peak) learning rate (default 1e-3 for adam, 2e-3 for adamw, 0.05 for sgd)")
    parser.add_argument("--optimizer", choices=("adam", "adamw", "sgd"),
                        help="default adam; adamw for cnn-bn and resnet")
    parser.add_argument("--weight-decay", type=non_negative_float,
                        help="L2 penalty (adam, sgd; default 0) or decoupled decay (adamw; default 0.05)")
    parser.add_argument("--schedule", choices=("cosine", "step", "onecycle", "none"),
                        help="learning rate per batch: cosine decay to 0, step (×0.1 after each third of "
                             "the epochs), or onecycle (up to --lr over the --warmup epochs, or the first "
                             "30%%, then down, with the momentum cycling); default none, cosine for cnn-bn "
                             "and resnet")
    parser.add_argument("--warmup", type=non_negative_int,
                        help="epochs of linear warm-up from lr/100 before the schedule "
                             "(default 0; 1 for cnn-bn and resnet)")
    parser.add_argument("--momentum", type=unit_fraction, default=0.9, help="SGD momentum (default 0.9)")
    parser.add_argument("--val-fraction", type=unit_fraction, default=0.1,
                        help="share of the training set held out for validation curves (default 0.1)")
    parser.add_argument("--augment", choices=sorted(mnist.AUGMENTATIONS) + list(mnist.RANDOM_AUGMENTATIONS),
                        help="fixed copies: 'shift' adds training copies moved one pixel each way (5× the "
                             "data), 'flip' mirrored copies (2×, for clothes, not digits); drawn afresh for "
                             f"every batch: 'crop' shifts each image by up to {mnist.CROP_PADDING} pixel(s), 'crop-flip' also "
                             "mirrors half of them; default shift for the sample, none for a folder")
    parser.add_argument("--limit", type=positive_int, help="use at most this many train and test images")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="weights, shuffling and validation split (default 0)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    parser.add_argument("--save", metavar="PATH",
                        help="save the trained model, architecture and weights (.npz; load with nl.load_model(PATH), "
                             "or run scripts/predict.py PATH IMAGES); missing folders are created")
    parser.add_argument("--export-onnx", metavar="PATH",
                        help="also write the trained model as ONNX (input X: N×784 or N×1×H×W floats in [0, 1]; "
                             "output P: class probabilities); needs pip install -e '.[onnx]'")
    parser.add_argument("--plot", metavar="PATH",
                        help="save curves, confusion matrix and mistakes as PNG (missing folders are created)")
    parser.add_argument("--show", action="store_true", help="also show the plot in a window")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    parser.add_argument("--device", default="cpu",
                        help="where to train: cpu (default), cuda or cuda:N (a GPU through CuPy: "
                             "pip install -e '.[gpu]')")
    parser.add_argument("--distributed", action="store_true",
                        help="data-parallel over MPI ranks (automatic under mpiexec; needs pip install -e '.[mpi]')")
    parser.add_argument("--sync-batchnorm", action="store_true",
                        help="distributed: BatchNorm statistics over all ranks' rows (default: each rank's own)")
    add_malloc_option(parser)
    args = parser.parse_args(argv)
    check_destinations(parser, save=args.save, plot=args.plot)     # before training, not after it
    args.show = check_show(args.show, saving=bool(args.plot))
    defaults = DEFAULTS[args.model]
    args.epochs = args.epochs or defaults["epochs"]
    args.batch_size = args.batch_size or defaults["batch_size"]
    args.optimizer = args.optimizer or defaults["optimizer"]
    args.lr = args.lr or LR[args.optimizer]
    args.schedule = args.schedule or defaults["schedule"]
    args.warmup = min(defaults["warmup"], args.epochs - 1) if args.warmup is None else args.warmup
    if args.weight_decay is None:
        args.weight_decay = ADAMW_WEIGHT_DECAY if args.optimizer == "adamw" else 0.0
    if args.warmup >= args.epochs and args.schedule != "none":
        parser.error(f"--warmup {args.warmup} leaves no epochs for the schedule (--epochs {args.epochs})")
    args.augment = args.augment or ("shift" if args.data == "sample" else "none")
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.distributed or nl.distributed.launched_by_mpi():
        try:
            comm = nl.distributed.world()
        except ImportError as error:
            print(f"error: {error}", file=sys.stderr)
            return 2
        with nl.distributed.abort_on_error(comm):     # a failing rank ends every rank (no hang)
            return train(args, comm)
    return train(args, None)


def train(args, comm) -> int:
    """Train as ``args`` say: in this process alone (``comm`` None) or as one rank of ``comm``."""
    rank = 0 if comm is None else comm.Get_rank()
    say = print if rank == 0 else (lambda *args, **kwargs: None)   # rank 0 speaks for all
    if args.export_onnx:
        try:
            nl.onnx.require_onnx()  # before training, not after
        except ImportError as error:
            print(f"error: --export-onnx: {error}", file=sys.stderr)
            return 2
    apply_malloc_option(args)
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
    transform = None
    if args.augment in mnist.RANDOM_AUGMENTATIONS:
        transform = mnist.random_augmentation(args.augment, args.model, *train_images.shape[1:])
    else:
        images, labels = mnist.augment(images, labels, args.augment)
    X = mnist.prepare(images, args.model, dtype)
    X_val = mnist.prepare(train_images[val], args.model, dtype)
    X_test = mnist.prepare(test_images, args.model, dtype)

    height, width = train_images.shape[1:]
    model = mnist.build(args.model, classes, height=height, width=width, rng=rng, dtype=dtype)
    if comm is not None and args.device != "cpu":
        print("train_mnist: distributed training runs on the CPU only", file=sys.stderr)
        return 2
    try:
        model.to(args.device)          # before the optimizer, whose state is made where the weights are
    except (ValueError, nl.backend.DeviceError) as error:
        print(f"train_mnist: --device {args.device}: {error}", file=sys.stderr)
        return 2
    optimizer = make_optimizer(args, model.parameters())
    callbacks = []
    if comm is not None:               # the same model everywhere, gradients averaged, each rank its rows
        if args.sync_batchnorm:
            nl.distributed.sync_batchnorm(model, comm)
        optimizer = nl.distributed.DistributedOptimizer(optimizer, comm)
        callbacks.append(nl.distributed.DistributedCallback(comm))
    schedule = make_schedule(args, optimizer, steps_per_epoch=math.ceil(len(X) / args.batch_size))
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), optimizer, metric=nl.accuracy, schedule=schedule,
                         schedule_every="batch")

    if not args.quiet and rank == 0:
        augmented = (f"augmentation '{args.augment}' drawn for every batch" if transform is not None
                     else f"{len(X)} with augmentation '{args.augment}'")
        print(f"{split.source}: {len(train)} training images ({augmented}), "
              f"{len(X_val)} validation, {len(X_test)} test")
        print(nl.summary(model, X.shape[1:], dtype=dtype))
        print(f"{args.optimizer} lr={short_number(args.lr)} weight decay {short_number(args.weight_decay)}, "
              f"schedule {args.schedule} "
              f"(warm-up {args.warmup} epochs), batch {args.batch_size}, {args.epochs} epochs, {dtype}"
              + (f", {comm.Get_size()} ranks × {args.batch_size // comm.Get_size()} rows" if comm else ""))
    started = time.perf_counter()
    try:
        history = trainer.fit(X, labels, epochs=args.epochs, batch_size=args.batch_size, rng=rng,
                              validation_data=(X_val, train_labels[val]) if len(val) else None,
                              progress=not args.quiet and rank == 0, augment=transform, callbacks=callbacks)
    except nl.TrainingDivergedError as error:
        print(f"error: training diverged: {error}", file=sys.stderr)
        return 1
    seconds = time.perf_counter() - started

    predicted = trainer.predict(X_test).argmax(axis=1)
    accuracy = float(np.mean(predicted == test_labels))
    say(f"test accuracy: {accuracy:.4f} ({np.sum(predicted == test_labels)}/{len(test_labels)}) "
          f"after {plural(args.epochs, 'epoch')}, {seconds:.1f} s ({seconds / args.epochs:.2f} s per epoch)")
    if args.save:
        try:
            if comm is None:
                nl.save_model(model, args.save)
            else:                                          # rank 0 writes; every rank waits for it
                nl.distributed.save(model, args.save, comm, writer=nl.save_model)
        except (OSError, RuntimeError) as error:
            print(f"error: model not saved to {args.save}: {getattr(error, 'strerror', None) or error}",
                  file=sys.stderr)
            return 1
        say(f"saved the model to {args.save} (nl.load_model({str(args.save)!r}) rebuilds it)")
    if rank != 0:
        return 0
    if args.export_onnx:
        nl.export_onnx(model, args.export_onnx, X.shape[1:], softmax=True)
        print(f"exported to {args.export_onnx} (ONNX; input X, output P = class probabilities)")
    if args.plot or args.show:
        names = nl.datasets.class_names(args.data) if classes == 10 else None
        save_plot(history, test_images, test_labels, predicted, classes, names, args.plot, args.show)
    return 0


def make_optimizer(args, parameters):
    if args.optimizer == "sgd":
        return nl.SGD(parameters, lr=args.lr, momentum=args.momentum, weight_decay=args.weight_decay)
    optimizer = nl.AdamW if args.optimizer == "adamw" else nl.Adam
    return optimizer(parameters, lr=args.lr, weight_decay=args.weight_decay)


def make_schedule(args, optimizer, steps_per_epoch: int):
    """The learning rate per batch: ``--warmup`` epochs rising linearly from lr/100, then ``--schedule``
    over the remaining epochs (None when neither is asked for); for ``onecycle``, its own rise to lr
    over the ``--warmup`` epochs (30 % of the steps without one), with the momentum cycling unless
    plain SGD has none."""
    S = nl.schedules
    if args.schedule == "onecycle":
        return S.OneCycleLR(optimizer, args.lr, args.epochs * steps_per_epoch,
                            pct_start=args.warmup / args.epochs if args.warmup else 0.3,
                            cycle_momentum=not (args.optimizer == "sgd" and args.momentum == 0))
    warmup, rest = args.warmup * steps_per_epoch, (args.epochs - args.warmup) * steps_per_epoch
    ramp = S.LinearLR(optimizer, 0.01, total_iters=warmup) if warmup else None   # then flat at lr
    if args.schedule == "none":
        return ramp
    main = (S.CosineAnnealingLR(optimizer, T_max=rest) if args.schedule == "cosine"
            else S.StepLR(optimizer, step_size=max(1, math.ceil(rest / 3)), gamma=0.1))
    return S.SequentialLR(optimizer, [ramp, main], milestones=[warmup]) if warmup else main


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
