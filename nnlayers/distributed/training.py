"""``Trainer.fit`` over ranks, unchanged: ``DistributedCallback``; ``save`` once; ``abort_on_error``.

What the callback does to one ``fit`` on each rank (the Trainer's loop is not touched)::

    fit start      rank 0's weights and buffers to every rank; rank 0's random generator state to every
                   rank, so that all shuffle (and augment) alike and draw the same global batches;
                   each ``Dropout`` a random stream of its own per rank (seeded from its generator and the
                   rank), so that the ranks' rows get independent masks, not copies of rank 0's
    each batch     the rank keeps its rows of the global batch (``shard``: consecutive, sizes within one)
                   and tells the optimizer (and any SyncBatchNorm) its share: its rows for a mean loss
    epoch's end    rank 0's buffers (BatchNorm's running statistics) to every rank, as PyTorch's DDP
                   does, so that all ranks evaluate the same model; the epoch's loss and metric summed
                   over the ranks: fit divides each rank's part by the global N, so the sum is the
                   global mean, exactly what one process would record
    validation     each rank evaluates its shard of the validation set (when it has a row per rank);
                   the shards' means weighted by their rows (a sum loss: the shards' sums) make the
                   whole set's, one Allreduce with the training records

So the History is the same on every rank (early stopping and best-epoch decide alike), and equals
the one-process History up to rounding. Progress: rank 0 alone shows it (the callback silences the others).

The callback is also the fit's ``DivergenceGuard`` (fit then adds no other): before each step the
ranks' batch losses are summed (one Allreduce of one number), so a loss that turns NaN or infinite
on any rank stops every rank at the same step with ``TrainingDivergedError``, each with the same
weights put back; the other checks read values already equal on all ranks.
Every rank must hold the whole data set (X, Y and the validation data the same everywhere).
"""
from __future__ import annotations

import contextlib
import sys
import traceback

import numpy as np

from ..io import save as _save
from ..layers import Dropout
from ..training.divergence import DivergenceGuard
from ..training.data import rows, samples
from .batchnorm import _SyncBatchNorm
from .parallel import DistributedOptimizer, _in_place, broadcast_parameters, shard, world

__all__ = ["DistributedCallback", "save", "abort_on_error"]


