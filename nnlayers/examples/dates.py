"""Dates written in many ways → ISO dates: a sequence-to-sequence task for an encoder–decoder Transformer.

::

    "3 May 1999", "Monday, May 3, 1999", "03.05.1999", "3rd of May 1999", …   →   "1999-05-03"

* ``generate(count, rng)``: random dates (1900–2099) in random formats, and their ISO forms
* ``encode_sources``, ``encode_targets``: the strings as ids, the sources padded, the targets after ``START``
* ``EncoderBlock``, ``DecoderBlock``: pre-norm blocks that take the source's padding mask (the decoder's
  with causal self-attention and cross-attention on the encoder's output)
* ``Seq2SeqTransformer``: the encoder (Embedding + positions → encoder blocks → LayerNorm: the memory) and
  the decoder (Embedding + positions → decoder blocks → LayerNorm → Linear → Bias)
* ``train(model, sources, targets, …)``: AdamW, warm-up then cosine, ``Trainer.fit`` with two inputs
* ``translate(model, texts)``: greedy decoding, one character at a time; ``exact_match``
* ``attention_map(model, text)``: the decoder's cross-attention weights for one date (N×H×T×S)

Numeric formats keep one convention: the day comes before the month ("03.05.1999", "3/5/1999") unless
the year comes first, and then it is year, month, day as in ISO ("1999/05/03"); years are always
written in full, so no string names two dates.

The sources have different lengths, so the shorter ones are padded at the end with ``PAD``, and
every attention that reads the source (the encoder's self-attention and the decoder's
cross-attention) is given the key padding mask ``source == PAD_ID``: no query ever gives weight to
a padding position, and the model's output does not depend on how much padding there is
(``tests/examples/test_dates.py`` checks this). ``nl.TransformerBlock`` takes one input and no mask,
so the encoder uses its own small block, ``EncoderBlock``, taking (X, key_padding_mask) and written
from the same parts; the alternative, padding every source to one length and letting attention see
the padding, would make the answer depend on the pad symbols and waste the model's effort on them.
The targets are always 10 characters ("YYYY-MM-DD"), so they need no padding (and no
``ignore_index``).

The three module classes are registered with ``nl.register_module`` when this module is imported, so
``nl.save_model`` / ``nl.load_model`` rebuild them (import ``nnlayers.examples.dates``, or touch
``nl.examples``, before ``load_model``).
"""
from __future__ import annotations

import datetime

import numpy as np

from .. import datasets
from .._args import positive_int
from ..init import as_rng
from ..layers import GELU, Bias, Embedding, LayerNorm, Linear, MultiHeadAttention, PositionalEmbedding
from ..losses import SoftmaxCrossEntropy
from ..modelfile import register_module
from ..module import Module, Sequential, as_tuple, evaluation_mode
from ..optim import AdamW
from ..schedules import CosineAnnealingLR, LinearLR, SequentialLR
from ..training import Trainer

__all__ = ["FORMATS", "MONTHS", "WEEKDAYS", "PAD", "START", "SOURCE_VOCAB", "TARGET_VOCAB", "PAD_ID", "START_ID",
           "TARGET_LENGTH", "FIRST_DAY", "LAST_DAY", "format_date", "generate", "encode_sources",
           "encode_targets", "EncoderBlock", "DecoderBlock", "Seq2SeqTransformer", "sequence_accuracy", "train",
           "translate", "exact_match", "attention_map"]

#: English names, whatever the locale (the calendar module's follow it).
MONTHS = ("January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
          "November", "December")
WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")

