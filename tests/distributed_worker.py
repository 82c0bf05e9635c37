"""Run under ``mpiexec -n 2`` by tests/test_distributed.py: ``python tests/distributed_worker.py CASE [ARG]``.

Each case computes the distributed result and, on every rank, the one-process reference on the
whole global batches, and exits non-zero (through ``abort_on_error``) when they differ.
"""
import sys

import numpy as np

import nnlayers as nl
from nnlayers import distributed as dist
from nnlayers.examples import mnist

TOL = 1e-12
comm = dist.world()
rank, size = comm.Get_rank(), comm.Get_size()


def small_cnn(batch_norm=False, seed=0):
    return mnist.cnn(1, 8, 3, width=3, hidden=0, batch_norm=batch_norm, rng=seed, dtype=np.float64)


def global_batches(rows=(8, 8, 7, 8, 5)):
    """Batches of global rows; 7 and 5 split unequally (4 + 3, 3 + 2): the weighted average is needed."""
    rng = np.random.default_rng(1)
    return [(rng.standard_normal((n, 1, 8, 8)), rng.integers(0, 3, n)) for n in rows]


def flat(model):
    return np.concatenate([p.data.ravel() for p in model.parameters()] +
                          [b.data.ravel().astype(np.float64) for b in model.buffers()])


def check_same_everywhere(model, what):
    mine = flat(model)
    for other, values in enumerate(comm.allgather(mine)):
        if not np.array_equal(values, mine):
            raise AssertionError(f"{what}: rank {rank} and rank {other} hold different weights")


def make_optimizer(kind, model):
    if kind == "sgd":
        return nl.SGD(model.parameters(), lr=0.1, momentum=0.9)
    return nl.Adam(model.parameters(), lr=0.01)


def steps(kind, batch_norm=False):
    """Several steps on each rank's shard equal one process's steps on the whole batches, after each step."""
    model = small_cnn(batch_norm, seed=rank)            # different on each rank until broadcast
    if batch_norm:
        dist.sync_batchnorm(model, comm)
    dist.broadcast_parameters(model, comm)
    reference = small_cnn(batch_norm, seed=0)            # rank 0's initial weights
    optimizer = dist.DistributedOptimizer(make_optimizer(kind, model), comm)
    ref_optimizer = make_optimizer(kind, reference)
    loss, ref_loss = nl.SoftmaxCrossEntropy(), nl.SoftmaxCrossEntropy()
    for step, (X, Y) in enumerate(global_batches(), 1):
        part = dist.shard(len(Y), rank, size)
        optimizer.weight = part.stop - part.start
        for module in model.modules():
            if isinstance(module, (dist.SyncBatchNorm1d, dist.SyncBatchNorm2d)):
                module.share = part.stop - part.start
        loss.forward(model.forward(X[part]), Y[part])
        model.backward(loss.backward())
        optimizer.step()
        optimizer.zero_grad()
        ref_loss.forward(reference.forward(X), Y)
        reference.backward(ref_loss.backward())
        ref_optimizer.step()
        ref_optimizer.zero_grad()
        error = np.max(np.abs(flat(model) - flat(reference)))
        if not error <= TOL:
            raise AssertionError(f"{kind}, step {step}: max |distributed − one process| = {error:.3g}")
        check_same_everywhere(model, f"{kind}, step {step}")
    assert optimizer.steps == ref_optimizer.steps == len(global_batches())
    if rank == 0:
        print(f"ok {kind} batch_norm={batch_norm}: {optimizer.steps} steps equal")


def plain_batchnorm_differs():
    """Per-rank BatchNorm (the default) is not the whole batch's: the control for the synchronised case."""
    model, reference = small_cnn(True), small_cnn(True)
    optimizer = dist.DistributedOptimizer(nl.SGD(model.parameters(), lr=0.1), comm)
    ref_optimizer = nl.SGD(reference.parameters(), lr=0.1)
    X, Y = global_batches()[0]
    part = dist.shard(len(Y), rank, size)
    for net, opt, x, y in ((model, optimizer, X[part], Y[part]), (reference, ref_optimizer, X, Y)):
        loss = nl.SoftmaxCrossEntropy()
        loss.forward(net.forward(x), y)
        net.backward(loss.backward())
        opt.step()
    assert np.max(np.abs(flat(model) - flat(reference))) > 1e-6
    if rank == 0:
        print("ok per-rank BatchNorm differs from the whole batch's")


