"""MultiHeadAttention: a tiny attention by hand, PyTorch parity against nn.MultiheadAttention(batch_first=True)
(self, causal, cross, key padding, every parameter gradient, δX and δmemory), gradchecks, what backward returns
for each call, dropout, float32, the hostile inputs, and ONNX at two sequence lengths."""
import math

import numpy as np
import pytest

import nnlayers as nl
from tests.helpers import importable, require

NAMES = ("W_q", "W_k", "W_v", "W_o", "b_q", "b_k", "b_v", "b_o")


def attention(D, H, rng, **options):
    """A layer with every parameter, biases included, away from its initial value."""
    layer = nl.MultiHeadAttention(D, H, rng=rng, **options)
    for parameter in layer.parameters():
        parameter.data += np.random.default_rng(rng).normal(scale=0.2, size=parameter.shape)
    return layer


class SelfAttentionWithPadding(nl.Module):
    """mha(X, None, mask) as a module of two inputs, so that gradcheck can pass it the mask."""

    def __init__(self, mha):
        super().__init__()
        self.mha = self.add_module("mha", mha)

    def forward(self, X, mask):
        return self.mha.forward(X, None, mask)

    def backward(self, dZ):
        dX, dM, dmask = self.mha.backward(dZ)
        assert dM is None and dmask is None
        return dX, None


# -- values ------------------------------------------------------------------------------------------

def test_a_tiny_attention_by_hand():
    """T = 2, D = 2, one head, identity weights, zero biases: Q = K = V = X = I, so A = I/√2 and each
    query's output is its softmax weights themselves."""
    layer = nl.MultiHeadAttention(2, 1)
    for name in ("W_q", "W_k", "W_v", "W_o"):
        getattr(layer, name).data[...] = np.eye(2)
    X = np.eye(2)[None]                                            # one sequence: x₀ = (1, 0), x₁ = (0, 1)
    a = 1 / math.sqrt(2)                                           # x₀·x₀/√d, while x₀·x₁ = 0
    p = math.exp(a) / (math.exp(a) + 1)                            # softmax(a, 0)₀
    Z = layer.forward(X)
    np.testing.assert_allclose(Z, [[[p, 1 - p], [1 - p, p]]], rtol=1e-15)
    dZ = np.array([[[1.0, 0.0], [0.0, 2.0]]])
    layer.backward(dZ)
    np.testing.assert_allclose(layer.b_o.grad, [1.0, 2.0])                          # δb_o = Σ δZ
    np.testing.assert_allclose(layer.W_o.grad, Z[0].T @ dZ[0], rtol=1e-15)         # δW_o = Oᵀ δZ (O = Z here)
    # causal: query 0 sees key 0 alone (weight 1), query 1 both, as before
    causal = nl.MultiHeadAttention(2, 1, causal=True)
    for name in ("W_q", "W_k", "W_v", "W_o"):
        getattr(causal, name).data[...] = np.eye(2)
    np.testing.assert_allclose(causal.forward(X), [[[1.0, 0.0], [1 - p, p]]], rtol=1e-15)
    # padding the second key: both queries see x₀ alone
    np.testing.assert_allclose(layer.forward(X, None, np.array([[False, True]])), [[[1.0, 0.0], [1.0, 0.0]]])


def test_heads_attend_separately(rng):
    """Two heads over disjoint features equal two one-head layers side by side."""
    two = attention(4, 2, 0)
    X = rng.normal(size=(2, 3, 4))
    d = slice(0, 2), slice(2, 4)
    W = {name: getattr(two, name).data for name in NAMES}
    O = []
    for h in d:                                                  # by hand, one head at a time
        Q, K, V = (X @ W[f"W_{c}"][:, h] + W[f"b_{c}"][h] for c in "qkv")
        A = Q @ K.transpose(0, 2, 1) / math.sqrt(2)
        P = np.exp(A - A.max(-1, keepdims=True))
        O.append(P / P.sum(-1, keepdims=True) @ V)
    expected = np.concatenate(O, axis=-1) @ W["W_o"] + W["b_o"]
    np.testing.assert_allclose(two.forward(X), expected, rtol=1e-13)


def test_without_positions_attention_is_permutation_equivariant(rng):
    layer = attention(6, 3, 1)
    X = rng.normal(size=(2, 5, 6))
    order = rng.permutation(5)
    np.testing.assert_allclose(layer.forward(X[:, order]), layer.forward(X)[:, order], rtol=1e-13)


