"""Every public module names its public API in ``__all__``: ``from nnlayers.x import *`` gives that and nothing
else (no ``np``, ``os``, ``sys``, ``functools``)."""
import importlib
import pkgutil
import types

import pytest

import nnlayers

PUBLIC = ["nnlayers"] + sorted(info.name for info in pkgutil.walk_packages(nnlayers.__path__, "nnlayers.")
                               if not any(part.startswith("_") for part in info.name.split(".")))


@pytest.mark.filterwarnings("ignore:nnlayers.layers.winograd moved:DeprecationWarning")  # a shim, still public
@pytest.mark.parametrize("name", PUBLIC)
def test_every_public_module_defines_all_of_names_it_has(name):
    module = importlib.import_module(name)
    assert isinstance(getattr(module, "__all__", None), (list, tuple)), f"{name} defines no __all__"
    missing = [item for item in module.__all__ if not hasattr(module, item)]
    assert not missing, f"{name}.__all__ names what it does not have: {missing}"
    foreign = [item for item in module.__all__ if isinstance(getattr(module, item), types.ModuleType)
               and not getattr(module, item).__name__.startswith("nnlayers")]
    assert not foreign, f"{name}.__all__ exports other libraries' modules: {foreign}"


def test_star_import_of_plotting_exposes_no_helpers_modules():
    namespace = {}
    exec("from nnlayers.plotting import *", namespace)
    assert not {"np", "os", "sys", "functools"} & set(namespace)
    assert "plot_loss" in namespace
