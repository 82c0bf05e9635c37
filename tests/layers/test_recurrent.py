"""RNN, LSTM, GRU and their cells: worked examples by hand, PyTorch parity in float64 on both paths (the fast
LSTM kernel and the reference formulas), gradcheck, stateful truncation (truncated backpropagation
through time) and hostile inputs.

Parity: the same weights in ``torch.nn.RNN/LSTM/GRU(batch_first=True)`` (W_x = weight_ih_l0ᵀ,
W_h = weight_hh_l0ᵀ, b_x = bias_ih_l0, b_h = bias_hh_l0) give the same H, final states, δX, δh0, δc0
and every parameter gradient within rtol 1e-10, atol 1e-12, over geometries with N, T, F or H of 1.
"""
import contextlib
import math

import numpy as np
import pytest

import nnlayers as nl
from nnlayers import kernels
from nnlayers.kernels import lstm as lstm_kernel   # the fast LSTM's time loops
from tests.helpers import importable, require

RTOL, ATOL = 1e-10, 1e-12

KINDS = ["rnn-tanh", "rnn-relu", "lstm", "gru"]
CELLS = ["rnn-cell-tanh", "rnn-cell-relu", "lstm-cell", "gru-cell"]
PATHS = ["fast", "reference"]

# (N, T, F, H): batch of 1, one step, one feature, one hidden unit, and larger ones
GEOMETRIES = [(1, 1, 1, 1), (1, 1, 3, 2), (2, 1, 2, 3), (1, 6, 2, 1), (3, 4, 1, 2), (2, 5, 3, 4),
              (4, 3, 5, 3), (3, 7, 2, 5), (5, 2, 4, 6), (2, 9, 3, 3)]


def make(kind, F, H, seed=0, **options):
    """The layer or cell ``kind`` with its parameters moved off their initial values (biases matter)."""
    family, _, rest = kind.partition("-")
    cell = rest.startswith("cell")
    nonlinearity = {"tanh": "tanh", "relu": "relu"}.get(kind.rsplit("-", 1)[-1])
    cls = {"rnn": nl.RNNCell if cell else nl.RNN, "lstm": nl.LSTMCell if cell else nl.LSTM,
           "gru": nl.GRUCell if cell else nl.GRU}[family]
    layer = cls(F, H, nonlinearity, rng=seed, **options) if nonlinearity else cls(F, H, rng=seed, **options)
    rng = np.random.default_rng(seed + 100)
    for parameter in layer.parameters():
        parameter.data += rng.normal(scale=0.2, size=parameter.shape).astype(parameter.data.dtype)
    return layer


def state_count(kind) -> int:
    return 2 if kind.startswith("lstm") else 1


def path(name):
    return kernels.reference_paths() if name == "reference" else contextlib.nullcontext()


def close(ours, theirs, what):
    theirs = theirs.detach().numpy() if hasattr(theirs, "detach") else theirs
    np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=what)


# -- worked examples ---------------------------------------------------------------------------------

def test_rnn_by_hand():
    # F = H = 1: h₁ = tanh(w x₁ + b), h₂ = tanh(w x₂ + b + u h₁), with b = b_x + b_h
    rnn = nl.RNN(1, 1)
    rnn.W_x.data[...], rnn.W_h.data[...], rnn.b_x.data[...], rnn.b_h.data[...] = 0.5, -2.0, 0.25, -0.125
    H = rnn.forward(np.array([[[1.0], [3.0]]]))
    h1 = math.tanh(0.5 + 0.125)
    h2 = math.tanh(1.5 + 0.125 - 2.0 * h1)
    np.testing.assert_allclose(H.ravel(), [h1, h2], rtol=1e-15)
    np.testing.assert_allclose(rnn.state, [[h2]], rtol=1e-15)
    # δH = (0, 1): δa₂ = 1 − h₂², δh₁ = δa₂ u, δa₁ = δh₁ (1 − h₁²)
    dX = rnn.backward(np.array([[[0.0], [1.0]]]))
    da2 = 1 - h2 * h2
    da1 = da2 * -2.0 * (1 - h1 * h1)
    np.testing.assert_allclose(dX.ravel(), [da1 * 0.5, da2 * 0.5], rtol=1e-14)
    np.testing.assert_allclose(rnn.W_x.grad, [[da1 * 1.0 + da2 * 3.0]], rtol=1e-14)
    np.testing.assert_allclose(rnn.W_h.grad, [[da2 * h1]], rtol=1e-14)          # h₀ = 0 adds nothing
    np.testing.assert_allclose([rnn.b_x.grad[0], rnn.b_h.grad[0]], [da1 + da2] * 2, rtol=1e-14)


