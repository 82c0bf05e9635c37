"""The layer catalogue: one entry per layer configuration worth checking, for ``test_layer_battery.py``.

Each ``LayerCase`` says how to build the layer (in a given dtype, from a seed),
what it takes as input, its PyTorch twin where one exists, and which checks
cannot apply to it, with the reason. The battery runs every check on every
entry, so adding a layer to the library means adding its entries here.

Inputs are a tuple (the contract is ``forward(*inputs)``, ``backward(*grads)``):
a shape draws a float64 array, a callable ``rng -> array`` anything else.
``kinks`` keeps drawn inputs away from where a gradient jumps, so finite
differences see a smooth function: ``"relu"`` (|x| ≥ 0.1, no ReLU at 0) or
``"max"`` (all values distinct, 0.05 apart and none near 0: no max-pool tie
can flip under a step of 1e-6, and no ReLU kink either). A kink inside a
network (a ReLU after a convolution) cannot be steered from the input: such
entries pass because their fixed seeds put no value within a step of it.

The checks, by name (``not_applicable`` maps a check to the reason it cannot apply):
``gradcheck``, ``torch`` (parity), ``empty-batch``, ``no-mutation``, ``clear-cache``,
``settings`` (round trip including dtype), ``device`` (the strict stand-in device),
``onnx`` (ONNX Runtime) and ``save-load``.

A twin is ``torch(nn) -> module`` (``nn`` is ``torch.nn``, passed in so that this
file imports without PyTorch); the battery makes it float64 and copies our
weights in through ``torch_params``: {our dotted name: torch's name, or
(torch's name, f)} with f taking our array to torch's layout (``T`` for
Linear's W, in×out here and out×in there). Buffers in the map (BatchNorm's
running statistics) are copied in and compared after the step too.

An entry, the first of the catalogue::

    LayerCase("linear-4x3-to-5", lambda dtype, rng: nl.Linear(3, 5, rng=rng, dtype=dtype), ((4, 3),),
              torch=lambda nn: nn.Linear(3, 5, bias=False), torch_params={"W": ("weight", T)})
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

import nnlayers as nl
from nnlayers.examples.xor import xor_network
from nnlayers.init import initial_weights

CHECKS = ("gradcheck", "torch", "empty-batch", "no-mutation", "clear-cache", "settings", "device", "onnx",
          "save-load")


@dataclass(frozen=True)
class LayerCase:
    """One layer configuration and what the battery needs to check it (see the module docstring)."""

    id: str
    make: Callable                        # make(dtype, rng) -> Module, rng an int seed
    inputs: tuple                         # one shape (or rng -> array) per input of forward
    torch: Callable | None = None         # torch(nn) -> the equivalent torch module (or function)
    torch_params: dict = field(default_factory=dict)
    kinks: str | None = None              # None, "relu" or "max": see the module docstring
    empty_batch: tuple | None = None      # (exception type, pattern) if training mode refuses N = 0
    not_applicable: dict = field(default_factory=dict)   # check name -> why it cannot apply

    def example_inputs(self, rng) -> tuple:
        return tuple(spec(rng) if callable(spec) else _draw(spec, self.kinks, rng) for spec in self.inputs)


def _draw(shape, kinks, rng) -> np.ndarray:
    """A float64 input of ``shape``: standard normal, or kept away from the ``kinks``."""
    if kinks is None:
        return rng.normal(size=shape)
    if kinks == "relu":
        return rng.choice([-1.0, 1.0], size=shape) * rng.uniform(0.1, 2.0, size=shape)
    if kinks == "max":
        n = int(np.prod(shape))
        return (rng.permutation(n).reshape(shape) - n // 2) * 0.05 + 0.025
    raise ValueError(f"kinks must be None, 'relu' or 'max', got {kinks!r}")


# -- our parameters in PyTorch's layout ----------------------------------------------------------------

def T(array):
    """Ours in×out → torch's out×in (Linear's W)."""
    return array.T


def ROW(array):
    """Bias's b, 1×F here, F in torch."""
    return array[0]


CONV = {"W": "weight", "b": "bias"}
BATCHNORM = {"gamma": "weight", "beta": "bias", "running_mean": "running_mean", "running_var": "running_var"}


def prefixed(prefix: str, mapping: dict, torch_prefix: str) -> dict:
    """A layer's map inside containers: {prefix + ours: torch_prefix + theirs}."""
    return {prefix + ours: (torch_prefix + theirs if isinstance(theirs, str) else
                            (torch_prefix + theirs[0], theirs[1])) for ours, theirs in mapping.items()}


def linear_and_bias(ours: int, theirs: int) -> dict:
    """The map of Linear at position ``ours`` followed by Bias, onto torch's Linear at position ``theirs``."""
    return {f"{ours}.W": (f"{theirs}.weight", T), f"{ours + 1}.b": (f"{theirs}.bias", ROW)}


# -- modules written here: two inputs, two outputs, one fixed dropout mask -----------------------------

class Bilinear(nl.Module):
    """Z = (X₁ W) ⊙ X₂: a two-input merge (X₁ N×in, W in×out, X₂ N×out → Z N×out).

    With A = X₁ W and δA = δZ ⊙ X₂ (the chain rule through the product)::

        δW += X₁ᵀ δA          (in×N · N×out)
        δX₁ = δA Wᵀ           (N×out · out×in)
        δX₂ = δZ ⊙ A

    backward returns (δX₁, δX₂), one gradient per input. Cache: X₁, X₂ and A.
    """

    cache_names = ("_X1", "_X2", "_A")

    def __init__(self, in_features: int, out_features: int, *, rng=None, dtype=np.float64):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.W = self.add_parameter("W", initial_weights("xavier", (in_features, out_features), in_features,
                                                         out_features, rng, dtype))
        self._X1 = self._X2 = self._A = None

    def forward(self, X1, X2):
        """Z = (X₁ W) ⊙ X₂."""
        W = self.W.data
        X1, X2 = self.float_input(X1, W.dtype, like=W), self.float_input(X2, W.dtype, like=W)
        if X1.ndim != 2 or X1.shape[1] != self.in_features or X2.shape != (len(X1), self.out_features):
            raise nl.ShapeError(f"{self!r}: expected inputs of shapes (N, {self.in_features}) and "
                                f"(N, {self.out_features}), got {X1.shape} and {X2.shape}")
        A = X1 @ W
        self._X1, self._X2, self._A = X1, X2, A
        return A * X2

    def backward(self, dZ):
        """δW += X₁ᵀ δA;  returns (δX₁, δX₂) = (δA Wᵀ, δZ ⊙ A), δA = δZ ⊙ X₂."""
        X1 = self.forward_cache(self._X1)
        dZ = self.check_grad(dZ, self._A.shape)
        dA = dZ * self._X2
        self.W.grad += X1.T @ dA
        return dA @ self.W.data.T, dZ * self._A

    def settings(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "dtype": self.W.data.dtype.name}


