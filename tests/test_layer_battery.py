"""One battery over the layer catalogue (tests/catalogue.py): every check on every entry.

The checks, one test function each, parametrized over the catalogue:

* gradcheck: δX (each input's) and every parameter's gradient against central differences, float64;
* torch: PyTorch's twin in float64 gives the same Z, δX and parameter gradients (≤ 1e-10);
* empty-batch: N = 0 gives outputs of the right empty shapes and empty input gradients, or the
  clear error the entry names;
* no-mutation: forward and backward leave the inputs, the received gradients and the returned Z as they were,
  and the Z and δX they return are the caller's to write over (no gradient changes);
* clear-cache: backward before forward, or after ``clear_cache()``, raises the backward-before-forward
  RuntimeError, and every cache is dropped;
* settings: ``type(layer)(**layer.settings())`` has the same settings and, built in float32, float32 arrays;
* device: on the strict stand-in device (tests/strict_backend.py) it computes what it computes on the CPU,
  and everything it returns or keeps lives on that device;
* onnx: the float32 export in ONNX Runtime computes what the eval-mode forward does;
* save-load: ``nl.save`` then ``nl.load`` into a layer built from another seed gives identical outputs.

A check that cannot apply to an entry is skipped with the reason the entry gives.
Inputs and gradients are tuples throughout (``forward(*inputs)``, ``backward(*grads)``), so entries with
several inputs or outputs run the same checks.
"""
from __future__ import annotations

import contextlib

import numpy as np
import pytest

import nnlayers as nl
from nnlayers import backend
from nnlayers.gradcheck import TensorCheck
from nnlayers.module import as_tuple
from tests.catalogue import CATALOGUE, CHECKS
from tests.helpers import draws_at_random, importable, require
from tests.strict_backend import StrictArray

#: (case id, check) → why it fails today; strict: a check that passes makes the test fail, to remove it here.
KNOWN_FAILURES = {
}

RTOL, ATOL = 1e-10, 1e-12                       # PyTorch parity in float64
ONNX_RTOL = 1e-5                                # float32, relative to the output's largest value

cases = pytest.mark.parametrize("case", CATALOGUE, ids=[case.id for case in CATALOGUE])


# -- what every check shares -----------------------------------------------------------------------

def applies(case, check: str) -> None:
    """Skip, with the entry's reason, a check that cannot apply to ``case``."""
    if check in case.not_applicable:
        pytest.skip(f"{check} does not apply to {case.id}: {case.not_applicable[check]}")


@contextlib.contextmanager
def known_failure(reason: str | None):
    """Run the block; with a ``reason``, a failure is expected (xfail) and a pass is an error."""
    if reason is None:
        yield
        return
    try:
        yield
    except Exception as error:
        pytest.xfail(f"{reason}: {type(error).__name__}: {str(error).splitlines()[0][:160]}")
    pytest.fail(f"passes now, though expected to fail ({reason}): remove the expectation from "
                "tests/test_layer_battery.py")


def build(case, seed: int = 0, dtype=np.float64):
    """The entry's module, its parameters and floating buffers moved off their initial values (zero
    biases, unit variances), so that every one of them matters in every check."""
    module = case.make(dtype, seed)
    rng = np.random.default_rng(seed + 100)
    for parameter in module.parameters():
        parameter.data += rng.normal(scale=0.1, size=parameter.shape).astype(dtype)
    for buffer in module.buffers():
        if buffer.data.dtype.kind == "f":           # running means and variances (kept positive)
            buffer.data += rng.uniform(0.0, 0.5, size=buffer.shape).astype(buffer.data.dtype)
    return module


def example(case, seed: int = 1) -> tuple:
    return case.example_inputs(np.random.default_rng(seed))


def forward(module, inputs) -> tuple:
    """The module's outputs, as a tuple."""
    return as_tuple(module.forward(*inputs))


def backward(module, grads, inputs) -> tuple:
    """The module's input gradients, as a tuple of one per input (None where it gives none)."""
    dXs = module.backward(*grads)
    if len(inputs) == 1:
        return (dXs,)
    assert isinstance(dXs, tuple) and len(dXs) == len(inputs), \
        f"backward of a module with {len(inputs)} inputs returned {type(dXs).__name__}, not a tuple of as many"
    return dXs


def upstream(outputs, rng) -> tuple:
    """A random δZ for each output."""
    return tuple(rng.normal(size=np.shape(Z)) for Z in outputs)


def copies(arrays) -> list:
    return [None if a is None else backend.to_host(a).copy() for a in arrays]


def assert_same(arrays, saved, what: str) -> None:
    for i, (array, kept) in enumerate(zip(arrays, saved)):
        np.testing.assert_array_equal(backend.to_host(array), kept, err_msg=f"{what} {i} was modified")


