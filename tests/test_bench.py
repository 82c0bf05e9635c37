"""The benchmarks package (benchmarks/, run as scripts/bench.py or python -m benchmarks): a short run writes
the table as stamped JSON, with per-layer times and conv rates; the numpy peers compute what Conv2D
computes; docs/speed.rst's speed tables are what benchmarks.report renders from the committed runs. And the
PyTorch companion for whole epochs, scripts/torch_reference.py. No test runs a real benchmark: tiny
sizes, one round."""
import json
import re

import numpy as np
import pytest

from tests.helpers import GLIBC, ROOT, require, run_script

try:
    import torch
except ImportError:
    torch = None


@pytest.fixture
def needs_torch():
    require(torch is not None, "PyTorch is not installed (pip install torch==2.13.0); the benchmark compares with it")


@pytest.fixture
def load_bench(monkeypatch, needs_torch):
    """``load_bench(*arguments)``: the benchmarks package with its thread counts read from those
    command-line arguments, as ``python -m benchmarks`` reads them (its ``main`` not run), returned as
    a namespace of its modules. What that sets, the BLAS threads' environment, the package's thread
    counts and PyTorch's thread count, comes back after the test."""
    import types

    from benchmarks import cli, full, memory, models, steps, threads, timing

    count = torch.get_num_threads()
    for name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")                 # restored afterwards, whatever configure sets
    monkeypatch.setattr(threads, "THREADS", threads.THREADS)
    monkeypatch.setattr(threads, "BLAS_THREADS", threads.BLAS_THREADS)

    def load(*arguments):
        threads.configure(list(arguments))
        return types.SimpleNamespace(cli=cli, full=full, memory=memory, models=models, steps=steps,
                                     threads=threads, timing=timing)
    yield load
    torch.set_num_threads(count)


def test_short_run_reports_ratios_layers_and_conv_rates(tmp_path, needs_torch):
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
    # Stamped: where, with what and when, so that a table rendered from it says so.
    stamp = report["stamp"]
    assert stamp["threads"] == 1 and stamp["cores"] >= 1 and stamp["cpu"] and stamp["numpy"] == np.__version__
    assert stamp["torch"] == torch.__version__ and stamp["date"].startswith("20") and "kernel" in stamp
    assert "openblas_coretype" in stamp and stamp["reuse_freed_memory"] is GLIBC
    from benchmarks.report import render_rst
    tables = render_rst([out])
    assert "``run.json``: 1 thread" in tables and re.search(r"^lenet5-64 +\d+\.\d\d \([\d.]+ ms\)", tables, re.M)
    assert re.search(r"^xor, nnlayers / lean numpy +\d+\.\d\d \([\d.]+ µs\)", tables, re.M)


def test_two_threads_pause_before_every_timed_block(monkeypatch, load_bench):
    # At two threads one framework's spinning thread pool would slow the next candidate down.
    bench = load_bench("--threads", "2")
    events = []
    monkeypatch.setattr(bench.timing.time, "sleep", lambda seconds: events.append(("pause", seconds)))

    def candidate(name):
        return lambda: (lambda: events.append(name))
    bench.timing.measure([("a", candidate("a")), ("b", candidate("b"))], repeats=2, block_seconds=0.0)
    timed = events[events.index(("pause", 0.5)):]     # after the warm-ups, which need no pause
    assert timed == [("pause", 0.5), "a", ("pause", 0.5), "b"] * 2
    assert bench.threads.SETTLE_SECONDS == 0.5 and bench.threads.THREADS == "2"
    assert load_bench("--threads", "1").threads.settle_seconds() == 0.0


def test_wide_nets_are_also_timed_with_winograd(load_bench):
    import nnlayers as nl
    bench = load_bench()
    assert [name for name, _ in bench.steps.net_candidates("resnet", 4)] == ["nnlayers", "PyTorch", "Winograd"]
    assert [name for name, _ in bench.steps.net_candidates("lenet5", 4)] == ["nnlayers", "PyTorch"]
    for build, expected in ((bench.models.resnet_nnlayers, ["gemm"] + ["winograd"] * 4),
                            (bench.models.vgg_nnlayers, ["gemm"] + ["winograd"] * 3)):
        model = build("winograd")
        assert [m.algorithm for _, m in model.named_modules() if isinstance(m, nl.Conv2D)] == expected
        assert all(m.algorithm == "gemm" for _, m in build().named_modules() if isinstance(m, nl.Conv2D))
    step = dict(bench.steps.net_candidates("vgg", 4))["Winograd"]()
    step()                                            # a whole Adam step of the Winograd net runs


