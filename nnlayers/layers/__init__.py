"""Layers, grouped by family; every one follows the ``Module`` contract."""
from .activations import Sigmoid, sigmoid
from .linear import Bias, Linear

__all__ = ["Linear", "Bias", "Sigmoid", "sigmoid"]
