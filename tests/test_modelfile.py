"""Whole-model files (``nl.save_model`` / ``nl.load_model``) and eval-mode prediction (``nl.predict``).

The hostile files are built here entry by entry, as a forger would; like tests/test_hostile.py the
module runs with warnings as errors.
"""
import io
import json
import sys
import zipfile

import numpy as np
import pytest

import nnlayers as nl
from nnlayers import modelfile
from nnlayers.examples import mnist
from nnlayers.examples.xor import xor_network

pytestmark = pytest.mark.filterwarnings("error")


def two_branch(rng=0):
    return nl.Sequential(nl.Parallel(nl.Linear(4, 3, rng=rng), nl.Sequential(nl.Linear(4, 2, rng=rng + 1), nl.Tanh())),
                         nl.Concatenate(axis=1), nl.Dropout(0.5), nl.Linear(5, 2, rng=rng + 2))


EXAMPLES = {
    "xor": (lambda: xor_network(8, rng=0), (4, 2)),
    **{name: (lambda name=name: mnist.build(name, rng=0), (3, 784) if name == "mlp" else (3, 1, 28, 28))
       for name in mnist.MODELS},
    "two-branch": (two_branch, (5, 4)),
}


@pytest.mark.parametrize("name", EXAMPLES)
def test_every_example_model_round_trips_with_identical_predictions(tmp_path, name):
    make, shape = EXAMPLES[name]
    model = make()
    X = np.random.default_rng(1).random(shape).astype(model.dtype)
    if any(isinstance(m, nl.BatchNorm2d) for m in model.modules()):   # running statistics worth saving
        model.forward(X)
    expected = nl.predict(model, X)
    loaded = nl.load_model(nl.save_model(model, tmp_path / "model.npz"))
    assert type(loaded) is type(model) and repr(loaded) == repr(model)
    assert not loaded.training                                  # ready for prediction
    np.testing.assert_array_equal(nl.predict(loaded, X), expected)
    for (key, a), (other, b) in zip(model.state_dict().items(), loaded.state_dict().items()):
        assert key == other and a.dtype == b.dtype
        np.testing.assert_array_equal(a, b)


def test_a_float32_model_comes_back_in_float32(tmp_path):
    model = xor_network(4, rng=0).to(np.float32)
    loaded = nl.load_model(nl.save_model(model, tmp_path / "m.npz"))
    assert {p.data.dtype for p in loaded.parameters()} == {np.dtype(np.float32)}


class Softplus(nl.Elementwise):
    """Z = log(1 + eˣ); f′ = σ(X)."""

    def function(self, X):
        return np.logaddexp(0, X)

    def derivative(self, X, Z):
        return nl.sigmoid(X)


class Scaled(nl.Module):
    """Z = c X, a user's layer with a setting."""

    def __init__(self, c=2.0, shape=(1, 2)):
        super().__init__()
        self.c, self.shape = c, tuple(shape)

    def forward(self, X):
        return self.c * np.asarray(X)

    def settings(self):
        return {"c": self.c, "shape": self.shape}


def test_a_users_class_loads_only_when_passed_or_registered(tmp_path, monkeypatch):
    monkeypatch.setattr(modelfile, "_USER_CLASSES", {})
    model = nl.Sequential(nl.Linear(2, 3, rng=0), Softplus(), Scaled(3.0, (4, 5)))
    path = nl.save_model(model, tmp_path / "m.npz")
    with pytest.raises(nl.WeightsFileError, match=r"layer 1 is of class 'Softplus', which is neither .*custom_objects"):
        nl.load_model(path)
    loaded = nl.load_model(path, custom_objects={"Softplus": Softplus, "Scaled": Scaled})
    assert isinstance(loaded[1], Softplus) and loaded[2].c == 3.0 and loaded[2].shape == (4, 5)
    X = np.random.default_rng(0).random((3, 2))
    np.testing.assert_array_equal(loaded.forward(X), model.forward(X))
    nl.register_module(Softplus)
    nl.register_module(name="MyScaled")(Scaled)
    path = nl.save_model(model, tmp_path / "m2.npz")
    assert isinstance(nl.load_model(path)[2], Scaled)
    with pytest.raises(ValueError, match="already taken"):
        nl.register_module(name="Linear")(Scaled)
    with pytest.raises(TypeError, match="not a Module class"):
        nl.register_module(int)


def test_settings_that_are_not_json_are_refused_before_the_file_is_touched(tmp_path):
    path = nl.save_model(xor_network(4, rng=0), tmp_path / "m.npz")
    before = path.read_bytes()
    with pytest.raises(TypeError, match=r"layer 1 Scaled setting 'c' is .*not JSON data"):
        nl.save_model(nl.Sequential(nl.Linear(2, 2), Scaled(object())), path)
    assert path.read_bytes() == before


