"""A stand-in device for the backend seam, on machines without a GPU.

``StrictArray`` is a host array that behaves like an array on another device:
like CuPy, it refuses to mix with plain numpy arrays (a numpy array or 0-d
array operand raises; Python and numpy scalars are fine), so a layer that
allocates with ``np.zeros(...)`` instead of ``xp.zeros(...)``, or holds a
host array it combines with its input, fails here as it would on a GPU.
``STRICT`` is its array module (numpy's API, allocating StrictArrays), and
``nnlayers.backend`` knows it as the device ``"strict"``.
"""
import numpy as np

from nnlayers import backend


class MixedDevicesError(TypeError):
    """A StrictArray met a plain numpy array."""


def _refuse_host(values, where):
    for value in values:
        if isinstance(value, (list, tuple)):
            _refuse_host(value, where)
        elif type(value) is np.ndarray:
            raise MixedDevicesError(f"{where}: a host numpy array {value.shape} mixed with a 'strict' device array")


def _plain(value):
    if isinstance(value, StrictArray):
        return value.view(np.ndarray)
    if isinstance(value, (list, tuple)):
        return type(value)(_plain(v) for v in value)
    return value


def _strict(value):
    if type(value) is np.ndarray:
        return value.view(StrictArray)
    if isinstance(value, tuple):
        return tuple(_strict(v) for v in value)
    if isinstance(value, list):
        return [_strict(v) for v in value]
    return value


class StrictArray(np.ndarray):
    def __array_ufunc__(self, ufunc, method, *inputs, out=None, **kwargs):
        _refuse_host(inputs + (out or ()), f"np.{ufunc.__name__}.{method}" if method != "__call__" else
                     f"np.{ufunc.__name__}")
        if out is not None:
            kwargs["out"] = tuple(_plain(o) for o in out)
        result = getattr(ufunc, method)(*_plain(inputs), **kwargs)
        if out is not None:
            return out[0] if len(out) == 1 else out
        return _strict(result)

    def __array_function__(self, func, types, args, kwargs):
        _refuse_host(list(args) + list(kwargs.values()), f"np.{func.__name__}")
        return _strict(func(*_plain(args), **{k: _plain(v) for k, v in kwargs.items()}))


class _Random:
    @staticmethod
    def default_rng(seed=None):
        generator = np.random.default_rng(seed)

        class Generator:
            def random(self, size=None, dtype=np.float64):
                return generator.random(size, dtype=dtype).view(StrictArray)

            def standard_normal(self, size=None, dtype=np.float64):
                return generator.standard_normal(size, dtype=dtype).view(StrictArray)
        return Generator()


class _StrictModule:
    """numpy's API, with every allocation made on the 'strict' device."""

    random = _Random()

    def __getattr__(self, name):
        function = getattr(np, name)
        if name in ("zeros", "empty", "ones", "full", "arange", "eye", "asarray", "array", "ascontiguousarray",
                    "frombuffer", "linspace"):
            return lambda *args, **kwargs: np.asarray(function(*_plain(args), **kwargs)).view(StrictArray)
        return function


STRICT = _StrictModule()
backend.register_backend(StrictArray, STRICT, lambda array: "strict", name="strict")
