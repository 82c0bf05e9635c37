"""Layers, grouped by family; every one follows the ``Module`` contract."""
from .activations import GELU, Elementwise, ReLU, Sigmoid, Softmax, Tanh, sigmoid
from .attention import MultiHeadAttention
from .conv import Conv2D, col2im, im2col
from .dropout import Dropout
from .embedding import Embedding
from .linear import Bias, Linear
from .norm import BatchNorm1d, BatchNorm2d, LayerNorm
from .pooling import AvgPool2D, GlobalAvgPool2D, MaxPool2D
from .positional import PositionalEmbedding
from .recurrent import GRU, LSTM, RNN
from .rnn_cells import GRUCell, LSTMCell, RNNCell
from .shape import Flatten
from .transformer import TransformerBlock

__all__ = ["Linear", "Bias", "Elementwise", "Sigmoid", "sigmoid", "ReLU", "Tanh", "Conv2D", "im2col", "col2im",
           "MaxPool2D", "AvgPool2D", "GlobalAvgPool2D", "BatchNorm1d", "BatchNorm2d", "Flatten", "Dropout",
           "Embedding", "RNN", "LSTM", "GRU", "RNNCell", "LSTMCell", "GRUCell",
           "LayerNorm", "GELU", "Softmax", "MultiHeadAttention", "PositionalEmbedding",
           "TransformerBlock"]
