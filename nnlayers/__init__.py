"""nnlayers: neural networks from explicit layer objects on numpy."""
from .gradcheck import GradcheckError, GradcheckReport, gradcheck, numerical_jacobian
from .layers import (AvgPool2D, Bias, Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU, Sigmoid, Tanh,
                     col2im, im2col, sigmoid)
from .losses import EuclideanLoss, Loss, SoftmaxCrossEntropy, log_softmax, softmax
from .module import Module, Parameter, Sequential, ShapeError
from .optim import SGD, Adam, Optimizer
from .training import History, Trainer, TrainingDivergedError, accuracy, minibatches
from .io import WeightsFileError, load, save
from .summary import summary
from . import chain_rule, data, mnist, projection, xor  # modules: nl.data.load_mnist, nl.xor.xor_network, …

__version__ = "0.1.0"
