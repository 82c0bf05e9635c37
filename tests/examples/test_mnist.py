"""Training on real digits: a fast run on a slice of the shipped sample, and the script."""
import re

import numpy as np
import pytest

import nnlayers as nl
from tests.helpers import load_script, lrs, require_fashion, run_script
from nnlayers.examples import mnist


@pytest.fixture(scope="module")
def split():
    return mnist.load_split("sample")


def test_sample_split_is_fixed_and_disjoint(split):
    assert split.train_images.shape == (8000, 28, 28) and split.test_images.shape == (2000, 28, 28)
    again = mnist.load_split("sample")
    np.testing.assert_array_equal(again.test_labels, split.test_labels)
    assert set(np.unique(split.test_labels)) == set(range(10))
    # Disjoint: no test image appears among the training images.
    train = {image.tobytes() for image in split.train_images}
    assert not any(image.tobytes() in train for image in split.test_images)


def test_small_mlp_run_learns_digits_in_seconds(split):
    X = mnist.prepare(split.train_images[:2000], "mlp")
    Y = split.train_labels[:2000]
    X_test, Y_test = mnist.prepare(split.test_images[:500], "mlp"), split.test_labels[:500]
    model = mnist.mlp(784, 64, 10, rng=0)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(model.parameters(), lr=2e-3), metric=nl.accuracy)
    history = trainer.fit(X, Y, epochs=4, batch_size=50, rng=0, validation_data=(X_test, Y_test), progress=False)
    assert len(history.loss) == len(history.val_loss) == len(history.accuracy) == len(history.val_accuracy) == 4
    assert history.loss[-1] < history.loss[0] and history.accuracy[-1] > history.accuracy[0]
    loss, accuracy = trainer.evaluate(X_test, Y_test)
    assert accuracy == history.val_accuracy[-1] and loss == pytest.approx(history.val_loss[-1])
    assert accuracy >= 0.88                                       # measured 0.902 with this seed
    assert np.mean(trainer.predict(X_test).argmax(axis=1) == Y_test) == accuracy


def test_minibatch_progress_one_line_per_epoch_off_terminal(split, capsys):
    X, Y = mnist.prepare(split.train_images[:300], "mlp"), split.train_labels[:300]
    model = mnist.mlp(784, 16, 10, rng=0)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.SGD(model.parameters(), lr=0.1), metric=nl.accuracy)
    trainer.fit(X, Y, epochs=3, batch_size=100, rng=0, validation_data=(X[:50], Y[:50]))
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 3
    assert re.match(r"epoch 3/3: loss=\S+ accuracy=0\.\d{4} val_loss=\S+ val_accuracy=0\.\d{4} \(\d+\.\d\d s\)$",
                    lines[-1])


def test_prepare_scales_a_copy():
    images = np.array([[[0, 255]]], dtype=np.float32)
    X = mnist.prepare(images, "mlp")
    np.testing.assert_array_equal(X, [[0.0, 1.0]])
    assert X.dtype == np.float32 and images[0, 0, 1] == 255       # the caller's array is untouched
    assert mnist.prepare(np.zeros((2, 28, 28), np.uint8), "cnn").shape == (2, 1, 28, 28)


def test_mirrored_copies_and_augment_names():
    images = np.arange(8, dtype=np.uint8).reshape(2, 2, 2)
    flipped, labels = mnist.augment(images, np.array([1, 2]), "flip")
    np.testing.assert_array_equal(flipped[2], [[1, 0], [3, 2]])
    assert list(labels) == [1, 2, 1, 2]
    with pytest.raises(ValueError, match="unknown augmentation 'rotate'"):
        mnist.augment(images, labels, "rotate")


def test_random_augmentation_crops_images_and_mlp_rows_alike():
    images = np.random.default_rng(0).random((6, 28, 28)).astype(np.float32)
    as_images = mnist.random_augmentation("crop-flip", "cnn")(images[:, None], np.random.default_rng(1))
    as_rows = mnist.random_augmentation("crop-flip", "mlp")(images.reshape(6, 784), np.random.default_rng(1))
    assert as_rows.shape == (6, 784)
    np.testing.assert_array_equal(as_rows.reshape(6, 1, 28, 28), as_images)
    assert not np.array_equal(as_images[:, 0], images)
    with pytest.raises(ValueError, match="unknown random augmentation 'flip'"):
        mnist.random_augmentation("flip", "cnn")


