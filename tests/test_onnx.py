"""ONNX export: every layer maps to ONNX operators, and ONNX Runtime computes what ``model.forward`` does.

The comparisons run the exported file in ONNX Runtime's CPU provider and the
model's own ``forward`` in eval mode on the same inputs. Agreement is
measured against the output's scale: |ONNX − forward| ≤ rtol · max |forward|
element-wise (plus rtol on each element's own size), rtol = 1e-5 in float32.
"""
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.examples import mnist
from nnlayers.module import as_tuple
from nnlayers.examples.xor import XOR_X, XOR_Y, train_xor, xor_network
from tests.helpers import importable, load_script, require, run_script
from tests.test_gradcheck import LAYER_CASES

HAVE_ONNX = importable("onnx", "onnxruntime")
MISSING = "onnx and onnxruntime are not installed (pip install -e '.[onnx]')"
FLOAT32_RTOL = 1e-5


@pytest.fixture
def onnx():
    require(HAVE_ONNX, MISSING)
    import onnx
    return onnx


@pytest.fixture
def ort(onnx):
    import onnxruntime
    return onnxruntime


def session(ort, source):
    """An ONNX Runtime CPU session for a file path or a ModelProto."""
    source = source.SerializeToString() if hasattr(source, "SerializeToString") else str(source)
    return ort.InferenceSession(source, providers=["CPUExecutionProvider"])


def run(sess, X):
    return sess.run(None, {"X": X})[0]


def assert_close(actual, expected, rtol=FLOAT32_RTOL):
    assert actual.shape == expected.shape
    scale = float(np.abs(expected).max())
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=rtol * scale)


def eval_forward(model, X):
    with nl.evaluation_mode(model):
        return model.forward(X)


def randomise_statistics(model, rng):
    """Non-trivial γ, β, running mean and variance, so that every term of the BatchNorm formula matters."""
    for name, parameter in model.named_parameters():
        if name.endswith(("gamma", "beta")):
            parameter.data[...] = rng.normal(1.0 if name.endswith("gamma") else 0.0, 0.3, parameter.shape)
    for name, buffer in model.named_buffers():
        if name.endswith("running_mean"):
            buffer.data[...] = rng.normal(0, 0.5, buffer.shape)
        elif name.endswith("running_var"):
            buffer.data[...] = rng.uniform(0.5, 2.0, buffer.shape)


def bn_cnn(rng, dtype=np.float32):
    model = nl.Sequential(
        nl.Conv2D(1, 8, 3, padding=1, bias=False, rng=rng, dtype=dtype), nl.BatchNorm2d(8, dtype=dtype), nl.ReLU(),
        nl.MaxPool2D(2),
        nl.Conv2D(8, 16, 3, padding=1, bias=False, rng=rng, dtype=dtype), nl.BatchNorm2d(16, dtype=dtype), nl.ReLU(),
        nl.GlobalAvgPool2D(),
        nl.Linear(16, 32, init="he", rng=rng, dtype=dtype), nl.BatchNorm1d(32, dtype=dtype), nl.ReLU(),
        nl.Dropout(0.3, rng=0),
        nl.Linear(32, 10, rng=rng, dtype=dtype), nl.Bias(10, dtype=dtype))
    randomise_statistics(model, rng)
    return model


