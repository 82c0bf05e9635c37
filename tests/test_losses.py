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
    ([[0], [1]], nl.ShapeError, r"expected 2 labels \(shape \(2,\)\) or 2×3 target rows \(shape \(2, 3\)\)"),
    ([[0.5, 0.5, 0.5], [1.0, 0.0, 0.0]], ValueError, r"target rows must be class probabilities"),
    ([[2.0, -1.0, 0.0], [1.0, 0.0, 0.0]], ValueError, r"target rows must be class probabilities"),
])
def test_bad_labels_give_clear_errors(labels, error, message):
    with pytest.raises(error, match=message):
        nl.SoftmaxCrossEntropy().forward(np.zeros((2, 3)), np.array(labels))


def test_logits_need_a_class_axis_and_no_empty_dimension():
    with pytest.raises(nl.ShapeError, match=r"expected scores of shape \(N, V\) or \(N, …, V\) \(classes on the last "
                                            r"axis\), every dimension ≥ 1, got shape \(3,\)"):
        nl.SoftmaxCrossEntropy().forward(np.zeros(3), [0])
    with pytest.raises(nl.ShapeError, match=r"got shape \(0, 3\)"):           # an empty batch has no mean
        nl.SoftmaxCrossEntropy().forward(np.zeros((0, 3)), np.zeros(0, int))
    with pytest.raises(nl.ShapeError, match=r"got shape \(2, 0, 3\)"):        # sequences of no steps: no mean
        nl.SoftmaxCrossEntropy().forward(np.zeros((2, 0, 3)), np.zeros((2, 0), int))


# -- sequences: N×T×V scores, N×T labels, ignore_index ---------------------------------------------

def test_sequence_cross_entropy_by_hand():
    """One sequence of two steps, two classes: scores [1, 2] then [0, 0], labels 1 then 0.
    Step 1: −log(e²/(e + e²)) = log(1 + 1/e); step 2: −log ½ = log 2; M = 2 labels."""
    e = math.e
    Z = np.array([[[1.0, 2.0], [0.0, 0.0]]])                               # N×T×V = 1×2×2
    loss = nl.SoftmaxCrossEntropy()
    assert loss.forward(Z, np.array([[1, 0]])) == pytest.approx((math.log(1 + 1 / e) + math.log(2)) / 2, rel=1e-15)
    # δZ_k = (P_k − onehot(y_k)) / M, M = 2
    np.testing.assert_allclose(loss.backward(), [[[1 / (1 + e) / 2, -1 / (1 + e) / 2], [-0.25, 0.25]]], rtol=1e-15)
    ignoring = nl.SoftmaxCrossEntropy(ignore_index=-100)                    # step 2 is padding: M = 1
    assert ignoring.forward(Z, np.array([[1, -100]])) == pytest.approx(math.log(1 + 1 / e), rel=1e-15)
    np.testing.assert_allclose(ignoring.backward(), [[[1 / (1 + e), -1 / (1 + e)], [0.0, 0.0]]], rtol=1e-15)


def test_a_sequence_is_its_positions_as_rows(rng):
    """N×T×V with N×T labels equals (N·T)×V with N·T labels: value and gradient (reshaped)."""
    Z, labels = rng.normal(size=(3, 5, 4)), rng.integers(0, 4, size=(3, 5))
    loss = nl.SoftmaxCrossEntropy()
    value, grad = loss.forward(Z, labels), loss.backward()
    assert grad.shape == (3, 5, 4)
    assert value == pytest.approx(loss.forward(Z.reshape(15, 4), labels.reshape(15)), rel=1e-14)
    np.testing.assert_allclose(grad, loss.backward().reshape(3, 5, 4), rtol=1e-14, atol=1e-17)
    deeper = nl.SoftmaxCrossEntropy().forward(Z.reshape(3, 5, 1, 4), labels.reshape(3, 5, 1))   # N×…×V
    assert deeper == pytest.approx(value, rel=1e-14)
    assert loss.forward(Z, np.eye(4)[labels]) == pytest.approx(value, rel=1e-14)        # one-hot rows, N×T×V
    np.testing.assert_allclose(loss.backward(), grad, rtol=1e-14, atol=1e-17)


