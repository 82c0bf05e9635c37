"""``python scripts/bench.py …`` = ``python -m benchmarks …``: the benchmarks package, run from anywhere.

The benchmarks live in ``benchmarks/`` beside ``nnlayers/`` (see its
``__init__``; ``python scripts/bench.py --help`` lists the options). This file
puts that folder first on the import path, sets the thread counts before numpy
loads, and runs the command line.
"""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks import threads  # noqa: E402

threads.configure(sys.argv[1:])   # before numpy loads: BLAS sizes its thread pool then

from benchmarks.cli import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
