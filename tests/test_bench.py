"""scripts/bench.py (a short run writes the table as JSON, with per-layer times and conv rates) and its
PyTorch companion for whole epochs, scripts/torch_reference.py."""
import json
import re

import pytest

from tests.helpers import GLIBC, load_script, require, run_script

try:
    import torch
except ImportError:
    torch = None


@pytest.fixture(autouse=True)
def _needs_torch():
    require(torch is not None, "PyTorch is not installed (pip install torch==2.13.0); the benchmark compares with it")


@pytest.fixture
def load_bench(monkeypatch):
    """``load_bench(*arguments)``: scripts/bench.py imported as a module with those command-line
    arguments (its ``main`` not run). What its import sets, the BLAS threads' environment and
    PyTorch's thread count, comes back after the test."""
    import sys

    threads = torch.get_num_threads()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")                 # restored afterwards, whatever bench.py sets

    def load(*arguments):
        monkeypatch.setattr(sys, "argv", ["bench.py", *arguments])
        return load_script("bench.py")
    yield load
    torch.set_num_threads(threads)


def test_short_run_reports_ratios_layers_and_conv_rates(tmp_path):
    out = tmp_path / "run.json"
    done = run_script("bench.py", "--only", "xor", "--only", "lenet5-64", "--repeats", "1", "--block", "0.01",
                      "--threads", "1", "--json", out)
    assert done.returncode == 0, done.stderr
    assert "kernel" in done.stdout.splitlines()[0]                   # the BLAS kernel in use
    assert "GEMM (1024³)" in done.stdout and "conv forward+backward GFLOP/s" in done.stdout
    report = json.loads(out.read_text())
    assert report["threads"] == 1 and report["blas_threads"] == 1 and report["gemm_gflops"] > 0
    assert report["reuse_freed_memory"] is GLIBC and done.stdout.splitlines()[0].endswith(
        "malloc: freed memory kept for reuse" if GLIBC else "malloc: system settings")
    assert list(report["cases"]) == ["xor", "lenet5-64"]
    lenet = report["cases"]["lenet5-64"]
    assert set(lenet["seconds"]) == {"nnlayers", "PyTorch"} and lenet["ratios"]["PyTorch"] > 0
    convs = [row for row in lenet["layers"] if row["module"].startswith("Conv2D")]
    assert len(convs) == 2 and all(row["gflops"] > 0 for row in convs)
    assert all(row["forward_s"] > 0 and row["backward_s"] > 0 for row in lenet["layers"])


def test_two_threads_pause_before_every_timed_block(monkeypatch, load_bench):
    # At two threads one framework's spinning thread pool would slow the next candidate down.
    bench = load_bench("--threads", "2")
    events = []
    monkeypatch.setattr(bench.time, "sleep", lambda seconds: events.append(("pause", seconds)))

    def candidate(name):
        return lambda: (lambda: events.append(name))
    bench.measure([("a", candidate("a")), ("b", candidate("b"))], repeats=2, block_seconds=0.0)
    timed = events[events.index(("pause", 0.5)):]     # after the warm-ups, which need no pause
    assert timed == [("pause", 0.5), "a", ("pause", 0.5), "b"] * 2
    assert bench.SETTLE_SECONDS == 0.5 and bench.THREADS == "2"


def test_wide_nets_are_also_timed_with_winograd(load_bench):
    import nnlayers as nl
    bench = load_bench()
    assert [name for name, _ in bench.net_candidates("resnet", 4)] == ["nnlayers", "PyTorch", "Winograd"]
    assert [name for name, _ in bench.net_candidates("lenet5", 4)] == ["nnlayers", "PyTorch"]
    for build, expected in ((bench.resnet_nnlayers, ["gemm"] + ["winograd"] * 4),
                            (bench.vgg_nnlayers, ["gemm"] + ["winograd"] * 3)):
        model = build("winograd")
        assert [m.algorithm for _, m in model.named_modules() if isinstance(m, nl.Conv2D)] == expected
        assert all(m.algorithm == "gemm" for _, m in build().named_modules() if isinstance(m, nl.Conv2D))
    step = dict(bench.net_candidates("vgg", 4))["Winograd"]()
    step()                                            # a whole Adam step of the Winograd net runs


