"""The README's Python examples run as written, in order, and do what they say."""
import re

import numpy as np
import pytest

from tests.helpers import ROOT, importable, require

HAVE_ONNX = importable("onnx", "onnxruntime")


def readme_blocks():
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    blocks = re.findall(r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text, re.M)
    return ["\n".join(line[4:] for line in block.splitlines()) for block in blocks]


def run_blocks(blocks, namespace):
    learned = []
    for code in blocks:
        exec(compile(code, "README.rst", "exec"), namespace)
        if "model" in namespace and len(learned) < 2:
            learned.append(namespace["model"].forward(namespace["X"]))
    return learned


def test_readme_python_blocks_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = readme_blocks()
    assert len(blocks) == 8
    onnx_blocks = [code for code in blocks if "onnx" in code]
    assert len(onnx_blocks) == 2                                 # run by the test below
    namespace = {}
    learned = run_blocks([code for code in blocks if code not in onnx_blocks], namespace)
    # The explicit loop (block 1) and the Trainer (block 2) both learned XOR.
    assert np.abs(learned[0] - namespace["Y"]).max() < 0.1
    assert np.abs(learned[1] - namespace["Y"]).max() < 0.1
    assert namespace["report"].passed and namespace["layer_report"].passed
    assert [c.name for c in namespace["layer_report"].checks] == ["X", "0.W"]
    printed = capsys.readouterr().out
    assert "X: ok" in printed
    # Block 3: image 1 of the README's batch shifted by at most a pixel, zero-filled, perhaps mirrored.
    shown = np.array([[float(v) for v in line.strip(" []").split()] for line in
                      re.search(r"(\[\[[^\]]*\](?:\s*\[[^\]]*\])*\])", printed).group(1).splitlines()])
    image = np.arange(17.0, 33.0).reshape(4, 4)
    assert any(np.array_equal(shown, candidate) for candidate in shifted_variants(image))
    # Block 5: the best epoch's weights (and BatchNorm statistics) are the ones left in the model.
    history, trainer = namespace["history"], namespace["trainer"]
    assert history.best_epoch == int(np.argmax(history.val_accuracy)) + 1
    assert trainer.evaluate(namespace["X_val"], namespace["Y_val"])[1] == max(history.val_accuracy) > 0.85
    assert abs(history.lr[0] - 3e-4) < 1e-12 and history.lr[1] == 3e-3             # warm-up, then the peak


def shifted_variants(image):
    for dy in (-1, 0, 1):
        for dx in (-1, 0, 1):
            moved = np.zeros_like(image)
            moved[max(0, -dy):4 - max(0, dy), max(0, -dx):4 - max(0, dx)] = \
                image[max(0, dy):4 - max(0, -dy), max(0, dx):4 - max(0, -dx)]
            yield moved
            yield moved[:, ::-1]


def test_readme_onnx_blocks_run(tmp_path, monkeypatch):
    require(HAVE_ONNX, "onnx and onnxruntime are not installed (pip install -e '.[onnx]')")
    import nnlayers as nl
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(nl.onnx, "EXPORTERS", dict(nl.onnx.EXPORTERS))   # the README's Cube stays in this test
    namespace = {}
    run_blocks([code for code in readme_blocks() if "nl.schedules" not in code], namespace)  # XOR's model
    model, X = namespace["model"], namespace["X"]
    np.testing.assert_allclose(namespace["outputs"], model.forward(X), rtol=1e-12)
    assert (tmp_path / "xor.onnx").stat().st_size > 0 and (tmp_path / "cube.onnx").stat().st_size > 0
    # The error the README quotes, word for word.
    text = " ".join((ROOT / "README.rst").read_text(encoding="utf-8").split())
    with pytest.raises(nl.onnx.OnnxExportError) as info:
        nl.export_onnx(namespace["layer_model"], None, (3,))
    assert f"``{info.value}``" in text


def test_readme_quick_start_commands_match_the_guide():
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    assert "_TABLE" not in text and "TODO" not in text
    assert "python -m pip install -e . && python scripts/train_xor.py" in text
    assert "python -m pip install -e '.[test]' && python -m pytest" in text