def test_shifted_copies():
    images = np.zeros((2, 5, 5), np.uint8)
    images[:, 2, 2] = [10, 20]
    augmented, labels = mnist.shifted_copies(images, np.array([3, 4]))
    assert augmented.shape == (10, 5, 5) and list(labels) == [3, 4] * 5
    assert augmented[2, 3, 2] == 10 and augmented[4, 1, 2] == 10       # down, up
    assert augmented[6, 2, 3] == 10 and augmented[9, 2, 1] == 20       # right, left


def test_confusion_matrix():
    np.testing.assert_array_equal(mnist.confusion_matrix([0, 1, 1, 2], [0, 2, 1, 2], 3),
                                  [[1, 0, 0], [0, 1, 1], [0, 0, 1]])


def assert_weights_reproduce(model, weights, split, printed, n):
    """The saved weights, loaded into a fresh model, give the accuracy the script printed on the first n
    test images."""
    fresh = mnist.build(model, 10, rng=123)
    nl.load(fresh, weights)
    predicted = nl.Trainer(fresh, nl.SoftmaxCrossEntropy(), nl.SGD(fresh.parameters(), lr=0.1)).predict(
        mnist.prepare(split.test_images[:n], model))
    assert np.mean(predicted.argmax(axis=1) == split.test_labels[:n]) == pytest.approx(printed, abs=1e-4)
    loaded = nl.load_model(weights)                   # the whole model: no code rebuilds the architecture
    predicted = nl.predict(loaded, mnist.prepare(split.test_images[:n], model))
    assert np.mean(predicted.argmax(axis=1) == split.test_labels[:n]) == pytest.approx(printed, abs=1e-4)


@pytest.mark.parametrize("model", ["mlp", "cnn"])
def test_train_mnist_script_one_epoch_on_a_slice(tmp_path, model, split):
    plot, weights = tmp_path / "curves.png", tmp_path / "out" / "w.npz"        # out/ is created
    result = run_script("train_mnist.py", "--model", model, "--epochs", "1", "--limit", "400",
                        "--plot", plot, "--save", weights, "--quiet")
    assert result.returncode == 0, result.stderr
    printed = float(re.search(r"test accuracy: (\d\.\d{4}) \(\d+/400\)", result.stdout).group(1))
    assert printed > 0.3                                                 # one epoch on 360 digits
    assert plot.read_bytes()[:4] == b"\x89PNG" and plot.stat().st_size > 20_000
    assert_weights_reproduce(model, weights, split, printed, 400)
    images = tmp_path / "images.npy"
    np.save(images, split.test_images[:400])
    result = run_script("predict.py", weights, images, "--limit", "400")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) == 400 and re.fullmatch(r"0: \d \(\d\.\d{3}\)", lines[0])
    predicted = np.array([int(line.split()[1]) for line in lines])
    assert np.mean(predicted == split.test_labels[:400]) == pytest.approx(printed, abs=1e-4)


def test_predict_script_reads_idx_names_fashion_classes_and_refuses_bad_files(tmp_path):
    model = tmp_path / "m.npz"
    nl.save_model(mnist.mlp(784, 16, 10, rng=0), model)
    images = tmp_path / "fashion-images-idx3-ubyte"
    nl.datasets.save_idx(images, np.zeros((2, 28, 28), dtype=np.uint8))
    result = run_script("predict.py", model, images)
    assert result.returncode == 0, result.stderr
    names = nl.datasets.FASHION_MNIST_CLASSES
    assert [line.split(" (")[0].split(" ", 2)[2] in names for line in result.stdout.splitlines()] == [True, True]
    result = run_script("predict.py", tmp_path / "missing.npz", images)
    assert result.returncode == 2 and "missing.npz" in result.stderr


def test_train_mnist_resnet_one_epoch_with_schedule_and_adamw(tmp_path, split):
    weights = tmp_path / "resnet.npz"
    result = run_script("train_mnist.py", "--model", "resnet", "--epochs", "1", "--limit", "192",
                        "--augment", "none", "--batch-size", "32", "--save", weights)
    assert result.returncode == 0, result.stderr
    assert "adamw lr=0.002 weight decay 0.05, schedule cosine (warm-up 0 epochs)" in result.stdout
    assert "GlobalAvgPool2D" in result.stdout and "BatchNorm2d" in result.stdout
    printed = float(re.search(r"test accuracy: (\d\.\d{4}) \(\d+/192\)", result.stdout).group(1))
    assert_weights_reproduce("resnet", weights, split, printed, 192)    # running statistics included