def test_ignored_labels_add_neither_loss_nor_gradient(rng):
    Z, labels = rng.normal(size=(4, 6, 5)), rng.integers(0, 5, size=(4, 6))
    pad = rng.random(size=(4, 6)) < 0.3
    padded = np.where(pad, -100, labels)
    loss = nl.SoftmaxCrossEntropy(ignore_index=-100)
    value, grad = loss.forward(Z, padded), loss.backward()
    kept = nl.SoftmaxCrossEntropy()                                        # the kept positions alone
    assert value == pytest.approx(kept.forward(Z[~pad], labels[~pad]), rel=1e-14)
    np.testing.assert_allclose(grad[~pad], kept.backward(), rtol=1e-14, atol=1e-17)
    assert np.all(grad[pad] == 0)
    # the loss ignores the *values* at padded positions: changing them changes nothing
    Z2 = Z.copy()
    Z2[pad] = rng.normal(size=(pad.sum(), 5)) * 100
    assert loss.forward(Z2, padded) == value


def test_ignore_index_may_be_a_class_inside_the_range(rng):
    """Padding id 0 (a vocabulary's first entry): labels 0 are skipped, not errors."""
    Z, labels = rng.normal(size=(2, 4, 3)), np.array([[0, 1, 2, 0], [2, 2, 0, 1]])
    value = nl.SoftmaxCrossEntropy(ignore_index=0).forward(Z, labels)
    assert value == pytest.approx(nl.SoftmaxCrossEntropy().forward(Z[labels != 0], labels[labels != 0]), rel=1e-14)


def test_all_labels_ignored_gives_zero_loss_and_gradient(rng):
    """M = 0: L = 0 and δZ = 0 (PyTorch's 0/0 = nan would look like a diverging loss to the Trainer)."""
    loss = nl.SoftmaxCrossEntropy(ignore_index=-1)
    with np.errstate(all="raise"):
        assert loss.forward(rng.normal(size=(2, 3, 4)), np.full((2, 3), -1)) == 0.0
        grad = loss.backward()
    assert grad.shape == (2, 3, 4) and np.all(grad == 0)


@pytest.mark.parametrize("ignore_index", [None, -100])
def test_sequence_loss_passes_gradcheck(ignore_index, rng):
    Z, labels = rng.normal(size=(2, 3, 4)), rng.integers(0, 4, size=(2, 3))
    if ignore_index is not None:
        labels[0, 1] = labels[1, 2] = ignore_index
    assert nl.gradcheck(nl.SoftmaxCrossEntropy(ignore_index=ignore_index), Z, labels).passed


def test_sequence_loss_in_float32_and_large_scores(rng):
    Z, labels = rng.normal(size=(4, 8, 81)), rng.integers(0, 81, size=(4, 8))
    labels[0, :3] = -100
    loss = nl.SoftmaxCrossEntropy(ignore_index=-100)
    value, grad = loss.forward(Z, labels), loss.backward()
    value32 = loss.forward(Z.astype(np.float32), labels)
    assert loss.backward().dtype == np.float32
    assert value32 == pytest.approx(value, rel=1e-6)
    with np.errstate(over="raise", divide="raise", invalid="raise"):  # underflow to 0 is fine
        big = nl.SoftmaxCrossEntropy(ignore_index=-100).forward(Z * 1e4, labels)
    assert math.isfinite(big) and big > 0


def test_the_loss_leaves_its_inputs_alone_and_a_failed_call_keeps_the_cache(rng):
    Z, labels = rng.normal(size=(2, 3, 4)), np.array([[0, -100, 3], [1, 2, -100]])
    Z0, labels0 = Z.copy(), labels.copy()
    loss = nl.SoftmaxCrossEntropy(ignore_index=-100)
    loss.forward(Z, labels)
    grad = loss.backward()
    np.testing.assert_array_equal(Z, Z0)
    np.testing.assert_array_equal(labels, labels0)
    with pytest.raises(ValueError, match="out of range"):
        loss.forward(Z * 2, np.array([[0, 4, 3], [1, 2, -100]]))
    np.testing.assert_array_equal(loss.backward(), grad)                   # the previous call's, unchanged


