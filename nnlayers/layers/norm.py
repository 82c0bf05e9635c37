"""Normalisation layers: batch normalisation (Ioffe & Szegedy, 2015), ``BatchNorm1d`` (N×F) and
``BatchNorm2d`` (N×C×H×W), derived below; and layer normalisation (Ba, Kiros & Hinton, 2016),
``LayerNorm``, the same algebra over each sample's own features (derived in its docstring).

Each feature (each channel c, for images) is normalised over the M values it
takes in the batch (M = N for N×F input, M = N·H·W for images), then scaled
and shifted by trained γ_c and β_c. Writing x for those M values of one
channel (x₁ … x_M), the forward pass in training mode is::

    μ  = (1/M) Σᵢ xᵢ                      batch mean
    v  = (1/M) Σᵢ (xᵢ − μ)²               batch variance (biased: divided by M)
    σ  = √(v + ε)
    ẑᵢ = (xᵢ − μ) / σ                     the normalised input: mean 0, variance ≈ 1
    zᵢ = γ ẑᵢ + β

The backward pass, from δz (what comes down) to δx, one step at a time.
γ and β act elementwise, so δẑᵢ = γ δzᵢ, δγ = Σᵢ δzᵢ ẑᵢ and δβ = Σᵢ δzᵢ.
Every ẑᵢ depends on every xⱼ, through μ and σ::

    ∂μ/∂xⱼ = 1/M
    ∂σ/∂xⱼ = (1/2σ) · ∂v/∂xⱼ = (1/2σ) · (2/M)(xⱼ − μ) = ẑⱼ / M
             (the term (2/M) Σᵢ (xᵢ − μ) · (−1/M) vanishes: Σᵢ (xᵢ − μ) = 0)
    ∂ẑᵢ/∂xⱼ = (δᵢⱼ − 1/M) / σ − (xᵢ − μ)/σ² · ẑⱼ/M
            = (1/σ) (δᵢⱼ − 1/M − ẑᵢ ẑⱼ / M)

so, summing over i (the chain rule),

    δxⱼ = Σᵢ δẑᵢ ∂ẑᵢ/∂xⱼ = (1/σ) (δẑⱼ − mean(δẑ) − ẑⱼ · mean(δẑ ⊙ ẑ))

the compact form: the gradient of a plain scaling by 1/σ, minus its mean
(the batch mean was subtracted) and minus its component along ẑ (the batch
was divided by its own spread). With δẑ = γ δz the two means are the
parameter gradients again, mean(δẑ) = γ δβ/M and mean(δẑ ⊙ ẑ) = γ δγ/M::

    δx = (γ/σ) (δz − δβ/M − ẑ δγ/M)

which is what the code computes: two reductions (δβ, δγ) and one
elementwise pass.

Running statistics (buffers, saved with the weights): after each
training-mode forward, with momentum m (0.1) and the *unbiased* variance
v·M/(M − 1), as PyTorch does::

    running_mean ← (1 − m) running_mean + m μ
    running_var  ← (1 − m) running_var  + m v·M/(M − 1)
    num_batches_tracked ← num_batches_tracked + 1

With ``momentum=None`` the running statistics are the plain average of all
batches so far (m = 1/num_batches_tracked), as in PyTorch.

In evaluation mode (``eval()``) μ and σ² are the running statistics, fixed
numbers, so the layer is a per-channel affine map and its backward pass is
simply δx = (γ/σ) δz (δγ and δβ as above).
"""
from __future__ import annotations

import numpy as np

from ..module import Module, ShapeError
from .._args import positive_int as _positive_int, real

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]


