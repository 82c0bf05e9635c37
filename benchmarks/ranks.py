"""The ranks axis: a training step of the reference nets at a fixed global batch, in one process and
in R processes under ``mpiexec`` (``nl.distributed``), each process at one BLAS thread (``--ranks``)::

    python -m benchmarks --ranks 2                        # fmnist-cnn-64 and vgg-64, 1 process and 2 ranks
    python -m benchmarks --ranks 2 --only vgg-64 --json ranks.json

Each rank takes its rows of the global batch (``shard``), then the ``DistributedOptimizer``'s one
Allreduce averages the gradients (Adam, float32, as the other cases). One ``mpiexec -n R`` runs both
candidates, interleaved round by round: rank 0 alone on the whole global batch while the other ranks
wait (the one-process time), then all ranks on their shards. A round times several steps between two
barriers, so a time is the slowest rank's; a time is the median of the rounds.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time

from . import process
from .report import write_json

DEFAULT_CASES = ("fmnist-cnn-64", "vgg-64")


def ranks_table(args) -> dict:
    """Run the cases in one ``mpiexec -n R``; print the table and return the results."""
    import nnlayers as nl
    launcher = nl.distributed.mpiexec()
    if launcher is None:
        raise SystemExit("--ranks needs mpiexec: pip install -e '.[mpi]' (mpi4py and the mpich wheel)")
    keys = args.only or list(DEFAULT_CASES)
    env = process.environment(dict(os.environ, OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1"))
    command = [launcher, "-n", str(args.ranks), sys.executable, "-m", "benchmarks.ranks", "--repeats",
               str(args.repeats), "--block", str(args.block), *keys]
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")
    results = json.loads(done.stdout.strip().splitlines()[-1])
    print(f"training step at a fixed global batch, median of {args.repeats} rounds, one BLAS thread per process; "
          "1 process and the ranks interleaved round by round")
    print(f"  {'case':<16} {'1 process':>12} {f'{args.ranks} ranks':>12} {'speedup':>8}")
    table = {}
    for key in keys:
        one, many = results[key]
        table[key] = {"seconds": {"1": one, str(args.ranks): many}, "speedup": one / many}
        print(f"  {key:<16} {one * 1e3:>10.1f} ms {many * 1e3:>10.1f} ms {one / many:>7.2f}×")
    if args.json:
        from .machine import stamp
        write_json(args.json, {"stamp": stamp(False), "ranks": args.ranks, "repeats": args.repeats,
                               "rank_cases": table})
    return table


def rank_times(keys, repeats: int, block: float) -> dict:
    """Under mpiexec: each case's median seconds per step, [one process, all ranks]. Each round times
    rank 0 alone on the whole global batch (the others wait at a barrier), then every rank on its
    shard with the gradients averaged, so that both see the same background load."""
    import numpy as np

    import nnlayers as nl
    from .models import NETS
    from .steps import batch

    comm = nl.distributed.world()
    rank, size = comm.Get_rank(), comm.Get_size()
    medians = {}
    for key in keys:
        net, _, rows = key.rpartition("-")
        X, Y = batch(NETS[net][3], int(rows))
        part = nl.distributed.shard(int(rows), rank, size)
        alone = _step(NETS[net][1](), X, Y, nl.Adam) if rank == 0 else None
        ranks = _step(NETS[net][1](), X[part], Y[part],
                      lambda parameters, lr: nl.distributed.DistributedOptimizer(nl.Adam(parameters, lr), comm))
        started = time.perf_counter()
        for _ in range(3):                                   # warm-up: work arrays, caches
            ranks()
            if alone:
                alone()
        per_block = comm.bcast(max(1, round(block / ((time.perf_counter() - started) / 3))), root=0)
        rounds = {"alone": [], "ranks": []}
        for _ in range(repeats):
            for name, step in (("alone", alone), ("ranks", ranks)):
                comm.Barrier()
                started = time.perf_counter()
                if step is not None:
                    for _ in range(per_block):
                        step()
                comm.Barrier()
                rounds[name].append((time.perf_counter() - started) / per_block)
        medians[key] = [float(np.median(rounds["alone"])), float(np.median(rounds["ranks"]))]
    return medians


def _step(model, X, Y, optimizer):
    """One training step of ``model`` on (X, Y), as the benchmark's other cases take it (Adam, η = 10⁻³)."""
    import nnlayers as nl
    from .steps import nnlayers_step
    model[0].input_grad = False
    loss = nl.SoftmaxCrossEntropy()
    optimizer = optimizer(model.parameters(), 1e-3)
    if isinstance(optimizer, nl.distributed.DistributedOptimizer):
        optimizer.weight = len(Y)
    return nnlayers_step(model, loss, X, Y, None, optimizer=optimizer)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ranks", description="run by --ranks, under mpiexec")
    parser.add_argument("cases", nargs="+")
    parser.add_argument("--repeats", type=int, default=15)
    parser.add_argument("--block", type=float, default=0.2)
    args = parser.parse_args(argv)
    medians = rank_times(args.cases, args.repeats, args.block)
    import nnlayers as nl
    if nl.distributed.world().Get_rank() == 0:
        print(json.dumps(medians))
    return 0


if __name__ == "__main__":
    sys.exit(main())
