"""Character-model training through the Trainer: integer ids in, N×T×V scores out, N×T labels, the
Perplexity callback. The model is a stand-in written here (a lookup table and a per-step readout);
the library's Embedding and recurrent layers have their own tests."""
import io
import math
import warnings

import numpy as np
import pytest

import nnlayers as nl


class Lookup(nl.Module):
    """H[n, t] = W[X[n, t]]: a row of W per integer id (an embedding's forward), ids of any shape → (…, D).
    δW[i] += Σ δH over the positions holding id i; no gradient for the ids. Records the dtypes it is
    given, so a test sees that nothing on the way cast the ids."""

    cache_names = ("_ids",)

    def __init__(self, num, dim, rng=0):
        super().__init__()
        self.W = self.add_parameter("W", np.random.default_rng(rng).normal(size=(num, dim)) * 0.5)
        self._ids = None
        self.dtypes, self.types = set(), set()

    def forward(self, ids):
        if ids.dtype.kind not in "iu":
            raise TypeError(f"Lookup: ids must be integers, got {ids.dtype}")
        self.dtypes.add(ids.dtype)
        self.types.add(type(ids))
        self._ids = ids
        return self.W.data[ids]

    def backward(self, dH):
        np.add.at(self.W.grad, self._ids, dH)
        return None


class Readout(nl.Module):
    """Z = H W + b on the last axis: N×T×D → N×T×V scores."""

    cache_names = ("_H",)

    def __init__(self, dim, classes, rng=1):
        super().__init__()
        self.W = self.add_parameter("W", np.random.default_rng(rng).normal(size=(dim, classes)) * 0.5)
        self.b = self.add_parameter("b", np.zeros(classes))
        self._H = None

    def forward(self, H):
        self._H = H
        return H @ self.W.data + self.b.data

    def backward(self, dZ):
        D = dZ.shape[-1]
        self.W.grad += self._H.reshape(-1, self._H.shape[-1]).T @ dZ.reshape(-1, D)
        self.b.grad += dZ.reshape(-1, D).sum(axis=0)
        return dZ @ self.W.data.T


def char_model(V=5, D=4):
    return nl.Sequential(Lookup(V, D), Readout(D, V))


def windows(n=24, T=6, V=5, seed=0, dtype=np.int64):
    """Windows of a text where the next symbol is the current one plus 1 or 2 (mod V): X ids, Y the next ids."""
    rng = np.random.default_rng(seed)
    text = np.cumsum(rng.integers(1, 3, size=n * T + 1)) % V
    X = np.stack([text[i * T:(i + 1) * T] for i in range(n)]).astype(dtype)
    Y = np.stack([text[i * T + 1:(i + 1) * T + 1] for i in range(n)]).astype(dtype)
    return X, Y


@pytest.mark.parametrize("dtype", [np.int64, np.int32, np.uint8])
def test_integer_ids_train_evaluate_and_predict_uncast(dtype):
    X, Y = windows(dtype=dtype)
    X_val, Y_val = windows(n=8, seed=1, dtype=dtype)
    model = char_model()
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(model.parameters(), lr=0.05))
    with warnings.catch_warnings():
        warnings.simplefilter("error")                     # no dtype warning: ids are not data to cast
        history = trainer.fit(X, Y, epochs=15, batch_size=5, rng=0, validation_data=(X_val, Y_val), progress=False)
    assert model[0].dtypes == {np.dtype(dtype)}
    assert history.loss[-1] < 0.5 * history.loss[0] and history.val_loss[-1] < 0.8      # ln 2 ≈ 0.69 is the floor
    loss, _ = trainer.evaluate(X_val, Y_val, batch_size=3)
    assert loss == pytest.approx(history.val_loss[-1], rel=1e-12)
    scores = trainer.predict(X_val, batch_size=3)
    assert scores.shape == (8, 6, 5) and model[0].dtypes == {np.dtype(dtype)}
    assert loss == pytest.approx(nl.SoftmaxCrossEntropy().forward(scores, Y_val), rel=1e-12)
    np.testing.assert_array_equal(nl.predict(model, X_val), scores)


def test_an_augment_on_ids_and_a_full_batch_keep_them_integers():
    X, Y = windows()

    def shift_ids(ids, rng):                                 # a transform on ids: a tenth replaced at random
        return np.where(rng.random(ids.shape) < 0.1, rng.integers(0, 5, ids.shape), ids)

    model = char_model()
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(model.parameters(), lr=0.5))
    trainer.fit(X, Y, epochs=2, rng=0, progress=False, augment=shift_ids)
    trainer.fit(X, Y, epochs=2, progress=False)              # the whole set as one batch, moved once
    assert model[0].dtypes == {np.dtype(np.int64)}


