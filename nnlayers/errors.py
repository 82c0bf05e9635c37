"""The library's own exceptions, and where inside a model an error happened.

``ShapeError`` and ``WeightsFileError`` are what layers and loaders raise;
``locate_error`` prefixes any error raised inside a model with the path of the
module that raised it (``layer 3 > block > layer 1 (Linear(...)) forward: …``),
and ``path_label`` is how every message writes such a path.
"""
from __future__ import annotations

__all__ = ["ShapeError", "WeightsFileError", "path_label", "locate_error"]


class ShapeError(ValueError):
    """An array reached a layer with a shape that layer cannot take."""


class WeightsFileError(ValueError):
    """A weights file or state dict that does not fit the model; the model was left unchanged."""


def path_label(path: str) -> str:
    """A dotted module path as a person reads it: ``3.block.1`` → ``layer 3 > block > layer 1``."""
    return " > ".join(f"layer {part}" if part.isdigit() else part for part in path.split(".")) or "the top"


def locate_error(root, error: Exception, phase: str) -> Exception:
    """``error`` again, its message prefixed with where inside ``root`` (a Module) it happened.

    The module that raised it is the innermost ``self`` in the traceback that
    belongs to ``root``'s tree, so this works for any container, a user's own
    included, and costs nothing until an error happens. The message reads
    ``layer 3 > block > layer 1 (Linear(...)) forward: …``. An error located
    by an inner container is located again from the outer one's top.
    """
    origin = getattr(error, "_nnlayers_origin", None)
    if getattr(error, "_nnlayers_root", None) is root:
        return error
    paths = {id(module): path for path, module in _safe_named_modules(root)}
    if origin is None:
        module = None
        traceback = error.__traceback__
        while traceback is not None:
            candidate = traceback.tb_frame.f_locals.get("self")
            if paths.get(id(candidate)):       # only modules of root's tree (other than root) have a path
                module = candidate
            traceback = traceback.tb_next
        if module is None:
            return error
        origin = (module, phase, str(error))
    module, phase, text = origin
    path = paths.get(id(module))
    if not path:
        return error
    if text.startswith(repr(module)):  # our own errors already name the layer
        message = f"{path_label(path)} {phase}: {text}"
    else:
        message = f"{path_label(path)} ({module!r}) {phase}: {text}"
    try:
        located = type(error)(message)
    except Exception:  # an exception type with an unusual constructor: keep it as it is
        return error
    located._nnlayers_origin = origin
    located._nnlayers_root = root
    return located


def _safe_named_modules(root) -> list:
    try:
        return root.named_modules()
    except (TypeError, ValueError):  # a malformed tree: its own error will be the clearer one
        return []
