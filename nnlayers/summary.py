"""``summary``: each layer of a model with its output shape and parameter count."""
from __future__ import annotations

import numpy as np

from .module import Sequential, evaluation_mode

__all__ = ["summary"]


def summary(model, input_shape, dtype=np.float64) -> str:
    """A table of layers, output shapes (batch dimension shown as N) and parameter counts.

    ``input_shape`` is the shape of one sample, without the batch dimension,
    e.g. ``(1, 28, 28)`` for MNIST images or ``(784,)`` for flattened ones.
    Shapes are found by passing one zero sample through the model in eval mode.
    """
    rows = []
    X = np.zeros((1, *input_shape), dtype=dtype)
    with evaluation_mode(model):
        _walk(model, X, "", rows)
    header = ("layer", "output shape", "parameters")
    table = [(name, "(N, " + ", ".join(map(str, shape[1:])) + ")" if len(shape) > 1 else "(N,)", f"{count:,}")
             for name, shape, count in rows]
    widths = [max(len(row[i]) for row in [header, *table]) for i in range(3)]
    line = lambda row: f"{row[0]:<{widths[0]}}  {row[1]:<{widths[1]}}  {row[2]:>{widths[2]}}"
    total = model.num_parameters()
    rule = "-" * (sum(widths) + 4)
    return "\n".join([line(header), rule, *map(line, table), rule,
                      f"total parameters: {total:,}  (input: (N, {', '.join(map(str, input_shape))}))"])


def _walk(module, X, prefix: str, rows: list):
    if isinstance(module, Sequential):
        for position, child in enumerate(module):
            X = _walk(child, X, f"{prefix}{position}.", rows)
        return X
    Z = module.forward(X)
    rows.append((f"{prefix.rstrip('.')}: {module!r}" if prefix else repr(module), Z.shape,
                 module.num_parameters()))
    return Z
