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