#: The formats, as ``str.format`` templates over the fields of ``format_date``.
FORMATS = (
    "{d} {Month} {yyyy}",                  # 3 May 1999
    "{Month} {d}, {yyyy}",                 # May 3, 1999
    "{Weekday}, {Month} {d}, {yyyy}",      # Monday, May 3, 1999
    "{dd}.{mm}.{yyyy}",                    # 03.05.1999        (day first)
    "{d}/{m}/{yyyy}",                      # 3/5/1999          (day first)
    "{MONTH} {d} {yyyy}",                  # MAY 3 1999
    "{yyyy} {Month} {d}",                  # 1999 May 3
    "{dth} of {Month} {yyyy}",             # 3rd of May 1999
    "{Month} {dth}, {yyyy}",               # May 3rd, 1999
    "{Wkd} {d} {Mon} {yyyy}",              # Mon 3 May 1999
    "{dd}-{Mon}-{yyyy}",                   # 03-May-1999
    "{yyyy}{mm}{dd}",                      # 19990503          (year first: year, month, day)
    "{yyyy}/{mm}/{dd}",                    # 1999/05/03        (year first: year, month, day)
    "{Mon} {d} {yyyy}",                    # May 3 1999
    "{Weekday} {dth} {Month} {yyyy}",      # Monday 3rd May 1999
)
FIRST_DAY, LAST_DAY = datetime.date(1900, 1, 1), datetime.date(2099, 12, 31)

#: Padding (sources) and the decoder's start symbol (targets): one character each, as CharVocabulary wants.
PAD, START = "_", "^"
_SOURCE_CHARACTERS = "".join(sorted(set("0123456789 ,./-" + "".join(MONTHS + WEEKDAYS)
                                        + "".join(MONTHS).upper() + "stndrhof")))
SOURCE_VOCAB = datasets.CharVocabulary(PAD + _SOURCE_CHARACTERS)       # PAD is id 0
TARGET_VOCAB = datasets.CharVocabulary(START + "0123456789-")           # START is id 0
PAD_ID, START_ID = 0, 0
TARGET_LENGTH = 10                                                      # "YYYY-MM-DD"


# -- data ------------------------------------------------------------------------------------------

def _ordinal(day: int) -> str:
    """1st, 2nd, 3rd, 4th, …, 11th, 12th, 13th, …, 21st, 22nd, 23rd, …, 31st."""
    suffix = "th" if 11 <= day % 100 <= 13 else {1: "st", 2: "nd", 3: "rd"}.get(day % 10, "th")
    return f"{day}{suffix}"


def format_date(date: datetime.date, template: str) -> str:
    """``date`` written by ``template`` (one of ``FORMATS``, or your own over the same fields): ``{d}`` 3,
    ``{dd}`` 03, ``{dth}`` 3rd, ``{m}`` 5, ``{mm}`` 05, ``{Month}`` May, ``{MONTH}`` MAY, ``{Mon}`` the first
    three letters, ``{yyyy}`` 1999, ``{Weekday}`` Monday, ``{Wkd}`` Mon. English, whatever the locale."""
    month, weekday = MONTHS[date.month - 1], WEEKDAYS[date.weekday()]
    return template.format(d=date.day, dd=f"{date.day:02d}", dth=_ordinal(date.day), m=date.month,
                           mm=f"{date.month:02d}", Month=month, MONTH=month.upper(), Mon=month[:3],
                           yyyy=f"{date.year:04d}", Weekday=weekday, Wkd=weekday[:3])


def generate(count: int, rng=None, formats=FORMATS) -> tuple[list[str], list[str]]:
    """``count`` dates drawn uniformly from 1900-01-01 … 2099-12-31, each written in a format drawn
    uniformly from ``formats``: (sources, ISO targets), two lists of str. ``rng``: a seed or a Generator."""
    rng = as_rng(rng)
    days = rng.integers(0, (LAST_DAY - FIRST_DAY).days + 1, size=count)
    chosen = rng.integers(0, len(formats), size=count)
    dates = [FIRST_DAY + datetime.timedelta(days=int(day)) for day in days]
    return [format_date(date, formats[k]) for date, k in zip(dates, chosen)], [date.isoformat() for date in dates]


