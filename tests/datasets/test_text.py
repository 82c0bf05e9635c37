"""The shipped text (Jane Austen's novels, first names), the character vocabulary and the sequence batches.

Only the shipped files are read: no network. The SHA-256 sums are those that data/austen/README.rst and
data/names/README.rst state.
"""
import gzip
import hashlib
import json
import lzma
import re
import string
import zlib
from importlib import resources

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.datasets import (AUSTEN_BOOK_SEPARATOR, AUSTEN_BOOKS, CharVocabulary, load_austen, load_names,
                               padded_names, text_windows)
from tests.helpers import ROOT

AUSTEN_LENGTH = 4_025_062           # data/austen/README.rst
AUSTEN_BOUNDS = (3_622_555, 3_823_808)
BOOK_LENGTHS = [673_687, 684_767, 883_278, 883_027, 433_410, 466_853]


def _readme_sums(readme) -> dict:
    """``{file name: SHA-256}`` from the indented ``<sum>  <name>`` lines of a provenance README."""
    text = (ROOT / "data" / readme / "README.rst").read_text(encoding="utf-8")
    return {name: digest for digest, name in re.findall(r"^ +([0-9a-f]{64})  (\S+)$", text, re.MULTILINE)}


@pytest.mark.parametrize("readme, packed, unpack", [("austen", "austen.txt.xz", lzma.decompress),
                                                    ("names", "names.txt.gz", gzip.decompress)])
def test_shipped_files_match_the_sums_their_readme_states(readme, packed, unpack):
    sums = _readme_sums(readme)
    data = (resources.files("nnlayers.datasets") / "corpora" / packed).read_bytes()
    assert hashlib.sha256(data).hexdigest() == sums[packed]
    assert hashlib.sha256(unpack(data)).hexdigest() == sums[packed.rsplit(".", 1)[0]]


# -- Austen -------------------------------------------------------------------------------

def test_austen_is_the_six_novels_in_order():
    text = load_austen("all")
    assert len(text) == AUSTEN_LENGTH
    assert len(set(text)) == 81
    assert set(text) == set("\n !\"&'()*,-.:;?[]_£") | set(string.digits + string.ascii_letters)
    assert text.startswith("SENSE AND SENSIBILITY\n\nby Jane Austen\n\n(1811)")
    assert text.endswith("national importance.\n\n\n\nFinis")
    books = text.split(AUSTEN_BOOK_SEPARATOR)
    assert [len(book) for book in books] == BOOK_LENGTHS
    firsts = [book.split("\n", 1)[0] for book in books]
    assert firsts == ["SENSE AND SENSIBILITY", "PRIDE AND PREJUDICE", "MANSFIELD PARK", "EMMA",
                      "NORTHANGER ABBEY", "Persuasion"]
    assert len(AUSTEN_BOOKS) == 6 and AUSTEN_BOOKS[0] == "Sense & Sensibility"
    assert "It is a truth universally acknowledged, that a single man in possession" in books[1]
    assert "Emma Woodhouse, handsome, clever, and rich" in books[3]


def test_austen_split_is_contiguous_90_5_5():
    train, validation, test = (load_austen(split) for split in ("train", "validation", "test"))
    assert train + validation + test == load_austen("all")
    assert (len(train), len(validation), len(test)) == (3_622_555, 201_253, 201_254)
    assert nl.datasets.austen_split_bounds(AUSTEN_LENGTH) == AUSTEN_BOUNDS
    assert train.startswith("SENSE AND SENSIBILITY")
    assert validation.startswith("ould go, though I told him how ill I was.")
    persuasion = load_austen("all").index("Persuasion\n\n\nby")
    assert persuasion < AUSTEN_BOUNDS[0]                       # validation and test lie in Persuasion
    assert load_austen() == train                              # the default is the training part


@pytest.mark.parametrize("bad, error", [("valid", ValueError), ("Train", ValueError), (None, TypeError),
                                        (0, TypeError), (["train"], TypeError)])
def test_austen_refuses_other_splits_naming_the_choices(bad, error):
    with pytest.raises(error, match=r"load_austen: split must be one of 'train', 'validation', 'test', 'all'"):
        load_austen(bad)


# -- names --------------------------------------------------------------------------------

def test_names_are_the_census_first_names():
    names = load_names()
    assert len(names) == 5163
    assert names == sorted(set(names))
    assert names[:3] == ["aaron", "abbey", "abbie"] and names[-1] == "zulma"
    assert {"mary", "james", "elizabeth", "emma", "anne", "darcy"} <= set(names)
    assert set("".join(names)) == set(string.ascii_lowercase)
    assert (min(map(len, names)), max(map(len, names))) == (2, 11)


def test_names_split_is_fixed_and_disjoint():
    train, validation = load_names("train"), load_names("validation")
    assert (len(train), len(validation)) == (4642, 521)
    assert sorted(train + validation) == load_names()
    assert not set(train) & set(validation)
    assert train[:3] == ["aaron", "abbey", "abbie"]
    assert validation[:3] == ["adelia", "adriane", "adrianne"]
    assert validation == [name for name in load_names() if zlib.crc32(name.encode()) % 10 == 0]   # the rule
    load_names().append("x")                                   # a new list each call: the cache is unharmed
    assert len(load_names()) == 5163
    with pytest.raises(ValueError, match="load_names: split must be one of None, 'train', 'validation', got 'test'"):
        load_names("test")