def test_the_epoch_loss_of_equal_windows_is_the_mean_per_label():
    """Batches of 5, 5, 5, 5, 4 sequences of T = 6 labels each: fit's per-sequence weighting is the mean
    over all 144 labels; evaluate's too, whatever its batch size."""
    X, Y = windows()
    model = char_model()
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(model.parameters(), lr=0.0))   # weights fixed
    history = trainer.fit(X, Y, epochs=1, batch_size=5, rng=0, progress=False)
    whole = nl.SoftmaxCrossEntropy().forward(model.forward(X), Y)
    assert history.loss[0] == pytest.approx(whole, rel=1e-13)
    assert trainer.evaluate(X, Y, batch_size=7)[0] == pytest.approx(whole, rel=1e-13)


def test_padded_targets_train_and_evaluate_with_ignore_index():
    X, Y = windows()
    Y = Y.copy()
    Y[::3, 4:] = -100                                       # every third sequence ends early
    model = char_model()
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(ignore_index=-100), nl.Adam(model.parameters(), lr=0.05))
    history = trainer.fit(X, Y, epochs=10, batch_size=6, rng=0, progress=False)
    assert history.loss[-1] < 0.5 * history.loss[0]
    loss, _ = trainer.evaluate(X, Y, batch_size=len(X))      # one batch: the mean over the kept labels
    assert loss == pytest.approx(nl.SoftmaxCrossEntropy().forward(model.forward(X)[Y != -100], Y[Y != -100]),
                                 rel=1e-12)


def test_a_bad_label_is_named_by_its_sample_and_step_before_training():
    X, Y = windows()
    Y = Y.copy()
    Y[7, 3] = 5
    model = char_model()
    before = model[1].W.data.copy()
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(ignore_index=-100), nl.SGD(model.parameters(), lr=0.5))
    with pytest.raises(ValueError, match=r"fit: Y does not suit the loss: SoftmaxCrossEntropy\(ignore_index=-100\): "
                                         r"label 5 at position \(7, 3\) out of range for 5 classes"):
        trainer.fit(X, Y, epochs=1, batch_size=4, rng=0, progress=False)
    np.testing.assert_array_equal(model[1].W.data, before)
    Y[7, 3] = -7
    with pytest.raises(ValueError, match=r"label -7 at position \(7, 3\)"):
        trainer.fit(X, Y, epochs=1, batch_size=4, rng=0, progress=False)
    with pytest.raises(ValueError, match=r"fit: validation_data's Y does not suit the loss: .* position \(1, 2\)"):
        Y_val = windows(n=3, seed=2)[1]
        Y_val[1, 2] = 9
        trainer.fit(X, windows()[1], epochs=1, progress=False, validation_data=(X[:3], Y_val))


# -- perplexity -----------------------------------------------------------------------------------------

def test_perplexity_callback_records_exp_of_the_epoch_losses():
    X, Y = windows()
    X_val, Y_val = windows(n=8, seed=1)
    model = char_model()
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(model.parameters(), lr=0.05), metric=None)
    stream = io.StringIO()
    history = trainer.fit(X, Y, epochs=4, batch_size=5, rng=0, validation_data=(X_val, Y_val),
                          callbacks=[nl.Perplexity(), nl.Progress(mode="lines", file=stream)])
    np.testing.assert_allclose(history.perplexity, np.exp(history.loss), rtol=1e-15)
    np.testing.assert_allclose(history.val_perplexity, np.exp(history.val_loss), rtol=1e-15)
    assert history.val_perplexity[-1] == pytest.approx(math.exp(trainer.evaluate(X_val, Y_val)[0]), rel=1e-12)
    assert history.perplexity[0] > history.perplexity[-1] > 1
    last = stream.getvalue().splitlines()[-1]
    assert f"perplexity={history.perplexity[-1]:.4f}" in last and f"val_perplexity={history.val_perplexity[-1]:.4f}" in last
    assert "perplexity=" in repr(history) and "val_perplexity" in history._repr_html_()


def test_perplexity_in_the_bars_and_without_validation():
    from nnlayers.training.progress import _compact_summary
    X, Y = windows()
    model = char_model()
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(model.parameters(), lr=0.05), metric=nl.accuracy)
    history = trainer.fit(X, Y, epochs=2, batch_size=12, rng=0, progress=False, callbacks=[nl.Perplexity()])
    assert list(history.metrics) == ["accuracy", "perplexity"]               # no val_perplexity without validation
    assert f"acc {history.accuracy[-1]:.4f} ppl {history.perplexity[-1]:.4f}" in _compact_summary(history)