class LinearAndSquare(nl.Module):
    """Two outputs of one input: Z₁ = X W and Z₂ = X ⊙ X (X N×in, W in×out).

    backward takes one gradient per output, and X's gradient sums both paths::

        δW += Xᵀ δZ₁;   δX = δZ₁ Wᵀ + 2 X ⊙ δZ₂

    Cache: X.
    """

    cache_names = ("_X",)

    def __init__(self, in_features: int, out_features: int, *, rng=None, dtype=np.float64):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.W = self.add_parameter("W", initial_weights("xavier", (in_features, out_features), in_features,
                                                         out_features, rng, dtype))
        self._X = None

    def forward(self, X):
        """(Z₁, Z₂) = (X W, X ⊙ X)."""
        X = self.float_input(X, self.W.data.dtype, like=self.W.data)
        if X.ndim != 2 or X.shape[1] != self.in_features:
            raise nl.ShapeError(f"{self!r}: expected input of shape (N, {self.in_features}), got {X.shape}")
        self._X = X
        return X @ self.W.data, X * X

    def backward(self, dZ1, dZ2):
        """δW += Xᵀ δZ₁;  returns δX = δZ₁ Wᵀ + 2 X ⊙ δZ₂."""
        X = self.forward_cache(self._X)
        dZ1 = self.check_grad(dZ1, (len(X), self.out_features))
        dZ2 = self.check_grad(dZ2, X.shape)
        self.W.grad += X.T @ dZ1
        return dZ1 @ self.W.data.T + 2 * X * dZ2

    def settings(self) -> dict:
        return {"in_features": self.in_features, "out_features": self.out_features,
                "dtype": self.W.data.dtype.name}


class FixedMaskDropout(nl.Dropout):
    """Dropout whose mask is the same on every forward, so finite differences see one function."""

    def forward(self, X):
        self.rng = np.random.default_rng(0)
        return super().forward(X)


def eval_with_statistics(layer, rng):
    """``layer`` (a BatchNorm) in eval mode with running statistics away from 0 and 1."""
    rng = np.random.default_rng(rng)
    layer.running_mean.data[...] = rng.normal(size=layer.num_features)
    layer.running_var.data[...] = rng.uniform(0.5, 2.0, size=layer.num_features)
    return layer.eval()


# -- twins written in PyTorch (torch imported only when they are built) --------------------------------

def torch_bias(nn, features):
    """Z = X + b in PyTorch: a module with one parameter ``bias`` of shape (F,)."""
    import torch
    class TorchBias(nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(features))

        def forward(self, X):
            return X + self.bias
    return TorchBias()


def torch_residual(nn, block, shortcut=None):
    """Z = shortcut(X) + block(X) (X + block(X) without a shortcut), written in PyTorch."""
    class TorchResidual(nn.Module):
        def __init__(self):
            super().__init__()
            self.block, self.shortcut = block, shortcut

        def forward(self, X):
            return (X if self.shortcut is None else self.shortcut(X)) + self.block(X)
    return TorchResidual()


def torch_bilinear(nn, in_features, out_features):
    """Z = (X₁ W) ⊙ X₂, W stored in×out as ours."""
    import torch
    class TorchBilinear(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(in_features, out_features))

        def forward(self, X1, X2):
            return (X1 @ self.weight) * X2
    return TorchBilinear()


def torch_linear_and_square(nn, in_features, out_features):
    """(X W, X ⊙ X), W stored in×out as ours."""
    import torch

    class TorchLinearAndSquare(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(in_features, out_features))

        def forward(self, X):
            return X @ self.weight, X * X
    return TorchLinearAndSquare()


def xor_twin(nn):
    """The derivation's network: Linear+Bias → σ → Linear+Bias → σ (our Bias is in torch's Linear)."""
    return nn.Sequential(nn.Linear(2, 8), nn.Sigmoid(), nn.Linear(8, 1), nn.Sigmoid())


def mlp_twin(nn):
    """deep-mlp's twin."""
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 4), nn.Sigmoid(), nn.Linear(4, 1, bias=False))


def basic_block_twin(nn):
    """resnet-basic-block's twin: conv-BN-tanh-conv-BN beside a 1×1 conv-BN projection."""
    return torch_residual(
        nn, nn.Sequential(nn.Conv2d(2, 3, 3, padding="same", bias=False), nn.BatchNorm2d(3), nn.Tanh(),
                          nn.Conv2d(3, 3, 3, padding="same", bias=False), nn.BatchNorm2d(3)),
        nn.Sequential(nn.Conv2d(2, 3, 1, bias=False), nn.BatchNorm2d(3)))


# -- entries by family ---------------------------------------------------------------------------------

NO_TWIN_DROPOUT = "PyTorch draws its own masks: no twin draws the same one"
CONTAINER_SETTINGS = "a container's configuration is its children; it has no settings() to rebuild from"
NOT_EXPORTABLE_SUBCLASS = "redefines Dropout's forward, so export_onnx refuses it (tests/test_onnx.py)"
TEST_ONLY = "a module written for the tests: no ONNX exporter is registered for it"


def conv_case(id, C, F, kernel, stride=1, padding=0, bias=True, shape=(2, 2, 5, 5), **options):
    """A Conv2D entry and its twin; ``options``: input_grad, algorithm."""
    return LayerCase(
        id, lambda dtype, rng: nl.Conv2D(C, F, kernel, stride, padding, bias, rng=rng, dtype=dtype, **options),
        (shape,), torch=lambda nn: nn.Conv2d(C, F, kernel, stride, padding, bias=bias),
        torch_params=CONV if bias else {"W": "weight"})


def _dims(value) -> str:
    return "x".join(map(str, value)) if isinstance(value, tuple) else str(value)


