import numpy as np
import pytest

import nnlayers as nl
from nnlayers.augment import Compose, RandomCrop, RandomHorizontalFlip


def all_crops(image, padding):
    """Every shift of ``image`` (…×H×W) by up to ``padding`` pixels, zero-filled, keyed by (dy, dx)."""
    height, width = image.shape[-2:]
    crops = {}
    for dy in range(-padding, padding + 1):
        for dx in range(-padding, padding + 1):
            shifted = np.zeros_like(image)
            # output pixel (i, j) shows input pixel (i + dy, j + dx) where that exists
            rows_out = slice(max(0, -dy), min(height, height - dy))
            cols_out = slice(max(0, -dx), min(width, width - dx))
            rows_in = slice(max(0, dy), min(height, height + dy))
            cols_in = slice(max(0, dx), min(width, width + dx))
            shifted[..., rows_out, cols_out] = image[..., rows_in, cols_in]
            crops[dy, dx] = shifted
    return crops


def offset_of(crop, image, padding):
    matches = [key for key, shifted in all_crops(image, padding).items() if np.array_equal(shifted, crop)]
    assert len(matches) == 1, matches
    return matches[0]


def test_random_crop_shifts_each_image_whole_with_zero_fill_and_draws_every_offset():
    rng = np.random.default_rng(0)
    X = rng.integers(1, 255, size=(400, 3, 5, 6)).astype(np.float64)   # no zeros: fill is visible
    before = X.copy()
    out = RandomCrop(2)(X, rng)
    np.testing.assert_array_equal(X, before)                              # the input is untouched
    assert out.shape == X.shape and out.dtype == X.dtype and not np.shares_memory(out, X)
    offsets = [offset_of(out[n], X[n], 2) for n in range(len(X))]          # all channels moved together
    counts = {key: offsets.count(key) for key in set(offsets)}
    assert len(counts) == 25 and min(counts.values()) >= 5                # 400 draws over 25 offsets


def test_random_crop_draws_row_then_column_offsets_from_the_rng():
    image = np.arange(1.0, 13.0).reshape(1, 1, 3, 4)
    rows, columns = np.random.default_rng(5).integers(0, 5, size=(2, 1))  # what RandomCrop(2) draws
    out = RandomCrop(2)(image, np.random.default_rng(5))
    padded = np.zeros((1, 1, 7, 8))
    padded[..., 2:5, 2:6] = image
    np.testing.assert_array_equal(out, padded[..., rows[0]:rows[0] + 3, columns[0]:columns[0] + 4])
    assert (rows[0], columns[0]) != (2, 2)                                 # this seed moves the image


def test_random_crop_on_n_h_w_batches_fill_and_no_padding():
    rng = np.random.default_rng(1)
    X = np.ones((50, 4, 4), np.float32)
    out = RandomCrop(1, fill=-1.0)(X, rng)
    assert out.dtype == np.float32 and set(np.unique(out)) <= {-1.0, 1.0}
    assert (out == -1).any() and (out == 1).sum(axis=(1, 2)).min() >= 9   # at most one row and column lost
    same = RandomCrop(0)(X, rng)
    np.testing.assert_array_equal(same, X)
    assert not np.shares_memory(same, X)


def test_random_horizontal_flip_mirrors_about_half_and_p_0_and_1():
    rng = np.random.default_rng(2)
    X = rng.standard_normal((1000, 2, 3, 4))
    out = RandomHorizontalFlip()(X, rng)
    mirrored = np.array([np.array_equal(o, x[..., ::-1]) for o, x in zip(out, X)])
    kept = np.array([np.array_equal(o, x) for o, x in zip(out, X)])
    assert np.all(mirrored ^ kept) and 450 < mirrored.sum() < 550
    np.testing.assert_array_equal(RandomHorizontalFlip(0.0)(X, rng), X)
    np.testing.assert_array_equal(RandomHorizontalFlip(1.0)(X, rng), X[..., ::-1])