class _BatchNorm(Module):
    """Shared code of the batch normalisations; subclasses set the accepted input ranks.

    Internally the input is viewed as N×C×L (L = 1 for N×F, H·W for images),
    so every statistic is a reduction over axes 0 and 2.
    """

    cache_names = ("_Zhat", "_inv_sigma", "_shape", "_batch_stats")
    input_ndims: tuple = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float | None = 0.1, *,
                 dtype=np.float64):
        super().__init__()
        name = type(self).__name__
        self.num_features = _positive_int(num_features, "num_features", name)
        self.eps = real(eps, "eps", name, low=0.0, low_open=True)
        self.momentum = real(momentum, "momentum", name, low=0.0, high=1.0, optional=True)
        C = self.num_features
        self.gamma = self.add_parameter("gamma", np.ones(C, dtype=dtype))
        self.beta = self.add_parameter("beta", np.zeros(C, dtype=dtype))
        self.running_mean = self.add_buffer("running_mean", np.zeros(C, dtype=dtype))
        self.running_var = self.add_buffer("running_var", np.ones(C, dtype=dtype))
        self.num_batches_tracked = self.add_buffer("num_batches_tracked", np.array(0, dtype=np.int64))
        self._Zhat = self._inv_sigma = self._shape = self._batch_stats = None

    def _as_ncl(self, X) -> np.ndarray:
        """The input checked and viewed as N×C×L."""
        X = self.float_input(X, self.gamma.data.dtype)
        if X.ndim not in self.input_ndims or X.shape[1] != self.num_features:
            raise ShapeError(f"{self!r}: expected input of shape {self.input_layout}, got shape {X.shape}")
        return X.reshape(X.shape[0], self.num_features, int(np.prod(X.shape[2:], dtype=np.int64)))  # N may be 0

    def forward(self, X):
        """Training: ẑ = (X − μ)/σ with the batch's μ, σ = √(v + ε);  eval: the running μ, v.
        Then Z = γ ẑ + β, per channel."""
        X3 = self._as_ncl(X)
        N, C, L = X3.shape
        M = N * L
        if self.training:
            if M < 2:
                raise ValueError(f"{self!r}: training mode needs more than one value per channel to "
                                 f"compute a variance, got input shape {np.shape(X)}; use a larger batch "
                                 "or eval()")
            mu = np.einsum("ncl->c", X3) / M                               # μ = (1/M) Σ x
            Zhat = X3 - mu[:, None]                                        # x − μ
            var = np.einsum("ncl,ncl->c", Zhat, Zhat) / M                  # v = (1/M) Σ (x − μ)²
            self._update_running_stats(mu, var, M)
        else:
            mu, var = self.running_mean.data, self.running_var.data
            Zhat = X3 - mu[:, None]
        inv_sigma = 1.0 / np.sqrt(var + self.eps)                          # 1/σ, σ = √(v + ε)
        Zhat *= inv_sigma[:, None]                                         # ẑ = (x − μ)/σ
        Z = Zhat * self.gamma.data[:, None]
        Z += self.beta.data[:, None]                                       # z = γ ẑ + β
        self._Zhat, self._inv_sigma, self._shape = Zhat, inv_sigma, np.shape(X)
        self._batch_stats = self.training                                  # which backward applies
        return Z.reshape(self._shape)

    def _update_running_stats(self, mu: np.ndarray, var: np.ndarray, M: int) -> None:
        """running ← (1 − m) running + m · batch statistic (unbiased variance v·M/(M − 1))."""
        self.num_batches_tracked.data += 1                                 # in place: stays a 0-d array
        m = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked.data)
        running_mean, running_var = self.running_mean.data, self.running_var.data
        running_mean *= 1.0 - m
        running_mean += m * mu
        running_var *= 1.0 - m
        running_var += (m * M / (M - 1)) * var

    def backward(self, dZ):
        """δβ += Σ δZ;  δγ += Σ δZ ⊙ ẑ  (sums over N, H, W per channel), and

        training:  δX = (γ/σ) (δZ − δβ/M − ẑ δγ/M)   (this batch's δβ, δγ; see the module docstring)
        eval:      δX = (γ/σ) δZ                       (σ from the running variance: a fixed scale)
        """
        Zhat = self.forward_cache(self._Zhat)
        dZ = self.check_grad(dZ, self._shape)
        N, C, L = Zhat.shape
        dZ3 = dZ.reshape(N, C, L)
        dbeta = np.einsum("ncl->c", dZ3)                                   # Σ δz
        dgamma = np.einsum("ncl,ncl->c", dZ3, Zhat)                        # Σ δz ẑ
        self.beta.grad += dbeta
        self.gamma.grad += dgamma
        scale = (self.gamma.data * self._inv_sigma)[:, None]               # γ/σ
        if self._batch_stats:
            M = N * L
            dX = Zhat * (-dgamma / M)[:, None]                             # − ẑ δγ/M
            dX += dZ3
            dX -= (dbeta / M)[:, None]                                     # + δz − δβ/M
            dX *= scale
        else:
            dX = dZ3 * scale
        return dX.reshape(self._shape)

    def settings(self) -> dict:
        return {"num_features": self.num_features, "eps": self.eps, "momentum": self.momentum,
                "dtype": self.gamma.data.dtype.name}

    def extra_repr(self) -> str:
        settings = self.settings()
        text = f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
        return text if settings["dtype"] == "float64" else f"{text}, dtype={settings['dtype']!r}"