def test_system_malloc_leaves_the_allocator_alone(tmp_path, needs_torch):
    # Run as python -m benchmarks from the top folder, which is the same command line as scripts/bench.py.
    import os
    import subprocess
    import sys

    out = tmp_path / "run.json"
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--only", "xor", "--repeats", "1", "--block", "0.01",
                           "--system-malloc", "--json", str(out)], capture_output=True, text=True, cwd=ROOT, env=env,
                          timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[0].endswith("malloc: system settings")
    report = json.loads(out.read_text())
    assert report["reuse_freed_memory"] is False and report["stamp"]["reuse_freed_memory"] is False
    assert list(report["cases"]) == ["xor"]


def test_torch_reference_trains_the_same_network_and_reports_seconds_per_epoch(needs_torch):
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

    monkeypatch.setattr(bench.memory.subprocess, "run", run)
    growth = bench.memory.memory_report("vgg", 128, 5, flags)
    assert growth == {"nnlayers": 100.0, "PyTorch": 50.0}
    assert len(commands) == 2 and all(("--system-malloc" in command) == bool(flags) for command in commands)
    assert all(command[1:3] == ["-m", "benchmarks"] for command in commands)      # the package, run afresh
    printed = capsys.readouterr().out
    assert ("malloc: system settings" if flags else "malloc: freed memory kept for reuse") in printed
    assert "nnlayers / PyTorch: 2.00" in printed


def test_blas_threads_may_differ_from_the_frameworks_threads(load_bench):
    # Read before numpy loads: BLAS sizes its thread pool then (numpy is already loaded here, so
    # the environment, which bench.py sets for the processes it starts and for a fresh run, is checked).
    import os

    bench = load_bench("--threads", "2", "--blas-threads=1")
    threads = bench.threads
    assert (threads.THREADS, threads.BLAS_THREADS, os.environ["OPENBLAS_NUM_THREADS"]) == ("2", "1", "1")
    bench = load_bench("--threads", "2")
    assert (threads.THREADS, threads.BLAS_THREADS, os.environ["OPENBLAS_NUM_THREADS"]) == ("2", "2", "2")
    bench = load_bench("--threads", "2", "--threads", "1")           # the last one, as argparse reads it
    assert (threads.THREADS, threads.BLAS_THREADS) == ("1", "1")


def test_single_convolutions_against_pytorch_and_the_products_alone(tmp_path, needs_torch):
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


def test_benchmarks_are_not_installed_with_the_library():
    import configparser

    from setuptools import find_packages
    config = configparser.ConfigParser()
    config.read(ROOT / "setup.cfg")
    include = [name.strip() for name in config["options.packages.find"]["include"].split(",")]
    packages = find_packages(str(ROOT), include=include)
    assert "nnlayers" in packages and not any(name.startswith("benchmarks") for name in packages)


# -- the paired models ---------------------------------------------------------------------------

def test_nnlayers_nets_come_from_the_examples_and_their_torch_twins_mirror_them(needs_torch):
    import nnlayers as nl
    from benchmarks import models
    from nnlayers.examples import mnist

    assert repr(models.vgg_nnlayers()) == repr(mnist.vgg(3, 32, 10))
    assert repr(models.lenet5_nnlayers()) == repr(mnist.lenet5())
    assert repr(models.fmnist_cnn_nnlayers()) == repr(mnist.build("cnn"))
    resnet = models.resnet_nnlayers()
    assert sum(isinstance(m, nl.Residual) for m in resnet.modules()) == 2
    pairs = [(models.mlp_nnlayers, models.mlp_torch, (784,)), (models.lenet_nnlayers, models.lenet_torch, (1, 28, 28))]
    pairs += [(ours, theirs, shape) for _, ours, theirs, shape in models.NETS.values()]
    for ours, theirs, shape in pairs:
        model, twin = ours(), theirs()
        assert sum(p.data.size for p in model.parameters()) == sum(p.numel() for p in twin.parameters()), ours
        X = np.zeros((2, *shape), dtype=np.float32)
        assert model.forward(X).shape == tuple(twin(torch.from_numpy(X)).shape), ours


