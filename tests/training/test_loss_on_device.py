"""Batch losses stay where the model computes until the epoch's end; the divergence guard reads them
every k batches there, and still rolls back to a point whose loss was finite."""
import numpy as np
import pytest

import nnlayers as nl
from nnlayers.training import DivergenceGuard
from tests.strict_backend import StrictArray


def test_value_is_forward_left_as_a_float64_scalar():
    rng = np.random.default_rng(0)
    logits32 = rng.normal(size=(5, 3)).astype(np.float32)
    for loss, pred, target in [(nl.EuclideanLoss(), logits32, rng.normal(size=(5, 3))),
                               (nl.SoftmaxCrossEntropy(), rng.normal(size=(5, 3)).astype(np.float32), np.arange(5) % 3),
                               (nl.SoftmaxCrossEntropy(), rng.normal(size=(5, 3)), np.eye(3)[np.arange(5) % 3])]:
        value = loss.value(pred, target)
        assert type(value) is np.float64
        backward = loss.backward()
        forward = loss.forward(pred, target)
        assert type(forward) is float and forward == value
        np.testing.assert_array_equal(loss.backward(), backward)          # value caches as forward does
    diff = (pred32 := rng.normal(size=(4, 2)).astype(np.float32)) - 0.0
    assert nl.EuclideanLoss().forward(pred32, np.zeros((4, 2))) == 0.5 * float(np.vdot(diff, diff))


class HalfSquares(nl.Loss):
    """A loss written the older way, with forward alone (a float)."""

    reduction = "sum"

    def forward(self, pred, target):
        self.diff = pred - target
        return 0.5 * float(np.sum(self.diff ** 2))

    def backward(self):
        return self.diff.copy()


def test_a_loss_with_forward_alone_still_trains_and_one_with_neither_says_so():
    X = np.random.default_rng(1).normal(size=(8, 2))
    Y = X @ np.array([[1.0], [-1.0]])
    histories = []
    for loss in (HalfSquares(), nl.EuclideanLoss()):
        model = nl.Sequential(nl.Linear(2, 1, rng=0))
        histories.append(nl.Trainer(model, loss, nl.SGD(model.parameters(), lr=0.05)).fit(
            X, Y, epochs=5, batch_size=3, rng=0, progress=False).loss)
    np.testing.assert_allclose(histories[0], histories[1], rtol=1e-14)
    assert HalfSquares().value(X, X) == 0.0                               # value falls back on forward
    with pytest.raises(NotImplementedError, match="Loss implements neither value nor forward"):
        nl.Loss()(X, X)


READS = []


class Counted(StrictArray):
    """A 0-d device value that records every read (``float``), as a GPU wait would be."""

    def __float__(self):
        READS.append(1)
        return float(self.view(np.ndarray))


class DeviceEuclidean(nl.EuclideanLoss):
    """The Euclidean loss giving its value as a 0-d array on the device; NaN from its ``nan_at``-th call."""

    def __init__(self, nan_at=np.inf):
        super().__init__()
        self.nan_at, self.calls = nan_at, 0

    def value(self, pred, target):
        self.calls += 1
        value = np.nan if self.calls >= self.nan_at else super().value(pred, target)
        return np.asarray(value).view(Counted)


def regression(n=16):
    rng = np.random.default_rng(2)
    X = rng.normal(size=(n, 2))
    return X, np.tanh(X @ np.array([[1.0], [-2.0]]))


def net():
    return nl.Sequential(nl.Linear(2, 3, rng=0), nl.Tanh(), nl.Linear(3, 1, rng=1))


def sign_accuracy(pred, target):
    """The share of predictions with the target's sign; ``.value`` leaves it on the device, counted."""
    return float(sign_accuracy.value(pred, target))


sign_accuracy.value = lambda pred, target: np.asarray(nl.accuracy.value(pred > 0, target > 0)).view(Counted)


def test_on_a_device_no_batch_loss_or_metric_is_read_and_the_epochs_match_the_cpu():
    X, Y = regression()
    cpu, device = net(), net().to("strict")
    expected = nl.Trainer(cpu, nl.EuclideanLoss(), nl.Adam(cpu.parameters(), lr=0.01), metric=sign_accuracy).fit(
        X, Y, epochs=3, batch_size=4, rng=0, progress=False, validation_data=(X, Y))
    READS.clear()
    trainer = nl.Trainer(device, DeviceEuclidean(), nl.Adam(device.parameters(), lr=0.01), metric=sign_accuracy)
    history = trainer.fit(X, Y, epochs=3, batch_size=4, rng=0, progress=False, validation_data=(X, Y))
    assert READS == [] and trainer.loss.calls == 3 * 4 + 3 * 1           # 12 steps, 3 validations: no read
    assert history.loss == expected.loss and history.val_loss == expected.val_loss
    assert history.sign_accuracy == expected.sign_accuracy and history.val_sign_accuracy == expected.val_sign_accuracy


