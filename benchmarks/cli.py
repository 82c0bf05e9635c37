"""The command line: ``python -m benchmarks`` (or ``python scripts/bench.py``), its options and modes.

    python -m benchmarks [--threads 1|2] [--repeats 15] [--only vgg] [--json run.json]
    python -m benchmarks --full        # 1 and 2 threads, with and without OPENBLAS_CORETYPE, fresh processes
    python -m benchmarks --peers       # one layer of each reference net: nnlayers, PyTorch, the numpy peers
    python -m benchmarks --convs       # single 3×3 convolutions, and numpy's products alone
    python -m benchmarks --memory      # VGG-like, batch 128: process growth per framework
    python -m benchmarks --device cuda # the reference CNN, VGG-like net and ResNet stack on a GPU
    python -m benchmarks --ranks 2     # reference CNN and VGG-like steps: 1 process against 2 MPI ranks

Every candidate runs in the same process, interleaved round by round
(``timing.py``); the tables report the median time per step and ratios of
medians. The training cases: XOR, an MLP and a LeNet-like net, then the
convolutional nets people train (``models.py``: the Fashion-MNIST reference
CNN, LeNet-5, a CIFAR-sized VGG-like net and a ResNet basic-block stack, each
at batch 64 and 128, Adam, float32), with every nnlayers layer's forward and
backward time and each convolution's rate beside numpy's GEMM rate.

``--threads`` sets the thread count of numpy's BLAS and of PyTorch alike
(``threads.py`` reads it before numpy starts); ``--blas-threads`` gives
numpy's BLAS another count; nnlayers' own helper threads keep the library's
default, one, unless NNLAYERS_NUM_THREADS says otherwise. OPENBLAS_CORETYPE,
if this machine sets it, pins OpenBLAS to an older kernel; for numbers
comparable with a stock numpy, unset it (and OPENBLAS_L2_SIZE) for the command
alone: ``env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE …``.

Like the training scripts, the benchmark keeps freed memory for reuse
(``nl.reuse_freed_memory``, glibc's malloc) unless ``--system-malloc``: both
frameworks run in this one process, so both gain alike.

``--json PATH`` writes what was measured with the run's stamp (``machine.py``);
``python -m benchmarks.report`` renders the speed tables (docs/speed.rst) from such files.
"""
from __future__ import annotations

import argparse
import os

import numpy as np

from nnlayers.cli import add_malloc_option, apply_malloc_option

from . import threads
from .convs import conv_table
from .layers import layer_profile
from .machine import blas_description, nnlayers_threads, stamp
from .models import NETS, WINOGRAD_NETS, torch
from .report import format_time, print_layers, write_json
from .steps import CASES, selected
from .timing import gemm_rate, measure, ratios


def parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", choices=("1", "2"), default="1",
                        help="numpy's BLAS and PyTorch threads (default 1; nnlayers' own: NNLAYERS_NUM_THREADS)")
    parser.add_argument("--blas-threads", choices=("1", "2"),
                        help="numpy's BLAS threads, if not --threads (with NNLAYERS_NUM_THREADS=2, "
                             "--blas-threads 1 gives each of nnlayers' conv lanes a core)")
    parser.add_argument("--repeats", type=int, help="timed rounds per case (default 15; 9 with --full)")
    parser.add_argument("--block", type=float, default=0.2, help="seconds per timed block (default 0.2)")
    parser.add_argument("--only", action="append", help="run only these cases (a key such as vgg-64, or vgg)")
    parser.add_argument("--json", metavar="PATH", help="also write the results, stamped, as JSON")
    parser.add_argument("--quiet-layers", action="store_true", help="no per-layer tables (JSON keeps them)")
    parser.add_argument("--full", action="store_true",
                        help="1 and 2 threads, with and without OPENBLAS_CORETYPE, in fresh processes")
    parser.add_argument("--convs", action="store_true",
                        help="only single 3×3 convolutions in isolation: nnlayers, PyTorch and numpy's matrix "
                             "products of the same shapes alone")
    parser.add_argument("--peers", action="store_true",
                        help="only one layer of each reference net's convolutions: nnlayers, PyTorch and the "
                             "numpy peers (CS231n's im2col, Chainer's tensordot); meant for --threads 1")
    parser.add_argument("--peers-batch", type=int, default=64, help="the batch of --peers (default 64)")
    parser.add_argument("--memory", action="store_true",
                        help="peak memory growth of training the VGG-like net at batch 128, per framework")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="cuda: the reference CNN, VGG-like net and ResNet stack on a GPU (CuPy) against "
                             "PyTorch on the same GPU")
    parser.add_argument("--ranks", type=int, metavar="R",
                        help="only the training step at a fixed global batch in 1 process and in R processes "
                             "under mpiexec (nl.distributed; default cases fmnist-cnn-64, vgg-64)")
    add_malloc_option(parser)
    parser.add_argument("--memory-child", choices=("nnlayers", "PyTorch"), help=argparse.SUPPRESS)
    parser.add_argument("--memory-case", default="vgg-128", help=argparse.SUPPRESS)
    parser.add_argument("--memory-steps", type=int, default=5, help=argparse.SUPPRESS)
    return parser


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    if (args.threads, args.blas_threads or args.threads) != (threads.THREADS, threads.BLAS_THREADS):
        threads.configure(["--threads", args.threads] + (["--blas-threads", args.blas_threads]
                                                         if args.blas_threads else []))  # main called directly
    if torch is not None:
        torch.set_num_threads(int(threads.THREADS))
    args.repeats = args.repeats or (9 if args.full else 15)
    kept = apply_malloc_option(args)      # for both frameworks alike: they share this process
    malloc_flag = ["--system-malloc"] if args.system_malloc else []   # the same for child processes

    if args.memory_child:
        from .memory import memory_child
        key, size = args.memory_case.rsplit("-", 1)
        print(f"{memory_child(args.memory_child, key, int(size), args.memory_steps):.1f}")
        return 0
    if args.memory:
        from .memory import memory_report
        key, size = args.memory_case.rsplit("-", 1)
        growth = memory_report(key, int(size), args.memory_steps, malloc_flag)
        if args.json:
            write_json(args.json, {"stamp": stamp(kept), "memory": {
                "case": f"{NETS[key][0]}, batch {size}", "steps": args.memory_steps, "growth_mib": growth}})
        return 0
    if args.device == "cuda":
        from .gpu import gpu_table
        status, gpu = gpu_table(args)
        if args.json and gpu:
            write_json(args.json, {"stamp": stamp(kept), "repeats": args.repeats, "gpu": gpu})
        return status
    if args.ranks:
        from .ranks import ranks_table
        ranks_table(args)
        return 0
    if args.full:
        from .full import full_table
        return full_table(args, malloc_flag)
    return cpu_tables(args, kept)