def pool_case(kind, kernel, stride, shape):
    """A MaxPool2D (``kind="max"``, inputs without ties) or AvgPool2D entry, named by its geometry."""
    ours, theirs = {"max": (nl.MaxPool2D, "MaxPool2d"), "avg": (nl.AvgPool2D, "AvgPool2d")}[kind]
    step = "" if stride is None else f"-stride{_dims(stride)}"
    return LayerCase(f"{kind}pool-{_dims(kernel)}{step}-{_dims(shape)}",
                     lambda dtype, rng: ours(kernel, stride), (shape,),
                     torch=lambda nn: getattr(nn, theirs)(kernel, stride), kinks="max" if kind == "max" else None)


POOLS = [  # (kernel, stride, input shape): divisible, floor rule, overlapping, gaps, non-square
    (2, None, (2, 3, 8, 8)),
    (2, None, (2, 2, 7, 9)),
    (3, 1, (2, 2, 7, 6)),
    (3, 2, (1, 3, 9, 8)),
    (2, 3, (2, 2, 8, 7)),
    ((2, 3), (1, 2), (2, 2, 7, 9)),
    (4, None, (1, 2, 9, 10)),
    (2, None, (2, 2, 4, 6)),
    (3, 2, (1, 2, 7, 9)),
    ((2, 3), None, (2, 2, 5, 7)),
]


def elementwise_case(id, ours, theirs, shape, kinks=None):
    """A layer without settings or parameters whose twin is ``torch.nn.<theirs>()``."""
    return LayerCase(id, lambda dtype, rng: ours(), (shape,), torch=lambda nn: getattr(nn, theirs)(), kinks=kinks)


def batchnorm_case(id, name, shape, mode="train", momentum=0.1):
    """BatchNorm1d or BatchNorm2d (``name``) with batch statistics (``mode="train"``: an empty batch
    has no variance, refused) or running statistics away from 0 and 1 (``"eval"``)."""
    def make(dtype, rng):
        layer = getattr(nl, name)(shape[1], momentum=momentum, dtype=dtype)
        return layer if mode == "train" else eval_with_statistics(layer, rng)
    refused = (ValueError, "more than one value per channel") if mode == "train" else None
    return LayerCase(id, make, (shape,), torch=lambda nn: getattr(nn, name)(shape[1], momentum=momentum),
                     torch_params=BATCHNORM, empty_batch=refused)


# -- the catalogue -------------------------------------------------------------------------------------