@pytest.mark.parametrize("path_name", PATHS)
def test_one_lstm_step_by_hand(path_name):
    # H = 1, gates i, f, g, o from a = x W_x + b_x + h W_h + b_h; c' = f c + i g, h' = o tanh(c')
    lstm = nl.LSTM(1, 1)
    W_x, W_h, b_x, b_h = [0.5, -1.0, 0.5, 0.25], [1.0, 0.5, -0.5, 2.0], [0.1, 0.2, 0.3, 0.4], [0.0, 1.0, 0.0, -1.0]
    lstm.W_x.data[...], lstm.W_h.data[...], lstm.b_x.data[...], lstm.b_h.data[...] = [W_x], [W_h], b_x, b_h
    x, h, c = 2.0, -1.0, 0.5
    a = [x * W_x[k] + b_x[k] + h * W_h[k] + b_h[k] for k in range(4)]

    def sigma(v):
        return 1 / (1 + math.exp(-v))
    i, f, g, o = sigma(a[0]), sigma(a[1]), math.tanh(a[2]), sigma(a[3])
    c1 = f * c + i * g
    h1 = o * math.tanh(c1)
    with path(path_name):
        H = lstm.forward(np.array([[[x]]]), np.array([[h]]), np.array([[c]]))
        np.testing.assert_allclose(H.ravel(), [h1], rtol=1e-14)
        np.testing.assert_allclose([lstm.state[0][0, 0], lstm.state[1][0, 0]], [h1, c1], rtol=1e-14)
        # δh' = 1: δo = tanh(c'), δc = o (1 − tanh²(c')), δc_prev = δc f, δi = δc g, δf = δc c, δg = δc i
        dX, dh, dc = lstm.backward(np.ones((1, 1, 1)))
    dc_total = o * (1 - math.tanh(c1) ** 2)
    da = [dc_total * g * i * (1 - i), dc_total * c * f * (1 - f), dc_total * i * (1 - g * g),
          math.tanh(c1) * o * (1 - o)]
    np.testing.assert_allclose(lstm.b_x.grad, da, rtol=1e-13)
    np.testing.assert_allclose(lstm.W_h.grad, [[h * d for d in da]], rtol=1e-13)
    np.testing.assert_allclose(dX.ravel(), [sum(d * w for d, w in zip(da, W_x))], rtol=1e-13)     # δa W_xᵀ
    np.testing.assert_allclose(dh.ravel(), [sum(d * u for d, u in zip(da, W_h))], rtol=1e-13)     # δa W_hᵀ
    np.testing.assert_allclose(dc.ravel(), [dc_total * f], rtol=1e-13)


# -- PyTorch parity ----------------------------------------------------------------------------------

