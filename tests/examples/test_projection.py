"""SVD projection of digits: selection, economy SVD, 2-D separation, plots and the script."""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from matplotlib.figure import Figure

from tests.helpers import SCRIPTS
import nnlayers as nl
from nnlayers.examples import projection

SCRIPT = SCRIPTS / "mnist_svd.py"
MEASURED_0_VS_1 = 0.9865    # nearest-centroid accuracy in 2-D on the sample, 1000 + 1000, seed 0


@pytest.fixture(scope="module")
def sample():
    return nl.datasets.load_mnist_sample()


def test_select_digits_caps_each_class_and_shuffles(sample):
    images, labels = projection.select_digits(*sample, [0, 1], per_class=1000, rng=0)
    assert images.shape == (2000, 28, 28)
    assert np.bincount(labels).tolist() == [1000, 1000]         # the sample has 1001 zeros, 1127 ones
    assert 0 < np.mean(labels[:1000]) < 1                        # interleaved, not 0s then 1s
    again, _ = projection.select_digits(*sample, [0, 1], per_class=1000, rng=0)
    np.testing.assert_array_equal(again, images)                 # same seed, same selection
    _, all_labels = projection.select_digits(*sample, [5, 8], rng=1)
    assert np.bincount(all_labels, minlength=10)[[5, 8]].tolist() == [863, 944]


def test_select_digits_names_an_absent_label(sample):
    with pytest.raises(ValueError, match="no images with label 11"):
        projection.select_digits(*sample, [0, 11])


def test_flatten_scales_bytes_to_unit_interval():
    images = np.array([[[0, 255], [51, 102]]], dtype=np.uint8)
    np.testing.assert_array_equal(projection.flatten(images), [[0.0, 1.0, 0.2, 0.4]])
    np.testing.assert_array_equal(projection.flatten(np.full((2, 2, 2), 3.0)), np.full((2, 4), 3.0))


def test_economy_svd_shapes_and_identities():
    X = np.random.default_rng(0).random((30, 12))
    basis = projection.fit_svd(X)
    assert basis.U.shape == (30, 12) and basis.S.shape == (12,) and basis.Vt.shape == (12, 12)
    np.testing.assert_allclose(basis.U * basis.S @ basis.Vt, X, atol=1e-12)
    np.testing.assert_allclose(basis.Vt @ basis.Vt.T, np.eye(12), atol=1e-12)
    np.testing.assert_allclose(basis.project(X, 2), basis.U[:, :2] * basis.S[:2], atol=1e-12)
    np.testing.assert_allclose(basis.reconstruct(X, 12), X, atol=1e-12)
    # Eckart–Young: the rank-k error's squared norm is the sum of the discarded σᵢ².
    for k in (1, 3, 7):
        error = np.linalg.norm(X - basis.reconstruct(X, k)) ** 2
        assert error == pytest.approx(np.sum(basis.S[k:] ** 2), rel=1e-10)
        assert basis.energy(k) == pytest.approx(1 - error / np.linalg.norm(X) ** 2, rel=1e-10)
    # Sign convention: each direction's largest-magnitude entry is positive.
    assert np.all(basis.Vt[np.arange(12), np.abs(basis.Vt).argmax(axis=1)] > 0)
    with pytest.raises(ValueError, match="rank k must be between 1 and 12, got 13"):
        basis.project(X, 13)