# -- the catalogue itself ---------------------------------------------------------------------------

def public_layer_classes() -> set:
    """Every Module class among the library's public names (``nl.__all__``): layers and containers."""
    return {obj for obj in (getattr(nl, name) for name in nl.__all__)
            if isinstance(obj, type) and issubclass(obj, nl.Module) and obj is not nl.Module}


def test_every_layer_of_the_library_has_an_entry():
    built = [module for case in CATALOGUE for module in build(case).modules()]
    missing = sorted(cls.__name__ for cls in public_layer_classes()
                     if not any(isinstance(module, cls) for module in built))
    assert not missing, f"layers without a catalogue entry (tests/catalogue.py): {missing}"


def test_every_entry_is_well_formed():
    assert len({case.id for case in CATALOGUE}) == len(CATALOGUE), "ids must be unique"
    for case in CATALOGUE:
        assert set(case.not_applicable) <= set(CHECKS), case.id
        assert all(reason.strip() for reason in case.not_applicable.values()), case.id
        assert (case.torch is None) == ("torch" in case.not_applicable), \
            f"{case.id}: give a PyTorch twin, or the reason there is none"
        assert case.inputs and all(callable(spec) or isinstance(spec, tuple) for spec in case.inputs), case.id
    assert {case for case, _ in KNOWN_FAILURES} <= {case.id for case in CATALOGUE}


# -- the checks -----------------------------------------------------------------------------------

@cases
def test_gradcheck(case):
    applies(case, "gradcheck")
    module, inputs = build(case), example(case)
    report = nl.gradcheck(module, inputs if len(inputs) > 1 else inputs[0])
    assert report.passed
    named = [name for name, _ in module.named_parameters()]
    assert [c.name for c in report.checks][len(report.checks) - len(named):] == named
    # a boolean or integer input (a mask, ids) has a NoGradientCheck (its gradient must be None), no error size
    assert max((c.max_abs_error for c in report.checks if isinstance(c, TensorCheck)),
               default=0.0) < 1e-7


@cases
def test_matches_torch(case):
    applies(case, "torch")
    require(importable("torch"), "PyTorch is not installed (pip install torch==2.13.0); parity tests need it")
    import torch

    def tensor(array, grad=False):
        array = np.asarray(array)
        if array.dtype.kind in "iu":                # ids: torch's integer type, no gradient
            return torch.tensor(array, dtype=torch.int64)
        return torch.tensor(array, dtype=torch.float64, requires_grad=grad)

    def close(ours, theirs, what):
        theirs = theirs.detach().numpy() if isinstance(theirs, torch.Tensor) else np.asarray(theirs)
        np.testing.assert_allclose(ours, theirs, rtol=RTOL, atol=ATOL, err_msg=f"{case.id}: {what}")

    module, inputs = build(case), example(case)
    twin = case.torch(torch.nn)
    if isinstance(twin, torch.nn.Module):
        twin = twin.double().train(module.training)
    ours = {**dict(module.named_parameters()), **dict(module.named_buffers())}
    theirs = {**dict(twin.named_parameters()), **dict(twin.named_buffers())} if isinstance(twin, torch.nn.Module) \
        else {}
    unmapped = [name for name, _ in module.named_parameters() if name not in case.torch_params]
    assert not unmapped, f"{case.id}: torch_params leaves out {unmapped}: their gradients go unchecked"
    layout = {name: (target, lambda a: a) if isinstance(target, str) else target
              for name, target in case.torch_params.items()}
    with torch.no_grad():
        for name, (target, to_torch) in layout.items():
            theirs[target].copy_(tensor(to_torch(ours[name].data)))

    Zs = forward(module, inputs)
    tensors = [tensor(X, grad=True) for X in inputs]
    Zts = as_tuple(twin(*tensors))
    for k, (Z, Zt) in enumerate(zip(Zs, Zts)):
        close(Z, Zt, f"output {k}")
    grads = upstream(Zs, np.random.default_rng(2))
    dXs = backward(module, grads, inputs)
    torch.autograd.backward(Zts, [tensor(G) for G in grads])
    for i, (dX, Xt) in enumerate(zip(dXs, tensors)):
        if dX is not None:                          # None: input_grad=False
            close(dX, Xt.grad, f"δX of input {i}")
    for name, (target, to_torch) in layout.items():
        if name in dict(module.named_parameters()):
            close(to_torch(ours[name].grad), theirs[target].grad, f"δ{name}")
        else:                                       # a buffer: the running statistics after the step
            close(to_torch(ours[name].data), theirs[target], name)


