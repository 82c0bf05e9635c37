"""Synchronised batch normalisation: the statistics of the global batch, over every rank's rows.

Plain ``BatchNorm`` under data parallelism normalises each rank's rows by that rank's own
mean and variance (as PyTorch's DDP does): the ranks then compute the gradient of a
different function from the one-process model on the whole batch, and the average of
their gradients is not the whole batch's gradient. ``SyncBatchNorm1d``/``2d`` give each
channel the statistics of all M = Σ_r M_r values it takes over all ranks, so the ranks
together compute exactly what ``BatchNorm`` computes on the whole batch.

Forward (per channel; rank r holds the values x_{r,i}, i = 1 … M_r)::

    μ = Σ_r Σ_i x_{r,i} / Σ_r M_r                   one Allreduce of [Σ_i x_{r,i} per channel, M_r]
    v = Σ_r Σ_i (x_{r,i} − μ)² / M                  one Allreduce of Σ_i (x_{r,i} − μ)² per channel

the same two passes as one process (the one-pass Σx² − Mμ² loses digits when |μ| ≫ σ).

Backward. The derivation of ``BatchNorm`` (``nnlayers/layers/norm.py``) gives, with the sums
over the whole batch, δx_j = (γ/σ)(δz_j − Σ δz/M − ẑ_j Σ δz ẑ/M): the two sums must run over
every rank's rows, so one Allreduce of [Σ_i δz, Σ_i δz ẑ] per channel. One subtlety: rank r
back-propagates the gradient of its own loss L_r, and for a mean loss L = Σ_r (N_r/N) L_r, so
the gradient of L at rank r's rows is (w_r/W) δz_r with w_r = N_r (``share``) and W = Σ_r w_r.
Summing those and scaling back to L_r (× W/w_r)::

    A = Σ_r w_r Σ_i δz_{r,i},   B = Σ_r w_r Σ_i δz_{r,i} ẑ_{r,i}       (one Allreduce, w_r included)
    δx_{r,j} = (γ/σ) (δz_{r,j} − A/(w_r M) − ẑ_{r,j} B/(w_r M))

With equal shards (w_r = 1, ``share``'s default) this is the usual synchronised form. The
parameter gradients δγ = Σ δz ẑ and δβ = Σ δz stay the rank's own sums: the
``DistributedOptimizer`` averages them with every other gradient.

The running statistics are updated from the global μ and v (M − 1 = Σ_r M_r − 1), identically on every
rank. Evaluation mode uses them and communicates nothing.
"""
from __future__ import annotations

import numpy as np

from ..layers.norm import BatchNorm1d, BatchNorm2d
from .parallel import _in_place, world

__all__ = ["SyncBatchNorm1d", "SyncBatchNorm2d", "sync_batchnorm"]


class _SyncBatchNorm:
    """The synchronised training-mode forward and backward (see the module docstring); mixed into
    ``BatchNorm1d``/``2d``, whose parameters, buffers, evaluation mode and checks it keeps."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, *,
                 comm=None, dtype=np.float64):
        super().__init__(num_features, eps, momentum, dtype=dtype)
        self.comm = world() if comm is None else comm
        self.share = 1.0          # w_r: this rank's rows of the global batch for a mean loss (set by fit)

    def forward(self, X):
        """Training: ẑ = (X − μ)/σ with the *global* batch's μ and v; eval: as BatchNorm."""
        if not self.training:
            return super().forward(X)
        X3 = self._as_ncl(X)
        N, C, L = X3.shape
        sums = np.empty(C + 1, dtype=X3.dtype)
        np.einsum("ncl->c", X3, out=sums[:C])
        sums[C] = N * L
        self.comm.Allreduce(_in_place(), sums)                                  # [Σ_r Σ x, M]
        M = int(round(float(sums[C])))
        if M < 2:
            raise ValueError(f"{self!r}: training mode needs more than one value per channel over all ranks")
        mu = sums[:C] / M                                                       # μ = Σ x / M
        Zhat = X3 - mu[:, None]
        var = np.einsum("ncl,ncl->c", Zhat, Zhat)
        self.comm.Allreduce(_in_place(), var)
        var /= M                                                                # v = Σ (x − μ)² / M
        self._update_running_stats(mu, var, M)
        inv_sigma = 1.0 / np.sqrt(var + self.eps)
        Zhat *= inv_sigma[:, None]                                              # ẑ = (x − μ)/σ
        Z = Zhat * self.gamma.data[:, None]
        Z += self.beta.data[:, None]                                            # z = γ ẑ + β
        self._Zhat, self._inv_sigma, self._shape = Zhat, inv_sigma, np.shape(X)
        self._batch_stats = True
        self._global_M = M
        return Z.reshape(self._shape)

    def backward(self, dZ):
        """δβ += Σ δZ, δγ += Σ δZ ⊙ ẑ (this rank's rows); δX = (γ/σ)(δZ − A/(w M) − ẑ B/(w M))."""
        if not self._batch_stats:
            return super().backward(dZ)
        Zhat = self.forward_cache(self._Zhat)
        dZ = self.check_grad(dZ, self._shape)
        N, C, L = Zhat.shape
        dZ3 = dZ.reshape(N, C, L)
        sums = np.empty(2 * C, dtype=Zhat.dtype)
        dbeta, dgamma = sums[:C], sums[C:]
        np.einsum("ncl->c", dZ3, out=dbeta)                                     # Σ δz
        np.einsum("ncl,ncl->c", dZ3, Zhat, out=dgamma)                          # Σ δz ẑ
        self.beta.grad += dbeta
        self.gamma.grad += dgamma
        w = float(self.share)
        sums *= w
        self.comm.Allreduce(_in_place(), sums)                                  # [A, B]
        scale = w * self._global_M
        dX = Zhat * (-dgamma / scale)[:, None]                                  # − ẑ B/(w M)
        dX += dZ3
        dX -= (dbeta / scale)[:, None]                                          # + δz − A/(w M)
        dX *= (self.gamma.data * self._inv_sigma)[:, None]                      # × γ/σ
        return dX.reshape(self._shape)

    def extra_repr(self) -> str:
        return super().extra_repr() + f", ranks={self.comm.Get_size()}"


class SyncBatchNorm1d(_SyncBatchNorm, BatchNorm1d):
    """``BatchNorm1d`` whose training statistics are those of all ranks' rows (module docstring);
    ``comm``: the ranks (``MPI.COMM_WORLD`` by default). Evaluation mode is BatchNorm1d's."""


class SyncBatchNorm2d(_SyncBatchNorm, BatchNorm2d):
    """``BatchNorm2d`` whose training statistics are those of all ranks' rows (module docstring);
    ``comm``: the ranks (``MPI.COMM_WORLD`` by default). Evaluation mode is BatchNorm2d's."""


def sync_batchnorm(model, comm=None):
    """Turn every ``BatchNorm1d``/``2d`` in ``model`` into its synchronised form, in place (same
    parameters, buffers and settings); returns the model. Call it on every rank."""
    comm = world() if comm is None else comm
    for module in model.modules():
        if isinstance(module, _SyncBatchNorm):
            continue
        for plain, synced in ((BatchNorm2d, SyncBatchNorm2d), (BatchNorm1d, SyncBatchNorm1d)):
            if type(module) is plain:
                module.__class__ = synced        # the same object: containers keep their reference
                module.comm, module.share = comm, 1.0
    return model