def fit(path, batch_norm=False, sync=True, sum_loss=False):
    """Trainer.fit on two ranks: the History is the one-process History; save writes one file. With
    ``batch_norm``: a net with synchronised BatchNorm, running statistics included; with ``sync=False``,
    per-rank BatchNorm: not the one-process run, but the ranks end with the same weights and statistics;
    with ``sum_loss``, EuclideanLoss (a sum: gradients and records summed over the ranks, not averaged)."""
    rng = np.random.default_rng(2)
    X, Y = rng.standard_normal((45, 1, 8, 8)), rng.integers(0, 3, 45)      # batches 16, 16, 13 (7 + 6)
    X_val, Y_val = rng.standard_normal((11, 1, 8, 8)), rng.integers(0, 3, 11)   # validation shards 6 + 5
    if sum_loss:
        Y, Y_val = np.eye(3)[Y], np.eye(3)[Y_val]

    def train(distributed):
        model = small_cnn(batch_norm, seed=rank if distributed else 0)
        optimizer = nl.Adam(model.parameters(), lr=0.01)
        schedule = None
        callbacks = []
        if distributed:
            if batch_norm and sync:
                dist.sync_batchnorm(model, comm)
            optimizer = dist.DistributedOptimizer(optimizer, comm)
            callbacks = [dist.DistributedCallback(comm)]
        schedule = nl.schedules.StepLR(optimizer, step_size=1, gamma=0.5)
        loss = nl.EuclideanLoss() if sum_loss else nl.SoftmaxCrossEntropy()
        trainer = nl.Trainer(model, loss, optimizer, metric=nl.accuracy, schedule=schedule)
        history = trainer.fit(X, Y, epochs=4, batch_size=16, rng=7 + (rank if distributed else 0),
                              validation_data=(X_val, Y_val), progress=False, patience=2, callbacks=callbacks)
        return model, history

    model, history = train(True)
    if not sync:
        check_same_everywhere(model, "fit with per-rank BatchNorm")
        if rank == 0:
            print("ok fit with per-rank BatchNorm: the ranks end with rank 0's running statistics")
        return
    reference, ref_history = train(False)
    for name in ("loss", "accuracy", "val_loss", "val_accuracy", "lr"):
        got, want = np.array(getattr(history, name)), np.array(getattr(ref_history, name))
        if got.shape != want.shape or not np.allclose(got, want, rtol=TOL, atol=TOL):
            raise AssertionError(f"fit: History.{name} {got} on rank {rank}, one process {want}")
    error = np.max(np.abs(flat(model) - flat(reference)))
    assert error <= TOL, f"fit: weights differ by {error}"
    check_same_everywhere(model, "fit")
    histories = comm.allgather({name: list(getattr(history, name)) for name in ("loss", "val_loss")})
    assert all(h == histories[0] for h in histories), "fit: the ranks' Histories differ"
    if sum_loss:
        if rank == 0:
            print(f"ok fit with a sum loss: {len(history.loss)} epochs, History and weights equal")
        return
    if batch_norm:
        if rank == 0:
            print(f"ok fit with synchronised BatchNorm: {len(history.loss)} epochs, History and weights equal")
        return
    dist.save(model, path, comm)
    loaded = small_cnn(seed=5)
    nl.load(loaded, path)
    assert np.array_equal(flat(loaded), flat(model))
    try:                                                 # rank 0 cannot write: every rank raises, none waits
        dist.save(model, str(path) + ".missing-folder/w.npz", comm)
    except (OSError, RuntimeError) as error:
        assert (rank == 0) == isinstance(error, OSError), repr(error)
    else:
        raise AssertionError("save into a missing folder did not raise")
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), dist.DistributedOptimizer(nl.SGD(model.parameters(), 0.1)))
    try:                                                 # 17 rows in batches of 16: a last batch of 1 row
        trainer.fit(X[:17], Y[:17], epochs=1, batch_size=16, progress=False, callbacks=[dist.DistributedCallback()])
    except ValueError as error:
        assert "cannot give each of 2 ranks a row" in str(error), str(error)
    else:
        raise AssertionError("a last batch of 1 row on 2 ranks was accepted")
    if rank == 0:
        print(f"ok fit: {len(history.loss)} epochs, History and weights equal; saved {path}")


