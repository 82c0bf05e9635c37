"""Data sets: IDX files (the MNIST format), MNIST-format folders and the shipped sample of real digits."""
from .idx import IDX_TYPES, IDXFormatError, load_idx, save_idx
from .mnist import FASHION_MNIST_CLASSES, class_names, load_mnist, load_mnist_sample, mnist_sample_dir

__all__ = ["IDXFormatError", "load_idx", "save_idx", "IDX_TYPES", "load_mnist", "load_mnist_sample",
           "mnist_sample_dir", "FASHION_MNIST_CLASSES", "class_names"]