def test_compose_applies_in_order_and_draws_from_the_given_rng():
    X = np.random.default_rng(3).standard_normal((8, 1, 6, 6))
    transform = Compose(RandomCrop(1), RandomHorizontalFlip())
    a, b = transform(X, np.random.default_rng(7)), transform(X, np.random.default_rng(7))
    np.testing.assert_array_equal(a, b)
    rng = np.random.default_rng(7)
    by_hand = RandomHorizontalFlip()(RandomCrop(1)(X, rng), rng)
    np.testing.assert_array_equal(a, by_hand)
    assert repr(transform) == "Compose(RandomCrop(padding=1, fill=0.0), RandomHorizontalFlip(p=0.5))"


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="RandomCrop: padding"):
        RandomCrop("2")
    with pytest.raises(ValueError, match="RandomCrop: padding"):
        RandomCrop(-1)
    with pytest.raises(ValueError, match=r"RandomHorizontalFlip: p must be a number in \[0, 1\]"):
        RandomHorizontalFlip(1.5)
    with pytest.raises(TypeError, match="Compose: every transform must be callable"):
        Compose(RandomCrop(1), 3)
    with pytest.raises(ValueError, match=r"RandomCrop: expected a batch of images .* got shape \(4, 784\)"):
        RandomCrop(1)(np.zeros((4, 784)), np.random.default_rng())
    with pytest.raises(ValueError, match="RandomCrop: padding 4 must be smaller than the images' 4×5"):
        RandomCrop(4)(np.zeros((2, 4, 5)), np.random.default_rng())
    images = np.full((2, 4, 4), 7, np.uint8)
    for fill in (-1.0, 256.0, 0.5):
        with pytest.raises(ValueError, match=f"RandomCrop: fill {fill} is not a value of the images' dtype uint8"):
            RandomCrop(1, fill=fill)(images, np.random.default_rng())
    out = RandomCrop(1, fill=255)(images, np.random.default_rng(0))
    assert out.dtype == np.uint8 and set(np.unique(out)) <= {7, 255}


def test_empty_batches_and_an_empty_compose_give_new_arrays():
    rng = np.random.default_rng(0)
    for transform in (RandomCrop(1), RandomHorizontalFlip(), Compose()):
        empty = transform(np.zeros((0, 1, 4, 4), np.float32), rng)
        assert empty.shape == (0, 1, 4, 4) and empty.dtype == np.float32
    X = np.ones((2, 3, 3))
    same = Compose()(X, rng)
    np.testing.assert_array_equal(same, X)
    assert not np.shares_memory(same, X)


def small_cnn(seed):
    return nl.Sequential(nl.Conv2D(1, 2, 3, padding=1, rng=seed), nl.ReLU(), nl.Flatten(),
                         nl.Linear(2 * 36, 3, rng=seed), nl.Bias(3))


def test_fit_augments_training_batches_only_reproducibly_from_its_rng():
    data = np.random.default_rng(4)
    X, Y = data.standard_normal((40, 1, 6, 6)), data.integers(0, 3, 40)
    X_val, Y_val = data.standard_normal((10, 1, 6, 6)), data.integers(0, 3, 10)
    seen = []

    def recording(batch, rng):
        seen.append(batch.copy())
        return RandomCrop(1)(batch, rng)

    def run(augment):
        model = small_cnn(5)
        trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(model.parameters(), lr=0.1))
        trainer.fit(X, Y, epochs=2, batch_size=16, shuffle=False, rng=6, validation_data=(X_val, Y_val),
                    progress=False, augment=augment)
        return model

    first = run(recording)
    assert [len(b) for b in seen] == [16, 16, 8] * 2                    # every training batch, nothing else
    starts = [0, 16, 32] * 2                                            # unshuffled: the batches in order
    assert all(np.array_equal(b, X[i:i + len(b)]) for b, i in zip(seen, starts))   # never X_val
    again, plain = run(RandomCrop(1)), run(None)
    for a, b, c in zip(first.parameters(), again.parameters(), plain.parameters()):
        np.testing.assert_array_equal(a.data, b.data)                   # same seed, same crops
        assert not np.array_equal(a.data, c.data)                       # the crops changed training
    # (without shuffling, fit draws from rng for the crops only: the same draws, no crop, match ``plain``)


def test_fit_refuses_an_augment_that_is_not_a_transform_or_changes_the_shape():
    X, Y = np.zeros((8, 1, 6, 6)), np.zeros(8, int)
    model = small_cnn(0)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(model.parameters(), lr=0.1))
    with pytest.raises(TypeError, match="fit: augment must be a transform"):
        trainer.fit(X, Y, epochs=1, progress=False, augment="crop")
    with pytest.raises(ValueError, match=r"turned a batch of shape \(4, 1, 6, 6\) into \(4, 1, 5, 5\)"):
        trainer.fit(X, Y, epochs=1, batch_size=4, progress=False, augment=lambda b, rng: b[..., 1:, 1:])