def torch_twin(kind, layer):
    """torch's layer (or cell) of ``kind`` in float64 holding ``layer``'s weights."""
    import torch
    family, _, rest = kind.partition("-")
    cell = rest.startswith("cell")
    options = {"nonlinearity": layer.nonlinearity} if family == "rnn" else {}
    name = {"rnn": "RNN", "lstm": "LSTM", "gru": "GRU"}[family] + ("Cell" if cell else "")
    if not cell:
        options["batch_first"] = True
    twin = getattr(torch.nn, name)(layer.input_size, layer.hidden_size, **options).double()
    suffix = "" if cell else "_l0"
    with torch.no_grad():
        for ours, theirs, f in [("W_x", "weight_ih", np.transpose), ("W_h", "weight_hh", np.transpose),
                                ("b_x", "bias_ih", np.asarray), ("b_h", "bias_hh", np.asarray)]:
            getattr(twin, theirs + suffix).copy_(torch.tensor(f(getattr(layer, ours).data)))
    return twin


def parameter_grads(twin, cell=False):
    suffix = "" if cell else "_l0"
    return {ours: getattr(twin, theirs + suffix).grad.numpy() for ours, theirs in
            [("W_x", "weight_ih"), ("W_h", "weight_hh"), ("b_x", "bias_ih"), ("b_h", "bias_hh")]}


def check_parameter_grads(layer, twin, cell=False, what=""):
    for name, grad in parameter_grads(twin, cell).items():
        close(getattr(layer, name).grad, grad.T if name.startswith("W") else grad, f"δ{name} {what}")


@pytest.mark.parametrize("path_name", PATHS)
@pytest.mark.parametrize("with_states", [False, True], ids=["zero-states", "given-states"])
@pytest.mark.parametrize("kind", KINDS)
def test_sequence_layers_match_torch(kind, with_states, path_name):
    require(importable("torch"), "PyTorch is not installed (pip install torch==2.13.0); parity tests need it")
    import torch
    rng = np.random.default_rng(KINDS.index(kind))
    for N, T, F, H in GEOMETRIES:
        what = f"{kind} N={N} T={T} F={F} H={H} {path_name}"
        layer = make(kind, F, H, seed=N * 100 + T)
        twin = torch_twin(kind, layer)
        X = rng.normal(size=(N, T, F))
        states = [rng.normal(size=(N, H)) for _ in range(state_count(kind))] if with_states else []
        dH = rng.normal(size=(N, T, H))
        with path(path_name):
            Z = layer.forward(X, *states)
            took_kernel = getattr(layer._kernel, "forward", None) is lstm_kernel.forward
            assert took_kernel == (kind == "lstm" and path_name == "fast")
            grads = layer.backward(dH)
        Xt = torch.tensor(X, requires_grad=True)
        st = [torch.tensor(s[None], requires_grad=True) for s in states]
        given = (tuple(st) if kind == "lstm" else st[0]) if st else None
        Zt, final = twin(Xt, given)
        Zt.backward(torch.tensor(dH))
        close(Z, Zt, f"H {what}")
        finals = final if kind == "lstm" else (final,)
        ours = layer.state if kind == "lstm" else (layer.state,)
        assert len(ours) == len(finals)
        for k, (s, t) in enumerate(zip(ours, finals)):
            assert s.shape == (N, H)
            close(s, t[0], f"final state {k} {what}")
        if with_states:
            assert isinstance(grads, tuple) and len(grads) == 1 + len(states)
            close(grads[0], Xt.grad, f"δX {what}")
            for k, (d, t) in enumerate(zip(grads[1:], st)):
                close(d, t.grad[0], f"δ{('h0', 'c0')[k]} {what}")
        else:
            assert isinstance(grads, np.ndarray)
            close(grads, Xt.grad, f"δX {what}")
        check_parameter_grads(layer, twin, what=what)


