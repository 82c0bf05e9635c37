"""Text shipped with nnlayers, a character vocabulary, and the batches a character model trains on.

::

    load_austen(split)          Jane Austen's six novels as one str: "train", "validation", "test" or "all"
    load_names(split)           5,163 US first names (1990 Census), lowercase, as a list of str
    CharVocabulary              characters ↔ integer ids: encode(text) → int64 ids, decode(ids) → str
    text_windows(ids, T)        (X, Y): M×T windows of an id stream and the same windows shifted by one
    padded_names(names, vocab)  (X, Y): N×T names between markers, padded targets = ignore_index

Both corpora are package data (``nnlayers/datasets/corpora/``), read with
``importlib.resources``, so they work from any install and without a network.
Provenance, licences, SHA-256 sums and the rebuild command are in
``data/austen/README.rst`` and ``data/names/README.rst`` of the source tree;
``scripts/build_text_data.py`` builds both files.
"""
from __future__ import annotations

import functools
import gzip
import lzma
import zlib
from importlib import resources

import numpy as np

from .._args import non_negative_int, positive_int
from ..errors import ShapeError

__all__ = ["load_austen", "load_names", "CharVocabulary", "text_windows", "padded_names", "AUSTEN_BOOKS",
           "AUSTEN_BOOK_SEPARATOR", "austen_split_bounds", "IGNORE_INDEX"]

#: The six novels in the order of the text (the order of R's janeaustenr::austen_books()).
AUSTEN_BOOKS = ("Sense & Sensibility", "Pride & Prejudice", "Mansfield Park", "Emma", "Northanger Abbey",
                "Persuasion")
#: What stands between two novels: eight newlines (no book holds a run of more than six), so
#: ``load_austen("all").split(AUSTEN_BOOK_SEPARATOR)`` gives the six books.
AUSTEN_BOOK_SEPARATOR = "\n" * 8
#: The target id that ``padded_names`` writes at padding positions, as PyTorch's default ``ignore_index``.
IGNORE_INDEX = -100

_AUSTEN_SPLITS = ("train", "validation", "test", "all")
_NAMES_SPLITS = (None, "train", "validation")


def _corpus(name: str) -> bytes:
    """The bytes of a shipped file, wherever nnlayers is installed."""
    return (resources.files(__package__) / "corpora" / name).read_bytes()


@functools.lru_cache(maxsize=1)
def _austen() -> str:
    return lzma.decompress(_corpus("austen.txt.xz")).decode("utf-8")


@functools.lru_cache(maxsize=1)
def _names() -> tuple:
    return tuple(gzip.decompress(_corpus("names.txt.gz")).decode("ascii").split("\n")[:-1])


def _choice(value, choices: tuple, name: str, owner: str):
    """``value`` if it is one of ``choices``; else ValueError for a string, TypeError for anything else,
    each naming the choices."""
    if (isinstance(value, str) or value is None) and value in choices:
        return value
    listed = ", ".join(repr(choice) for choice in choices)
    error = ValueError if isinstance(value, str) else TypeError
    raise error(f"{owner}: {name} must be one of {listed}, got {value!r}")


def austen_split_bounds(total: int) -> tuple[int, int]:
    """The character positions (a, b) that split a text of ``total`` characters 90 / 5 / 5 %:
    train = text[:a], validation = text[a:b], test = text[b:], with a = ⌊0.90·total⌋ and
    b = ⌊0.95·total⌋ (computed in integers: ``total * 90 // 100``, ``total * 95 // 100``)."""
    return total * 90 // 100, total * 95 // 100


def load_austen(split: str = "train") -> str:
    """Jane Austen's six novels, or a fixed contiguous part of them, as one ``str``.

    The text is the novels of the R package janeaustenr 1.0.0 (Project
    Gutenberg's editions), each novel's lines joined with ``"\\n"``, the novels
    in the order of ``AUSTEN_BOOKS`` (*Sense & Sensibility* first: the text
    starts with ``"SENSE AND SENSIBILITY"``) and separated by
    ``AUSTEN_BOOK_SEPARATOR`` (eight newlines). ``"all"`` is 4,025,062
    characters of 81 distinct symbols (newline, space, punctuation, digits,
    letters and one ``£``).

    The split is fixed and contiguous, in this order, by
    :func:`austen_split_bounds` (a = ⌊0.90·N⌋, b = ⌊0.95·N⌋)::

        "train"        text[:3622555]          3,622,555 characters (90 %)
        "validation"   text[3622555:3823808]     201,253 characters ( 5 %)
        "test"         text[3823808:]            201,254 characters ( 5 %)

    so ``train + validation + test == load_austen("all")``. The last two lie in
    *Persuasion*, the last novel. Boundaries fall inside words: they are
    character positions, not sentence ends. Any other ``split`` raises
    ValueError (TypeError for a non-string). The decompressed text is kept
    after the first call (about 4 MB), so later calls are fast.
    """
    split = _choice(split, _AUSTEN_SPLITS, "split", "load_austen")
    text = _austen()
    a, b = austen_split_bounds(len(text))
    start, stop = {"train": (0, a), "validation": (a, b), "test": (b, None), "all": (0, None)}[split]
    return text[start:stop]


