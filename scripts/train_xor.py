"""Train the derivation's 2-8-1 sigmoid network on XOR and print its truth table.

    python scripts/train_xor.py [--lr 5] [--epochs 2000] [--hidden 8] [--seed 0] [--plot xor.png] [--quiet]

Exits with status 1 if the network did not converge (some output further than
0.1 from its target) and 2 on an invalid argument.
"""
from __future__ import annotations

import argparse
import sys

import nnlayers as nl
from nnlayers.cli import (check_destinations, check_show, non_negative_int, plural, positive_float, positive_int,
                          short_number, unit_fraction)
from nnlayers.examples.xor import CONVERGED_WITHIN, XOR_X, XOR_Y, train_xor


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lr", type=positive_float, default=5.0, help="SGD learning rate η (default 5.0)")
    parser.add_argument("--momentum", type=unit_fraction, default=0.0, help="SGD momentum μ (default 0: plain SGD)")
    parser.add_argument("--epochs", type=positive_int, default=2000, help="full-batch epochs (default 2000)")
    parser.add_argument("--hidden", type=positive_int, default=8, help="hidden units (default 8)")
    parser.add_argument("--seed", type=non_negative_int, default=0, help="seed for the initial weights (default 0)")
    parser.add_argument("--plot", metavar="FILE", help="save the loss curve and decision surface as PNG")
    parser.add_argument("--show", action="store_true", help="also show the plot in a window")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args(argv)
    check_destinations(parser, plot=args.plot)              # before training, not after it
    args.show = check_show(args.show, saving=bool(args.plot))

    try:
        result = train_xor(lr=args.lr, epochs=args.epochs, hidden=args.hidden, seed=args.seed,
                           momentum=args.momentum, progress=not args.quiet)
    except nl.TrainingDivergedError as error:
        print(f"error: training diverged: {error}", file=sys.stderr)
        return 1

    print(f"2-{args.hidden}-1 network, SGD lr={short_number(args.lr)}, {plural(args.epochs, 'epoch')}, "
          f"seed {args.seed}: "
          f"final loss {result.history.loss[-1]:.6g}")
    print(" x1  x2 | target | output")
    for (x1, x2), target, output in zip(XOR_X, XOR_Y[:, 0], result.outputs[:, 0]):
        print(f"{x1:3.0f} {x2:3.0f} | {target:6.0f} | {output:.4f}")

    if args.plot or args.show:
        save_plot(result, args.plot, args.show)
    if not result.converged:
        print(f"error: not converged: an output is {result.max_error:.3f} from its target "
              f"(needs < {CONVERGED_WITHIN}); try more --epochs or another --lr", file=sys.stderr)
        return 1
    return 0


def save_plot(result, path, show):
    from nnlayers.plotting import finish_figure, plot_decision_surface, plot_loss, script_pyplot

    figure, (loss_ax, surface_ax) = script_pyplot(show).subplots(1, 2, figsize=(11, 4.5))
    plot_loss(loss_ax, result.history)
    loss_ax.set_title("XOR: training loss ½Σ(Yᵖ − Y)²")
    result.model.eval()
    plot_decision_surface(surface_ax, result.model.forward, XOR_X, XOR_Y)
    surface_ax.set_title("learned output over the unit square")
    figure.tight_layout()
    finish_figure(figure, path, show)


if __name__ == "__main__":
    sys.exit(main())
