"""Parity with PyTorch (CPU, float64) beyond one step of one layer: data with ties, whole networks,
several training steps, the optimizers and the learning-rate schedules.

Every layer configuration of the catalogue (tests/catalogue.py) is compared with its PyTorch twin on
random data by the battery (tests/test_layer_battery.py); this file keeps what the battery does not do.

Skipped with a visible reason when PyTorch is missing; under
NNLAYERS_REQUIRE_ALL=1 (as CI sets it) a missing PyTorch fails instead.

Every image layer is also compared on image-like data:
flat backgrounds and a few grey levels, where max-pooling windows are full of
ties. Integer pixel levels and weights that are multiples of 1/8 keep every
forward sum exact in float64, so ties are ties in both libraries, whatever
order each one adds in.
"""
import numpy as np
import pytest

import nnlayers as nl
from tests.catalogue import POOLS
from tests.helpers import require

try:
    import torch
except ImportError:  # the tests below skip (or fail under NNLAYERS_REQUIRE_ALL=1)
    torch = None

RTOL, ATOL = 1e-10, 1e-12


@pytest.fixture(autouse=True)
def _needs_torch():
    require(torch is not None, "PyTorch is not installed (pip install torch==2.13.0); parity tests need it")


def close(ours, theirs, rtol=RTOL, atol=ATOL):
    theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
    np.testing.assert_allclose(ours, theirs, rtol=rtol, atol=atol)


def t(array, grad=False):
    return torch.tensor(np.asarray(array), dtype=torch.float64, requires_grad=grad)


def same_forward_and_backward(layer, reference, X, rng):
    """Run ``layer`` and the torch ``reference`` forward on X and backward from one random δZ;
    assert both Z and δX agree. Parameter gradients are left for the caller to compare."""
    Z = layer.forward(X)
    Xt = t(X, grad=True)
    Zt = reference(Xt)
    close(Z, Zt)
    dZ = rng.normal(size=Z.shape)
    Zt.backward(t(dZ))
    close(layer.backward(dZ), Xt.grad)


