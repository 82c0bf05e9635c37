"""PyTorch's reference run for the sequence chapter: the character LSTM on the Austen corpus.

    python -m benchmarks.text_reference --minutes 20 --log benchmarks/results/text-torch-seed0.json

The same model (``sequences.CharLSTMTorch``: Embedding 81→64, LSTM 256, Linear 81), data (the
windows of ``nnlayers.examples.text.load_corpus("austen")``), batch order
(``text.training_rounds`` with the same seed: the same batches in the same order as
``scripts/train_text.py --seed``), optimizer (Adam, η = 2·10⁻³), clipping (norm 1) and protocol
(an evaluation on the whole validation split, or its first ``--val-limit`` windows, after every
``--eval-every`` steps; evaluation time not counted) as ``scripts/train_text.py``, so that the two
curves compare step for step and second for second. Its JSON's curve has the same fields as
``train_text.py --log``'s, and the settings they share (no samples, no schedule).
"""
from __future__ import annotations

import argparse
import json
import math
import time

import numpy as np

from nnlayers.cli import non_negative_float, non_negative_int, positive_int
from nnlayers.examples import text


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.text_reference", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=non_negative_float, default=20.0, help="training time (default 20)")
    parser.add_argument("--max-steps", type=non_negative_int, help="stop after this many steps at the latest")
    parser.add_argument("--eval-every", type=positive_int, default=500, help="steps per round (default 500)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="the batch order (default 0)")
    parser.add_argument("--val-limit", type=positive_int, metavar="ROWS",
                        help="evaluate on the first ROWS validation windows only (default: all; a quick check, "
                             "as scripts/train_text.py --val-limit)")
    parser.add_argument("--threads", choices=("1", "2"), default="2", help="PyTorch's threads (default 2)")
    parser.add_argument("--init", choices=("nnlayers", "torch"), default="nnlayers",
                        help="the output layer's initialisation: nnlayers' (Xavier-uniform weights, zero bias: the "
                             "same distributions as char_model's in every layer; default) or PyTorch's default")
    parser.add_argument("--log", metavar="PATH", help="write the curve as JSON")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    import torch
    from .sequences import CharLSTMTorch

    torch.set_num_threads(int(args.threads))
    torch.manual_seed(args.seed)
    corpus = text.load_corpus("austen")
    V, batch = len(corpus.vocab), 32
    model = CharLSTMTorch(V, 64, 256)
    if args.init == "nnlayers":          # the output layer as nnlayers starts it: Xavier-uniform W, zero bias
        torch.nn.init.xavier_uniform_(model.output.weight)
        torch.nn.init.zeros_(model.output.bias)
    optimizer = torch.optim.Adam(model.parameters(), lr=2e-3)
    loss_function = torch.nn.CrossEntropyLoss()
    X, Y = torch.from_numpy(corpus.X), torch.from_numpy(corpus.Y)
    X_val, Y_val = (torch.from_numpy(array[:args.val_limit]) for array in (corpus.X_val, corpus.Y_val))

    def validation_loss() -> float:
        model.eval()
        with torch.no_grad():
            total = sum(float(loss_function(model(X_val[i:i + 256]).reshape(-1, V), Y_val[i:i + 256].reshape(-1)))
                        * len(X_val[i:i + 256]) for i in range(0, len(X_val), 256))
        model.train()
        return total / len(X_val)

    curve = [{"step": 0, "seconds": 0.0, "epoch": 0, "loss": None, "val_loss": validation_loss()}]
    step, seconds = 0, 0.0
    rounds = text.training_rounds(len(X), batch, args.eval_every, np.random.default_rng(args.seed))
    while seconds < args.minutes * 60 and (args.max_steps is None or step < args.max_steps):
        epoch, rows = next(rounds)
        if args.max_steps is not None:
            rows = rows[:(args.max_steps - step) * batch]
        started, total = time.perf_counter(), 0.0
        for start in range(0, len(rows), batch):
            index = torch.from_numpy(rows[start:start + batch])
            loss = loss_function(model(X[index]).reshape(-1, V), Y[index].reshape(-1))
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            optimizer.zero_grad()
            total += float(loss.detach()) * len(index)
        seconds += time.perf_counter() - started
        step += math.ceil(len(rows) / batch)
        curve.append({"step": step, "seconds": round(seconds, 3), "epoch": epoch, "loss": total / len(rows),
                      "val_loss": validation_loss()})
        if not args.quiet:
            print(f"step {step:,} ({seconds / 60:.1f} min, epoch {epoch}): training {curve[-1]['loss']:.4f}, "
                  f"validation {curve[-1]['val_loss']:.4f} nats per character", flush=True)
    if args.log:
        with open(args.log, "w") as file:
            json.dump({"model": "lstm", "framework": "PyTorch " + torch.__version__, "init": args.init,
                       "threads": int(args.threads),
                       "data": "austen", "seed": args.seed, "batch_size": batch, "seq_len": 64, "embed": 64,
                       "hidden": 256, "lr": 2e-3, "clip": 1.0, "dtype": "float32", "val_rows": len(X_val),
                       "date": time.strftime("%Y-%m-%d"), "curve": curve}, file, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
