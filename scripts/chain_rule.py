"""Print the chain rule ∂f/∂z = Jᵀv at a point z, beside finite differences of f∘x.

The derivation's example (see ``nnlayers.examples.chain_rule``)::

    f(x) = (x₁ + 10x₂)² + 5(x₃ − x₄)² + (x₂ + 2x₃)⁴ + 10(x₁ − x₄)⁴
    x₁ = z₁ − z₂,  x₂ = z₁²,  x₃ = z₂²,  x₄ = z₁² + z₁z₂

Usage::

    python scripts/chain_rule.py                 # at z = (1, 2)
    python scripts/chain_rule.py --z 0.5 -1.5
"""
from __future__ import annotations

import argparse
import sys

from nnlayers.examples import chain_rule
from nnlayers.cli import finite_float, positive_float


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--z", nargs=2, type=finite_float, default=[1.0, 2.0], metavar=("Z1", "Z2"),
                        help="the point z = (z1, z2) (default: 1 2)")
    parser.add_argument("--eps", type=positive_float, default=1e-6,
                        help="finite-difference step (default: 1e-6)")
    args = parser.parse_args(argv)
    print(chain_rule.check(args.z, eps=args.eps))
    return 0


if __name__ == "__main__":
    sys.exit(main())