def image_like(shape, rng):
    """Images with flat backgrounds: 2×2 blocks of the levels 0–3, about 70 % of them 0."""
    N, C, H, W = shape
    blocks = (N, C, (H + 1) // 2, (W + 1) // 2)
    small = rng.integers(0, 4, size=blocks) * (rng.random(blocks) < 0.4)
    return np.repeat(np.repeat(small, 2, axis=2), 2, axis=3)[:, :, :H, :W].astype(np.float64)


def dyadic_weights(conv, rng):
    """Weights and bias that are multiples of 1/8: sums of them times small integers are exact."""
    conv.W.data[...] = rng.integers(-4, 5, size=conv.W.shape) / 8
    if conv.b is not None:
        conv.b.data[...] = rng.integers(-2, 3, size=conv.b.shape) / 8


# -- Conv2D -----------------------------------------------------------------------------------

CONV_CASES = [  # (in, out, kernel, stride, padding, bias, input shape)
    (1, 4, 3, 1, 1, True, (3, 1, 8, 8)),
    (3, 2, 3, 2, 1, True, (2, 3, 9, 7)),
    (2, 3, (2, 3), (2, 1), (0, 2), False, (2, 2, 7, 6)),
    (2, 2, 5, 1, 2, True, (1, 2, 6, 6)),
    (4, 2, 1, 3, 0, True, (2, 4, 7, 8)),
    (2, 3, 3, 3, 0, False, (2, 2, 9, 9)),
]
# Winograd's F(2×2, 3×3) (3×3, stride 1, padding ≤ 2): even and odd outputs, every padding.
WINOGRAD_CASES = [
    (1, 4, 3, 1, 1, True, (3, 1, 8, 8)),
    (3, 2, 3, 1, 0, False, (2, 3, 7, 9)),
    (4, 3, 3, 1, 2, True, (1, 4, 5, 6)),
    (2, 3, 3, 1, (1, 2), True, (2, 2, 6, 5)),
]


@pytest.mark.parametrize("C, F, kernel, stride, padding, bias, shape, algorithm",
                         [case + ("gemm",) for case in CONV_CASES] + [case + ("winograd",) for case in WINOGRAD_CASES])
def test_conv2d_matches_torch_on_image_like_data(C, F, kernel, stride, padding, bias, shape, algorithm, rng):
    """On random data every one of these geometries is a conv-* entry of the catalogue (the battery)."""
    conv = nl.Conv2D(C, F, kernel, stride, padding, bias, rng=0, algorithm=algorithm)
    X = image_like(shape, rng)
    dyadic_weights(conv, rng)
    reference = torch.nn.Conv2d(C, F, kernel, stride, padding, bias=bias, dtype=torch.float64)
    with torch.no_grad():
        reference.weight.copy_(t(conv.W.data))
        if bias:
            reference.bias.copy_(t(conv.b.data))
    same_forward_and_backward(conv, reference, X, rng)
    close(conv.W.grad, reference.weight.grad)
    if bias:
        close(conv.b.grad, reference.bias.grad)


def test_im2col_and_col2im_match_unfold_and_fold(rng):
    X = rng.normal(size=(2, 3, 7, 8))
    for kernel, stride, padding in [(3, 1, 1), ((2, 3), (2, 1), (1, 0)), (2, 3, 2)]:
        cols = nl.im2col(X, kernel, stride, padding)
        reference = torch.nn.functional.unfold(t(X), kernel, padding=padding, stride=stride)
        close(cols, reference, rtol=0, atol=0)
        Y = rng.normal(size=cols.shape)
        close(nl.col2im(Y, X.shape, kernel, stride, padding),
              torch.nn.functional.fold(t(Y), (7, 8), kernel, padding=padding, stride=stride))


# -- pooling ----------------------------------------------------------------------------------

POOL_CASES = POOLS[:7]  # the catalogue's geometries: divisible, floor rule, overlapping, gaps, non-square


@pytest.mark.parametrize("kernel, stride, shape", POOL_CASES)
@pytest.mark.parametrize("ours, theirs", [(nl.MaxPool2D, torch and torch.nn.MaxPool2d),
                                          (nl.AvgPool2D, torch and torch.nn.AvgPool2d)],
                         ids=["max", "avg"])
def test_pooling_matches_torch_on_image_like_data(ours, theirs, kernel, stride, shape, rng):
    """Max-pooling windows full of ties; on random data these geometries are the catalogue's
    maxpool-*/avgpool-* entries (the battery)."""
    same_forward_and_backward(ours(kernel, stride), theirs(kernel, stride), image_like(shape, rng), rng)


# -- ReLU's kink, the loss ---------------------------------------------------------------------------

def test_relu_at_its_kink_matches_torch(rng):
    """ReLU at exactly 0, where both take the derivative 0 (the battery's entries keep away from it)."""
    X = rng.normal(size=(3, 2, 4, 5))
    X[0, 0, 0, :3] = 0.0
    same_forward_and_backward(nl.ReLU(), torch.relu, X, rng)


@pytest.mark.parametrize("data", ["random", "ties", "large"])
@pytest.mark.parametrize("target", ["labels", "one-hot", "soft"])
def test_softmax_cross_entropy_matches_torch(data, target, rng):
    N, K = 7, 5
    X = {"random": rng.normal(size=(N, K)),
         "ties": rng.integers(0, 2, size=(N, K)).astype(np.float64),          # equal logits in a row
         "large": rng.normal(size=(N, K)) * 300}[data]
    labels = rng.integers(0, K, size=N)
    Y = {"labels": labels, "one-hot": np.eye(K)[labels], "soft": rng.dirichlet(np.ones(K), size=N)}[target]
    loss = nl.SoftmaxCrossEntropy()
    value = loss.forward(X, Y)
    Xt = t(X, grad=True)
    reference = torch.nn.functional.cross_entropy(Xt, torch.tensor(Y) if target == "labels" else t(Y))
    reference.backward()
    assert value == pytest.approx(reference.item(), rel=RTOL, abs=ATOL)
    close(loss.backward(), Xt.grad)
    close(nl.softmax(X), torch.softmax(t(X), dim=1))
    close(nl.log_softmax(X), torch.log_softmax(t(X), dim=1))


@pytest.mark.parametrize("shape", [(4, 7, 5), (1, 1, 3), (3, 2, 4, 6), (32, 64, 81)])
@pytest.mark.parametrize("ignore_index", [None, -100, 2])
@pytest.mark.parametrize("data", ["random", "large"])
def test_sequence_cross_entropy_matches_torch(shape, ignore_index, data, rng):
    """N×T×V (and N×T₁×T₂×V) scores with N×T labels against F.cross_entropy on the scores with the
    classes moved to axis 1 (N×V×T) and on the flattened (N·T)×V rows: value and δZ."""
    V = shape[-1]
    Z = rng.normal(size=shape) * (300 if data == "large" else 1)
    labels = rng.integers(0, V, size=shape[:-1])
    if ignore_index is not None:
        labels[rng.random(size=labels.shape) < 0.3] = ignore_index
    loss = nl.SoftmaxCrossEntropy(ignore_index=ignore_index)
    value, grad = loss.forward(Z, labels), loss.backward()
    theirs = {} if ignore_index is None else {"ignore_index": ignore_index}
    moved = t(Z, grad=True)
    reference = torch.nn.functional.cross_entropy(torch.movedim(moved, -1, 1), torch.tensor(labels), **theirs)
    reference.backward()
    if torch.isnan(reference):                                  # every label ignored: PyTorch's 0/0
        assert value == 0.0 and np.all(grad == 0)
        return
    assert value == pytest.approx(reference.item(), rel=RTOL, abs=ATOL)
    close(grad, moved.grad)
    flat = t(Z.reshape(-1, V), grad=True)
    reference = torch.nn.functional.cross_entropy(flat, torch.tensor(labels.reshape(-1)), **theirs)
    reference.backward()
    assert value == pytest.approx(reference.item(), rel=RTOL, abs=ATOL)
    close(grad.reshape(-1, V), flat.grad)


def test_sequence_cross_entropy_with_probability_rows_matches_torch(rng):
    Z, Y = rng.normal(size=(3, 4, 5)), rng.dirichlet(np.ones(5), size=(3, 4))
    loss = nl.SoftmaxCrossEntropy()
    value = loss.forward(Z, Y)
    Zt = t(Z, grad=True)
    reference = torch.nn.functional.cross_entropy(torch.movedim(Zt, -1, 1), torch.movedim(t(Y), -1, 1))
    reference.backward()
    assert value == pytest.approx(reference.item(), rel=RTOL, abs=ATOL)
    close(loss.backward(), Zt.grad)


# -- gradient clipping ----------------------------------------------------------------------------

@pytest.mark.parametrize("norm_type", [2.0, float("inf"), 1.0, 3.0])
@pytest.mark.parametrize("max_norm", [0.5, 4.0, 1e3])                  # above, near, below the total
def test_clip_grad_norm_matches_torch(norm_type, max_norm, rng):
    shapes = [(3, 4), (4,), (2, 1, 3, 3), (1,)]
    grads = [rng.normal(size=shape) for shape in shapes]
    parameters = [nl.Parameter(np.zeros(shape), f"p{i}") for i, shape in enumerate(shapes)]
    tensors = [t(np.zeros(shape), grad=True) for shape in shapes]
    for parameter, tensor, g in zip(parameters, tensors, grads):
        parameter.grad[...] = g
        tensor.grad = t(g)
    total = nl.clip_grad_norm(parameters, max_norm, norm_type)
    reference = torch.nn.utils.clip_grad_norm_(tensors, max_norm, norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(reference.item(), rel=RTOL, abs=ATOL)
    for parameter, tensor in zip(parameters, tensors):
        close(parameter.grad, tensor.grad)
    changed = [not np.array_equal(parameter.grad, g) for parameter, g in zip(parameters, grads)]
    assert changed == [max_norm < total] * len(grads)                  # all scaled, or none touched


# -- a whole LeNet-like network on image-like data ------------------------------------------------

def test_lenet_like_network_matches_torch_on_images_with_ties(rng):
    """Conv → ReLU → MaxPool twice, then Linear: every parameter gradient, with ties in the pools.

    A max-pooling backward that sends a window's gradient to every tied maximum
    gets the convolution weight gradients wrong by the number of ties; this catches it.
    """
    X = image_like((8, 1, 12, 12), rng)
    labels = rng.integers(0, 10, size=8)
    model = nl.Sequential(nl.Conv2D(1, 4, 3, padding=1, rng=0), nl.ReLU(), nl.MaxPool2D(2),
                          nl.Conv2D(4, 6, 3, padding=1, rng=1), nl.ReLU(), nl.MaxPool2D(2),
                          nl.Flatten(), nl.Linear(54, 10, rng=2), nl.Bias(10))
    for conv in (model[0], model[3]):
        dyadic_weights(conv, rng)
    reference = torch.nn.Sequential(torch.nn.Conv2d(1, 4, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                    torch.nn.Conv2d(4, 6, 3, padding=1), torch.nn.ReLU(), torch.nn.MaxPool2d(2),
                                    torch.nn.Flatten(), torch.nn.Linear(54, 10)).double()
    with torch.no_grad():
        for ours, theirs in ((model[0], reference[0]), (model[3], reference[3])):
            theirs.weight.copy_(t(ours.W.data))
            theirs.bias.copy_(t(ours.b.data))
        reference[7].weight.copy_(t(model[7].W.data.T))     # ours: Z = X W (in×out); theirs: X Wᵀ
        reference[7].bias.copy_(t(model[8].b.data[0]))
    loss = nl.SoftmaxCrossEntropy()
    value = loss.forward(model.forward(X), labels)
    dX = model.backward(loss.backward())
    Xt = t(X, grad=True)
    reference_loss = torch.nn.functional.cross_entropy(reference(Xt), torch.tensor(labels))
    reference_loss.backward()
    assert value == pytest.approx(reference_loss.item(), rel=RTOL)
    for end in (2, 5):                                      # the data really has ties in the pools:
        A = model[:end].forward(X)                          # the ReLU outputs, in 2×2 windows
        windows = A[:, :, :A.shape[2] // 2 * 2, :A.shape[3] // 2 * 2].reshape(
            A.shape[0], A.shape[1], A.shape[2] // 2, 2, A.shape[3] // 2, 2)
        ties = (windows == windows.max(axis=(3, 5), keepdims=True)).sum(axis=(3, 5)) > 1
        assert ties.mean() > 0.25
    close(dX, Xt.grad)
    for ours, theirs in ((model[0], reference[0]), (model[3], reference[3])):
        close(ours.W.grad, theirs.weight.grad)
        close(ours.b.grad, theirs.bias.grad)
    close(model[7].W.grad, reference[7].weight.grad.T)
    close(model[8].b.grad[0], reference[7].bias.grad)


# -- BatchNorm over several steps, ResNet's basic block ------------------------------------------

BATCHNORM_CASES = [  # (class name, the same in both libraries; input shape; momentum)
    ("BatchNorm1d", (6, 4), 0.1),
    ("BatchNorm1d", (2, 3), 0.1),           # the smallest training batch
    ("BatchNorm1d", (3, 2, 5), 0.3),        # N×C×L
    ("BatchNorm2d", (4, 3, 5, 6), 0.1),
    ("BatchNorm2d", (1, 2, 3, 3), 0.5),     # batch of one: statistics over H·W
    ("BatchNorm2d", (3, 2, 4, 4), None),    # cumulative average
]


@pytest.mark.parametrize("name, shape, momentum", BATCHNORM_CASES,
                         ids=[f"{c[0]}-{'x'.join(map(str, c[1]))}-m{c[2]}" for c in BATCHNORM_CASES])
def test_batchnorm_matches_torch_in_training_and_eval(name, shape, momentum, rng):
    C = shape[1]
    layer = getattr(nl, name)(C, momentum=momentum)
    reference = getattr(torch.nn, name)(C, momentum=momentum, dtype=torch.float64)
    gamma, beta = rng.uniform(0.5, 2.0, size=C), rng.normal(size=C)
    layer.gamma.data[...], layer.beta.data[...] = gamma, beta
    with torch.no_grad():
        reference.weight.copy_(t(gamma))
        reference.bias.copy_(t(beta))
    for step in range(4):              # several training steps: outputs, gradients, running statistics
        X = rng.normal(loc=1.5, scale=3.0, size=shape)
        layer.zero_grad()
        reference.zero_grad()
        same_forward_and_backward(layer, reference, X, rng)
        close(layer.gamma.grad, reference.weight.grad)
        close(layer.beta.grad, reference.bias.grad)
        close(layer.running_mean.data, reference.running_mean)
        close(layer.running_var.data, reference.running_var)
        assert int(layer.num_batches_tracked.data) == int(reference.num_batches_tracked) == step + 1
    layer.eval()
    reference.eval()
    layer.zero_grad()
    reference.zero_grad()
    same_forward_and_backward(layer, reference, rng.normal(size=shape), rng)   # running statistics
    close(layer.gamma.grad, reference.weight.grad)
    close(layer.beta.grad, reference.bias.grad)


class TorchBasicBlock(torch.nn.Module if torch else object):
    """ResNet's basic block in PyTorch: conv-BN-ReLU-conv-BN, plus identity or 1×1 conv-BN, then ReLU."""

    def __init__(self, C, F, stride):
        super().__init__()
        nn = torch.nn
        self.block = nn.Sequential(nn.Conv2d(C, F, 3, stride, 1, bias=False), nn.BatchNorm2d(F), nn.ReLU(),
                                   nn.Conv2d(F, F, 3, 1, 1, bias=False), nn.BatchNorm2d(F))
        self.shortcut = (nn.Sequential(nn.Conv2d(C, F, 1, stride, bias=False), nn.BatchNorm2d(F))
                         if (C, stride) != (F, 1) else None)

    def forward(self, X):
        return torch.relu((X if self.shortcut is None else self.shortcut(X)) + self.block(X))


@pytest.mark.parametrize("C, F, stride", [(3, 3, 1), (2, 4, 2)], ids=["identity", "projection-stride2"])
def test_resnet_basic_block_matches_torch(C, F, stride, rng):
    from nnlayers.examples.mnist import basic_block
    ours = basic_block(C, F, stride, rng=0, dtype=np.float64)
    theirs = TorchBasicBlock(C, F, stride).double()
    residual = ours[0]
    pairs = [(residual.block[0], theirs.block[0]), (residual.block[1], theirs.block[1]),
             (residual.block[3], theirs.block[3]), (residual.block[4], theirs.block[4])]
    if theirs.shortcut is not None:
        pairs += [(residual.shortcut[0], theirs.shortcut[0]), (residual.shortcut[1], theirs.shortcut[1])]
    else:
        assert residual.shortcut is None
    with torch.no_grad():
        for mine, their in pairs:
            if isinstance(mine, nl.Conv2D):
                their.weight.copy_(t(mine.W.data))
            else:
                mine.gamma.data[...] = rng.uniform(0.5, 1.5, size=mine.gamma.shape)
                mine.beta.data[...] = rng.normal(size=mine.beta.shape)
                their.weight.copy_(t(mine.gamma.data))
                their.bias.copy_(t(mine.beta.data))
    for step in range(3):
        ours.zero_grad()
        theirs.zero_grad()
        same_forward_and_backward(ours, theirs, rng.normal(size=(3, C, 6, 6)), rng)
        for mine, their in pairs:
            if isinstance(mine, nl.Conv2D):
                close(mine.W.grad, their.weight.grad)
            else:
                close(mine.gamma.grad, their.weight.grad)
                close(mine.beta.grad, their.bias.grad)
                close(mine.running_var.data, their.running_var)
    ours.eval()
    theirs.eval()
    X = rng.normal(size=(2, C, 6, 6))
    close(ours.forward(X), theirs(t(X)))


# -- optimizers -----------------------------------------------------------------------------------

SGD_SETTINGS = [
    dict(lr=0.1),
    dict(lr=0.1, momentum=0.9),
    dict(lr=0.1, momentum=0.9, nesterov=True),
    dict(lr=0.1, weight_decay=0.01),
    dict(lr=0.05, momentum=0.8, weight_decay=0.1),
    dict(lr=0.05, momentum=0.8, nesterov=True, weight_decay=0.1),
]
ADAM_SETTINGS = [
    dict(),
    dict(lr=0.01, weight_decay=0.1),
    dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6),
]
ADAMW_SETTINGS = [
    dict(),                                         # PyTorch's default decay, 0.01
    dict(lr=0.01, weight_decay=0.5),
    dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.0),
]
OPTIMIZER_CASES = ([(nl.SGD, "SGD", s) for s in SGD_SETTINGS] + [(nl.Adam, "Adam", s) for s in ADAM_SETTINGS]
                   + [(nl.AdamW, "AdamW", s) for s in ADAMW_SETTINGS])


@pytest.mark.parametrize("ours, theirs, settings", OPTIMIZER_CASES,
                         ids=[f"{case[1]}-{case[2]}" for case in OPTIMIZER_CASES])
def test_optimizer_steps_match_torch_optim(ours, theirs, settings, rng):
    shapes = [(3, 4), (4,), (2, 1, 3, 3)]
    start = [rng.normal(size=shape) for shape in shapes]
    parameters = [nl.Parameter(value, f"p{i}") for i, value in enumerate(start)]
    tensors = [t(value, grad=True) for value in start]
    optimizer = ours(parameters, **settings)
    reference = getattr(torch.optim, theirs)(tensors, **settings)
    for step in range(60):
        for parameter, tensor in zip(parameters, tensors):
            g = rng.normal(size=parameter.shape)
            parameter.grad[...] = g
            tensor.grad = t(g)
        optimizer.step()
        reference.step()
        optimizer.zero_grad()
        for parameter, tensor in zip(parameters, tensors):
            close(parameter.data, tensor, rtol=1e-12, atol=1e-14)


# -- learning-rate schedules ----------------------------------------------------------------------

def schedule_pair(kind, ours_optimizer, torch_optimizer):
    """The same schedule built in nnlayers and in torch.optim.lr_scheduler."""
    S, L = nl.schedules, torch.optim.lr_scheduler
    if kind == "step":
        return S.StepLR(ours_optimizer, 7, gamma=0.5), L.StepLR(torch_optimizer, 7, gamma=0.5)
    if kind == "cosine":
        return S.CosineAnnealingLR(ours_optimizer, 50), L.CosineAnnealingLR(torch_optimizer, 50)
    if kind == "cosine-eta-min-past-T":
        return (S.CosineAnnealingLR(ours_optimizer, 20, eta_min=0.01),
                L.CosineAnnealingLR(torch_optimizer, 20, eta_min=0.01))
    if kind == "linear":
        return S.LinearLR(ours_optimizer), L.LinearLR(torch_optimizer)
    if kind == "linear-decay":
        return (S.LinearLR(ours_optimizer, 1.0, 0.1, total_iters=30),
                L.LinearLR(torch_optimizer, 1.0, 0.1, total_iters=30))
    if kind == "warmup-cosine":
        ours = S.SequentialLR(ours_optimizer, [S.LinearLR(ours_optimizer, 0.01, total_iters=8),
                                               S.CosineAnnealingLR(ours_optimizer, 52)], milestones=[8])
        theirs = L.SequentialLR(torch_optimizer, [L.LinearLR(torch_optimizer, 0.01, total_iters=8),
                                                  L.CosineAnnealingLR(torch_optimizer, 52)], milestones=[8])
        return ours, theirs
    if kind == "warmup-step-cosine":
        ours = S.SequentialLR(ours_optimizer, [S.LinearLR(ours_optimizer, 0.2, total_iters=5),
                                               S.StepLR(ours_optimizer, 4, 0.7),
                                               S.CosineAnnealingLR(ours_optimizer, 30, eta_min=1e-3)],
                              milestones=[5, 20])
        theirs = L.SequentialLR(torch_optimizer, [L.LinearLR(torch_optimizer, 0.2, total_iters=5),
                                                  L.StepLR(torch_optimizer, 4, 0.7),
                                                  L.CosineAnnealingLR(torch_optimizer, 30, eta_min=1e-3)],
                                milestones=[5, 20])
        return ours, theirs
    if kind == "one-cycle":       # 61 steps in all: the test's 60 end on the last one
        return (S.OneCycleLR(ours_optimizer, 0.08, 61),
                L.OneCycleLR(torch_optimizer, 0.08, total_steps=61))
    if kind == "one-cycle-three-phase-linear":
        settings = dict(pct_start=0.2, anneal_strategy="linear", div_factor=8.0, final_div_factor=50.0,
                        base_momentum=0.8, max_momentum=0.9, three_phase=True)
        return (S.OneCycleLR(ours_optimizer, 0.08, 61, **settings),
                L.OneCycleLR(torch_optimizer, 0.08, total_steps=61, **settings))
    raise ValueError(kind)


SCHEDULE_KINDS = ["step", "cosine", "cosine-eta-min-past-T", "linear", "linear-decay", "warmup-cosine",
                  "warmup-step-cosine", "one-cycle", "one-cycle-three-phase-linear"]


def step_alongside(steps, rng, parameter, tensor, optimizer, reference, schedule, reference_schedule,
                   group_value, lr_abs=0.0):
    """``steps`` optimizer and schedule steps of nnlayers and PyTorch on the same random gradients; after
    each, the learning rate and ``group_value``'s (ours, theirs) pair agree and so do the weights."""
    for step in range(steps):
        g = rng.normal(size=parameter.data.shape)
        parameter.grad[...] = g
        tensor.grad = t(g)
        optimizer.step()
        reference.step()
        schedule.step()
        reference_schedule.step()
        assert optimizer.lr == pytest.approx(reference.param_groups[0]["lr"], rel=1e-12, abs=lr_abs), step
        ours, theirs = group_value(optimizer, reference.param_groups[0])
        assert ours == pytest.approx(theirs, rel=1e-12), step
        close(parameter.data, tensor, rtol=1e-11, atol=1e-13)


@pytest.mark.parametrize("kind", SCHEDULE_KINDS)
def test_schedules_match_torch_lr_scheduler(kind, rng):
    """The learning rate (and Adam's β₁) after every one of 60 steps, and AdamW's weights trained under it."""
    start = rng.normal(size=(3, 4))
    parameter = nl.Parameter(start, "w")
    tensor = t(start, grad=True)
    optimizer = nl.AdamW([parameter], lr=0.05, weight_decay=0.1)
    reference = torch.optim.AdamW([tensor], lr=0.05, weight_decay=0.1)
    schedule, reference_schedule = schedule_pair(kind, optimizer, reference)
    assert optimizer.lr == pytest.approx(reference.param_groups[0]["lr"], rel=1e-12)
    step_alongside(60, rng, parameter, tensor, optimizer, reference, schedule, reference_schedule,
                   lambda ours, group: (ours.betas[0], group["betas"][0]), lr_abs=1e-15)


def test_one_cycle_cycles_sgd_momentum_as_torch(rng):
    start = rng.normal(size=(4,))
    parameter, tensor = nl.Parameter(start, "w"), t(start, grad=True)
    optimizer = nl.SGD([parameter], lr=0.1, momentum=0.9, nesterov=True)
    reference = torch.optim.SGD([tensor], lr=0.1, momentum=0.9, nesterov=True)
    schedule = nl.schedules.OneCycleLR(optimizer, 0.2, 50, pct_start=0.4)
    reference_schedule = torch.optim.lr_scheduler.OneCycleLR(reference, 0.2, total_steps=50, pct_start=0.4)
    step_alongside(49, rng, parameter, tensor, optimizer, reference, schedule, reference_schedule,
                   lambda ours, group: (ours.momentum, group["momentum"]))
