"""Reporting: times for the console, runs as JSON, and the speed tables (docs/speed.rst) rendered from JSON.

    python -m benchmarks.report benchmarks/results/*.json --rst                     # print the tables
    python -m benchmarks.report benchmarks/results/*.json --rst --update docs/speed.rst  # put them in place

A run's JSON (``python -m benchmarks … --json PATH``) holds its ``stamp``
(``machine.stamp``: CPU, cores, BLAS kernel, versions, thread counts, date)
and whichever sections the run measured: ``cases`` (training steps),
``convs``, ``peers``, ``memory``, ``gpu``; a ``--full`` run holds one such run
per configuration under ``runs``. ``render_rst`` turns files into
reStructuredText tables, each captioned with the file and the stamp it comes
from. docs/speed.rst (the documentation's Speed page) keeps them between the ``BEGIN`` and ``END``
comment lines, and a test checks that they are exactly what this renders from
the committed files in ``benchmarks/results/``, so no number drifts.
"""
from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

BEGIN = ".. begin speed tables: python -m benchmarks.report benchmarks/results/*.json --rst --update docs/speed.rst"
END = ".. end speed tables"
RESULTS = Path(__file__).resolve().parent / "results"


# -- the console -----------------------------------------------------------------------------------

def format_time(seconds: float) -> str:
    return f"{seconds * 1e6:.1f} µs" if seconds < 1e-3 else f"{seconds * 1e3:.2f} ms"


def print_layers(rows, gemm: float) -> None:
    """The per-layer table of ``layers.layer_profile``: forward, backward, and each convolution's rate."""
    print(f"  {'layer':<34} {'forward':>10} {'backward':>10} {'GFLOP/s':>8} {'of GEMM':>8}")
    for row in rows:
        rate = row.get("gflops")
        extra = f" {rate:8.1f} {rate / gemm:8.0%}" if rate is not None else ""
        name = f"{row['layer']} {row['module']}"
        name = name if len(name) <= 34 else name[:33] + "…"
        print(f"  {name:<34} {format_time(row['forward_s']):>10} {format_time(row['backward_s']):>10}{extra}")


def write_json(path, report: dict) -> None:
    with open(path, "w") as file:
        json.dump(report, file, indent=1)
        file.write("\n")


# -- the speed tables -----------------------------------------------------------------------------

def _table(header, rows) -> list[str]:
    """A reStructuredText simple table: the first column left-aligned, the others right-aligned."""
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows)]
    rule = "  ".join("=" * width for width in widths)

    def line(cells):
        return "  ".join(str(cell).ljust(width) if i == 0 else str(cell).rjust(width)
                         for i, (cell, width) in enumerate(zip(cells, widths))).rstrip()
    return [rule, line(header), rule, *(line(row) for row in rows), rule]


def _runs(paths):
    """(file name, run) for every run in the files, in order; a ``--full`` file gives one per configuration."""
    for path in paths:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
        for run in (data["runs"].values() if "runs" in data else [data]):
            yield Path(path).name, run


def _label(stamp) -> str:
    from .machine import describe
    return describe(stamp).split(";")[0]          # "1 thread, SkylakeX kernel"


def _caption(sources) -> str:
    from .machine import describe
    return "; ".join(f"``{name}``: {describe(stamp)}" for name, stamp in sources)


#: The sequence chapters' cases: runs of these alone get a table of their own.
SEQUENCE_CASES = {"char-lstm", "attention-block"}


def steps_tables(runs) -> list[str]:
    """Training steps: one table for the image nets' runs, one for the runs of the sequence cases alone."""
    timed = [(name, run) for name, run in runs if run.get("cases")]
    sequences = [(name, run) for name, run in timed if set(run["cases"]) <= SEQUENCE_CASES]
    others = [(name, run) for name, run in timed if (name, run) not in sequences]
    first, second = _steps_table(others), _steps_table(sequences)
    return first + ([""] if first and second else []) + second