# -- CharVocabulary ----------------------------------------------------------------------

def test_vocabulary_from_text_sorts_and_puts_reserved_first():
    vocab = CharVocabulary.from_text("banana", reserved="\n")
    assert vocab.characters == "\nabn" and len(vocab) == 4
    np.testing.assert_array_equal(vocab.encode("banana"), [2, 1, 3, 1, 3, 1])
    assert vocab.encode("banana").dtype == np.int64
    assert vocab.decode([2, 1, 3]) == "ban"
    assert vocab.index("\n") == 0 and "a" in vocab and "z" not in vocab
    assert CharVocabulary.from_text("ab", reserved="b").characters == "ba"    # reserved keeps its place


def test_vocabulary_of_austen_round_trips_the_whole_text():
    text = load_austen("all")
    vocab = CharVocabulary.from_text(text)
    assert len(vocab) == 81 and vocab.characters[:2] == "\n " and vocab.characters[-1] == "£"
    ids = vocab.encode(text)
    assert ids.shape == (AUSTEN_LENGTH,) and ids.dtype == np.int64
    assert ids.min() == 0 and ids.max() == 80
    assert vocab.decode(ids) == text
    assert vocab.decode(ids.astype(np.int32)) == text and vocab.decode(ids.astype(np.uint8)) == text


def test_vocabulary_round_trips_through_json_and_a_list():
    vocab = CharVocabulary("\nabcé")
    again = CharVocabulary.from_dict(json.loads(json.dumps(vocab.to_dict())))
    assert again == vocab and again.characters == "\nabcé"
    assert CharVocabulary(list(vocab.characters)) == vocab
    assert eval(repr(vocab), {"CharVocabulary": CharVocabulary}) == vocab
    assert vocab.decode(vocab.encode("cab\né")) == "cab\né"


def test_vocabulary_names_the_first_unknown_character_and_its_position():
    vocab = CharVocabulary("abc")
    with pytest.raises(ValueError, match=r"character 'x' at position 3 is not in the vocabulary of 3"):
        vocab.encode("abcxy")
    with pytest.raises(ValueError, match=r"character '😀' at position 1 "):   # beyond the lookup table
        vocab.encode("a😀")
    with pytest.raises(ValueError, match=r"id 3 at position 1 is outside 0 … 2"):
        vocab.decode([0, 3])
    with pytest.raises(ValueError, match=r"id -1 at position 0"):
        vocab.decode(np.array([-1, 0]))
    with pytest.raises(TypeError, match="ids must be integers, got float64"):
        vocab.decode([0.0, 1.0])
    with pytest.raises(nl.ShapeError, match=r"1-D sequence of ids, got shape \(1, 2\)"):
        vocab.decode([[0, 1]])
    with pytest.raises(TypeError, match="text must be a str, got bytes"):
        vocab.encode(b"abc")
    assert vocab.decode([]) == "" and vocab.encode("").shape == (0,)


@pytest.mark.parametrize("bad, error, message", [
    ("aba", ValueError, r"'a' is at positions 0 and 2"),
    ("", ValueError, "characters is empty"),
    (["a", "bc"], TypeError, r"characters\[1\] must be one character, got 'bc'"),
    (123, TypeError, "must be a str or a list"),
])
def test_vocabulary_refuses_bad_alphabets(bad, error, message):
    with pytest.raises(error, match=message):
        CharVocabulary(bad)


def test_vocabulary_from_dict_refuses_other_data():
    with pytest.raises(ValueError, match=r"expected a dict with key 'characters', got keys \['chars'\]"):
        CharVocabulary.from_dict({"chars": "ab"})


# -- windows ------------------------------------------------------------------------------

def test_windows_are_contiguous_and_targets_shifted_by_one():
    ids = np.arange(23, dtype=np.int32)
    X, Y = text_windows(ids, 5)
    assert X.shape == Y.shape == (4, 5) and X.dtype == Y.dtype == np.int32     # ⌊(23 − 1)/5⌋ = 4
    np.testing.assert_array_equal(X, np.arange(20).reshape(4, 5))
    np.testing.assert_array_equal(Y, X + 1)
    X, Y = text_windows(ids, 5, offset=3)                                       # ⌊(20 − 1)/5⌋ = 3
    np.testing.assert_array_equal(X[:, 0], [3, 8, 13])
    np.testing.assert_array_equal(Y, X + 1)
    X, Y = text_windows(ids[:6], 5)                                             # exactly T + 1: one window
    assert X.shape == (1, 5) and Y[0, -1] == 5
    X[0, 0] = 99
    assert ids[0] == 0                                                          # new arrays, not views


