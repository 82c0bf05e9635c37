"""nnlayers: neural networks from explicit layer objects on numpy.

``import nnlayers as nl`` gives the library: modules and layers, losses,
optimizers and learning-rate schedules (``nl.schedules``), the trainer and
random data augmentation for it (``nl.augment``), ``predict`` (eval mode, in batches),
gradient checking, weights files and whole-model files (``save_model``/``load_model``),
summaries and ``export_onnx`` (``nl.onnx``: the
optional ``onnx`` package is imported on first use), and ``reuse_freed_memory``
(faster training steps under glibc's malloc; never called on import).
``nl.datasets`` reads IDX/MNIST data; ``nl.plotting`` (matplotlib) and
``nl.examples`` (the derivation's worked examples) load on first use, as does
``nl.distributed`` (data-parallel training over MPI ranks; mpi4py is imported when used).
"""
import importlib

from . import augment, backend, datasets, onnx, schedules
from .allocator import reuse_freed_memory
from ._notebook import show_figures_in_notebooks as _show_figures_in_notebooks
from .gradcheck import GradcheckError, GradcheckReport, gradcheck, numerical_jacobian
from .io import load, save
from .modelfile import load_model, register_module, save_model
from .layers import (GELU, GRU, LSTM, RNN, AvgPool2D, BatchNorm1d, BatchNorm2d, Bias, Conv2D, Dropout, Elementwise,
                     Embedding, Flatten, GlobalAvgPool2D, GRUCell, LayerNorm, Linear, LSTMCell, MaxPool2D,
                     MultiHeadAttention, PositionalEmbedding, ReLU, RNNCell, Sigmoid, Softmax, Tanh, TransformerBlock,
                     col2im, im2col, sigmoid)
from .losses import EuclideanLoss, Loss, SoftmaxCrossEntropy, log_softmax, perplexity, softmax
from .containers import Add, Concatenate, Parallel, Residual, Sequential
from .errors import ShapeError, WeightsFileError
from .module import Buffer, Module, Parameter, as_float_input, as_tuple, evaluation_mode
from .onnx import export_onnx
from .optim import SGD, Adam, AdamW, Optimizer
from .summary import Summary, summary
from .training import (BestEpoch, Callback, DivergenceGuard, GradientClipping, History, Perplexity, Progress, Trainer,
                       TrainingDivergedError, accuracy, clip_grad_norm, minibatches, predict)

__version__ = "0.2.0"

__all__ = [
    "Module", "Parameter", "Buffer", "Sequential", "Residual", "Parallel", "Add", "Concatenate", "ShapeError",
    "as_float_input", "as_tuple", "evaluation_mode",
    "Linear", "Bias", "Elementwise", "Sigmoid", "Tanh", "ReLU", "Conv2D", "MaxPool2D", "AvgPool2D",
    "GlobalAvgPool2D", "BatchNorm1d", "BatchNorm2d", "Flatten", "Dropout", "sigmoid", "im2col", "col2im",
    "Embedding", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
    "LayerNorm", "GELU", "Softmax", "MultiHeadAttention", "PositionalEmbedding", "TransformerBlock",
    "Loss", "EuclideanLoss", "SoftmaxCrossEntropy", "softmax", "log_softmax", "perplexity",
    "Optimizer", "SGD", "Adam", "AdamW", "schedules", "augment",
    "Trainer", "History", "TrainingDivergedError", "accuracy", "minibatches", "Callback", "BestEpoch",
    "DivergenceGuard", "Progress", "predict", "Perplexity", "clip_grad_norm", "GradientClipping",
    "gradcheck", "numerical_jacobian", "GradcheckError", "GradcheckReport",
    "save", "load", "save_model", "load_model", "register_module", "WeightsFileError", "summary", "Summary",
    "export_onnx", "onnx",
    "backend", "datasets", "examples", "plotting", "distributed", "reuse_freed_memory",
]

_show_figures_in_notebooks()  # in a Jupyter kernel only: Figures display as pictures (see _notebook.py)

# matplotlib and the examples cost import time most users never need; nl.distributed imports mpi4py only when used
_LAZY = ("examples", "plotting", "distributed")


def __getattr__(name):
    if name in _LAZY:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'nnlayers' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))
