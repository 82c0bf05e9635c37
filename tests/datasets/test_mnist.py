"""MNIST-format folders, the shipped sample (from any install) and Fashion-MNIST."""
from pathlib import Path

import numpy as np
import pytest
from tests.helpers import FASHION, require
import nnlayers as nl
from nnlayers.datasets import IDXFormatError, load_mnist, save_idx


SAMPLE_COUNTS = [1001, 1127, 991, 1032, 980, 863, 1014, 1070, 944, 978]   # data/mnist-sample/README.rst

# -- MNIST folders ------------------------------------------------------------------------

def write_mnist(directory: Path, kind: str, n_images: int, n_labels: int, suffix: str = ".gz"):
    directory.mkdir(exist_ok=True)
    images = np.arange(n_images * 28 * 28, dtype=np.int64).astype(np.uint8).reshape(n_images, 28, 28)
    labels = (np.arange(n_labels) % 10).astype(np.uint8)
    save_idx(directory / f"{kind}-images-idx3-ubyte{suffix}", images)
    save_idx(directory / f"{kind}-labels-idx1-ubyte{suffix}", labels)
    return images, labels


@pytest.mark.parametrize("suffix", ["", ".gz"], ids=["plain", "gzip"])
def test_load_mnist_reads_a_folder(tmp_path, suffix):
    images, labels = write_mnist(tmp_path / "m", "t10k", 7, 7, suffix)
    got_images, got_labels = load_mnist(tmp_path / "m", kind="t10k")
    np.testing.assert_array_equal(got_images, images)
    np.testing.assert_array_equal(got_labels, labels)
    assert got_images.dtype == np.uint8 and got_labels.dtype == np.uint8


def test_load_mnist_counts_must_agree(tmp_path):
    write_mnist(tmp_path / "m", "train", 5, 4)
    with pytest.raises(IDXFormatError, match="train-images-idx3-ubyte.gz has 5 images but "
                                             "train-labels-idx1-ubyte.gz has 4 labels"):
        load_mnist(tmp_path / "m")


def test_load_mnist_names_the_files_it_looked_for(tmp_path):
    write_mnist(tmp_path / "m", "train", 3, 3)
    with pytest.raises(FileNotFoundError) as caught:
        load_mnist(tmp_path / "m", kind="t10k")
    for name in ("t10k-images-idx3-ubyte", "t10k-images-idx3-ubyte.gz"):
        assert name in str(caught.value)
    assert str(tmp_path / "m") in str(caught.value)
    with pytest.raises(FileNotFoundError, match="is not a directory"):
        load_mnist(tmp_path / "absent")


def test_load_mnist_refuses_images_that_are_not_byte_grids(tmp_path):
    directory = tmp_path / "m"
    directory.mkdir()
    save_idx(directory / "train-images-idx3-ubyte", np.zeros((3, 784), dtype=np.uint8))
    save_idx(directory / "train-labels-idx1-ubyte", np.zeros(3, dtype=np.uint8))
    with pytest.raises(IDXFormatError, match=r"train-images-idx3-ubyte: expected N×H×W unsigned bytes, "
                                             r"got shape \(3, 784\)"):
        load_mnist(directory)


# -- the shipped sample and Fashion-MNIST ----------------------------------------------------

