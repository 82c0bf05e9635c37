"""Data sets: IDX files (the MNIST format), MNIST-format folders, the shipped sample of real digits, and the
shipped text (Jane Austen's novels, first names) with a character vocabulary and sequence batches."""
from .idx import IDX_TYPES, IDXFormatError, load_idx, save_idx
from .mnist import FASHION_MNIST_CLASSES, class_names, load_mnist, load_mnist_sample, mnist_sample_dir
from .text import (AUSTEN_BOOK_SEPARATOR, AUSTEN_BOOKS, IGNORE_INDEX, CharVocabulary, austen_split_bounds,
                   load_austen, load_names, padded_names, text_windows)

__all__ = ["IDXFormatError", "load_idx", "save_idx", "IDX_TYPES", "load_mnist", "load_mnist_sample",
           "mnist_sample_dir", "FASHION_MNIST_CLASSES", "class_names", "load_austen", "load_names", "CharVocabulary",
           "text_windows", "padded_names", "AUSTEN_BOOKS", "AUSTEN_BOOK_SEPARATOR", "austen_split_bounds",
           "IGNORE_INDEX"]
