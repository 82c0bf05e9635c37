"""Dropout: modes, scaling, reproducibility, finite differences and errors."""


import numpy as np
import pytest
import nnlayers as nl


def test_dropout_eval_mode_is_the_identity(rng):
    dropout = nl.Dropout(0.5, rng=0).eval()
    X = rng.normal(size=(4, 5))
    np.testing.assert_array_equal(dropout.forward(X), X)
    dZ = rng.normal(size=(4, 5))
    np.testing.assert_array_equal(dropout.backward(dZ), dZ)


def test_dropout_training_zeros_and_scales(rng):
    p = 0.3
    dropout = nl.Dropout(p, rng=0)
    X = np.ones((200, 500))
    Z = dropout.forward(X)
    kept = Z != 0
    assert abs(1 - kept.mean() - p) < 0.005                          # zeros fraction ≈ p (n = 100 000)
    np.testing.assert_allclose(Z[kept], 1 / (1 - p), rtol=1e-15)     # survivors scaled by 1/(1 − p)
    assert Z.mean() == pytest.approx(1.0, abs=0.01)                  # E[Z] = X
    dZ = rng.normal(size=X.shape)
    dX = dropout.backward(dZ)                                        # δX = M ⊙ δZ: the same mask
    np.testing.assert_array_equal(dX[~kept], 0.0)
    np.testing.assert_allclose(dX[kept], dZ[kept] / (1 - p), rtol=1e-15)


def test_dropout_mean_is_preserved_over_many_samples(rng):
    dropout = nl.Dropout(0.5, rng=1)
    X = rng.normal(size=(3, 4))
    average = np.mean([dropout.forward(X) for _ in range(20000)], axis=0)
    np.testing.assert_allclose(average, X, atol=0.05)


def test_dropout_is_reproducible_with_a_seed_and_resampled_each_forward():
    X = np.ones((10, 10))
    a, b = nl.Dropout(0.5, rng=42), nl.Dropout(0.5, rng=42)
    first = a.forward(X)
    np.testing.assert_array_equal(first, b.forward(X))
    second = a.forward(X)
    assert not np.array_equal(first, second)                         # a new mask every forward
    np.testing.assert_array_equal(second, b.forward(X))             # … the same sequence of masks


class FixedMaskDropout(nl.Dropout):
    """The mask drawn from the same seed on every forward: what gradcheck needs (see Dropout's docstring)."""

    def forward(self, X):
        self.rng = np.random.default_rng(0)
        return super().forward(X)


@pytest.mark.parametrize("p", [0.2, 0.5])
def test_dropout_training_path_passes_gradcheck(p, rng):
    report = nl.gradcheck(FixedMaskDropout(p), rng.normal(size=(4, 6)))
    assert report.passed
    assert nl.gradcheck(nl.Dropout(p).eval(), rng.normal(size=(4, 6))).passed


def test_dropout_p_zero_is_the_identity_in_training(rng):
    X = rng.normal(size=(3, 3))
    np.testing.assert_array_equal(nl.Dropout(0.0).forward(X), X)


def test_dropout_keeps_float32(rng):
    dropout = nl.Dropout(0.5, rng=0)
    Z = dropout.forward(rng.normal(size=(3, 4)).astype(np.float32))
    assert Z.dtype == dropout.backward(np.ones((3, 4), np.float32)).dtype == np.float32


@pytest.mark.parametrize("p, error", [(-0.1, ValueError), (1.0, ValueError), (1.5, ValueError),
                                      ("0.5", TypeError), (True, TypeError), (None, TypeError),
                                      (float("nan"), ValueError)])
def test_dropout_rejects_bad_p(p, error):
    with pytest.raises(error, match=r"Dropout: p must be a number in \[0, 1\)"):
        nl.Dropout(p)


def test_dropout_errors_and_repr():
    with pytest.raises(RuntimeError, match="backward called before forward"):
        nl.Dropout(0.5).backward(np.ones(3))
    dropout = nl.Dropout(0.25)
    dropout.forward(np.ones((2, 2)))
    with pytest.raises(nl.ShapeError, match=r"Dropout\(p=0.25\): backward expected dZ of shape \(2, 2\)"):
        dropout.backward(np.ones((2, 3)))
    assert repr(nl.Dropout(0.25)) == "Dropout(p=0.25)"