@pytest.mark.parametrize("labels, error, message", [
    ([[0, 1, 2], [1, 3, 0]], ValueError,
     r"label 3 at position \(1, 1\) out of range for 3 classes \(labels must be in \[0, 2\], or ignore_index=-100\)"),
    ([[0, 1, 2], [1, 0, -1]], ValueError, r"label -1 at position \(1, 2\) out of range"),
    ([[0, 1, 2], [1.5, 0, 0]], ValueError, r"labels must be whole numbers \(class indices\), got 1.5 at position \(1, 0\)"),
    ([[0, np.nan, 2], [1, 0, 0]], ValueError, r"labels must be whole numbers .* at position \(0, 1\)"),
    ([[True, False, True], [True, True, True]], TypeError, r"labels must be integers"),
    ([[0, 1], [1, 0]], nl.ShapeError,
     r"expected labels of shape \(2, 3\) \(one per position\) or probability rows of shape \(2, 3, 3\) for "
     r"scores of shape \(2, 3, 3\), got target shape \(2, 2\)"),
    ([0, 1], nl.ShapeError, r"labels of shape \(2, 3\) .* got target shape \(2,\)"),
    (np.full((2, 3, 3), 1 / 3), ValueError, r"ignore_index applies to class labels, not to rows of class probabilities"),
])
def test_bad_sequence_labels_give_clear_errors(labels, error, message):
    loss = nl.SoftmaxCrossEntropy(ignore_index=-100)
    with pytest.raises(error, match=message):
        loss.forward(np.zeros((2, 3, 3)), np.array(labels))
    with pytest.raises(error, match=message):                                # the Trainer's check, before training
        loss.check_target(np.array(labels), (3, 3))


def test_check_target_takes_sequences_and_names_the_position():
    loss = nl.SoftmaxCrossEntropy()
    loss.check_target(np.zeros((5, 7), dtype=np.int64), (7, 81))              # N×T labels, samples T×V
    loss.check_target(np.zeros(5, dtype=np.uint8), (81,))
    Y = np.zeros((5, 7), dtype=np.int64)
    Y[3, 6] = 81
    with pytest.raises(ValueError, match=r"label 81 at position \(3, 6\) out of range for 81 classes "
                                         r"\(labels must be in \[0, 80\]\)"):
        loss.check_target(Y, (7, 81))
    with pytest.raises(nl.ShapeError, match="expected scores of shape"):
        loss.check_target(Y, ())


@pytest.mark.parametrize("bad", [1.5, "-100", True, [0]])
def test_ignore_index_must_be_an_integer(bad):
    with pytest.raises(TypeError, match=r"SoftmaxCrossEntropy: ignore_index must be an integer .* or None"):
        nl.SoftmaxCrossEntropy(ignore_index=bad)
    assert repr(nl.SoftmaxCrossEntropy(ignore_index=np.int64(-100))) == "SoftmaxCrossEntropy(ignore_index=-100)"
    assert repr(nl.SoftmaxCrossEntropy()) == "SoftmaxCrossEntropy()"


def test_perplexity_is_the_exp_of_the_mean_cross_entropy(rng):
    assert nl.perplexity(np.zeros((3, 4, 7)), np.zeros((3, 4), int)) == pytest.approx(7.0, rel=1e-15)  # uniform
    Z, labels = rng.normal(size=(2, 5, 6)), rng.integers(0, 6, size=(2, 5))
    labels[1, 3:] = -100
    value = nl.SoftmaxCrossEntropy(ignore_index=-100).forward(Z, labels)
    assert nl.perplexity(Z, labels, ignore_index=-100) == pytest.approx(math.exp(value), rel=1e-15)
    assert nl.perplexity(np.array([[0.0, 1e6]]), [0]) == math.inf                          # e^1e6: no OverflowError
    assert isinstance(nl.perplexity(Z, labels, -100), float)


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
