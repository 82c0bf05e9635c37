"""nnlayers: neural networks from explicit layer objects on numpy."""
from .gradcheck import GradcheckError, GradcheckReport, gradcheck, numerical_jacobian
from .layers import Bias, Linear, Sigmoid, sigmoid
from .losses import EuclideanLoss, Loss
from .module import Module, Parameter, Sequential, ShapeError
from .optim import SGD, Adam, Optimizer
from .training import History, Trainer, TrainingDivergedError, accuracy, minibatches

__version__ = "0.1.0"
