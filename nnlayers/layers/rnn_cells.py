"""One time step of a recurrent net, and the cells that take one step: ``RNNCell``, ``LSTMCell``, ``GRUCell``.

A recurrent layer applies the same step at every time t, feeding each step's
state to the next:  hₜ = step(xₜ, hₜ₋₁).  The step functions below hold the
formulas, forward and backward, once; the cells call them for one step, the
sequence layers (``nnlayers.layers.recurrent``) for every step of a sequence.

Notation (shapes for a batch of N, F input features, H hidden units, g gates):

* the pre-activations split into an input part and a hidden part,
  a = (x W_x + b_x) + (h W_h + b_h), with W_x F×gH, W_h H×gH, b_x and b_h of gH;
  ``ax`` below is the input part, computed for all time steps in one product by the
  sequence layers (and with b_h folded in where the formulas allow);
* gates in PyTorch's order: LSTM i, f, g, o; GRU r, z, n; so ``W_x`` is PyTorch's
  ``weight_ih`` transposed, ``W_h`` its ``weight_hh`` transposed, ``b_x``, ``b_h`` its
  ``bias_ih``, ``bias_hh``;
* δv is ∂L/∂v, as everywhere in nnlayers. Each backward step returns δa, the gradient
  of the pre-activations: the parameter gradients then follow as Linear's,
  δW_h += hᵀ δa, δb_h += Σ δa, δW_x += xᵀ δa, δb_x += Σ δa, δx = δa W_xᵀ.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..init import as_rng
from ..module import Module, ShapeError
from .._args import positive_int as _positive_int
from .activations import sigmoid

__all__ = ["RNNCell", "LSTMCell", "GRUCell", "rnn_step", "rnn_step_backward", "lstm_step", "lstm_step_backward",
           "gru_step", "gru_step_backward"]

# -- the steps: formulas once ----------------------------------------------------------------------------


def rnn_step(ax, h, W_h, relu: bool):
    """h' = f(a), a = ax + h W_h  (ax = x W_x + b_x + b_h, N×H);  f = tanh, or ReLU if ``relu``."""
    a = h @ W_h
    a += ax
    xp = get_array_module(a)
    return xp.maximum(a, 0, out=a) if relu else xp.tanh(a, out=a)


def rnn_step_backward(dh_next, h_next, W_h, relu: bool):
    """δa = δh' ⊙ f′(a), with f′ = 1 − h'² (tanh) or [h' > 0] (ReLU);  returns δa and δh = δa W_hᵀ."""
    da = dh_next * (h_next > 0) if relu else dh_next * (1 - h_next * h_next)
    return da, da @ W_h.T


def lstm_step(ax, h, c, W_h):
    """One LSTM step, with a = ax + h W_h (ax = x W_x + b_x + b_h; N×4H, gates i, f, g, o):

        i = σ(a_i)   f = σ(a_f)   g = tanh(a_g)   o = σ(a_o)
        c' = f ⊙ c + i ⊙ g
        h' = o ⊙ tanh(c')

    Returns h', c', the gates [i f g o] (N×4H, kept for backward) and tanh(c').
    """
    H = h.shape[-1]
    a = h @ W_h
    a += ax
    gates = sigmoid(a)                                             # σ of all four; g's block replaced next
    gates[:, 2 * H:3 * H] = get_array_module(a).tanh(a[:, 2 * H:3 * H])
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    c_next = f * c + i * g
    tanh_c = get_array_module(c_next).tanh(c_next)
    return o * tanh_c, c_next, gates, tanh_c


