"""Figures for training runs.

Each ``plot_*`` function draws on the ``ax`` it is given (``fig`` for image
grids), or on a new matplotlib ``Figure`` when given none, and returns the
Figure. A new Figure is not registered with pyplot, so in a notebook it shows
once, as the cell's value::

    nl.plotting.plot_loss(history)                      # a notebook shows the curve inline

``figsize=`` sizes a new Figure; the axes may also come first, as the scripts pass
them: ``plot_loss(ax, history)``.
The functions never choose a backend: scripts pick Agg (``script_pyplot``),
notebooks keep theirs.
"""
from __future__ import annotations

import functools
import os
import sys

import numpy as np

__all__ = ["plot_loss", "plot_decision_surface", "plot_metric", "plot_confusion", "plot_image_grid",
           "plot_attention", "script_pyplot", "finish_figure", "can_show"]

_NON_INTERACTIVE = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template"}


def can_show() -> tuple[bool, str]:
    """Whether ``plt.show()`` can open a window here, and if not, why (for a script's message).

    matplotlib falls back to the file-only Agg backend when there is no display, and
    then ``show()`` does nothing; a script asks this before a long run and says so.
    """
    import matplotlib
    backend = matplotlib.get_backend().lower()              # resolves the automatic choice
    if backend.startswith("module://") or backend not in _NON_INTERACTIVE:
        return True, ""
    if sys.platform.startswith("linux") and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
        return False, "no display (DISPLAY is not set)"
    return False, f"matplotlib's backend {backend!r} draws to files only"


def script_pyplot(show: bool):
    """``matplotlib.pyplot`` for a script: the headless Agg backend unless a window is wanted."""
    import matplotlib
    if not show:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    return plt


def finish_figure(figure, path, show: bool, dpi: int = 100) -> None:
    """Save ``figure`` to ``path`` (if given, and say so), show it if asked, then close it."""
    import matplotlib.pyplot as plt
    if path:
        figure.savefig(path, dpi=dpi)
        print(f"saved {path}")
    if show:
        plt.show()
    plt.close(figure)


def _draws_on(kind: str):
    """Let a plotting function take its ``ax`` (or ``fig``) first, as scripts pass it, or as the
    keyword, or not at all: then it draws on a new Figure (``figsize=`` sizes it). It returns
    the Figure either way."""
    def decorate(function):
        @functools.wraps(function)
        def wrapper(*args, figsize=None, **kwargs):
            from matplotlib.axes import Axes
            from matplotlib.figure import Figure, FigureBase
            if args and isinstance(args[0], (Axes, FigureBase)):
                kwargs[kind], args = args[0], args[1:]
            if kwargs.get(kind) is None:
                figure = Figure(figsize=figsize, layout="constrained")
                kwargs[kind] = figure if kind == "fig" else figure.add_subplot()
            function(*args, **kwargs)
            target = kwargs[kind]
            while not isinstance(target, Figure):       # Axes → (Sub)Figure → … → the Figure
                target = target.figure
            return target
        return wrapper
    return decorate


def _integer_ticks(ax) -> None:
    from matplotlib.ticker import MaxNLocator
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))    # no epoch 1.5 on a short run


@_draws_on("ax")
def plot_loss(history, *, ax=None, log_scale: bool = True, label: str = "training loss"):
    """Per-epoch training loss (and validation loss, if recorded) against the epoch number."""
    epochs = np.arange(1, len(history.loss) + 1)
    ax.plot(epochs, history.loss, label=label)
    if history.val_loss:
        ax.plot(epochs, history.val_loss, label="validation loss")
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    _integer_ticks(ax)
    ax.legend()


@_draws_on("ax")
def plot_decision_surface(predict, X, Y, *, ax=None, bounds=(0.0, 1.0), resolution: int = 200):
    """The model's output over a square grid (``predict`` maps M×2 points to M×1 outputs),
    with the training points drawn on top, coloured by target."""
    low, high = bounds
    axis = np.linspace(low, high, resolution)
    grid_x, grid_y = np.meshgrid(axis, axis)
    points = np.column_stack([grid_x.ravel(), grid_y.ravel()])
    surface = np.asarray(predict(points)).reshape(resolution, resolution)
    image = ax.contourf(grid_x, grid_y, surface, levels=np.linspace(0, 1, 21), cmap="RdBu_r")
    ax.contour(grid_x, grid_y, surface, levels=[0.5], colors="k", linewidths=1)
    ax.scatter(X[:, 0], X[:, 1], c=np.asarray(Y).ravel(), cmap="RdBu_r", vmin=0, vmax=1,
               edgecolors="k", s=120, zorder=3, clip_on=False)
    ax.set_xlabel("x₁")
    ax.set_ylabel("x₂")
    ax.set_aspect("equal")
    ax.figure.colorbar(image, ax=ax, label="network output")


