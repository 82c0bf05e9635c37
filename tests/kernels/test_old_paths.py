"""The kernels' former module paths still import: nnlayers._threads is the same module as
nnlayers.kernels.threads, and nnlayers.layers.winograd re-exports its public names with a warning."""
import importlib
import sys

import pytest

from nnlayers import kernels


def test_threads_keeps_its_old_name_as_the_same_module():
    from nnlayers import _threads
    assert _threads is kernels.threads
    _threads.set_num_threads(2)                          # a setting through the old name reaches the lanes
    try:
        assert kernels.threads.num_threads() == 2
    finally:
        _threads.set_num_threads(_threads._default_threads())


def test_layers_winograd_is_a_deprecated_re_export(monkeypatch):
    monkeypatch.delitem(sys.modules, "nnlayers.layers.winograd", raising=False)
    with pytest.deprecated_call(match="moved to nnlayers.kernels.winograd"):
        old = importlib.import_module("nnlayers.layers.winograd")
    for name in old.__all__:
        assert getattr(old, name) is getattr(kernels.winograd, name)