def resnet(rng, dtype=np.float32):
    """A small ResNet: a strided stem (28 → 14), an identity block, a downsampling block (14 → 7) with a
    projection shortcut, then global average pooling and a linear head."""

    def conv(c_in, c_out, k=3, stride=1):
        return nl.Conv2D(c_in, c_out, k, stride=stride, padding=k // 2, bias=False, rng=rng, dtype=dtype)

    model = nl.Sequential(
        conv(1, 8, stride=2), nl.BatchNorm2d(8, dtype=dtype), nl.ReLU(),
        nl.Residual(nl.Sequential(conv(8, 8), nl.BatchNorm2d(8, dtype=dtype), nl.ReLU(), conv(8, 8),
                                  nl.BatchNorm2d(8, dtype=dtype))),
        nl.ReLU(),
        nl.Residual(nl.Sequential(conv(8, 16, stride=2), nl.BatchNorm2d(16, dtype=dtype), nl.ReLU(), conv(16, 16),
                                  nl.BatchNorm2d(16, dtype=dtype)),
                    shortcut=nl.Sequential(conv(8, 16, k=1, stride=2), nl.BatchNorm2d(16, dtype=dtype))),
        nl.ReLU(),
        nl.GlobalAvgPool2D(),
        nl.Linear(16, 10, rng=rng, dtype=dtype), nl.Bias(10, dtype=dtype))
    randomise_statistics(model, rng)
    return model


# -- the library's models in ONNX Runtime --------------------------------------------------------

def test_xor_network_float64_and_float32(ort, tmp_path):
    result = train_xor()                                    # the derivation's network, trained: float64
    model = result.model
    path = tmp_path / "xor.onnx"
    proto = nl.export_onnx(model, path, (2,))
    assert proto.graph.input[0].type.tensor_type.elem_type == 11          # DOUBLE
    Z = run(session(ort, path), XOR_X)
    np.testing.assert_allclose(Z, eval_forward(model, XOR_X), rtol=1e-12, atol=1e-15)
    assert np.abs(Z - XOR_Y).max() < 0.1
    # The same network as float32, for runtimes that want it: one line.
    nl.export_onnx(model, path, (2,), dtype=np.float32)
    Z32 = run(session(ort, path), XOR_X.astype(np.float32))
    assert Z32.dtype == np.float32
    assert_close(Z32, eval_forward(model, XOR_X), rtol=1e-6)
    # A float32 XOR network straight from the constructor.
    model32 = xor_network(8, rng=5, dtype=np.float32)
    nl.export_onnx(model32, path, (2,))
    X = np.random.default_rng(0).normal(size=(37, 2)).astype(np.float32)
    assert_close(run(session(ort, path), X), eval_forward(model32, X))


@pytest.fixture(scope="module")
def sample_split():
    return mnist.load_split()


def briefly_trained(name, split):
    """A reference model after one epoch on 1,000 training digits (weights and biases far from their start)."""
    model = mnist.build(name, rng=0)
    X = mnist.prepare(split.train_images[:1000], name)
    trainer = nl.Trainer(model, nl.SoftmaxCrossEntropy(), nl.Adam(model.parameters(), lr=2e-3))
    trainer.fit(X, split.train_labels[:1000], epochs=1, batch_size=50, rng=0, progress=False)
    return model


def check_on_the_sample_test_split(ort, model, kind, split, path):
    """Random inputs and the shipped test digits: batches of 1, 37 and all 2,000 through one file."""
    X_test = mnist.prepare(split.test_images, kind)
    nl.export_onnx(model, path, X_test.shape[1:])
    sess = session(ort, path)
    expected = eval_forward(model, X_test)
    full = run(sess, X_test)
    assert full.dtype == np.float32 and full.shape == (2000, 10)
    assert_close(full, expected)
    np.testing.assert_array_equal(full.argmax(axis=1), expected.argmax(axis=1))
    for start, size in [(0, 1), (1234, 1), (100, 37), (1963, 37)]:
        assert_close(run(sess, X_test[start:start + size]), expected[start:start + size])
    noise = np.random.default_rng(7).random((37, *X_test.shape[1:]), dtype=np.float32)
    assert_close(run(sess, noise), eval_forward(model, noise))
    return np.mean(full.argmax(axis=1) == split.test_labels)


@pytest.mark.parametrize("kind", ["mlp", "cnn"])
def test_reference_models_match_on_the_shipped_test_split(ort, tmp_path, sample_split, kind):
    model = briefly_trained(kind, sample_split)
    accuracy = check_on_the_sample_test_split(ort, model, kind, sample_split, tmp_path / f"{kind}.onnx")
    assert accuracy > 0.7                                   # a real classifier (0.81 and 0.82), not noise


def test_batchnorm_cnn(ort, tmp_path, sample_split):
    model = bn_cnn(np.random.default_rng(0))
    check_on_the_sample_test_split(ort, model, "cnn", sample_split, tmp_path / "bn.onnx")
    proto = nl.export_onnx(model, None, (1, 28, 28))
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("BatchNormalization") == 3 and "GlobalAveragePool" in ops
    names = [tensor.name for tensor in proto.graph.initializer]
    assert {"1.gamma", "1.beta", "1.running_mean", "1.running_var", "9.running_var"} <= set(names)
    assert not any("num_batches_tracked" in name for name in names)
    epsilon = [a.f for node in proto.graph.node for a in node.attribute
               if node.op_type == "BatchNormalization" and a.name == "epsilon"]
    assert epsilon == pytest.approx([1e-5] * 3)


def test_resnet_with_projection_shortcut(ort, tmp_path, sample_split):
    model = resnet(np.random.default_rng(1))
    check_on_the_sample_test_split(ort, model, "cnn", sample_split, tmp_path / "resnet.onnx")
    proto = nl.export_onnx(model, None, (1, 28, 28))
    adds = [node.name for node in proto.graph.node if node.op_type == "Add"]
    assert adds == ["/3/Add", "/5/Add", "/9/Add"]           # two skip connections, then the Bias
    assert "5.shortcut.0.W" in [tensor.name for tensor in proto.graph.initializer]


@pytest.mark.parametrize("make, make_input", [case[1:] for case in LAYER_CASES], ids=[c[0] for c in LAYER_CASES])
def test_every_layer_of_the_gradcheck_sweep(ort, make, make_input, rng):
    """Each layer and small model of the shared sweep, its float64 weights exported as float32."""
    module = make()
    for parameter in module.parameters():
        parameter.data += rng.normal(scale=0.1, size=parameter.shape)
    X = make_input(rng)
    if nl.onnx.exporter_for(module) is None:                # FixedMaskDropout redefines forward
        with pytest.raises(nl.onnx.OnnxExportError, match="redefines how it computes"):
            nl.export_onnx(module, None, X.shape[1:])
        return
    sess = session(ort, nl.export_onnx(module, None, X.shape[1:], dtype=np.float32))
    expected = eval_forward(module, X)
    assert_close(run(sess, X.astype(np.float32)), expected)
    assert_close(run(sess, X[:1].astype(np.float32)), expected[:1])


def test_conv_padding_same_and_odd_geometry(ort):
    conv = nl.Conv2D(2, 3, (3, 5), padding="same", rng=0, dtype=np.float32)
    conv.b.data[...] = [0.5, -1.0, 2.0]
    model = nl.Sequential(conv, nl.Tanh(), nl.Conv2D(3, 4, 2, stride=(2, 3), padding=(0, 1), rng=1, dtype=np.float32),
                          nl.AvgPool2D(2, stride=1), nl.MaxPool2D((2, 1)))
    X = np.random.default_rng(0).normal(size=(5, 2, 9, 11)).astype(np.float32)
    assert conv.forward(X).shape == (5, 3, 9, 11)
    proto = nl.export_onnx(model, None, (2, 9, 11))
    first = proto.graph.node[0]
    assert {a.name: list(a.ints) for a in first.attribute if a.ints} == {
        "kernel_shape": [3, 5], "strides": [1, 1], "pads": [1, 2, 1, 2], "dilations": [1, 1]}
    assert_close(run(session(ort, proto), X), eval_forward(model, X))


def test_softmax_output_and_opsets(ort):
    model = mnist.build("mlp", rng=3)
    X = np.random.default_rng(0).random((37, 784), dtype=np.float32)
    expected = nl.softmax(eval_forward(model, X))
    for opset in (nl.onnx.MIN_OPSET, nl.onnx.DEFAULT_OPSET, 21):
        proto = nl.export_onnx(model, None, (784,), softmax=True, opset=opset)
        assert proto.opset_import[0].version == opset and proto.graph.output[0].name == "P"
        P = run(session(ort, proto), X)
        assert_close(P, expected)
        np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-6)