@pytest.mark.parametrize("with_states", [False, True], ids=["zero-states", "given-states"])
@pytest.mark.parametrize("kind", CELLS)
def test_cells_match_torch(kind, with_states):
    require(importable("torch"), "PyTorch is not installed (pip install torch==2.13.0); parity tests need it")
    import torch
    rng = np.random.default_rng(CELLS.index(kind))
    lstm = kind.startswith("lstm")
    for N, _, F, H in GEOMETRIES:
        what = f"{kind} N={N} F={F} H={H}"
        cell = make(kind, F, H, seed=N * 10 + F)
        twin = torch_twin(kind, cell)
        x = rng.normal(size=(N, F))
        states = [rng.normal(size=(N, H)) for _ in range(state_count(kind))] if with_states else []
        outputs = cell.forward(x, *states)
        outputs = outputs if lstm else (outputs,)
        upstream = [rng.normal(size=(N, H)) for _ in outputs]
        grads = cell.backward(*upstream)
        xt = torch.tensor(x, requires_grad=True)
        st = [torch.tensor(s, requires_grad=True) for s in states]
        theirs = twin(xt, (tuple(st) if lstm else st[0]) if st else None)
        theirs = theirs if lstm else (theirs,)
        torch.autograd.backward(theirs, [torch.tensor(G) for G in upstream])
        for k, (Z, Zt) in enumerate(zip(outputs, theirs)):
            close(Z, Zt, f"output {k} {what}")
        grads = grads if with_states else (grads,)
        assert len(grads) == 1 + len(states)
        for k, (d, t) in enumerate(zip(grads, [xt, *st])):
            close(d, t.grad, f"gradient of input {k} {what}")
        check_parameter_grads(cell, twin, cell=True, what=what)


@pytest.mark.parametrize("kind", KINDS)
def test_float32_layers_compute_in_float32_on_both_paths(kind):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(3, 4, 2))
    results = []
    for path_name in PATHS:
        layer = make(kind, 2, 3, dtype=np.float32)
        with path(path_name):
            Z = layer.forward(X)                                   # float64 X is computed in float32
            dX = layer.backward(np.ones(Z.shape, dtype=np.float32))
        assert Z.dtype == dX.dtype == np.float32
        assert all(p.grad.dtype == np.float32 for p in layer.parameters())
        results.append(Z)
    np.testing.assert_allclose(results[0], results[1], rtol=1e-5, atol=1e-6)


# -- gradcheck ---------------------------------------------------------------------------------------

@pytest.mark.parametrize("with_states", [False, True], ids=["zero-states", "given-states"])
@pytest.mark.parametrize("kind", KINDS + CELLS)
def test_gradcheck(kind, with_states):
    rng = np.random.default_rng(3)
    layer = make(kind, 2, 3)
    cell = "cell" in kind
    X = rng.normal(size=(2, 2) if cell else (2, 4, 2))
    states = [rng.normal(size=(2, 3)) for _ in range(state_count(kind))] if with_states else []
    for path_name in PATHS:
        with path(path_name):
            report = nl.gradcheck(layer, (X, *states) if states else X)
        names = ["X"] if not states else [f"input {i}" for i in range(1 + len(states))]
        assert [c.name for c in report.checks] == names + ["W_x", "W_h", "b_x", "b_h"]
        assert report.passed and max(c.max_abs_error for c in report.checks) < 1e-8


class FromCarriedState(nl.Module):
    """A stateful layer that starts every forward from the same carried ``state``: so the finite differences'
    repeated forwards see one function, the layer's from that state (which is a constant: no gradient)."""

    def __init__(self, layer, state):
        super().__init__()
        self.layer = self.add_module("layer", layer)
        self.carried = state

    def forward(self, X):
        self.layer.state = self.carried
        return self.layer.forward(X)

    def backward(self, dH):
        return self.layer.backward(dH)


@pytest.mark.parametrize("kind", KINDS)
def test_gradcheck_of_a_stateful_layer_from_a_carried_state(kind):
    rng = np.random.default_rng(4)
    layer = make(kind, 2, 3, stateful=True)
    layer.forward(rng.normal(size=(2, 3, 2)))                    # a first window leaves a state
    carried = layer.state
    assert np.all(carried[1] != 0) if kind == "lstm" else carried.any()     # a state that matters
    for path_name in PATHS:
        with path(path_name):
            report = nl.gradcheck(FromCarriedState(layer, carried), rng.normal(size=(2, 4, 2)))
        assert report.passed and max(c.max_abs_error for c in report.checks) < 1e-8