def cpu_tables(args, kept: bool) -> int:
    """The training cases (unless --convs or --peers), then the convolution tables asked for."""
    keys = [] if args.convs or args.peers else selected(args.only)
    gemm = gemm_rate()
    blas = blas_description()
    helpers = nnlayers_threads()
    print(f"numpy {np.__version__} ({blas}), torch {torch.__version__ if torch else 'not installed'}; "
          f"{threads.THREADS} thread(s) (BLAS: {threads.BLAS_THREADS}, nnlayers: {helpers}); "
          f"OPENBLAS_CORETYPE={os.environ.get('OPENBLAS_CORETYPE', 'unset')}; median of {args.repeats} rounds"
          f"{f', {threads.SETTLE_SECONDS} s pause before each block' if threads.settle_seconds() else ''}; "
          f"malloc: {'freed memory kept for reuse' if kept else 'system settings'}")
    print(f"numpy float32 GEMM (1024³): {gemm:.0f} GFLOP/s")
    report = {"stamp": stamp(kept), "numpy": np.__version__, "torch": torch.__version__ if torch else None,
              "blas": blas, "threads": int(threads.THREADS), "blas_threads": int(threads.BLAS_THREADS),
              "nnlayers_threads": helpers, "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE"),
              "gemm_gflops": gemm, "repeats": args.repeats, "settle_seconds": threads.settle_seconds(),
              "reuse_freed_memory": kept, "cases": {}}
    for key in keys:
        report["cases"][key] = training_case(key, args, gemm)
    if args.convs:
        report["convs"] = conv_table(args, gemm)
    if args.peers:
        from .peers import peer_table
        report["peers"] = peer_table(args, args.peers_batch)
    if args.json:
        write_json(args.json, report)
    return 0


def training_case(key: str, args, gemm: float) -> dict:
    """Time one case's candidates, print them (and, for the nets, each layer), return the JSON entry."""
    title, candidates = CASES[key]
    if torch is None:
        candidates = [(name, make) for name, make in candidates if name != "PyTorch"]
    medians = measure(candidates, args.repeats, args.block)
    base = medians["nnlayers"]
    print(f"\n{title}")
    print(f"  {'':<12} {'per step':>12} {'nnlayers / this':>16}")
    for name, seconds in medians.items():
        print(f"  {name:<12} {format_time(seconds):>12} {base / seconds:>16.2f}")
    case = {"title": title, "seconds": medians, "ratios": ratios(medians)}
    net, _, size = key.rpartition("-")
    if net in NETS:
        variants = [("layers", "", ())] + ([("layers_winograd", "Winograd: ", ("winograd",))]
                                           if net in WINOGRAD_NETS else [])
        for field, label, arguments in variants:
            case[field] = layer_profile(NETS[net][1](*arguments), NETS[net][3], int(size))
            rates = [row["gflops"] for row in case[field] if "gflops" in row]
            print(f"  {label}conv forward+backward GFLOP/s: {', '.join(f'{r:.0f}' for r in rates)} "
                  f"(GEMM {gemm:.0f}; {', '.join(f'{r / gemm:.0%}' for r in rates)})")
            if not args.quiet_layers:
                print_layers(case[field], gemm)
    return case
