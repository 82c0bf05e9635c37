"""The gradient average: ``broadcast_parameters``, ``DistributedOptimizer``, ``shard``.

Why averaging gives the whole batch's step. A mean loss over a global batch of
N rows split into shards of N_r rows (Σ N_r = N) is a weighted mean of the
shards' mean losses, and the gradient is linear::

    L = (1/N) Σᵢ ℓᵢ = Σ_r (N_r/N) L_r      ⇒      ∇L = Σ_r N_r ∇L_r / Σ_r N_r

With equal shards this is the plain mean of the ranks' gradients; with
unequal ones (a last batch of odd size) each rank's gradient is weighted by
its rows: ``DistributedOptimizer.weight`` = N_r. For a sum loss L = Σ_r L_r
the gradients are summed (``reduction = "sum"``). Either way all ranks end
with the same numbers, so the same step keeps the same weights everywhere.
"""
from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import numpy as np

from ..optim import Optimizer

__all__ = ["world", "launched_by_mpi", "mpiexec", "broadcast_parameters", "DistributedOptimizer", "shard"]

#: Variables the common MPI launchers set in each process they start (MPICH/Hydra, Open MPI, Slurm's PMI).
LAUNCHER_VARIABLES = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "MPI_LOCALRANKID")


def launched_by_mpi() -> bool:
    """Whether this process was started by an MPI launcher (``mpiexec``), read from its environment
    without importing mpi4py (a plain ``python script.py`` stays a single process)."""
    return any(name in os.environ for name in LAUNCHER_VARIABLES)


def mpiexec() -> str | None:
    """The ``mpiexec`` to launch ranks with: the one beside this interpreter (the mpich wheel installs it
    in the environment's bin/), else the first on PATH; None if there is none."""
    beside = Path(sys.executable).parent / "mpiexec"
    return str(beside) if beside.exists() else shutil.which("mpiexec")


