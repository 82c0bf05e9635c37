"""The array-backend seam, exercised without a GPU through the 'strict' stand-in device.

A StrictArray refuses to mix with plain numpy arrays, as a CuPy array does, so
every layer run on the 'strict' device proves that it computes with the array
module of its input and allocates nothing on the host by accident. The GPU
itself is tested by tests/test_gpu.py (``pytest -m gpu``, scripts/gpu_check.sh).
"""
import subprocess
import sys

import numpy as np
import pytest

import nnlayers as nl
from nnlayers import backend
from tests.strict_backend import STRICT, MixedDevicesError, StrictArray
from tests.helpers import draws_at_random, twin_layers
from tests.test_gradcheck import LAYER_CASES


def on_strict(array):
    return backend.to_device(array, "strict")


def same(device_array, host_array, name=""):
    """The device's result equals the CPU's: exactly where the arithmetic is the same, to rounding where
    the device path sums in another order (Conv2D's batched im2col against the CPU's chunked layouts)."""
    np.testing.assert_allclose(backend.to_host(device_array), host_array, rtol=1e-12, atol=1e-13, err_msg=name)


@pytest.mark.parametrize("make, make_input", [case[1:] for case in LAYER_CASES], ids=[c[0] for c in LAYER_CASES])
def test_every_layer_computes_on_the_device_of_its_input(make, make_input, rng):
    X = make_input(rng)
    host, device = twin_layers(make, rng)
    device.to("strict")
    assert device.device == ("strict" if device.parameters() or device.buffers() else "cpu")
    values = not draws_at_random(host)  # Dropout draws from the device's own generator: other masks
    Z_host, Z_device = host.forward(X), device.forward(on_strict(X))
    assert type(Z_device) is StrictArray
    if values:
        same(Z_device, Z_host)
    dZ = rng.normal(size=Z_host.shape)
    dX_host, dX_device = host.backward(dZ), device.backward(on_strict(dZ))
    if dX_host is not None:
        assert type(dX_device) is StrictArray
        if values:
            same(dX_device, dX_host)
    for (name, p_host), (_, p_device) in zip(host.named_parameters(), device.named_parameters()):
        assert type(p_device.data) is StrictArray and type(p_device.grad) is StrictArray, name
        if values:
            same(p_device.grad, p_host.grad, name)
    for (name, b_host), (_, b_device) in zip(host.named_buffers(), device.named_buffers()):
        assert type(b_device.data) is StrictArray, name
        same(b_device.data, b_host.data, name)


def test_the_strict_device_really_refuses_host_arrays():
    with pytest.raises(MixedDevicesError, match="np.add: a host numpy array"):
        on_strict(np.ones(3)) + np.ones(3)
    assert type(STRICT.zeros(2)) is StrictArray and type(on_strict(np.ones(2)) * 2.0) is StrictArray


def test_to_and_back_round_trips_exactly(rng):
    model = nl.Sequential(nl.Linear(3, 4, rng=0), nl.Bias(4), nl.Tanh(), nl.Linear(4, 2, rng=1))
    before = model.state_dict()
    model.to("strict")
    assert all(type(p.data) is StrictArray for p in model.parameters())
    assert model.to("cpu") is model and model.device == "cpu"
    for name, array in model.state_dict().items():
        assert type(array) is np.ndarray
        np.testing.assert_array_equal(array, before[name])


def test_mismatched_devices_name_the_layer_and_both_devices():
    model = nl.Sequential(nl.Linear(2, 3, rng=0), nl.Bias(3))
    model.to("strict")
    with pytest.raises(backend.DeviceError, match=r"^layer 0 forward: Linear\(in_features=2, out_features=3\): "
                                                 r"its input is on cpu but its weights are on strict"):
        model.forward(np.ones((4, 2)))
    model.to("cpu")
    with pytest.raises(backend.DeviceError, match=r"input is on strict but its weights are on cpu"):
        model.forward(on_strict(np.ones((4, 2))))
    loss = nl.EuclideanLoss()
    with pytest.raises(backend.DeviceError, match=r"EuclideanLoss\(\): its input is on strict"):
        loss.forward(on_strict(np.ones((2, 1))), np.ones((2, 1)))


def test_unknown_devices_and_cuda_without_cupy_are_clear_errors():
    with pytest.raises(ValueError, match="unknown device 'tpu'"):
        nl.Linear(2, 2).to("tpu")
    try:
        import cupy  # noqa: F401
    except ImportError:
        with pytest.raises(backend.DeviceError, match=r"needs CuPy: pip install -e '\.\[gpu\]'"):
            nl.Linear(2, 2).to("cuda")
    else:  # with CuPy but no GPU, or with one: either works or says there is no GPU
        try:
            nl.Linear(2, 2).to("cuda")
        except backend.DeviceError as error:
            assert "no CUDA GPU" in str(error) or "no usable GPU" in str(error)