def test_a_weights_only_file_says_how_to_load_it_and_nl_load_reads_model_files(tmp_path):
    model = xor_network(4, rng=0)
    with pytest.raises(nl.WeightsFileError, match=r"weights only.*nl\.load\(model, path\)"):
        nl.load_model(nl.save(model, tmp_path / "w.npz"))
    other = xor_network(4, rng=5)
    nl.load(other, nl.save_model(model, tmp_path / "m.npz"))
    np.testing.assert_array_equal(other[0].W.data, model[0].W.data)


# -- hostile files ------------------------------------------------------------------------------------

def forged(tmp_path, architecture, state=None, raw=None):
    """An .npz of ``state`` (default: a real xor network's) with ``architecture`` (or ``raw`` bytes) as JSON."""
    state = xor_network(4, rng=0).state_dict() if state is None else state
    text = raw if raw is not None else json.dumps(architecture).encode()
    path = tmp_path / "forged.npz"
    np.savez(path, __model__=np.frombuffer(text, dtype=np.uint8), **state)
    return path


def description(model):
    return json.loads(modelfile.json.dumps({"format": "nnlayers-model", "version": 1,
                                            "model": modelfile._describe(model, "", "x")}))


def edited(edit):
    tree = description(xor_network(4, rng=0))
    edit(tree["model"])
    return tree


def test_an_unknown_class_is_named_and_nothing_is_imported(tmp_path):
    modules = set(sys.modules)
    for name in ("os.system", "subprocess.Popen", "Evil", "builtins.eval"):
        path = forged(tmp_path, edited(lambda m, name=name: m["children"][0][1].update({"class": name})))
        with pytest.raises(nl.WeightsFileError, match=rf"layer 0 is of class {name!r}, which is neither"):
            nl.load_model(path)
    assert set(sys.modules) == modules


@pytest.mark.parametrize("settings, message", [
    ({"in_features": "2", "out_features": 4}, "Linear.*cannot be built"),
    ({"in_features": 2}, r"cannot be built: TypeError"),
    ({"in_features": 2, "out_features": 4, "command": "rm -rf /"}, "unexpected keyword"),
    ({"in_features": -2, "out_features": 4}, "cannot be built"),
    ({"in_features": 10 ** 6, "out_features": 10 ** 6}, r"needs at least 4,000,000,000,000 bytes of weights"),
    ({"in_features": 2, "out_features": 4, "init": "zeros", "rng": {"a": [1]}}, "cannot be built"),
])
def test_forged_settings_are_a_clear_load_error(tmp_path, settings, message):
    path = forged(tmp_path, edited(lambda m: m["children"][0][1].update({"settings": settings})))
    with pytest.raises(nl.WeightsFileError, match=message):
        nl.load_model(path)


@pytest.mark.parametrize("raw, message", [
    (b'{"format": "nnlayers-model", "version": 1, "model": {"class": "Sequ', "not valid JSON"),
    (b"\xff\xfe", "not valid JSON"),
    (b"[" * 100_000 + b"]" * 100_000, "not valid JSON|not an nnlayers model"),
    (b'{"format": "pickle", "model": {}}', "not an nnlayers model description"),
    (b'{"format": "nnlayers-model", "version": 99, "model": {}}', "version 99"),
    (b'{"format": "nnlayers-model", "version": 1, "model": ["Sequential"]}', "not a module description"),
    (b'{"format": "nnlayers-model", "version": 1, "model": {"class": "Sequential", "settings": {}, '
     b'"children": [["0", 7]]}}', r"layer 0 is not a module description"),
])
def test_truncated_or_malformed_json_is_refused(tmp_path, raw, message):
    with pytest.raises(nl.WeightsFileError, match=message):
        nl.load_model(forged(tmp_path, None, raw=raw))


def test_arrays_of_the_wrong_shape_or_missing_are_refused(tmp_path):
    tree = description(xor_network(4, rng=0))
    state = xor_network(4, rng=0).state_dict()
    with pytest.raises(nl.WeightsFileError, match=r"0\.W has shape \(3, 4\), the model's has shape \(2, 4\)"):
        nl.load_model(forged(tmp_path, tree, {**state, "0.W": np.ones((3, 4))}))
    del state["1.b"]
    with pytest.raises(nl.WeightsFileError, match=r"missing 1\.b"):
        nl.load_model(forged(tmp_path, tree, state))


