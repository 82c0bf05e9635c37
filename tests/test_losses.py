"""EuclideanLoss, softmax, log_softmax and SoftmaxCrossEntropy: hand values, reductions, stability, label checks."""
import math

import numpy as np
import pytest
import nnlayers as nl


def test_euclidean_loss_by_hand():
    loss = nl.EuclideanLoss()
    pred = np.array([[0.5], [0.25]])
    target = np.array([[1.0], [0.0]])
    value = loss.forward(pred, target)
    assert isinstance(value, float)
    assert value == 0.5 * (0.5 ** 2 + 0.25 ** 2) == 0.15625             # ½ Σ (Yᵖ − Y)², no 1/N
    np.testing.assert_array_equal(loss.backward(), [[-0.5], [0.25]])    # δYᵖ = Yᵖ − Y


def test_euclidean_loss_sums_over_batch_and_features():
    pred = np.ones((3, 2))
    assert nl.EuclideanLoss()(pred, np.zeros((3, 2))) == 3.0             # ½ · 6 · 1²


def test_backward_is_fresh_each_call():
    loss = nl.EuclideanLoss()
    loss.forward(np.array([[1.0]]), np.array([[0.0]]))
    first = loss.backward()
    first *= 100
    np.testing.assert_array_equal(loss.backward(), [[1.0]])


def test_shape_mismatch_never_broadcasts():
    with pytest.raises(nl.ShapeError, match=r"EuclideanLoss\(\): prediction shape \(4, 1\) and target shape \(4,\) differ"):
        nl.EuclideanLoss().forward(np.zeros((4, 1)), np.zeros(4))


def test_integer_targets_do_not_wrap():
    pred = np.array([[0, 255]], dtype=np.uint8)
    target = np.array([[255, 0]], dtype=np.uint8)                        # uint8 0 − 255 would wrap to 1
    assert nl.EuclideanLoss().forward(pred, target) == 255.0 ** 2


def test_backward_before_forward():
    with pytest.raises(RuntimeError, match=r"EuclideanLoss\(\): backward called before forward"):
        nl.EuclideanLoss().backward()


def test_softmax_cross_entropy_by_hand():
    """Logits [1, 2] (one sample, two classes): P = [1/(1 + e), e/(1 + e)]."""
    loss = nl.SoftmaxCrossEntropy()
    X = np.array([[1.0, 2.0]])
    e = math.e
    value = loss.forward(X, np.array([1]))
    assert isinstance(value, float)
    assert value == pytest.approx(math.log(1 + 1 / e), rel=1e-15)          # −log(e/(1 + e))
    # δX = (P − Y)/N with Y = [0, 1], N = 1
    np.testing.assert_allclose(loss.backward(), [[1 / (1 + e), -1 / (1 + e)]], rtol=1e-15)
    assert loss.forward(X, np.array([0])) == pytest.approx(math.log(1 + e), rel=1e-15)   # −log(1/(1 + e))
    np.testing.assert_allclose(loss.backward(), [[1 / (1 + e) - 1, e / (1 + e)]], rtol=1e-15)


def test_reduction_is_the_mean_over_the_batch():
    loss = nl.SoftmaxCrossEntropy()
    one = loss.forward(np.array([[1.0, 2.0]]), [1])
    grad_one = loss.backward()
    three = loss.forward(np.array([[1.0, 2.0]] * 3), [1, 1, 1])
    assert three == pytest.approx(one, rel=1e-15)                             # mean, not sum
    np.testing.assert_allclose(loss.backward(), np.repeat(grad_one, 3, axis=0) / 3, rtol=1e-15)  # 1/N


def test_one_hot_and_soft_targets(rng):
    X = rng.normal(size=(5, 4))
    labels = np.array([0, 3, 1, 1, 2])
    loss = nl.SoftmaxCrossEntropy()
    by_label = loss.forward(X, labels)
    grad_label = loss.backward()
    one_hot = np.eye(4)[labels]
    assert loss.forward(X, one_hot) == pytest.approx(by_label, rel=1e-14)
    np.testing.assert_allclose(loss.backward(), grad_label, rtol=1e-14, atol=1e-16)
    assert loss.forward(X, one_hot.astype(np.int64)) == pytest.approx(by_label, rel=1e-14)
    soft = np.full((5, 4), 0.25)                                             # uniform: mean of −log P
    expected = -np.mean(np.log(nl.softmax(X)), axis=1).mean()
    assert loss.forward(X, soft) == pytest.approx(expected, rel=1e-14)


@pytest.mark.parametrize("shape", [(1, 2), (4, 3), (3, 10), (2, 1)])
def test_passes_gradcheck(shape, rng):
    X = rng.normal(size=shape)
    labels = rng.integers(0, shape[1], size=shape[0])
    assert nl.gradcheck(nl.SoftmaxCrossEntropy(), X, labels).passed
    soft = rng.dirichlet(np.ones(shape[1]), size=shape[0])
    assert nl.gradcheck(nl.SoftmaxCrossEntropy(), X, soft).passed