@cases
def test_empty_batch(case):
    applies(case, "empty-batch")
    inputs = example(case)
    full = forward(build(case), inputs)
    module = build(case)
    empty = tuple(X[:0] for X in inputs)
    if case.empty_batch is not None:               # refused in training mode (no batch statistics) ...
        error, pattern = case.empty_batch
        with pytest.raises(error, match=pattern):
            module.forward(*empty)
        module.eval()                               # ... and taken in evaluation mode
        full = forward(build(case).eval(), inputs)
    Zs = forward(module, empty)
    assert [Z.shape for Z in Zs] == [(0, *Z.shape[1:]) for Z in full]
    module.zero_grad()
    dXs = backward(module, tuple(np.zeros(Z.shape) for Z in Zs), empty)
    for dX, X in zip(dXs, empty):
        assert dX is None or dX.shape == X.shape
    for name, parameter in module.named_parameters():
        assert not parameter.grad.any(), f"an empty batch added to δ{name}"


@cases
def test_no_mutation_of_inputs_or_gradients(case):
    applies(case, "no-mutation")
    module, inputs = build(case), example(case)
    saved_inputs = copies(inputs)
    Zs = forward(module, inputs)
    assert_same(inputs, saved_inputs, "forward: input")
    saved_outputs = copies(Zs)
    grads = upstream(Zs, np.random.default_rng(2))
    saved_grads = copies(grads)
    backward(module, grads, inputs)
    assert_same(inputs, saved_inputs, "backward: input")
    assert_same(grads, saved_grads, "backward: received gradient")
    assert_same(Zs, saved_outputs, "backward: returned output")


@cases
def test_returned_arrays_are_the_callers(case):
    """The contract (module.py): Z and δX belong to the caller, so writing over them changes no gradient,
    not even that of a second backward pass."""
    applies(case, "no-mutation")
    inputs = example(case)
    results = []
    for scribble in (False, True):
        module = build(case)
        Zs = forward(module, tuple(X.copy() for X in inputs))
        cached = [getattr(m, name) for m in module.modules() for name in type(m).cache_names]
        assert not any(isinstance(c, np.ndarray) and np.shares_memory(Z, c) for c in cached for Z in Zs), \
            "a forward cache shares memory with the returned Z"
        grads = upstream(Zs, np.random.default_rng(2))
        if scribble:
            for Z in Zs:
                Z[...] = 1e6
        dXs = backward(module, tuple(G.copy() for G in grads), inputs)
        results.append(copies(dXs) + [p.grad.copy() for p in module.parameters()])
        if scribble:
            for dX in dXs:
                if dX is not None:
                    dX[...] = -7.0
            again = backward(module, grads, inputs)
            for i, (dX, clean) in enumerate(zip(again, results[0])):
                if clean is not None:
                    np.testing.assert_array_equal(dX, clean, err_msg=f"second δX of input {i}")
    for i, (clean, scribbled) in enumerate(zip(*results)):
        if clean is not None:
            np.testing.assert_array_equal(scribbled, clean, err_msg=f"gradient {i} after writing over Z")


@cases
def test_clear_cache(case):
    applies(case, "clear-cache")
    inputs = example(case)
    module = build(case)
    grads = upstream(forward(build(case), inputs), np.random.default_rng(2))
    with pytest.raises(RuntimeError, match="backward called before forward"):
        module.backward(*grads)                     # a fresh module: nothing cached yet
    forward(module, inputs)
    assert module.clear_cache() is module
    for path, sub in module.named_modules():
        for name in type(sub).cache_names:
            assert getattr(sub, name) is None, f"{path or case.id}.{name} survives clear_cache()"
    with pytest.raises(RuntimeError, match="backward called before forward"):
        module.backward(*grads)
    forward(module, inputs)                         # and it works again after a new forward
    backward(module, grads, inputs)


@cases
def test_settings_round_trip_including_dtype(case):
    applies(case, "settings")
    for dtype in (np.float64, np.float32):
        layer = case.make(dtype, 0)
        settings = layer.settings()
        rebuilt = type(layer)(**settings)
        assert rebuilt.settings() == settings and repr(rebuilt) == repr(layer)
        assert [(n, p.shape) for n, p in rebuilt.named_parameters()] == \
            [(n, p.shape) for n, p in layer.named_parameters()]
    arrays = [(name, array.dtype) for name, array in rebuilt.state_dict().items() if array.dtype.kind == "f"]
    assert arrays == [(name, np.dtype(np.float32)) for name, _ in arrays], \
        f"rebuilt from float32 settings {settings}: {arrays}"


