"""summary: nested rows, output shapes and parameter counts for any container; text and HTML display."""
import numpy as np

import nnlayers as nl
from tests.test_module import Block


def test_summary_lists_shapes_and_counts():
    model = nl.Sequential(nl.Conv2D(1, 4, 3, padding=1, rng=0), nl.ReLU(), nl.MaxPool2D(2), nl.Flatten(),
                          nl.Linear(4 * 14 * 14, 10, rng=0), nl.Bias(10))
    table = nl.summary(model, (1, 28, 28))
    lines = str(table).splitlines()
    assert lines[0].split() == ["layer", "output", "shape", "parameters"]
    assert lines[2].startswith("Sequential ") and "(N, 10)" in lines[2] and lines[2].endswith("7,890")
    assert lines[3].startswith("0: Conv2D(1, 4") and "(N, 4, 28, 28)" in lines[3] and lines[3].endswith(" 40")
    assert "(N, 4, 14, 14)" in lines[5] and "(N, 784)" in lines[6]
    assert lines[7].endswith("7,840") and lines[8].endswith("10")
    assert lines[-1] == f"total parameters: {40 + 7840 + 10:,}  (input: (N, 1, 28, 28))"
    assert model.training                                              # mode restored
    assert model[0]._X is None                                        # the pass leaves no caches
    assert "forward" not in vars(model[0])                             # the watch is undone
    assert repr(table) == str(table) and table == str(table)


def test_summary_shows_a_user_container_nested_with_its_counts():
    model = nl.Sequential(nl.Linear(2, 3, rng=1), nl.Residual(Block(3, 3)), nl.Linear(3, 1, rng=3))
    rows = nl.summary(model, (2,)).rows
    names = [name for name, _, _ in rows]
    assert names == ["Sequential", "0: Linear(in_features=2, out_features=3)", "1: Residual", "  block: Block",
                     "    linear: Linear(in_features=3, out_features=3)", "    bias: Bias(features=3)",
                     "    act: Sigmoid()", "2: Linear(in_features=3, out_features=1)"]
    counts = [count for _, _, count in rows]
    assert counts == [6 + 9 + 3 + 3, 6, 12, 12, 9, 3, 0, 3]
    assert [shape for _, shape, _ in rows][3] == (1, 3)
    assert int(model[1].block.calls.data) == 0                          # run in eval mode


def test_summary_displays_as_an_html_table():
    model = nl.Sequential(nl.Linear(2, 3, rng=1), nl.Sigmoid())
    html = nl.summary(model, (2,))._repr_html_()
    assert html.startswith("<table><thead><tr><th>layer</th><th>output shape</th><th>parameters</th>")
    assert "<td style='text-align:left; white-space:pre'>0: Linear(in_features=2, out_features=3)</td>" in html
    assert "<td>6</td>" in html and "total parameters: 6" in html


def test_summary_of_a_stateful_model_keeps_its_state():
    """The zero sample runs from zero states; a state carried for a batch of 4 stays (before, summary
    refused the batch of 1, and a model without a state yet came out carrying the zero sample's)."""
    model = nl.Sequential(nl.Embedding(6, 3, rng=0), nl.LSTM(3, 4, stateful=True, rng=1), nl.Linear(4, 6, rng=2))
    fresh = nl.summary(model, (7,))
    assert fresh.rows[2][1] == (1, 7, 4) and model[1].state is None
    model.forward(np.array([[1, 2, 3]] * 4))
    h, c = (state.copy() for state in model[1].state)
    assert nl.summary(model, (5,)).rows[-1][1] == (1, 5, 6)
    np.testing.assert_array_equal(model[1].state[0], h)
    np.testing.assert_array_equal(model[1].state[1], c)