def test_lenet5_and_vgg_examples_train_in_float64():
    import nnlayers as nl
    from nnlayers.examples import mnist

    rng = np.random.default_rng(0)
    lenet = mnist.lenet5(1, 16, 3, rng=0, dtype=np.float64)
    assert [m.kernel_size for m in lenet.modules() if isinstance(m, nl.Conv2D)] == [(5, 5), (5, 5)]
    assert lenet.forward(rng.random((2, 1, 16, 16))).shape == (2, 3)
    vgg = mnist.vgg(2, 4, 3, widths=(2,), hidden=4, rng=0, dtype=np.float64)
    assert [m.input_grad for m in vgg.modules() if isinstance(m, nl.Conv2D)] == [False, True]
    assert nl.gradcheck(vgg, rng.random((2, 2, 4, 4))).passed
    with pytest.raises(ValueError, match="divisible by 4"):
        mnist.vgg(3, 30)
    with pytest.raises(ValueError, match="at least 12×12"):
        mnist.lenet5(1, 8)


# -- the numpy peers -----------------------------------------------------------------------------

@pytest.mark.parametrize("C, F, kernel, stride, padding, bias, input_grad, H, W", [
    (3, 4, 3, 1, 1, True, True, 7, 6), (2, 5, 5, 2, 2, False, True, 9, 8), (1, 3, 3, 2, 0, True, False, 6, 7),
    (4, 2, (3, 2), (1, 2), (0, 1), True, True, 5, 7)])
def test_numpy_peers_compute_what_conv2d_computes(C, F, kernel, stride, padding, bias, input_grad, H, W):
    import nnlayers as nl
    from benchmarks.peers import PEERS, peer_of

    rng = np.random.default_rng(0)
    conv = nl.Conv2D(C, F, kernel, stride, padding, bias=bias, rng=0, input_grad=input_grad)
    if bias:
        conv.b.data[...] = rng.normal(size=F)
    X = rng.normal(size=(2, C, H, W))
    Z = conv.forward(X)
    dZ = rng.normal(size=Z.shape)
    dX = conv.backward(dZ)
    for name, design in PEERS.items():
        peer = peer_of(conv, design)
        np.testing.assert_allclose(peer.forward(X), Z, rtol=0, atol=1e-10, err_msg=name)
        dX_peer = peer.backward(dZ)
        assert (dX_peer is None) == (not input_grad)
        if input_grad:
            np.testing.assert_allclose(dX_peer, dX, rtol=0, atol=1e-10, err_msg=name)
        np.testing.assert_allclose(peer.dW, conv.W.grad, rtol=0, atol=1e-10, err_msg=name)
        if bias:
            np.testing.assert_allclose(peer.db, conv.b.grad, rtol=0, atol=1e-10, err_msg=name)


def test_peers_are_timed_on_every_convolution_of_the_reference_nets():
    from benchmarks import peers
    rows = peers.reference_convolutions()
    # Fashion-MNIST CNN 2, LeNet-5 2, VGG-like 4, ResNet 2 (its four block convolutions are alike).
    assert [row["net"] for row in rows] == ["fmnist-cnn"] * 2 + ["lenet5"] * 2 + ["vgg"] * 4 + ["resnet"] * 2
    assert [row["input_grad"] for row in rows] == [False, True] * 2 + [False, True, True, True, False, True]
    assert [peers.case_key(row) for row in rows][5:8] == ["vgg 32→32 3×3 32×32", "vgg 32→64 3×3 16×16",
                                                          "vgg 64→64 3×3 16×16"]
    names = [name for name, _ in peers.peer_candidates(rows[3], 2)]
    assert names == ["nnlayers"] + ["PyTorch"] * (torch is not None) + list(peers.PEERS)


def test_peers_run_writes_a_table_the_report_renders(tmp_path):
    from benchmarks.report import render_rst
    out = tmp_path / "peers.json"
    done = run_script("bench.py", "--peers", "--peers-batch", "2", "--repeats", "1", "--block", "0", "--json", out)
    assert done.returncode == 0, done.stderr
    report = json.loads(out.read_text())
    assert report["cases"] == {} and len(report["peers"]) == 10 and report["stamp"]["threads"] == 1
    assert all(set(case["seconds"]) >= {"nnlayers", "im2col (CS231n)", "tensordot (Chainer)"} and case["batch"] == 2
               for case in report["peers"].values())
    assert "im2col (CS231n)" in render_rst([out]) and "lenet5 6→16 5×5 14×14" in render_rst([out])


