"""The LSTM's fast time loops (nnlayers/kernels/lstm.py: feature-major, σ through tanh, in place) equal its
reference path (the formulas of ``lstm_step`` and ``lstm_step_backward`` in nnlayers/layers/rnn_cells.py).

Over random geometries (N, T, F, H from 1, with and without initial states) both give H, the final
states, δX, δh0, δc0 and every parameter gradient within 1e-12 of each other relative to the largest
magnitude (float64), and within float32 rounding in float32. The dispatch: numpy LSTMs take the
kernel, RNN and GRU and everything inside ``reference_paths()`` the reference path.
"""
import copy

import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

import nnlayers as nl
from nnlayers import kernels
from nnlayers.kernels import lstm, recurrent_kernel_for

TOLERANCE = {np.float64: 1e-12, np.float32: 2e-6}
NAMES = ("H", "h_T", "c_T", "dX", "dh0", "dc0", "dW_x", "dW_h", "db_x", "db_h")


def is_the_lstm_kernel(kernel) -> bool:
    return getattr(kernel, "forward", None) is lstm.forward and kernel.backward is lstm.backward


def run(layer, X, states, dH) -> list:
    """H, the final states, δX (δh0, δc0 when states are given) and the parameter gradients of one
    forward and backward from zeroed gradients."""
    layer.zero_grad()
    H = layer.forward(X, *states)
    grads = layer.backward(dH)
    grads = grads if states else (grads,)
    return [H, *layer.state, *grads, *(p.grad.copy() for p in layer.parameters())]


def layer_and_data(N, T, F, H, with_states, seed, dtype=np.float64):
    rng = np.random.default_rng(seed)
    layer = nl.LSTM(F, H, rng=seed, dtype=dtype)
    for parameter in layer.parameters():                    # larger than U(±1/√H): gates away from ½
        parameter.data[...] = rng.normal(scale=0.8, size=parameter.shape)
    X = rng.normal(size=(N, T, F)).astype(dtype)
    states = [rng.normal(size=(N, H)).astype(dtype) for _ in range(2)] if with_states else []
    return layer, X, states, rng.normal(size=(N, T, H)).astype(dtype)


def assert_close(ours, reference, tolerance, what):
    names = NAMES if len(ours) == len(NAMES) else [n for n in NAMES if n not in ("dh0", "dc0")]
    assert len(ours) == len(reference) == len(names)
    for name, a, b in zip(names, ours, reference):
        assert a.shape == b.shape and a.dtype == b.dtype, f"{name} ({what})"
        scale = max(float(np.abs(b).max(initial=0.0)), 1e-300)
        assert float(np.abs(a - b).max(initial=0.0)) <= tolerance * scale, f"{name} differs ({what})"


@settings(max_examples=30, deadline=None)
@given(N=st.integers(1, 4), T=st.integers(1, 6), F=st.integers(1, 5), H=st.integers(1, 5),
       with_states=st.booleans(), seed=st.integers(0, 2**16))
def test_the_lstm_kernel_equals_the_reference_path(N, T, F, H, with_states, seed):
    layer, X, states, dH = layer_and_data(N, T, F, H, with_states, seed)
    with kernels.reference_paths():
        expected = run(layer, X, states, dH)
        assert layer._kernel is None
    ours = run(layer, X, states, dH)
    assert is_the_lstm_kernel(layer._kernel)
    assert_close(ours, expected, TOLERANCE[np.float64], f"N={N} T={T} F={F} H={H} states={with_states}")


@pytest.mark.parametrize("N, T, F, H", [(1, 1, 1, 1), (1, 5, 3, 4), (3, 1, 2, 2), (4, 8, 5, 6), (2, 12, 3, 16)])
@pytest.mark.parametrize("with_states", [False, True])
def test_the_lstm_kernel_in_float32(N, T, F, H, with_states):
    layer, X, states, dH = layer_and_data(N, T, F, H, with_states, seed=N * T + H, dtype=np.float32)
    with kernels.reference_paths():
        expected = run(layer, X, states, dH)
    ours = run(layer, X, states, dH)
    assert all(a.dtype == np.float32 for a in ours)
    assert_close(ours, expected, TOLERANCE[np.float32], f"float32 N={N} T={T} F={F} H={H}")


def test_the_kernel_leaves_nothing_of_the_callers_shared_and_its_caches_describe_one_forward():
    layer, X, states, dH = layer_and_data(1, 3, 2, 3, True, seed=1)
    H = layer.forward(X, *states)
    cached = [layer._X, layer._H, *layer._saved]
    assert not any(np.shares_memory(H, c) for c in cached)                       # N = 1 included
    assert not any(np.shares_memory(s, c) for s in layer.state for c in cached)
    first = layer.backward(dH)
    H[...] = 7.0                                                                  # the caller's arrays
    first[0][...] = 7.0
    layer.zero_grad()
    second = layer.backward(dH)
    with kernels.reference_paths():
        reference = nl.LSTM(2, 3)
        reference.load_state_dict(layer.state_dict())
        reference.forward(X, *states)
        expected = reference.backward(dH)
    for a, b in zip(second, expected):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)


def test_a_layer_that_took_the_kernel_can_be_copied():
    """A layer keeps the kernel its forward took (for its backward) and must still deep-copy: export_onnx
    copies the model, often just after a training step."""
    layer, X, states, dH = layer_and_data(2, 3, 2, 3, False, seed=2)
    layer.forward(X)
    twin = copy.deepcopy(layer)
    assert is_the_lstm_kernel(twin._kernel)
    np.testing.assert_array_equal(twin.backward(dH), layer.backward(dH))


def test_the_dispatch():
    X = np.zeros((2, 3, 2))
    assert is_the_lstm_kernel(recurrent_kernel_for(nl.LSTM(2, 3), X))
    assert is_the_lstm_kernel(recurrent_kernel_for(nl.LSTM(2, 3), X.astype(np.float32)))
    for layer in (nl.RNN(2, 3), nl.RNN(2, 3, "relu"), nl.GRU(2, 3)):
        assert recurrent_kernel_for(layer, X) is None                           # their loops are the formulas
    with kernels.reference_paths():
        assert recurrent_kernel_for(nl.LSTM(2, 3), X) is None
    assert recurrent_kernel_for(nl.LSTM(2, 3), X.view(type("Other", (np.ndarray,), {}))) is None  # not numpy's