def encode_sources(texts, length: int | None = None) -> np.ndarray:
    """N texts → N×S int64 ids of ``SOURCE_VOCAB``, padded at the end with ``PAD_ID`` to ``length`` (by
    default the longest text's length)."""
    encoded = [SOURCE_VOCAB.encode(text) for text in texts]
    S = max((len(ids) for ids in encoded), default=0) if length is None else length
    ids = np.full((len(encoded), S), PAD_ID, dtype=np.int64)
    for row, each in zip(ids, encoded):
        if len(each) > S:
            raise ValueError(f"encode_sources: a text of {len(each)} characters is longer than length={S}")
        row[:len(each)] = each
    return ids


def encode_targets(isos) -> tuple[np.ndarray, np.ndarray]:
    """N ISO dates → (decoder input, targets), each N×10 int64 ids of ``TARGET_VOCAB``: the input is
    ``START`` and the first nine characters (teacher forcing: at step t the decoder reads the true
    characters before t), the targets all ten."""
    Y = np.stack([TARGET_VOCAB.encode(iso) for iso in isos]) if len(isos) else np.zeros((0, TARGET_LENGTH), np.int64)
    if Y.shape[1:] != (TARGET_LENGTH,):
        raise ValueError(f"encode_targets: ISO dates have {TARGET_LENGTH} characters, got shape {Y.shape}")
    X = np.concatenate([np.full((len(Y), 1), START_ID, dtype=np.int64), Y[:, :-1]], axis=1)
    return X, Y


# -- the blocks --------------------------------------------------------------------------------------

def _mlp(D: int, ratio: int, rng, dtype) -> Sequential:
    """Linear(D, rD) → Bias → GELU → Linear(rD, D) → Bias: each position on its own."""
    hidden = ratio * D
    return Sequential(Linear(D, hidden, rng=rng, dtype=dtype), Bias(hidden, dtype=dtype), GELU(),
                      Linear(hidden, D, rng=rng, dtype=dtype), Bias(D, dtype=dtype))


def _sizes(block, embed_dim, num_heads, mlp_ratio) -> tuple[int, int]:
    """A block's sizes checked (positive integers; the heads divide D, checked by its attention) and kept."""
    name = type(block).__name__
    block.embed_dim = positive_int(embed_dim, "embed_dim", name)
    block.num_heads = positive_int(num_heads, "num_heads", name)
    block.mlp_ratio = positive_int(mlp_ratio, "mlp_ratio", name)
    return block.embed_dim, block.num_heads