@_draws_on("ax")
def plot_metric(history, name: str = "accuracy", *, ax=None):
    """Per-epoch training and validation values of a metric recorded by ``Trainer.fit``."""
    epochs = np.arange(1, len(history.loss) + 1)
    for key, label in ((name, f"training {name}"), (f"val_{name}", f"validation {name}")):
        if key in history.metrics:
            ax.plot(epochs, history.metrics[key], marker="o", markersize=3, label=label)
    ax.set_xlabel("epoch")
    ax.set_ylabel(name)
    _integer_ticks(ax)
    ax.legend()


@_draws_on("ax")
def plot_confusion(matrix, class_names=None, *, ax=None):
    """A confusion matrix (rows: true class, columns: predicted), counts written in the cells."""
    matrix = np.asarray(matrix)
    k = len(matrix)
    names = list(class_names) if class_names is not None else [str(i) for i in range(k)]
    ax.imshow(matrix, cmap="Blues")
    threshold = matrix.max() / 2 if matrix.size else 0
    for i in range(k):
        for j in range(k):
            ax.text(j, i, str(matrix[i, j]), ha="center", va="center", fontsize=7,
                    color="white" if matrix[i, j] > threshold else "black")
    ax.set_xticks(range(k), names, rotation=45, ha="right", fontsize=8)
    ax.set_yticks(range(k), names, fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")


@_draws_on("fig")
def plot_image_grid(images, titles, *, fig=None, columns: int = 8, cmap: str = "gray_r", limits=None):
    """Greyscale images in a grid of subplots on ``fig`` (a Figure or SubFigure), one title each.

    Colours span 0..255 for bytes and 0..1 otherwise, unless ``limits`` = (low, high) says;
    for signed values such as filters, e.g. ``cmap="RdBu_r", limits=(-m, m)``."""
    rows = max(1, -(-len(images) // columns))
    axes = np.atleast_1d(fig.subplots(rows, columns)).ravel()
    for ax in axes:
        ax.axis("off")
    for ax, image, title in zip(axes, images, titles):
        low, high = limits if limits is not None else (0, 255 if np.asarray(image).dtype == np.uint8 else 1)
        ax.imshow(image, cmap=cmap, vmin=low, vmax=high)
        ax.set_title(title, fontsize=7)


@_draws_on("ax")
def plot_attention(weights, source_chars, target_chars, *, ax=None, cmap: str = "Blues"):
    """Attention weights as a heatmap: row t (an output character, ``target_chars[t]``) over column s
    (an input character, ``source_chars[s]``), colours from 0 to 1, each character on its tick.

    ``weights`` is T×S (one head, or their mean: ``P[0].mean(axis=0)`` of a 1×H×T×S
    ``MultiHeadAttention.attention_weights``); ``source_chars`` and ``target_chars`` are strings or
    sequences of S and T labels (a space is drawn as ␣)."""
    weights = np.asarray(weights)
    sources, targets = list(source_chars), list(target_chars)
    if weights.ndim != 2 or weights.shape != (len(targets), len(sources)):
        raise ValueError(f"plot_attention: for {len(targets)} target and {len(sources)} source labels, weights "
                         f"must be T×S = {(len(targets), len(sources))}, got shape {weights.shape}")
    image = ax.imshow(weights, cmap=cmap, vmin=0.0, vmax=1.0, aspect="auto")
    shown = lambda labels: ["␣" if label == " " else label for label in labels]          # noqa: E731
    ax.set_xticks(range(len(sources)), shown(sources), fontsize=8)
    ax.set_yticks(range(len(targets)), shown(targets), fontsize=8)
    ax.set_xlabel("source (keys)")
    ax.set_ylabel("output (queries)")
    ax.figure.colorbar(image, ax=ax, label="attention weight")