@pytest.mark.parametrize("model", ["mlp", "resnet"])
def test_train_mnist_with_augmentation_drawn_per_batch(model):
    result = run_script("train_mnist.py", "--model", model, "--epochs", "1", "--limit", "128", "--augment",
                        "crop-flip", "--batch-size", "32")
    assert result.returncode == 0, result.stderr
    assert "115 training images (augmentation 'crop-flip' drawn for every batch)" in result.stdout
    assert re.search(r"test accuracy: \d\.\d{4} \(\d+/128\)", result.stdout)


def test_train_mnist_cnn_bn_with_step_schedule_and_warmup():
    result = run_script("train_mnist.py", "--model", "cnn-bn", "--epochs", "3", "--limit", "300", "--augment",
                        "none", "--schedule", "step", "--warmup", "1", "--optimizer", "sgd", "--weight-decay",
                        "1e-4", "--quiet")
    assert result.returncode == 0, result.stderr
    assert float(re.search(r"test accuracy: (\d\.\d{4})", result.stdout).group(1)) > 0.3


def test_train_mnist_with_one_cycle():
    result = run_script("train_mnist.py", "--model", "cnn-bn", "--epochs", "2", "--limit", "300", "--augment",
                        "none", "--schedule", "onecycle", "--warmup", "0", "--quiet")
    assert result.returncode == 0, result.stderr
    assert float(re.search(r"test accuracy: (\d\.\d{4})", result.stdout).group(1)) > 0.3


def test_schedule_options_give_the_documented_learning_rates():
    script = load_script("train_mnist.py")
    args = script.parse_args(["--model", "resnet", "--epochs", "4", "--warmup", "1", "--lr", "0.01"])
    assert (args.optimizer, args.schedule, args.weight_decay) == ("adamw", "cosine", 0.05)
    model = mnist.build("mlp", rng=0)
    optimizer = script.make_optimizer(args, model.parameters())
    assert isinstance(optimizer, nl.AdamW) and optimizer.weight_decay == 0.05
    schedule = script.make_schedule(args, optimizer, steps_per_epoch=10)
    rates = lrs(schedule, 40)
    assert rates[0] == pytest.approx(1e-4) and rates[10] == pytest.approx(0.01)      # warm-up from lr/100
    assert rates[25] == pytest.approx(0.005) and rates[40] == pytest.approx(0.0, abs=1e-12)   # cosine to 0
    step = script.parse_args(["--model", "cnn", "--schedule", "step", "--epochs", "6", "--lr", "0.1"])
    assert (step.optimizer, step.warmup, step.weight_decay) == ("adam", 0, 0.0)
    optimizer = script.make_optimizer(step, model.parameters())
    schedule = script.make_schedule(step, optimizer, steps_per_epoch=5)
    rates = lrs(schedule, 30)
    assert rates[9] == pytest.approx(0.1) and rates[10] == pytest.approx(0.01) and rates[20] == pytest.approx(0.001)
    assert script.make_schedule(script.parse_args(["--model", "cnn"]), optimizer, 5) is None
    one = script.parse_args(["--model", "cnn", "--schedule", "onecycle", "--epochs", "4", "--warmup", "1",
                             "--optimizer", "sgd", "--momentum", "0", "--lr", "0.2"])
    optimizer = script.make_optimizer(one, model.parameters())
    schedule = script.make_schedule(one, optimizer, steps_per_epoch=10)
    assert isinstance(schedule, nl.schedules.OneCycleLR) and not schedule.cycle_momentum   # SGD without momentum
    rates = lrs(schedule, 39)
    assert rates[0] == pytest.approx(0.2 / 25) and rates[9] == pytest.approx(0.2)          # up over the warm-up epoch
    assert rates[39] == pytest.approx(0.2 / 25 / 1e4)


@pytest.mark.parametrize("flags, calls", [((), ["reuse"]), (("--system-malloc",), [])])
def test_train_mnist_keeps_freed_memory_unless_told_not_to(monkeypatch, capsys, flags, calls):
    from nnlayers import allocator
    made = []
    monkeypatch.setattr(allocator, "reuse_freed_memory", lambda: made.append("reuse") or True)
    script = load_script("train_mnist.py")
    assert script.main(["--model", "mlp", "--epochs", "1", "--limit", "100", "--quiet", *flags]) == 0
    assert made == calls and "test accuracy:" in capsys.readouterr().out