@register_module
class EncoderBlock(Module):
    """A pre-norm Transformer encoder block that takes the source's key padding mask: N×S×D → N×S×D.

    ::

        X₁ = X + MHA(LN₁(X), mask)           self-attention, not causal; padded keys get weight 0
        Z  = X₁ + MLP(LN₂(X₁))

    ``nl.TransformerBlock`` without the causal mask, but with a second input, ``key_padding_mask``
    (N×S boolean, True = padding, or None). Backward, each residual's rule (the identity path
    hands δZ on unchanged, the branch adds its own gradient)::

        δX₁ = δZ + LN₂ᵀ(MLPᵀ(δZ))
        δX  = δX₁ + LN₁ᵀ(MHAᵀ(δX₁))

    returning (δX, None) after ``forward(X, key_padding_mask)`` (the mask has no gradient), δX after
    ``forward(X)`` (as in ``MultiHeadAttention``, a mask of None counts as none given). Children
    ``norm1``, ``attention``, ``norm2``, ``mlp`` (Linear, Bias, GELU, Linear, Bias). Cache: which
    inputs forward took.
    """

    cache_names = ("_given",)

    def __init__(self, embed_dim: int, num_heads: int, *, mlp_ratio: int = 4, rng=None, dtype=np.float64):
        super().__init__()
        rng = as_rng(rng)
        _sizes(self, embed_dim, num_heads, mlp_ratio)
        self.norm1 = self.add_module("norm1", LayerNorm(embed_dim, dtype=dtype))
        self.attention = self.add_module("attention", MultiHeadAttention(embed_dim, num_heads, rng=rng, dtype=dtype))
        self.norm2 = self.add_module("norm2", LayerNorm(embed_dim, dtype=dtype))
        self.mlp = self.add_module("mlp", _mlp(embed_dim, mlp_ratio, rng, dtype))
        self._given = None

    def forward(self, X, key_padding_mask=None):
        """X₁ = X + MHA(LN₁(X), mask);  Z = X₁ + MLP(LN₂(X₁))."""
        X1 = X + self.attention.forward(self.norm1.forward(X), None, key_padding_mask)
        self._given = 1 if key_padding_mask is None else 2
        return X1 + self.mlp.forward(self.norm2.forward(X1))

    def backward(self, dZ):
        """δX₁ = δZ + LN₂ᵀ MLPᵀ δZ;  δX = δX₁ + LN₁ᵀ MHAᵀ δX₁;  returns δX, or (δX, None) given a mask."""
        given = self.forward_cache(self._given)
        dX1 = dZ + self.norm2.backward(self.mlp.backward(dZ))
        dX = dX1 + self.norm1.backward(as_tuple(self.attention.backward(dX1))[0])
        return dX if given == 1 else (dX, None)

    def settings(self) -> dict:
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "mlp_ratio": self.mlp_ratio,
                "dtype": self.dtype.name}


@register_module
class DecoderBlock(Module):
    """A pre-norm Transformer decoder block: causal self-attention, cross-attention on the encoder's
    output (the memory M), an MLP, each in a residual connection: (N×T×D, N×S×D) → N×T×D.

    ::

        X₁ = X  + SelfMHA(LN₁(X))              causal: position t reads positions ≤ t of the output so far
        X₂ = X₁ + CrossMHA(LN₂(X₁), M, mask)    queries from the decoder, keys and values from the memory
        Z  = X₂ + MLP(LN₃(X₂))

    ``forward(X, memory)`` or ``forward(X, memory, key_padding_mask)`` (N×S boolean, True = padding: the
    source's padded positions, which no query may read). Backward, one residual at a time from the
    top, each by the residual's rule δinput = δoutput + the branch's backward::

        δX₂ = δZ + LN₃ᵀ(MLPᵀ(δZ))
        (δQ₂, δM) = CrossMHAᵀ(δX₂);      δX₁ = δX₂ + LN₂ᵀ(δQ₂)
        δX  = δX₁ + LN₁ᵀ(SelfMHAᵀ(δX₁))

    returning (δX, δM) or (δX, δM, None). δM is this block's share of the memory's gradient: where
    several decoder blocks read one memory, its gradient is the sum of their δM (the memory is
    one variable used in several places; ``Seq2SeqTransformer.backward`` adds them up).

    Children ``norm1``, ``self_attention`` (causal), ``norm2``, ``cross_attention``, ``norm3``,
    ``mlp`` (Linear, Bias, GELU, Linear, Bias). Cache: which inputs forward took.
    """

    cache_names = ("_given",)

    def __init__(self, embed_dim: int, num_heads: int, *, mlp_ratio: int = 4, rng=None, dtype=np.float64):
        super().__init__()
        rng = as_rng(rng)
        D, H = _sizes(self, embed_dim, num_heads, mlp_ratio)
        self.norm1 = self.add_module("norm1", LayerNorm(D, dtype=dtype))
        self.self_attention = self.add_module("self_attention",
                                              MultiHeadAttention(D, H, causal=True, rng=rng, dtype=dtype))
        self.norm2 = self.add_module("norm2", LayerNorm(D, dtype=dtype))
        self.cross_attention = self.add_module("cross_attention", MultiHeadAttention(D, H, rng=rng, dtype=dtype))
        self.norm3 = self.add_module("norm3", LayerNorm(D, dtype=dtype))
        self.mlp = self.add_module("mlp", _mlp(D, mlp_ratio, rng, dtype))
        self._given = None

    def forward(self, X, memory, key_padding_mask=None):
        """X₁ = X + SelfMHA(LN₁(X));  X₂ = X₁ + CrossMHA(LN₂(X₁), M, mask);  Z = X₂ + MLP(LN₃(X₂))."""
        X1 = X + self.self_attention.forward(self.norm1.forward(X))
        X2 = X1 + self.cross_attention.forward(self.norm2.forward(X1), memory, key_padding_mask)
        Z = X2 + self.mlp.forward(self.norm3.forward(X2))
        self._given = 2 if key_padding_mask is None else 3
        return Z

    def backward(self, dZ):
        """δX₂ = δZ + LN₃ᵀ MLPᵀ δZ;  (δQ₂, δM) = CrossMHAᵀ δX₂, δX₁ = δX₂ + LN₂ᵀ δQ₂;
        δX = δX₁ + LN₁ᵀ SelfMHAᵀ δX₁;  returns (δX, δM[, None])."""
        given = self.forward_cache(self._given)
        dX2 = dZ + self.norm3.backward(self.mlp.backward(dZ))
        dQ2, dM = self.cross_attention.backward(dX2)[:2]
        dX1 = dX2 + self.norm2.backward(dQ2)
        dX = dX1 + self.norm1.backward(self.self_attention.backward(dX1))
        return (dX, dM) if given == 2 else (dX, dM, None)

    def settings(self) -> dict:
        return {"embed_dim": self.embed_dim, "num_heads": self.num_heads, "mlp_ratio": self.mlp_ratio,
                "dtype": self.dtype.name}