CATALOGUE = [
    # Linear and Bias: batch of 1 and one output unit too
    LayerCase("linear-4x3-to-5", lambda dtype, rng: nl.Linear(3, 5, rng=rng, dtype=dtype), ((4, 3),),
              torch=lambda nn: nn.Linear(3, 5, bias=False), torch_params={"W": ("weight", T)}),
    LayerCase("linear-batch1-1out", lambda dtype, rng: nl.Linear(6, 1, rng=rng, dtype=dtype), ((1, 6),),
              torch=lambda nn: nn.Linear(6, 1, bias=False), torch_params={"W": ("weight", T)}),
    LayerCase("linear-no-input-grad", lambda dtype, rng: nl.Linear(3, 2, rng=rng, dtype=dtype, input_grad=False),
              ((4, 3),), torch=lambda nn: nn.Linear(3, 2, bias=False), torch_params={"W": ("weight", T)}),
    LayerCase("linear-sequence-2x3x4-to-5", lambda dtype, rng: nl.Linear(4, 5, rng=rng, dtype=dtype),
              ((2, 3, 4),), torch=lambda nn: nn.Linear(4, 5, bias=False), torch_params={"W": ("weight", T)}),
    LayerCase("bias-sequence-2x3x4", lambda dtype, rng: nl.Bias(4, dtype=dtype), ((2, 3, 4),),
              torch=lambda nn: torch_bias(nn, 4), torch_params={"b": ("bias", ROW)}),
    LayerCase("bias-3x7", lambda dtype, rng: nl.Bias(7, dtype=dtype), ((3, 7),),
              torch=lambda nn: torch_bias(nn, 7), torch_params={"b": ("bias", ROW)}),
    LayerCase("bias-batch1", lambda dtype, rng: nl.Bias(1, dtype=dtype), ((1, 1),),
              torch=lambda nn: torch_bias(nn, 1), torch_params={"b": ("bias", ROW)}),
    # element-wise activations (any shape) and Flatten
    elementwise_case("sigmoid-2x5", nl.Sigmoid, "Sigmoid", (2, 5)),
    elementwise_case("sigmoid-4d", nl.Sigmoid, "Sigmoid", (2, 1, 3, 2)),
    elementwise_case("tanh", nl.Tanh, "Tanh", (3, 4)),
    elementwise_case("tanh-4d", nl.Tanh, "Tanh", (3, 2, 4, 5)),
    elementwise_case("relu", nl.ReLU, "ReLU", (2, 3, 4), kinks="relu"),
    elementwise_case("relu-4d", nl.ReLU, "ReLU", (3, 2, 4, 5), kinks="relu"),
    elementwise_case("flatten", nl.Flatten, "Flatten", (2, 3, 2, 2)),
    elementwise_case("flatten-3x2x4x5", nl.Flatten, "Flatten", (3, 2, 4, 5)),
    # Dropout: eval mode is the identity; training mode with one fixed mask
    LayerCase("dropout-eval", lambda dtype, rng: nl.Dropout(0.4, rng=rng).eval(), ((3, 6),),
              torch=lambda nn: nn.Dropout(0.4)),
    LayerCase("dropout-train-fixed-mask", lambda dtype, rng: FixedMaskDropout(0.4), ((3, 6),),
              not_applicable={"torch": NO_TWIN_DROPOUT, "onnx": NOT_EXPORTABLE_SUBCLASS}),
    # Conv2D: (in, out, kernel, stride, padding, bias, input shape)
    conv_case("conv-3x3-pad1", 2, 3, 3, padding=1, shape=(2, 2, 5, 5)),
    conv_case("conv-1to4-3x3-pad1", 1, 4, 3, 1, 1, True, (3, 1, 8, 8)),
    conv_case("conv-stride2", 3, 2, 3, 2, 1, True, (2, 3, 9, 7)),
    conv_case("conv-2x3-stride2x1-pad0x2-nobias", 2, 3, (2, 3), (2, 1), (0, 2), False, (2, 2, 7, 6)),
    conv_case("conv-2x3-stride2-odd", 3, 2, (2, 3), 2, (1, 2), True, (1, 3, 7, 9)),
    conv_case("conv-5x5-pad2-batch1", 2, 2, 5, 1, 2, True, (1, 2, 6, 6)),
    conv_case("conv-1x1-stride3", 4, 2, 1, 3, 0, True, (2, 4, 7, 8)),
    conv_case("conv-1x1-nobias", 2, 4, 1, bias=False, shape=(2, 2, 3, 4)),
    conv_case("conv-3x3-stride3-nobias", 2, 3, 3, 3, 0, False, (2, 2, 9, 9)),
    conv_case("conv-same-3x5", 2, 2, (3, 5), padding="same", shape=(2, 2, 4, 5)),
    conv_case("conv-same-3x5-3to4", 3, 4, (3, 5), padding="same", shape=(2, 3, 5, 7)),
    conv_case("conv-no-input-grad", 2, 3, 3, padding=1, shape=(2, 2, 4, 4), input_grad=False),
    conv_case("conv-winograd-odd", 2, 3, 3, padding=1, shape=(2, 2, 5, 6), algorithm="winograd"),
    conv_case("conv-winograd-pad1", 1, 4, 3, 1, 1, True, (3, 1, 8, 8), algorithm="winograd"),
    conv_case("conv-winograd-pad0-nobias", 3, 2, 3, 1, 0, False, (2, 3, 7, 9), algorithm="winograd"),
    conv_case("conv-winograd-pad2", 4, 3, 3, 1, 2, True, (1, 4, 5, 6), algorithm="winograd"),
    conv_case("conv-winograd-pad1x2", 2, 3, 3, 1, (1, 2), True, (2, 2, 6, 5), algorithm="winograd"),
    # pooling: MaxPool2D and AvgPool2D over the same geometries (overlapping and not), global average
    *[pool_case(kind, *pool) for kind in ("max", "avg") for pool in POOLS],
    LayerCase("global-avgpool", lambda dtype, rng: nl.GlobalAvgPool2D(), ((2, 3, 3, 4),),
              torch=lambda nn: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())),
    LayerCase("global-avgpool-5x7", lambda dtype, rng: nl.GlobalAvgPool2D(), ((2, 3, 5, 7),),
              torch=lambda nn: nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten())),
    # BatchNorm: batch statistics (a batch needs ≥ 2 values per channel) and running statistics
    batchnorm_case("batchnorm1d-train", "BatchNorm1d", (4, 3)),
    batchnorm_case("batchnorm1d-batch2", "BatchNorm1d", (2, 2)),
    batchnorm_case("batchnorm1d-ncl", "BatchNorm1d", (3, 2, 5), momentum=0.3),
    batchnorm_case("batchnorm1d-eval", "BatchNorm1d", (4, 3), mode="eval"),
    batchnorm_case("batchnorm2d-train", "BatchNorm2d", (2, 3, 3, 3)),
    batchnorm_case("batchnorm2d-batch1", "BatchNorm2d", (1, 2, 2, 3)),
    batchnorm_case("batchnorm2d-eval", "BatchNorm2d", (2, 2, 3, 3), mode="eval"),
    batchnorm_case("batchnorm2d-cumulative", "BatchNorm2d", (3, 2, 4, 4), momentum=None),
    # containers
    LayerCase("xor-network", lambda dtype, rng: xor_network(8, rng=rng, dtype=dtype), ((4, 2),),
              torch=xor_twin, torch_params={**linear_and_bias(0, 0), **linear_and_bias(3, 2)},
              not_applicable={"settings": CONTAINER_SETTINGS}),
    LayerCase("deep-mlp", lambda dtype, rng: nl.Sequential(
        nl.Linear(3, 4, rng=rng, dtype=dtype), nl.Bias(4, dtype=dtype), nl.Tanh(),
        nl.Linear(4, 4, rng=rng + 1, dtype=dtype), nl.Bias(4, dtype=dtype), nl.Sigmoid(),
        nl.Linear(4, 1, rng=rng + 2, dtype=dtype)), ((5, 3),),
        torch=mlp_twin, torch_params={**linear_and_bias(0, 0), **linear_and_bias(3, 2), "6.W": ("4.weight", T)},
        not_applicable={"settings": CONTAINER_SETTINGS}),
    LayerCase("small-cnn", lambda dtype, rng: nl.Sequential(
        nl.Conv2D(1, 2, 3, padding=1, rng=rng, dtype=dtype), nl.Tanh(), nl.AvgPool2D(2), nl.Flatten(),
        nl.Linear(8, 3, rng=rng + 1, dtype=dtype), nl.Bias(3, dtype=dtype)), ((2, 1, 4, 4),),
        torch=lambda nn: nn.Sequential(nn.Conv2d(1, 2, 3, padding=1), nn.Tanh(), nn.AvgPool2d(2), nn.Flatten(),
                                       nn.Linear(8, 3)),
        torch_params={**prefixed("0.", CONV, "0."), **linear_and_bias(4, 4)},
        not_applicable={"settings": CONTAINER_SETTINGS}),
    LayerCase("residual-identity", lambda dtype, rng: nl.Residual(nl.Sequential(
        nl.Linear(4, 4, rng=rng, dtype=dtype), nl.Bias(4, dtype=dtype), nl.Tanh())), ((3, 4),),
        torch=lambda nn: torch_residual(nn, nn.Sequential(nn.Linear(4, 4), nn.Tanh())),
        torch_params={"block.0.W": ("block.0.weight", T), "block.1.b": ("block.0.bias", ROW)},
        not_applicable={"settings": CONTAINER_SETTINGS}),
    LayerCase("residual-conv-relu-identity", lambda dtype, rng: nl.Residual(nl.Sequential(
        nl.Conv2D(2, 2, 3, padding=1, rng=rng, dtype=dtype), nl.ReLU(),
        nl.Conv2D(2, 2, 3, padding=1, rng=rng + 1, dtype=dtype))), ((2, 2, 5, 5),),
        torch=lambda nn: torch_residual(nn, nn.Sequential(nn.Conv2d(2, 2, 3, padding=1), nn.ReLU(),
                                                          nn.Conv2d(2, 2, 3, padding=1))),
        torch_params={**prefixed("block.0.", CONV, "block.0."), **prefixed("block.2.", CONV, "block.2.")},
        not_applicable={"settings": CONTAINER_SETTINGS}),
    LayerCase("residual-conv-relu-projection", lambda dtype, rng: nl.Residual(nl.Sequential(
        nl.Conv2D(2, 3, 3, padding=1, rng=rng, dtype=dtype), nl.ReLU(),
        nl.Conv2D(3, 3, 3, padding=1, rng=rng + 1, dtype=dtype)),
        shortcut=nl.Conv2D(2, 3, 1, bias=False, rng=rng + 2, dtype=dtype)), ((2, 2, 5, 5),),
        torch=lambda nn: torch_residual(nn, nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.ReLU(),
                                                          nn.Conv2d(3, 3, 3, padding=1)),
                                        nn.Conv2d(2, 3, 1, bias=False)),
        torch_params={**prefixed("block.0.", CONV, "block.0."), **prefixed("block.2.", CONV, "block.2."),
                      "shortcut.W": "shortcut.weight"},
        not_applicable={"settings": CONTAINER_SETTINGS}),
    LayerCase("residual-projection", lambda dtype, rng: nl.Residual(
        nl.Sequential(nl.Conv2D(2, 3, 3, padding=1, rng=rng, dtype=dtype), nl.Tanh()),
        shortcut=nl.Conv2D(2, 3, 1, bias=False, rng=rng + 1, dtype=dtype)), ((2, 2, 4, 4),),
        torch=lambda nn: torch_residual(nn, nn.Sequential(nn.Conv2d(2, 3, 3, padding=1), nn.Tanh()),
                                        nn.Conv2d(2, 3, 1, bias=False)),
        torch_params={**prefixed("block.0.", CONV, "block.0."), "shortcut.W": "shortcut.weight"},
        not_applicable={"settings": CONTAINER_SETTINGS}),
    LayerCase("resnet-basic-block", lambda dtype, rng: nl.Residual(
        nl.Sequential(nl.Conv2D(2, 3, 3, padding="same", bias=False, rng=rng, dtype=dtype),
                      nl.BatchNorm2d(3, dtype=dtype), nl.Tanh(),
                      nl.Conv2D(3, 3, 3, padding="same", bias=False, rng=rng + 1, dtype=dtype),
                      nl.BatchNorm2d(3, dtype=dtype)),
        shortcut=nl.Sequential(nl.Conv2D(2, 3, 1, bias=False, rng=rng + 2, dtype=dtype),
                               nl.BatchNorm2d(3, dtype=dtype))), ((2, 2, 3, 3),),
        torch=basic_block_twin,
        torch_params={"block.0.W": "block.0.weight", **prefixed("block.1.", BATCHNORM, "block.1."),
                      "block.3.W": "block.3.weight", **prefixed("block.4.", BATCHNORM, "block.4."),
                      "shortcut.0.W": "shortcut.0.weight", **prefixed("shortcut.1.", BATCHNORM, "shortcut.1.")},
        empty_batch=(ValueError, "more than one value per channel"),
        not_applicable={"settings": CONTAINER_SETTINGS}),
    # several inputs, several outputs: the two modules written above
    LayerCase("bilinear-two-inputs", lambda dtype, rng: Bilinear(3, 4, rng=rng, dtype=dtype), ((5, 3), (5, 4)),
              torch=lambda nn: torch_bilinear(nn, 3, 4), torch_params={"W": "weight"},
              not_applicable={"onnx": TEST_ONLY}),
    LayerCase("linear-and-square-two-outputs", lambda dtype, rng: LinearAndSquare(3, 2, rng=rng, dtype=dtype),
              ((4, 3),), torch=lambda nn: torch_linear_and_square(nn, 3, 2), torch_params={"W": "weight"},
              not_applicable={"onnx": TEST_ONLY}),
]


