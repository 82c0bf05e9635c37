"""Layers, grouped by family; every one follows the ``Module`` contract."""
from .activations import Elementwise, ReLU, Sigmoid, Tanh, sigmoid
from .conv import Conv2D, col2im, im2col
from .dropout import Dropout
from .embedding import Embedding
from .linear import Bias, Linear
from .norm import BatchNorm1d, BatchNorm2d
from .pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .recurrent import GRU, LSTM, RNN
from .rnn_cells import GRUCell, LSTMCell, RNNCell
from .shape import Flatten

__all__ = ["Linear", "Bias", "Elementwise", "Sigmoid", "sigmoid", "ReLU", "Tanh", "Conv2D", "im2col", "col2im",
           "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "BatchNorm1d", "BatchNorm2d", "Flatten", "Dropout",
           "Embedding", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell"]