def _steps_table(columns) -> list[str]:
    """Training steps: nnlayers' ms per step and nnlayers / PyTorch, one column per run."""
    if not columns:
        return []
    keys = list(dict.fromkeys(key for _, run in columns for key in run["cases"]))
    header = ["case (nnlayers / PyTorch)"]
    labels = [_label(run["stamp"]) for _, run in columns]
    header += [label if labels.count(label) == 1 else f"{label} [{i + 1}]" for i, label in enumerate(labels)]
    rows = []
    for key in keys:
        # (row label, candidate timed, the candidate it is divided by)
        for label, candidate, other in ((key, "nnlayers", "PyTorch"), (f"{key}, Winograd", "Winograd", "PyTorch"),
                                        (f"{key}, nnlayers / lean numpy", "nnlayers", "lean numpy")):
            cells = []
            for _, run in columns:
                seconds = run["cases"].get(key, {}).get("seconds", {})
                cells.append(f"{seconds[candidate] / seconds[other]:.2f} ({format_time(seconds[other])})"
                             if other == "lean numpy" and other in seconds else
                             f"{seconds[candidate] / seconds[other]:.2f} ({format_time(seconds[candidate])})"
                             if candidate in seconds and other in seconds else "–")
            if label == key or any(cell != "–" for cell in cells):
                rows.append([label, *cells])
    caption = (f"Training steps (forward, loss, backward, optimizer step): time / PyTorch's time (below 1: "
               f"faster than PyTorch), and the time per step in brackets; the lean numpy row: nnlayers' time / "
               f"the lean loop's, and the loop's time. {_caption((name, run['stamp']) for name, run in columns)}.")
    return [caption, "", *_table(header, rows)]


def peers_tables(runs) -> list[str]:
    lines = []
    for name, run in runs:
        if not run.get("peers"):
            continue
        cases = run["peers"]
        first = next(iter(cases.values()))
        names = list(first["seconds"])
        header = [f"layer (batch {first['batch']})"] + names

        def cell(seconds, name):
            ratio = "" if name == "nnlayers" else f" ({seconds[name] / seconds['nnlayers']:.2f})"
            return format_time(seconds[name]) + ratio
        rows = [[key, *(cell(case["seconds"], name) for name in names)] for key, case in cases.items()]
        lines += [f"One convolution layer, forward + backward, float32: time, and in brackets the time / "
                  f"nnlayers' time. {_caption([(name, run['stamp'])])}.", "", *_table(header, rows), ""]
    return lines[:-1]


def convs_tables(runs) -> list[str]:
    lines = []
    for name, run in runs:
        if not run.get("convs"):
            continue
        names = list(next(iter(run["convs"].values()))["seconds"])
        header = ["C → F, H×W"] + [f"{n} (GFLOP/s)" for n in names]
        rows = []
        for key, case in run["convs"].items():
            C, F, H = key.split("-")
            rows.append([f"{C} → {F}, {H}×{H}", *(f"{format_time(case['seconds'][n])} "
                                                   f"({case['flops'] / case['seconds'][n] / 1e9:.0f})" for n in names)])
        lines += [f"Single 3×3 convolutions (padding 1, batch 64, forward + backward); 'products': numpy's "
                  f"matrix products of the same shapes alone (GEMM {run['gemm_gflops']:.0f} GFLOP/s). "
                  f"{_caption([(name, run['stamp'])])}.", "", *_table(header, rows), ""]
    return lines[:-1]


def memory_tables(runs) -> list[str]:
    lines = []
    for name, run in runs:
        if not run.get("memory"):
            continue
        memory = run["memory"]
        rows = [[framework, f"{mib:.1f}"] for framework, mib in memory["growth_mib"].items()]
        lines += [f"Peak resident set growth over {memory['steps']} Adam steps of {memory['case']} "
                  f"(one process per framework). {_caption([(name, run['stamp'])])}.", "",
                  *_table(["framework", "MiB"], rows), ""]
    return lines[:-1]


def gpu_tables(runs) -> list[str]:
    lines = []
    for name, run in runs:
        if not run.get("gpu"):
            continue
        rows = [[key, format_time(case["nnlayers"]), format_time(case["PyTorch"]), f"{case['ratio']:.2f}"]
                for key, case in run["gpu"]["cases"].items()]
        lines += [f"On a GPU ({run['gpu']['device']}), each step synchronised. {_caption([(name, run['stamp'])])}.",
                  "", *_table(["case", "nnlayers", "PyTorch", "nnlayers / PyTorch"], rows), ""]
    return lines[:-1]


#: Training minutes and steps at which the text runs' validation losses are shown.
TEXT_MINUTES = (1, 5, 10, 20)
TEXT_STEPS = (500, 1000, 2000, 4000, 8000, 16000)


