"""nnlayers.examples.text: the corpora as training pairs, the character models, a small GPT, sampling and the
order of the training windows."""
import itertools

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.datasets import IGNORE_INDEX, CharVocabulary
from nnlayers.examples import text


@pytest.fixture(scope="module")
def austen():
    return text.load_corpus("austen")


@pytest.fixture(scope="module")
def names():
    return text.load_corpus("names")


# -- load_corpus -------------------------------------------------------------------------------------------

def test_austen_windows_follow_one_another(austen):
    c = austen
    assert c.name == "austen" and len(c.vocab) == 81
    for X, Y in ((c.X, c.Y), (c.X_val, c.Y_val)):
        assert X.dtype == Y.dtype == np.int64 and X.shape == Y.shape and X.shape[1] == 64
        np.testing.assert_array_equal(Y[:, :-1], X[:, 1:])              # Y is X shifted by one
        np.testing.assert_array_equal(Y[:-1, -1], X[1:, 0])             # windows follow one another, no gap
        assert X.min() >= 0 and X.max() < len(c.vocab) and Y.min() >= 0
    assert len(c.X) > 15 * len(c.X_val) > 0                           # 90 % against 5 %
    assert c.vocab.decode(c.X[0, :20]) == nl.datasets.load_austen("train")[:20]
    assert c.vocab.decode(c.X_val[0]) == nl.datasets.load_austen("validation")[:64]
    c.vocab.encode(c.prime)                                            # the prime is in the vocabulary
    assert text.load_corpus("austen", 16).X.shape[1] == 16


def test_names_between_markers(names):
    c = names
    marker = c.vocab.index(text.NAME_MARKER)
    assert c.name == "names" and c.prime == text.NAME_MARKER and marker == 0 and len(c.vocab) == 27
    longest = max(len(name) for name in nl.datasets.load_names()) + 1
    for X, Y in ((c.X, c.Y), (c.X_val, c.Y_val)):
        assert X.dtype == Y.dtype == np.int64 and X.shape == Y.shape and X.shape[1] == longest
        assert (X[:, 0] == marker).all()                                # every name starts after the marker
        assert X.min() >= 0 and X.max() < len(c.vocab)
        valid = Y != IGNORE_INDEX
        assert ((Y == marker).sum(axis=1) == 1).all()                   # each name ends once, by the marker
        np.testing.assert_array_equal(Y[:, :-1][valid[:, :-1]], X[:, 1:][valid[:, :-1]])
    first = nl.datasets.load_names("train")[0]
    assert c.vocab.decode(c.X[0, 1:len(first) + 1]) == first
    assert len(c.X) == len(nl.datasets.load_names("train"))
    assert len(c.X_val) == len(nl.datasets.load_names("validation"))
    assert text.load_corpus("names", 5).X.shape == c.X.shape           # the length is unused for names


def test_unknown_corpus():
    with pytest.raises(ValueError, match=r"load_corpus: name must be one of \('austen', 'names'\), got 'shakespeare'"):
        text.load_corpus("shakespeare")


# -- the models ----------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind, layer", [("lstm", nl.LSTM), ("gru", nl.GRU), ("rnn", nl.RNN)])
def test_char_model_kinds(kind, layer):
    model = text.char_model(kind, 11, embed=4, hidden=6, rng=0)
    assert [type(m) for m in model] == [nl.Embedding, layer, nl.Linear, nl.Bias]
    assert model[0].num_embeddings == 11 and model[0].embedding_dim == 4 and model[1].hidden_size == 6
    ids = np.random.default_rng(0).integers(0, 11, size=(3, 5))
    scores = model.forward(ids)
    assert scores.shape == (3, 5, 11) and scores.dtype == np.float32
    assert text.char_model(kind, 11, embed=4, hidden=6, rng=0, dtype=np.float64).forward(ids).dtype == np.float64
    same = text.char_model(kind, 11, embed=4, hidden=6, rng=0)
    np.testing.assert_array_equal(same.forward(ids), scores)           # a seed fixes the weights


def test_char_model_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match=r"char_model: kind must be one of \['gru', 'lstm', 'rnn'\], got 'gpt'"):
        text.char_model("gpt", 10)


def small_gpt(V=13, context=8, dtype=np.float64, **options):
    return text.gpt(V, context=context, embed=8, heads=2, blocks=2, rng=0, dtype=dtype, **options)


def test_gpt_layers_and_shapes():
    model = small_gpt()
    kinds = [type(m) for m in model]
    assert kinds == [nl.Embedding, nl.PositionalEmbedding, nl.TransformerBlock, nl.TransformerBlock, nl.LayerNorm,
                     nl.Linear, nl.Bias]
    assert all(block.causal and block.num_heads == 2 and block.embed_dim == 8 for block in model[2:4])
    assert model[1].max_length == 8
    assert np.abs(model[0].W.data).max() < 0.15                        # N(0, 0.02²): far from N(0, 1)
    for T in (1, 5, 8):
        Z = model.forward(np.zeros((3, T), dtype=np.int64))
        assert Z.shape == (3, T, 13) and Z.dtype == np.float64
    assert small_gpt(dtype=np.float32).forward(np.zeros((2, 4), dtype=np.int64)).dtype == np.float32
    assert small_gpt(dropout=0.1)[2].dropout == 0.1


