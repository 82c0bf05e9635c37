"""Recurrent layers over whole sequences: ``RNN``, ``LSTM``, ``GRU``, with backpropagation through time.

Each applies its cell's step (``nnlayers.layers.rnn_cells``, where the formulas
are) at every time step, batch first: X of shape N×T×F gives all the hidden
states H of shape N×T×H. Backpropagation through time (BPTT) is the chain rule
along that chain: going back from t = T to 1, the gradient reaching hₜ is what
the output sends to it (δHₜ) plus what step t+1 sends back (δhₜ from its
backward), and each step's backward turns it into δaₜ, the gradient of that
step's pre-activations. The weights are shared by all steps, so their
gradients are sums over t, taken as one product each after the loop:

    δW_h += Σₜ hₜ₋₁ᵀ δaₜ          δb_h += Σₜ Σₙ δaₜ
    δW_x += Σₜ xₜᵀ δaₜ            δb_x += Σₜ Σₙ δaₜ          δxₜ = δaₜ W_xᵀ

and likewise the input projections of all steps, x W_x + b_x, are one product
before the loop. Inside the loops only what must be sequential remains: one
product with W_h and the gates' element-wise work per step. Time steps are
stored time-major (T×N×…) so that each step is one contiguous block.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..kernels import recurrent_kernel_for
from ..module import Module, ShapeError
from .._args import flag as _flag
from .rnn_cells import (add_recurrent_parameters, check_nonlinearity, check_states, gru_step, gru_step_backward,
                        lstm_step, lstm_step_backward, recurrent_settings, rnn_step, rnn_step_backward)

__all__ = ["RNN", "LSTM", "GRU"]


class Recurrent(Module):
    """What RNN, LSTM and GRU share: parameters, inputs and states, the input projection before the time
    loop and the parameter gradients after it. A subclass writes the loops: ``run`` (forward over t)
    and ``run_backward`` (BPTT).

    ``forward(X)`` starts from zero states, ``forward(X, h0)`` (LSTM: ``forward(X, h0, c0)``) from
    given ones (N×H each); ``backward(δH)`` returns δX, or (δX, δh0[, δc0]) when the states were given.
    After a forward, ``state`` holds the final state: h_T (N×H), or (h_T, c_T) for an LSTM.

    ``stateful=True``: a forward without given states starts from the last forward's final state (a
    copy: no gradient flows back into the previous batch), which is truncated backpropagation through
    time over a long sequence cut into consecutive windows; ``reset_state()`` starts again from zeros.
    A stateful layer refuses a batch of another size than the state's.

    Cache: the input X (time-major; feature-major on the fast path), the hidden states and the per-step
    values each ``run`` keeps.
    """

    gates = 1
    state_names = ("h0",)
    cache_names = ("_X", "_H", "_saved", "_shape")

    def __init__(self, input_size: int, hidden_size: int, *, stateful: bool = False, rng=None, dtype=np.float64):
        super().__init__()
        add_recurrent_parameters(self, input_size, hidden_size, self.gates, rng, dtype)
        self.stateful = _flag(stateful, "stateful", type(self).__name__)
        self.state = None
        self._X = self._H = self._saved = self._shape = self._kernel = None

    def reset_state(self) -> None:
        """Forget the final state: the next forward (stateful or not) starts from zeros."""
        self.state = None

    # -- forward -------------------------------------------------------------------------------------
    def forward(self, X, *states):
        """H: hₜ for t = 1…T (N×T×H), from the input projection X W_x + b_x and the time loop ``run``."""
        W_x = self.W_x.data
        X = self.float_input(X, W_x.dtype, like=W_x)
        if X.ndim != 3 or X.shape[2] != self.input_size:
            raise ShapeError(f"{self!r}: expected input of shape (N, T, {self.input_size}) (batch, time, "
                             f"features), got shape {X.shape}")
        N, T, _ = X.shape
        if T == 0:
            raise ShapeError(f"{self!r}: expected at least one time step, got input of shape {X.shape}")
        given = check_states(self, states, N, len(self.state_names))
        initial = given if given is not None else self.starting_states(N)
        self._given, self._shape = given is not None, (N, T, self.hidden_size)
        self._kernel = recurrent_kernel_for(self, X)                      # numpy LSTM: nnlayers.kernels.lstm
        if self._kernel is not None:
            H, final = self._kernel.forward(self, X, initial)
        else:
            Xt = X.transpose(1, 0, 2)                                     # T×N×F: time-major
            AX = (Xt.reshape(T * N, self.input_size) @ W_x).reshape(T, N, W_x.shape[1])   # x W_x of every step
            AX += self.b_x.data
            final = self.run(AX, initial)                                 # the time loop: fills self._H
            self._X = Xt
            H = self._H[1:].transpose(1, 0, 2).copy()                     # N×T×H, the caller's
        self.state = final[0].copy() if len(final) == 1 else tuple(s.copy() for s in final)
        return H

    def starting_states(self, N: int) -> list:
        """Zeros, or for a stateful layer the last final state (a copy, so nothing flows back into it)."""
        W = self.W_h.data
        if self.stateful and self.state is not None:
            carried = [self.state] if len(self.state_names) == 1 else list(self.state)
            if carried[0].shape[0] != N:
                raise ShapeError(f"{self!r}: stateful, with a state for a batch of {carried[0].shape[0]}, got a "
                                 f"batch of {N}; call reset_state() to start again from zeros")
            return [state.copy() for state in carried]
        return [get_array_module(W).zeros((N, self.hidden_size), dtype=W.dtype) for _ in self.state_names]

    def run(self, AX, initial) -> list:
        """The forward time loop over AX (T×N×gH); stores H (T+1 × N×H, h₀ first) in ``self._H`` and what
        backward needs in ``self._saved``; returns the final states."""
        raise NotImplementedError

    # -- backward ------------------------------------------------------------------------------------
    def backward(self, dH):
        """BPTT (``run_backward``), then the shared weights' gradients summed over t; returns δX (, δh0 …)."""
        dH = self.check_grad(dH, self.forward_cache(self._shape))
        if self._kernel is not None:
            dX, dstates = self._kernel.backward(self, dH)
            return (dX, *dstates) if self._given else dX
        Xt = self._X
        T, N, F = Xt.shape
        dAX, dAH, dstates = self.run_backward(dH.transpose(1, 0, 2))      # time-major; δa T×N×gH (dAH is dAX
                                                                          # where both sides share a: RNN, LSTM)
        gH, H = dAX.shape[2], self.hidden_size                            # sizes written out: N may be 0
        rows = dAX.reshape(T * N, gH)
        hidden_rows = rows if dAH is dAX else dAH.reshape(T * N, gH)
        self.W_h.grad += self._H[:-1].reshape(T * N, H).T @ hidden_rows  # δW_h = Σₜ hₜ₋₁ᵀ δaₜ
        self.b_h.grad += hidden_rows.sum(axis=0)
        self.W_x.grad += Xt.reshape(T * N, F).T @ rows                    # δW_x = Σₜ xₜᵀ δaₜ
        self.b_x.grad += rows.sum(axis=0)
        dX = (rows @ self.W_x.data.T).reshape(T, N, F).transpose(1, 0, 2)  # δxₜ = δaₜ W_xᵀ, back to N×T×F
        return (dX, *dstates) if self._given else dX

    def run_backward(self, dH):
        """The backward time loop from t = T to 1; returns δa for the input side (T×N×gH), for the hidden
        side (the same array where both sides share the pre-activation) and the initial states' gradients."""
        raise NotImplementedError

    # -- settings ------------------------------------------------------------------------------------
    def settings(self) -> dict:
        return {**recurrent_settings(self), "stateful": self.stateful}

    def extra_repr(self) -> str:
        text = f"input_size={self.input_size}, hidden_size={self.hidden_size}"
        if self.stateful:
            text += ", stateful=True"
        dtype = self.W_x.data.dtype.name
        return text if dtype == "float64" else f"{text}, dtype={dtype!r}"


