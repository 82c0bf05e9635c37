"""Train a character language model on shipped text: Jane Austen's novels or US first names.

    python scripts/train_text.py --model lstm --data austen               # 5 minutes, then samples
    python scripts/train_text.py --model lstm --data austen --minutes 20 --save austen-lstm.npz
    python scripts/train_text.py --model gru --data names --minutes 1
    python scripts/train_text.py --model gpt --data austen --minutes 20         # a small GPT (chapter 8)
    python scripts/train_text.py --load austen-lstm.npz --data austen --minutes 0 --temperature 0.5

The model reads ids N×T and scores the next character at every position (Embedding → LSTM, GRU or
RNN → Linear → Bias, or a small GPT: Transformer blocks; ``nnlayers.examples.text``), trained with
Adam (the GPT: AdamW with a linear warm-up and a cosine decay), the softmax cross-entropy and
gradient clipping, on windows of ``--seq-len`` characters (``--data austen``: the novels' first 90 %;
validation on the next 5 %) or on whole names between markers (``--data names``). Training runs in
rounds of ``--eval-every`` steps until ``--minutes`` of training (evaluation not counted) or
``--max-steps``; after each round one line gives the validation loss in nats per character (on the
whole validation split, or its first ``--val-limit`` rows). At the end it prints samples drawn at
``--temperature``. ``--save`` keeps the model (``nl.load_model``), ``--log`` the curve as JSON,
``--plot`` the curve as a PNG, ``--export-onnx`` an ONNX file (input ids N×T int64 for any T, up to
the context for the GPT; output scores N×T×V, float32).
"""
from __future__ import annotations

import argparse
import json
import math
import sys
import time

import numpy as np

import nnlayers as nl
from nnlayers.cli import (add_malloc_option, apply_malloc_option, check_destinations, check_show,
                          non_negative_float, non_negative_int, positive_float, positive_int, short_number)
from nnlayers.examples import text

#: Per corpus: a run's default length, rows per batch and steps between evaluations.
DEFAULTS = {"austen": dict(minutes=5.0, batch_size=32, eval_every=500),
            "names": dict(minutes=1.0, batch_size=64, eval_every=100)}
#: Per kind of model: window length, widths, learning rate and schedule.
MODEL_DEFAULTS = {"recurrent": dict(seq_len=64, embed=64, hidden=256, lr=2e-3, schedule="none", warmup=0),
                  "gpt": dict(seq_len=128, embed=128, hidden=None, lr=1e-3, schedule="cosine", warmup=200)}
GPT_WEIGHT_DECAY = 0.01