def torch_parallel(nn, *branches):
    """(f₁(X), …, fₖ(X)) in PyTorch, the branches named 0, 1, … as ours."""
    class TorchParallel(nn.Module):
        def __init__(self):
            super().__init__()
            self.branches = nn.ModuleList(branches)

        def forward(self, *inputs):
            return tuple(branch(*inputs) for branch in self.branches)
    return TorchParallel()


MERGE_ENTRIES = [
    # the merges of nnlayers.containers: a fork with two outputs, sums and concatenations of several inputs
    LayerCase("parallel-two-branches", lambda dtype, rng: nl.Parallel(
        nl.Linear(3, 4, rng=rng, dtype=dtype), nl.Sequential(nl.Linear(3, 2, rng=rng + 1, dtype=dtype), nl.Tanh())),
        ((4, 3),), torch=lambda nn: torch_parallel(nn, nn.Linear(3, 4, bias=False),
                                                   nn.Sequential(nn.Linear(3, 2, bias=False), nn.Tanh())),
        torch_params={"0.W": ("branches.0.weight", T), "1.0.W": ("branches.1.0.weight", T)},
        not_applicable={"settings": CONTAINER_SETTINGS}),
    LayerCase("parallel-two-inputs", lambda dtype, rng: nl.Parallel(
        Bilinear(3, 4, rng=rng, dtype=dtype), Bilinear(3, 4, rng=rng + 1, dtype=dtype)), ((5, 3), (5, 4)),
        torch=lambda nn: torch_parallel(nn, torch_bilinear(nn, 3, 4), torch_bilinear(nn, 3, 4)),
        torch_params={"0.W": "branches.0.weight", "1.W": "branches.1.weight"},
        not_applicable={"settings": CONTAINER_SETTINGS, "onnx": TEST_ONLY}),
    LayerCase("add-three-inputs", lambda dtype, rng: nl.Add(), ((4, 3), (4, 3), (4, 3)),
              torch=lambda nn: lambda *Xs: sum(Xs[1:], Xs[0]),
              ),
    LayerCase("concatenate-channels", lambda dtype, rng: nl.Concatenate(axis=1), ((2, 2, 3, 3), (2, 3, 3, 3)),
              torch=lambda nn: lambda *Xs: __import__("torch").cat(Xs, dim=1),
              ),
    LayerCase("two-branch-net", lambda dtype, rng: nl.Sequential(
        nl.Parallel(nl.Linear(3, 4, rng=rng, dtype=dtype), nl.Sequential(nl.Linear(3, 4, rng=rng + 1, dtype=dtype),
                                                                          nl.Tanh())),
        nl.Add(), nl.Bias(4, dtype=dtype)), ((5, 3),),
        torch=lambda nn: nn.Sequential(torch_parallel(nn, nn.Linear(3, 4, bias=False),
                                                      nn.Sequential(nn.Linear(3, 4, bias=False), nn.Tanh())),
                                       torch_sum_of_tuple(nn), torch_bias(nn, 4)),
        torch_params={"0.0.W": ("0.branches.0.weight", T), "0.1.0.W": ("0.branches.1.0.weight", T),
                      "2.b": ("2.bias", ROW)},
        not_applicable={"settings": CONTAINER_SETTINGS}),
]