class RNN(Recurrent):
    """An Elman RNN over a sequence: hₜ = f(xₜ W_x + b_x + hₜ₋₁ W_h + b_h), f = tanh or ReLU
    (``nonlinearity``); X N×T×F → H N×T×H. Everything else as ``Recurrent`` (the class above) says;
    one step's formulas: ``rnn_step``. PyTorch's ``RNN(batch_first=True)``, weights transposed.
    """

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh", *, stateful: bool = False,
                 rng=None, dtype=np.float64):
        self.nonlinearity = check_nonlinearity(nonlinearity, type(self).__name__)
        super().__init__(input_size, hidden_size, stateful=stateful, rng=rng, dtype=dtype)

    def run(self, AX, initial):
        T, N, _ = AX.shape
        relu, W_h = self.nonlinearity == "relu", self.W_h.data
        AX += self.b_h.data                                               # b_h joins b_x: both add to every step
        H = self._H = get_array_module(AX).empty((T + 1, N, self.hidden_size), dtype=AX.dtype)
        H[0] = initial[0]
        for t in range(T):
            H[t + 1] = rnn_step(AX[t], H[t], W_h, relu)
        self._saved = True
        return [H[T]]

    def run_backward(self, dH):
        T = len(dH)
        relu, W_h, H = self.nonlinearity == "relu", self.W_h.data, self._H
        dA = get_array_module(H).empty((T, H.shape[1], self.hidden_size), dtype=H.dtype)
        dh = dH[T - 1] * 0                                                # nothing comes back from beyond T
        for t in reversed(range(T)):
            dA[t], dh = rnn_step_backward(dH[t] + dh, H[t + 1], W_h, relu)
        return dA, dA, [dh]

    def settings(self) -> dict:
        return {**super().settings(), "nonlinearity": self.nonlinearity}

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.nonlinearity == "tanh" else f"{text}, nonlinearity='relu'"