def parse_args(argv):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", choices=text.MODELS, default="lstm", help="default lstm")
    parser.add_argument("--data", choices=text.CORPORA, default="austen", help="default austen")
    parser.add_argument("--minutes", type=non_negative_float,
                        help="training time, evaluation not counted (default 5 for austen, 1 for names; "
                             "0 with --load: only evaluate and sample)")
    parser.add_argument("--max-steps", type=non_negative_int, help="stop after this many steps at the latest")
    parser.add_argument("--seq-len", type=positive_int,
                        help="characters per window (austen; default 64, 128 for gpt: its context; with --load "
                             "of a gpt, its context)")
    parser.add_argument("--batch-size", type=positive_int, help="rows per step (default 32 for austen, 64 for names)")
    parser.add_argument("--embed", type=positive_int, help="embedding width (default 64; gpt: its width D, 128)")
    parser.add_argument("--hidden", type=positive_int, help="hidden units of a recurrent model (default 256)")
    parser.add_argument("--heads", type=positive_int, default=4, help="gpt: attention heads (default 4)")
    parser.add_argument("--blocks", type=positive_int, default=4, help="gpt: Transformer blocks (default 4)")
    parser.add_argument("--dropout", type=non_negative_float, default=0.0, help="gpt: dropout (default 0)")
    parser.add_argument("--lr", type=positive_float, help="(peak) learning rate (default 2e-3; gpt 1e-3)")
    parser.add_argument("--schedule", choices=("cosine", "none"),
                        help="learning rate per step: cosine decay to lr/10 over the steps the run is expected "
                             "to take (--max-steps, or --minutes over the measured time of a step), after "
                             "--warmup steps rising from lr/100 (default none; cosine for gpt)")
    parser.add_argument("--warmup", type=non_negative_int, help="steps of linear warm-up (default 0; 200 for gpt)")
    parser.add_argument("--clip", type=non_negative_float, default=1.0,
                        help="clip the gradient's norm to this (default 1; 0: no clipping)")
    parser.add_argument("--eval-every", type=positive_int, help="steps per round (default 500 for austen, 100 for names)")
    parser.add_argument("--val-limit", type=positive_int, metavar="ROWS",
                        help="evaluate on the first ROWS validation rows only (default: all; a quick check, "
                             "as benchmarks/text_reference.py --val-limit)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="weights, order and samples (default 0)")
    parser.add_argument("--dtype", choices=("float32", "float64"), default="float32", help="default float32")
    parser.add_argument("--temperature", type=positive_float, default=0.8, help="for the samples (default 0.8)")
    parser.add_argument("--samples", type=non_negative_int, help="how many samples to print (default 3 for "
                                                                  "austen, 12 names)")
    parser.add_argument("--sample-length", type=positive_int, default=300, help="characters per austen sample")
    parser.add_argument("--load", metavar="PATH", help="start from a model saved with --save")
    parser.add_argument("--save", metavar="PATH", help="save the trained model (.npz; nl.load_model(PATH))")
    parser.add_argument("--log", metavar="PATH", help="write the curve and the samples as JSON")
    parser.add_argument("--export-onnx", metavar="PATH",
                        help="also write the model as ONNX (needs pip install -e '.[onnx]')")
    parser.add_argument("--plot", metavar="PATH", help="save the validation curve as PNG")
    parser.add_argument("--show", action="store_true", help="also show the plot in a window")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    add_malloc_option(parser)
    args = parser.parse_args(argv)
    check_destinations(parser, save=args.save, log=args.log, export_onnx=args.export_onnx, plot=args.plot)
    args.show = check_show(args.show, saving=bool(args.plot))
    args.seq_len_given = args.seq_len is not None       # with --load, a GPT's context is the default instead
    for name, value in [*DEFAULTS[args.data].items(),
                        *MODEL_DEFAULTS["gpt" if args.model == "gpt" else "recurrent"].items()]:
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.model == "gpt" and args.data == "names":
        args.seq_len = max(len(name) for name in nl.datasets.load_names()) + 1   # a whole name, with its markers
    if args.dropout >= 1:
        parser.error(f"--dropout must be below 1, got {args.dropout}")
    if args.samples is None:
        args.samples = 3 if args.data == "austen" else 12
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    if args.export_onnx:
        try:
            nl.onnx.require_onnx()                     # before training, not after
        except ImportError as error:
            print(f"error: --export-onnx: {error}", file=sys.stderr)
            return 2
    apply_malloc_option(args)
    say = (lambda *a, **k: None) if args.quiet else print
    rng = np.random.default_rng(args.seed)
    if args.load:
        try:
            model = nl.load_model(args.load).train()
        except (OSError, nl.WeightsFileError) as error:
            print(f"error: --load {args.load}: {getattr(error, 'strerror', None) or error}", file=sys.stderr)
            return 2
        context = min((module.max_length for module in model.modules() if isinstance(module, nl.PositionalEmbedding)),
                      default=None)
        if context is not None and args.data == "austen" and not args.seq_len_given:
            args.seq_len = context                         # windows as long as the loaded GPT reads
    corpus = text.load_corpus(args.data, args.seq_len)
    if args.val_limit:
        corpus.X_val, corpus.Y_val = corpus.X_val[:args.val_limit], corpus.Y_val[:args.val_limit]
    if args.load:
        embedding = next((module for module in model.modules() if isinstance(module, nl.Embedding)), None)
        if embedding is None or embedding.num_embeddings != len(corpus.vocab):
            print(f"error: --load {args.load}: not a character model of the {len(corpus.vocab)} symbols of "
                  f"--data {args.data}", file=sys.stderr)
            return 2
        if context is not None and corpus.X.shape[1] > context:
            what = "--seq-len" if args.data == "austen" else "the longest name, with its markers,"
            print(f"error: --load {args.load}: {what} {corpus.X.shape[1]} is longer than the loaded model's "
                  f"context of {context} characters", file=sys.stderr)
            return 2
    elif args.model == "gpt":
        model = text.gpt(len(corpus.vocab), context=args.seq_len, embed=args.embed, heads=args.heads,
                         blocks=args.blocks, dropout=args.dropout, rng=rng, dtype=np.dtype(args.dtype))
    else:
        model = text.char_model(args.model, len(corpus.vocab), embed=args.embed, hidden=args.hidden, rng=rng,
                                dtype=np.dtype(args.dtype))
    loss = nl.SoftmaxCrossEntropy(ignore_index=nl.datasets.IGNORE_INDEX)
    optimizer = (nl.AdamW(model.parameters(), lr=args.lr, weight_decay=GPT_WEIGHT_DECAY) if args.model == "gpt"
                 else nl.Adam(model.parameters(), lr=args.lr))
    schedule = make_schedule(args, optimizer, model, loss, corpus)
    trainer = nl.Trainer(model, loss, optimizer, clip_grad_norm=args.clip or None, schedule=schedule,
                         schedule_every="batch")
    say(f"{args.data}: {len(corpus.X):,} training rows of {corpus.X.shape[1]} characters, "
        f"{len(corpus.X_val):,} validation, {len(corpus.vocab)} symbols")
    say(f"{model!r}\n{model.num_parameters():,} parameters; {type(optimizer).__name__} lr={short_number(args.lr)}"
        f"{f', schedule {schedule!r}' if schedule else ''}, batch {args.batch_size}, clipping at "
        f"{short_number(args.clip) if args.clip else 'none'}, {args.dtype}")

    curve = train(trainer, corpus, args, rng, say)
    if curve is None:
        return 1
    if args.save:
        nl.save_model(model, args.save)
        say(f"saved the model to {args.save} (nl.load_model({str(args.save)!r}) rebuilds it)")
    samples = draw_samples(model, corpus, args)
    print(f"samples at temperature {short_number(args.temperature)}:")
    for each in samples:
        print(("  " + each.strip()) if args.data == "names" else each + "\n")
    if args.log:
        record = {"model": args.model if not args.load else "loaded", "data": args.data, "seed": args.seed,
                  "batch_size": args.batch_size, "seq_len": args.seq_len, "embed": args.embed, "hidden": args.hidden,
                  "heads": args.heads, "blocks": args.blocks, "lr": args.lr, "schedule": args.schedule,
                  "warmup": args.warmup, "clip": args.clip, "dtype": args.dtype, "threads": blas_threads(),
                  "val_rows": len(corpus.X_val), "numpy": np.__version__, "nnlayers": nl.__version__,
                  "date": time.strftime("%Y-%m-%d"),
                  "curve": curve, "samples": samples}
        with open(args.log, "w") as file:
            json.dump(record, file, indent=1)
    if args.export_onnx:
        nl.export_onnx(model, args.export_onnx, ("T",), input_dtype=np.int64, dtype=np.float32)
        say(f"exported to {args.export_onnx} (ONNX; input X: ids N×T int64, any T"
            f"{f' up to {args.seq_len}' if args.model == 'gpt' else ''}; output: scores N×T×V)")
    if args.plot or args.show:
        save_plot(curve, args)
    return 0


def make_schedule(args, optimizer, model, loss, corpus):
    """``--warmup`` steps from lr/100 up to lr, then (``--schedule cosine``) a cosine decay to lr/10 over the
    steps the run is expected to take: ``--max-steps``, or ``--minutes`` over the time of one step
    (``step_seconds``), which then becomes the run's ``--max-steps`` so that training ends where the decay
    does. None for neither."""
    if args.schedule == "none" and not args.warmup:
        return None
    S = nl.schedules
    ramp = S.LinearLR(optimizer, 0.01, total_iters=args.warmup) if args.warmup else None
    if args.schedule == "none":
        return ramp
    steps = args.max_steps
    if steps is None:
        steps = args.max_steps = int(args.minutes * 60 / step_seconds(model, loss, optimizer, corpus, args))
    decay = S.CosineAnnealingLR(optimizer, T_max=max(1, steps - args.warmup), eta_min=args.lr / 10)
    return S.SequentialLR(optimizer, [ramp, decay], milestones=[args.warmup]) if ramp else decay


def step_seconds(model, loss, optimizer, corpus, args) -> float:
    """The time of one training step, measured on three (the fastest of the last two), then undone: the
    weights are put back and a throwaway optimizer of the same kind took the steps."""
    saved = model.state_dict()
    scratch = type(optimizer)(model.parameters(), lr=args.lr)
    X, Y = corpus.X[:args.batch_size], corpus.Y[:args.batch_size]
    times = []
    for _ in range(3):
        started = time.perf_counter()
        loss.forward(model.forward(X), Y)
        model.backward(loss.backward())
        nl.clip_grad_norm(model.parameters(), args.clip or float("inf"))
        scratch.step()
        scratch.zero_grad()
        times.append(time.perf_counter() - started)
    model.load_state_dict(saved)
    return min(times[1:])


def train(trainer, corpus, args, rng, say) -> list | None:
    """Rounds of ``--eval-every`` steps until the time or step budget is spent; returns the curve:
    one record per evaluation, {step, seconds (training only), epoch, loss (the round's), val_loss}."""
    val_loss, _ = trainer.evaluate(corpus.X_val, corpus.Y_val, batch_size=256)
    curve = [{"step": 0, "seconds": 0.0, "epoch": 0, "loss": None, "val_loss": val_loss}]
    say(f"step 0: validation {val_loss:.4f} nats per character")
    budget = args.minutes * 60
    step, seconds = 0, 0.0
    rounds = text.training_rounds(len(corpus.X), args.batch_size, args.eval_every, rng)
    while seconds < budget and (args.max_steps is None or step < args.max_steps):
        epoch, rows = next(rounds)
        if args.max_steps is not None:
            rows = rows[:(args.max_steps - step) * args.batch_size]
        started = time.perf_counter()
        try:
            history = trainer.fit(corpus.X[rows], corpus.Y[rows], epochs=1, batch_size=args.batch_size,
                                  shuffle=False, progress=False)
        except nl.TrainingDivergedError as error:
            print(f"error: training diverged: {error}", file=sys.stderr)
            return None
        seconds += time.perf_counter() - started
        step += math.ceil(len(rows) / args.batch_size)
        val_loss, _ = trainer.evaluate(corpus.X_val, corpus.Y_val, batch_size=256)
        curve.append({"step": step, "seconds": round(seconds, 3), "epoch": epoch, "loss": history.loss[-1],
                      "val_loss": val_loss})
        say(f"step {step:,} ({seconds / 60:.1f} min, epoch {epoch}): training {history.loss[-1]:.4f}, "
            f"validation {val_loss:.4f} nats per character")
    return curve


def blas_threads():
    """numpy's BLAS threads as the environment sets them (None: the library's default, every core)."""
    import os
    value = os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
    return int(value) if value and value.isdigit() else None


def draw_samples(model, corpus, args) -> list[str]:
    rng = np.random.default_rng(args.seed + 1)
    if args.data == "names":
        return [text.sample(model, corpus.vocab, corpus.prime, 20, temperature=args.temperature,
                            stop=text.NAME_MARKER, rng=rng) for _ in range(args.samples)]
    return [text.sample(model, corpus.vocab, corpus.prime, args.sample_length, temperature=args.temperature,
                        rng=rng) for _ in range(args.samples)]


def save_plot(curve, args):
    from nnlayers.plotting import finish_figure, script_pyplot

    figure = script_pyplot(args.show).figure(figsize=(9, 4), layout="constrained")
    by_step, by_time = figure.subplots(1, 2, sharey=True)
    for ax, key, label in ((by_step, "step", "steps"), (by_time, "seconds", "training seconds")):
        ax.plot([point[key] for point in curve], [point["val_loss"] for point in curve], marker=".")
        ax.set_xlabel(label)
        ax.grid(alpha=0.3)
    by_step.set_ylabel("validation loss (nats per character)")
    figure.suptitle(f"{args.model} on {args.data}")
    finish_figure(figure, args.plot, args.show, dpi=90)


if __name__ == "__main__":
    sys.exit(main())