def _in_names_validation(name: str) -> bool:
    """The names split's rule: a name is in "validation" when the CRC-32 of its ASCII bytes is 0 mod 10."""
    return zlib.crc32(name.encode("ascii")) % 10 == 0


def load_names(split: str | None = None) -> list[str]:
    """First names from the 1990 US Census lists, lowercase, as a sorted ``list`` of ``str``.

    ``split=None`` gives all 5,163: the union of the male (1,219) and female
    (4,275) first-name lists of the PyPI package ``names`` 0.3.0 (331 names are
    on both), lowercased, each once, sorted; only the letters a–z occur, and
    lengths run from 2 to 11. ``"train"`` and ``"validation"`` are a fixed
    split of them, about 90 % / 10 %: a name is in ``"validation"`` when
    ``zlib.crc32(name.encode()) % 10 == 0`` (a rule that needs no random
    generator, so it is the same in every numpy version), giving 4,642 train
    and 521 validation names, each list sorted. Shuffle before batching. Any
    other ``split`` raises ValueError (TypeError for a non-string). A new list
    is returned on each call.
    """
    split = _choice(split, _NAMES_SPLITS, "split", "load_names")
    names = _names()
    if split is None:
        return list(names)
    return [name for name in names if _in_names_validation(name) == (split == "validation")]