def test_accuracy_value_is_accuracy_left_as_a_float64_scalar():
    pred, labels = np.array([[0.1, 0.9], [0.8, 0.2], [0.3, 0.7]]), np.array([1, 0, 0])
    assert type(nl.accuracy.value(pred, labels)) is np.float64 and nl.accuracy.value(pred, labels) == 2 / 3
    assert type(nl.accuracy(pred, labels)) is float


def assert_weights_of(model, reference):
    for p, q in zip(model.parameters(), reference.parameters()):
        np.testing.assert_array_equal(np.asarray(p.data), q.data)


@pytest.mark.parametrize("device, guard, nan_at, message, clean_epochs", [
    # every 3 steps on the CPU: NaN at step 6 (epoch 2, batch 2), read at once: back to epoch 1's end
    ("cpu", DivergenceGuard(check_every=3), 6, r"loss became nan in steps 5 to 6 \(read at epoch 2, batch 2: the "
     r"loss is read every 3 steps\); weights and optimizer state restored to the end of epoch 1", 1),
    # NaN at step 2, read at step 3: back to the start
    ("cpu", DivergenceGuard(check_every=3), 2, r"in steps 1 to 3 .*restored to the start of training", 0),
    # on the device the default reads at the epoch's end (4 batches < 50): NaN at step 7, back to epoch 1's end
    ("strict", None, 7, r"loss became nan in steps 5 to 8 \(read at the end of epoch 2: the loss is read every "
     r"50 steps\); .*restored to the end of epoch 1", 1),
])
def test_reading_every_k_steps_still_rolls_back_to_a_finite_point(device, guard, nan_at, message, clean_epochs):
    X, Y = regression()
    model, clean = net().to(device), net()
    trainer = nl.Trainer(model, DeviceEuclidean(nan_at), nl.SGD(model.parameters(), lr=0.05, momentum=0.9))
    with pytest.raises(nl.TrainingDivergedError, match=message) as caught:
        trainer.fit(X, Y, epochs=4, batch_size=4, shuffle=False, progress=False,
                    callbacks=[guard] if guard is not None else [])
    assert caught.value.history.epochs == clean_epochs
    reference = nl.Trainer(clean, nl.EuclideanLoss(), nl.SGD(clean.parameters(), lr=0.05, momentum=0.9))
    if clean_epochs:
        reference.fit(X, Y, epochs=clean_epochs, batch_size=4, shuffle=False, progress=False)
    assert_weights_of(model, clean)
    assert trainer.optimizer.steps == reference.optimizer.steps == 4 * clean_epochs


def test_checked_value_skips_the_checks_that_read_the_targets_and_fit_uses_it():
    """On a GPU each label check (range, whole numbers, rows summing to 1) waits for the device; fit has
    checked all of Y before the first step, so its batches go through ``checked_value``, which keeps the
    shape checks and skips those reads."""
    loss, logits = nl.SoftmaxCrossEntropy(), np.random.default_rng(3).normal(size=(3, 4))
    with pytest.raises(ValueError, match="whole numbers"):
        loss.value(logits, np.array([0.0, 1.5, 2.0]))
    assert loss.checked_value(logits, np.array([0.0, 1.5, 2.0])) == loss.value(logits, np.array([0, 1, 2]))
    rows = np.full((3, 4), 0.5)                                       # rows summing to 2
    with pytest.raises(ValueError, match="class probabilities"):
        loss.value(logits, rows)
    assert np.isfinite(loss.checked_value(logits, rows))
    with pytest.raises(nl.ShapeError, match="labels"):
        loss.checked_value(logits, np.array([0, 1]))                  # shapes are still checked

    class Spy(nl.SoftmaxCrossEntropy):
        calls = {"value": 0, "checked_value": 0}

        def value(self, pred, target):
            Spy.calls["value"] += 1
            return super().value(pred, target)

        def checked_value(self, pred, target):
            Spy.calls["checked_value"] += 1
            return super().checked_value(pred, target)

    X = np.random.default_rng(4).normal(size=(12, 2))
    model = nl.Sequential(nl.Linear(2, 3, rng=0))
    nl.Trainer(model, Spy(), nl.SGD(model.parameters(), lr=0.1)).fit(X, np.arange(12) % 3, epochs=2, batch_size=4,
                                                                      progress=False)
    assert Spy.calls == {"value": 0, "checked_value": 6}


def test_evaluate_checks_the_labels_it_is_given():
    """Only fit checks all of Y up front; evaluate's own labels go through the loss's checks."""
    X = np.random.default_rng(5).normal(size=(4, 2))
    trainer = nl.Trainer(nl.Sequential(nl.Linear(2, 3, rng=0)), nl.SoftmaxCrossEntropy(), None)
    with pytest.raises(ValueError, match="whole numbers"):
        trainer.evaluate(X, np.array([0.5, 1.0, 0.0, 1.0]))
    with pytest.raises(ValueError, match="out of range"):
        trainer.evaluate(X, np.array([0, 5, 1, 2]))
