"""The full table: both thread counts, both BLAS kernels, one fresh process each (``--full``)."""
from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time

from . import process
from .report import write_json


def configurations(environ=None) -> list[tuple[str, dict]]:
    """(threads, environment) for 1 and 2 threads, with OpenBLAS's own kernel and, where this machine
    pins one (OPENBLAS_CORETYPE), with the pinned one."""
    environ = dict(os.environ if environ is None else environ)
    stock = {name: value for name, value in environ.items() if name not in ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")}
    kernels = [stock] + ([environ] if "OPENBLAS_CORETYPE" in environ else [])
    return [(threads, env) for env in kernels for threads in ("1", "2")]


def full_table(args, malloc_flag: list) -> int:
    results = {}
    started = time.perf_counter()
    for threads, env in configurations():
        with tempfile.TemporaryDirectory() as folder:
            path = os.path.join(folder, "run.json")
            command = process.command("--repeats", args.repeats, "--block", args.block, "--json", path,
                                      "--quiet-layers", *malloc_flag, "--threads", threads,
                                      "--blas-threads", args.blas_threads or threads)
            for key in args.only or []:
                command += ["--only", key]
            print(f"\n=== {threads} thread(s), OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE', 'unset')} ===",
                  flush=True)
            subprocess.run(command, check=True, env=process.environment(env))
            with open(path) as file:
                results[f"{threads} threads, OPENBLAS_CORETYPE={env.get('OPENBLAS_CORETYPE', 'unset')}"] = \
                    json.load(file)
    print(f"\nnnlayers / PyTorch, median step time ratios ({time.perf_counter() - started:.0f} s in all; "
          f"the 'Winograd' rows: the same net with algorithm='winograd' / PyTorch)")
    print(f"  {'case':<16}" + "".join(f"{label.replace(' threads, OPENBLAS_CORETYPE=', ' thr, '):>18}"
                                      for label in results))
    for key in next(iter(results.values()))["cases"]:
        for candidate, label in (("nnlayers", key), ("Winograd", "  Winograd")):
            cells = []
            for result in results.values():
                seconds = result["cases"].get(key, {}).get("seconds", {})
                ratio = seconds[candidate] / seconds["PyTorch"] if candidate in seconds and "PyTorch" in seconds \
                    else None
                cells.append(f"{ratio:>18.2f}" if ratio is not None else f"{'–':>18}")
            if candidate == "nnlayers" or any(cell.strip() != "–" for cell in cells):
                print(f"  {label:<16}{''.join(cells)}")
    if args.json:
        write_json(args.json, {"kind": "full", "runs": results})
    return 0