def test_reference_models_shapes_and_blocks(rng):
    X = rng.random((2, 1, 28, 28)).astype(np.float32)
    for name in ("cnn-bn", "resnet"):
        model = mnist.build(name, 10, rng=0)
        assert model.forward(X).shape == (2, 10) and model.forward(X).dtype == np.float32
        assert any(isinstance(m, nl.BatchNorm2d) for m in model.modules())
    resnet = mnist.build("resnet", 10, rng=0)
    residuals = [m for m in resnet.modules() if isinstance(m, nl.Residual)]
    assert len(residuals) == sum(mnist.RESNET_BLOCKS)
    # The first block keeps its shape (identity shortcut); each later stage starts with a projection.
    assert [r.shortcut is None for r in residuals] == [True] * mnist.RESNET_BLOCKS[0] + [
        index != 0 for stage in mnist.RESNET_BLOCKS[1:] for index in range(stage)]
    block = mnist.basic_block(4, 8, 2, rng=0, dtype=np.float64)
    assert block.forward(rng.normal(size=(2, 4, 7, 7))).shape == (2, 8, 4, 4)
    assert nl.gradcheck(mnist.basic_block(2, 3, 2, rng=0, dtype=np.float64), rng.normal(size=(2, 2, 4, 4))).passed
    with pytest.raises(ValueError, match="unknown model 'vgg'; use one of mlp, cnn, cnn-bn, resnet"):
        mnist.build("vgg")


def test_train_mnist_script_errors(tmp_path):
    result = run_script("train_mnist.py", "--data", tmp_path, "--epochs", "1")
    assert result.returncode == 2 and "looked for" in result.stderr
    for args, message in ((["--epochs", "0"], "must be at least 1"), (["--seed", "-1"], "must be at least 0"),
                          (["--lr", "inf"], "must be finite"), (["--val-fraction", "1"], "must be in [0, 1)"),
                          (["--weight-decay", "-1"], "must be at least 0"),
                          (["--schedule", "linear"], "invalid choice: 'linear'"),
                          (["--model", "resnet", "--epochs", "2", "--warmup", "2"], "leaves no epochs")):
        result = run_script("train_mnist.py", *args)
        assert result.returncode == 2 and message in result.stderr, args


def test_train_mnist_on_fashion_folder_slice(tmp_path):
    folder = require_fashion()
    result = run_script("train_mnist.py", "--model", "mlp", "--data", folder, "--epochs", "1", "--limit", "2000",
                        "--quiet", "--plot", tmp_path / "f.png")
    assert result.returncode == 0, result.stderr
    assert float(re.search(r"test accuracy: (\d\.\d{4})", result.stdout).group(1)) > 0.6


@pytest.mark.parametrize("option", ["--save", "--plot"])
def test_train_mnist_checks_destinations_before_training(tmp_path, option):
    import time
    (tmp_path / "notes.txt").write_text("x")                      # a file where a folder is needed
    target = tmp_path / "notes.txt" / "out.file"
    started = time.perf_counter()
    result = run_script("train_mnist.py", "--model", "cnn", "--epochs", "50", option, target)
    assert time.perf_counter() - started < 20                     # refused at once, not after 50 epochs
    assert result.returncode == 2 and "test accuracy" not in result.stdout
    assert f"{option} {target}: {target.parent} is a file, not a folder" in result.stderr
    assert ".tmp" not in result.stderr


def test_train_mnist_help_shows_each_models_epoch_defaults():
    defaults = load_script("train_mnist.py").DEFAULTS
    help_text = " ".join(run_script("train_mnist.py", "--help").stdout.split())
    expected = ", ".join(f"{settings['epochs']} for {model}" for model, settings in defaults.items())
    assert f"passes over the training set (default: {expected})" in help_text
    assert "20 for mlp" in expected and "8 for cnn" in expected


def test_train_mnist_one_epoch_reads_as_one_epoch():
    result = run_script("train_mnist.py", "--model", "mlp", "--epochs", "1", "--limit", "300", "--quiet",
                        "--show")
    assert result.returncode == 0, result.stderr
    assert re.search(r"after 1 epoch, [0-9.]+ s", result.stdout)
    assert "warning: --show:" in result.stderr                   # the tests run without a display
