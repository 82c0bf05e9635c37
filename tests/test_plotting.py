"""nl.plotting: figures returned (made without pyplot when no axes are given), integer epoch
ticks, and the display of figures in a Jupyter kernel."""
import numpy as np
import pytest

import nnlayers as nl
from tests.helpers import require

matplotlib = pytest.importorskip("matplotlib")
from matplotlib.figure import Figure  # noqa: E402


def history(epochs=3):
    return nl.History(loss=list(np.linspace(1, 0.2, epochs)), val_loss=list(np.linspace(1.1, 0.3, epochs)),
                      metrics={"accuracy": list(np.linspace(0.5, 0.9, epochs)),
                               "val_accuracy": list(np.linspace(0.4, 0.8, epochs))},
                      seconds=[1.0] * epochs)


def test_without_axes_each_function_returns_a_new_figure_outside_pyplot():
    import matplotlib.pyplot as plt
    before = plt.get_fignums()
    X = np.array([[0, 0], [0, 1], [1, 0], [1, 1.0]])
    figures = [
        nl.plotting.plot_loss(history()),
        nl.plotting.plot_metric(history(), "accuracy"),
        nl.plotting.plot_confusion(np.eye(3, dtype=int), ["a", "b", "c"]),
        nl.plotting.plot_decision_surface(lambda P: P[:, :1], X, X[:, :1], resolution=20),
        nl.plotting.plot_image_grid(np.zeros((3, 4, 4), np.uint8), ["x", "y", "z"], columns=3),
    ]
    assert all(type(figure) is Figure for figure in figures)
    assert plt.get_fignums() == before            # not pyplot's: a notebook shows each once, as the value
    assert [len(figure.axes) for figure in figures] == [1, 1, 1, 2, 3]   # the surface has its colour bar
    assert figures[0].axes[0].get_legend().get_texts()[1].get_text() == "validation loss"
    sized = nl.plotting.plot_loss(history(), figsize=(3, 2))
    assert tuple(sized.get_size_inches()) == (3, 2)


def test_given_axes_first_or_by_keyword_the_figure_comes_back():
    figure = Figure()
    left, right = figure.subplots(1, 2)
    assert nl.plotting.plot_loss(left, history()) is figure                    # as the scripts call it
    assert nl.plotting.plot_metric(history(), "accuracy", ax=right) is figure
    assert left.get_ylabel() == "loss" and right.get_ylabel() == "accuracy"
    top, bottom = figure.subfigures(2, 1)
    assert nl.plotting.plot_image_grid(np.ones((2, 3, 3)), ["a", "b"], fig=bottom, columns=2) is figure
    assert len(bottom.axes) == 2


def test_short_runs_get_whole_epoch_ticks():
    for plot in (nl.plotting.plot_loss, lambda h: nl.plotting.plot_metric(h, "accuracy")):
        ax = plot(history(3)).axes[0]
        ax.figure.canvas.draw()
        ticks = [tick for tick in ax.get_xticks() if 1 <= tick <= 3]
        assert ticks == [1, 2, 3]


def test_image_grid_colour_limits():
    filters = np.array([[[-2.0, 2.0]], [[1.0, 0.0]]])
    figure = nl.plotting.plot_image_grid(filters, ["f0", "f1"], cmap="RdBu_r", limits=(-2, 2), columns=2)
    image = figure.axes[0].get_images()[0]
    assert image.get_clim() == (-2, 2) and image.get_cmap().name == "RdBu_r"
    default = nl.plotting.plot_image_grid(np.zeros((1, 2, 2), np.uint8), ["b"], columns=1)
    assert default.axes[0].get_images()[0].get_clim() == (0, 255)


def test_can_show_says_why_not_without_a_display(monkeypatch):
    monkeypatch.delenv("DISPLAY", raising=False)
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "agg")
    assert nl.plotting.can_show() == (False, "no display (DISPLAY is not set)")
    monkeypatch.setattr(matplotlib, "get_backend", lambda: "TkAgg")
    assert nl.plotting.can_show() == (True, "")


def test_figures_display_as_pictures_in_an_ipython_kernel():
    import importlib.util
    require(importlib.util.find_spec("IPython") is not None, "IPython (installed with ipykernel, '.[test]')")
    from IPython.core.interactiveshell import InteractiveShell
    from nnlayers._notebook import show_figures_in_notebooks
    shell = InteractiveShell.instance()
    try:
        png = shell.display_formatter.formatters["image/png"]
        png.enabled = True                       # a kernel's formatter is; a bare shell's may not be
        png.pop(Figure, None)
        png.deferred_printers.pop(("matplotlib.figure", "Figure"), None)
        assert "image/png" not in shell.display_formatter.format(Figure())[0]
        show_figures_in_notebooks()
        data, _ = shell.display_formatter.format(nl.plotting.plot_loss(history()))
        assert data["image/png"][:8] == b"\x89PNG\r\n\x1a\n"
        own = lambda figure: b"mine"                 # a formatter already there (inline backend) stays
        png.for_type(Figure, own)
        show_figures_in_notebooks()
        assert png.lookup_by_type(Figure) is own
    finally:
        InteractiveShell.clear_instance()


def test_attention_heatmap_labels_each_character():
    weights = np.array([[0.7, 0.2, 0.1], [0.0, 0.5, 0.5]])
    figure = nl.plotting.plot_attention(weights, "a b", "xy")
    assert type(figure) is Figure and len(figure.axes) == 2                  # the heatmap and its colour bar
    ax = figure.axes[0]
    image = ax.get_images()[0]
    np.testing.assert_array_equal(image.get_array(), weights)
    assert image.get_clim() == (0.0, 1.0)
    assert [t.get_text() for t in ax.get_xticklabels()] == ["a", "␣", "b"]
    assert [t.get_text() for t in ax.get_yticklabels()] == ["x", "y"]
    given = Figure()
    assert nl.plotting.plot_attention(given.add_subplot(), weights, ["a", " ", "b"], ["x", "y"]) is given
    with pytest.raises(ValueError, match=r"weights must be T×S = \(2, 3\), got shape \(3, 2\)"):
        nl.plotting.plot_attention(weights.T, "a b", "xy")