def world():
    """``MPI.COMM_WORLD``, importing mpi4py now (the ``mpi`` extra: ``pip install 'nnlayers[mpi]'``)."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError("nl.distributed needs mpi4py and an MPI library: pip install 'nnlayers[mpi]' "
                          "(mpi4py and the mpich wheel)") from error
    return MPI.COMM_WORLD


def _in_place():
    from mpi4py import MPI
    return MPI.IN_PLACE


def broadcast_parameters(model, comm=None, root: int = 0) -> None:
    """Copy rank ``root``'s parameters and buffers into every rank's model, in place (call it once,
    before training: models initialised with different seeds then start from the same weights)."""
    comm = world() if comm is None else comm
    for _, entry in model.named_parameters() + model.named_buffers():
        _host_array(entry.data, "broadcast_parameters")
        comm.Bcast(entry.data, root=root)


def shard(batch_rows: int, rank: int, size: int) -> slice:
    """The rows of a global batch of ``batch_rows`` rows that rank ``rank`` of ``size`` takes:
    consecutive parts as equal as can be (sizes differ by at most one, the larger first)."""
    bounds = _bounds(batch_rows, size)
    return slice(bounds[rank], bounds[rank + 1])


def _bounds(n: int, size: int) -> list:
    """Shard boundaries: rank r takes rows bounds[r]:bounds[r+1]; the first n % size ranks take one more."""
    base, extra = divmod(n, size)
    return [r * base + min(r, extra) for r in range(size + 1)]


def _host_array(array, where: str) -> None:
    if not isinstance(array, np.ndarray):
        raise TypeError(f"nl.distributed.{where}: only numpy (CPU) arrays are communicated, got "
                        f"{type(array).__module__}.{type(array).__name__}")


class DistributedOptimizer(Optimizer):
    """An optimizer whose ``step`` first averages every parameter's gradient over the ranks of ``comm``.

    Before each step, each rank's gradients g_r are copied into one flat buffer (one per dtype),
    followed by the rank's ``weight`` w_r; one in-place ``Allreduce`` sums the buffers, and::

        reduction "mean" (the default):   g ← Σ_r w_r g_r / Σ_r w_r
        reduction "sum":                  g ← Σ_r g_r

    then the wrapped optimizer steps (a callback that must see the averaged gradients first, such as
    ``nl.GradientClipping``, calls ``allreduce_gradients`` itself; the step then does not average
    again). With ``weight`` = the rank's rows of the global batch
    (``DistributedCallback`` sets it every batch) a mean loss gets exactly the whole batch's
    gradient even when the shards differ in size; with equal shards any equal weights do (1.0).

    Everything else passes through to the wrapped optimizer: ``lr`` (schedules set it),
    ``initial_lr``, ``steps``, ``parameters``, ``zero_grad``, ``state_dict``/``load_state_dict``,
    ``state_arrays`` (the Trainer's divergence snapshots), and any other setting (``momentum``,
    ``betas``), read or written. Every rank must call ``step`` the same number of times: a step is
    a collective operation.
    """

    def __init__(self, optimizer: Optimizer, comm=None):
        if not isinstance(optimizer, Optimizer):
            raise TypeError(f"DistributedOptimizer: expected an nl.Optimizer to wrap, got {optimizer!r}")
        for parameter in optimizer.parameters:
            _host_array(parameter.data, "DistributedOptimizer")
        own = self.__dict__
        own["optimizer"] = optimizer
        own["comm"] = world() if comm is None else comm
        own["weight"] = 1.0
        own["reduction"] = "mean"
        own["_averaged"] = False                     # allreduce_gradients ran since the last step
        # One flat buffer per dtype (one in all: a model has one dtype), holding Σ w_r g_r then Σ w_r.
        groups = {}
        for parameter in optimizer.parameters:
            groups.setdefault(parameter.data.dtype, []).append(parameter)
        own["_groups"] = [(parameters, np.empty(sum(p.grad.size for p in parameters) + 1, dtype=dtype))
                          for dtype, parameters in groups.items()]

    # -- the pass-through: reads and writes of anything but our own attributes go to the wrapped optimizer
    def __getattr__(self, name):
        if name.startswith("__") or name == "optimizer":
            raise AttributeError(name)
        return getattr(self.optimizer, name)

    def __setattr__(self, name, value):
        if name in self.__dict__:
            if name == "reduction" and value not in ("mean", "sum"):
                raise ValueError(f"DistributedOptimizer: reduction must be 'mean' or 'sum', got {value!r}")
            self.__dict__[name] = value
        else:
            setattr(self.optimizer, name, value)

    lr = property(lambda self: self.optimizer.lr, lambda self, value: setattr(self.optimizer, "lr", value))
    initial_lr = property(lambda self: self.optimizer.initial_lr,
                          lambda self, value: setattr(self.optimizer, "initial_lr", value))
    steps = property(lambda self: self.optimizer.steps,
                     lambda self, value: setattr(self.optimizer, "steps", value))
    parameters = property(lambda self: self.optimizer.parameters)
    state_names = property(lambda self: self.optimizer.state_names)

    def zero_grad(self) -> None:
        self.optimizer.zero_grad()
        self.__dict__["_averaged"] = False

    def state_dict(self) -> dict:
        return self.optimizer.state_dict()

    def load_state_dict(self, state) -> None:
        self.optimizer.load_state_dict(state)

    def state_arrays(self) -> list:
        return self.optimizer.state_arrays()

    def to(self, device) -> "DistributedOptimizer":
        if device not in ("cpu", None):
            raise ValueError("DistributedOptimizer: only CPU (numpy) training is distributed")
        return self

    def step(self) -> None:
        """Average the gradients over the ranks (see the class docstring), unless ``allreduce_gradients``
        already did since the last step; then the wrapped step."""
        if not self._averaged:
            self.allreduce_gradients()
        self.optimizer.step()
        self.__dict__["_averaged"] = False

    def allreduce_gradients(self) -> None:
        """The ranks' gradients averaged (or summed) in place, now: a callback that changes the gradients
        before the step (``nl.GradientClipping``) calls it first, so that it acts on the average, as on one
        process; ``step`` then does not average again (until ``zero_grad`` or the step)."""
        weight = float(self.weight) if self.reduction == "mean" else 1.0
        for parameters, flat in self._groups:
            at = 0
            for parameter in parameters:                               # flat ← [w g_1, w g_2, …, w]
                n = parameter.grad.size
                np.multiply(parameter.grad.reshape(-1), weight, out=flat[at:at + n])
                at += n
            flat[-1] = weight
            self.comm.Allreduce(_in_place(), flat)                     # flat ← [Σ w_r g_1, …, Σ w_r]
            if self.reduction == "mean":
                flat[:-1] /= flat[-1]
            at = 0
            for parameter in parameters:
                n = parameter.grad.size
                parameter.grad[...] = flat[at:at + n].reshape(parameter.grad.shape)
                at += n
        self.__dict__["_averaged"] = True

    def extra_repr(self) -> str:
        return f"{self.optimizer!r}, ranks={self.comm.Get_size()}, reduction={self.reduction!r}"