class BatchNorm1d(_BatchNorm):
    """Batch normalisation of N×F features (or N×F×L sequences), statistics per feature.

    Z = γ ẑ + β with ẑ = (X − μ)/√(v + ε): in training mode μ and v are the
    batch's mean and biased variance of each feature (over N, and L if
    given), in evaluation mode the running statistics. Backward, training:
    δX = (γ/σ)(δZ − δβ/M − ẑ δγ/M), the compact form derived in the module
    docstring; evaluation: δX = (γ/σ) δZ.

    Parameters γ (``gamma``, ones) and β (``beta``, zeros), shape (F,);
    buffers ``running_mean`` (zeros), ``running_var`` (ones), updated with
    ``momentum`` from the unbiased variance, and ``num_batches_tracked``.
    ``dtype``: of parameters and buffers (a numpy dtype or its name, ``"float32"``); the input is
    converted to it.

    Cache: ẑ (N×F×L), 1/σ (F), the input shape and the mode forward ran in.
    """

    input_ndims = (2, 3)

    @property
    def input_layout(self) -> str:
        return f"(N, {self.num_features}) or (N, {self.num_features}, L)"


class BatchNorm2d(_BatchNorm):
    """Batch normalisation of N×C×H×W images, statistics per channel over N, H and W (M = N·H·W).

    Z = γ ẑ + β with ẑ = (X − μ)/√(v + ε): in training mode μ and v are the
    batch's mean and biased variance of each channel, in evaluation mode the
    running statistics. Backward, training: δX = (γ/σ)(δZ − δβ/M − ẑ δγ/M),
    the compact form derived in the module docstring; evaluation: δX = (γ/σ) δZ.

    Parameters γ (``gamma``, ones) and β (``beta``, zeros), shape (C,);
    buffers ``running_mean`` (zeros), ``running_var`` (ones), updated with
    ``momentum`` from the unbiased variance, and ``num_batches_tracked``.
    ``dtype``: of parameters and buffers (a numpy dtype or its name, ``"float32"``); the input is
    converted to it.

    Cache: ẑ (N×C×H·W), 1/σ (C), the input shape and the mode forward ran in.
    """

    input_ndims = (4,)

    @property
    def input_layout(self) -> str:
        return f"(N, {self.num_features}, H, W)"


