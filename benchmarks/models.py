"""The benchmark's nets, in pairs: nnlayers' from ``nnlayers.examples``, each with its PyTorch twin.

The nnlayers side is never written here: every net comes from the examples'
builders (``nnlayers/examples/xor.py``, ``mnist.py``), the same models the
training scripts and notebooks use. Each PyTorch twin mirrors its builder
layer for layer (PyTorch's default initialisation; the timings do not depend
on the weights). ``scripts/torch_reference.py`` trains ``fmnist_cnn_torch``.
"""
from __future__ import annotations


import nnlayers as nl
from nnlayers.examples import mnist
from nnlayers.examples.xor import xor_network

try:
    import torch
except ImportError:  # the benchmark still compares nnlayers with plain numpy
    torch = None

__all__ = ["NETS", "NET_BATCHES", "WINOGRAD_NETS", "RESNET_WIDTH", "with_algorithm", "xor_nnlayers", "xor_torch",
           "mlp_nnlayers", "mlp_torch", "lenet_nnlayers", "lenet_torch", "fmnist_cnn_nnlayers", "fmnist_cnn_torch",
           "lenet5_nnlayers", "lenet5_torch", "vgg_nnlayers", "vgg_torch", "resnet_nnlayers", "resnet_torch"]


def with_algorithm(model, algorithm: str, min_channels: int = 32):
    """``model`` with ``algorithm`` on every convolution over ``min_channels`` or more input channels.

    The first layer of a net, on 1 or 3 colour channels, keeps "gemm": Winograd's products over
    so few channels run too slowly to gain. (``Conv2D.algorithm`` may be changed between steps.)
    """
    for module in model.modules():
        if isinstance(module, nl.Conv2D) and module.in_channels >= min_channels:
            module.algorithm = algorithm
    return model


# -- XOR: 2-8-1 sigmoid network, float64 --------------------------------------------------------

def xor_nnlayers():
    model = xor_network(8, rng=0)
    model[0].input_grad = False  # X is data: like the others, skip its gradient
    return model


def xor_torch():
    nn = torch.nn
    return nn.Sequential(nn.Linear(2, 8), nn.Sigmoid(), nn.Linear(8, 1), nn.Sigmoid()).double()


# -- MLP and the LeNet-like CNN (conv 8, conv 16): float32 --------------------------------------

def mlp_nnlayers():
    return mnist.mlp(784, 256, 10, rng=0)  # no dropout


def mlp_torch():
    nn = torch.nn
    return nn.Sequential(nn.Linear(784, 256), nn.ReLU(), nn.Linear(256, 10))


def lenet_nnlayers():
    """Conv 1→8 3×3 pad 1, ReLU, MaxPool 2, Conv 8→16 3×3 pad 1, ReLU, MaxPool 2, Flatten, Linear 784→10."""
    return mnist.cnn(1, 28, 10, width=8, rng=0)


def lenet_torch():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Flatten(), nn.Linear(784, 10))


# -- the nets people train: float32 -------------------------------------------------------------

def fmnist_cnn_nnlayers(algorithm="gemm"):
    """The Fashion-MNIST reference CNN of scripts/train_mnist.py (``mnist.build("cnn")``)."""
    return with_algorithm(mnist.build("cnn", rng=0), algorithm)


def fmnist_cnn_torch(size: int = 28, classes: int = 10):
    """``mnist.build("cnn")`` layer for layer: conv 16, pool, conv 32, pool, 128 with Dropout(0.25), classes."""
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(32 * (size // 4) ** 2, 128), nn.ReLU(), nn.Dropout(0.25),
                         nn.Linear(128, classes))


def lenet5_nnlayers(algorithm="gemm"):
    """``mnist.lenet5()``: 5×5 conv 6 (pad 2), pool, 5×5 conv 16, pool, 120, 84, 10."""
    return mnist.lenet5(rng=0)  # 5×5 kernels: no Winograd


def lenet5_torch():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))


