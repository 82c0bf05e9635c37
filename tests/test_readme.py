"""The Python examples of the README and of the documentation's pages (docs/*.rst) run as written, in
reading order (the README, then the pages in the order of the site's table of contents), and do what
they say."""
import re

import numpy as np
import pytest

from tests.helpers import ROOT, importable, require

HAVE_ONNX = importable("onnx", "onnxruntime")


def pages():
    """README.rst, then docs/*.rst in the order of docs/index.rst's toctree."""
    index = (ROOT / "docs" / "index.rst").read_text(encoding="utf-8")
    toctree = index[index.index(".. toctree::"):]
    names = re.findall(r"^   ([\w-]+)$", toctree, re.M)
    return [ROOT / "README.rst"] + [ROOT / "docs" / f"{name}.rst" for name in names]


def code_blocks(path):
    text = path.read_text(encoding="utf-8")
    blocks = re.findall(r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text, re.M)
    return ["\n".join(line[4:] for line in block.splitlines()) for block in blocks]


def all_blocks():
    """(page name, code) for every Python block, in reading order."""
    return [(path.relative_to(ROOT).as_posix(), code) for path in pages() for code in code_blocks(path)]


def run_blocks(blocks, namespace):
    """Runs each block; returns what the XOR model computes after each block that builds one."""
    learned = []
    for page, code in blocks:
        exec(compile(code, page, "exec"), namespace)
        if re.search(r"^model = ", code, re.M) and ("X = np.array" in code or "xor" in code):
            learned.append((page, namespace["model"].forward(namespace["X"])))
    return learned


def test_the_pages_hold_the_examples():
    counts = {page: len(code_blocks(ROOT / page)) for page in
              ("README.rst", "docs/getting-started.rst", "docs/writing-a-layer.rst", "docs/training.rst",
               "docs/sequences.rst", "docs/attention.rst", "docs/saving.rst")}
    assert counts == {"README.rst": 1, "docs/getting-started.rst": 2, "docs/writing-a-layer.rst": 3,
                      "docs/training.rst": 3, "docs/sequences.rst": 3, "docs/attention.rst": 2, "docs/saving.rst": 1}
    assert len(all_blocks()) == sum(counts.values())            # no other page holds a Python block


def test_python_blocks_run(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    blocks = all_blocks()
    onnx_blocks = [block for block in blocks if "onnx" in block[1]]
    assert len(onnx_blocks) == 2                                 # run by the test below
    namespace = {}
    learned = run_blocks([block for block in blocks if block not in onnx_blocks], namespace)
    # The README's loop, Getting started's loop and its Trainer all learned XOR.
    assert [page for page, _ in learned] == ["README.rst", "docs/getting-started.rst", "docs/getting-started.rst"]
    for page, outputs in learned:
        assert np.abs(outputs - namespace["Y"]).max() < 0.1, page
    assert namespace["report"].passed and namespace["layer_report"].passed
    assert [c.name for c in namespace["layer_report"].checks] == ["X", "0.W"]
    printed = capsys.readouterr().out
    assert "X: ok" in printed
    # Training's augmentation block: image 1 of its batch shifted by at most a pixel, zero-filled, perhaps mirrored.
    shown = np.array([[float(v) for v in line.strip(" []").split()] for line in
                      re.search(r"(\[\[[^\]]*\](?:\s*\[[^\]]*\])*\])", printed).group(1).splitlines()])
    image = np.arange(17.0, 33.0).reshape(4, 4)
    assert any(np.array_equal(shown, candidate) for candidate in shifted_variants(image))
    # Training's clipping block: perplexity is exp of each epoch's loss; some of the 12 steps were clipped.
    run, clipping = namespace["run"], namespace["clipped"].clipping
    np.testing.assert_allclose(run.perplexity, np.exp(run.loss), rtol=1e-15)
    assert clipping.steps == 12 and 0 < clipping.clipped <= 12 and f"of {clipping.steps}" in printed
    # Text and sequences: the LSTM's shapes; stateful windows give the states of one pass over the whole
    # sequence; the names model ends below a uniform guess over its 27 symbols and samples a name.
    assert "(2, 7, 8) (2, 8) (2, 7, 5) (2, 8)" in printed
    np.testing.assert_allclose(namespace["last_window"], namespace["whole"][:, 14:], rtol=1e-12)
    names_run = namespace["name_history"]
    assert names_run.val_loss[-1] < names_run.val_loss[0] < np.log(27)
    np.testing.assert_allclose(names_run.val_perplexity, np.exp(names_run.val_loss), rtol=1e-15)
    # Attention: cross-attention with padding returns δmemory and None for the mask, padded keys weigh 0; the
    # dates model writes ten characters per date, learned something in its two epochs, and its map's rows sum to 1.
    assert "(2, 3, 8) (2, 5, 8) None 0.0" in printed
    assert all(len(iso) == 10 for iso in namespace["dates"].translate(namespace["date_model"], namespace["date_texts"]))
    assert namespace["date_history"].loss[-1] < 0.7 * namespace["date_history"].loss[0]
    assert namespace["date_weights"].shape == (1, 2, 10, len("3 May 1999"))
    np.testing.assert_allclose(namespace["date_weights"].sum(axis=-1), 1.0, rtol=1e-5)
    # Training's schedules block: the best epoch's weights (and BatchNorm statistics) are the ones left in the model.
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


def test_onnx_blocks_run(tmp_path, monkeypatch):
    require(HAVE_ONNX, "onnx and onnxruntime are not installed (pip install -e '.[onnx]')")
    import nnlayers as nl
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(nl.onnx, "EXPORTERS", dict(nl.onnx.EXPORTERS))   # the page's Cube stays in this test
    namespace = {}
    run_blocks([block for block in all_blocks() if "nl.schedules" not in block[1]], namespace)  # XOR's model
    model, X = namespace["model"], namespace["X"]
    np.testing.assert_allclose(namespace["outputs"], model.forward(X), rtol=1e-12)
    assert (tmp_path / "xor.onnx").stat().st_size > 0 and (tmp_path / "cube.onnx").stat().st_size > 0
    # The error Writing a layer quotes, word for word.
    text = " ".join((ROOT / "docs" / "writing-a-layer.rst").read_text(encoding="utf-8").split())
    with pytest.raises(nl.onnx.OnnxExportError) as info:
        nl.export_onnx(namespace["layer_model"], None, (3,))
    assert f"``{info.value}``" in text


def test_readme_quick_start_commands_match_the_guide():
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    assert "_TABLE" not in text and "TODO" not in text
    assert "python -m pip install -e . && python scripts/train_xor.py" in text
    assert "python -m pip install -e '.[test]' && python -m pytest" in text
    assert "python -m pip install -e '.[docs]' && python -m sphinx -W -b html docs docs/_build/html" in text
    assert len(text.splitlines()) <= 150, "the README is the front door: the manual lives in docs/"


def test_readme_links_into_the_docs_resolve():
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    links = re.findall(r"`[^`<]+<([^>]+)>`_", text)
    local = [link for link in links if "://" not in link]
    assert len(local) >= 10
    for link in local:
        assert (ROOT / link).is_file(), f"README links to {link}, which is not in the checkout"
    listed = {link for link in local if link.startswith("docs/")}
    assert {page.relative_to(ROOT).as_posix() for page in pages()[1:]} <= listed, "a docs page the README omits"