# -- what the file says -----------------------------------------------------------------------

def test_the_file_passes_the_full_check_and_names_everything(onnx, tmp_path):
    model = mnist.build("cnn", rng=0)
    path = tmp_path / "cnn.onnx"
    returned = nl.export_onnx(model, path, (1, 28, 28))
    proto = onnx.load(str(path))
    assert proto == returned
    onnx.checker.check_model(proto, full_check=True)
    assert proto.producer_name == "nnlayers" and proto.producer_version == nl.__version__
    assert proto.doc_string.startswith(f"Exported by nnlayers {nl.__version__}")
    assert "Conv2D(1, 16, kernel_size=3, stride=1, padding=1, input_grad=False)" in proto.doc_string
    (graph_input,), (graph_output,) = proto.graph.input, proto.graph.output
    assert graph_input.name == "X" and graph_output.name == "Z"
    assert [d.dim_param or d.dim_value for d in graph_input.type.tensor_type.shape.dim] == ["N", 1, 28, 28]
    assert [d.dim_param or d.dim_value for d in graph_output.type.tensor_type.shape.dim] == ["N", 10]
    # One initializer per parameter, under its dotted name, its values bit for bit.
    arrays = {tensor.name: onnx.numpy_helper.to_array(tensor) for tensor in proto.graph.initializer}
    assert list(arrays) == [name for name, _ in model.named_parameters()]
    for name, parameter in model.named_parameters():
        assert arrays[name].dtype == parameter.data.dtype
        assert arrays[name].tobytes() == parameter.data.tobytes()
    assert [node.op_type for node in proto.graph.node] == [
        "Conv", "Relu", "MaxPool", "Conv", "Relu", "MaxPool", "Flatten", "MatMul", "Add", "Relu", "Identity",
        "MatMul", "Add"]
    matmul = next(node for node in proto.graph.node if node.op_type == "MatMul")
    assert list(matmul.input)[1] == "7.W" and arrays["7.W"].shape == (32 * 7 * 7, 128)   # in×out, as stored


def test_exporting_changes_nothing_in_the_model(onnx, rng):
    model = nl.Sequential(nl.Conv2D(1, 2, 3, rng=0), nl.ReLU(), nl.Dropout(0.5, rng=0), nl.Flatten(),
                          nl.Linear(8, 3, rng=1), nl.Bias(3))
    model[2].eval()                                         # a sub-layer's own mode must survive too
    X = rng.normal(size=(4, 1, 4, 4))
    dZ = rng.normal(size=(4, 3))
    before = {name: (array.copy(), array.dtype) for name, array in model.state_dict().items()}
    data = [parameter.data for parameter in model.parameters()]
    model.forward(X)                                        # a training step half done: forward cached
    nl.export_onnx(model, None, (1, 4, 4))
    dX = model.backward(dZ)                                 # the caches survived the export
    grads = [parameter.grad.copy() for parameter in model.parameters()]
    assert [module.training for module in model.modules()] == [True, True, True, False, True, True, True]
    for (name, array), parameter in zip(model.state_dict().items(), model.parameters()):
        assert array.dtype == before[name][1] and array.tobytes() == before[name][0].tobytes()
    assert all(parameter.data is kept for parameter, kept in zip(model.parameters(), data))
    fresh = nl.Sequential(nl.Conv2D(1, 2, 3, rng=0), nl.ReLU(), nl.Dropout(0.5, rng=0), nl.Flatten(),
                          nl.Linear(8, 3, rng=1), nl.Bias(3))
    fresh[2].eval()
    fresh.forward(X)
    np.testing.assert_array_equal(dX, fresh.backward(dZ))
    for grad, parameter in zip(grads, fresh.parameters()):
        np.testing.assert_array_equal(grad, parameter.grad)


# -- errors and a user's own layers ---------------------------------------------------------------

class Softplus(nl.Elementwise):
    """Z = log(1 + eˣ): no exporter is registered for it."""

    needs_input = True

    def function(self, X):
        return np.logaddexp(0, X)

    def derivative(self, X, Z):
        return nl.sigmoid(X)