def test_system_malloc_leaves_the_allocator_alone(tmp_path):
    out = tmp_path / "run.json"
    done = run_script("bench.py", "--only", "xor", "--repeats", "1", "--block", "0.01", "--system-malloc",
                      "--json", out)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith("malloc: system settings")
    assert json.loads(out.read_text())["reuse_freed_memory"] is False


def test_torch_reference_trains_the_same_network_and_reports_seconds_per_epoch():
    done = run_script("torch_reference.py", "--epochs", "1", "--threads", "1")
    assert done.returncode == 0, done.stderr
    assert "7200 training images, 800 validation, 2000 test" in done.stdout
    accuracy, per_epoch = re.search(r"test accuracy: (\d\.\d{4}) \(\d+/2000\) after 1 epochs, [\d.]+ s "
                                    r"\(([\d.]+) s per epoch\)", done.stdout).groups()
    assert float(accuracy) > 0.9 and float(per_epoch) > 0       # one epoch of the shipped digits


@pytest.mark.parametrize("flags", [[], ["--system-malloc"]])
def test_memory_children_get_the_same_malloc_choice(monkeypatch, capsys, load_bench, flags):
    import subprocess

    bench = load_bench()
    commands = []

    def run(command, **options):
        commands.append(command)
        return subprocess.CompletedProcess(command, 0, stdout="100.0\n" if len(commands) == 1 else "50.0\n")

    monkeypatch.setattr(bench.subprocess, "run", run)
    growth = bench.memory_report("vgg", 128, 5, flags)
    assert growth == {"nnlayers": 100.0, "PyTorch": 50.0}
    assert len(commands) == 2 and all(("--system-malloc" in command) == bool(flags) for command in commands)
    printed = capsys.readouterr().out
    assert ("malloc: system settings" if flags else "malloc: freed memory kept for reuse") in printed
    assert "nnlayers / PyTorch: 2.00" in printed


def test_blas_threads_may_differ_from_the_frameworks_threads(load_bench):
    # Read before numpy loads: BLAS sizes its thread pool then (numpy is already loaded here, so
    # the environment, which bench.py sets for the processes it starts and for a fresh run, is checked).
    import os

    bench = load_bench("--threads", "2", "--blas-threads=1")
    assert (bench.THREADS, bench.BLAS_THREADS, os.environ["OPENBLAS_NUM_THREADS"]) == ("2", "1", "1")
    bench = load_bench("--threads", "2")
    assert (bench.THREADS, bench.BLAS_THREADS, os.environ["OPENBLAS_NUM_THREADS"]) == ("2", "2", "2")


def test_single_convolutions_against_pytorch_and_the_products_alone(tmp_path):
    out = tmp_path / "convs.json"
    done = run_script("bench.py", "--convs", "--repeats", "1", "--block", "0.01", "--json", out)
    assert done.returncode == 0, done.stderr
    assert "Single 3×3 convolutions" in done.stdout and "16 → 32, 14×14" in done.stdout
    report = json.loads(out.read_text())
    assert report["cases"] == {}                      # only the convolutions
    convs = report["convs"]
    assert list(convs) == ["64-64-16", "32-64-16", "32-32-32", "16-32-14", "1-16-28"]
    # 2·N·F·K·P per product: Z, δW and δX; the first layer (C = 1) takes data and skips δX.
    assert convs["64-64-16"]["flops"] == 2 * 64 * 64 * (64 * 9) * (16 * 16) * 3
    assert convs["1-16-28"]["flops"] == 2 * 64 * 16 * 9 * (28 * 28) * 2
    assert all(set(case["seconds"]) == {"nnlayers", "PyTorch", "products"} and min(case["seconds"].values()) > 0
               for case in convs.values())
