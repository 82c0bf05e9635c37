"""Figures for training runs. Functions draw on a given matplotlib ``Axes`` (or make a
``Figure``) and never choose a backend: scripts pick Agg, notebooks keep theirs."""
from __future__ import annotations

import numpy as np

__all__ = ["plot_loss", "plot_decision_surface"]


def plot_loss(ax, history, *, log_scale: bool = True, label: str = "training loss"):
    """Per-epoch training loss (and validation loss, if recorded) against the epoch number."""
    epochs = np.arange(1, len(history.loss) + 1)
    ax.plot(epochs, history.loss, label=label)
    if history.val_loss:
        ax.plot(epochs, history.val_loss, label="validation loss")
    if log_scale:
        ax.set_yscale("log")
    ax.set_xlabel("epoch")
    ax.set_ylabel("loss")
    ax.legend()
    return ax


def plot_decision_surface(ax, predict, X, Y, *, bounds=(0.0, 1.0), resolution: int = 200):
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
    return ax
