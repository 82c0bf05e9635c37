"""Multi-head attention (Vaswani et al., 2017): ``MultiHeadAttention``, self-attention and cross-attention.

Notation: N sequences in a batch, T query positions, S key positions (S = T in
self-attention), D = ``embed_dim`` features, H = ``num_heads`` heads of
d = D/H features each. Queries come from X (N×T×D), keys and values from the
memory M (N×S×D), which is X itself in self-attention.

The forward pass, with the shape of each step::

    Q = X W_q + b_q,   K = M W_k + b_k,   V = M W_v + b_v        N×T×D, N×S×D, N×S×D
    split heads: features h·d … (h+1)·d − 1 are head h            Q: N×H×T×d,  K, V: N×H×S×d
    A = Q Kᵀ / √d                                                 N×H×T×S   scaled dot products
    A[n, h, t, s] = −∞ where key s is hidden from query t          causal: s > t;  padding: key s of sample n
    P = softmax(A) over s                                         each row: weights over the keys, summing to 1
    P̃ = dropout(P)                                                training mode only (P̃ = P in evaluation)
    O = P̃ V                                                       N×H×T×d   each query's weighted average of values
    merge heads: O → N×T×D                                        (the inverse of the split)
    Z = O W_o + b_o                                               N×T×D

The 1/√d keeps the scores' variance near 1 whatever d is (a dot product of d
unit-variance terms has variance d), so the softmax does not saturate.

The backward pass, from δZ, undoing one step at a time::

    δb_o = Σ δZ (over all N·T rows),   δW_o = Oᵀ δZ,   δO = δZ W_oᵀ     then split into heads
    δP̃ = δO Vᵀ,   δV = P̃ᵀ δO                                        O = P̃ V: a product's two gradients
    δP = M_drop ⊙ δP̃                                                  dropout's mask (δP = δP̃ in evaluation)
    δA = P ⊙ (δP − Σ_s δP ⊙ P)                                        the softmax Jacobian (see ``Softmax``)
    a masked score has P = 0, so δA = 0 there: the mask needs no backward of its own
    δQ = δA K / √d,   δK = δAᵀ Q / √d                                 A = Q Kᵀ / √d
    merge heads: δQ → N×T×D;  δK, δV → N×S×D
    δW_q = Xᵀ δQ,  δb_q = Σ δQ;   δW_k = Mᵀ δK,  δb_k = Σ δK;   δW_v = Mᵀ δV,  δb_v = Σ δV
    δX = δQ W_qᵀ,   δM = δK W_kᵀ + δV W_vᵀ                            (M feeds both K and V)
    self-attention, M = X:  δX = δQ W_qᵀ + δK W_kᵀ + δV W_vᵀ          (X feeds all three)

The heads need no rule of their own: splitting and merging only rearrange
features, and each head's products are separate slices of one batched matrix
product over (N, H) (``np.matmul`` on N×H×…×… arrays), so there is no loop over
heads or positions.
"""
from __future__ import annotations

import math

import numpy as np

from .._args import flag, positive_int, real
from ..backend import get_array_module
from ..init import as_rng, initial_weights
from ..module import Module, ShapeError
from .activations import boolean_mask, masked_softmax, softmax_backward
from .dropout import Dropout

__all__ = ["MultiHeadAttention"]


