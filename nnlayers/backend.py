"""The array-backend seam: numpy on the CPU, CuPy on an NVIDIA GPU, chosen by the arrays themselves.

Layers never name a backend. Each computes with the array module of its
input, as Chainer's layers did::

    xp = get_array_module(X)        # numpy, or cupy for a CuPy array
    Z = xp.zeros((N, F), dtype=X.dtype)

and nothing converts silently between host and device: a CPU weight meeting a
GPU input is an error naming the layer and both devices. ``Module.to(device)``
moves parameters and buffers; ``to_device`` moves one array.

Importing nnlayers never imports CuPy: only an array that already is a CuPy
array (so CuPy is loaded) or an explicit ``to("cuda")`` brings it in.
"""
from __future__ import annotations

import sys

import numpy as np

__all__ = ["get_array_module", "device_of", "to_device", "to_host", "is_array", "check_same_device",
           "DeviceError", "register_backend"]


class DeviceError(RuntimeError):
    """Arrays on different devices met, or a device was asked for that this machine cannot give."""


# Backends besides numpy, keyed by their array type: (array module, device name of an array).
# CuPy registers itself on first use; tests register a strict stand-in (see tests/strict_backend.py).
_BACKENDS: dict[type, tuple] = {}
_DEVICE_MODULES: dict[str, object] = {}   # device names besides cpu/cuda, for registered backends


def register_backend(array_type: type, module, device, name: str | None = None) -> None:
    """Let ``array_type`` arrays compute with ``module`` (numpy's API) and report ``device(array)``.

    With ``name``, ``to_device(array, name)`` and ``Module.to(name)`` move arrays there
    through ``module.asarray``: how the tests run every layer on a stand-in device.
    """
    _BACKENDS[array_type] = (module, device)
    if name is not None:
        _DEVICE_MODULES[name] = module


def _cupy_backend(array_type: type):
    """Register CuPy when one of its arrays shows up: it is imported already, since the array exists."""
    if array_type.__module__.split(".")[0] == "cupy" and "cupy" in sys.modules:
        cupy = sys.modules["cupy"]
        register_backend(cupy.ndarray, cupy, lambda array: f"cuda:{array.device.id}")
        return _BACKENDS.get(array_type)
    return None


def _backend(array):
    array_type = type(array)
    if array_type is np.ndarray:
        return None
    found = _BACKENDS.get(array_type)
    if found is None and not isinstance(array, (np.ndarray, np.generic, int, float, complex, bool)):
        found = _cupy_backend(array_type)
    if found is None:
        for registered, backend in _BACKENDS.items():  # subclasses of a registered type
            if isinstance(array, registered):
                return backend
    return found


def get_array_module(*arrays):
    """The array module of ``arrays``: numpy, or the GPU module (cupy) of the first device array."""
    for array in arrays:
        backend = _backend(array)
        if backend is not None:
            return backend[0]
    return np


def is_array(value) -> bool:
    """Whether ``value`` is an array of any backend (so it must not be passed through ``np.asarray``)."""
    return type(value) is np.ndarray or _backend(value) is not None or isinstance(value, np.ndarray)


def device_of(array) -> str:
    """``"cpu"`` for numpy arrays and Python numbers, ``"cuda:0"`` (etc.) for a GPU array."""
    backend = _backend(array)
    return "cpu" if backend is None else backend[1](array)


def check_same_device(owner, *arrays) -> None:
    """Raise ``DeviceError`` naming ``owner`` (a layer) and the devices when ``arrays`` are not on one device."""
    devices = [device_of(array) for array in arrays]
    if len(set(devices)) > 1:
        name = owner if isinstance(owner, str) else repr(owner)
        raise DeviceError(f"{name}: its input is on {devices[0]} but its weights are on "
                          f"{', '.join(sorted(set(devices[1:])))}; move the model with model.to(\"{devices[0]}\") "
                          "or the data to the model's device")


def _parse(device) -> tuple[str, int]:
    text = str(device).strip().lower()
    kind, _, index = text.partition(":")
    if kind == "cpu" and not index:
        return "cpu", 0
    if kind in ("cuda", "gpu") and (not index or index.isdigit()):
        return "cuda", int(index or 0)
    if text in _DEVICE_MODULES:
        return text, 0
    raise ValueError(f"unknown device {device!r}; use 'cpu', 'cuda' or 'cuda:N'")


def _cupy():
    """CuPy, or a clear error saying how to get it (or that there is no GPU)."""
    try:
        import cupy
    except ImportError:
        raise DeviceError("device 'cuda' needs CuPy: pip install -e '.[gpu]' (the extra installs "
                          "cupy-cuda12x; for CUDA 13 install cupy-cuda13x instead)") from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as error:  # CUDA driver missing or broken
        raise DeviceError(f"device 'cuda': CuPy is installed but finds no usable GPU ({error})") from None
    if count == 0:
        raise DeviceError("device 'cuda': CuPy is installed but this machine has no CUDA GPU")
    return cupy


def to_device(array, device):
    """``array`` on ``device`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``): the same object if already there."""
    if device == "cpu" and type(array) is np.ndarray:  # the CPU's every batch: no parsing
        return array
    kind, index = _parse(device)
    here = device_of(array)
    if kind == "cpu":
        return to_host(array)
    if kind in _DEVICE_MODULES:
        return array if here == kind else _DEVICE_MODULES[kind].asarray(to_host(array))
    cupy = _cupy()
    if here == f"cuda:{index}":
        return array
    if index >= cupy.cuda.runtime.getDeviceCount():
        raise DeviceError(f"device 'cuda:{index}' does not exist (this machine has "
                          f"{cupy.cuda.runtime.getDeviceCount()} GPU(s))")
    with cupy.cuda.Device(index):
        return cupy.asarray(to_host(array))


def to_host(array):
    """``array`` as a numpy array (a copy from the GPU, or the array itself when it is on the host)."""
    if type(array) is np.ndarray:
        return array
    backend = _backend(array)
    if backend is None:
        return np.asarray(array)
    module = backend[0]
    if hasattr(module, "asnumpy"):
        return module.asnumpy(array)
    return np.asarray(array).view(np.ndarray)  # a registered host stand-in (tests)