# -- attention and its parts: LayerNorm, GELU, Softmax, MultiHeadAttention, PositionalEmbedding ------------

LAYERNORM = {"gamma": "weight", "beta": "bias"}
MHA = {name: name for name in ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")}


def torch_masked_softmax(nn, dim=-1):
    """softmax along ``dim`` with a mask (True = masked, as a bool attn_mask): masked_fill with −∞ first."""
    class MaskedSoftmax(nn.Module):
        def forward(self, X, mask=None):
            return (X if mask is None else X.masked_fill(mask.bool(), float("-inf"))).softmax(dim)
    return MaskedSoftmax()


def torch_attention(nn, D, H, causal=False):
    """``nn.MultiheadAttention(D, H, batch_first=True)`` run on our layout: W_q … b_o held as ours (W in×out)
    and handed to the module as its in_proj_weight (W_q, W_k, W_v transposed and stacked), in_proj_bias and
    out_proj through ``torch.func.functional_call``, so that its gradients land on ours. Inputs as ours:
    (X), (X, memory) or (X, memory, key_padding_mask); causal as an attn_mask of s > t."""
    import torch

    class TorchAttention(nn.Module):
        def __init__(self):
            super().__init__()
            for name in MHA:
                setattr(self, name, nn.Parameter(torch.zeros((D, D) if name.startswith("W") else D)))
            self.mha = nn.MultiheadAttention(D, H, batch_first=True)

        def forward(self, X, memory=None, key_padding_mask=None):
            M = X if memory is None else memory
            weights = {"in_proj_weight": torch.cat([self.W_q.T, self.W_k.T, self.W_v.T]),
                       "in_proj_bias": torch.cat([self.b_q, self.b_k, self.b_v]),
                       "out_proj.weight": self.W_o.T, "out_proj.bias": self.b_o}
            T, S = X.shape[1], M.shape[1]
            mask = torch.ones(T, S, dtype=torch.bool).triu(1) if causal else None
            padding = None if key_padding_mask is None else key_padding_mask.bool()
            Z, _ = torch.func.functional_call(self.mha, weights, (X, M, M), {
                "key_padding_mask": padding, "attn_mask": mask, "need_weights": False})
            return Z
    return TorchAttention()


def torch_positional(nn, max_length, D, learned=True):
    """Z = X + P[:T], P a parameter (learned) or a buffer (sinusoidal)."""
    import torch

    class TorchPositional(nn.Module):
        def __init__(self):
            super().__init__()
            if learned:
                self.P = nn.Parameter(torch.zeros(max_length, D))
            else:
                self.register_buffer("P", torch.zeros(max_length, D))

        def forward(self, X):
            return X + self.P[:X.shape[1]]
    return TorchPositional()


def padding_mask(N, S, padded):
    """rng → an N×S key padding mask (True = padding): the last ``padded[n]`` keys of sequence n."""
    def draw(rng):
        mask = np.zeros((N, S), dtype=bool)
        for n, count in enumerate(padded):
            mask[n, S - count:] = count > 0
        return mask
    return draw


def scores_mask(shape, keep_axis=-1):
    """rng → a random boolean mask of ``shape`` (True = masked) that leaves at least one entry of every row
    along ``keep_axis`` unmasked."""
    def draw(rng):
        mask = rng.random(shape) < 0.4
        first = [slice(None)] * len(shape)
        first[keep_axis] = 0
        mask[tuple(first)] = False
        return mask
    return draw


def torch_transformer_block(nn, D, H, mlp_ratio, causal):
    """``nl.TransformerBlock``'s twin: X₁ = X + MHA(LN₁(X)), Z = X₁ + W₂ GELU(W₁ LN₂(X₁) + b₁) + b₂,
    with children named as ours (attention.block.*, mlp.block.*)."""
    hidden = mlp_ratio * D

    class TorchTransformerBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.attention = torch_residual(nn, nn.Sequential(nn.LayerNorm(D), torch_attention(nn, D, H, causal)))
            self.mlp = torch_residual(nn, nn.Sequential(nn.LayerNorm(D), nn.Linear(D, hidden), nn.GELU(),
                                                        nn.Linear(hidden, D)))

        def forward(self, X):
            return self.mlp(self.attention(X))
    return TorchTransformerBlock()


#: ``nl.TransformerBlock``'s parameters onto its twin's: ours Linear, Bias (1, 2) and (4, 5); torch's Linear 1 and 3.
TRANSFORMER_BLOCK = {**prefixed("attention.block.0.", LAYERNORM, "attention.block.0."),
                     **prefixed("attention.block.1.", MHA, "attention.block.1."),
                     **prefixed("mlp.block.0.", LAYERNORM, "mlp.block.0."),
                     **prefixed("mlp.block.", linear_and_bias(1, 1), "mlp.block."),
                     **prefixed("mlp.block.", linear_and_bias(4, 3), "mlp.block.")}


def transformer_block_case(id, D, H, mlp_ratio, causal, shapes):
    """An ``nl.TransformerBlock`` entry (dropout 0) with its PyTorch twin."""
    return LayerCase(id, lambda dtype, rng: nl.TransformerBlock(D, H, mlp_ratio=mlp_ratio, causal=causal, rng=rng,
                                                                dtype=dtype),
                     shapes, torch=lambda nn: torch_transformer_block(nn, D, H, mlp_ratio, causal),
                     torch_params=TRANSFORMER_BLOCK)


def attention_case(id, D, H, shapes, causal=False, dropout=0.0, **options):
    """A MultiHeadAttention entry with its twin (``nn.MultiheadAttention``; none with dropout)."""
    if dropout:     # gradcheck gives the Dropout inside the same generator state before each forward
        options.setdefault("not_applicable", {})["torch"] = NO_TWIN_DROPOUT
    twin = None if dropout else (lambda nn: torch_attention(nn, D, H, causal))
    return LayerCase(id, lambda dtype, rng: nl.MultiHeadAttention(D, H, causal, dropout, rng=rng, dtype=dtype),
                     shapes, torch=twin, torch_params={} if dropout else MHA, **options)


ATTENTION_ENTRIES = [
    LayerCase("layernorm-last-dim", lambda dtype, rng: nl.LayerNorm(5, dtype=dtype), ((3, 4, 5),),
              torch=lambda nn: nn.LayerNorm(5), torch_params=LAYERNORM),
    LayerCase("layernorm-2d-features", lambda dtype, rng: nl.LayerNorm(6, dtype=dtype), ((4, 6),),
              torch=lambda nn: nn.LayerNorm(6), torch_params=LAYERNORM),
    LayerCase("layernorm-last-two-dims", lambda dtype, rng: nl.LayerNorm((3, 4), eps=1e-3, dtype=dtype),
              ((2, 3, 4),), torch=lambda nn: nn.LayerNorm((3, 4), eps=1e-3), torch_params=LAYERNORM),
    elementwise_case("gelu", nl.GELU, "GELU", (3, 4, 5)),
    LayerCase("gelu-wide-range", lambda dtype, rng: nl.GELU(),
              (lambda rng: rng.uniform(-9.0, 9.0, size=(4, 25)),), torch=lambda nn: nn.GELU()),
    LayerCase("softmax-last-axis", lambda dtype, rng: nl.Softmax(), ((3, 5),), torch=lambda nn: nn.Softmax(dim=-1)),
    LayerCase("softmax-axis1", lambda dtype, rng: nl.Softmax(axis=1), ((2, 4, 3),),
              torch=lambda nn: nn.Softmax(dim=1)),
    LayerCase("softmax-masked", lambda dtype, rng: nl.Softmax(), ((2, 3, 5), scores_mask((2, 3, 5))),
              torch=lambda nn: torch_masked_softmax(nn)),
    LayerCase("softmax-masked-broadcast", lambda dtype, rng: nl.Softmax(), ((3, 4, 4), scores_mask((3, 1, 4))),
              torch=lambda nn: torch_masked_softmax(nn)),
    attention_case("attention-self", 8, 2, ((2, 5, 8),)),
    attention_case("attention-self-one-head", 4, 1, ((3, 3, 4),)),
    attention_case("attention-self-causal", 6, 3, ((2, 5, 6),), causal=True),
    attention_case("attention-cross", 8, 4, ((2, 3, 8), (2, 6, 8))),
    attention_case("attention-cross-padding", 6, 2, ((3, 4, 6), (3, 5, 6), padding_mask(3, 5, (0, 2, 4)))),
    attention_case("attention-cross-causal-padding", 4, 2, ((2, 4, 4), (2, 6, 4), padding_mask(2, 6, (1, 3))),
                   causal=True),
    attention_case("attention-dropout-training", 4, 2, ((2, 3, 4),), dropout=0.3, not_applicable={
        "save-load": "training-mode dropout draws from each layer's own generator, so a loaded layer computes "
                     "other masks; the weights' round trip is checked by the eval-mode whole-model file test"}),
    LayerCase("positional-learned", lambda dtype, rng: nl.PositionalEmbedding(7, 4, rng=rng, dtype=dtype),
              ((2, 5, 4),), torch=lambda nn: torch_positional(nn, 7, 4), torch_params={"P": "P"}),
    LayerCase("positional-sinusoidal-odd", lambda dtype, rng: nl.PositionalEmbedding(6, 5, "sinusoidal",
                                                                                      dtype=dtype),
              ((3, 6, 5),), torch=lambda nn: torch_positional(nn, 6, 5, learned=False), torch_params={"P": "P"}),
    # the parts together: a pre-norm Transformer block, X + MHA(LN(X)), then X + MLP(LN(X)) with GELU
    LayerCase("pre-norm-transformer-block", lambda dtype, rng: nl.Sequential(
        nl.Residual(nl.Sequential(nl.LayerNorm(6, dtype=dtype),
                                  nl.MultiHeadAttention(6, 2, causal=True, rng=rng, dtype=dtype))),
        nl.Residual(nl.Sequential(nl.LayerNorm(6, dtype=dtype), nl.Linear(6, 12, rng=rng + 1, dtype=dtype),
                                  nl.Bias(12, dtype=dtype), nl.GELU(), nl.Linear(12, 6, rng=rng + 2, dtype=dtype),
                                  nl.Bias(6, dtype=dtype)))), ((2, 5, 6),),
        torch=lambda nn: nn.Sequential(
            torch_residual(nn, nn.Sequential(nn.LayerNorm(6), torch_attention(nn, 6, 2, causal=True))),
            torch_residual(nn, nn.Sequential(nn.LayerNorm(6), nn.Linear(6, 12), nn.GELU(), nn.Linear(12, 6)))),
        torch_params={**prefixed("0.block.0.", LAYERNORM, "0.block.0."), **prefixed("0.block.1.", MHA, "0.block.1."),
                      **prefixed("1.block.0.", LAYERNORM, "1.block.0."),
                      "1.block.1.W": ("1.block.1.weight", T), "1.block.2.b": ("1.block.1.bias", ROW),
                      "1.block.4.W": ("1.block.3.weight", T), "1.block.5.b": ("1.block.3.bias", ROW)},
        not_applicable={"settings": CONTAINER_SETTINGS}),
    # the same block as one layer, nl.TransformerBlock (dropout 0: the twin has none)
    transformer_block_case("transformer-block-causal", 6, 2, 2, True, ((2, 5, 6),)),
    transformer_block_case("transformer-block-not-causal", 8, 2, 4, False, ((3, 4, 8),)),
    transformer_block_case("transformer-block-one-position", 6, 2, 4, True, ((2, 1, 6),)),
]


def torch_sum_of_tuple(nn):
    """torch.nn.Sequential passes one value on: the tuple of the branches' outputs, summed here."""
    class Sum(nn.Module):
        def forward(self, Zs):
            return sum(Zs[1:], Zs[0])
    return Sum()


# -- sequences: Embedding, the recurrent cells and layers ------------------------------------------------

CELL = {"W_x": ("cell.weight_ih", T), "W_h": ("cell.weight_hh", T), "b_x": "cell.bias_ih", "b_h": "cell.bias_hh"}
SEQUENCE = {"W_x": ("rnn.weight_ih_l0", T), "W_h": ("rnn.weight_hh_l0", T), "b_x": "rnn.bias_ih_l0",
            "b_h": "rnn.bias_hh_l0"}          # torch's layer 0 (of num_layers); ours has one
STATEFUL_GRADCHECK = ("each forward of a stateful layer starts from the previous one's final state, so the "
                      "finite differences' repeated forwards would see another function each time; "
                      "tests/layers/test_recurrent.py checks its gradients from a fixed carried state")


def ids(shape, V):
    """rng → integer ids in 0…V−1 of ``shape``, with repeats (more positions than ids), as text has."""
    return lambda rng: rng.integers(0, V, size=shape)


def torch_sequence(nn, kind, F, H, **options):
    """``nn.RNN``/``LSTM``/``GRU`` (``kind``) with batch_first=True on our inputs and outputs: (X) or
    (X, h0[, c0]) with states N×H (theirs 1×N×H), returning all hidden states N×T×H (not their final state)."""
    class TorchSequence(nn.Module):
        def __init__(self):
            super().__init__()
            self.rnn = getattr(nn, kind)(F, H, batch_first=True, **options)

        def forward(self, X, *states):
            states = tuple(state[None] for state in states)
            Z, _ = self.rnn(X, (states if kind == "LSTM" else states[0]) if states else None)
            return Z
    return TorchSequence()


def torch_cell(nn, kind, F, H, **options):
    """``nn.RNNCell``/``LSTMCell``/``GRUCell`` (``kind``) on our inputs: (x) or (x, h) or (x, h, c); the
    LSTM cell returns (h', c') as ours."""
    class TorchCell(nn.Module):
        def __init__(self):
            super().__init__()
            self.cell = getattr(nn, kind)(F, H, **options)

        def forward(self, x, *states):
            return self.cell(x, (states if kind == "LSTMCell" else states[0]) if states else None)
    return TorchCell()


def sequence_case(id, kind, F, H, shape, states=False, nonlinearity=None, stateful=False):
    """An RNN, LSTM or GRU entry over X of ``shape`` (N×T×F), with initial states as extra inputs when
    ``states``; ``nonlinearity`` for an RNN."""
    options = {} if nonlinearity is None else {"nonlinearity": nonlinearity}
    count = 2 if kind == "LSTM" else 1
    inputs = (shape, *[(shape[0], H)] * (count if states else 0))
    return LayerCase(id, lambda dtype, rng: getattr(nl, kind)(F, H, **options, stateful=stateful, rng=rng,
                                                               dtype=dtype), inputs,
                     torch=lambda nn: torch_sequence(nn, kind, F, H, **options), torch_params=SEQUENCE,
                     not_applicable={"gradcheck": STATEFUL_GRADCHECK} if stateful else {})


def cell_case(id, kind, F, H, N, states=False, nonlinearity=None):
    """An RNNCell, LSTMCell or GRUCell entry over x of N×F, with its states as extra inputs when ``states``."""
    options = {} if nonlinearity is None else {"nonlinearity": nonlinearity}
    count = 2 if kind == "LSTMCell" else 1
    inputs = ((N, F), *[(N, H)] * (count if states else 0))
    return LayerCase(id, lambda dtype, rng: getattr(nl, kind)(F, H, **options, rng=rng, dtype=dtype), inputs,
                     torch=lambda nn: torch_cell(nn, kind, F, H, **options), torch_params=CELL)


SEQUENCE_ENTRIES = [
    # Embedding: ids N×T and N×T×K, each id used several times (δW sums them)
    LayerCase("embedding-ids-3x5", lambda dtype, rng: nl.Embedding(4, 3, rng=rng, dtype=dtype), (ids((3, 5), 4),),
              torch=lambda nn: nn.Embedding(4, 3), torch_params={"W": "weight"}),
    LayerCase("embedding-ids-2x3x4", lambda dtype, rng: nl.Embedding(6, 2, rng=rng, dtype=dtype),
              (ids((2, 3, 4), 6),), torch=lambda nn: nn.Embedding(6, 2), torch_params={"W": "weight"}),
    # the sequence layers, batch first, from zero states and from given ones; T = 1 and a batch of 1 too
    sequence_case("rnn-tanh", "RNN", 3, 4, (2, 5, 3)),
    sequence_case("rnn-tanh-h0", "RNN", 3, 4, (2, 5, 3), states=True),
    sequence_case("rnn-relu", "RNN", 3, 4, (3, 4, 3), nonlinearity="relu"),
    sequence_case("rnn-relu-h0", "RNN", 2, 3, (2, 4, 2), states=True, nonlinearity="relu"),
    sequence_case("lstm", "LSTM", 3, 4, (2, 5, 3)),
    sequence_case("lstm-h0-c0", "LSTM", 3, 2, (3, 4, 3), states=True),
    sequence_case("lstm-batch1-one-step", "LSTM", 2, 3, (1, 1, 2)),
    sequence_case("lstm-stateful", "LSTM", 2, 3, (2, 4, 2), stateful=True),
    sequence_case("gru", "GRU", 3, 4, (2, 5, 3)),
    sequence_case("gru-h0", "GRU", 2, 3, (3, 4, 2), states=True),
    # the cells: one step
    cell_case("rnn-cell", "RNNCell", 3, 4, 2),
    cell_case("rnn-cell-relu-h", "RNNCell", 3, 2, 3, states=True, nonlinearity="relu"),
    cell_case("lstm-cell", "LSTMCell", 3, 4, 2),
    cell_case("lstm-cell-h-c", "LSTMCell", 2, 3, 3, states=True),
    cell_case("gru-cell", "GRUCell", 3, 4, 2),
    cell_case("gru-cell-h", "GRUCell", 2, 3, 3, states=True),
]


CATALOGUE += MERGE_ENTRIES + ATTENTION_ENTRIES + SEQUENCE_ENTRIES


CASES = {case.id: case for case in CATALOGUE}