class Gate(nl.Module):
    """A user's container: Z = value(X) ⊙ σ(gate(X)) (forward only; enough for an export)."""

    def __init__(self, features, rng):
        super().__init__()
        self.value = self.add_module("value", nl.Linear(features, features, rng=rng, dtype=np.float32))
        self.gate = self.add_module("gate", nl.Linear(features, features, rng=rng, dtype=np.float32))

    def forward(self, X):
        return self.value.forward(X) * nl.sigmoid(self.gate.forward(X))


def export_gate(layer, graph, X):
    return graph.node("Mul", [graph.export(layer.value, X), graph.node("Sigmoid", [graph.export(layer.gate, X)])])


def test_an_unsupported_layer_is_named_with_its_place(onnx):
    model = nl.Sequential(nl.Linear(3, 4, rng=0), nl.Residual(nl.Sequential(nl.Tanh(), Softplus())))
    with pytest.raises(nl.onnx.OnnxExportError) as info:
        nl.export_onnx(model, None, (3,))
    message = str(info.value)
    assert message.startswith("layer 1 > block > layer 1 (Softplus()): cannot export Softplus to ONNX")
    assert "nl.onnx.register_exporter(Softplus, function)" in message
    # A user's container without an exporter: its children cannot be combined blindly.
    outer = nl.Sequential(nl.Flatten(), Gate(4, rng=0))
    with pytest.raises(nl.onnx.OnnxExportError, match=r"^layer 1 \(Gate\(…\)\): cannot export Gate to ONNX: it is "
                                                      r"a container \(children value, gate\)"):
        nl.export_onnx(outer, None, (2, 2))


def test_a_subclass_uses_its_base_exporter_unless_it_computes_differently(onnx):
    class NamedReLU(nl.ReLU):
        """Only a new name: ReLU's exporter fits."""

    class ShiftedReLU(nl.ReLU):
        def function(self, X):
            return np.maximum(X - 1, 0)

    assert nl.onnx.exporter_for(NamedReLU()) is nl.onnx.exporter_for(nl.ReLU)
    assert nl.onnx.exporter_for(ShiftedReLU) is None
    with pytest.raises(nl.onnx.OnnxExportError, match=r"^layer 0 \(ShiftedReLU\(\)\): .* subclasses ReLU but "
                                                      r"redefines how it computes"):
        nl.export_onnx(nl.Sequential(ShiftedReLU()), None, (3,))
    assert nl.onnx.exporter_for(type("MyNet", (nl.Sequential,), {})) is nl.onnx.exporter_for(nl.Sequential)


def test_a_users_layer_and_container_register_their_exporters(ort, monkeypatch):
    class Cube(nl.Module):
        def forward(self, X):
            return self.float_input(X) ** 3

    monkeypatch.setitem(nl.onnx.EXPORTERS, Gate, export_gate)           # undone after the test
    monkeypatch.setitem(nl.onnx.EXPORTERS, Cube, None)

    @nl.onnx.register_exporter(Cube)                                     # the decorator form
    def export_cube(layer, graph, X):
        return graph.node("Mul", [X, graph.node("Mul", [X, X])])

    assert nl.onnx.exporter_for(Cube) is export_cube
    model = nl.Sequential(nl.Flatten(), Gate(6, rng=0), Cube(), nl.Bias(6, dtype=np.float32))
    model[3].b.data[...] = np.arange(6) / 10
    X = np.random.default_rng(0).normal(size=(37, 2, 3)).astype(np.float32)
    proto = nl.export_onnx(model, None, (2, 3))
    assert [tensor.name for tensor in proto.graph.initializer] == ["1.value.W", "1.gate.W", "3.b"]
    assert "/1/Mul" in [node.name for node in proto.graph.node]
    assert_close(run(session(ort, proto), X), eval_forward(model, X))


def test_mistakes_in_a_users_exporter_are_named(onnx, monkeypatch):
    class Twice(nl.Module):
        def forward(self, X):
            return 2 * self.float_input(X)

    model = nl.Sequential(nl.Linear(2, 2, rng=0), Twice())
    monkeypatch.setitem(nl.onnx.EXPORTERS, Twice, lambda layer, graph, X: graph.node("Mul", [X, "two"]))
    with pytest.raises(nl.onnx.OnnxExportError, match=r"^layer 1: Mul reads 'two', which no earlier node"):
        nl.export_onnx(model, None, (2,))
    monkeypatch.setitem(nl.onnx.EXPORTERS, Twice, lambda layer, graph, X: None)
    with pytest.raises(nl.onnx.OnnxExportError, match="returned None, not the name of a value"):
        nl.export_onnx(model, None, (2,))
    monkeypatch.setitem(nl.onnx.EXPORTERS, Twice, lambda layer, graph, X: graph.node("NoSuchOp", [X]))
    with pytest.raises(nl.onnx.OnnxExportError, match="fails onnx.checker.*NoSuchOp"):
        nl.export_onnx(model, None, (2,))
    monkeypatch.setitem(nl.onnx.EXPORTERS, Twice, lambda layer, graph, X: graph.node(
        "Mul", [X, graph.constant(2.0, "two")]))
    proto = nl.export_onnx(model, None, (2,))
    assert [tensor.name for tensor in proto.graph.initializer] == ["0.W", "/1/two"]


