"""The README's Python examples run as written, in order, and do what they say."""
import re

import numpy as np

from tests.helpers import ROOT


def test_readme_python_blocks_run(capsys):
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    blocks = re.findall(r"^\.\. code-block:: python\n\n((?:    .*\n|\n)+)", text, re.M)
    assert len(blocks) == 5
    namespace = {}
    learned = []
    for block in blocks:
        code = "\n".join(line[4:] for line in block.splitlines())
        exec(compile(code, "README.rst", "exec"), namespace)
        if "model" in namespace and len(learned) < 2:
            learned.append(namespace["model"].forward(namespace["X"]))
    # The explicit loop (block 1) and the Trainer (block 2) both learned XOR.
    assert np.abs(learned[0] - namespace["Y"]).max() < 0.1
    assert np.abs(learned[1] - namespace["Y"]).max() < 0.1
    assert namespace["report"].passed and namespace["layer_report"].passed
    assert [c.name for c in namespace["layer_report"].checks] == ["X", "0.W"]
    assert "X: ok" in capsys.readouterr().out
    # Block 5: the best epoch's weights (and BatchNorm statistics) are the ones left in the model.
    history, trainer = namespace["history"], namespace["trainer"]
    assert history.best_epoch == int(np.argmax(history.val_accuracy)) + 1
    assert trainer.evaluate(namespace["X_val"], namespace["Y_val"])[1] == max(history.val_accuracy) > 0.85
    assert abs(history.lr[0] - 3e-4) < 1e-12 and history.lr[1] == 3e-3             # warm-up, then the peak


def test_readme_quick_start_commands_match_the_guide():
    text = (ROOT / "README.rst").read_text(encoding="utf-8")
    assert "_TABLE" not in text and "TODO" not in text
    assert "python -m pip install -e . && python scripts/train_xor.py" in text
    assert "python -m pip install -e '.[test]' && python -m pytest" in text