def test_self_attention_is_cross_attention_with_memory_x(rng):
    layer = attention(4, 2, 2)
    X, dZ = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 3, 4))
    Z = layer.forward(X)
    dX = layer.backward(dZ)
    grads = [p.grad.copy() for p in layer.parameters()]
    layer.zero_grad()
    np.testing.assert_array_equal(layer.forward(X, X), Z)
    dX_query, dX_memory = layer.backward(dZ)
    np.testing.assert_allclose(dX, dX_query + dX_memory, rtol=1e-13, atol=1e-15)
    for g, p in zip(grads, layer.parameters()):
        np.testing.assert_allclose(p.grad, g, rtol=1e-13, atol=1e-15)


def test_backward_returns_one_gradient_per_input(rng):
    layer = attention(4, 2, 3)
    X, M = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4))
    mask = np.zeros((2, 5), dtype=bool)
    dZ = np.ones((2, 3, 4))
    layer.forward(X)
    assert isinstance(layer.backward(dZ), np.ndarray)
    layer.forward(X, M)
    dX, dM = layer.backward(dZ)
    assert dX.shape == X.shape and dM.shape == M.shape
    layer.forward(X, M, mask)
    dX, dM, dmask = layer.backward(dZ)
    assert dM.shape == M.shape and dmask is None
    layer.forward(X, None, mask[:, :3])
    dX, dM, dmask = layer.backward(dZ)
    assert dX.shape == X.shape and dM is None and dmask is None


# -- PyTorch ------------------------------------------------------------------------------------------

CONFIGS = {  # id: (causal, T, S or None for self-attention, padded keys per sequence or None)
    "self": (False, 5, None, None),
    "self-causal": (True, 5, None, None),
    "self-padding": (False, 5, None, (0, 2, 4)),
    "self-causal-padding": (True, 6, None, (1, 0, 5)),
    "cross": (False, 4, 7, None),
    "cross-padding": (False, 4, 7, (3, 0, 6)),
    "cross-causal": (True, 4, 3, None),
    "cross-causal-padding": (True, 5, 6, (2, 4, 0)),
}


@pytest.mark.parametrize("config", CONFIGS)
def test_matches_torch_multihead_attention(config):
    require(importable("torch"), "PyTorch is not installed (pip install torch==2.13.0); parity tests need it")
    import torch
    causal, T, S, padded = CONFIGS[config]
    D, H, N = 12, 3, 3
    rng = np.random.default_rng(5)
    layer = attention(D, H, 4, causal=causal)
    twin = torch.nn.MultiheadAttention(D, H, batch_first=True).double()
    with torch.no_grad():                                        # the map of the layer's docstring
        twin.in_proj_weight.copy_(torch.tensor(np.concatenate([layer.W_q.data.T, layer.W_k.data.T,
                                                               layer.W_v.data.T])))
        twin.in_proj_bias.copy_(torch.tensor(np.concatenate([layer.b_q.data, layer.b_k.data, layer.b_v.data])))
        twin.out_proj.weight.copy_(torch.tensor(layer.W_o.data.T))
        twin.out_proj.bias.copy_(torch.tensor(layer.b_o.data))
    X = rng.normal(size=(N, T, D))
    M = None if S is None else rng.normal(size=(N, S, D))
    L = T if S is None else S
    mask = None
    if padded is not None:
        mask = np.zeros((N, L), dtype=bool)
        for n, count in enumerate(padded):
            mask[n, L - count:] = count > 0
    dZ = rng.normal(size=(N, T, D))

    inputs = (X,) if M is None and mask is None else (X, M) if mask is None else (X, M, mask)
    Z = layer.forward(*inputs)
    grads = layer.backward(dZ)
    dX = grads if isinstance(grads, np.ndarray) else grads[0]

    Xt = torch.tensor(X, requires_grad=True)
    Mt = Xt if M is None else torch.tensor(M, requires_grad=True)
    Zt, _ = twin(Xt, Mt, Mt, need_weights=False,
                 key_padding_mask=None if mask is None else torch.tensor(mask),
                 attn_mask=torch.ones(T, L, dtype=torch.bool).triu(1) if causal else None)
    Zt.backward(torch.tensor(dZ))

    def close(ours, theirs, what):
        np.testing.assert_allclose(ours, theirs.detach().numpy(), rtol=1e-10, atol=1e-12, err_msg=what)

    close(Z, Zt, "Z")
    close(dX, Xt.grad, "δX")
    if M is not None:
        close(grads[1], Mt.grad, "δmemory")
    W, b = twin.in_proj_weight.grad, twin.in_proj_bias.grad
    for i, c in enumerate("qkv"):
        close(getattr(layer, f"W_{c}").grad, W[i * D:(i + 1) * D].T, f"δW_{c}")
        close(getattr(layer, f"b_{c}").grad, b[i * D:(i + 1) * D], f"δb_{c}")
    close(layer.W_o.grad, twin.out_proj.weight.grad.T, "δW_o")
    close(layer.b_o.grad, twin.out_proj.bias.grad, "δb_o")