class LSTM(Recurrent):
    """A long short-term memory layer over a sequence (Hochreiter & Schmidhuber 1997): at each step the gates
    i, f, g, o of aₜ = xₜ W_x + b_x + hₜ₋₁ W_h + b_h update the cell cₜ = f ⊙ cₜ₋₁ + i ⊙ g and give
    hₜ = o ⊙ tanh(cₜ) (``lstm_step``). X N×T×F → H N×T×H; ``forward(X, h0, c0)`` from given states, then
    backward returns (δX, δh0, δc0); ``state`` is (h_T, c_T). PyTorch's ``LSTM(batch_first=True)``,
    weights transposed, gates in its order i, f, g, o.
    """

    gates = 4
    state_names = ("h0", "c0")

    def run(self, AX, initial):
        T, N, _ = AX.shape
        W_h, xp = self.W_h.data, get_array_module(AX)
        AX += self.b_h.data
        H = self._H = xp.empty((T + 1, N, self.hidden_size), dtype=AX.dtype)
        C = xp.empty_like(H)                                              # c₀ … c_T
        gates = xp.empty_like(AX)                                         # i, f, g, o of every step
        tanh_C = xp.empty((T, N, self.hidden_size), dtype=AX.dtype)
        H[0], C[0] = initial
        for t in range(T):
            H[t + 1], C[t + 1], gates[t], tanh_C[t] = lstm_step(AX[t], H[t], C[t], W_h)
        self._saved = (C, gates, tanh_C)
        return [H[T], C[T]]

    def run_backward(self, dH):
        T = len(dH)
        C, gates, tanh_C = self._saved
        W_h = self.W_h.data
        dA = get_array_module(gates).empty_like(gates)
        dh = dc = dH[T - 1] * 0
        for t in reversed(range(T)):
            dA[t], dh, dc = lstm_step_backward(dH[t] + dh, dc, gates[t], C[t], tanh_C[t], W_h)
        return dA, dA, [dh, dc]


class GRU(Recurrent):
    """A gated recurrent unit layer over a sequence (Cho et al. 2014): gates r, z, n from the input part
    xₜ W_x + b_x and the hidden part hₜ₋₁ W_h + b_h, hₜ = (1 − z) ⊙ n + z ⊙ hₜ₋₁ (``gru_step``). The reset
    gate scales only the hidden part of n, so the two parts' gradients differ in n's block: backward keeps
    δax and δah apart. X N×T×F → H N×T×H. PyTorch's ``GRU(batch_first=True)``, weights transposed, gates
    in its order r, z, n.
    """

    gates = 3

    def run(self, AX, initial):
        T, N, _ = AX.shape
        W_h, b_h, xp = self.W_h.data, self.b_h.data, get_array_module(AX)
        H = self._H = xp.empty((T + 1, N, self.hidden_size), dtype=AX.dtype)
        gates = xp.empty_like(AX)                                         # r, z, n of every step
        AH_n = xp.empty((T, N, self.hidden_size), dtype=AX.dtype)
        H[0] = initial[0]
        for t in range(T):
            H[t + 1], gates[t], AH_n[t] = gru_step(AX[t], H[t], W_h, b_h)
        self._saved = (gates, AH_n)
        return [H[T]]

    def run_backward(self, dH):
        T = len(dH)
        gates, AH_n = self._saved
        W_h, H = self.W_h.data, self._H
        dAX, dAH = get_array_module(gates).empty_like(gates), get_array_module(gates).empty_like(gates)
        dh = dH[T - 1] * 0
        for t in reversed(range(T)):
            dAX[t], dAH[t], dh = gru_step_backward(dH[t] + dh, gates[t], AH_n[t], H[t], W_h)
        return dAX, dAH, [dh]