def _text_label(run) -> str:
    framework = run.get("framework", "nnlayers").split(" ")[0]
    threads = run.get("threads")
    init = {"nnlayers": ", nnlayers' init", "torch": ", its own init"}.get(run.get("init", "torch")) \
        if framework == "PyTorch" else ""
    return (f"{framework} {run['model'].upper()}, seed {run['seed']}{init}"
            + (f", {threads} thread{'s' if threads != 1 else ''}" if threads else ""))


def _loss_at(curve, key, limit):
    """The validation loss of the last evaluation at or before ``limit`` (of ``key``), if the run got there."""
    if curve[-1][key] < limit:
        return "–"
    return f"{[point for point in curve if point[key] <= limit][-1]['val_loss']:.3f}"


def text_tables(runs) -> list[str]:
    """Character models on the Austen corpus (``train_text.py --log``, ``benchmarks.text_reference --log``):
    the validation loss after so many minutes of training, and after so many steps."""
    text_runs = [(name, run) for name, run in runs if run.get("curve") and run.get("data") == "austen"]
    if not text_runs:
        return []
    by_time = [[_text_label(run), *(_loss_at(run["curve"], "seconds", 60 * minutes) for minutes in TEXT_MINUTES),
                f"{run['curve'][-1]['val_loss']:.3f} ({run['curve'][-1]['seconds'] / 60:.1f} min)"]
               for _, run in text_runs]
    by_steps = [[_text_label(run), *(_loss_at(run["curve"], "step", steps) for steps in TEXT_STEPS),
                 f"{run['curve'][-1]['val_loss']:.3f} ({run['curve'][-1]['step']:,} steps)"] for _, run in text_runs]
    files = ", ".join(f"``{name}``" for name, _ in text_runs)
    return [f"Character models on the Austen corpus: validation loss (nats per character, the 5 % after the "
            f"training text) after so many minutes of training (evaluation not counted): the last evaluation at "
            f"or before each mark, the first coming after ``--eval-every`` steps (500), before which the figure "
            f"is the untrained model's. Each run at the thread count its row gives, two runs side by side on "
            f"the two cores. Files: {files}.", "",
            *_table(["run", *(f"{minutes} min" for minutes in TEXT_MINUTES), "end"], by_time), "",
            "The same runs by optimizer steps (batches of the same windows in the same order for the same seed).", "",
            *_table(["run", *(f"{steps:,} steps" for steps in TEXT_STEPS), "end"], by_steps)]


def render_rst(paths) -> str:
    """The speed tables from the JSON files at ``paths`` (in the order given)."""
    runs = list(_runs(paths))
    parts = [table for table in (steps_tables(runs), text_tables(runs), peers_tables(runs), convs_tables(runs),
                                 memory_tables(runs), gpu_tables(runs)) if table]
    return "\n\n".join("\n".join(table) for table in parts) + ("\n" if parts else "")


def speed_block(text: str) -> str:
    """What a page (docs/speed.rst) holds between the BEGIN and END lines (without them)."""
    begin, end = text.index(BEGIN + "\n") + len(BEGIN) + 1, text.index("\n" + END) + 1
    return text[begin:end]


def with_tables(text: str, tables: str) -> str:
    """``text`` with the block between BEGIN and END replaced by ``tables`` (set off by blank lines)."""
    block = speed_block(text)
    start = text.index(BEGIN + "\n") + len(BEGIN) + 1
    return text[:start] + ("\n" + tables + "\n" if tables else "\n") + text[start + len(block):]


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description="Render the speed tables (docs/speed.rst) from benchmark JSON files")
    parser.add_argument("paths", nargs="*", help="JSON files written by python -m benchmarks … --json")
    parser.add_argument("--rst", action="store_true", help="reStructuredText tables (the only format so far)")
    parser.add_argument("--update", metavar="PAGE", help=f"replace the tables between {BEGIN!r} and {END!r}")
    args = parser.parse_args(argv)
    tables = render_rst(sorted(args.paths, key=lambda path: Path(path).name))
    if args.update:
        readme = Path(args.update)
        readme.write_text(with_tables(readme.read_text(encoding="utf-8"), tables), encoding="utf-8")
    else:
        sys.stdout.write(tables)
    return 0


if __name__ == "__main__":
    sys.exit(main())