def test_large_logits_do_not_overflow():
    loss = nl.SoftmaxCrossEntropy()
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        value = loss.forward(np.array([[1e4, 0.0, -1e4], [0.0, 1e4, 1e4]]), [2, 1])
        grad = loss.backward()
    # sample 1: −log P₂ = 2·10⁴ exactly (the others vanish); sample 2: −log ½
    assert value == pytest.approx((2e4 + math.log(2)) / 2, rel=1e-15)
    np.testing.assert_allclose(grad, [[0.5, 0, -0.5], [0, -0.25, 0.25]], atol=1e-15)


def test_float32_logits_give_float32_gradient(rng):
    loss = nl.SoftmaxCrossEntropy()
    X = rng.normal(size=(4, 3)).astype(np.float32)
    loss.forward(X, [0, 1, 2, 0])
    assert loss.backward().dtype == np.float32
    assert nl.softmax(X).dtype == nl.log_softmax(X).dtype == np.float32


def test_backward_is_fresh_and_before_forward_fails():
    loss = nl.SoftmaxCrossEntropy()
    with pytest.raises(RuntimeError, match=r"SoftmaxCrossEntropy\(\): backward called before forward"):
        loss.backward()
    loss.forward(np.array([[0.0, 0.0]]), [0])
    first = loss.backward()
    first *= 100
    np.testing.assert_allclose(loss.backward(), [[-0.5, 0.5]])


def test_float_labels_holding_whole_numbers_are_accepted():
    loss = nl.SoftmaxCrossEntropy()
    X = np.array([[1.0, 2.0, 3.0]])
    assert loss.forward(X, np.array([2.0])) == loss.forward(X, np.array([2]))


@pytest.mark.parametrize("labels, error, message", [
    ([0, 3], ValueError, r"label 3 at position 1 out of range for 3 classes \(labels must be in \[0, 2\]\)"),
    ([-1, 0], ValueError, r"label -1 at position 0 out of range"),
    ([0, 1, 2], nl.ShapeError, r"got 2 rows of logits but 3 labels"),
    ([0.0, 1.5], ValueError, r"labels must be whole numbers \(class indices\), got 1.5 at position 1"),
    ([0.0, np.nan], ValueError, r"labels must be whole numbers"),
    ([True, False], TypeError, r"labels must be integers"),
    (["a", "b"], TypeError, r"labels must be integers"),
    ([[0], [1]], nl.ShapeError, r"expected 2 labels \(shape \(2,\)\) or 2×3 target rows"),
    ([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0]], ValueError, r"target rows must be class probabilities"),
    ([[2.0, -1.0, 0.0], [1.0, 0.0, 0.0]], ValueError, r"target rows must be class probabilities"),
])
def test_bad_labels_give_clear_errors(labels, error, message):
    with pytest.raises(error, match=message):
        nl.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array(labels))


def test_logits_must_be_a_matrix():
    with pytest.raises(nl.ShapeError, match=r"expected logits of shape \(N, K\) with N, K ≥ 1, got shape \(3,\)"):
        nl.SoftmaxCrossEntropy().forward(np.zeros(3), [0])
    with pytest.raises(nl.ShapeError, match=r"got shape \(0, 3\)"):           # an empty batch has no mean
        nl.SoftmaxCrossEntropy().forward(np.zeros((0, 3)), np.zeros(0, int))


# -- softmax and log_softmax ----------------------------------------------------------------------

def test_softmax_values(rng):
    P = nl.softmax(np.array([[0.0, math.log(3.0)]]))
    np.testing.assert_allclose(P, [[0.25, 0.75]], rtol=1e-15)
    X = rng.normal(size=(5, 7)) * 50
    P = nl.softmax(X)
    np.testing.assert_allclose(P.sum(axis=1), 1.0, rtol=1e-14)
    np.testing.assert_allclose(np.log(P), nl.log_softmax(X), rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(nl.softmax(X).argmax(axis=1), X.argmax(axis=1))


def test_softmax_is_stable_and_takes_an_axis():
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        np.testing.assert_allclose(nl.softmax(np.array([[1000.0, 1000.0]])), [[0.5, 0.5]])
        np.testing.assert_allclose(nl.log_softmax(np.array([[1000.0, 0.0]])), [[0.0, -1000.0]])
    np.testing.assert_allclose(nl.softmax(np.array([[0.0], [0.0]]), axis=0), [[0.5], [0.5]])
    np.testing.assert_allclose(nl.softmax([[1, 1]]), [[0.5, 0.5]])          # integer input accepted
    with pytest.raises(TypeError, match="softmax: expected a numeric array"):
        nl.softmax(np.array([["a"]]))