class DistributedCallback(DivergenceGuard):
    """The callback that makes ``fit`` data-parallel (see the module docstring); the trainer's optimizer
    must be a ``DistributedOptimizer`` on the same ranks. Every global batch must have at least one
    row per rank (fit refuses a last batch smaller than the number of ranks, before the first step)."""

    def __init__(self, comm=None):
        super().__init__()                    # on the CPU the guard checks every batch's loss
        self.comm = world() if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.silences_progress = self.rank != 0       # rank 0 alone shows fit's progress

    def on_fit_start(self, trainer, run) -> None:
        optimizer = trainer.optimizer
        if not isinstance(optimizer, DistributedOptimizer):
            raise TypeError("DistributedCallback: the trainer's optimizer must be an "
                            f"nl.distributed.DistributedOptimizer, got {type(optimizer).__name__}")
        batch = run.batch_size or run.samples
        last = run.samples % batch
        if min(batch, last or batch) < self.size:
            raise ValueError(f"DistributedCallback: a global batch of {min(batch, last or batch)} rows cannot "
                             f"give each of {self.size} ranks a row (N = {run.samples}, batch_size = {batch}); "
                             "choose a batch size such that every batch, the last one too, has enough rows")
        broadcast_parameters(trainer.model, self.comm)
        run.rng.bit_generator.state = self.comm.bcast(run.rng.bit_generator.state, root=0)
        self.optimizer, self.model, self.run = optimizer, trainer.model, run
        for module in trainer.model.modules():
            if isinstance(module, Dropout) and isinstance(module.rng, np.random.Generator):
                module.rng = np.random.default_rng([int(module.rng.integers(2**62)), self.rank])
        optimizer.reduction = "mean" if run.per_sample else "sum"
        self.sync_norms = [m for m in trainer.model.modules() if isinstance(m, _SyncBatchNorm)]
        self.val_weight = None                       # this rank's share of the whole validation set
        if run.validation is not None and samples(run.validation[1]) >= self.size:
            X_val, Y_val = run.validation
            part = shard(samples(Y_val), self.rank, self.size)
            run.validation = (rows(X_val, part), rows(Y_val, part))
            self.val_weight = (part.stop - part.start) / samples(Y_val)
        global_batches = run.epoch_batches
        run.epoch_batches = lambda: self._sharded(global_batches())   # this fit's run only
        self._loss = np.zeros(1)
        super().on_fit_start(trainer, run)                             # the guard's snapshots: after the broadcast

    def _sharded(self, batches):
        """This rank's rows of each global batch, and its share set in the optimizer and SyncBatchNorms."""
        for Xb, Yb in batches:
            part = shard(samples(Yb), self.rank, self.size)
            share = float(part.stop - part.start) if self.run.per_sample else 1.0
            self.optimizer.weight = share
            for norm in self.sync_norms:
                norm.share = share
            yield tuple(rows(X, part) for X in Xb), rows(Yb, part)

    def on_loss(self, epoch: int, batch: int, loss) -> None:
        """The guard's check on the sum of the ranks' losses: finite on all ranks, or on none."""
        self._loss[0] = float(loss)
        self.comm.Allreduce(_in_place(), self._loss)
        super().on_loss(epoch, batch, self._loss[0] if not np.isfinite(self._loss[0]) else loss)

    def on_batch_end(self, epoch: int, batch: int) -> None:
        super().on_batch_end(epoch, batch)
        if batch == self.run.batches:                     # the epoch's last step: rank 0's running statistics
            for _, buffer in self.model.named_buffers():
                self.comm.Bcast(buffer.data, root=0)

    def on_epoch_logs(self, epoch: int, logs: dict) -> None:
        """The whole batch's records from the ranks' parts (one Allreduce): the training records are
        already divided by the global N; the validation shards' means are weighted by their rows."""
        names = list(logs)
        parts = np.array([logs[name] * self._val_weight(name) for name in names], dtype=np.float64)
        self.comm.Allreduce(_in_place(), parts)
        logs.update(zip(names, map(float, parts)))
        super().on_epoch_logs(epoch, logs)                # the guard, on records now equal on every rank

    def _val_weight(self, name: str) -> float:
        """A validation record's weight in the sum over ranks (1 for training records, which fit
        already divided by the global N, and for a sum loss's validation loss)."""
        if not name.startswith("val_"):
            return 1.0
        if self.val_weight is None:                  # not sharded: every rank evaluated the whole set
            return 1.0 / self.size
        return 1.0 if name == "val_loss" and not self.run.per_sample else self.val_weight


def save(model, path, comm=None, *, writer=None):
    """``nl.save`` (or ``writer``, e.g. ``nl.save_model`` for a whole-model file) on rank 0 only
    (atomically, as ever); every rank returns once the file is written, or raises if rank 0 could
    not write it (so no rank waits for a file that never comes)."""
    comm = world() if comm is None else comm
    error = None
    if comm.Get_rank() == 0:
        try:
            path = (writer or _save)(model, path)
        except Exception as caught:                          # told to every rank, raised on rank 0
            error = caught
    message = comm.bcast(None if error is None else f"{type(error).__name__}: {error}", root=0)
    if error is not None:
        raise error
    if message is not None:
        raise RuntimeError(f"nl.distributed.save: rank 0 could not write {path}: {message}")
    return path


@contextlib.contextmanager
def abort_on_error(comm=None):
    """On an exception leaving the block: print it (with the rank) and ``comm.Abort(1)``, ending every
    rank of the job with exit status 1 instead of leaving the others waiting in a collective forever.

    Why it is needed: an MPI job ends when all its processes have ended; a rank that raises and
    exits while the others wait in an ``Allreduce`` for its gradients leaves them waiting for
    ever (the launcher sees no failure until every process exits). ``Abort`` tells the launcher
    to kill them all. With one process the exception propagates as usual. (``python -m mpi4py
    script.py`` does the same for a whole script.)
    """
    comm = world() if comm is None else comm
    try:
        yield comm
    except BaseException as error:
        if comm.Get_size() == 1 or (isinstance(error, SystemExit) and not error.code):
            raise
        rank = comm.Get_rank()
        sys.stderr.write(f"nl.distributed: rank {rank} of {comm.Get_size()} failed; aborting every rank\n"
                         + "".join(traceback.format_exception(type(error), error, error.__traceback__)))
        sys.stderr.flush()
        sys.stdout.flush()
        comm.Abort(1)
