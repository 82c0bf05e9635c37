"""nl.distributed: the MPI cases run under ``mpiexec -n 2`` in a subprocess (tests/distributed_worker.py);
the rest in this process (one rank: MPI.COMM_WORLD of a plain python process)."""
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnlayers as nl
from tests.helpers import ROOT, importable, require

HAVE_MPI4PY = importable("mpi4py")
WORKER = Path(__file__).resolve().parent / "distributed_worker.py"


def require_mpi():
    require(HAVE_MPI4PY and nl.distributed.mpiexec() is not None,
            "mpi4py or mpiexec missing (pip install -e '.[mpi]': mpi4py and the mpich wheel)")


def run_ranks(*args, ranks=2, timeout=120):
    require_mpi()
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT)] + [os.environ.get("PYTHONPATH", "")]).rstrip(
        os.pathsep), OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1")
    return subprocess.run([nl.distributed.mpiexec(), "-n", str(ranks), sys.executable, str(WORKER), *map(str, args)],
                          capture_output=True, text=True, timeout=timeout, env=env, cwd=ROOT)


# -- under mpiexec -n 2 ---------------------------------------------------------------------------

def test_two_ranks_take_the_whole_batch_step():
    """SGD-momentum and Adam, with and without synchronised BatchNorm: after every step each rank's
    weights equal one process's on the whole global batch (float64, 1e-12), equal and unequal shards,
    and both ranks hold identical weights; per-rank BatchNorm does not match (the control)."""
    done = run_ranks("steps")
    assert done.returncode == 0, done.stdout + done.stderr
    for kind in ("sgd batch_norm=False", "adam batch_norm=False", "sgd batch_norm=True", "adam batch_norm=True"):
        assert f"ok {kind}: 5 steps equal" in done.stdout
    assert "ok per-rank BatchNorm differs" in done.stdout