def lstm_step_backward(dh_next, dc_next, gates, c, tanh_c, W_h):
    """The LSTM step backward, from δh' and δc' (what reaches h' and c' from later steps and the output):

        δo = δh' ⊙ tanh(c')
        δc = δc' + δh' ⊙ o ⊙ (1 − tanh²(c'))       (c' reaches the loss directly and through h')
        δi = δc ⊙ g    δf = δc ⊙ c    δg = δc ⊙ i    δc_prev = δc ⊙ f
        δa = [δi ⊙ i(1−i), δf ⊙ f(1−f), δg ⊙ (1−g²), δo ⊙ o(1−o)]      (σ′ = σ(1−σ), tanh′ = 1−tanh²)
        δh_prev = δa W_hᵀ

    Returns δa (N×4H), δh_prev and δc_prev.
    """
    H = c.shape[-1]
    i, f, g, o = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:3 * H], gates[:, 3 * H:]
    dc = dh_next * o * (1 - tanh_c * tanh_c)
    dc += dc_next
    da = get_array_module(gates).empty_like(gates)
    da[:, :H] = dc * g * i * (1 - i)
    da[:, H:2 * H] = dc * c * f * (1 - f)
    da[:, 2 * H:3 * H] = dc * i * (1 - g * g)
    da[:, 3 * H:] = dh_next * tanh_c * o * (1 - o)
    return da, da @ W_h.T, dc * f


def gru_step(ax, h, W_h, b_h):
    """One GRU step, with ax = x W_x + b_x and ah = h W_h + b_h (N×3H each, gates r, z, n):

        r = σ(ax_r + ah_r)    z = σ(ax_z + ah_z)
        n = tanh(ax_n + r ⊙ ah_n)                  (the reset gate scales the hidden part only)
        h' = (1 − z) ⊙ n + z ⊙ h

    Returns h', the gates [r z n] (N×3H) and ah_n (N×H), kept for backward.
    """
    H = h.shape[-1]
    ah = h @ W_h
    ah += b_h
    gates = sigmoid(ax[:, :2 * H] + ah[:, :2 * H])                 # r and z
    r, z = gates[:, :H], gates[:, H:]
    ah_n = ah[:, 2 * H:]
    n = get_array_module(ah).tanh(ax[:, 2 * H:] + r * ah_n)
    return n + z * (h - n), get_array_module(n).concatenate([gates, n], axis=1), ah_n


def gru_step_backward(dh_next, gates, ah_n, h, W_h):
    """The GRU step backward, from δh':

        δn = δh' ⊙ (1 − z)    δz = δh' ⊙ (h − n)
        δa_n = δn ⊙ (1 − n²)                        (n's pre-activation; its input part is ax_n)
        δr = δa_n ⊙ ah_n
        δax = [δr ⊙ r(1−r), δz ⊙ z(1−z), δa_n]            (the input part's gradient)
        δah = [δr ⊙ r(1−r), δz ⊙ z(1−z), δa_n ⊙ r]        (the hidden part's: r scales ah_n)
        δh_prev = δh' ⊙ z + δah W_hᵀ

    Returns δax, δah (N×3H each) and δh_prev.
    """
    H = h.shape[-1]
    r, z, n = gates[:, :H], gates[:, H:2 * H], gates[:, 2 * H:]
    dx = get_array_module(gates).empty_like(gates)
    dx[:, 2 * H:] = dh_next * (1 - z) * (1 - n * n)                # δa_n
    dx[:, :H] = dx[:, 2 * H:] * ah_n * r * (1 - r)                 # δr ⊙ r(1−r)
    dx[:, H:2 * H] = dh_next * (h - n) * z * (1 - z)               # δz ⊙ z(1−z)
    dh_side = dx.copy()
    dh_side[:, 2 * H:] *= r
    return dx, dh_side, dh_next * z + dh_side @ W_h.T


# -- the parameters every recurrent layer has ------------------------------------------------------------


def add_recurrent_parameters(module: Module, input_size, hidden_size, gates: int, rng, dtype) -> None:
    """Register W_x (F×gH), W_h (H×gH), b_x, b_h (gH), all drawn from U(−1/√H, 1/√H) as in PyTorch."""
    name = type(module).__name__
    module.input_size = _positive_int(input_size, "input_size", name)
    module.hidden_size = H = _positive_int(hidden_size, "hidden_size", name)
    rng, bound = as_rng(rng), 1.0 / np.sqrt(H)
    for key, shape in (("W_x", (module.input_size, gates * H)), ("W_h", (H, gates * H)),
                       ("b_x", (gates * H,)), ("b_h", (gates * H,))):
        setattr(module, key, module.add_parameter(key, rng.uniform(-bound, bound, size=shape).astype(dtype)))