# -- numbers in one place: docs/speed.rst's tables, rendered from committed JSON -------------------

def test_full_runs_both_kernels_only_where_one_is_pinned():
    from benchmarks.full import configurations

    stock = configurations({"PATH": "/bin"})
    assert [threads for threads, _ in stock] == ["1", "2"]
    pinned = configurations({"OPENBLAS_CORETYPE": "Haswell", "OPENBLAS_L2_SIZE": "1"})
    assert [(threads, env.get("OPENBLAS_CORETYPE")) for threads, env in pinned] == [
        ("1", None), ("2", None), ("1", "Haswell"), ("2", "Haswell")]
    assert "OPENBLAS_L2_SIZE" not in pinned[0][1]


def _stamp(**changes):
    return {"date": "2026-12-06T03:00:00+00:00", "cpu": "Test CPU", "cores": 2, "numpy": "2.4.6", "torch": "2.13.0",
            "kernel": "Haswell", "openblas_coretype": "Haswell", "threads": 1, "blas_threads": 1,
            "nnlayers_threads": 1, **changes}


def test_report_renders_every_section_as_rst_tables(tmp_path):
    from benchmarks import report

    steps = {"stamp": _stamp(), "cases": {"vgg-64": {"seconds": {"nnlayers": 0.1, "PyTorch": 0.08, "Winograd": 0.09}}}}
    full = {"kind": "full", "runs": {"1": steps, "2": {"stamp": _stamp(threads=2, blas_threads=2), "cases": {
        "vgg-64": {"seconds": {"nnlayers": 0.06, "PyTorch": 0.04}}}}}}
    peers = {"stamp": _stamp(), "peers": {"vgg 32→32 3×3 32×32": {"batch": 64, "seconds": {
        "nnlayers": 0.02, "PyTorch": 0.01, "im2col (CS231n)": 0.05, "tensordot (Chainer)": 0.04}}}}
    convs = {"stamp": _stamp(), "gemm_gflops": 120.0, "cases": {}, "convs": {"64-64-16": {
        "seconds": {"nnlayers": 0.03, "PyTorch": 0.02, "products": 0.025}, "flops": 3.6e9}}}
    memory = {"stamp": _stamp(), "memory": {"case": "VGG-like, batch 128", "steps": 5,
                                            "growth_mib": {"nnlayers": 143.0, "PyTorch": 178.0}}}
    gpu = {"stamp": _stamp(), "gpu": {"device": "Test GPU", "cases": {"vgg-128": {
        "nnlayers": 0.004, "PyTorch": 0.002, "ratio": 2.0}}}}
    paths = []
    for name, data in (("a-full.json", full), ("b-peers.json", peers), ("c-convs.json", convs),
                       ("d-memory.json", memory), ("e-gpu.json", gpu)):
        paths.append(tmp_path / name)
        paths[-1].write_text(json.dumps(data))
    tables = report.render_rst(paths)
    lines = tables.splitlines()
    assert "vgg-64, Winograd" in tables and "1.25 (100.00 ms)" in tables and "1.50 (60.00 ms)" in tables
    header = next(line for line in lines if line.startswith("case (nnlayers / PyTorch)"))
    assert "1 thread, Haswell kernel" in header and "2 threads, Haswell kernel" in header
    assert "``a-full.json``: 1 thread, Haswell kernel (OPENBLAS_CORETYPE=Haswell); Test CPU, 2 cores" in tables
    assert re.search(r"vgg 32→32 3×3 32×32 +20\.00 ms +10\.00 ms \(0\.50\) +50\.00 ms \(2\.50\) "
                     r"+40\.00 ms \(2\.00\)", tables)
    assert re.search(r"64 → 64, 16×16 +30\.00 ms \(120\) +20\.00 ms \(180\) +25\.00 ms \(144\)", tables)
    assert re.search(r"nnlayers +143\.0", tables)
    assert "On a GPU (Test GPU)" in tables and re.search(r"vgg-128 +4\.00 ms +2\.00 ms +2\.00", tables)
    assert all(len(rule.split()) >= 2 for rule in lines if rule.startswith("="))    # simple tables' rules
    # --update puts them between the markers, and only there.
    readme = tmp_path / "README.rst"
    readme.write_text(f"Speed\n-----\n\nprose\n\n{report.BEGIN}\n\nold\n\n{report.END}\n\nLayout\n")
    assert report.main([str(path) for path in paths] + ["--rst", "--update", str(readme)]) == 0
    text = readme.read_text()
    assert report.speed_block(text).strip() == tables.strip() and text.endswith(f"{report.END}\n\nLayout\n")
    assert "old" not in text and text.startswith("Speed\n-----\n\nprose\n\n")