# -- finite differences ---------------------------------------------------------------------------------

@pytest.mark.parametrize("config", CONFIGS)
def test_gradcheck(config):
    causal, T, S, padded = CONFIGS[config]
    rng = np.random.default_rng(6)
    layer = attention(6, 2, 7, causal=causal)
    X = rng.normal(size=(2, T, 6))
    M = None if S is None else rng.normal(size=(2, S, 6))
    L = T if S is None else S
    if padded is None:
        report = nl.gradcheck(layer, X if M is None else (X, M))
    else:
        mask = np.zeros((2, L), dtype=bool)
        for n, count in enumerate(padded[:2]):
            mask[n, L - count:] = count > 0
        report = nl.gradcheck(SelfAttentionWithPadding(layer), (X, mask)) if M is None else \
            nl.gradcheck(layer, (X, M, mask))
    assert report.passed
    assert sorted(check.name.split(".")[-1] for check in report.checks if "." in check.name or
                  check.name in NAMES) == sorted(NAMES)


def test_gradcheck_with_dropout_in_training(rng):
    layer = attention(4, 2, 8, dropout=0.4)
    assert nl.gradcheck(layer, (rng.normal(size=(2, 5, 4)), rng.normal(size=(2, 3, 4)))).passed


def test_attention_weights_are_a_copy_of_the_last_forwards_p(rng):
    layer = attention(4, 2, 10, dropout=0.5)
    assert layer.attention_weights is None                                   # before any forward
    X, M = rng.normal(size=(2, 3, 4)), rng.normal(size=(2, 5, 4))
    mask = np.array([[False, False, False, True, True], [False] * 5])
    layer.forward(X, M, mask)
    P = layer.attention_weights
    assert P.shape == (2, 2, 3, 5)                                           # N×H×T×S
    np.testing.assert_allclose(P.sum(axis=-1), 1.0, rtol=1e-15)               # before dropout: rows sum to 1
    assert not P[0, :, :, 3:].any() and (P[1] > 0).all()                      # padded keys get weight 0
    Q = X @ layer.W_q.data + layer.b_q.data                                   # head 1 by hand
    K = M @ layer.W_k.data + layer.b_k.data
    A = np.where(mask[:, None, :], -np.inf, Q[..., 2:] @ K[..., 2:].transpose(0, 2, 1) / math.sqrt(2))
    expected = np.exp(A - A.max(-1, keepdims=True))
    np.testing.assert_allclose(P[:, 1], expected / expected.sum(-1, keepdims=True), rtol=1e-13)
    P[...] = 0                                                                # a copy: the layer is untouched
    assert layer.attention_weights.sum() == pytest.approx(2 * 2 * 3)
    layer.clear_cache()
    assert layer.attention_weights is None


# -- dropout, dtypes, settings ----------------------------------------------------------------------------

def test_dropout_zeroes_weights_in_training_only(rng):
    layer = attention(8, 2, 9, dropout=0.5)
    X = rng.normal(size=(4, 6, 8))
    Z = layer.forward(X)
    P, Pd = layer._P, layer._Pd
    kept = Pd != 0
    assert 0.3 < kept.mean() < 0.7
    np.testing.assert_allclose(Pd[kept], P[kept] / 0.5, rtol=1e-15)   # inverted dropout: kept weights × 1/(1 − p)
    plain = nl.MultiHeadAttention(8, 2)
    plain.load_state_dict(layer.state_dict())
    assert not np.allclose(Z, plain.forward(X))
    np.testing.assert_array_equal(layer.eval().forward(X), plain.forward(X))


