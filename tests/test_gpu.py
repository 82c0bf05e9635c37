"""The same layers on a CUDA GPU through CuPy: ``pytest -m gpu`` (scripts/gpu_check.sh runs it).

Skipped, with the reason shown, wherever CuPy or a GPU is missing; unlike the
other optional tests this skip is not a failure under NNLAYERS_REQUIRE_ALL=1,
since CI machines have no GPU. Everything here runs in float64, so the GPU's
results must agree with numpy's to 1e-10 (only the order of sums differs).
"""
import numpy as np
import pytest

import nnlayers as nl
from nnlayers import backend
from tests.helpers import draws_at_random, twin_layers
from tests.test_gradcheck import LAYER_CASES

pytestmark = pytest.mark.gpu

try:
    import cupy
    _GPUS = cupy.cuda.runtime.getDeviceCount()
except Exception as error:  # no CuPy, or CuPy without a usable driver
    cupy, _GPUS, _WHY = None, 0, f"CuPy with a CUDA GPU is needed ({type(error).__name__}: {error})"
else:
    _WHY = "this machine has no CUDA GPU"


if not _GPUS:  # one visible skip for the whole module
    pytest.skip(_WHY, allow_module_level=True)


def close(gpu, cpu, rtol=1e-10, atol=1e-12):
    np.testing.assert_allclose(backend.to_host(gpu), cpu, rtol=rtol, atol=atol)


@pytest.mark.parametrize("make, make_input", [case[1:] for case in LAYER_CASES], ids=[c[0] for c in LAYER_CASES])
def test_every_layer_on_the_gpu_equals_numpy(make, make_input, rng):
    X = make_input(rng)
    host, gpu = twin_layers(make, rng)
    gpu.to("cuda")
    Z_host, Z_gpu = host.forward(X), gpu.forward(cupy.asarray(X))
    assert isinstance(Z_gpu, cupy.ndarray)
    dZ = rng.normal(size=Z_host.shape)
    dX_host, dX_gpu = host.backward(dZ), gpu.backward(cupy.asarray(dZ))
    if draws_at_random(host):
        return  # masks come from each device's own generator: nothing to compare
    close(Z_gpu, Z_host)
    if dX_host is not None:
        close(dX_gpu, dX_host)
    for (name, p_host), (_, p_gpu) in zip(host.named_parameters(), gpu.named_parameters()):
        close(p_gpu.grad, p_host.grad)
    for (name, b_host), (_, b_gpu) in zip(host.named_buffers(), gpu.named_buffers()):
        close(b_gpu.data, b_host.data)


@pytest.mark.parametrize("make, make_input", [case[1:] for case in LAYER_CASES], ids=[c[0] for c in LAYER_CASES])
def test_the_gradcheck_sweep_passes_on_the_gpu(make, make_input, rng):
    module = make()
    for parameter in module.parameters():
        parameter.data += rng.normal(scale=0.1, size=parameter.shape)
    module.to("cuda")
    report = nl.gradcheck(module, cupy.asarray(make_input(rng)))
    assert report.passed


def run(device):
    from nnlayers.examples import mnist
    images, labels = nl.datasets.load_mnist_sample(shuffle=True, rng=0)
    X = mnist.prepare(images[:512], "cnn", dtype=np.float64)
    model = mnist.cnn(1, 28, 10, width=4, hidden=16, rng=0, dtype=np.float64).to(device)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(model.parameters()), metric=nl.accuracy)
    history = trainer.fit(X, labels[:512], epochs=2, batch_size=64, rng=0, progress=False)
    return model, history, X


def test_a_short_training_run_matches_the_cpu_loss_curve():
    _, cpu, _ = run("cpu")
    _, gpu, _ = run("cuda")
    np.testing.assert_allclose(gpu.loss, cpu.loss, rtol=1e-9)
    np.testing.assert_allclose(gpu.accuracy, cpu.accuracy, rtol=1e-9)


def test_save_on_the_gpu_load_on_the_cpu(tmp_path):
    model, _, X = run("cuda")
    nl.save(model, tmp_path / "gpu.npz")
    from nnlayers.examples import mnist
    cpu = mnist.cnn(1, 28, 10, width=4, hidden=16, rng=9, dtype=np.float64)
    nl.load(cpu, tmp_path / "gpu.npz")
    model.eval(), cpu.eval()
    close(model.forward(cupy.asarray(X[:8])), cpu.forward(X[:8]))


def test_mismatched_devices_are_a_clear_error():
    model = nl.Sequential(nl.Linear(2, 3, rng=0)).to("cuda")
    with pytest.raises(backend.DeviceError, match=r"its input is on cpu but its weights are on cuda:0"):
        model.forward(np.ones((1, 2)))