def vgg_nnlayers(algorithm="gemm"):
    """``mnist.vgg()`` on 3×32×32: conv 32, 32, pool, 64, 64, pool (3×3, pad 1), then 4096 → 256 → 10.

    ``algorithm`` is that of the convolutions on 32 or more channels (``with_algorithm``).
    """
    return with_algorithm(mnist.vgg(3, 32, 10, widths=(32, 64), hidden=256, rng=0), algorithm)


def vgg_torch():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, 32, 3, padding=1), nn.ReLU(), nn.Conv2d(32, 32, 3, padding=1), nn.ReLU(),
                         nn.MaxPool2d(2), nn.Conv2d(32, 64, 3, padding=1), nn.ReLU(),
                         nn.Conv2d(64, 64, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
                         nn.Linear(64 * 8 * 8, 256), nn.ReLU(), nn.Linear(256, 10))


RESNET_WIDTH = 32


def resnet_nnlayers(algorithm="gemm"):
    """``mnist.resnet`` on 3×32×32: conv 32 (+BN), ReLU, pool, two basic blocks of 32 channels at 16×16
    (``mnist.basic_block``, identity shortcuts), global average pooling, 32 → 10.

    ``algorithm`` is that of the blocks' convolutions (the first layer's, on 3 channels, is "gemm").
    """
    model = mnist.resnet(3, 10, widths=(RESNET_WIDTH,), blocks=(2,), stem_pool=True, rng=0)
    return with_algorithm(model, algorithm)


def _torch_basic_block(width):
    """``mnist.basic_block(width, width)``: ReLU(X + BN(conv(ReLU(BN(conv(X)))))), identity shortcut."""
    nn = torch.nn

    class BasicBlock(nn.Module):
        def __init__(self):
            super().__init__()
            self.block = nn.Sequential(nn.Conv2d(width, width, 3, padding=1, bias=False), nn.BatchNorm2d(width),
                                       nn.ReLU(), nn.Conv2d(width, width, 3, padding=1, bias=False),
                                       nn.BatchNorm2d(width))

        def forward(self, X):
            return torch.relu(X + self.block(X))
    return BasicBlock()


def resnet_torch():
    nn = torch.nn
    return nn.Sequential(nn.Conv2d(3, RESNET_WIDTH, 3, padding=1, bias=False), nn.BatchNorm2d(RESNET_WIDTH),
                         nn.ReLU(), nn.MaxPool2d(2), _torch_basic_block(RESNET_WIDTH),
                         _torch_basic_block(RESNET_WIDTH), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(RESNET_WIDTH, 10))


#: key: (title, nnlayers builder, torch builder, input shape). Each nnlayers builder takes the
#: algorithm of its wide 3×3 convolutions.
NETS = {
    "fmnist-cnn": ("Fashion-MNIST reference CNN (conv 16, pool, conv 32, pool, 128, 10; dropout)",
                   fmnist_cnn_nnlayers, fmnist_cnn_torch, (1, 28, 28)),
    "lenet5": ("LeNet-5 (5×5 conv 6, pool, 5×5 conv 16, pool, 120, 84, 10)",
               lenet5_nnlayers, lenet5_torch, (1, 28, 28)),
    "vgg": ("VGG-like 3×32×32 (conv 32, 32, pool, 64, 64, pool, 256, 10)", vgg_nnlayers, vgg_torch, (3, 32, 32)),
    "resnet": ("ResNet basic blocks 3×32×32 (conv 32, pool, 2 blocks of 32, BN, global avg-pool, 10)",
               resnet_nnlayers, resnet_torch, (3, 32, 32)),
}
NET_BATCHES = (64, 128)

#: Nets also timed with Winograd's F(2×2, 3×3) on their wide 3×3 convolutions (``algorithm="winograd"``),
#: a third candidate named "Winograd".
WINOGRAD_NETS = ("vgg", "resnet")
