"""``summary``: every module of a model with its output shape and parameter count.

It works for any container, a user's own included: one zero sample goes
through the model in eval mode while each module's ``forward`` is watched
(wrapped on the instance for that one pass), so the table shows what each
module really returned, nested as the model is. A model of several inputs
takes a tuple of sample shapes; a module returning a tuple shows each shape.
"""
from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np

from .backend import to_device
from .module import evaluation_mode

__all__ = ["summary", "Summary"]


@dataclass
class Summary:
    """The table ``summary`` returns: prints as text, displays as an HTML table in a notebook.

    ``rows`` holds ``(name, output shape or None, parameters)`` per module, in
    depth-first order (a container's count includes everything inside it); the
    output shape is a tuple of shapes for a module returning several arrays, and
    ``input_shape`` a tuple of sample shapes for a model of several inputs.
    """

    rows: list
    total: int
    input_shape: tuple

    _HEADER = ("layer", "output shape", "parameters")

    def _cells(self) -> list:
        return [(name, _shape_text(shape), f"{count:,}") for name, shape, count in self.rows]

    def __str__(self) -> str:
        table = self._cells()
        widths = [max(len(row[i]) for row in [self._HEADER, *table]) for i in range(3)]

        def line(row):
            return f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}"

        rule = "-" * (sum(widths) + 4)
        return "\n".join([line(self._HEADER), rule, *map(line, table), rule, self._footer()])

    __repr__ = __str__

    def _footer(self) -> str:
        shapes = self.input_shape if _several(self.input_shape) else (self.input_shape,)
        inputs = ", ".join("(" + ", ".join(["N", *map(str, shape)]) + ")" for shape in shapes)
        return f"total parameters: {self.total:,}  (input{'s' if len(shapes) > 1 else ''}: {inputs})"

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(cell)}</th>" for cell in self._HEADER)
        body = "".join(
            "<tr>" + f"<td style='text-align:left; white-space:pre'>{html.escape(name)}</td>"
            f"<td style='text-align:left'>{html.escape(shape)}</td><td>{html.escape(count)}</td></tr>"
            for name, shape, count in self._cells())
        return (f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"
                f"<p>{html.escape(self._footer())}</p>")

    def __eq__(self, other) -> bool:  # a summary equals its text, so `summary(...) == "..."` reads naturally
        if isinstance(other, str):
            return str(self) == other
        return NotImplemented


def _shape_text(shape) -> str:
    if shape is None:
        return "-"                                  # never called during the pass
    if _several(shape):                             # a tuple of outputs: each shape, comma separated
        return ", ".join(map(_shape_text, shape))
    return "(N, " + ", ".join(map(str, shape[1:])) + ")" if len(shape) > 1 else "(N,)"


def _several(shape) -> bool:
    """Whether ``shape`` is a tuple of shapes (several inputs or outputs) rather than one shape."""
    return isinstance(shape, (tuple, list)) and len(shape) > 0 and all(isinstance(s, (tuple, list)) for s in shape)


def summary(model, input_shape, dtype=np.float64) -> Summary:
    """A table of modules, output shapes (batch dimension shown as N) and parameter counts.

    ``input_shape`` is the shape of one sample, without the batch dimension,
    e.g. ``(1, 28, 28)`` for MNIST images or ``(784,)`` for flattened ones; for
    a model of several inputs, a tuple of such shapes: ``((4,), (3,))``.
    Nested modules are indented under their container, named by their path.
    """
    if _several(input_shape):
        input_shape = tuple(tuple(shape) for shape in input_shape)
        samples = input_shape
    else:
        input_shape = tuple(input_shape)
        samples = (input_shape,)
    named = model.named_modules()
    shapes = {}
    watched = []

    def watch(module):
        original = module.forward

        def forward(*inputs):
            Z = original(*inputs)
            shapes[id(module)] = tuple(map(np.shape, Z)) if type(Z) is tuple else np.shape(Z)
            return Z
        module.forward = forward                    # an instance attribute shadows the method
        watched.append(module)

    # Stateful recurrent layers run the zero sample from zero states and keep the state they carried.
    carried = [(module, module.state) for _, module in named if callable(getattr(module, "reset_state", None))]
    try:
        for _, module in named:
            watch(module)
        for module, _ in carried:
            module.reset_state()
        with evaluation_mode(model):
            model.forward(*(to_device(np.zeros((1, *shape), dtype=dtype), model.device) for shape in samples))
    finally:
        for module in watched:
            del module.forward                      # the class's method shows through again
        for module, state in carried:
            module.state = state
        model.clear_cache()
    rows = []
    for path, module in named:
        depth = path.count(".") + 1 if path else 0
        name = path.rsplit(".", 1)[-1]
        label = repr(module) if not module.named_children() else type(module).__name__
        text = ("  " * (depth - 1) + f"{name}: {label}") if path else label
        rows.append((text, shapes.get(id(module)), module.num_parameters()))
    return Summary(rows, model.num_parameters(), input_shape)