def check_nonlinearity(nonlinearity, owner: str) -> str:
    if not isinstance(nonlinearity, str):
        raise TypeError(f"{owner}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    if nonlinearity not in ("tanh", "relu"):
        raise ValueError(f"{owner}: nonlinearity must be 'tanh' or 'relu', got {nonlinearity!r}")
    return nonlinearity


def check_states(layer, states, N: int, count: int):
    """The initial states given to ``forward`` (none, or ``count`` arrays of N×H), as arrays of W's dtype;
    errors name them as the layer does (``state_names``: h0, c0 for a sequence layer, h, c for a cell)."""
    if not states:
        return None
    names = layer.state_names[:count]
    if len(states) != count:
        raise TypeError(f"{layer!r}: forward takes the input and optionally {' and '.join(names)}, "
                        f"got {1 + len(states)} inputs")
    W = layer.W_h.data
    checked = []
    for name, state in zip(names, states):
        state = layer.float_input(state, W.dtype, like=W)
        if state.shape != (N, layer.hidden_size):
            raise ShapeError(f"{layer!r}: expected {name} of shape ({N}, {layer.hidden_size}) (N, hidden_size), "
                             f"got shape {state.shape}")
        checked.append(state)
    return checked


def recurrent_settings(layer) -> dict:
    return {"input_size": layer.input_size, "hidden_size": layer.hidden_size, "dtype": layer.W_x.data.dtype.name}


# -- the cells: one step as a layer -------------------------------------------------------------------------


class _Cell(Module):
    """What the three cells share: parameters, the input check, the parameter gradients from δa."""

    gates = 1
    cache_names = ("_x", "_h", "_saved")

    def __init__(self, input_size: int, hidden_size: int, *, rng=None, dtype=np.float64):
        super().__init__()
        add_recurrent_parameters(self, input_size, hidden_size, self.gates, rng, dtype)
        self._x = self._h = self._saved = None

    def check_input(self, x, states):
        """x as an N×F array and the states (zeros where not given), with whether they were given."""
        W = self.W_x.data
        x = self.float_input(x, W.dtype, like=W)
        if x.ndim != 2 or x.shape[1] != self.input_size:
            raise ShapeError(f"{self!r}: expected input of shape (N, {self.input_size}), got shape {x.shape}")
        given = check_states(self, states, len(x), len(self.state_names))
        zeros = get_array_module(W).zeros((len(x), self.hidden_size), dtype=W.dtype)
        return x, given if given is not None else [zeros] * len(self.state_names), given is not None

    def add_gradients(self, dax, dah):
        """δW_x += xᵀ δax, δb_x += Σ δax, δW_h += hᵀ δah, δb_h += Σ δah; returns δx = δax W_xᵀ."""
        self.W_x.grad += self._x.T @ dax
        self.b_x.grad += dax.sum(axis=0)
        self.W_h.grad += self._h.T @ dah
        self.b_h.grad += dah.sum(axis=0)
        return dax @ self.W_x.data.T

    def settings(self) -> dict:
        return recurrent_settings(self)

    def extra_repr(self) -> str:
        text = f"input_size={self.input_size}, hidden_size={self.hidden_size}"
        dtype = self.W_x.data.dtype.name
        return text if dtype == "float64" else f"{text}, dtype={dtype!r}"


class RNNCell(_Cell):
    """One step of an Elman RNN: h' = f(x W_x + b_x + h W_h + b_h), f = tanh (or ReLU).

    ``forward(x)`` or ``forward(x, h)`` (h = 0 when not given; x N×F, h N×H) → h' (N×H);
    ``backward(δh')`` → δx, or (δx, δh) when h was given. Formulas: ``rnn_step`` and
    ``rnn_step_backward``. Parameters: W_x (F×H), W_h (H×H), b_x, b_h (H), PyTorch's ``RNNCell``
    weights transposed. Cache: x, h and h'.
    """

    state_names = ("h",)

    def __init__(self, input_size: int, hidden_size: int, nonlinearity: str = "tanh", *, rng=None,
                 dtype=np.float64):
        self.nonlinearity = check_nonlinearity(nonlinearity, type(self).__name__)
        super().__init__(input_size, hidden_size, rng=rng, dtype=dtype)

    def forward(self, x, *h):
        """h' = f(x W_x + b_x + h W_h + b_h)."""
        x, (h,), self._given = self.check_input(x, h)
        h_next = rnn_step(x @ self.W_x.data + (self.b_x.data + self.b_h.data), h, self.W_h.data,
                          self.nonlinearity == "relu")
        self._x, self._h, self._saved = x, h, h_next
        return h_next.copy()                         # h' is the caller's; the cache keeps its own

    def backward(self, dh_next):
        """δa = δh' ⊙ f′(a); parameter gradients from δa; returns δx (, δh = δa W_hᵀ)."""
        h_next = self.forward_cache(self._saved)
        dh_next = self.check_grad(dh_next, h_next.shape)
        da, dh = rnn_step_backward(dh_next, h_next, self.W_h.data, self.nonlinearity == "relu")
        dx = self.add_gradients(da, da)
        return (dx, dh) if self._given else dx

    def settings(self) -> dict:
        return {**super().settings(), "nonlinearity": self.nonlinearity}

    def extra_repr(self) -> str:
        text = super().extra_repr()
        return text if self.nonlinearity == "tanh" else f"{text}, nonlinearity='relu'"


class LSTMCell(_Cell):
    """One LSTM step (formulas: ``lstm_step``, ``lstm_step_backward``).

    ``forward(x)`` or ``forward(x, h, c)`` (zeros when not given; x N×F, h and c N×H) → (h', c'),
    two outputs; ``backward(δh', δc')`` → δx, or (δx, δh, δc) when h and c were given.
    Parameters: W_x (F×4H), W_h (H×4H), b_x, b_h (4H), gates i, f, g, o: PyTorch's ``LSTMCell``
    weights transposed. Cache: x, h, c, the gates and tanh(c').
    """

    gates = 4
    state_names = ("h", "c")

    def forward(self, x, *states):
        """(h', c') from the gates i, f, g, o of a = x W_x + b_x + h W_h + b_h."""
        x, (h, c), self._given = self.check_input(x, states)
        h_next, c_next, gates, tanh_c = lstm_step(x @ self.W_x.data + (self.b_x.data + self.b_h.data), h, c,
                                                  self.W_h.data)
        self._x, self._h, self._saved = x, h, (c, gates, tanh_c)
        return h_next, c_next

    def backward(self, dh_next, dc_next):
        """δa from δh' and δc'; parameter gradients from δa; returns δx (, δh, δc)."""
        c, gates, tanh_c = self.forward_cache(self._saved)
        dh_next, dc_next = self.check_grad(dh_next, c.shape), self.check_grad(dc_next, c.shape)
        da, dh, dc = lstm_step_backward(dh_next, dc_next, gates, c, tanh_c, self.W_h.data)
        dx = self.add_gradients(da, da)
        return (dx, dh, dc) if self._given else dx


class GRUCell(_Cell):
    """One GRU step (formulas: ``gru_step``, ``gru_step_backward``).

    ``forward(x)`` or ``forward(x, h)`` (h = 0 when not given) → h' (N×H); ``backward(δh')`` → δx,
    or (δx, δh) when h was given. Parameters: W_x (F×3H), W_h (H×3H), b_x, b_h (3H), gates r, z, n:
    PyTorch's ``GRUCell`` weights transposed. Cache: x, h, the gates and ah_n.
    """

    gates = 3
    state_names = ("h",)

    def forward(self, x, *h):
        """h' = (1 − z) ⊙ n + z ⊙ h, from the gates r, z, n."""
        x, (h,), self._given = self.check_input(x, h)
        h_next, gates, ah_n = gru_step(x @ self.W_x.data + self.b_x.data, h, self.W_h.data, self.b_h.data)
        self._x, self._h, self._saved = x, h, (gates, ah_n)
        return h_next

    def backward(self, dh_next):
        """δax, δah from δh'; parameter gradients from them; returns δx (, δh)."""
        gates, ah_n = self.forward_cache(self._saved)
        dh_next = self.check_grad(dh_next, self._h.shape)
        dax, dah, dh = gru_step_backward(dh_next, gates, ah_n, self._h, self.W_h.data)
        dx = self.add_gradients(dax, dah)
        return (dx, dh) if self._given else dx