def test_argument_errors(onnx, tmp_path):
    model = mnist.build("mlp", rng=0)
    with pytest.raises(nl.onnx.OnnxExportError, match=r"cannot take input of shape \(N, 785\): layer 0 forward: "
                                                      r"Linear\(in_features=784.*expected input with 784 features"):
        nl.export_onnx(model, tmp_path / "x.onnx", (785,))
    assert not list(tmp_path.iterdir())                     # nothing written on failure
    for shape in [784, (), (0,), (2.0,), (True,)]:
        with pytest.raises(ValueError, match="input_shape must be one sample's shape"):
            nl.export_onnx(model, None, shape)
    for opset, error in [(12, ValueError), (10_000, ValueError), ("17", TypeError), (17.0, TypeError),
                         (True, TypeError), (None, TypeError)]:
        with pytest.raises(error, match="opset must be an integer from 13") as caught:
            nl.export_onnx(model, None, (784,), opset=opset)
        assert type(caught.value) is error
    with pytest.raises(ValueError, match="dtype must be float32 or float64"):
        nl.export_onnx(model, None, (784,), dtype=np.float16)
    mixed = nl.Sequential(nl.Linear(2, 2, rng=0), nl.Linear(2, 2, rng=0, dtype=np.float32))
    with pytest.raises(nl.onnx.OnnxExportError, match="mix float32 and float64; pass dtype="):
        nl.export_onnx(mixed, None, (2,))
    huge = nl.Linear(2, 1)
    huge.W.data[0, 0] = 1e300
    with pytest.raises(nl.onnx.OnnxExportError, match="W holds values too large for float32"):
        nl.export_onnx(huge, None, (2,), dtype=np.float32)
    with pytest.raises(TypeError, match="expected a Module"):
        nl.export_onnx(lambda X: X, None, (2,))


def test_an_empty_model_and_a_bare_layer(ort):
    X = np.random.default_rng(0).normal(size=(3, 4)).astype(np.float32)
    np.testing.assert_array_equal(run(session(ort, nl.export_onnx(nl.Sequential(), None, (4,))), X), X)
    layer = nl.Linear(4, 2, rng=0, dtype=np.float32)
    proto = nl.export_onnx(layer, None, (4,))
    assert [tensor.name for tensor in proto.graph.initializer] == ["W"]
    assert_close(run(session(ort, proto), X), X @ layer.W.data)


def test_without_onnx_the_error_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "onnx", None)          # import onnx now raises ImportError
    with pytest.raises(ImportError, match=re.escape("pip install -e '.[onnx]'")):
        nl.export_onnx(nl.Linear(2, 1), None, (2,))


def test_train_mnist_script_exports_onnx(ort, tmp_path, sample_split):
    path = tmp_path / "mlp.onnx"
    result = run_script("train_mnist.py", "--model", "mlp", "--epochs", "1", "--limit", "400", "--quiet",
                        "--export-onnx", path)
    assert result.returncode == 0, result.stderr
    printed = float(re.search(r"test accuracy: (\d\.\d{4})", result.stdout).group(1))
    assert f"exported to {path}" in result.stdout
    P = run(session(ort, path), mnist.prepare(sample_split.test_images[:400], "mlp"))
    np.testing.assert_allclose(P.sum(axis=1), 1, rtol=1e-5)                 # probabilities
    assert np.mean(P.argmax(axis=1) == sample_split.test_labels[:400]) == pytest.approx(printed, abs=1e-4)


def test_train_mnist_script_without_onnx_stops_before_training(monkeypatch, capsys, tmp_path):
    script = load_script("train_mnist.py")
    monkeypatch.setitem(sys.modules, "onnx", None)
    monkeypatch.setattr(script.mnist, "load_split", lambda *args: pytest.fail("training started"))
    assert script.main(["--export-onnx", str(tmp_path / "m.onnx"), "--quiet"]) == 2
    assert "error: --export-onnx: exporting to ONNX needs the optional 'onnx' package: install it with " \
           "pip install -e '.[onnx]'" in capsys.readouterr().err


# -- several inputs and outputs: the merge containers ------------------------------------------------
Sequential, Parallel, Add, Concatenate = nl.Sequential, nl.Parallel, nl.Add, nl.Concatenate


@pytest.fixture
def merges():
    """The merges' exporters, registered with the other containers' when nnlayers.onnx is imported."""
    assert [nl.onnx.exporter_for(cls) for cls in (Parallel, Add, Concatenate)] == [
        nl.onnx.export_parallel, nl.onnx.export_add, nl.onnx.export_concatenate]


def run_all(sess, *Xs):
    return sess.run(None, {f"X{i}" if len(Xs) > 1 else "X": X for i, X in enumerate(Xs)})


def eval_forward_all(model, *Xs):
    with nl.evaluation_mode(model):
        return as_tuple(model.forward(*Xs))


TOLERANCES = {np.float32: FLOAT32_RTOL, np.float64: 1e-12}


def two_input_model(dtype):
    """Z = σ(tanh([X₁ X₂] W₁) + [X₁ X₂] W₂ + b₂ + b): two branches over both inputs, merged by Add."""
    return Sequential(
        Parallel(Sequential(Concatenate(), nl.Linear(5, 4, rng=0, dtype=dtype), nl.Tanh()),
                 Sequential(Concatenate(axis=-1), nl.Linear(5, 4, rng=1, dtype=dtype), nl.Bias(4, dtype=dtype))),
        Add(), nl.Bias(4, dtype=dtype), nl.Sigmoid())