SPEED = ROOT / "docs" / "speed.rst"


def _speed_block():
    from benchmarks import report
    return report.speed_block(SPEED.read_text(encoding="utf-8"))


def test_speed_tables_are_what_the_committed_runs_render():
    from benchmarks import report

    block = _speed_block()                   # the markers are there in any case
    paths = sorted(report.RESULTS.glob("*.json"), key=lambda path: path.name)
    if not paths:
        assert not block.strip(), "docs/speed.rst's tables must come from committed runs in benchmarks/results/"
        pytest.skip("benchmarks/results/ holds no committed --json run yet: docs/speed.rst's tables are empty until "
                    "the runs are made on a quiet machine (python -m benchmarks.report benchmarks/results/*.json "
                    "--rst --update docs/speed.rst)")
    assert block.strip() == report.render_rst(paths).strip(), (
        "docs/speed.rst's tables differ from the committed runs: python -m benchmarks.report "
        "benchmarks/results/*.json --rst --update docs/speed.rst")


def test_speed_tables_live_on_the_speed_page_only():
    from benchmarks import report

    assert f"--update {SPEED.relative_to(ROOT).as_posix()}" in report.BEGIN
    for page in [ROOT / "README.rst", *sorted((ROOT / "docs").glob("*.rst"))]:
        if page != SPEED:
            assert report.BEGIN not in page.read_text(encoding="utf-8"), f"{page.name} holds speed tables"


def test_architecture_page_describes_the_benchmarks_package():
    layout = (ROOT / "docs" / "architecture.rst").read_text(encoding="utf-8")
    for name in ("benchmarks/", "nnlayers/cli.py", "nnlayers/atomic.py", "nnlayers/_args.py", "peers.py", "results/"):
        assert name in layout, name
    speed = SPEED.read_text(encoding="utf-8")
    assert "python -m benchmarks --peers" in speed and "python -m benchmarks.report" in speed


# -- the sequence and attention chapters' cases (benchmarks/sequences.py) ------------------------------

def _closure_value(step, kind):
    """The model a step function closes over: of those of type ``kind``, the one with the most parameters
    (not the loss)."""
    modules = [cell.cell_contents for cell in step.__closure__ if isinstance(cell.cell_contents, kind)]
    return max(modules, key=lambda module: len(list(module.parameters())))


@pytest.mark.parametrize("key", ["char-lstm", "attention-block"])
def test_sequence_cases_take_one_training_step(key):
    import nnlayers as nl
    from benchmarks import steps

    title, candidates = steps.CASES[key]
    assert [name for name, _ in candidates] == ["nnlayers", "PyTorch"] and "float32" in title
    step = dict(candidates)["nnlayers"]()
    model = _closure_value(step, nl.Module)
    before = [p.data.copy() for p in model.parameters()]
    step()
    assert all(p.data.dtype == np.float32 for p in model.parameters())
    assert all(not np.array_equal(p.data, b) for p, b in zip(model.parameters(), before))   # Adam moved each one
    assert all(not p.grad.any() for p in model.parameters())                                  # zero_grad
    if torch is None:
        return
    step = dict(candidates)["PyTorch"]()
    twin = _closure_value(step, torch.nn.Module)
    before = [p.detach().clone() for p in twin.parameters()]
    step()
    assert all(not torch.equal(p.detach(), b) for p, b in zip(twin.parameters(), before))
    assert sum(p.numel() for p in twin.parameters()) == sum(p.data.size for p in model.parameters())


