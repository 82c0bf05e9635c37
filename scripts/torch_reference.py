"""The training run of ``train_mnist.py --model cnn``, written in PyTorch: a speed reference.

    python scripts/torch_reference.py --data /usr/share/datasets/fashion-mnist --epochs 1
    python scripts/train_mnist.py --model cnn --data /usr/share/datasets/fashion-mnist --epochs 1

Same data in memory (the same split, validation share and float32 images,
from ``nnlayers.examples.mnist``), the same network (conv 16, pool, conv 32,
pool, 128 with Dropout(0.25), 10: the benchmarks' PyTorch twin of
``mnist.build("cnn")``, ``benchmarks.models.fmnist_cnn_torch``), the same loss, optimizer (Adam, η = 10⁻³),
batch size and per-epoch work: every batch trains, the training loss and
accuracy are summed up, and the validation split is evaluated after each
epoch (batches of 1024, eval mode). Prints the test accuracy and the seconds
per epoch in the same format as ``train_mnist.py``, so the two compare on the
same machine run back to back. PyTorch uses its default thread count (all
cores) unless ``--threads`` says otherwise. Like ``train_mnist.py``, it keeps freed
memory for reuse (``nl.reuse_freed_memory``) unless ``--system-malloc``: PyTorch's steps
gain from it too, so the two compare frameworks, not malloc settings.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))   # nnlayers and benchmarks of this checkout

from nnlayers.cli import (add_malloc_option, apply_malloc_option, positive_float, positive_int,  # noqa: E402
                          unit_fraction)
from nnlayers.examples import mnist  # noqa: E402


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", default="sample", help="'sample' or an MNIST-format folder (default sample)")
    parser.add_argument("--epochs", type=positive_int, default=1, help="passes over the training set (default 1)")
    parser.add_argument("--batch-size", type=positive_int, default=64, help="minibatch size (default 64)")
    parser.add_argument("--lr", type=positive_float, default=1e-3, help="Adam learning rate (default 1e-3)")
    parser.add_argument("--val-fraction", type=unit_fraction, default=0.1, help="validation share (default 0.1)")
    parser.add_argument("--seed", type=int, default=0, help="shuffling and validation split (default 0)")
    parser.add_argument("--threads", type=positive_int, help="PyTorch threads (default: PyTorch's own choice)")
    add_malloc_option(parser)
    args = parser.parse_args(argv)
    try:
        import torch
    except ImportError:
        print("error: PyTorch is not installed", file=sys.stderr)
        return 2
    apply_malloc_option(args)                        # as train_mnist.py does: the same allocator for both
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)

    split = mnist.load_split(args.data)
    rng = np.random.default_rng(args.seed)
    order = rng.permutation(len(split.train_images))
    n_val = int(round(args.val_fraction * len(split.train_images)))
    val, train = order[:n_val], order[n_val:]
    X = torch.from_numpy(mnist.prepare(split.train_images[train], "cnn", np.float32))
    Y = torch.from_numpy(split.train_labels[train].astype(np.int64))
    X_val = torch.from_numpy(mnist.prepare(split.train_images[val], "cnn", np.float32))
    Y_val = torch.from_numpy(split.train_labels[val].astype(np.int64))
    X_test = torch.from_numpy(mnist.prepare(split.test_images, "cnn", np.float32))
    classes = int(max(split.train_labels.max(), split.test_labels.max())) + 1

    from benchmarks.models import fmnist_cnn_torch
    model = fmnist_cnn_torch(split.train_images.shape[1], classes)
    loss_function = torch.nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=args.lr)
    print(f"{split.source}: {len(X)} training images, {len(X_val)} validation, {len(X_test)} test; "
          f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads")

    def evaluate(images, labels):
        model.eval()
        with torch.no_grad():
            outputs = torch.cat([model(images[i:i + 1024]) for i in range(0, len(images), 1024)])
        model.train()
        return float(loss_function(outputs, labels)), float((outputs.argmax(1) == labels).float().mean())

    started = time.perf_counter()
    for epoch in range(1, args.epochs + 1):
        epoch_started = time.perf_counter()
        loss_sum = correct = 0.0
        for index in torch.from_numpy(rng.permutation(len(X))).split(args.batch_size):
            Xb, Yb = X[index], Y[index]
            outputs = model(Xb)
            loss = loss_function(outputs, Yb)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            loss_sum += loss.item() * len(Xb)
            correct += float((outputs.argmax(1) == Yb).sum())
        val_loss, val_accuracy = evaluate(X_val, Y_val) if len(X_val) else (float("nan"),) * 2
        print(f"epoch {epoch}: loss {loss_sum / len(X):.4f}, accuracy {correct / len(X):.4f}, "
              f"val_loss {val_loss:.4f}, val_accuracy {val_accuracy:.4f} "
              f"({time.perf_counter() - epoch_started:.1f} s)")
    seconds = time.perf_counter() - started
    model.eval()
    with torch.no_grad():
        predicted = torch.cat([model(X_test[i:i + 1024]) for i in range(0, len(X_test), 1024)]).argmax(1).numpy()
    accuracy = float(np.mean(predicted == split.test_labels))
    print(f"test accuracy: {accuracy:.4f} ({np.sum(predicted == split.test_labels)}/{len(split.test_labels)}) "
          f"after {args.epochs} epochs, {seconds:.1f} s ({seconds / args.epochs:.2f} s per epoch)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
