"""The sequence and attention chapters' training steps, in pairs: nnlayers' and PyTorch's.

A character LSTM (chapter 7), then a Transformer block (chapter 8).

The model is ``nnlayers.examples.text.char_model("lstm", 81)``: Embedding 81→64, LSTM 64→256,
Linear 256→81 and Bias, on ids N×T = 32×64 (the Austen corpus's 81 symbols), float32. A step is
forward, the softmax cross-entropy against N×T next-character targets, backward, clipping the
gradient's norm to 1, an Adam step (η = 2·10⁻³) and zero_grad: what ``scripts/train_text.py`` and
``benchmarks/text_reference.py`` do once per batch. PyTorch's twin is its ``nn.LSTM(batch_first=True)``.
"""
from __future__ import annotations

import numpy as np

import nnlayers as nl
from nnlayers.examples import text

from .models import torch

__all__ = ["CHAR_LSTM", "char_lstm_nnlayers", "char_lstm_torch", "char_batch", "CharLSTMTorch", "ATTENTION_BLOCK",
           "block_batch", "attention_block_nnlayers", "attention_block_torch", "TransformerBlockTorch"]

#: (vocabulary, embedding, hidden, batch N, window T) of the benchmark's character model.
CHAR_LSTM = (81, 64, 256, 32, 64)
LR, CLIP = 2e-3, 1.0


def char_batch():
    """Ids X and next-character targets Y, N×T int64 each (the same every call)."""
    V, _, _, N, T = CHAR_LSTM
    ids = np.random.default_rng(0).integers(0, V, size=(N, T + 1))
    return ids[:, :-1], ids[:, 1:]


def char_lstm_nnlayers():
    V, E, H, _, _ = CHAR_LSTM
    model = text.char_model("lstm", V, embed=E, hidden=H, rng=0, dtype=np.float32)
    from .steps import nnlayers_step        # here: steps imports this module for its cases
    return nnlayers_step(model, nl.SoftmaxCrossEntropy(), *char_batch(), None,
                         optimizer=nl.Adam(model.parameters(), lr=LR), clip=CLIP)


if torch is not None:
    class CharLSTMTorch(torch.nn.Module):
        """PyTorch's twin of ``char_model("lstm", …)``: Embedding, LSTM (batch first), Linear with bias."""

        def __init__(self, vocab: int, embed: int, hidden: int):
            super().__init__()
            self.embedding = torch.nn.Embedding(vocab, embed)
            self.lstm = torch.nn.LSTM(embed, hidden, batch_first=True)
            self.output = torch.nn.Linear(hidden, vocab)

        def forward(self, ids):
            return self.output(self.lstm(self.embedding(ids))[0])
else:
    CharLSTMTorch = None


def char_lstm_torch():
    V, E, H, _, _ = CHAR_LSTM
    torch.manual_seed(0)
    model = CharLSTMTorch(V, E, H)
    optimizer = torch.optim.Adam(model.parameters(), lr=LR)
    loss = torch.nn.CrossEntropyLoss()
    X, Y = (torch.from_numpy(array) for array in char_batch())

    def step():
        loss(model(X).reshape(-1, V), Y.reshape(-1)).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), CLIP)
        optimizer.step()
        optimizer.zero_grad()
    return step


# -- the attention chapter's block -----------------------------------------------------------------------

#: (batch N, length T, width D, heads) of the benchmark's Transformer block.
ATTENTION_BLOCK = (16, 128, 128, 4)


def block_batch():
    """Inputs X and targets, N×T×D float32 each (the same every call)."""
    N, T, D, _ = ATTENTION_BLOCK
    rng = np.random.default_rng(0)
    return rng.normal(size=(N, T, D)).astype(np.float32), rng.normal(size=(N, T, D)).astype(np.float32)


def attention_block_nnlayers():
    """``nl.TransformerBlock`` (pre-norm, causal, MLP 4D with GELU), Euclidean loss, Adam (η = 10⁻³)."""
    _, _, D, heads = ATTENTION_BLOCK
    block = nl.TransformerBlock(D, heads, causal=True, rng=0, dtype=np.float32)
    from .steps import nnlayers_step
    return nnlayers_step(block, nl.EuclideanLoss(), *block_batch(), None, optimizer=nl.Adam(block.parameters(), lr=1e-3))


if torch is not None:
    class TransformerBlockTorch(torch.nn.Module):
        """PyTorch's twin of ``nl.TransformerBlock``: x + MHA(LN(x)) (causal), then x + MLP(LN(x)) with GELU."""

        def __init__(self, width: int, heads: int, length: int):
            super().__init__()
            self.norm1, self.norm2 = torch.nn.LayerNorm(width), torch.nn.LayerNorm(width)
            self.attention = torch.nn.MultiheadAttention(width, heads, batch_first=True)
            self.mlp = torch.nn.Sequential(torch.nn.Linear(width, 4 * width), torch.nn.GELU(),
                                           torch.nn.Linear(4 * width, width))
            self.register_buffer("mask", torch.ones(length, length, dtype=torch.bool).triu(1))

        def forward(self, x):
            h = self.norm1(x)
            x = x + self.attention(h, h, h, attn_mask=self.mask, need_weights=False)[0]
            return x + self.mlp(self.norm2(x))
else:
    TransformerBlockTorch = None


def attention_block_torch():
    _, T, D, heads = ATTENTION_BLOCK
    torch.manual_seed(0)
    block = TransformerBlockTorch(D, heads, T)
    optimizer = torch.optim.Adam(block.parameters(), lr=1e-3)
    X, target = (torch.from_numpy(array) for array in block_batch())

    def step():
        (0.5 * ((block(X) - target) ** 2).sum()).backward()      # nl.EuclideanLoss: ½ Σ, not divided by N
        optimizer.step()
        optimizer.zero_grad()
    return step
