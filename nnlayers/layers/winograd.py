"""Moved to ``nnlayers.kernels.winograd`` (deprecated path, kept so that old imports still work)."""
import warnings

from ..kernels.winograd import G, filter_gradient, filter_tiles, winograd_fits  # noqa: F401

__all__ = ["G", "winograd_fits", "filter_tiles", "filter_gradient"]

warnings.warn("nnlayers.layers.winograd moved to nnlayers.kernels.winograd", DeprecationWarning, stacklevel=2)
