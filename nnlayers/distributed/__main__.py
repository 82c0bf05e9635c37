"""``python -m nnlayers.distributed STEPS.json``: the expected scaling of the reference nets (``cost.py``),
with each net's one-process step time taken from a ``python -m benchmarks --json`` run."""
import sys

from .cost import scaling_table, step_seconds_from

if len(sys.argv) != 2:
    sys.exit("usage: python -m nnlayers.distributed STEPS.json  (a python -m benchmarks --json run, e.g. "
             "benchmarks/results/steps-full.json)")
print(scaling_table(step_seconds_from(sys.argv[1])))