class MultiHeadAttention(Module):
    """Multi-head scaled dot-product attention, N×T×D → N×T×D (the formulas, forward and backward step by step:
    the docstring of ``nnlayers/layers/attention.py``).

    Three ways to call it (``Module.__call__`` takes them positionally)::

        Z = mha(X)                               self-attention;   backward(δZ) → δX
        Z = mha(X, memory)                       cross-attention;  backward(δZ) → (δX, δmemory)
        Z = mha(X, memory, key_padding_mask)     with padding;     backward(δZ) → (δX, δmemory, None)

    X is N×T×D (the queries); ``memory`` N×S×D (the keys and values), or None
    for self-attention: ``mha(X, None, key_padding_mask)`` is self-attention with
    padding, whose δmemory is None (X's gradient holds every path).
    ``key_padding_mask`` is N×S boolean, **True = padding** (PyTorch's convention):
    those keys get attention weight 0 in every query of their sample. It is data,
    not a parameter, and has no gradient (None); 0/1 numbers are read as booleans.

    ``causal=True`` hides from query t every key s > t (the upper triangle of the
    T×S scores), so a position sees only itself and earlier ones, as a language
    model must. A query whose every key is hidden (all keys of a sample padded, or,
    with ``causal``, all keys up to t) is refused with a ValueError: its softmax is
    0/0 (PyTorch returns NaN).

    ``dropout``: the probability of zeroing each attention weight in P during
    training (scaled by 1/(1 − p), as PyTorch's ``dropout`` argument does); a
    child ``Dropout`` layer named ``dropout``, drawing from ``rng``, the identity
    in ``eval()``.

    Parameters: W_q, W_k, W_v, W_o (D×D, applied as X W, in×out like ``Linear``'s)
    and b_q, b_k, b_v, b_o (D). PyTorch's ``nn.MultiheadAttention`` stores the
    first three stacked and transposed, so, with ``mha = nn.MultiheadAttention(D, H)``::

        W_q = in_proj_weight[:D].T    W_k = in_proj_weight[D:2D].T    W_v = in_proj_weight[2D:].T
        b_q, b_k, b_v = in_proj_bias[:D], in_proj_bias[D:2D], in_proj_bias[2D:]
        W_o = out_proj.weight.T       b_o = out_proj.bias

    Initialisation: each W Xavier/Glorot uniform, U(−a, a) with a = √(6/(D + D)),
    drawn from ``rng`` (an int seed or a ``numpy.random.Generator``); biases zero.
    (PyTorch draws in_proj_weight as one 3D×D Xavier matrix, a = √(6/4D), and
    out_proj.weight as a Linear's, a = 1/√D.) ``dtype``: of the parameters (a numpy
    dtype or its name); the inputs are converted to it.

    Cache: X and the memory (None in self-attention), the heads Q/√d, K and V, the
    weights P and P̃ (after dropout), the merged O, and which inputs forward took.
    ``attention_weights`` gives a copy of the last forward's P (for attention maps).
    """

    cache_names = ("_X", "_M", "_Q", "_K", "_V", "_P", "_Pd", "_O", "_given")

    def __init__(self, embed_dim: int, num_heads: int, causal: bool = False, dropout: float = 0.0, *,
                 rng=None, dtype=np.float64):
        super().__init__()
        name = type(self).__name__
        D = self.embed_dim = positive_int(embed_dim, "embed_dim", name)
        H = self.num_heads = positive_int(num_heads, "num_heads", name)
        if D % H:
            raise ValueError(f"{name}: embed_dim={D} is not divisible by num_heads={H}; each head takes "
                             f"embed_dim / num_heads features")
        self.head_dim = D // H
        self.causal = flag(causal, "causal", name)
        p = real(dropout, "dropout", name, low=0.0, high=1.0, high_open=True)
        rng = as_rng(rng)
        self.W_q = self.add_parameter("W_q", initial_weights("xavier", (D, D), D, D, rng, dtype))
        self.W_k = self.add_parameter("W_k", initial_weights("xavier", (D, D), D, D, rng, dtype))
        self.W_v = self.add_parameter("W_v", initial_weights("xavier", (D, D), D, D, rng, dtype))
        self.W_o = self.add_parameter("W_o", initial_weights("xavier", (D, D), D, D, rng, dtype))
        self.b_q = self.add_parameter("b_q", np.zeros(D, dtype=dtype))
        self.b_k = self.add_parameter("b_k", np.zeros(D, dtype=dtype))
        self.b_v = self.add_parameter("b_v", np.zeros(D, dtype=dtype))
        self.b_o = self.add_parameter("b_o", np.zeros(D, dtype=dtype))
        self.attention_dropout = self.add_module("dropout", Dropout(p, rng=rng))
        self._X = self._M = self._Q = self._K = self._V = self._P = self._Pd = self._O = self._given = None

    # -- forward --------------------------------------------------------------------------------------
    def forward(self, X, memory=None, key_padding_mask=None):
        """Z = softmax(Q Kᵀ/√d, masked) V, heads merged, W_o applied (this module's docstring)."""
        X = self._sequence(X, "X", "T")
        M = X if memory is None else self._sequence(memory, "memory", "S")
        if M.shape[0] != X.shape[0]:
            raise ShapeError(f"{self!r}: X and memory must hold the same number of sequences N, got shapes "
                             f"{X.shape} and {M.shape}")
        N, T, D = X.shape
        S = M.shape[1]
        mask = self._hidden_keys(key_padding_mask, N, T, S, get_array_module(X))
        Q = self._split(X.reshape(N * T, D) @ self.W_q.data + self.b_q.data, N, T)     # N×H×T×d
        K = self._split(M.reshape(N * S, D) @ self.W_k.data + self.b_k.data, N, S)     # N×H×S×d
        V = self._split(M.reshape(N * S, D) @ self.W_v.data + self.b_v.data, N, S)     # N×H×S×d
        Q = Q * (1.0 / math.sqrt(self.head_dim))           # Q/√d: scaled once, on N·T·D values, not N·H·T·S
        A = Q @ K.swapaxes(-1, -2)                          # A = Q Kᵀ/√d           N×H×T×S
        P = masked_softmax(A, mask)                         # P = softmax(A) over s, hidden keys 0
        Pd = self.attention_dropout.forward(P)              # P̃ = dropout(P)
        O = self._merge(Pd @ V)                             # O = P̃ V, heads merged  N×T×D
        Z = O.reshape(N * T, D) @ self.W_o.data + self.b_o.data                       # Z = O W_o + b_o
        self._X, self._M = X, (None if memory is None else M)
        self._Q, self._K, self._V, self._P, self._Pd, self._O = Q, K, V, P, Pd, O
        self._given = 1 if memory is None and key_padding_mask is None else 2 if key_padding_mask is None else 3
        return Z.reshape(N, T, D)

    def _sequence(self, X, what: str, length: str):
        """``X`` as an N×L×D array of the parameters' dtype, or a ShapeError naming the layer and the shape."""
        W = self.W_q.data
        X = self.float_input(X, W.dtype, like=W)
        if X.ndim != 3 or X.shape[2] != self.embed_dim:
            raise ShapeError(f"{self!r}: expected {what} of shape (N, {length}, {self.embed_dim}), got shape "
                             f"{X.shape}")
        return X

    def _split(self, Y, N: int, L: int):
        """N·L×D → N×H×L×d: head h takes features h·d … (h+1)·d − 1 (a view, no copy)."""
        return Y.reshape(N, L, self.num_heads, self.head_dim).transpose(0, 2, 1, 3)

    def _merge(self, Y):
        """N×H×L×d → N×L×D, the inverse of ``_split``."""
        N, _, L, _ = Y.shape
        return Y.transpose(0, 2, 1, 3).reshape(N, L, self.embed_dim)

    def _hidden_keys(self, key_padding_mask, N: int, T: int, S: int, xp):
        """Which keys each query may not see (True), broadcastable to N×H×T×S, or None for none.

        causal: key s > t (1×1×T×S);  padding: the keys key_padding_mask marks (N×1×1×S); either hides.
        Refuses a query left with no key to see.
        """
        if S == 0 and N * T > 0:
            raise ShapeError(f"{self!r}: memory of shape (N, 0, {self.embed_dim}) has no positions, so the "
                             "queries have no keys to attend to")
        mask = None
        if self.causal:
            mask = (xp.arange(S)[None, :] > xp.arange(T)[:, None])[None, None]      # s > t
        if key_padding_mask is not None:
            padding = boolean_mask(self, key_padding_mask)
            if padding.shape != (N, S):
                raise ShapeError(f"{self!r}: key_padding_mask must have shape (N, S) = ({N}, {S}), one flag "
                                 f"per key of each sequence (True = padding), got shape {padding.shape}")
            padding = padding[:, None, None, :]
            mask = padding if mask is None else mask | padding
        if mask is not None:
            blind = xp.all(mask, axis=-1)                                            # N×1×T (or N×1×1)
            if bool(xp.any(blind)):
                n, _, t = (int(i) for i in xp.argwhere(blind)[0])
                why = (f"key_padding_mask marks all {S} keys of sequence {n} as padding" if not self.causal else
                       f"causal hides the keys after query {t} of sequence {n}, and key_padding_mask marks "
                       f"keys 0 … {min(t, S - 1)} as padding")
                raise ValueError(f"{self!r}: every key is masked for a query: {why}; attention over no keys "
                                 "is undefined (PyTorch gives NaN): leave each query at least one key")
        return mask

    # -- backward -------------------------------------------------------------------------------------
    def backward(self, dZ):
        """δW, δb of the four projections accumulated; returns δX, (δX, δmemory) or (δX, δmemory, None),
        as forward was called (this module's docstring, step by step)."""
        X = self.forward_cache(self._X)
        N, T, D = X.shape
        dZ = self.check_grad(dZ, (N, T, D))
        M = X if self._M is None else self._M
        S = M.shape[1]
        Q, K, V, P, Pd, O = self._Q, self._K, self._V, self._P, self._Pd, self._O
        dZ = dZ.reshape(N * T, D)
        self.b_o.grad += dZ.sum(axis=0)                                  # δb_o = Σ δZ
        self.W_o.grad += O.reshape(N * T, D).T @ dZ                      # δW_o = Oᵀ δZ
        dO = self._split(dZ @ self.W_o.data.T, N, T)                     # δO = δZ W_oᵀ, in heads N×H×T×d
        dPd = dO @ V.swapaxes(-1, -2)                                    # δP̃ = δO Vᵀ              N×H×T×S
        dV = self._merge(Pd.swapaxes(-1, -2) @ dO).reshape(N * S, D)     # δV = P̃ᵀ δO, merged      N·S×D
        dP = self.attention_dropout.backward(dPd)                        # δP = M_drop ⊙ δP̃
        dA = softmax_backward(P, dP)                                     # δA = P ⊙ (δP − Σ δP ⊙ P)
        scale = 1.0 / math.sqrt(self.head_dim)
        dQ = self._merge(dA @ K).reshape(N * T, D)                       # δQ = δA K / √d
        dQ *= scale
        dK = self._merge(dA.swapaxes(-1, -2) @ Q).reshape(N * S, D)      # δK = δAᵀ (Q/√d)
        X2, M2 = X.reshape(N * T, D), M.reshape(N * S, D)
        self.W_q.grad += X2.T @ dQ                                       # δW_q = Xᵀ δQ
        self.b_q.grad += dQ.sum(axis=0)
        self.W_k.grad += M2.T @ dK                                       # δW_k = Mᵀ δK
        self.b_k.grad += dK.sum(axis=0)
        self.W_v.grad += M2.T @ dV                                       # δW_v = Mᵀ δV
        self.b_v.grad += dV.sum(axis=0)
        dX = dQ @ self.W_q.data.T                                        # δX = δQ W_qᵀ
        dM = dK @ self.W_k.data.T
        dM += dV @ self.W_v.data.T                                       # δM = δK W_kᵀ + δV W_vᵀ
        if self._M is None:                                              # self-attention: X was M too
            dX += dM
            dM = None
        dX = dX.reshape(N, T, D)
        dM = None if dM is None else dM.reshape(N, S, D)
        return dX if self._given == 1 else (dX, dM) if self._given == 2 else (dX, dM, None)

    # -- what the last forward pass attended to ---------------------------------------------------------
    @property
    def attention_weights(self):
        """The attention weights P of the last forward pass, N×H×T×S: P[n, h, t, s] is the weight query t
        of sequence n gives key s in head h (each row sums to 1 over s; hidden keys 0). Before dropout
        (P, not P̃). A copy, read-only in effect: changing it changes nothing in the layer. None before
        the first forward and after ``clear_cache()``."""
        return None if self._P is None else self._P.copy()

    # -- settings -------------------------------------------------------------------------------------
    def settings(self) -> dict:
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "causal": self.causal,
                "dropout": self.attention_dropout.p, "dtype": self.W_q.data.dtype.name}

    def extra_repr(self) -> str:
        settings = self.settings()
        text = f"embed_dim={self.embed_dim}, num_heads={self.num_heads}"
        if self.causal:
            text += ", causal=True"
        if settings["dropout"]:
            text += f", dropout={settings['dropout']}"
        return text if settings["dtype"] == "float64" else f"{text}, dtype={settings['dtype']!r}"

    def __repr__(self) -> str:
        """One line, as a layer's (its dropout child shows as the ``dropout`` setting), so that error
        messages naming it stay on one line."""
        return f"{type(self).__name__}({self.extra_repr()})"
