"""fit, evaluate and predict with several inputs (X a tuple of arrays) and several outputs."""
import numpy as np
import pytest

import nnlayers as nl


class TwoInputLinear(nl.Module):
    """Z = X₁ W₁ + X₂ W₂: two inputs of their own widths, one output."""

    cache_names = ("_X1", "_X2")

    def __init__(self, in1, in2, out, rng=0):
        super().__init__()
        rng = np.random.default_rng(rng)
        self.W1 = self.add_parameter("W1", rng.normal(size=(in1, out)) * 0.1)
        self.W2 = self.add_parameter("W2", rng.normal(size=(in2, out)) * 0.1)
        self._X1 = self._X2 = None

    def forward(self, X1, X2):
        self._X1, self._X2 = X1, X2
        return X1 @ self.W1.data + X2 @ self.W2.data

    def backward(self, dZ):
        """δW₁ += X₁ᵀ δZ, δW₂ += X₂ᵀ δZ; returns (δX₁, δX₂) = (δZ W₁ᵀ, δZ W₂ᵀ)."""
        self.W1.grad += self._X1.T @ dZ
        self.W2.grad += self._X2.T @ dZ
        return dZ @ self.W1.data.T, dZ @ self.W2.data.T


def two_input_problem(n=64):
    rng = np.random.default_rng(3)
    X1, X2 = rng.normal(size=(n, 3)), rng.normal(size=(n, 2))
    Y = X1 @ np.array([[1.0], [-1.0], [0.5]]) + X2 @ np.array([[2.0], [0.25]])
    return X1, X2, Y


def test_a_two_input_model_trains_evaluates_and_predicts():
    X1, X2, Y = two_input_problem()
    model = TwoInputLinear(3, 2, 1)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.01))
    history = trainer.fit((X1, X2), Y, epochs=40, batch_size=16, rng=0, validation_data=((X1, X2), Y),
                          progress=False)
    assert history.loss[-1] < history.loss[0] / 100
    assert history.val_loss[-1] == pytest.approx(trainer.evaluate((X1, X2), Y, batch_size=10)[0], rel=1e-12)
    predicted = trainer.predict((X1, X2), batch_size=7)
    np.testing.assert_allclose(predicted, X1 @ model.W1.data + X2 @ model.W2.data, rtol=1e-13)
    assert trainer.predict((X1[:0], X2[:0])).shape == (0, 1)


def test_full_batch_and_minibatches_slice_the_inputs_together():
    """One epoch at lr 0 sees every sample once, each row of X₁ beside its own row of X₂."""
    X1, X2, Y = two_input_problem(10)
    model = TwoInputLinear(3, 2, 1)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.0))
    total = nl.EuclideanLoss()(model.forward(X1, X2), Y)
    for batch_size in (None, 3):
        history = trainer.fit((X1, X2), Y, epochs=1, batch_size=batch_size, rng=0, progress=False)
        assert history.loss[0] == pytest.approx(total, rel=1e-12)


def test_inputs_of_different_lengths_are_refused_naming_the_shapes():
    X1, X2, Y = two_input_problem(8)
    model = TwoInputLinear(3, 2, 1)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.1))
    message = (r"fit: the arrays of X need the same number of samples \(first dimension\), "
               r"got shapes \(8, 3\), \(7, 2\)")
    with pytest.raises(ValueError, match=message):
        trainer.fit((X1, X2[:7]), Y, epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"X and Y need the same number of samples.*\(\(8, 3\), \(8, 2\)\) and \(7, 1\)"):
        trainer.fit((X1, X2), Y[:7], epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"^predict: the arrays of X need the same number of samples"):
        trainer.predict((X1[:3], X2))
    with pytest.raises(ValueError, match=r"^fit \(validation_data\): the arrays of X need"):
        trainer.fit((X1, X2), Y, epochs=1, progress=False, validation_data=((X1[:3], X2), Y))
    bad = X2.copy()
    bad[5, 1] = np.nan
    with pytest.raises(ValueError, match=r"^fit: X\[1\] holds NaN or infinite values, first at sample 5 \(of 8\)"):
        trainer.fit((X1, bad), Y, epochs=1, progress=False)
    assert trainer.optimizer.steps == 0


def test_augment_gets_and_returns_the_tuple():
    X1, X2, Y = two_input_problem(8)
    model = TwoInputLinear(3, 2, 1)
    trainer = nl.Trainer(model, nl.EuclideanLoss(), nl.SGD(model.parameters(), lr=0.01))
    seen = []

    def flip_second(X, rng):
        seen.append(tuple(x.shape for x in X))
        return X[0], -X[1]
    trainer.fit((X1, X2), Y, epochs=1, batch_size=4, rng=0, progress=False, augment=flip_second)
    assert seen == [((4, 3), (4, 2))] * 2
    with pytest.raises(ValueError, match=r"turned a batch of shape \(\(4, 3\), \(4, 2\)\) into \(\(4, 3\),\)"):
        trainer.fit((X1, X2), Y, epochs=1, batch_size=4, rng=0, progress=False, augment=lambda X, rng: X[:1])


class Split(nl.Module):
    """Two outputs from one input: (X W, X W)·(1, −1); backward sums the two gradients."""

    def __init__(self):
        super().__init__()
        self.W = self.add_parameter("W", np.full((2, 1), 0.1))
        self._X = None

    def forward(self, X):
        self._X = X
        Z = X @ self.W.data
        return Z, -Z

    def backward(self, dZ1, dZ2):
        dZ = dZ1 - dZ2
        self.W.grad += self._X.T @ dZ
        return dZ @ self.W.data.T


class PairLoss(nl.Loss):
    """The Euclidean loss of each output against its own target, summed: pred and target are pairs."""

    reduction = "sum"

    def value(self, pred, target):
        self.parts = [nl.EuclideanLoss() for _ in pred]
        return sum(part.value(p, t) for part, p, t in zip(self.parts, pred, target))

    def backward(self):
        return tuple(part.backward() for part in self.parts)


def test_a_model_with_two_outputs_gives_the_loss_both():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(12, 2))
    Y = X @ np.array([[1.0], [2.0]])
    model = Split()
    trainer = nl.Trainer(model, PairLoss(), nl.SGD(model.parameters(), lr=0.02))
    history = trainer.fit(X, (Y, -Y), epochs=60, batch_size=4, rng=0, progress=False, validation_data=(X, (Y, -Y)))
    assert history.loss[-1] < history.loss[0] / 100 and history.val_loss[-1] < history.val_loss[0] / 100
    np.testing.assert_allclose(model.W.data, [[1.0], [2.0]], atol=1e-2)
    Z1, Z2 = trainer.predict(X, batch_size=5)
    np.testing.assert_array_equal(Z1, -Z2)
    assert Z1.shape == (12, 1)
