"""Sphinx configuration for nnlayers' documentation site.

Build (README, "Documentation")::

    python -m pip install -e '.[docs]' && python -m sphinx -W -b html docs docs/_build/html

The chapters are notebooks/*.ipynb (docs/chapters is a link to that folder), executed by myst-nb
at build time and cached by jupyter-cache in docs/_build/.jupyter_cache, so a rebuild runs only
the notebooks that changed. Math is rendered by a MathJax copied into the site
(sphinx-mathjax-offline): the built HTML needs no network.
"""
import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))          # autodoc reads this tree's nnlayers, whatever is installed
# The notebook kernels import this tree's nnlayers too (they inherit this environment).
os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT)] + ([os.environ["PYTHONPATH"]]
                                                           if os.environ.get("PYTHONPATH") else []))
os.environ.setdefault("PYDEVD_DISABLE_FILE_VALIDATION", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
# The chapters' kernels compute with one BLAS thread unless the environment says otherwise: the chapters'
# small products gain nothing from a second, and on a busy two-core machine OpenBLAS's spinning workers
# make a training cell many times slower (the test suite runs the notebooks so too).
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import nnlayers  # noqa: E402

project = "nnlayers"
author = "the nnlayers authors"
copyright = "nnlayers authors, MIT licence"
version = release = nnlayers.__version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "myst_nb",
    "sphinx-mathjax-offline",        # sets mathjax_path to a copy of MathJax 3 inside _static/
]

exclude_patterns = ["_build", "chapters/.ipynb_checkpoints", "**/.ipynb_checkpoints"]
html_theme = "furo"
html_title = f"nnlayers {release}"
html_static_path = []
templates_path = []

# -- the API ----------------------------------------------------------------------------------------
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True, "show-inheritance": True}
autodoc_typehints = "description"
napoleon_google_docstring = True
napoleon_numpy_docstring = True
add_module_names = False

# -- the chapters -----------------------------------------------------------------------------------
nb_execution_mode = "cache"
nb_execution_cache_path = str(ROOT / "docs" / "_build" / ".jupyter_cache")
nb_execution_timeout = 300
nb_execution_raise_on_error = True      # a cell error fails the build
nb_execution_show_tb = True
nb_merge_streams = True
myst_enable_extensions = ["dollarmath", "amsmath"]
suppress_warnings = ["mystnb.unknown_mime_type"]
