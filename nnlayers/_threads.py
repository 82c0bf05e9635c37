"""Moved to ``nnlayers.kernels.threads``; this old path is the same module under its former name.

``nnlayers._threads`` *is* ``nnlayers.kernels.threads`` (not a copy), so settings made
through either name (``set_num_threads``, a test's patch of its scratch) reach the layers.
"""
import sys

from .kernels import threads as _threads

sys.modules[__name__] = _threads