@cases
def test_strict_device(case):
    applies(case, "device")
    inputs = example(case)
    host, device = build(case), build(case).to("strict")
    assert device.device == ("strict" if device.parameters() or device.buffers() else "cpu")
    values = not draws_at_random(host)              # Dropout draws from the device's own generator

    def same(on_device, on_host, what):
        assert type(on_device) is StrictArray, f"{what} is {type(on_device).__name__}, not on the device"
        if values:
            np.testing.assert_allclose(backend.to_host(on_device), on_host, rtol=1e-12, atol=1e-13, err_msg=what)

    Zs = forward(host, inputs)
    for k, (Zd, Z) in enumerate(zip(forward(device, [backend.to_device(X, "strict") for X in inputs]), Zs)):
        same(Zd, Z, f"output {k}")
    grads = upstream(Zs, np.random.default_rng(2))
    dXs = backward(host, grads, inputs)
    for i, (dXd, dX) in enumerate(zip(backward(device, [backend.to_device(G, "strict") for G in grads], inputs),
                                      dXs)):
        assert (dXd is None) == (dX is None)
        if dX is not None:
            same(dXd, dX, f"δX of input {i}")
    for (name, p_host), (_, p_device) in zip(host.named_parameters(), device.named_parameters()):
        assert type(p_device.data) is StrictArray, name
        same(p_device.grad, p_host.grad, f"δ{name}")
    for (name, b_host), (_, b_device) in zip(host.named_buffers(), device.named_buffers()):
        assert type(b_device.data) is StrictArray, name
        np.testing.assert_allclose(backend.to_host(b_device.data), b_host.data, rtol=1e-12, atol=1e-13,
                                   err_msg=name)


@cases
def test_onnx_runtime_computes_the_eval_forward(case):
    applies(case, "onnx")
    require(importable("onnx", "onnxruntime"), "onnx and onnxruntime are not installed (pip install -e '.[onnx]')")
    import onnx
    import onnxruntime

    module, inputs = build(case), example(case)
    names = ["X"] if len(inputs) == 1 else [f"X{i}" for i in range(len(inputs))]   # export_onnx's input names
    shapes = inputs[0].shape[1:] if len(inputs) == 1 else tuple(X.shape[1:] for X in inputs)
    with known_failure(KNOWN_FAILURES.get((case.id, "onnx"))):
        proto = nl.export_onnx(module, None, shapes, dtype=np.float32)
        session = onnxruntime.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
        types = [onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type)   # float32, or int64
                 for value in proto.graph.input]                                            # for ids
        with nl.evaluation_mode(module):
            expected = as_tuple(module.forward(*inputs))
        for rows in (slice(None), slice(0, 1)):                      # the whole batch, then one sample
            outputs = session.run(None, {name: X[rows].astype(dtype)
                                         for name, X, dtype in zip(names, inputs, types)})
            assert len(outputs) == len(expected)
            for got, want in zip(outputs, expected):
                want = want[rows]
                assert got.dtype == np.float32 and got.shape == want.shape
                np.testing.assert_allclose(got, want, rtol=ONNX_RTOL, atol=ONNX_RTOL * float(np.abs(want).max()))


@cases
def test_save_and_load_round_trip(case, tmp_path):
    applies(case, "save-load")
    module, fresh, inputs = build(case, seed=0), build(case, seed=7), example(case)
    state = module.state_dict()
    if any(array.dtype.kind == "f" for array in state.values()):   # the fresh one really starts elsewhere
        assert any(not np.array_equal(array, fresh.state_dict()[name]) for name, array in state.items())
    nl.save(module, tmp_path / "weights.npz")
    nl.load(fresh, tmp_path / "weights.npz")
    for name, array in fresh.state_dict().items():
        assert array.dtype == state[name].dtype
        np.testing.assert_array_equal(array, state[name], err_msg=name)
    for k, (Z, Z_fresh) in enumerate(zip(forward(module, inputs), forward(fresh, inputs))):
        np.testing.assert_array_equal(Z_fresh, Z, err_msg=f"output {k}")


@cases
def test_whole_model_file_round_trip(case, tmp_path):
    """``nl.save_model`` then ``nl.load_model``: the same class, settings, arrays (dtype included) and
    eval-mode outputs, for float64 and float32 (a layer whose settings leave out the dtype too).
    Containers, the catalogue's nets included, rebuild from their children; the tests' own classes
    load through ``custom_objects``."""
    for dtype in (np.float64, np.float32):
        layer = build(case, dtype=dtype)
        own = {type(m).__name__: type(m) for m in layer.modules() if not type(m).__module__.startswith("nnlayers")}
        loaded = nl.load_model(nl.save_model(layer, tmp_path / "layer.npz"), custom_objects=own)
        assert type(loaded) is type(layer) and loaded.settings() == layer.settings() and not loaded.training
        for (name, a), (other, b) in zip(layer.state_dict().items(), loaded.state_dict().items()):
            assert name == other and a.dtype == b.dtype
            np.testing.assert_array_equal(a, b)
        inputs = example(case)
        with nl.evaluation_mode(layer):
            expected = forward(layer, inputs)
        for got, want in zip(forward(loaded, inputs), expected):
            np.testing.assert_array_equal(got, want)
