"""In a Jupyter kernel, let matplotlib Figures made without pyplot display as pictures.

IPython learns to draw a ``Figure`` only when a pyplot backend loads. The
figures ``nl.plotting`` makes (and ``matplotlib.figure.Figure()`` in a
notebook) never load one, so a notebook would print ``<Figure size 640x480>``
instead. Registered by type *name*, so neither matplotlib nor IPython is
imported for it; a formatter already registered (matplotlib's inline backend
registers its own) is left alone.
"""
from __future__ import annotations

import sys


def show_figures_in_notebooks() -> None:
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None
    if shell is None or not hasattr(shell, "display_formatter"):
        return                                  # not in IPython: nothing to do
    png = shell.display_formatter.formatters["image/png"]
    if ("matplotlib.figure", "Figure") in png.deferred_printers or _registered(png):
        return
    png.for_type_by_name("matplotlib.figure", "Figure", _figure_png)


def _registered(formatter) -> bool:
    figure = sys.modules.get("matplotlib.figure")
    if figure is None:
        return False
    try:
        formatter.lookup_by_type(figure.Figure)
    except KeyError:
        return False
    return True


def _figure_png(figure) -> bytes:
    from IPython.core.pylabtools import print_figure
    return print_figure(figure, "png", bbox_inches="tight")
