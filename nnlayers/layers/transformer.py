"""The Transformer block (pre-norm, as GPT-2): attention and an MLP, each inside a residual connection.

::

    X₁ = X + MHA(LN₁(X))                      attention: each position gathers from the others
    Z  = X₁ + W₂ GELU(W₁ LN₂(X₁) + b₁) + b₂    the MLP: each position on its own, D → 4D → D

Nothing here needs a backward of its own: the block is ``Residual``, ``LayerNorm``,
``MultiHeadAttention``, ``Linear``, ``Bias`` and ``GELU``, and the chain rule through
them is what ``Sequential`` and ``Residual`` already do (δX = δZ + block.backward(δZ) at
each residual connection: the identity path hands every block's input the output's
gradient unchanged, which is why deep stacks of these blocks train).
"""
from __future__ import annotations

import numpy as np

from .._args import flag, positive_int, real
from ..containers import Residual, Sequential
from ..init import as_rng
from ..module import Module
from .activations import GELU
from .attention import MultiHeadAttention
from .dropout import Dropout
from .linear import Bias, Linear
from .norm import LayerNorm

__all__ = ["TransformerBlock"]


class TransformerBlock(Module):
    """X + MHA(LN(X)), then X + MLP(LN(X)) with GELU: N×T×D → N×T×D (the module docstring's formulas).

    ``embed_dim`` D, ``num_heads`` (dividing D), ``mlp_ratio``: the MLP's hidden width is
    ``mlp_ratio`` × D (4 in GPT-2); ``causal``: each position attends to itself and earlier
    ones only (a language model); ``dropout``: the probability of zeroing attention weights and
    each branch's output, in training mode.

    Children: ``attention`` = Residual(Sequential(LayerNorm, MultiHeadAttention[, Dropout])) and
    ``mlp`` = Residual(Sequential(LayerNorm, Linear, Bias, GELU, Linear, Bias[, Dropout])), so the
    parameters are named ``attention.block.1.W_q``, ``mlp.block.1.W``, …
    Cache: none of its own; the layers inside cache what they need.
    """

    def __init__(self, embed_dim: int, num_heads: int, *, mlp_ratio: int = 4, causal: bool = False,
                 dropout: float = 0.0, rng=None, dtype=np.float64):
        super().__init__()
        name = type(self).__name__
        D = self.embed_dim = positive_int(embed_dim, "embed_dim", name)
        self.num_heads = positive_int(num_heads, "num_heads", name)
        self.mlp_ratio = positive_int(mlp_ratio, "mlp_ratio", name)
        self.causal = flag(causal, "causal", name)
        self.dropout = real(dropout, "dropout", name, low=0.0, high=1.0, high_open=True)
        rng = as_rng(rng)
        hidden = self.mlp_ratio * D
        attention = [LayerNorm(D, dtype=dtype),
                     MultiHeadAttention(D, self.num_heads, self.causal, self.dropout, rng=rng, dtype=dtype)]
        mlp = [LayerNorm(D, dtype=dtype), Linear(D, hidden, rng=rng, dtype=dtype), Bias(hidden, dtype=dtype), GELU(),
               Linear(hidden, D, rng=rng, dtype=dtype), Bias(D, dtype=dtype)]
        if self.dropout:
            attention.append(Dropout(self.dropout, rng=rng))
            mlp.append(Dropout(self.dropout, rng=rng))
        self.attention = self.add_module("attention", Residual(Sequential(*attention)))
        self.mlp = self.add_module("mlp", Residual(Sequential(*mlp)))

    def forward(self, X):
        """X₁ = X + MHA(LN₁(X));  Z = X₁ + MLP(LN₂(X₁))."""
        return self.mlp.forward(self.attention.forward(X))

    def backward(self, dZ):
        """δX₁ = δZ + mlp's backward(δZ);  δX = δX₁ + attention's backward(δX₁) (each Residual's rule)."""
        return self.attention.backward(self.mlp.backward(dZ))

    def settings(self) -> dict:
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "mlp_ratio": self.mlp_ratio,
                "causal": self.causal, "dropout": self.dropout, "dtype": self.dtype.name}

    def extra_repr(self) -> str:
        text = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.mlp_ratio != 4:
            text += f", mlp_ratio={self.mlp_ratio}"
        if self.causal:
            text += ", causal=True"
        if self.dropout:
            text += f", dropout={self.dropout}"
        return text if self.dtype.name == "float64" else f"{text}, dtype={self.dtype.name!r}"