# -- stateful layers: truncated backpropagation through time ---------------------------------------------

def windows(rng, N=2, T1=3, T2=4, F=2):
    X = rng.normal(size=(N, T1 + T2, F))
    return X, X[:, :T1], X[:, T1:]


@pytest.mark.parametrize("path_name", PATHS)
@pytest.mark.parametrize("kind", KINDS)
def test_a_stateful_layer_carries_its_state_and_truncates_the_gradient(kind, path_name):
    rng = np.random.default_rng(5)
    X, X1, X2 = windows(rng)
    G1, G2 = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 4, 4))
    layer = make(kind, 2, 4, stateful=True)
    with path(path_name):
        layer.forward(X1)
        first = layer.state                                      # h_T1 (and c_T1) of the first window
        dX1 = layer.backward(G1)
        first_grads = [p.grad.copy() for p in layer.parameters()]
        H2 = layer.forward(X2)                                   # starts from the first window's final state
        dX2 = layer.backward(G2)
        second_grads = [p.grad - g for p, g in zip(layer.parameters(), first_grads)]
    assert isinstance(dX1, np.ndarray) and isinstance(dX2, np.ndarray)   # no gradient for a carried state
    # The carried state is where the first window ended: the whole sequence's second half.
    whole = make(kind, 2, 4)
    with path(path_name):
        H = whole.forward(X)
    np.testing.assert_allclose(H2, H[:, 3:], rtol=1e-12, atol=1e-14)
    # The second window's gradients are those of a fresh layer started from that state as a constant.
    fresh = make(kind, 2, 4)
    given = list(first) if kind == "lstm" else [first]
    with path(path_name):
        H2_fresh = fresh.forward(X2, *given)
        dX2_fresh = fresh.backward(G2)[0]
    np.testing.assert_allclose(H2, H2_fresh, rtol=1e-13, atol=1e-15)
    np.testing.assert_allclose(dX2, dX2_fresh, rtol=1e-12, atol=1e-14)
    for (name, p), ours in zip(fresh.named_parameters(), second_grads):
        np.testing.assert_allclose(ours, p.grad, rtol=1e-10, atol=1e-12, err_msg=f"δ{name} of the second window")
    # Full backpropagation through both windows would send δH₂ back into the first window's steps:
    # other gradients, so the truncation is real.
    with path(path_name):
        whole.backward(np.concatenate([np.zeros_like(G1), G2], axis=1))
    assert not np.allclose(whole.W_h.grad, fresh.W_h.grad)
    # and layer.state is now the end of the second window
    for ours, theirs in zip(layer.state if kind == "lstm" else [layer.state],
                            fresh.state if kind == "lstm" else [fresh.state]):
        np.testing.assert_allclose(ours, theirs, rtol=1e-13, atol=1e-15)


@pytest.mark.parametrize("kind", KINDS)
def test_reset_state_and_given_states_and_batch_size(kind):
    rng = np.random.default_rng(6)
    X = rng.normal(size=(2, 3, 2))
    layer, plain = make(kind, 2, 3, stateful=True), make(kind, 2, 3)
    from_zeros = plain.forward(X)
    np.testing.assert_array_equal(layer.forward(X), from_zeros)           # no state yet: zeros
    assert not np.allclose(layer.forward(X), from_zeros)                  # now from the carried state
    layer.reset_state()
    assert layer.state is None
    np.testing.assert_array_equal(layer.forward(X), from_zeros)
    # Given states win over a carried one, and their gradients come back
    states = [rng.normal(size=(2, 3)) for _ in range(state_count(kind))]
    np.testing.assert_array_equal(layer.forward(X, *states), plain.forward(X, *states))
    assert len(layer.backward(np.ones((2, 3, 3)))) == 1 + len(states)
    # A batch of another size than the carried state's is refused, and nothing changes
    before = [s.copy() for s in (layer.state if kind == "lstm" else [layer.state])]
    with pytest.raises(nl.ShapeError, match=r"stateful, with a state for a batch of 2, got a batch of 3; "
                                            r"call reset_state\(\)"):
        layer.forward(rng.normal(size=(3, 3, 2)))
    for s, kept in zip(layer.state if kind == "lstm" else [layer.state], before):
        np.testing.assert_array_equal(s, kept)
    layer.reset_state()
    assert layer.forward(rng.normal(size=(3, 3, 2))).shape == (3, 3, 3)