def test_gpt_is_causal():
    """Changing the id at position t changes the scores at t and after, never before."""
    model = small_gpt()
    ids = np.random.default_rng(1).integers(0, 13, size=(2, 8))
    Z = model.forward(ids)
    for t in (0, 3, 7):
        changed = ids.copy()
        changed[:, t] = (changed[:, t] + 1) % 13
        Zc = model.forward(changed)
        np.testing.assert_array_equal(Zc[:, :t], Z[:, :t])
        assert (np.abs(Zc[:, t:] - Z[:, t:]).max(axis=(0, 2)) > 1e-6).all()


def test_gpt_refuses_a_sequence_longer_than_its_context():
    model = small_gpt()
    with pytest.raises(nl.ShapeError, match=r"T = 9 are longer than max_length = 8"):
        model.forward(np.zeros((1, 9), dtype=np.int64))


# -- sample ------------------------------------------------------------------------------------------------

VOCAB = CharVocabulary("\nabcdefghijkl")          # 13 symbols, the marker first


def test_sample_is_determined_by_its_seed_and_starts_with_the_prime():
    model = text.char_model("lstm", 13, embed=4, hidden=8, rng=0)
    first = text.sample(model, VOCAB, "abc", 30, rng=5)
    assert first.startswith("abc") and len(first) == 33
    assert text.sample(model, VOCAB, "abc", 30, rng=5) == first
    assert text.sample(model, VOCAB, "abc", 30, rng=np.random.default_rng(5)) == first
    assert text.sample(model, VOCAB, "abc", 30, rng=6) != first
    assert text.sample(model, VOCAB, "abc", 0, rng=5) == "abc"
    assert set(first) <= set(VOCAB.characters)


def test_temperature_sharpens_and_flattens():
    model = small_gpt()
    model[-2].W.data[:] = 0.0                                           # the scores are the bias alone:
    model[-1].b.data[:] = 0.0
    model[-1].b.data[0, 4] = 3.0                                        # "d" e³ times likelier than each other
    cold = text.sample(model, VOCAB, "a", 60, temperature=0.05, rng=0)[1:]
    hot = text.sample(model, VOCAB, "a", 60, temperature=20.0, rng=0)[1:]
    assert cold == "d" * 60 and hot.count("d") < 20                   # p("d") ≈ 0.09 when hot
    for bad in (0, -1.0, float("nan"), "1"):
        with pytest.raises(ValueError, match="sample: temperature must be a positive number"):
            text.sample(model, VOCAB, "a", 3, temperature=bad)


def test_stop_character_ends_a_name():
    model = text.char_model("gru", 13, embed=4, hidden=8, rng=0)
    model[-1].b.data[0, 0] = 50.0                                       # the marker almost surely first
    assert text.sample(model, VOCAB, "\n", 20, stop="\n", rng=0) == "\n\n"
    assert len(text.sample(model, VOCAB, "\n", 20, rng=0)) == 21       # without stop: all 20
    model[-1].b.data[0, 0] = -50.0                                      # never the marker: runs to the length
    assert len(text.sample(model, VOCAB, "\n", 20, stop="\n", rng=0)) == 21


def draws_by_hand(model, prime, length, temperature, seed):
    """What sample draws, computed by running the whole text so far through the model at every step."""
    rng, ids = np.random.default_rng(seed), list(VOCAB.encode(prime))
    with nl.evaluation_mode(model):
        for _ in range(length):
            scores = model.forward(np.array([ids]))[0, -1].astype(np.float64) / temperature
            p = np.exp(scores - scores.max())
            ids.append(int(rng.choice(len(p), p=p / p.sum())))
    return VOCAB.decode(ids)


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn"])
def test_recurrent_sampling_carries_the_state(kind):
    """One character at a time with the state carried draws what the whole text at every step would."""
    model = text.char_model(kind, 13, embed=4, hidden=8, rng=1, dtype=np.float64)
    assert text.sample(model, VOCAB, "abca", 25, temperature=0.9, rng=3) == draws_by_hand(model, "abca", 25, 0.9, 3)