def test_shipped_sample_has_the_documented_digits():
    images, labels = nl.datasets.load_mnist_sample()
    assert images.shape == (10000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (10000,) and labels.dtype == np.uint8
    assert np.bincount(labels, minlength=10).tolist() == SAMPLE_COUNTS
    assert np.all(np.diff(labels.astype(int)) >= 0)             # digit by digit, as documented
    assert images.min() == 0 and images.max() == 255
    assert int(images.sum(dtype=np.int64)) == 262_146_600        # pins the content, not just the shape
    assert nl.datasets.mnist_sample_dir() == Path(nl.__file__).resolve().parent / "datasets" / "mnist_sample"


def test_shuffled_sample_is_a_reproducible_permutation():
    images, labels = nl.datasets.load_mnist_sample()
    shuffled_images, shuffled_labels = nl.datasets.load_mnist_sample(shuffle=True, rng=5)
    again_images, again_labels = nl.datasets.load_mnist_sample(shuffle=True, rng=5)
    assert np.array_equal(shuffled_labels, again_labels) and np.array_equal(shuffled_images, again_images)
    assert np.bincount(shuffled_labels[:1000], minlength=10).min() > 50   # every digit among the first 1000
    order = np.random.default_rng(5).permutation(10000)                  # the same permutation, pairs kept
    assert np.array_equal(shuffled_images, images[order]) and np.array_equal(shuffled_labels, labels[order])


def require_dataset(path: Path):
    require(path.exists(), f"dataset {path} is not installed on this machine (Debian package dataset-fashion-mnist)")


@pytest.mark.parametrize("kind, n", [("train", 60000), ("t10k", 10000)])
def test_fashion_mnist_loads_unchanged(kind, n):
    require_dataset(FASHION)
    images, labels = load_mnist(FASHION, kind=kind)
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (n,) and labels.dtype == np.uint8
    assert labels.min() == 0 and labels.max() == 9
    assert np.bincount(labels).tolist() == [n // 10] * 10       # Fashion-MNIST is balanced


def test_missing_requirement_skips_or_fails_as_asked(monkeypatch, tmp_path):
    monkeypatch.delenv("NNLAYERS_REQUIRE_ALL", raising=False)
    with pytest.raises(pytest.skip.Exception, match="is not installed"):
        require_dataset(tmp_path / "absent")
    monkeypatch.setenv("NNLAYERS_REQUIRE_ALL", "1")
    with pytest.raises(pytest.fail.Exception, match="NNLAYERS_REQUIRE_ALL=1"):
        require_dataset(tmp_path / "absent")
    require_dataset(tmp_path)                                   # present: neither


# What the fresh interpreter runs: without the test run's editable install (a finder on sys.meta_path
# that would win over any other copy), nnlayers must come from the install under test.
_LOAD_FROM_INSTALL = """
import sys
sys.meta_path = [finder for finder in sys.meta_path if "__editable__" not in type(finder).__module__]
import pathlib, nnlayers
images, labels = nnlayers.datasets.load_mnist_sample()
text, names = nnlayers.datasets.load_austen("all"), nnlayers.datasets.load_names()    # the shipped text too
print(images.shape, int(labels.sum(dtype=int)), len(text), len(names), pathlib.Path(nnlayers.__file__).resolve())
"""


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    """A wheel of this checkout, built once (in pip's isolated build environment, as users get it)."""
    import subprocess
    import sys
    from tests.helpers import ROOT
    out = tmp_path_factory.mktemp("wheel")
    build = subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                            "--quiet", "-w", str(out), str(ROOT)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stderr
    return next(out.glob("nnlayers-*.whl"))


def _install_and_load_sample(wheel, tmp_path, install_args, env_extra):
    """pip-install the wheel as asked, then load the shipped data in a fresh interpreter outside the tree."""
    import os
    import subprocess
    import sys
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}  # only the install is seen
    env.update(env_extra)
    install = subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--disable-pip-version-check",
                              "--quiet", *install_args, str(wheel)], capture_output=True, text=True, env=env,
                             timeout=300)
    assert install.returncode == 0, install.stderr
    run = subprocess.run([sys.executable, "-c", _LOAD_FROM_INSTALL], capture_output=True, text=True,
                         env=env, cwd=tmp_path, timeout=120)
    assert run.returncode == 0, run.stderr
    return run.stdout


def test_sample_loads_from_a_target_install(wheel, tmp_path):
    target = tmp_path / "target"
    out = _install_and_load_sample(wheel, tmp_path, ["--target", str(target)], {"PYTHONPATH": str(target)})
    assert out.startswith("(10000, 28, 28) 44368 4025062 5163 ")  # Σ labels of the documented counts; text sizes
    assert str(target.resolve() / "nnlayers") in out                 # imported from the target, not the tree


def test_sample_loads_from_a_user_install(wheel, tmp_path):
    import sys
    if sys.prefix != sys.base_prefix:  # a virtual environment: pip refuses --user there, and users too
        pytest.skip("pip has no --user installs inside a virtual environment")
    user_base = tmp_path / "userbase"
    out = _install_and_load_sample(wheel, tmp_path, ["--user"], {"PYTHONUSERBASE": str(user_base)})
    assert out.startswith("(10000, 28, 28) 44368 4025062 5163 ")
    assert str(user_base.resolve()) in out