def test_sequence_twins_compute_what_ours_compute(needs_torch):
    """With our weights copied in (float64), each PyTorch twin gives our outputs: the same model timed twice."""
    import nnlayers as nl
    from benchmarks import sequences
    from nnlayers.examples import text

    def tensor(array):
        return torch.tensor(np.asarray(array), dtype=torch.float64)

    rng = np.random.default_rng(0)
    ours = text.char_model("lstm", 11, embed=4, hidden=6, rng=0, dtype=np.float64)
    for p in ours.parameters():
        p.data += rng.normal(scale=0.1, size=p.shape)
    twin = sequences.CharLSTMTorch(11, 4, 6).double()
    P = dict(ours.named_parameters())
    with torch.no_grad():
        for name, value in {"embedding.weight": P["0.W"].data, "lstm.weight_ih_l0": P["1.W_x"].data.T,
                            "lstm.weight_hh_l0": P["1.W_h"].data.T, "lstm.bias_ih_l0": P["1.b_x"].data,
                            "lstm.bias_hh_l0": P["1.b_h"].data, "output.weight": P["2.W"].data.T,
                            "output.bias": P["3.b"].data[0]}.items():
            dict(twin.named_parameters())[name].copy_(tensor(value))
    ids = rng.integers(0, 11, size=(3, 7))
    np.testing.assert_allclose(ours.forward(ids), twin(torch.from_numpy(ids)).detach().numpy(), rtol=1e-10,
                               atol=1e-12)

    block = nl.TransformerBlock(8, 2, causal=True, rng=0)
    for p in block.parameters():
        p.data += rng.normal(scale=0.1, size=p.shape)
    twin = sequences.TransformerBlockTorch(8, 2, 5).double()
    P = {name: p.data for name, p in block.named_parameters()}
    a, m = "attention.block.", "mlp.block."
    with torch.no_grad():
        for name, value in {
                "norm1.weight": P[a + "0.gamma"], "norm1.bias": P[a + "0.beta"],
                "attention.in_proj_weight": np.concatenate([P[a + f"1.W_{x}"].T for x in "qkv"]),
                "attention.in_proj_bias": np.concatenate([P[a + f"1.b_{x}"] for x in "qkv"]),
                "attention.out_proj.weight": P[a + "1.W_o"].T, "attention.out_proj.bias": P[a + "1.b_o"],
                "norm2.weight": P[m + "0.gamma"], "norm2.bias": P[m + "0.beta"],
                "mlp.0.weight": P[m + "1.W"].T, "mlp.0.bias": P[m + "2.b"][0],
                "mlp.2.weight": P[m + "4.W"].T, "mlp.2.bias": P[m + "5.b"][0]}.items():
            dict(twin.named_parameters())[name].copy_(tensor(value))
    X = rng.normal(size=(2, 5, 8))
    np.testing.assert_allclose(block.forward(X), twin(tensor(X)).detach().numpy(), rtol=1e-10, atol=1e-12)


def test_text_reference_writes_its_curve(tmp_path, needs_torch):
    """benchmarks.text_reference: two steps, evaluated on the first validation windows only (--val-limit)."""
    import json

    from benchmarks import text_reference
    from nnlayers.examples import text

    threads = torch.get_num_threads()
    log = tmp_path / "reference.json"
    try:
        assert text_reference.main(["--max-steps", "2", "--eval-every", "1", "--threads", "1", "--val-limit", "32",
                                    "--log", str(log), "--quiet"]) == 0
    finally:
        torch.set_num_threads(threads)
    record = json.loads(log.read_text())
    assert record["framework"] == "PyTorch " + torch.__version__ and record["threads"] == 1
    assert (record["model"], record["data"], record["seed"], record["batch_size"], record["seq_len"],
            record["embed"], record["hidden"], record["lr"], record["clip"], record["dtype"], record["val_rows"]) == \
        ("lstm", "austen", 0, 32, 64, 64, 256, 2e-3, 1.0, "float32", 32)
    curve = record["curve"]
    assert [point["step"] for point in curve] == [0, 1, 2] and [point["epoch"] for point in curve] == [0, 1, 1]
    assert curve[0]["loss"] is None and all(point["loss"] > 0 for point in curve[1:])
    assert abs(curve[0]["val_loss"] - np.log(len(text.load_corpus("austen").vocab))) < 0.3     # about uniform
    assert curve[2]["val_loss"] < curve[0]["val_loss"]
    assert [point["seconds"] for point in curve] == sorted(point["seconds"] for point in curve)