def test_float32_throughout(rng):
    layer = nl.MultiHeadAttention(8, 4, causal=True, rng=0, dtype=np.float32)
    reference = nl.MultiHeadAttention(8, 4, causal=True, rng=0)
    X, M = rng.normal(size=(2, 5, 8)), rng.normal(size=(2, 3, 8))
    mask = np.array([[False, False, True], [False, True, True]])
    Z = layer.forward(X, M, mask)
    assert Z.dtype == np.float32
    dX, dM, _ = layer.backward(np.ones_like(Z))
    assert dX.dtype == dM.dtype == np.float32 and all(p.grad.dtype == np.float32 for p in layer.parameters())
    np.testing.assert_allclose(Z, reference.forward(X, M, mask), rtol=1e-5, atol=1e-5)


def test_settings_repr_and_initialisation():
    layer = nl.MultiHeadAttention(16, 4, causal=True, dropout=0.1, rng=0)
    assert layer.settings() == {"embed_dim": 16, "num_heads": 4, "causal": True, "dropout": 0.1,
                                "dtype": "float64"}
    assert repr(layer) == "MultiHeadAttention(embed_dim=16, num_heads=4, causal=True, dropout=0.1)"
    assert [name for name, _ in layer.named_parameters()] == list(NAMES)
    bound = math.sqrt(6 / 32)                                     # Xavier uniform, fan_in = fan_out = 16
    for name in NAMES[:4]:
        W = getattr(layer, name).data
        assert W.shape == (16, 16) and np.abs(W).max() <= bound and np.abs(W).max() > 0.8 * bound
    assert not layer.W_q.data.tolist() == layer.W_k.data.tolist()          # four separate draws
    assert all(not getattr(layer, name).data.any() for name in NAMES[4:])
    np.testing.assert_array_equal(nl.MultiHeadAttention(16, 4, rng=3).W_v.data,
                                  nl.MultiHeadAttention(16, 4, rng=3).W_v.data)


# -- hostile inputs --------------------------------------------------------------------------------------

def test_embed_dim_must_divide_into_heads():
    with pytest.raises(ValueError, match="MultiHeadAttention: embed_dim=10 is not divisible by num_heads=4"):
        nl.MultiHeadAttention(10, 4)
    with pytest.raises(ValueError, match="num_heads must be a positive integer, got 0"):
        nl.MultiHeadAttention(8, 0)
    with pytest.raises(TypeError, match="causal must be True or False"):
        nl.MultiHeadAttention(8, 2, causal="yes")
    with pytest.raises(ValueError, match=r"dropout must be a number in \[0, 1\)"):
        nl.MultiHeadAttention(8, 2, dropout=1.0)


def test_wrong_ranks_and_sizes_name_the_layer_and_shapes():
    layer = nl.MultiHeadAttention(8, 2)
    with pytest.raises(nl.ShapeError, match=r"MultiHeadAttention\(embed_dim=8, num_heads=2.*\): expected X of "
                                            r"shape \(N, T, 8\), got shape \(5, 8\)"):
        layer.forward(np.zeros((5, 8)))
    with pytest.raises(nl.ShapeError, match=r"expected X of shape \(N, T, 8\), got shape \(2, 5, 6\)"):
        layer.forward(np.zeros((2, 5, 6)))
    with pytest.raises(nl.ShapeError, match=r"expected memory of shape \(N, S, 8\), got shape \(2, 4, 6\)"):
        layer.forward(np.zeros((2, 5, 8)), np.zeros((2, 4, 6)))
    with pytest.raises(nl.ShapeError, match=r"expected memory of shape \(N, S, 8\), got shape \(4, 8\)"):
        layer.forward(np.zeros((2, 5, 8)), np.zeros((4, 8)))
    with pytest.raises(nl.ShapeError, match=r"X and memory must hold the same number of sequences N, got shapes "
                                            r"\(2, 5, 8\) and \(3, 4, 8\)"):
        layer.forward(np.zeros((2, 5, 8)), np.zeros((3, 4, 8)))
    with pytest.raises(nl.ShapeError, match=r"memory of shape \(N, 0, 8\) has no positions"):
        layer.forward(np.zeros((2, 5, 8)), np.zeros((2, 0, 8)))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        layer.backward(np.zeros((2, 5, 8)))                       # the refusals cached nothing