# -- the model -----------------------------------------------------------------------------------------

def _small_normal(shape, rng):
    """N(0, 0.02²), GPT-2's start for token embeddings (as ``nl.examples.text.gpt``)."""
    return rng.normal(0.0, 0.02, size=shape)


@register_module
class Seq2SeqTransformer(Module):
    """An encoder–decoder Transformer over characters: (source ids N×S, decoder input ids N×T) → scores N×T×V.

    ::

        mask = (source == pad_id)                                     N×S, True = padding
        M  = Embedding(source) + P_src[:S]                            the encoder
        M  = EncoderBlock(M, mask)      × encoder_blocks
        M  = LN(M)                                                    the memory, N×S×D
        X  = Embedding(target_in) + P_tgt[:T]                         the decoder
        X  = DecoderBlock(X, M, mask)   × decoder_blocks
        Z  = LN(X) W + b                                              scores N×T×V (V = target_size)

    Backward: the decoder from the top, each block returning (δX, δM_k); the memory's gradient is
    the sum over the blocks that read it, δM = Σₖ δM_k, which then goes down the encoder. The ids
    have no gradient: backward returns (None, None).

    Sizes: ``source_size`` and ``target_size`` (the vocabularies), ``embed`` (D), ``heads``,
    ``encoder_blocks``, ``decoder_blocks``, ``mlp_ratio``, ``source_length`` and ``target_length``
    (the longest sequences the positional embeddings hold), ``pad_id`` (the source's padding id).
    ``rng``: a seed or a Generator for every weight; ``dtype``: of the parameters.
    ``encode(source)`` and ``decode(target_in, memory, mask)`` are the two halves (``translate``
    encodes once and decodes one character at a time).
    """

    def __init__(self, source_size: int = len(SOURCE_VOCAB), target_size: int = len(TARGET_VOCAB), *,
                 embed: int = 64, heads: int = 4, encoder_blocks: int = 1, decoder_blocks: int = 1,
                 mlp_ratio: int = 4, source_length: int = 32, target_length: int = TARGET_LENGTH,
                 pad_id: int = PAD_ID, rng=None, dtype=np.float32):
        super().__init__()
        rng = as_rng(rng)
        D = embed
        self.sizes = dict(source_size=source_size, target_size=target_size, embed=embed, heads=heads,
                          encoder_blocks=encoder_blocks, decoder_blocks=decoder_blocks, mlp_ratio=mlp_ratio,
                          source_length=source_length, target_length=target_length, pad_id=pad_id)
        self.pad_id = pad_id
        self.source_embedding = self.add_module(
            "source_embedding", Embedding(source_size, D, init=_small_normal, rng=rng, dtype=dtype))
        self.source_positions = self.add_module(
            "source_positions", PositionalEmbedding(source_length, D, rng=rng, dtype=dtype))
        self.encoder = [self.add_module(f"encoder{i}", EncoderBlock(D, heads, mlp_ratio=mlp_ratio, rng=rng,
                                                                    dtype=dtype)) for i in range(encoder_blocks)]
        self.memory_norm = self.add_module("memory_norm", LayerNorm(D, dtype=dtype))
        self.target_embedding = self.add_module(
            "target_embedding", Embedding(target_size, D, init=_small_normal, rng=rng, dtype=dtype))
        self.target_positions = self.add_module(
            "target_positions", PositionalEmbedding(target_length, D, rng=rng, dtype=dtype))
        self.decoder = [self.add_module(f"decoder{i}", DecoderBlock(D, heads, mlp_ratio=mlp_ratio, rng=rng,
                                                                    dtype=dtype)) for i in range(decoder_blocks)]
        self.output_norm = self.add_module("output_norm", LayerNorm(D, dtype=dtype))
        self.output = self.add_module("output", Linear(D, target_size, rng=rng, dtype=dtype))
        self.output_bias = self.add_module("output_bias", Bias(target_size, dtype=dtype))

    def encode(self, source):
        """Source ids N×S → (the memory N×S×D, the key padding mask N×S)."""
        source = self.source_embedding.check_ids(source)
        mask = source == self.pad_id
        M = self.source_positions.forward(self.source_embedding.forward(source))
        for block in self.encoder:
            M = block.forward(M, mask)
        return self.memory_norm.forward(M), mask

    def decode(self, target_in, memory, mask):
        """Decoder input ids N×T and the memory → scores N×T×V."""
        X = self.target_positions.forward(self.target_embedding.forward(target_in))
        for block in self.decoder:
            X = block.forward(X, memory, mask)
        return self.output_bias.forward(self.output.forward(self.output_norm.forward(X)))

    def forward(self, source, target_in):
        """Scores N×T×V for the decoder input (teacher forcing): ``decode(target_in, *encode(source))``."""
        return self.decode(target_in, *self.encode(source))

    def backward(self, dZ):
        """The decoder's blocks from the top, δM = Σₖ δM_k over the blocks, then the encoder; (None, None)."""
        dX = self.output_norm.backward(self.output.backward(self.output_bias.backward(dZ)))
        dM = None
        for block in reversed(self.decoder):
            dX, dM_k, _ = block.backward(dX)
            dM = dM_k if dM is None else dM + dM_k                     # δM = Σₖ δM_k
        self.target_embedding.backward(self.target_positions.backward(dX))
        dM = self.memory_norm.backward(dM)
        for block in reversed(self.encoder):
            dM, _ = block.backward(dM)
        self.source_embedding.backward(self.source_positions.backward(dM))
        return None, None

    def settings(self) -> dict:
        return {**self.sizes, "dtype": self.dtype.name}