class LayerNorm(Module):
    """Layer normalisation: each sample normalised over its own last dimension(s), then scaled and shifted.

    ``normalized_shape`` is an int (the last dimension, D) or a tuple (the last
    k dimensions), as in PyTorch; X has shape ``(…, *normalized_shape)``, any
    leading dimensions (N×D, N×T×D). Write x for the M values of one sample's
    normalised dimensions (M = D, or the product of the tuple) and γ, β for the
    trained parameters of shape ``normalized_shape``, acting elementwise::

        μ  = (1/M) Σᵢ xᵢ                    the sample's mean
        v  = (1/M) Σᵢ (xᵢ − μ)²             its variance (biased: divided by M)
        σ  = √(v + ε)
        x̂ᵢ = (xᵢ − μ) / σ
        zᵢ = γᵢ x̂ᵢ + βᵢ

    Unlike BatchNorm, the statistics are each sample's own, in training and
    evaluation alike: no running statistics, no dependence on the batch.

    The backward pass, one step at a time. γ and β act elementwise, summed over
    the samples (every leading position n)::

        δβ = Σₙ δZₙ,        δγ = Σₙ δZₙ ⊙ x̂ₙ,        δx̂ = δZ ⊙ γ

    Within one sample every x̂ᵢ depends on every xⱼ, through μ and σ::

        ∂μ/∂xⱼ = 1/M
        ∂σ/∂xⱼ = (1/2σ) ∂v/∂xⱼ = (1/2σ)(2/M)(xⱼ − μ) = x̂ⱼ / M
                 (v's term through μ, (2/M) Σᵢ (xᵢ − μ)·(−1/M), vanishes: Σᵢ (xᵢ − μ) = 0)
        ∂x̂ᵢ/∂xⱼ = (δᵢⱼ − 1/M)/σ − (xᵢ − μ)/σ² · x̂ⱼ/M = (1/σ)(δᵢⱼ − 1/M − x̂ᵢ x̂ⱼ / M)

    and by the chain rule, summing over i::

        δxⱼ = Σᵢ δx̂ᵢ ∂x̂ᵢ/∂xⱼ = (1/σ) (δx̂ⱼ − mean(δx̂) − x̂ⱼ · mean(δx̂ ⊙ x̂))

    the same compact form as BatchNorm's (nnlayers/layers/norm.py's module
    docstring), with the means over the sample's M features instead of over the
    batch: the gradient of a plain scaling by 1/σ, minus its mean (the mean was
    subtracted) and minus its component along x̂ (the sample was divided by its
    own spread). Here γ varies along the features, so δx̂ = γ δZ is formed first.

    Parameters γ (``gamma``, ones) and β (``beta``, zeros), of shape
    ``normalized_shape`` (PyTorch's ``weight`` and ``bias``). ``dtype``: of γ and β
    (a numpy dtype or its name); the input is converted to it.

    Cache: x̂ (rows × M), 1/σ (rows × 1) and the input shape.
    """

    cache_names = ("_Zhat", "_inv_sigma", "_shape")

    def __init__(self, normalized_shape, eps: float = 1e-5, *, dtype=np.float64):
        super().__init__()
        name = type(self).__name__
        if isinstance(normalized_shape, (tuple, list)):
            if not normalized_shape:
                raise ValueError(f"{name}: normalized_shape must name at least one dimension, got "
                                 f"{normalized_shape!r}")
            shape = tuple(_positive_int(d, "normalized_shape", name) for d in normalized_shape)
        else:
            shape = (_positive_int(normalized_shape, "normalized_shape", name),)
        self.normalized_shape = shape
        self.eps = real(eps, "eps", name, low=0.0, low_open=True)
        self.gamma = self.add_parameter("gamma", np.ones(shape, dtype=dtype))
        self.beta = self.add_parameter("beta", np.zeros(shape, dtype=dtype))
        self._Zhat = self._inv_sigma = self._shape = None

    def forward(self, X):
        """x̂ = (X − μ)/σ over each sample's normalised dimensions, σ = √(v + ε);  Z = γ x̂ + β."""
        gamma = self.gamma.data
        X = self.float_input(X, gamma.dtype, like=gamma)
        k = len(self.normalized_shape)
        if X.ndim < k or X.shape[X.ndim - k:] != self.normalized_shape:
            layout = ", ".join(map(str, self.normalized_shape))
            raise ShapeError(f"{self!r}: expected input of shape (..., {layout}), got shape {X.shape}")
        M = gamma.size
        X2 = X.reshape(-1, M)                                              # one row per sample: rows × M
        mu = X2.mean(axis=1, keepdims=True)                                # μ = (1/M) Σ x
        Zhat = X2 - mu                                                     # x − μ
        var = (Zhat * Zhat).mean(axis=1, keepdims=True)                    # v = (1/M) Σ (x − μ)²
        inv_sigma = 1.0 / np.sqrt(var + self.eps)                          # 1/σ, σ = √(v + ε)
        Zhat *= inv_sigma                                                  # x̂ = (x − μ)/σ
        Z = Zhat * gamma.reshape(1, M)
        Z += self.beta.data.reshape(1, M)                                  # z = γ x̂ + β
        self._Zhat, self._inv_sigma, self._shape = Zhat, inv_sigma, X.shape
        return Z.reshape(X.shape)

    def backward(self, dZ):
        """δβ += Σ δZ;  δγ += Σ δZ ⊙ x̂  (over the samples);
        δX = (1/σ) (δx̂ − mean(δx̂) − x̂ mean(δx̂ ⊙ x̂)) with δx̂ = γ δZ, means over each sample's features."""
        Zhat = self.forward_cache(self._Zhat)
        dZ = self.check_grad(dZ, self._shape)
        M = Zhat.shape[1]
        dZ2 = dZ.reshape(-1, M)
        self.beta.grad += dZ2.sum(axis=0).reshape(self.normalized_shape)             # Σ δz
        self.gamma.grad += (dZ2 * Zhat).sum(axis=0).reshape(self.normalized_shape)   # Σ δz x̂
        dZhat = dZ2 * self.gamma.data.reshape(1, M)                                    # δx̂ = γ δz
        dX = Zhat * -(dZhat * Zhat).mean(axis=1, keepdims=True)                       # − x̂ mean(δx̂ x̂)
        dX += dZhat
        dX -= dZhat.mean(axis=1, keepdims=True)                                        # + δx̂ − mean(δx̂)
        dX *= self._inv_sigma                                                          # · 1/σ
        return dX.reshape(self._shape)

    def settings(self) -> dict:
        return {"normalized_shape": self.normalized_shape, "eps": self.eps, "dtype": self.gamma.data.dtype.name}

    def extra_repr(self) -> str:
        shape = self.normalized_shape
        text = f"{shape[0] if len(shape) == 1 else shape}, eps={self.eps}"
        dtype = self.gamma.data.dtype.name
        return text if dtype == "float64" else f"{text}, dtype={dtype!r}"