class CharVocabulary:
    """Characters ↔ integer ids: id ``i`` stands for ``characters[i]``.

    ``CharVocabulary("\\nabc")`` takes the alphabet in id order (a ``str``, or a
    list of one-character strings, no repeats);
    ``CharVocabulary.from_text(text, reserved="\\n")`` takes ``text``'s
    distinct characters sorted by code point, after the ``reserved`` ones,
    which get the first ids (an end-of-name marker, a padding symbol)::

        vocab = CharVocabulary.from_text("".join(load_names()), reserved="\\n")
        len(vocab)                          # 27: "\\n" is id 0, "a".."z" are 1..26
        vocab.encode("anna")                # array([ 1, 14, 14,  1]), int64
        vocab.decode([1, 14, 14, 1])        # "anna"

    ``encode`` returns int64 ids (signed, as losses' ``ignore_index`` needs);
    ``decode`` takes any integer array, int32 and int64 alike. A character
    that is not in the vocabulary raises ValueError naming it and its position.
    ``to_dict()`` / ``CharVocabulary.from_dict(d)`` round-trip through JSON,
    so a script can save the vocabulary beside a model's weights; the
    constructor also takes ``list(vocab.characters)`` back.
    """

    def __init__(self, characters):
        if isinstance(characters, str):
            characters = list(characters)
        elif not isinstance(characters, (list, tuple)):
            raise TypeError(f"CharVocabulary: characters must be a str or a list of one-character strings, "
                            f"got {type(characters).__name__}")
        first_at = {}
        for position, character in enumerate(characters):
            if not (isinstance(character, str) and len(character) == 1):
                raise TypeError(f"CharVocabulary: characters[{position}] must be one character, got {character!r}")
            if character in first_at:
                raise ValueError(f"CharVocabulary: {character!r} is at positions {first_at[character]} and "
                                 f"{position}; each character must appear once")
            first_at[character] = position
        if not characters:
            raise ValueError("CharVocabulary: characters is empty; a vocabulary needs at least one character")
        self._characters = "".join(characters)
        # id → code point (for decode) and code point → id, -1 where no id (for encode).
        self._code_points = np.array([ord(character) for character in characters], dtype="<u4")
        self._ids = np.full(int(self._code_points.max()) + 1, -1, dtype=np.int32)
        self._ids[self._code_points] = np.arange(len(characters), dtype=np.int32)

    @classmethod
    def from_text(cls, text: str, reserved: str = "") -> "CharVocabulary":
        """The vocabulary of ``text``: ``reserved``'s characters first (ids 0, 1, …, in the order
        given), then every other character of ``text``, sorted by code point."""
        if not isinstance(text, str) or not isinstance(reserved, str):
            bad, value = ("text", text) if not isinstance(text, str) else ("reserved", reserved)
            raise TypeError(f"CharVocabulary.from_text: {bad} must be a str, got {type(value).__name__}")
        return cls(reserved + "".join(sorted(set(text) - set(reserved))))

    @classmethod
    def from_dict(cls, state: dict) -> "CharVocabulary":
        """The vocabulary that ``to_dict()`` described (e.g. read back from JSON)."""
        if not isinstance(state, dict) or "characters" not in state:
            got = f"keys {sorted(state)}" if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"CharVocabulary.from_dict: expected a dict with key 'characters', got {got}")
        return cls(state["characters"])

    def to_dict(self) -> dict:
        """``{"characters": "…"}``: the alphabet in id order, plain data for ``json.dump``."""
        return {"characters": self._characters}

    @property
    def characters(self) -> str:
        """The alphabet in id order: ``characters[i]`` is the character of id ``i``."""
        return self._characters

    def __len__(self) -> int:
        return len(self._characters)

    def __contains__(self, character) -> bool:
        return isinstance(character, str) and len(character) == 1 and character in self._characters

    def __eq__(self, other) -> bool:
        return isinstance(other, CharVocabulary) and other._characters == self._characters

    def __hash__(self) -> int:
        return hash(self._characters)

    def __repr__(self) -> str:
        return f"CharVocabulary({self._characters!r})"

    def index(self, character: str) -> int:
        """The id of one character (ValueError when it is not in the vocabulary)."""
        if character not in self:
            raise ValueError(f"CharVocabulary.index: {character!r} is not in the vocabulary")
        return self._characters.index(character)

    def encode(self, text: str) -> np.ndarray:
        """The ids of ``text``'s characters: int64 array of shape ``(len(text),)``.

        ValueError naming the first character that is not in the vocabulary and its position.
        """
        if not isinstance(text, str):
            raise TypeError(f"CharVocabulary.encode: text must be a str, got {type(text).__name__}")
        code_points = np.frombuffer(text.encode("utf-32-le", "surrogatepass"), dtype="<u4")
        inside = code_points < self._ids.size
        ids = np.where(inside, self._ids[np.where(inside, code_points, 0)], -1)
        unknown = np.flatnonzero(ids < 0)
        if unknown.size:
            position = int(unknown[0])
            raise ValueError(f"CharVocabulary.encode: character {text[position]!r} at position {position} "
                             f"is not in the vocabulary of {len(self)} characters")
        return ids.astype(np.int64)

    def decode(self, ids) -> str:
        """The text of a 1-D sequence of ids (any integer dtype; a list works too).

        TypeError for non-integer ids, nl.ShapeError unless 1-D, ValueError naming
        the first id outside 0 … len(vocab) − 1 and its position.
        """
        ids = np.asarray(ids)
        if ids.ndim != 1:
            raise ShapeError(f"CharVocabulary.decode: expected a 1-D sequence of ids, got shape {ids.shape}")
        if ids.size == 0:
            return ""
        if ids.dtype.kind not in "iu":
            raise TypeError(f"CharVocabulary.decode: ids must be integers, got {ids.dtype}")
        outside = np.flatnonzero((ids < 0) | (ids >= len(self)))
        if outside.size:
            position = int(outside[0])
            raise ValueError(f"CharVocabulary.decode: id {ids[position]} at position {position} is outside "
                             f"0 … {len(self) - 1}")
        return self._code_points[ids].tobytes().decode("utf-32-le", "surrogatepass")


def _integer_stream(ids, owner: str) -> np.ndarray:
    ids = np.asarray(ids)
    if ids.ndim != 1:
        raise ShapeError(f"{owner}: expected a 1-D stream of ids, got shape {ids.shape}")
    if ids.dtype.kind not in "iu":
        raise TypeError(f"{owner}: ids must be integers, got {ids.dtype}")
    return ids