# -- training and use ------------------------------------------------------------------------------------

def sequence_accuracy(pred, target) -> float:
    """The fraction of rows whose every position's arg-max is right (teacher forced): scores N×T×V
    against ids N×T. A ``Trainer`` metric."""
    return float(np.mean(np.all(np.asarray(pred).argmax(axis=-1) == np.asarray(target), axis=-1)))


def train(model: Seq2SeqTransformer, sources, targets, *, epochs: int = 5, batch_size: int = 64,
          lr: float = 3e-3, warmup: int = 100, weight_decay: float = 0.01, clip: float = 1.0, rng=None,
          validation=None, progress: bool = True):
    """Train on (``sources``, ISO ``targets``), lists of str: AdamW, ``warmup`` steps rising linearly from
    lr/100, then a cosine decay to 0 over the rest, gradients clipped to norm ``clip``; the softmax
    cross-entropy over the ten characters. ``validation``: (sources, targets) reported each epoch.
    Returns ``(trainer, history)``. With the defaults, 16,000 dates (``generate(16000, rng)``, 1,250 steps)
    get 99.5–99.9 % of new dates exactly right (three seeds), in under a minute on one core.
    """
    def pairs(texts, isos):
        target_in, Y = encode_targets(isos)
        return (encode_sources(texts), target_in), Y           # padded to the longest source

    X, Y = pairs(sources, targets)
    steps = epochs * -(-len(Y) // batch_size)
    optimizer = AdamW(model.parameters(), lr=lr, weight_decay=weight_decay)
    warm = min(warmup, steps - 1)
    decay = CosineAnnealingLR(optimizer, T_max=max(steps - warm, 1))
    schedule = decay if warm < 1 else SequentialLR(optimizer, [LinearLR(optimizer, 0.01, 1.0, warm), decay],
                                                   milestones=[warm])
    trainer = Trainer(model, SoftmaxCrossEntropy(), optimizer, metric=sequence_accuracy, schedule=schedule,
                      schedule_every="batch", clip_grad_norm=clip or None)
    history = trainer.fit(X, Y, epochs=epochs, batch_size=batch_size, rng=rng, progress=progress,
                          validation_data=None if validation is None else pairs(*validation))
    return trainer, history


def translate(model: Seq2SeqTransformer, texts, batch_size: int = 1024) -> list[str]:
    """Greedy decoding: each text's ISO date, one character at a time, each the arg-max of the scores
    given the characters chosen before it (``START`` is never chosen). The source is encoded once per
    batch; the decoder reads the prefix so far at each step. In eval mode; caches cleared after."""
    texts = list(texts)
    decoded = []
    with evaluation_mode(model):
        for start in range(0, len(texts), batch_size):
            memory, mask = model.encode(encode_sources(texts[start:start + batch_size]))
            ids = np.full((len(memory), TARGET_LENGTH + 1), START_ID, dtype=np.int64)
            for t in range(TARGET_LENGTH):
                scores = np.array(model.decode(ids[:, :t + 1], memory, mask)[:, t], dtype=np.float64)
                scores[:, START_ID] = -np.inf
                ids[:, t + 1] = scores.argmax(axis=-1)
            decoded += [TARGET_VOCAB.decode(row[1:]) for row in ids]
    model.clear_cache()
    return decoded


def exact_match(predicted, expected) -> float:
    """The fraction of predictions equal to their expected strings."""
    predicted, expected = list(predicted), list(expected)
    if len(predicted) != len(expected):
        raise ValueError(f"exact_match: {len(predicted)} predictions but {len(expected)} expected strings")
    return float(np.mean([p == e for p, e in zip(predicted, expected)])) if expected else float("nan")


def attention_map(model: Seq2SeqTransformer, text: str, *, block: int = -1) -> np.ndarray:
    """The cross-attention weights of decoder block ``block`` (the last by default) for one source text,
    as the model decodes it (greedily): 1×H×10×S, row t the weights with which output character t reads
    the S source characters (each row sums to 1). ``translate(model, [text])`` gives the characters."""
    iso = translate(model, [text])[0]
    target_in, _ = encode_targets([iso])
    with evaluation_mode(model):
        model.forward(encode_sources([text]), target_in)
        weights = model.decoder[block].cross_attention.attention_weights
    model.clear_cache()
    return weights