def test_sample_restores_modes_stateful_flags_and_states():
    model = nl.Sequential(nl.Embedding(13, 4, rng=0), nl.LSTM(4, 6, stateful=True, rng=1), nl.GRU(6, 5, rng=2),
                          nl.Linear(5, 13, rng=3), nl.Bias(13))
    lstm, gru = model[1], model[2]
    model.forward(np.zeros((3, 4), dtype=np.int64))                     # a state for a batch of 3
    lstm_state, gru_state = lstm.state, gru.state
    kept = [s.copy() for s in lstm_state], gru_state.copy()
    model[3].eval()                                                     # a sub-layer the user set to eval
    assert model.training
    text.sample(model, VOCAB, "ab", 10, rng=0)
    assert lstm.stateful and not gru.stateful
    assert lstm.state is lstm_state and gru.state is gru_state
    for now, before in zip((*lstm.state, gru.state), (*kept[0], kept[1])):
        np.testing.assert_array_equal(now, before)
    assert model.training and model[0].training and model[1].training and not model[3].training
    model.forward(np.zeros((3, 4), dtype=np.int64))                     # stateful again, from the batch of 3


def test_sample_restores_everything_after_an_error(monkeypatch):
    model = text.char_model("lstm", 13, embed=4, hidden=8, rng=0)
    layer = model[1]
    calls = []

    def failing_softmax(scores):
        calls.append(1)
        if len(calls) == 3:
            raise RuntimeError("stop here")
        return nl.losses.softmax(scores)
    monkeypatch.setattr(text, "softmax", failing_softmax)
    with pytest.raises(RuntimeError, match="stop here"):
        text.sample(model, VOCAB, "ab", 10, rng=0)
    assert not layer.stateful and layer.state is None and model.training
    assert all(getattr(module, name) is None for module in model.modules() for name in type(module).cache_names)


def test_gpt_sampling_crops_to_its_context():
    model = small_gpt(context=8)
    prime = "abcdefghijklabc"                                           # 15 characters, the context is 8
    drawn = text.sample(model, VOCAB, prime, 20, rng=4)
    assert drawn.startswith(prime) and len(drawn) == 35
    assert drawn[len(prime):] == text.sample(model, VOCAB, prime[-8:], 20, rng=4)[8:]   # only the last 8 count
    by_hand = np.random.default_rng(4)
    ids = list(VOCAB.encode(prime))
    with nl.evaluation_mode(model):
        for _ in range(20):
            scores = model.forward(np.array([ids[-8:]]))[0, -1]
            p = np.exp(scores - scores.max())
            ids.append(int(by_hand.choice(13, p=p / p.sum())))
    assert VOCAB.decode(ids) == drawn


def test_sample_refuses_bad_primes_and_lengths():
    model = small_gpt()
    with pytest.raises(ValueError, match="sample: prime is empty"):
        text.sample(model, VOCAB, "", 3)
    with pytest.raises(TypeError, match="sample: prime must be a str, got int"):
        text.sample(model, VOCAB, 3, 3)
    with pytest.raises(ValueError, match="sample: length must be an integer ≥ 0, got -1"):
        text.sample(model, VOCAB, "a", -1)
    with pytest.raises(ValueError, match="character 'z' at position 1 is not in the vocabulary"):
        text.sample(model, VOCAB, "az", 3)


# -- training_rounds -----------------------------------------------------------------------------------

def test_training_rounds_cover_each_epoch_once():
    rounds = text.training_rounds(23, 4, 2, np.random.default_rng(0))   # 8 rows a round: 8, 8, 7 per epoch
    taken = list(itertools.islice(rounds, 9))
    assert [epoch for epoch, _ in taken] == [1, 1, 1, 2, 2, 2, 3, 3, 3]
    assert [len(rows) for _, rows in taken] == [8, 8, 7] * 3
    orders = []
    for epoch in (1, 2, 3):
        rows = np.concatenate([rows for e, rows in taken if e == epoch])
        np.testing.assert_array_equal(np.sort(rows), np.arange(23))     # every window once per epoch
        assert rows.dtype.kind == "i"
        orders.append(rows)
    assert not np.array_equal(orders[0], orders[1])                    # a fresh permutation each epoch
    again = list(itertools.islice(text.training_rounds(23, 4, 2, np.random.default_rng(0)), 9))
    for (e1, r1), (e2, r2) in zip(taken, again):
        assert e1 == e2
        np.testing.assert_array_equal(r1, r2)                           # same seed, same order
    other = next(text.training_rounds(23, 4, 2, 1))[1]
    assert not np.array_equal(other, taken[0][1])


def test_training_rounds_of_whole_epochs():
    taken = list(itertools.islice(text.training_rounds(6, 2, 5, 0), 3))  # 10 rows a round > 6: one per epoch
    assert [(epoch, len(rows)) for epoch, rows in taken] == [(1, 6), (2, 6), (3, 6)]
    taken = list(itertools.islice(text.training_rounds(12, 3, 2, 0), 4))  # exactly two rounds per epoch
    assert [(epoch, len(rows)) for epoch, rows in taken] == [(1, 6), (1, 6), (2, 6), (2, 6)]