def test_importing_nnlayers_never_imports_cupy():
    code = "import sys, nnlayers; nnlayers.Sequential(nnlayers.Linear(2, 2)).to('cpu'); print('cupy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "False"


def training_run(device, epochs=3):
    from nnlayers.examples import mnist
    images, labels = nl.datasets.load_mnist_sample(shuffle=True, rng=0)
    X = mnist.prepare(images[:256], "mlp", dtype=np.float64)
    model = mnist.mlp(784, 32, 10, rng=0, dtype=np.float64).to(device)  # no dropout: its masks differ by device
    optimizer = nl.Adam(model.parameters(), lr=1e-3)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), optimizer, metric=nl.accuracy)
    history = trainer.fit(X, labels[:256], epochs=epochs, batch_size=64, rng=0, progress=False,
                          validation_data=(X[:64], labels[:64]))
    return model, trainer, history, X


def test_training_on_the_device_matches_the_cpu_run_step_for_step():
    _, _, cpu, _ = training_run("cpu")
    model, trainer, strict, X = training_run("strict")
    assert strict.loss == cpu.loss and strict.val_loss == cpu.val_loss   # identical curves
    assert all(type(p.data) is StrictArray for p in model.parameters())
    assert all(type(m) is StrictArray for m in trainer.optimizer._m)
    predicted = trainer.predict(X[:10])
    assert type(predicted) is np.ndarray and predicted.shape == (10, 10)   # host arrays by default
    assert type(trainer.predict(X[:10], host=False)) is StrictArray


def test_save_on_the_device_and_load_on_the_cpu(tmp_path):
    model, _, _, X = training_run("strict", epochs=1)
    nl.save(model, tmp_path / "w.npz")
    with np.load(tmp_path / "w.npz") as archive:
        assert all(type(archive[name]) is np.ndarray for name in archive.files)
    from nnlayers.examples import mnist
    cpu = mnist.mlp(784, 32, 10, rng=5, dtype=np.float64)
    nl.load(cpu, tmp_path / "w.npz")
    model.eval(), cpu.eval()
    np.testing.assert_array_equal(cpu.forward(X[:5]), backend.to_host(model.forward(on_strict(X[:5]))))
    nl.load(model, tmp_path / "w.npz")                          # and back onto the device
    assert all(type(p.data) is StrictArray for p in model.parameters())


def test_optimizer_moves_its_state():
    model = nl.Sequential(nl.Linear(2, 2, rng=0))
    optimizer = nl.SGD(model.parameters(), lr=0.1, momentum=0.9)
    model.to("strict")
    assert optimizer.to("strict") is optimizer
    assert type(optimizer._velocity[0]) is StrictArray and type(optimizer._lr_arrays[0]) is StrictArray
    model.forward(on_strict(np.ones((3, 2))))
    model.backward(on_strict(np.ones((3, 2))))
    optimizer.step()                                            # nothing on the host left to mix with
    assert type(model[0].W.data) is StrictArray


def test_gradcheck_runs_on_the_device(rng):
    model = nl.Sequential(nl.Linear(3, 4, rng=0), nl.Bias(4), nl.Sigmoid()).to("strict")
    report = nl.gradcheck(model, on_strict(rng.normal(size=(2, 3))))
    assert report.passed and [c.name for c in report.checks] == ["X", "0.W", "1.b"]


def test_dropout_draws_masks_where_its_input_lives():
    first, second = nl.Dropout(0.5, rng=3), nl.Dropout(0.5, rng=3)
    X = on_strict(np.ones((4, 6)))
    a, b = first.forward(X), second.forward(X)
    assert type(a) is StrictArray
    np.testing.assert_array_equal(backend.to_host(a), backend.to_host(b))      # a seed gives the same masks
    assert not np.array_equal(backend.to_host(first.forward(X)), backend.to_host(a))   # a new mask each time


def test_gpu_scripts_say_what_is_missing_without_a_gpu(tmp_path):
    from tests.helpers import run_script
    try:
        import cupy  # noqa: F401
        pytest.skip("CuPy is installed: the GPU scripts run instead (scripts/gpu_check.sh)")
    except ImportError:
        pass
    bench = run_script("bench.py", "--device", "cuda", timeout=120)
    assert bench.returncode == 2 and "No module named 'cupy'" in bench.stderr
    train = run_script("train_mnist.py", "--device", "cuda", "--limit", "50", "--epochs", "1", "--quiet",
                       cwd=tmp_path, timeout=120)
    assert train.returncode == 2
    assert "train_mnist: --device cuda: device 'cuda' needs CuPy: pip install -e '.[gpu]'" in train.stderr
