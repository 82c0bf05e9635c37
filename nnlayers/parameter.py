"""What a module owns: ``Parameter`` (a trained array and its gradient) and ``Buffer`` (state that
is saved and loaded but never trained). Modules register them (``Module.add_parameter``,
``Module.add_buffer``); optimizers see only parameters."""
from __future__ import annotations

from .backend import get_array_module

__all__ = ["Parameter", "Buffer"]


class Parameter:
    """A trainable array ``data`` and its accumulated gradient ``grad``.

    ``grad`` always has the shape and dtype of ``data`` and starts at zero.
    Optimizers see nothing but parameters: they read ``grad`` and update
    ``data`` in place, so a layer's reference to its parameter stays valid.
    """

    __slots__ = ("data", "grad", "name")

    def __init__(self, data, name: str = ""):
        self.data = get_array_module(data).array(data)  # an owned copy, on the device data is on
        if self.data.dtype.kind != "f":
            raise TypeError(f"Parameter {name!r} needs a floating-point array, got dtype {self.data.dtype}")
        self.grad = get_array_module(self.data).zeros_like(self.data)
        self.name = name

    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def size(self) -> int:
        return self.data.size

    def zero_grad(self) -> None:
        self.grad.fill(0)

    def __repr__(self) -> str:
        return f"Parameter(name={self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"


class Buffer:
    """State that is not trained: an array ``data`` saved and loaded with the weights.

    A layer updates ``data`` in place (``buffer.data *= …``) or assigns a new
    array of the same shape; optimizers never see buffers, and ``gradcheck``
    puts them back exactly as it found them.
    """

    __slots__ = ("data", "name")

    def __init__(self, data, name: str = ""):
        self.data = get_array_module(data).array(data)  # owned, as a parameter's
        if self.data.dtype.kind not in "fiu":
            raise TypeError(f"Buffer {name!r} needs a numeric array, got dtype {self.data.dtype}")
        self.name = name

    @property
    def shape(self) -> tuple:
        return self.data.shape

    def __repr__(self) -> str:
        return f"Buffer(name={self.name!r}, shape={self.data.shape}, dtype={self.data.dtype})"