def clip():
    """fit with gradient clipping and Perplexity on two ranks equals one process's fit: clipping acts on the
    ranks' averaged gradient (unequal shards: 7 + 6 rows), not on each rank's own; the averaging happens
    once per step; perplexity is exp of the whole job's loss."""
    rng = np.random.default_rng(4)
    X, Y = rng.standard_normal((45, 1, 8, 8)), rng.integers(0, 3, 45)      # batches 16, 16, 13 (7 + 6)
    X_val, Y_val = rng.standard_normal((11, 1, 8, 8)), rng.integers(0, 3, 11)

    def train(distributed):
        model = small_cnn(seed=rank if distributed else 0)
        optimizer = nl.SGD(model.parameters(), lr=0.5, momentum=0.9)
        callbacks = [nl.Perplexity()]                     # before the DistributedCallback: fit puts that first
        if distributed:
            optimizer = dist.DistributedOptimizer(optimizer, comm)
            callbacks.append(dist.DistributedCallback(comm))
        trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), optimizer, clip_grad_norm=0.05)
        history = trainer.fit(X, Y, epochs=2, batch_size=16, rng=3, validation_data=(X_val, Y_val),
                              progress=False, callbacks=callbacks)
        return model, history, trainer.clipping

    model, history, clipping = train(True)
    reference, ref_history, ref_clipping = train(False)
    assert clipping.steps == ref_clipping.steps == 6 and clipping.clipped == ref_clipping.clipped == 6, \
        (clipping.steps, clipping.clipped, ref_clipping.clipped)
    assert abs(clipping.last_norm - ref_clipping.last_norm) <= TOL * ref_clipping.last_norm
    for name in ("loss", "val_loss", "perplexity", "val_perplexity"):
        got, want = np.array(getattr(history, name)), np.array(getattr(ref_history, name))
        if got.shape != want.shape or not np.allclose(got, want, rtol=TOL, atol=TOL):
            raise AssertionError(f"clip: History.{name} {got} on rank {rank}, one process {want}")
    error = np.max(np.abs(flat(model) - flat(reference)))
    assert error <= TOL, f"clip: weights differ by {error}"
    check_same_everywhere(model, "clip")
    if rank == 0:
        print(f"ok clip: {clipping.clipped} of {clipping.steps} steps clipped, History and weights equal")


class NaNOnRank1(nl.SoftmaxCrossEntropy):
    """The loss turns NaN on rank 1 alone at its third batch."""
    calls = 0

    def forward(self, pred, target):
        value = super().forward(pred, target)
        self.calls += 1
        return float("nan") if rank == 1 and self.calls == 3 else value


def diverge():
    """A loss NaN on one rank only: every rank stops at the same step with TrainingDivergedError, the
    same weights put back (those before step 2, the last whose loss was finite) on every rank."""
    rng = np.random.default_rng(3)
    X, Y = rng.standard_normal((32, 1, 8, 8)), rng.integers(0, 3, 32)
    model = small_cnn()
    optimizer = dist.DistributedOptimizer(nl.SGD(model.parameters(), lr=0.1), comm)
    trainer = nl.Trainer(model, NaNOnRank1(), optimizer)
    try:
        trainer.fit(X, Y, epochs=2, batch_size=8, rng=0, progress=False, callbacks=[dist.DistributedCallback(comm)])
    except nl.TrainingDivergedError as error:
        assert "epoch 1, batch 3" in str(error), str(error)
    else:
        raise AssertionError(f"rank {rank}: no TrainingDivergedError")
    assert optimizer.steps == 1, optimizer.steps       # the guard puts back the weights from before step 2
    check_same_everywhere(model, "diverge")
    if rank == 0:
        print("ok diverge: every rank stopped at step 3 with the same weights put back")


def fail():
    """Rank 1 raises while rank 0 waits in an Allreduce: the job must end, with the error shown."""
    model = small_cnn()
    optimizer = dist.DistributedOptimizer(nl.SGD(model.parameters(), lr=0.1), comm)
    if rank == 1:
        raise RuntimeError("rank 1 fails on purpose")
    optimizer.step()                                    # waits for rank 1's gradients: forever, without Abort
    print("rank 0 passed a step it should never have passed")


if __name__ == "__main__":
    case, *args = sys.argv[1:]
    with dist.abort_on_error(comm):
        if case == "steps":
            steps("sgd")
            steps("adam")
            steps("sgd", batch_norm=True)
            steps("adam", batch_norm=True)
            plain_batchnorm_differs()
        elif case == "fit":
            fit(args[0])
            fit(None, batch_norm=True)
            fit(None, batch_norm=True, sync=False)
            fit(None, sum_loss=True)
        elif case == "clip":
            clip()
        elif case == "diverge":
            diverge()
        elif case == "fail":
            fail()
        else:
            raise SystemExit(f"unknown case {case!r}")
