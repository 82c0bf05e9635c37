"""Data-parallel training over processes with MPI (``mpi4py``, the ``mpi`` extra).

Every process (a *rank*) holds the whole model and takes its part of every
global batch; before each step the ranks average their gradients, so all of
them take the identical step the whole batch would have given one process::

    mpiexec -n 2 python train.py          # two processes on this machine

    comm = nl.distributed.world()                      # MPI.COMM_WORLD (mpi4py imported here)
    with nl.distributed.abort_on_error(comm):          # a failing rank ends the job, never a hang
        optimizer = nl.distributed.DistributedOptimizer(nl.Adam(model.parameters(), 1e-3), comm)
        trainer = nl.Trainer(model, loss, optimizer, metric=nl.accuracy)
        history = trainer.fit(X, Y, epochs=3, batch_size=64, rng=0,
                              callbacks=[nl.distributed.DistributedCallback(comm)])
        nl.distributed.save(model, "weights.npz", comm)    # rank 0 writes, the others wait

* ``parallel.py``  ``broadcast_parameters``, ``DistributedOptimizer``, ``shard``, ``world``, ``launched_by_mpi``,
                   ``mpiexec``
* ``training.py``  ``DistributedCallback`` (sharding, averaged History), ``save``, ``abort_on_error``
* ``batchnorm.py`` ``SyncBatchNorm1d``/``2d`` and ``sync_batchnorm``: statistics over all ranks' rows
* ``cost.py``      the cost model on paper: an allreduce per step, the expected scaling (docs/data-parallel.rst)

mpi4py is imported by the functions that need it, never by ``import nnlayers``;
``comm`` is any mpi4py communicator (``MPI.COMM_WORLD`` by default). Only numpy
(CPU) arrays are communicated.
"""
from .parallel import DistributedOptimizer, broadcast_parameters, launched_by_mpi, mpiexec, shard, world
from .training import DistributedCallback, abort_on_error, save
from .batchnorm import SyncBatchNorm1d, SyncBatchNorm2d, sync_batchnorm
from .cost import allreduce_seconds, expected_speedup, gradient_bytes, scaling_table, step_seconds_from

__all__ = ["world", "launched_by_mpi", "mpiexec", "broadcast_parameters", "DistributedOptimizer", "shard",
           "DistributedCallback", "save", "abort_on_error", "SyncBatchNorm1d", "SyncBatchNorm2d",
           "sync_batchnorm", "gradient_bytes", "allreduce_seconds", "expected_speedup", "scaling_table",
           "step_seconds_from"]
