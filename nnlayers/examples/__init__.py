"""The derivation's worked examples, built on the library: each is importable and has a script.

* ``xor``        the 2-8-1 XOR network of the derivation (``scripts/train_xor.py``)
* ``chain_rule`` the chain rule as a Jacobian-vector product (``scripts/chain_rule.py``)
* ``projection`` zeros and ones in two numbers: the SVD projection (``scripts/mnist_svd.py``)
* ``mnist``      splits, augmentation and the reference classifiers (``scripts/train_mnist.py``)
* ``text``       character language models: corpora, the recurrent models, sampling (``scripts/train_text.py``)
* ``dates``      dates in many formats → ISO dates: an encoder–decoder Transformer with cross-attention

Import one with ``from nnlayers.examples import xor``, or use ``nl.examples.xor``.
"""
from . import chain_rule, dates, mnist, projection, text, xor

__all__ = ["chain_rule", "dates", "mnist", "projection", "text", "xor"]