def test_windows_of_austen_feed_fit_shaped_batches():
    text = load_austen("validation")
    vocab = CharVocabulary.from_text(load_austen("all"))
    X, Y = text_windows(vocab.encode(text), 64)
    assert X.shape == Y.shape == ((len(text) - 1) // 64, 64) == (3144, 64)
    assert vocab.decode(X[0]) == text[:64] and vocab.decode(Y[0]) == text[1:65]
    assert vocab.decode(X[1]) == text[64:128]


def test_windows_refuse_a_short_stream_naming_both_numbers():
    with pytest.raises(ValueError, match=r"5 ids from offset 0 \(of 5\) are fewer than length \+ 1 = 6"):
        text_windows(np.arange(5), 5)
    with pytest.raises(ValueError, match=r"2 ids from offset 4 \(of 6\) are fewer than length \+ 1 = 3"):
        text_windows(np.arange(6), 2, offset=4)
    with pytest.raises(ValueError, match=r"0 ids from offset 9"):
        text_windows(np.arange(6), 2, offset=9)
    with pytest.raises(TypeError, match="text_windows: ids must be integers, got float64"):
        text_windows(np.zeros(10), 2)
    with pytest.raises(nl.ShapeError, match=r"text_windows: expected a 1-D stream of ids, got shape \(2, 5\)"):
        text_windows(np.zeros((2, 5), dtype=int), 2)
    with pytest.raises(ValueError, match="text_windows: length must be a positive integer, got 0"):
        text_windows(np.arange(10), 0)
    with pytest.raises(TypeError, match="text_windows: offset must be an integer ≥ 0"):
        text_windows(np.arange(10), 2, offset=1.0)


# -- padded names -------------------------------------------------------------------------

def test_padded_names_mark_start_and_end_and_ignore_the_padding():
    vocab = CharVocabulary.from_text("".join(load_names()), reserved="\n")
    assert len(vocab) == 27 and vocab.characters == "\n" + string.ascii_lowercase
    X, Y = padded_names(["anna", "bo"], vocab)
    assert X.shape == Y.shape == (2, 5) and X.dtype == Y.dtype == np.int64
    np.testing.assert_array_equal(X, [[0, 1, 14, 14, 1], [0, 2, 15, 0, 0]])
    np.testing.assert_array_equal(Y, [[1, 14, 14, 1, 0], [2, 15, 0, -100, -100]])
    X, Y = padded_names(["bo"], vocab, length=4, ignore_index=-1)
    np.testing.assert_array_equal(X, [[0, 2, 15, 0]])
    np.testing.assert_array_equal(Y, [[2, 15, 0, -1]])
    X, Y = padded_names(load_names(), vocab)
    assert X.shape == (5163, 12)                                 # the longest names have 11 letters
    assert ((Y == -100) | ((Y >= 0) & (Y < 27))).all() and ((X >= 0) & (X < 27)).all()
    assert (Y == 0).sum() == 5163                                # one end marker per name
    assert padded_names([], vocab)[0].shape == (0, 1)


def test_padded_names_refuse_what_they_cannot_mark():
    vocab = CharVocabulary("\nab")
    with pytest.raises(ValueError, match=r"names\[1\] = 'abc': CharVocabulary.encode: character 'c' at position 2"):
        padded_names(["ab", "abc"], vocab)
    with pytest.raises(ValueError, match=r"names\[0\] = 'a\\nb' holds the marker"):
        padded_names(["a\nb"], vocab)
    with pytest.raises(ValueError, match=r"names\[1\] = 'abab' has 4 characters; length 4 holds at most 3"):
        padded_names(["ab", "abab"], vocab, length=4)
    with pytest.raises(ValueError, match="marker '.' is not in the vocabulary"):
        padded_names(["ab"], vocab, marker=".")
    with pytest.raises(ValueError, match="ignore_index 2 is a valid id"):
        padded_names(["ab"], vocab, ignore_index=2)
    with pytest.raises(TypeError, match="names must be a list of str, got str"):
        padded_names("ab", vocab)


# -- the build script's own steps (the downloads and rdata are not needed for these) ----------------------

def _build_script():
    import importlib.util
    spec = importlib.util.spec_from_file_location("build_text_data", ROOT / "scripts" / "build_text_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_build_script_takes_first_names_lowercased_once_and_sorted(tmp_path):
    import io
    import tarfile
    script = _build_script()
    sdist = tmp_path / "names-0.3.0.tar.gz"
    lists = {"male": "JAMES          3.318  3.318      1\nJEAN  0.1 3.4 2\n",
             "female": "MARY           2.629  2.629      1\nJEAN 0.1 2.7 2\n"}
    with tarfile.open(sdist, "w:gz") as archive:
        for sex, text in lists.items():
            info = tarfile.TarInfo(f"names-0.3.0/names/dist.{sex}.first")
            info.size = len(text)
            archive.addfile(info, io.BytesIO(text.encode()))
    assert script.first_names(sdist) == ["james", "jean", "mary"]
    assert script.gzip_bytes(b"x\n") == script.gzip_bytes(b"x\n")                # no time stamp
    assert gzip.decompress(script.gzip_bytes(b"anna\n")) == b"anna\n"
    with pytest.raises(script.SourceError, match="names-0.3.0.tar.gz: SHA-256 .* expected "):
        script.checked(sdist, script.SDIST[2])