def test_a_layer_that_is_not_stateful_starts_from_zeros_and_still_records_its_state():
    rng = np.random.default_rng(7)
    layer = make("lstm", 2, 3)
    X = rng.normal(size=(2, 3, 2))
    Z = layer.forward(X)
    h, c = layer.state
    np.testing.assert_array_equal(h, Z[:, -1])
    np.testing.assert_array_equal(layer.forward(X), Z)
    layer.state[0][...] = 99.0                                              # the caller's copy
    np.testing.assert_array_equal(layer.forward(X), Z)


@pytest.mark.parametrize("kind", KINDS)
def test_gradients_accumulate_and_a_second_backward_gives_the_same_input_gradient(kind):
    rng = np.random.default_rng(8)
    layer = make(kind, 2, 3)
    X, G = rng.normal(size=(2, 4, 2)), rng.normal(size=(2, 4, 3))
    layer.forward(X)
    dX = layer.backward(G)
    once = [p.grad.copy() for p in layer.parameters()]
    np.testing.assert_array_equal(layer.backward(G), dX)
    for p, g in zip(layer.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * g, rtol=1e-15)


# -- hostile inputs ----------------------------------------------------------------------------------

@pytest.mark.parametrize("path_name", PATHS)
@pytest.mark.parametrize("kind", KINDS + CELLS)
def test_nan_in_one_sample_stays_in_that_sample(kind, path_name):
    """A NaN input gives NaN outputs from its time step on, in its own sample only; the others compute
    as without it, forward and backward (the weights' gradients, sums over samples, are NaN). No warning."""
    rng = np.random.default_rng(9)
    cell = "cell" in kind
    X = rng.normal(size=(3, 2) if cell else (3, 5, 2))
    X[(1, 0) if cell else (1, 2, 0)] = np.nan                    # sample 1 (at time step 2)
    layer, clean = make(kind, 2, 3), make(kind, 2, 3)
    with path(path_name), np.errstate(all="raise"):
        Z = layer.forward(X)
        Zs = Z if isinstance(Z, tuple) else (Z,)
        dX = layer.backward(*(np.ones(z.shape) for z in Zs))
        kept = clean.forward(X[[0, 2]])
        kept = kept if isinstance(kept, tuple) else (kept,)
        dX_kept = clean.backward(*(np.ones(z.shape) for z in kept))
    for z, k in zip(Zs, kept):
        np.testing.assert_allclose(z[[0, 2]], k, rtol=1e-13, atol=1e-15)
        assert np.isnan(z[1]).all() if cell else (np.isnan(z[1, 2:]).all() and np.isfinite(z[1, :2]).all())
    np.testing.assert_allclose(dX[[0, 2]], dX_kept, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("kind", KINDS)
def test_bad_inputs_are_clear_errors_that_change_nothing(kind):
    rng = np.random.default_rng(10)
    layer = make(kind, 3, 4)
    X, G = rng.normal(size=(2, 5, 3)), rng.normal(size=(2, 5, 4))
    name = type(layer).__name__
    layer.forward(X)
    layer.backward(G)
    expected = [p.grad.copy() for p in layer.parameters()]
    state = [s.copy() for s in (layer.state if kind == "lstm" else [layer.state])]
    h0 = rng.normal(size=(2, 4))
    bad = [
        (rng.normal(size=(2, 3)), nl.ShapeError, rf"{name}\(input_size=3, hidden_size=4.*\): expected input of "
                                                 r"shape \(N, T, 3\) \(batch, time, features\), got shape \(2, 3\)"),
        (rng.normal(size=(2, 5, 2)), nl.ShapeError, r"expected input of shape \(N, T, 3\).*got shape \(2, 5, 2\)"),
        (rng.normal(size=(2, 5, 3, 1)), nl.ShapeError, r"got shape \(2, 5, 3, 1\)"),
        (np.zeros((2, 0, 3)), nl.ShapeError, r"expected at least one time step, got input of shape \(2, 0, 3\)"),
        (np.array([["a"]]), TypeError, "expected a numeric array, got dtype <U1"),
    ]
    for X_bad, error, message in bad:
        with pytest.raises(error, match=message):
            layer.forward(X_bad)
    wrong_states = [
        ([rng.normal(size=(3, 4))] * state_count(kind), nl.ShapeError,
         r"expected h0 of shape \(2, 4\) \(N, hidden_size\), got shape \(3, 4\)"),
        ([rng.normal(size=(2, 4, 1))] * state_count(kind), nl.ShapeError, r"expected h0 of shape \(2, 4\)"),
        ([h0] * (state_count(kind) + 1), TypeError, "optionally h0"),
    ]
    if kind == "lstm":
        wrong_states.append(([h0], TypeError, r"takes the input and optionally h0 and c0, got 2 inputs"))
        wrong_states.append(([h0, rng.normal(size=(2, 5))], nl.ShapeError, r"expected c0 of shape \(2, 4\)"))
    for states, error, message in wrong_states:
        with pytest.raises(error, match=message):
            layer.forward(X, *states)
    # nothing changed: the state, and the cache (a backward still differentiates the last good forward)
    for s, kept in zip(layer.state if kind == "lstm" else [layer.state], state):
        np.testing.assert_array_equal(s, kept)
    layer.zero_grad()
    layer.backward(G)
    for p, g in zip(layer.parameters(), expected):
        np.testing.assert_array_equal(p.grad, g)
    # a wrong δH is refused, naming the shape forward returned
    with pytest.raises(nl.ShapeError, match=r"backward expected dZ of shape \(2, 5, 4\).*got shape \(2, 4, 4\)"):
        layer.backward(G[:, :4])
    # backward before forward, and after clear_cache
    with pytest.raises(RuntimeError, match="backward called before forward"):
        make(kind, 3, 4).backward(G)
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.clear_cache().backward(G)


@pytest.mark.parametrize("kind", CELLS)
def test_bad_cell_inputs_are_clear_errors(kind):
    rng = np.random.default_rng(11)
    cell = make(kind, 3, 4)
    name = type(cell).__name__
    x = rng.normal(size=(2, 3))
    with pytest.raises(nl.ShapeError, match=rf"{name}\(input_size=3, hidden_size=4.*\): expected input of shape "
                                            r"\(N, 3\), got shape \(2, 5, 3\)"):
        cell.forward(rng.normal(size=(2, 5, 3)))
    with pytest.raises(nl.ShapeError, match=r"expected input of shape \(N, 3\), got shape \(2, 2\)"):
        cell.forward(rng.normal(size=(2, 2)))
    with pytest.raises(nl.ShapeError, match=r"expected h of shape \(2, 4\) \(N, hidden_size\), got shape \(2, 3\)"):
        cell.forward(x, *[rng.normal(size=(2, 3))] * state_count(kind))
    with pytest.raises(TypeError, match="optionally h and c, got 4 inputs" if kind == "lstm-cell" else
                       "optionally h, got 3 inputs"):
        cell.forward(x, *[rng.normal(size=(2, 4))] * (state_count(kind) + 1))
    if kind == "lstm-cell":
        with pytest.raises(TypeError, match="got 2 inputs"):
            cell.forward(x, rng.normal(size=(2, 4)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        cell.backward(*[np.ones((2, 4))] * (2 if kind == "lstm-cell" else 1))
    outputs = cell.forward(x)
    with pytest.raises(nl.ShapeError, match=r"backward expected dZ of shape \(2, 4\)"):
        cell.backward(*[np.ones((2, 5))] * (2 if kind == "lstm-cell" else 1))
    assert len(outputs) == 2 if kind == "lstm-cell" else outputs.shape == (2, 4)


@pytest.mark.parametrize("with_states", [False, True], ids=["zero-states", "given-states"])
@pytest.mark.parametrize("path_name", PATHS)
@pytest.mark.parametrize("kind", KINDS + CELLS)
def test_an_empty_batch(kind, path_name, with_states):
    cell = "cell" in kind
    layer = make(kind, 3, 4)
    X = np.zeros((0, 3) if cell else (0, 5, 3))
    states = [np.zeros((0, 4))] * state_count(kind) if with_states else []
    with path(path_name):
        Z = layer.forward(X, *states)
        Zs = Z if isinstance(Z, tuple) else (Z,)
        assert [z.shape for z in Zs] == [(0, 4) if cell else (0, 5, 4)] * len(Zs)
        grads = layer.backward(*(np.zeros(z.shape) for z in Zs))
    grads = grads if with_states else (grads,)
    assert [g.shape for g in grads] == [X.shape] + [(0, 4)] * len(states)
    assert not any(p.grad.any() for p in layer.parameters())


@pytest.mark.parametrize("make_layer, error, message", [
    (lambda: nl.RNN(0, 3), ValueError, "RNN: input_size must be a positive integer"),
    (lambda: nl.LSTM(3, "4"), TypeError, "LSTM: hidden_size must be a positive integer"),
    (lambda: nl.GRU(3.0, 4), TypeError, "GRU: input_size must be"),
    (lambda: nl.RNN(3, 4, "sigmoid"), ValueError, "RNN: nonlinearity must be 'tanh' or 'relu', got 'sigmoid'"),
    (lambda: nl.RNNCell(3, 4, None), TypeError, "RNNCell: nonlinearity must be 'tanh' or 'relu', got None"),
    (lambda: nl.LSTM(3, 4, stateful="yes"), TypeError, "LSTM: stateful must be True or False"),
    (lambda: nl.GRUCell(3, -1), ValueError, "GRUCell: hidden_size must be a positive integer"),
])
def test_constructor_arguments(make_layer, error, message):
    with pytest.raises(error, match=message) as caught:
        make_layer()
    assert type(caught.value) is error


def test_settings_and_repr():
    layer = nl.RNN(3, 4, "relu", stateful=True, dtype=np.float32)
    assert layer.settings() == {"input_size": 3, "hidden_size": 4, "dtype": "float32", "stateful": True,
                                "nonlinearity": "relu"}
    assert repr(layer) == "RNN(input_size=3, hidden_size=4, stateful=True, dtype='float32', nonlinearity='relu')"
    assert repr(nl.LSTM(2, 5)) == "LSTM(input_size=2, hidden_size=5)"
    assert repr(nl.GRUCell(2, 5)) == "GRUCell(input_size=2, hidden_size=5)"
    shapes = {name: p.shape for name, p in nl.LSTM(2, 5).named_parameters()}
    assert shapes == {"W_x": (2, 20), "W_h": (5, 20), "b_x": (20,), "b_h": (20,)}
    assert {name: p.shape for name, p in nl.GRUCell(2, 5).named_parameters()}["W_h"] == (5, 15)
    bound = 1 / np.sqrt(5)                                                # PyTorch's U(−1/√H, 1/√H)
    assert all(np.abs(p.data).max() <= bound for p in nl.LSTM(2, 5, rng=0).parameters())