def test_a_mask_of_the_wrong_shape_or_kind():
    layer = nl.MultiHeadAttention(4, 2)
    X, M = np.zeros((2, 3, 4)), np.zeros((2, 5, 4))
    with pytest.raises(nl.ShapeError, match=r"key_padding_mask must have shape \(N, S\) = \(2, 5\), one flag "
                                            r"per key of each sequence \(True = padding\), got shape \(2, 3\)"):
        layer.forward(X, M, np.zeros((2, 3), dtype=bool))          # T flags instead of S
    with pytest.raises(nl.ShapeError, match=r"= \(2, 3\).*got shape \(3,\)"):
        layer.forward(X, None, np.zeros(3, dtype=bool))
    with pytest.raises(nl.ShapeError, match=r"got shape \(2, 1, 5\)"):
        layer.forward(X, M, np.zeros((2, 1, 5), dtype=bool))
    with pytest.raises(ValueError, match="hold only 0 and 1.*additive float mask"):
        layer.forward(X, M, np.where(np.eye(2, 5, dtype=bool), -np.inf, 0.0))
    with pytest.raises(TypeError, match="expected a boolean mask"):
        layer.forward(X, M, np.full((2, 5), "x"))


def test_a_query_with_every_key_masked_is_refused():
    layer = nl.MultiHeadAttention(4, 2)
    X, M = np.zeros((3, 2, 4)), np.zeros((3, 4, 4))
    mask = np.zeros((3, 4), dtype=bool)
    mask[1] = True                                                # sequence 1 is all padding
    with pytest.raises(ValueError, match=r"every key is masked for a query: key_padding_mask marks all 4 keys "
                                         r"of sequence 1 as padding; attention over no keys is undefined"):
        layer.forward(X, M, mask)
    causal = nl.MultiHeadAttention(4, 2, causal=True)
    left = np.array([[False, False], [True, False], [False, False]])   # left padding: query 0 sees only key 0
    with pytest.raises(ValueError, match=r"causal hides the keys after query 0 of sequence 1, and "
                                         r"key_padding_mask marks keys 0 … 0 as padding"):
        causal.forward(np.zeros((3, 2, 4)), None, left)


# -- ONNX -----------------------------------------------------------------------------------------------

def free_lengths(proto, axes):
    """The exported graph with axis 1 of the named inputs and outputs made symbolic ({name: symbol})."""
    for value in list(proto.graph.input) + list(proto.graph.output):
        if value.name in axes:
            value.type.tensor_type.shape.dim[1].dim_param = axes[value.name]
    return proto


def test_onnx_runs_a_causal_stack_at_other_sequence_lengths(rng):
    require(importable("onnx", "onnxruntime"), "onnx and onnxruntime are not installed (pip install -e '.[onnx]')")
    import onnxruntime
    model = nl.Sequential(nl.PositionalEmbedding(12, 8, rng=0), attention(8, 2, 10, causal=True, dropout=0.2),
                          nl.LayerNorm(8), nl.GELU())
    proto = free_lengths(nl.export_onnx(model, None, (5, 8), dtype=np.float32), {"X": "T", "Z": "T"})
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for T in (3, 5, 12):
        X = rng.normal(size=(2, T, 8))
        with nl.evaluation_mode(model):
            expected = model.forward(X)
        got = session.run(None, {"X": X.astype(np.float32)})[0]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())


def test_onnx_cross_attention_with_padding_at_other_lengths(rng):
    require(importable("onnx", "onnxruntime"), "onnx and onnxruntime are not installed (pip install -e '.[onnx]')")
    import onnxruntime
    layer = attention(6, 3, 11, causal=True)
    proto = nl.export_onnx(layer, None, ((4, 6), (5, 6), (5,)), dtype=np.float32)
    proto = free_lengths(proto, {"X0": "T", "X1": "S", "X2": "S", "Z": "T"})
    session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    for T, S in ((2, 7), (6, 3)):
        X, M = rng.normal(size=(2, T, 6)), rng.normal(size=(2, S, 6))
        mask = np.zeros((2, S), dtype=bool)
        mask[1, S - 1] = True
        expected = layer.forward(X, M, mask)
        got = session.run(None, {"X0": X.astype(np.float32), "X1": M.astype(np.float32),
                                 "X2": mask.astype(np.float32)})[0]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5 * np.abs(expected).max())
