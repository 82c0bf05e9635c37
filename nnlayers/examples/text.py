"""Character language models: the corpora as training pairs, the reference recurrent models, sampling.

A character model reads text one character at a time and gives, at every
position, scores for the next character: ids N×T → scores N×T×V, trained with
the softmax cross-entropy against the same text shifted by one (``nl.datasets.text_windows``).
The loss in nats per character is what the chapter and ``scripts/train_text.py`` report.

* ``load_corpus("austen" | "names")`` the training and validation pairs and the vocabulary
* ``char_model(kind, V)``             Embedding → RNN/LSTM/GRU → Linear → Bias
* ``gpt(V, …)``                       a small GPT: Embedding + positions → Transformer blocks → LayerNorm → Linear
* ``sample(model, vocab, …)``         text drawn from a trained model, one character at a time
* ``training_rounds(M, N, steps, rng)`` the order the windows are trained in, in rounds of ``steps`` batches
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import datasets
from .._args import non_negative_int
from ..init import as_rng
from ..layers import (GRU, LSTM, RNN, Bias, Embedding, LayerNorm, Linear, PositionalEmbedding,
                      TransformerBlock)
from ..layers.recurrent import Recurrent
from ..losses import softmax
from ..module import Sequential, evaluation_mode

__all__ = ["Corpus", "load_corpus", "char_model", "gpt", "sample", "training_rounds", "RECURRENT", "MODELS",
           "CORPORA", "NAME_MARKER"]

RECURRENT = {"lstm": LSTM, "gru": GRU, "rnn": RNN}
MODELS = ("lstm", "gru", "rnn", "gpt")
CORPORA = ("austen", "names")
#: Names are read between two of these: the model starts a name after it and ends one by predicting it.
NAME_MARKER = "\n"


@dataclass
class Corpus:
    """A corpus as training pairs: X ids and Y next-character ids (M×T, int64), the validation pairs, the
    vocabulary, and the text a sample starts from (``prime``: Austen's first words; a name's marker)."""

    name: str
    X: np.ndarray
    Y: np.ndarray
    X_val: np.ndarray
    Y_val: np.ndarray
    vocab: datasets.CharVocabulary
    prime: str


def load_corpus(name: str, length: int = 64) -> Corpus:
    """``"austen"``: the novels' train and validation splits cut into windows of ``length`` characters
    (non-overlapping; ``fit`` shuffles them), the vocabulary all 81 symbols of the six novels.
    ``"names"``: one name per row between markers, the targets after the end ignored
    (``datasets.IGNORE_INDEX``), ``length`` unused (rows are as long as the longest name plus one)."""
    if name == "austen":
        vocab = datasets.CharVocabulary.from_text(datasets.load_austen("all"))
        X, Y = datasets.text_windows(vocab.encode(datasets.load_austen("train")), length)
        X_val, Y_val = datasets.text_windows(vocab.encode(datasets.load_austen("validation")), length)
        return Corpus(name, X, Y, X_val, Y_val, vocab, prime="It is a truth universally acknowledged")
    if name == "names":
        vocab = datasets.CharVocabulary.from_text("".join(datasets.load_names()), reserved=NAME_MARKER)
        longest = max(len(each) for each in datasets.load_names()) + 1
        X, Y = datasets.padded_names(datasets.load_names("train"), vocab, marker=NAME_MARKER, length=longest)
        X_val, Y_val = datasets.padded_names(datasets.load_names("validation"), vocab, marker=NAME_MARKER,
                                             length=longest)
        return Corpus(name, X, Y, X_val, Y_val, vocab, prime=NAME_MARKER)
    raise ValueError(f"load_corpus: name must be one of {CORPORA}, got {name!r}")


def char_model(kind: str, vocab_size: int, *, embed: int = 64, hidden: int = 256, rng=None,
               dtype=np.float32) -> Sequential:
    """Embedding(V, embed) → RNN/LSTM/GRU(embed, hidden) → Linear(hidden, V) → Bias(V): ids N×T → scores
    N×T×V. ``kind``: "lstm", "gru" or "rnn" (tanh)."""
    if kind not in RECURRENT:
        raise ValueError(f"char_model: kind must be one of {sorted(RECURRENT)}, got {kind!r}")
    rng = as_rng(rng)
    return Sequential(Embedding(vocab_size, embed, rng=rng, dtype=dtype),
                      RECURRENT[kind](embed, hidden, rng=rng, dtype=dtype),
                      Linear(hidden, vocab_size, rng=rng, dtype=dtype),
                      Bias(vocab_size, dtype=dtype))


def gpt(vocab_size: int, *, context: int = 128, embed: int = 128, heads: int = 4, blocks: int = 4,
        dropout: float = 0.0, rng=None, dtype=np.float32) -> Sequential:
    """A small GPT over characters: ids N×T (T ≤ ``context``) → scores N×T×V.

    Embedding(V, D) → PositionalEmbedding(context, D) (learned) → ``blocks`` × TransformerBlock(D,
    ``heads``, causal) → LayerNorm(D) → Linear(D, V) → Bias(V), D = ``embed``. The token
    embedding starts from N(0, 0.02²), as GPT-2's (a wide N(0, 1) start would drown the positions).
    """
    rng = as_rng(rng)
    layers = [Embedding(vocab_size, embed, init=lambda shape, rng: rng.normal(0.0, 0.02, size=shape), rng=rng,
                        dtype=dtype),
              PositionalEmbedding(context, embed, rng=rng, dtype=dtype)]
    layers += [TransformerBlock(embed, heads, causal=True, dropout=dropout, rng=rng, dtype=dtype)
               for _ in range(blocks)]
    layers += [LayerNorm(embed, dtype=dtype), Linear(embed, vocab_size, rng=rng, dtype=dtype),
               Bias(vocab_size, dtype=dtype)]
    return Sequential(*layers)


def sample(model, vocab: datasets.CharVocabulary, prime: str, length: int, *, temperature: float = 1.0,
           stop: str | None = None, rng=None) -> str:
    """``prime`` followed by ``length`` characters drawn from ``model``, one at a time.

    Each character is drawn from softmax(scores / ``temperature``) of the last position: below 1
    the likelier characters gain, above 1 the draw flattens. A recurrent model reads each new
    character alone, carrying its state from the previous one (its recurrent layers are made
    ``stateful`` for the draw and put back after); any other model (a Transformer) reads the
    whole text so far at each step, or its last ``max_length`` characters where a
    ``PositionalEmbedding`` limits the context. ``stop``: a character that ends the draw early (a name's marker).
    The model runs in eval mode; each module's mode and every recurrent layer's ``stateful``
    setting and state are restored after.
    """
    if not isinstance(temperature, (int, float)) or not temperature > 0:
        raise ValueError(f"sample: temperature must be a positive number, got {temperature!r}")
    if not isinstance(prime, str):
        raise TypeError(f"sample: prime must be a str, got {type(prime).__name__}")
    if not prime:
        raise ValueError("sample: prime is empty; it must hold at least one character (the text the draw "
                         "continues, such as a name's marker)")
    length = non_negative_int(length, "length", "sample")
    rng = as_rng(rng)
    recurrent = [module for module in model.modules() if isinstance(module, Recurrent)]
    context = min((module.max_length for module in model.modules() if isinstance(module, PositionalEmbedding)),
                  default=None)
    saved = [(layer, layer.stateful, layer.state) for layer in recurrent]
    ids = list(vocab.encode(prime))
    drawn = []
    try:
        with evaluation_mode(model):
            for layer in recurrent:
                layer.stateful, layer.state = True, None
            feed = ids[-context:] if context and not recurrent else ids
            for _ in range(length):
                scores = model.forward(np.array([feed]))[0, -1]
                probabilities = softmax(np.asarray(scores, dtype=np.float64) / temperature)
                next_id = int(rng.choice(len(probabilities), p=probabilities))
                ids.append(next_id)
                drawn.append(next_id)
                if stop is not None and vocab.decode([next_id]) == stop:
                    break
                feed = [next_id] if recurrent else ids[-context:] if context else ids
    finally:
        for layer, stateful, state in saved:
            layer.stateful, layer.state = stateful, state
        model.clear_cache()
    return prime + vocab.decode(drawn)


def training_rounds(count: int, batch_size: int, steps: int, rng):
    """The rows to train on, round after round, without end: each a 1-d index array of up to
    ``steps`` × ``batch_size`` of the ``count`` training windows, with its epoch (from 1).

    Every epoch is one fresh permutation of all windows (from ``rng``), cut into consecutive
    rounds; the last round of an epoch holds what is left of it. Trained in that order
    (``fit(X[rows], Y[rows], epochs=1, batch_size=batch_size, shuffle=False)``), the batches are
    consecutive slices of the permutation, so two frameworks that use this with the same seed
    see the same batches in the same order (``scripts/train_text.py`` and
    ``benchmarks/text_reference.py``).
    """
    rng, per_round, epoch = as_rng(rng), steps * batch_size, 0
    while True:
        epoch += 1
        order = rng.permutation(count)
        for start in range(0, count, per_round):
            yield epoch, order[start:start + per_round]
