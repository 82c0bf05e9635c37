"""The LSTM's time loops on numpy arrays, feature-major: the same formulas as ``lstm_step`` and
``lstm_step_backward`` (nnlayers/layers/rnn_cells.py), in a faster layout.

Three things make the difference, none changing what is computed:

* **Feature-major arrays.** Every step works on transposed blocks, features first, stored
  T × feature × N so that each step's block is contiguous (numpy's element-wise loops are much
  slower on strided blocks): one step's product is aᵀ = W_hᵀ hᵀ (4H×H · H×N), the shape
  OpenBLAS runs fastest when N is small (a few dozen), faster than h W_h (N×H · H×4H),
  and the gates i, f, g, o are row blocks. For the weight gradients, δa and the states of all
  steps are copied once to feature × (T·N), so that δW_h and δW_x are single products.
* **σ through tanh**, σ(x) = ½ + ½ tanh(x/2): all four gates in four passes over the 4H rows
  (scale, tanh, scale, shift), with the g rows scaled by 1 and shifted by 0, so they stay
  tanh(a_g). Equal to the reference's σ to within rounding of 1 (absolute: for σ near 0 the
  relative precision is lower than the reference's, which is exact down to subnormals).
* **Work in place**: the gates overwrite the pre-activations, each step's products and element-wise
  work write into preallocated arrays; no array is allocated inside the loops.

tests/kernels/test_recurrent_kernels.py proves both loops equal to the reference path.
"""
from __future__ import annotations

import numpy as np

__all__ = ["forward", "backward"]


def _gate_constants(H: int, N: int, dtype):
    """The scale and shift (4H×N, full size: numpy's broadcasting of a column is slower) taking tanh to σ
    on the i, f, o rows and leaving the g rows as tanh."""
    scale = np.full((4 * H, N), 0.5, dtype=dtype)
    scale[2 * H:3 * H] = 1.0
    shift = np.full((4 * H, N), 0.5, dtype=dtype)
    shift[2 * H:3 * H] = 0.0
    return scale, shift


def forward(layer, X: np.ndarray, initial) -> tuple:
    """H (N×T×H) and the final states (h_T, c_T) of ``layer`` (an LSTM) over X (N×T×F) from
    ``initial`` = (h₀, c₀); keeps, in the layer's caches, what ``backward`` needs."""
    N, T, F = X.shape
    H = layer.hidden_size
    W_x, W_h, dtype = layer.W_x.data, layer.W_h.data, X.dtype
    X_t = np.ascontiguousarray(X.transpose(1, 2, 0))                        # T×F×N
    gates = np.matmul(np.ascontiguousarray(W_x.T), X_t)                      # x W_x of every step, T×4H×N
    gates += (layer.b_x.data + layer.b_h.data)[:, None]
    W_hT = np.ascontiguousarray(W_h.T)                                       # 4H×H
    S = np.empty((T + 1, H, N), dtype=dtype)                                 # h₀ … h_T
    C = np.empty((T + 1, H, N), dtype=dtype)                                 # c₀ … c_T
    tanh_C = np.empty((T, H, N), dtype=dtype)
    S[0], C[0] = initial[0].T, initial[1].T
    scale, shift = _gate_constants(H, N, dtype)
    product = np.empty((4 * H, N), dtype=dtype)
    ig = np.empty((H, N), dtype=dtype)
    for t in range(T):
        a = gates[t]                                                         # the gates overwrite a, in place:
        np.matmul(W_hT, S[t], out=product)
        a += product                                                         # a = x W_x + b + h W_h
        a *= scale
        np.tanh(a, out=a)                                                    # i, f, o = ½ + ½ tanh(a/2)
        a *= scale                                                           # g = tanh(a_g)
        a += shift
        i, f, g, o = a[:H], a[H:2 * H], a[2 * H:3 * H], a[3 * H:]
        c = C[t + 1]
        np.multiply(f, C[t], out=c)                                          # c' = f ⊙ c + i ⊙ g
        np.multiply(i, g, out=ig)
        c += ig
        np.tanh(c, out=tanh_C[t])
        np.multiply(o, tanh_C[t], out=S[t + 1])                              # h' = o ⊙ tanh(c')
    layer._X, layer._H, layer._saved = X_t, S, (C, gates, tanh_C)
    # a copy, the caller's (ascontiguousarray would return a view of the cache S when N = 1)
    return S[1:].transpose(2, 0, 1).copy(), (S[T].T.copy(), C[T].T.copy())


def backward(layer, dH: np.ndarray) -> tuple:
    """BPTT from δH (N×T×H): adds the parameter gradients; returns δX (N×T×F) and (δh₀, δc₀)."""
    X_t, S, (C, G, tanh_C) = layer._X, layer._H, layer._saved
    T, F, N = X_t.shape
    H = layer.hidden_size
    dtype = G.dtype
    dH_t = np.ascontiguousarray(dH.transpose(1, 2, 0))                      # T×H×N
    dA = np.empty_like(G)                                                    # δa of every step, T×4H×N
    W_h = layer.W_h.data
    dh = np.zeros((H, N), dtype=dtype)                                       # what step t+1 sends back
    dc = np.zeros((H, N), dtype=dtype)
    derivative = np.empty((4 * H, N), dtype=dtype)
    work = np.empty((H, N), dtype=dtype)
    for t in reversed(range(T)):
        dh += dH_t[t]
        gates, tc, da = G[t], tanh_C[t], dA[t]
        i, f, g, o = gates[:H], gates[H:2 * H], gates[2 * H:3 * H], gates[3 * H:]
        np.multiply(tc, tc, out=work)                                        # δc += δh' ⊙ o ⊙ (1 − tanh²(c'))
        np.subtract(1, work, out=work)
        work *= o
        work *= dh
        dc += work
        np.subtract(1, gates, out=derivative)                                # σ′ = σ(1 − σ) on i, f, o …
        derivative *= gates
        np.multiply(g, g, out=derivative[2 * H:3 * H])                      # … tanh′ = 1 − g² on g
        np.subtract(1, derivative[2 * H:3 * H], out=derivative[2 * H:3 * H])
        np.multiply(dc, g, out=da[:H])                                       # δi = δc ⊙ g
        np.multiply(dc, C[t], out=da[H:2 * H])                               # δf = δc ⊙ c
        np.multiply(dc, i, out=da[2 * H:3 * H])                              # δg = δc ⊙ i
        np.multiply(dh, tc, out=da[3 * H:])                                  # δo = δh' ⊙ tanh(c')
        da *= derivative                                                     # δa
        np.matmul(W_h, da, out=dh)                                           # δh_prev = δa W_hᵀ, transposed
        dc *= f                                                              # δc_prev = δc ⊙ f
    rows = np.ascontiguousarray(dA.transpose(1, 0, 2)).reshape(4 * H, T * N)  # feature × (t, n): one product each
    states = np.ascontiguousarray(S[:T].transpose(1, 0, 2)).reshape(H, T * N)
    layer.W_h.grad += (rows @ states.T).T                                    # δW_h = Σₜ hₜ₋₁ᵀ δaₜ
    layer.W_x.grad += (rows @ X_t.transpose(1, 0, 2).reshape(F, T * N).T).T  # δW_x = Σₜ xₜᵀ δaₜ
    summed = rows.sum(axis=1)
    layer.b_h.grad += summed
    layer.b_x.grad += summed
    dX = (layer.W_x.data @ rows).reshape(F, T, N).transpose(2, 1, 0)        # δxₜ = δaₜ W_xᵀ, back to N×T×F
    return dX, (dh.T.copy(), dc.T.copy())