def text_windows(ids, length: int, *, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Next-character training pairs from one long stream of ids: ``(X, Y)``, each M×T.

    With T = ``length`` and s = ``offset``, window m is::

        X[m] = ids[s + m·T     : s + (m+1)·T]
        Y[m] = ids[s + m·T + 1 : s + (m+1)·T + 1]      (Y[m, t] is the character after X[m, t])

    for m = 0 … M − 1, M = ⌊(len(ids) − s − 1) / T⌋: windows that follow one
    another without overlap or gap; the last < T + 1 ids (before the
    final target) are left out. Both keep ``ids``' dtype (int32 or int64) and
    are new arrays. ``Trainer.fit(X, Y, batch_size=N)`` then shuffles whole
    windows into N×T batches. A different ``offset`` (0 … T − 1) each epoch
    moves the window boundaries. A stream with fewer than T + 1 ids after
    ``offset`` raises ValueError naming both numbers.
    """
    ids = _integer_stream(ids, "text_windows")
    length = positive_int(length, "length", "text_windows")
    offset = non_negative_int(offset, "offset", "text_windows")
    available = ids.size - offset
    if available < length + 1:
        raise ValueError(f"text_windows: {max(available, 0)} ids from offset {offset} (of {ids.size}) are fewer "
                         f"than length + 1 = {length + 1}, the least that makes one window and its targets")
    count = (available - 1) // length
    X = ids[offset:offset + count * length].reshape(count, length).copy()
    Y = ids[offset + 1:offset + 1 + count * length].reshape(count, length).copy()
    return X, Y


def padded_names(names, vocab: CharVocabulary, *, marker: str = "\n", length: int | None = None,
                 ignore_index: int = IGNORE_INDEX) -> tuple[np.ndarray, np.ndarray]:
    """Next-character training pairs for a list of short words: ``(X, Y)``, each int64 N×T.

    Each name is read between two markers (m = ``vocab.index(marker)``); for
    "anna" with T = 6::

        X[i] = [m, a, n, n, a, m]            the marker, the name, then the marker again as padding
        Y[i] = [a, n, n, a, m, ignore_index] the name, the marker (end of name), then ignore_index

    so a model learns to start a name from the marker and to end it by
    predicting the marker. T = ``length``, or one more than the longest name
    when None. X holds only valid ids (its padding is the marker, whose targets
    are ignored); Y holds ids and ``ignore_index`` (default -100, PyTorch's),
    which must not be a valid id: pass the same value to the loss. Errors: a
    name longer than T − 1, a name holding the marker or a character not in
    ``vocab``, each named with its position in ``names``.
    """
    if not isinstance(names, (list, tuple)):
        raise TypeError(f"padded_names: names must be a list of str, got {type(names).__name__}")
    if not isinstance(vocab, CharVocabulary):
        raise TypeError(f"padded_names: vocab must be a CharVocabulary, got {type(vocab).__name__}")
    if marker not in vocab:
        raise ValueError(f"padded_names: marker {marker!r} is not in the vocabulary {vocab!r}")
    if isinstance(ignore_index, bool) or not isinstance(ignore_index, (int, np.integer)):
        raise TypeError(f"padded_names: ignore_index must be an integer, got {ignore_index!r}")
    if 0 <= ignore_index < len(vocab):
        raise ValueError(f"padded_names: ignore_index {ignore_index} is a valid id (0 … {len(vocab) - 1}); "
                         f"use one outside, such as -100")
    for position, name in enumerate(names):
        if not isinstance(name, str):
            raise TypeError(f"padded_names: names[{position}] must be a str, got {type(name).__name__}")
        if marker in name:
            raise ValueError(f"padded_names: names[{position}] = {name!r} holds the marker {marker!r}")
    longest = max((len(name) for name in names), default=0)
    if length is None:
        length = longest + 1
    length = positive_int(length, "length", "padded_names")
    if longest + 1 > length:
        position = next(i for i, name in enumerate(names) if len(name) == longest)
        raise ValueError(f"padded_names: names[{position}] = {names[position]!r} has {longest} characters; "
                         f"length {length} holds at most {length - 1} and the end marker")
    start = vocab.index(marker)
    X = np.full((len(names), length), start, dtype=np.int64)
    Y = np.full((len(names), length), ignore_index, dtype=np.int64)
    for i, name in enumerate(names):
        try:
            ids = vocab.encode(name)
        except ValueError as error:
            raise ValueError(f"padded_names: names[{i}] = {name!r}: {error}") from None
        X[i, 1:len(ids) + 1] = ids
        Y[i, :len(ids)] = ids
        Y[i, len(ids)] = start
    return X, Y