def test_centred_svd_removes_the_mean():
    X = np.random.default_rng(1).random((20, 5)) + 10
    basis = projection.fit_svd(X, center=True)
    np.testing.assert_allclose(basis.mean, X.mean(axis=0))
    np.testing.assert_allclose(basis.project(X, 5).mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(basis.reconstruct(X, 5), X, atol=1e-12)


def test_nearest_centroid_accuracy_by_hand():
    # Centroids: class 0 → (0, 0.5), class 1 → ((5+1)/2, (5+0)/2) = (3, 2.5).
    # (1, 0) is at squared distance 1 + 0.25 from class 0 and 4 + 6.25 from class 1: misclassified.
    points = np.array([[0, 0], [0, 1], [5, 5], [1, 0]])
    assert projection.nearest_centroid_accuracy(points, np.array([0, 0, 1, 1])) == 0.75


def test_zeros_and_ones_separate_in_two_dimensions(sample):
    images, labels = projection.select_digits(*sample, [0, 1], per_class=1000, rng=0)
    X = projection.flatten(images)
    points = projection.fit_svd(X).project(X, 2)
    accuracy = projection.nearest_centroid_accuracy(points, labels)
    assert accuracy == pytest.approx(MEASURED_0_VS_1, abs=0.005)
    # The first direction of the plain SVD is nearly the mean image (how much ink).
    mean = X.mean(axis=0)
    v1 = projection.fit_svd(X).Vt[0]
    assert v1 @ mean / np.linalg.norm(mean) > 0.95


def test_plots_draw_on_what_they_are_given(sample):
    images, labels = projection.select_digits(*sample, [0, 1, 7], per_class=50, rng=0)
    X = projection.flatten(images)
    basis = projection.fit_svd(X)
    fig = Figure()
    ax = projection.plot_projection(fig.add_subplot(), basis.project(X, 2), labels, title="t")
    assert [text.get_text() for text in ax.get_legend().get_texts()] == ["0 (50)", "1 (50)", "7 (50)"]
    colors = [tuple(collection.get_facecolor()[0][:3]) for collection in ax.collections]
    assert colors[0][2] > colors[0][0] and colors[1][0] > colors[1][2]   # 0 blue, 1 red
    assert "v₁" in ax.get_xlabel() and "v₂" in ax.get_ylabel()
    grid = projection.plot_reconstructions(Figure(), images[:4], basis, [2, 10])
    assert len(grid.axes) == 3 * 4
    assert [grid.axes[i].get_ylabel() for i in (0, 4, 8)] == ["original", "rank 2", "rank 10"]


def run_script(tmp_path, *args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          encoding="utf-8", cwd=tmp_path, timeout=120)


def assert_png(path: Path):
    assert path.is_file() and path.stat().st_size > 5000
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_script_reproduces_the_0_vs_1_experiment(tmp_path):
    done = run_script(tmp_path, "--out", "svd.png")
    assert done.returncode == 0, done.stderr
    assert_png(tmp_path / "svd.png")
    assert_png(tmp_path / "svd_recon.png")
    assert "2000 images (0: 1000, 1: 1000), flattened to 2000×784" in done.stdout
    assert "U (2000, 784), S (784,), Vt (784, 784)" in done.stdout    # economy, not 2000×2000
    accuracy = float(re.search(r"nearest-centroid accuracy in 2-D: ([0-9.]+)", done.stdout).group(1))
    assert accuracy == pytest.approx(MEASURED_0_VS_1, abs=0.005)
    errors = [float(e) for e in re.findall(r"rank \d+ reconstruction: relative error .* = ([0-9.]+)", done.stdout)]
    assert len(errors) == 3 and errors == sorted(errors, reverse=True)   # higher rank, smaller error


def test_script_options(tmp_path):
    done = run_script(tmp_path, "--digits", "3", "8", "--per-class", "100", "--seed", "3", "--center",
                      "--rank", "5", "--out", "a.png", "--recon-out", "b.png")
    assert done.returncode == 0, done.stderr
    assert "200 images (3: 100, 8: 100)" in done.stdout and "mean image subtracted" in done.stdout
    assert_png(tmp_path / "a.png")
    assert_png(tmp_path / "b.png")


@pytest.mark.parametrize("args, code, message", [
    (["--digits", "1"], 2, "at least two different labels"),
    (["--digits", "1", "x"], 2, "not an integer label"),
    (["--per-class", "0"], 2, "must be at least 1"),
    (["--per-class", "10", "--rank", "21"], 2, "--rank 21 exceeds the rank limit min(N, D) = 20"),
    (["--kind", "t10k"], 2, "--kind selects files of --data-dir"),
    (["--data-dir", "absent"], 1, "absent is not a directory"),
    (["--digits", "0", "12"], 1, "no images with label 12"),
    (["--out", "notes.txt/a.png"], 2, "--out notes.txt/a.png: notes.txt is a file, not a folder"),
    (["--recon-out", "svd.png"], 2, "--recon-out svd.png: svd.png is a folder"),
])
def test_script_rejects_bad_arguments(tmp_path, args, code, message):
    (tmp_path / "svd.png").mkdir()                        # a folder where a file is asked for
    (tmp_path / "notes.txt").write_text("x")              # a file where a folder is asked for
    done = run_script(tmp_path, *args)
    assert done.returncode == code
    assert message in done.stderr
    assert [path.name for path in tmp_path.glob("*.png")] == ["svd.png"] and (tmp_path / "svd.png").is_dir()


def test_help_says_kind_needs_a_data_dir(tmp_path):
    help_text = " ".join(run_script(tmp_path, "--help").stdout.split())
    assert "train (the default with --data-dir), t10k or sample" in help_text
    assert "only with --data-dir" in help_text and "(default: train)" not in help_text


def test_legend_can_name_the_classes():
    rng = np.random.default_rng(0)
    fig = Figure()
    ax = projection.plot_projection(fig.add_subplot(), rng.normal(size=(6, 2)), np.array([0, 1, 0, 1, 9, 9]),
                                    class_names=nl.datasets.FASHION_MNIST_CLASSES)
    legend = ax.get_legend()
    assert [text.get_text() for text in legend.get_texts()] == ["T-shirt/top (2)", "Trouser (2)", "Ankle boot (2)"]
    assert legend.get_title().get_text() == "class (count)"


def test_fashion_run_names_its_classes(tmp_path):
    from tests.helpers import require_fashion
    done = run_script(tmp_path, "--data-dir", str(require_fashion()), "--kind", "t10k", "--per-class", "100")
    assert done.returncode == 0, done.stderr
    assert "200 images (0 T-shirt/top: 100, 1 Trouser: 100)" in done.stdout
    assert_png(tmp_path / "mnist_svd.png")