def test_accuracy_over_sequences_counts_every_position():
    scores = np.zeros((2, 3, 4))
    scores[0, :, 1] = scores[1, :2, 2] = 1.0                                  # predicts 1 1 1 / 2 2 0
    labels = np.array([[1, 1, 0], [2, 3, 0]])
    assert nl.accuracy(scores, labels) == 4 / 6
    assert nl.accuracy(scores, np.eye(4)[labels]) == 4 / 6
    with pytest.raises(ValueError, match=r"accuracy: predictions of shape \(2, 3, 4\) need labels of shape \(2, 3\), "
                                         r"got \(2, 2\)"):
        nl.accuracy(scores, labels[:, :2])


def test_perplexity_needs_a_mean_loss():
    model = nl.Sequential(nl.Linear(2, 1, rng=0))
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.1))
    with pytest.raises(ValueError, match=r"Perplexity: perplexity is exp of a mean cross-entropy, but "
                                         r"EuclideanLoss\(\) sums over the batch"):
        trainer.fit(np.zeros((4, 2)), np.zeros((4, 1)), epochs=1, progress=False, callbacks=[nl.Perplexity()])


def test_ids_and_padded_labels_move_to_the_device_and_train_as_on_the_cpu():
    """On the strict stand-in device (tests/strict_backend.py: mixing host and device arrays fails, as on a
    GPU) the ids reach the model as device integers; loss, ignore_index and clipping give the CPU's run."""
    from tests.strict_backend import StrictArray
    X, Y = windows()
    Y = Y.copy()
    Y[::4, :2] = -100
    runs = []
    for device in ("cpu", "strict"):
        model = char_model().to(device)
        trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(ignore_index=-100), nl.Adam(model.parameters(), lr=0.05),
                             clip_grad_norm=0.3)
        history = trainer.fit(X, Y, epochs=3, batch_size=5, rng=0, progress=False, validation_data=(X, Y),
                              callbacks=[nl.Perplexity()])
        runs.append((history, [np.asarray(p.data) for p in model.parameters()], trainer.clipping.last_norm))
        assert model[0].dtypes == {np.dtype(np.int64)}
        assert model[0].types == {StrictArray if device == "strict" else np.ndarray}
    (cpu, cpu_weights, cpu_norm), (device, device_weights, device_norm) = runs
    np.testing.assert_allclose(device.loss, cpu.loss, rtol=1e-13)
    np.testing.assert_allclose(device.val_perplexity, cpu.val_perplexity, rtol=1e-13)
    for ours, theirs in zip(device_weights, cpu_weights):
        np.testing.assert_allclose(ours, theirs, rtol=1e-12, atol=1e-14)
    assert device_norm == pytest.approx(cpu_norm, rel=1e-12)


def test_the_library_s_embedding_and_lstm_train_through_fit_with_clipping_and_padding():
    """nl.Embedding → nl.LSTM → nl.Linear on integer ids: fit (clipped, padded labels) takes the hand loop's
    steps (forward, loss, backward, clip_grad_norm, step), and evaluate and predict take the ids too."""
    X, Y = windows(n=20, T=7)
    Y = Y.copy()
    Y[::3, :2] = -100

    def lstm_model():
        return nl.Sequential(nl.Embedding(5, 4, rng=0), nl.LSTM(4, 6, rng=1), nl.Linear(6, 5, rng=2))

    model = lstm_model()
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(ignore_index=-100), nl.Adam(model.parameters(), lr=0.02),
                         clip_grad_norm=0.1)
    history = trainer.fit(X, Y, epochs=2, batch_size=8, shuffle=False, progress=False, callbacks=[nl.Perplexity()])

    hand = lstm_model()
    optimizer, loss = nl.Adam(hand.parameters(), lr=0.02), nl.SoftmaxCrossEntropy(ignore_index=-100)
    for _ in range(2):
        for start in range(0, 20, 8):
            loss.forward(hand.forward(X[start:start + 8]), Y[start:start + 8])
            hand.backward(loss.backward())
            nl.clip_grad_norm(hand.parameters(), 0.1)
            optimizer.step()
            optimizer.zero_grad()
    for ours, theirs in zip(model.parameters(), hand.parameters()):
        np.testing.assert_array_equal(ours.data, theirs.data)
    assert trainer.clipping.clipped == trainer.clipping.steps == 6
    assert history.perplexity == [math.exp(value) for value in history.loss]
    value, _ = trainer.evaluate(X, Y, batch_size=20)
    assert value == pytest.approx(nl.SoftmaxCrossEntropy(ignore_index=-100).forward(trainer.predict(X), Y), rel=1e-12)