def two_output_model(dtype):
    """(Z₁, Z₂) = (H W₁, ReLU(H W₂)) with H = tanh(X W): one trunk, two heads."""
    return Sequential(nl.Linear(3, 4, rng=2, dtype=dtype), nl.Tanh(),
                      Parallel(nl.Linear(4, 2, rng=3, dtype=dtype),
                               Sequential(nl.Linear(4, 5, rng=4, dtype=dtype), nl.ReLU())))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_two_input_model_in_onnx_runtime(ort, merges, rng, dtype):
    model = two_input_model(dtype)
    for parameter in model.parameters():
        parameter.data += rng.normal(scale=0.3, size=parameter.shape).astype(dtype)
    proto = nl.export_onnx(model, None, ((2,), (3,)))
    assert [value.name for value in proto.graph.input] == ["X0", "X1"]
    assert [value.name for value in proto.graph.output] == ["Z"]
    assert [[d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
            for value in proto.graph.input] == [["N", 2], ["N", 3]]
    ops = [node.op_type for node in proto.graph.node]
    assert ops.count("Concat") == 2 and ops.count("Sum") == 1
    sess = session(ort, proto)
    for N in (1, 37):
        X1, X2 = rng.normal(size=(N, 2)).astype(dtype), rng.normal(size=(N, 3)).astype(dtype)
        (Z,) = run_all(sess, X1, X2)
        (expected,) = eval_forward_all(model, X1, X2)
        assert Z.dtype == dtype
        assert_close(Z, expected, rtol=TOLERANCES[dtype])


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_a_two_output_model_in_onnx_runtime(ort, merges, rng, dtype):
    model = two_output_model(dtype)
    proto = nl.export_onnx(model, None, (3,))
    assert [value.name for value in proto.graph.input] == ["X"]
    assert [value.name for value in proto.graph.output] == ["Z0", "Z1"]
    assert [[d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
            for value in proto.graph.output] == [["N", 2], ["N", 5]]
    X = rng.normal(size=(37, 3)).astype(dtype)
    outputs = run_all(session(ort, proto), X)
    expected = eval_forward_all(model, X)
    assert len(outputs) == len(expected) == 2
    for Z, Z_expected in zip(outputs, expected):
        assert_close(Z, Z_expected, rtol=TOLERANCES[dtype])
    P0, P1 = run_all(session(ort, nl.export_onnx(model, None, (3,), softmax=True)), X)   # one softmax per output
    assert_close(P0, nl.softmax(expected[0]))
    assert_close(P1, nl.softmax(expected[1]))


def test_merges_alone_and_outputs_that_are_inputs(ort, merges, rng):
    X1, X2 = rng.normal(size=(4, 3)), rng.normal(size=(4, 3))
    model = Parallel(Add(), Concatenate(axis=1))                           # two inputs, two outputs, no weights
    proto = nl.export_onnx(model, None, ((3,), (3,)), dtype=np.float64)
    assert [value.name for value in proto.graph.output] == ["Z0", "Z1"]
    Z0, Z1 = run_all(session(ort, proto), X1, X2)
    np.testing.assert_array_equal(Z0, X1 + X2)
    np.testing.assert_array_equal(Z1, np.concatenate([X1, X2], axis=1))
    # Outputs that are the input itself, twice: each becomes its own Identity.
    twice = Parallel(Sequential(), Sequential())
    proto = nl.export_onnx(twice, None, (3,), dtype=np.float64)
    assert [node.op_type for node in proto.graph.node] == ["Identity", "Identity"]
    Z0, Z1 = run_all(session(ort, proto), X1)
    np.testing.assert_array_equal(Z0, X1)
    np.testing.assert_array_equal(Z1, X1)


class GatedMerge(nl.Module):
    """A user's two-input layer: Z = X ⊙ σ(G) (forward only; enough for an export)."""

    def forward(self, X, G):
        return self.float_input(X) * nl.sigmoid(self.float_input(G))


def test_a_users_two_input_layer_and_the_exporter_signature(ort, merges, monkeypatch, rng):
    @nl.onnx.register_exporter(GatedMerge)
    def export_gated_merge(layer, graph, X, G):                                   # one name per input of forward
        return graph.node("Mul", [X, graph.node("Sigmoid", [G])])

    model = Sequential(Parallel(nl.Linear(2, 3, rng=0), nl.Linear(2, 3, rng=1)), GatedMerge())
    X = rng.normal(size=(5, 2))
    (Z,) = run_all(session(ort, nl.export_onnx(model, None, (2,))), X)
    assert_close(Z, eval_forward(model, X), rtol=1e-12)
    # An exporter that gives another number of outputs than forward does is refused.
    monkeypatch.setitem(nl.onnx.EXPORTERS, GatedMerge, lambda layer, graph, X, G: (X, G))
    with pytest.raises(nl.onnx.OnnxExportError, match="exporter gave 2 outputs, its forward 1"):
        nl.export_onnx(model, None, (2,))
    monkeypatch.setitem(nl.onnx.EXPORTERS, GatedMerge, lambda layer, graph, X, G: (X, 3))
    with pytest.raises(nl.onnx.OnnxExportError, match=r"returned \(.*, 3\), not the name of a value"):
        nl.export_onnx(model, None, (2,))


def test_several_input_shapes_are_checked(onnx, merges):
    model = Sequential(Concatenate(), nl.Linear(5, 2, rng=0))
    for shape in [((2,), 3), ((2,), ()), ((2,), (0,)), (), ((2,), [3.0])]:
        with pytest.raises(ValueError, match="or a tuple of such shapes for a model of several inputs"):
            nl.export_onnx(model, None, shape)
    with pytest.raises(nl.onnx.OnnxExportError, match=r"cannot take input of shape \(N, 2\) and \(N, 4\): "
                                                      r"layer 1 forward: Linear\(in_features=5"):
        nl.export_onnx(model, None, ((2,), (4,)))


def test_batchnorm_with_momentum_none_exports(ort, rng):
    """momentum=None (the cumulative average) has no ONNX attribute; inference does not need one."""
    model = nl.Sequential(nl.Linear(3, 4, rng=0, dtype=np.float32), nl.BatchNorm1d(4, momentum=None, dtype=np.float32),
                          nl.Tanh(), nl.BatchNorm1d(4, momentum=0.25, dtype=np.float32))
    for X in rng.normal(size=(3, 8, 3)):
        model.forward(X.astype(np.float32))                                # running statistics of three batches
    proto = nl.export_onnx(model, None, (3,))
    momenta = [[a.f for a in node.attribute if a.name == "momentum"] for node in proto.graph.node
               if node.op_type == "BatchNormalization"]
    assert momenta == [[], [pytest.approx(0.75)]]
    X = rng.normal(size=(6, 3)).astype(np.float32)
    assert_close(run(session(ort, proto), X), eval_forward(model, X))


def test_importing_nnlayers_imports_no_onnx():
    code = "import sys, nnlayers; print(sorted(m for m in ('onnx', 'onnxruntime') if m in sys.modules))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            cwd=Path(__file__).resolve().parents[1])
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"


# -- sequences: integer ids, any length, recurrent operators -----------------------------------------

def dims(values) -> list:
    """Each graph input's or output's dimensions: sizes, or the names of symbolic ones ("" if unnamed)."""
    return [[d.dim_param if d.HasField("dim_param") else (d.dim_value if d.HasField("dim_value") else "")
             for d in value.type.tensor_type.shape.dim] for value in values]


def text_model(dtype=np.float32):
    """ids N×T → Embedding (V = 11, D = 4) → LSTM (H = 5) → Linear → Bias: scores N×T×11."""
    return nl.Sequential(nl.Embedding(11, 4, rng=0, dtype=dtype), nl.LSTM(4, 5, rng=1, dtype=dtype),
                         nl.Linear(5, 11, rng=2, dtype=dtype), nl.Bias(11, dtype=dtype))


def test_a_text_model_runs_at_any_sequence_length(onnx, ort, rng):
    model = text_model()
    for parameter in model.parameters():                                  # non-zero biases
        parameter.data += rng.normal(scale=0.2, size=parameter.shape).astype(np.float32)
    Z = model.forward(rng.integers(0, 11, size=(4, 6)))                   # just after a training step
    model.backward(np.ones(Z.shape, dtype=np.float32))
    proto = nl.export_onnx(model, None, ("T",))
    (ids,), (scores,) = proto.graph.input, proto.graph.output
    assert ids.type.tensor_type.elem_type == onnx.TensorProto.INT64        # ids come in as they are
    assert scores.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert dims(proto.graph.input) == [["N", "T"]] and dims(proto.graph.output) == [["N", "T", 11]]
    assert {"Gather", "LSTM"} <= {node.op_type for node in proto.graph.node}
    assert {"0.W", "1.W_x", "1.W_h", "1.b_x", "1.b_h"} <= {tensor.name for tensor in proto.graph.initializer}
    for sess in (session(ort, proto), session(ort, nl.export_onnx(model, None, ("T",), opset=nl.onnx.MIN_OPSET))):
        for N, T in [(3, 5), (2, 9), (1, 1)]:
            X = rng.integers(0, 11, size=(N, T))
            Z = run(sess, X)
            assert Z.dtype == np.float32
            assert_close(Z, eval_forward(model, X))


def test_a_recurrent_layer_with_initial_states_and_a_cell_with_two_outputs(ort, rng):
    # ONNX Runtime's CPU provider runs RNN, LSTM and GRU in float32 only
    lstm = nl.LSTM(3, 4, rng=0, dtype=np.float32)
    X, h0, c0 = (rng.normal(size=shape).astype(np.float32) for shape in [(2, 6, 3), (2, 4), (2, 4)])
    proto = nl.export_onnx(lstm, None, (("T", 3), (4,), (4,)))
    assert [value.name for value in proto.graph.input] == ["X0", "X1", "X2"]
    assert dims(proto.graph.output) == [["N", "T", 4]]
    (Z,) = run_all(session(ort, proto), X, h0, c0)
    assert_close(Z, lstm.forward(X, h0, c0))
    cell = nl.LSTMCell(3, 4, rng=1, dtype=np.float32)
    proto = nl.export_onnx(cell, None, ((3,), (4,), (4,)))
    assert [value.name for value in proto.graph.output] == ["Z0", "Z1"]
    h, c = run_all(session(ort, proto), X[:, 0], h0, c0)
    expected = cell.forward(X[:, 0], h0, c0)
    assert_close(h, expected[0])
    assert_close(c, expected[1])


def test_a_stateful_layer_exports_as_it_computes_from_zero_states(ort, rng):
    layer = nl.GRU(2, 3, stateful=True, rng=0, dtype=np.float32)
    X = rng.normal(size=(4, 5, 2)).astype(np.float32)
    layer.forward(X)                                                      # a state for a batch of 4 is carried
    carried = layer.state.copy()
    proto = nl.export_onnx(layer, None, (5, 2))                           # the probe (N = 1) starts from zeros
    np.testing.assert_array_equal(layer.state, carried)                   # the layer's own state is untouched
    layer.reset_state()
    assert_close(run(session(ort, proto), X), layer.forward(X))


def test_ids_read_as_numbers_first_stay_a_float_input_and_are_cast(ort, merges, rng):
    model = Parallel(nl.Linear(3, 2, rng=0), nl.Embedding(5, 2, rng=1))   # the same input, read both ways
    proto = nl.export_onnx(model, None, (3,), dtype=np.float64)
    assert proto.graph.input[0].type.tensor_type.elem_type == 11          # DOUBLE
    assert "Cast" in [node.op_type for node in proto.graph.node]
    X = rng.integers(0, 5, size=(4, 3)).astype(np.float64)
    for got, want in zip(run_all(session(ort, proto), X), eval_forward_all(model, X)):
        assert_close(got, want, rtol=1e-12)


def test_named_dimensions_are_checked_and_follow_into_the_outputs(onnx):
    model = nl.Sequential(nl.Linear(3, 2, rng=0), nl.Tanh())
    proto = nl.export_onnx(model, None, ("T", "S", 3))
    assert dims(proto.graph.input) == [["N", "T", "S", 3]] and dims(proto.graph.output) == [["N", "T", "S", 2]]
    pooled = nl.Sequential(nl.MaxPool2D(2), nl.Flatten())                 # H/2 · W/2: varies, but has no name
    assert dims(nl.export_onnx(pooled, None, (1, "H", 4), dtype=np.float32).graph.output) == [["N", ""]]
    for shape in [("N", 3), ("2T", 3), ("", 3), (("T", 3), ("T x", 2))]:
        with pytest.raises(ValueError, match="input_shape must be one sample's shape"):
            nl.export_onnx(model, None, shape)


def test_attention_layers_at_every_opset(ort, rng):
    """A pre-norm attention block with padding (LayerNorm composed before opset 17, LayerNormalization from it),
    masked Softmax and GELU: the same values at the oldest opset, the default and a newer one."""
    block = nl.Sequential(nl.LayerNorm(6), nl.MultiHeadAttention(6, 2, causal=True, rng=0), nl.GELU(),
                          nl.LayerNorm((4, 6)), nl.Softmax(axis=1))
    X = rng.normal(size=(3, 4, 6))
    expected = eval_forward(block, X)
    for opset in (nl.onnx.MIN_OPSET, nl.onnx.DEFAULT_OPSET, 21):
        proto = nl.export_onnx(block, None, (4, 6), opset=opset, dtype=np.float32)
        ops = {node.op_type for node in proto.graph.node}
        assert ("LayerNormalization" in ops) == (opset >= 17) and {"Erf", "Softmax", "Where", "Range"} <= ops
        assert_close(run(session(ort, proto), X.astype(np.float32)), expected)
    masked = nl.Softmax()
    proto = nl.export_onnx(masked, None, ((3, 5), (1, 5)), dtype=np.float32)
    mask = rng.random((2, 1, 5)) < 0.5
    mask[..., 0] = False
    Z = rng.normal(size=(2, 3, 5))
    got = session(ort, proto).run(None, {"X0": Z.astype(np.float32), "X1": mask.astype(np.float32)})[0]
    assert_close(got, masked.forward(Z, mask))
    assert np.all(got[np.broadcast_to(mask, got.shape)] == 0)


def test_input_dtype_declares_ids(onnx, ort, rng):
    model = text_model()
    proto = nl.export_onnx(model, None, ("T",), input_dtype=np.int64)    # as the model decides anyway
    assert proto.graph.input[0].type.tensor_type.elem_type == onnx.TensorProto.INT64
    X = rng.integers(0, 11, size=(2, 4))
    assert_close(run(session(ort, proto), X), eval_forward(model, X))
    two = Parallel(nl.Embedding(5, 2, rng=0), nl.Embedding(5, 3, rng=1))
    proto = nl.export_onnx(two, None, (3,), input_dtype=(np.int64,), dtype=np.float64)
    assert [value.type.tensor_type.elem_type for value in proto.graph.output] == [onnx.TensorProto.DOUBLE] * 2
    with pytest.raises(nl.onnx.OnnxExportError, match="input X is int64 .input_dtype., but the model reads it as "
                                                      "numbers"):
        nl.export_onnx(nl.Linear(3, 2, rng=0), None, (3,), input_dtype=np.int64)
    for wrong in [np.float32, "int32", (np.int64, None), "ids"]:
        with pytest.raises(ValueError, match="input_dtype must be"):
            nl.export_onnx(model, None, (4,), input_dtype=wrong)
