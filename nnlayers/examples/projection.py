"""Digits seen through their top singular directions: the derivation's 0-vs-1 experiment.

Stack N flattened images as the rows of X (N×784, pixels scaled to [0, 1]).
The economy SVD writes

    X = U S Vᵀ       U: N×r,  S = diag(σ₁ ≥ σ₂ ≥ … ≥ σᵣ ≥ 0),  Vᵀ: r×784,  r = min(N, 784)

The rows of Vᵀ are orthonormal "eigen-digits". A row x projects to k numbers
x V_k (V_k: the first k columns of V); for the rows of X themselves that is
U_k S_k. Two numbers per image are enough for 0s and 1s to fall apart.
The rank-k reconstruction x̂ = x V_k V_kᵀ is the best rank-k approximation
of X in the least-squares sense (Eckart–Young).

``full_matrices=False`` matters: the full SVD's U is N×N (2000×2000 floats =
32 MB for 1000 digits of each class), and all but its first r columns meet
only zero singular values.

Centring: by default this is the plain SVD of the pixel values, as in the
derivation's experiment; its first direction is then close to the mean image
(how much ink). ``center=True`` subtracts the mean image first, which is PCA.

Plotting functions draw on a matplotlib ``Axes`` or ``Figure`` they are given
and never choose a backend (as in ``nnlayers.plotting``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..init import as_rng

__all__ = ["select_digits", "flatten", "SVDBasis", "fit_svd", "nearest_centroid_accuracy",
           "digit_color", "plot_projection", "plot_reconstructions", "DIGIT_COLORS"]

#: one colour per digit, the same whichever digits are plotted: 0 blue, 1 red as in the derivation
DIGIT_COLORS = ("tab:blue", "tab:red", "tab:green", "tab:orange", "tab:purple",
                "tab:brown", "tab:pink", "tab:gray", "tab:olive", "tab:cyan")


def select_digits(images, labels, digits, per_class: int | None = None, rng=None):
    """The images whose label is in ``digits``, at most ``per_class`` of each, shuffled.

    Each class contributes a random ``per_class`` of its images (all of them if
    it has fewer, or if ``per_class`` is None); the result is then shuffled so
    the classes are interleaved. ``rng`` is a seed or Generator. Returns
    ``(images, labels)``; raises ValueError naming a digit with no images.
    """
    images, labels = np.asarray(images), np.asarray(labels)
    if len(images) != len(labels):
        raise ValueError(f"select_digits: {len(images)} images but {len(labels)} labels")
    if per_class is not None and per_class < 1:
        raise ValueError(f"select_digits: per_class must be positive, got {per_class}")
    rng = as_rng(rng)
    chosen = []
    for digit in digits:
        where = np.flatnonzero(labels == digit)
        if not len(where):
            raise ValueError(f"select_digits: no images with label {digit} "
                             f"(labels present: {sorted(set(np.unique(labels).tolist()))})")
        chosen.append(rng.permutation(where)[:per_class])
    order = rng.permutation(np.concatenate(chosen))
    return images[order], labels[order]


def flatten(images) -> np.ndarray:
    """N×H×W images → N×(H·W) float64 rows; uint8 pixels are divided by 255 into [0, 1]."""
    images = np.asarray(images)
    X = images.reshape(len(images), -1).astype(np.float64)
    return X / 255 if images.dtype == np.uint8 else X


@dataclass
class SVDBasis:
    """An economy SVD X − μ = U S Vᵀ (μ = 0 unless centred), ready to project and reconstruct."""

    U: np.ndarray       # N×r
    S: np.ndarray       # r singular values, largest first
    Vt: np.ndarray      # r×D, orthonormal rows
    mean: np.ndarray    # D; zeros for the plain SVD

    def _rank(self, k: int) -> int:
        if not 1 <= k <= len(self.S):
            raise ValueError(f"SVDBasis: rank k must be between 1 and {len(self.S)}, got {k}")
        return k

    def project(self, X, k: int = 2) -> np.ndarray:
        """Coordinates (X − μ) V_k, N×k. For the fitted rows this equals U_k S_k."""
        return (np.asarray(X) - self.mean) @ self.Vt[:self._rank(k)].T

    def reconstruct(self, X, k: int) -> np.ndarray:
        """Rank-k approximation (X − μ) V_k V_kᵀ + μ, the same shape as X."""
        k = self._rank(k)
        return (np.asarray(X) - self.mean) @ self.Vt[:k].T @ self.Vt[:k] + self.mean

    def energy(self, k: int) -> float:
        """Fraction of ‖X − μ‖²_F the top k directions keep: (σ₁² + … + σₖ²) / Σ σᵢ²."""
        squares = self.S ** 2
        return float(squares[:self._rank(k)].sum() / squares.sum())


def fit_svd(X, center: bool = False) -> SVDBasis:
    """Economy SVD of the N×D data matrix ``X`` (of X − mean row when ``center``).

    Singular vectors are only defined up to sign; each is flipped so that its
    largest-magnitude pixel is positive, which makes plots reproducible across
    LAPACK builds.
    """
    X = np.asarray(X, dtype=np.float64)
    if X.ndim != 2 or not X.size:
        raise ValueError(f"fit_svd: expected a non-empty N×D matrix, got shape {X.shape}")
    mean = X.mean(axis=0) if center else np.zeros(X.shape[1])
    U, S, Vt = np.linalg.svd(X - mean, full_matrices=False)
    signs = np.sign(Vt[np.arange(len(Vt)), np.argmax(np.abs(Vt), axis=1)])
    signs[signs == 0] = 1
    return SVDBasis(U=U * signs, S=S, Vt=Vt * signs[:, None], mean=mean)


def nearest_centroid_accuracy(points, labels) -> float:
    """Fraction of points nearer (Euclidean) to their own class's centroid than to any other.

    Centroids are the class means of these same points, so this measures how
    well the classes separate in this space, not how a classifier generalises.
    """
    points, labels = np.asarray(points, dtype=np.float64), np.asarray(labels)
    classes = np.unique(labels)
    centroids = np.stack([points[labels == c].mean(axis=0) for c in classes])
    distances = ((points[:, None, :] - centroids[None, :, :]) ** 2).sum(axis=2)
    return float(np.mean(classes[distances.argmin(axis=1)] == labels))


def digit_color(digit) -> str:
    """The plotting colour of a digit (0 blue, 1 red, …); other labels cycle through the list."""
    return DIGIT_COLORS[int(digit) % len(DIGIT_COLORS)]


def plot_projection(ax, points, labels, *, title: str | None = None, class_names=None):
    """Scatter 2-D ``points`` on ``ax`` coloured by label, with legend and axis labels.

    ``class_names`` (a sequence indexed by label, e.g. Fashion-MNIST's) names the
    legend's entries; without it the labels name themselves."""
    points, labels = np.asarray(points), np.asarray(labels)
    if points.ndim != 2 or points.shape[1] != 2:
        raise ValueError(f"plot_projection: expected N×2 points, got shape {points.shape}")
    for digit in np.unique(labels):
        mine = points[labels == digit]
        name = class_names[int(digit)] if class_names is not None else digit
        ax.scatter(mine[:, 0], mine[:, 1], s=6, alpha=0.5, color=digit_color(digit),
                   label=f"{name} ({len(mine)})")
    ax.set_xlabel("coordinate along v₁ (first singular direction)")
    ax.set_ylabel("coordinate along v₂ (second singular direction)")
    ax.legend(title="class (count)" if class_names is not None else "label (count)", markerscale=3)
    if title:
        ax.set_title(title)
    return ax


def plot_reconstructions(fig, images, basis: SVDBasis, ranks):
    """Fill ``fig`` with a grid: the ``images`` (N×H×W) in the top row and their rank-k
    reconstructions below, one row per k in ``ranks``. Returns the Figure."""
    images = np.asarray(images)
    X = flatten(images)
    rows = [("original", X)] + [(f"rank {k}", basis.reconstruct(X, k)) for k in ranks]
    axes = fig.subplots(len(rows), len(images), squeeze=False)
    for row, (name, values) in enumerate(rows):
        for column, ax in enumerate(axes[row]):
            ax.imshow(values[column].reshape(images.shape[1:]), cmap="gray_r", vmin=0, vmax=1)
            ax.set_xticks([])
            ax.set_yticks([])
        axes[row, 0].set_ylabel(name)
    return fig