def test_fit_on_two_ranks_records_the_one_process_history(tmp_path):
    """Trainer.fit with DistributedCallback: History (loss, accuracy, validation, lr, early stop) equal to
    one process's, the same on both ranks (and with synchronised BatchNorm); distributed.save writes the
    one file, which loads."""
    path = tmp_path / "weights.npz"
    done = run_ranks("fit", path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok fit: 3 epochs" in done.stdout                  # patience 2 stopped both ranks at epoch 3
    assert "ok fit with synchronised BatchNorm" in done.stdout
    assert "ok fit with per-rank BatchNorm" in done.stdout
    assert "ok fit with a sum loss" in done.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["weights.npz"]   # no temporary file left


def test_clipping_on_two_ranks_clips_the_averaged_gradient():
    """Trainer(clip_grad_norm=…) with DistributedOptimizer: the clipping callback averages the ranks'
    gradients first (the step then does not average again), so the run equals one process's; Perplexity
    passed before DistributedCallback still reads the whole job's loss."""
    done = run_ranks("clip")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok clip: 6 of 6 steps clipped, History and weights equal" in done.stdout


def test_a_loss_diverging_on_one_rank_stops_every_rank_alike():
    """The callback is the fit's divergence guard on the ranks' summed loss: NaN on rank 1 alone stops
    both ranks at the same step with TrainingDivergedError and the same weights put back."""
    done = run_ranks("diverge")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "ok diverge" in done.stdout


def test_a_failing_rank_ends_the_job_with_its_error():
    """Rank 1 raises while rank 0 waits in the gradient Allreduce: abort_on_error ends both, quickly."""
    done = run_ranks("fail", timeout=60)
    assert done.returncode != 0
    assert "RuntimeError: rank 1 fails on purpose" in done.stderr
    assert "rank 1 of 2 failed; aborting every rank" in done.stderr
    assert "should never" not in done.stdout


def test_train_mnist_under_mpiexec_trains_on_two_ranks(tmp_path):
    """scripts/train_mnist.py under mpiexec -n 2: distributed, one report (rank 0's), one whole-model file."""
    require_mpi()
    path = tmp_path / "cnn.npz"
    done = subprocess.run([nl.distributed.mpiexec(), "-n", "2", sys.executable, str(ROOT / "scripts" / "train_mnist.py"),
                           "--model", "cnn", "--limit", "300", "--epochs", "1", "--quiet", "--save", str(path)],
                          capture_output=True, text=True, timeout=120, cwd=tmp_path,
                          env=dict(os.environ, PYTHONPATH=str(ROOT), MPLBACKEND="Agg"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.count("test accuracy:") == 1 and done.stdout.count("saved the model to") == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cnn.npz"]
    model = nl.load_model(path)                                       # the whole model, rebuilt
    nl.load(nl.examples.mnist.build("cnn"), path)                     # and its weights for the builder's net


def test_benchmark_ranks_axis_smoke(tmp_path):
    """python -m benchmarks --ranks 2: one tiny case in 1 process and 2 ranks, a table and a JSON entry."""
    require_mpi()
    path = tmp_path / "ranks.json"
    done = subprocess.run([sys.executable, "-m", "benchmarks", "--ranks", "2", "--only", "fmnist-cnn-8",
                           "--repeats", "1", "--block", "0", "--json", str(path)], capture_output=True, text=True,
                          timeout=120, cwd=ROOT, env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "fmnist-cnn-8" in done.stdout and "2 ranks" in done.stdout
    case = __import__("json").loads(path.read_text())["rank_cases"]["fmnist-cnn-8"]
    assert set(case["seconds"]) == {"1", "2"} and case["speedup"] > 0


# -- in this process --------------------------------------------------------------------------------

def test_import_nnlayers_does_not_import_mpi4py():
    code = "import sys, nnlayers as nl; nl.distributed.shard; print('mpi4py' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                          env=dict(os.environ, PYTHONPATH=str(ROOT)))
    assert done.stdout.strip() == "False", done.stderr


@pytest.mark.parametrize("rows, ranks", [(8, 2), (7, 2), (5, 3), (16, 4), (3, 3)])
def test_shards_cover_the_batch_in_order(rows, ranks):
    parts = [nl.distributed.shard(rows, r, ranks) for r in range(ranks)]
    assert [parts[0].start] + [p.stop for p in parts] == sorted(set([0] + [p.stop for p in parts]))
    assert parts[0].start == 0 and parts[-1].stop == rows
    sizes = [p.stop - p.start for p in parts]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


def test_launched_by_mpi_reads_the_launchers_variables(monkeypatch):
    for name in nl.distributed.parallel.LAUNCHER_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert not nl.distributed.launched_by_mpi()
    monkeypatch.setenv("OMPI_COMM_WORLD_RANK", "0")
    assert nl.distributed.launched_by_mpi()


def test_distributed_optimizer_passes_everything_through():
    """One rank: the step is the wrapped optimizer's; lr, schedules, state and settings pass through."""
    require_mpi()
    model = nl.Sequential(nl.Linear(3, 2, rng=0), nl.Bias(2))
    twin = nl.Sequential(nl.Linear(3, 2, rng=0), nl.Bias(2))
    optimizer = nl.distributed.DistributedOptimizer(nl.SGD(model.parameters(), lr=0.1, momentum=0.9))
    plain = nl.SGD(twin.parameters(), lr=0.1, momentum=0.9)
    schedule = nl.schedules.StepLR(optimizer, step_size=1, gamma=0.5)
    X, Y = np.random.default_rng(0).standard_normal((4, 3)), np.random.default_rng(1).standard_normal((4, 2))
    for net, opt in ((model, optimizer), (twin, plain)):
        loss = nl.EuclideanLoss()
        loss.forward(net.forward(X), Y)
        net.backward(loss.backward())
        opt.step()
    for p, q in zip(model.parameters(), twin.parameters()):
        np.testing.assert_array_equal(p.data, q.data)
    schedule.step()
    assert optimizer.lr == optimizer.optimizer.lr == 0.05 and optimizer.initial_lr == 0.1
    assert optimizer.steps == 1 and optimizer.parameters == model.parameters()
    optimizer.momentum = 0.5
    assert optimizer.optimizer.momentum == 0.5
    state = optimizer.state_dict()
    assert state["steps"] == 1 and [name for name, _ in optimizer.state_arrays()] == ["velocity"]
    optimizer.load_state_dict(state)
    with pytest.raises(ValueError, match="reduction"):
        optimizer.reduction = "max"
    with pytest.raises(TypeError, match="nl.Optimizer"):
        nl.distributed.DistributedOptimizer(object())


def test_the_step_averages_once_even_when_a_callback_averaged_first():
    """GradientClipping calls allreduce_gradients before the step; the step then does not average again
    (one Allreduce per step, not two: a sum reduction would double), until zero_grad or the step."""
    require_mpi()

    class CountingComm:                                  # one rank: the in-place sum leaves the buffer as it is
        calls = 0

        def Allreduce(self, send, receive):
            CountingComm.calls += 1

        def Get_size(self):
            return 1

    model = nl.Sequential(nl.Linear(3, 2, rng=0))
    optimizer = nl.distributed.DistributedOptimizer(nl.SGD(model.parameters(), lr=0.1), CountingComm())
    optimizer.step()
    assert CountingComm.calls == 1
    optimizer.allreduce_gradients()
    optimizer.step()
    assert CountingComm.calls == 2
    optimizer.allreduce_gradients()
    optimizer.zero_grad()                                # new gradients to come: the next step averages them
    optimizer.step()
    assert CountingComm.calls == 4


def test_distributed_callback_needs_the_distributed_optimizer_and_enough_rows():
    require_mpi()
    model = nl.Sequential(nl.Linear(3, 2, rng=0))
    X, Y = np.ones((5, 3)), np.ones((5, 2))
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="DistributedOptimizer"):
        trainer.fit(X, Y, epochs=1, progress=False, callbacks=[nl.distributed.DistributedCallback()])


def test_sync_batchnorm_on_one_rank_is_batchnorm(rng):
    """sync_batchnorm swaps the class in place; on one rank it computes exactly BatchNorm2d."""
    require_mpi()
    X, dZ = rng.standard_normal((4, 3, 5, 5)), rng.standard_normal((4, 3, 5, 5))
    plain = nl.Sequential(nl.BatchNorm2d(3), nl.Flatten(), nl.BatchNorm1d(75))
    synced = nl.distributed.sync_batchnorm(nl.Sequential(nl.BatchNorm2d(3), nl.Flatten(), nl.BatchNorm1d(75)))
    assert type(synced[0]).__name__ == "SyncBatchNorm2d" and type(synced[2]).__name__ == "SyncBatchNorm1d"
    np.testing.assert_allclose(synced.forward(X), plain.forward(X), rtol=0, atol=1e-12)
    np.testing.assert_allclose(synced.backward(dZ.reshape(4, 75)), plain.backward(dZ.reshape(4, 75)),
                               rtol=0, atol=1e-12)
    for (name, a), (_, b) in zip(synced.state_dict().items(), plain.state_dict().items()):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12, err_msg=name)
    report = nl.gradcheck(synced.train(), X)
    assert report.passed, report


def test_the_data_parallel_page_holds_the_scaling_table():
    text = (ROOT / "docs" / "data-parallel.rst").read_text(encoding="utf-8")
    table = nl.distributed.scaling_table(nl.distributed.step_seconds_from(ROOT / "benchmarks" / "results" /
                                                                          "steps-full.json"))
    assert "\n" + table + "\n" in text


def test_the_scaling_table_takes_its_step_times_from_a_benchmark_run(tmp_path):
    path = tmp_path / "steps.json"
    path.write_text('{"threads": 1, "cases": {"fmnist-cnn-64": {"seconds": {"nnlayers": 0.01}}}}')
    assert nl.distributed.step_seconds_from(path) == {"fmnist-cnn-64": 0.01}
    with pytest.raises(ValueError, match="no step time for vgg-64, resnet-64"):
        nl.distributed.scaling_table(nl.distributed.step_seconds_from(path))


def test_the_cost_model():
    G = 4e6
    assert nl.distributed.allreduce_seconds(G, 2, 1e9) == pytest.approx(G / 1e9)          # 2·(1/2)·G/β
    assert nl.distributed.allreduce_seconds(G, 16, 1e9) == pytest.approx(2 * 15 / 16 * G / 1e9)
    assert nl.distributed.expected_speedup(0.1, 0.0, 4, 1e9) == pytest.approx(4.0)
    assert nl.distributed.gradient_bytes(nl.Sequential(nl.Linear(3, 2, dtype=np.float32))) == 24
