"""nnlayers: neural networks from explicit layer objects on numpy."""
from . import chain_rule, data, mnist, projection, xor  # modules: nl.data.load_mnist, nl.xor.xor_network, …
from .gradcheck import GradcheckError, GradcheckReport, gradcheck, numerical_jacobian
from .io import WeightsFileError, load, save
from .layers import (AvgPool2D, Bias, Conv2D, Dropout, Flatten, Linear, MaxPool2D, ReLU, Sigmoid, Tanh,
                     col2im, im2col, sigmoid)
from .losses import EuclideanLoss, Loss, SoftmaxCrossEntropy, log_softmax, softmax
from .module import Module, Parameter, Sequential, ShapeError, evaluation_mode
from .optim import SGD, Adam, Optimizer
from .summary import summary
from .training import History, Trainer, TrainingDivergedError, accuracy, minibatches

__version__ = "0.1.0"

__all__ = [
    "Module", "Parameter", "Sequential", "ShapeError", "evaluation_mode",
    "Linear", "Bias", "Sigmoid", "Tanh", "ReLU", "Conv2D", "MaxPool2D", "AvgPool2D", "Flatten", "Dropout",
    "sigmoid", "im2col", "col2im",
    "Loss", "EuclideanLoss", "SoftmaxCrossEntropy", "softmax", "log_softmax",
    "Optimizer", "SGD", "Adam",
    "Trainer", "History", "TrainingDivergedError", "accuracy", "minibatches",
    "gradcheck", "numerical_jacobian", "GradcheckError", "GradcheckReport",
    "save", "load", "WeightsFileError", "summary",
    "chain_rule", "data", "mnist", "projection", "xor",
]