def test_a_json_entry_that_is_not_bytes_or_too_long_is_refused_from_its_header(tmp_path):
    path = tmp_path / "m.npz"
    np.savez(path, __model__=np.zeros(3, dtype=np.float64), **xor_network(4, rng=0).state_dict())
    with pytest.raises(nl.WeightsFileError, match="is not JSON bytes"):
        nl.load_model(path)


def test_a_children_tree_that_does_not_match_the_class_is_refused(tmp_path):
    tree = edited(lambda m: m.update({"class": "Residual"}))
    with pytest.raises(nl.WeightsFileError, match="Residual's children are block"):
        nl.load_model(forged(tmp_path, tree))


def test_a_truncated_model_file_is_refused(tmp_path):
    path = nl.save_model(mnist.build("cnn", rng=0), tmp_path / "m.npz")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(nl.WeightsFileError, match="not a readable .npz archive"):
        nl.load_model(path)


# -- prediction in eval mode --------------------------------------------------------------------------

def test_predict_equals_eval_mode_forward_and_leaves_the_modes_as_found():
    model = mnist.build("cnn-bn", rng=0)
    model[2].eval()                                  # a layer the user had set apart stays so
    X = np.random.default_rng(0).random((7, 1, 28, 28)).astype(np.float32)
    model.forward(X)
    modes = [m.training for m in model.modules()]
    P = nl.predict(model, X, batch_size=3)
    assert [m.training for m in model.modules()] == modes
    assert all(getattr(m, name) is None for m in model.modules() for name in type(m).cache_names)
    with nl.evaluation_mode(model):
        np.testing.assert_allclose(P, model.forward(X), rtol=1e-5, atol=1e-6)
    two = nl.Sequential(nl.Parallel(nl.Linear(2, 3, rng=0), nl.Linear(2, 3, rng=1)), nl.Add())
    X1 = np.ones((4, 2))
    np.testing.assert_array_equal(nl.predict(two, X1), two.forward(X1))


def test_predict_takes_a_tuple_of_inputs_like_the_trainer():
    model = nl.Sequential(nl.Concatenate(axis=1), nl.Linear(5, 2, rng=0))
    X = (np.ones((6, 3)), np.zeros((6, 2)))
    np.testing.assert_array_equal(nl.predict(model, X, batch_size=4), nl.Trainer(model, None, None).predict(X))


def test_the_docs_load_and_predict_in_one_line_each(tmp_path, monkeypatch):
    """The two lines of "Use a trained model" (docs/saving.rst), run as written on a saved CNN."""
    from tests.helpers import ROOT
    text = (ROOT / "docs" / "saving.rst").read_text(encoding="utf-8")
    section = text[text.index("Use a trained model\n"):text.index("Weights files\n")]
    lines = [line.strip() for line in section.splitlines() if line.strip().startswith(("model =", "predicted ="))]
    assert len(lines) == 2
    monkeypatch.chdir(tmp_path)
    (tmp_path / "out").mkdir()
    trained = mnist.build("cnn", rng=0)
    nl.save_model(trained, "out/cnn.npz")
    X = np.random.default_rng(0).random((6, 1, 28, 28)).astype(np.float32)
    namespace = {"nl": nl, "X": X}
    for line in lines:
        exec(line, namespace)
    with nl.evaluation_mode(trained):
        np.testing.assert_array_equal(namespace["predicted"], trained.forward(X).argmax(axis=1))


def test_a_description_nested_too_deeply_is_a_load_error(tmp_path):
    depth = sys.getrecursionlimit()          # JSON's parser copes with it; rebuilding it would not
    node = b'{"class": "Sequential", "settings": {}, "children": [["0", '
    raw = (b'{"format": "nnlayers-model", "version": 1, "model": ' + node * depth +
           b'{"class": "ReLU", "settings": {}, "children": []}' + b"]]}" * depth + b"}")
    path = tmp_path / "deep.npz"
    np.savez(path, __model__=np.frombuffer(raw, dtype=np.uint8))
    with pytest.raises(nl.WeightsFileError, match="nests too deeply|not valid JSON"):
        nl.load_model(path)


def test_a_model_larger_than_the_files_arrays_is_refused_before_it_is_built(tmp_path):
    tree = edited(lambda m: m["children"].append(["5", {"class": "Linear", "settings": {"in_features": 3000,
                                                                                       "out_features": 3000},
                                                        "children": []}]))
    with pytest.raises(nl.WeightsFileError, match=r"layer 5: Linear\(.*\) needs at least 36,000,000 bytes"):
        nl.load_model(forged(tmp_path, tree))
