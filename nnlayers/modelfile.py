"""Whole-model files: the architecture and the weights in one ``.npz``, rebuilt without the user's code.

``save_model(model, path)`` writes the weights as ``nl.save`` does (one ``.npy`` entry per
parameter and buffer) plus one entry, ``__model__``, holding the architecture as JSON bytes
(a uint8 array): the container tree, each module as its class name and ``settings()``::

    {"format": "nnlayers-model", "version": 1,
     "model": {"class": "Sequential", "settings": {}, "children": [
         ["0", {"class": "Linear", "settings": {"in_features": 784, …}, "children": []}], …]}}

``load_model(path)`` rebuilds that tree and loads the weights into it, all or nothing.
Nothing in the file is executed or imported: a class name is looked up in a registry, the
library's public modules (``nl.__all__``) plus the classes the user registered
(``@register_module``) or passes (``custom_objects={"Softplus": Softplus}``); any other name
is refused. Settings are JSON values (tuples and lists are written as lists and read back as tuples);
a constructor that refuses them (TypeError, ValueError) is a ``WeightsFileError``. The
arrays' headers are checked against the rebuilt model before any data is read, as ``nl.load``
does, and the model is returned only once every array is in.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from ._args import shown_path
from .atomic import atomic_write
from .errors import WeightsFileError, path_label
from .io import MODEL_ENTRY, host_state, read_archive, read_entry
from .module import Module
from .state import check_state_layout

__all__ = ["save_model", "load_model", "register_module"]

FORMAT, VERSION = "nnlayers-model", 1
_MAX_JSON = 1 << 24                       # bytes of architecture: far more than any real tree
_USER_CLASSES: dict[str, type] = {}       # @register_module


def register_module(cls=None, *, name: str | None = None):
    """Let ``load_model`` rebuild the user's own Module class ``cls`` by its name::

        @nl.register_module
        class Softplus(nl.Elementwise): …

    Loading builds it as ``cls(**settings)`` (its ``settings()`` must give the constructor's
    arguments). A name of the library's own classes, or one registered for another class, is refused.
    """
    def register(cls):
        if not (isinstance(cls, type) and issubclass(cls, Module)):
            raise TypeError(f"register_module: {cls!r} is not a Module class")
        key = cls.__name__ if name is None else name
        taken = _library_classes().get(key) or _USER_CLASSES.get(key, cls)
        if taken is not cls:
            raise ValueError(f"register_module: the name {key!r} is already taken by {taken!r}; "
                             "pass name=… to choose another")
        _USER_CLASSES[key] = cls
        return cls

    return register if cls is None else register(cls)


def save_model(model: Module, path):
    """Write ``model``'s architecture (JSON) and weights (arrays) to the ``.npz`` file ``path``, atomically.

    Every module's ``settings()`` must be JSON data (numbers, strings, booleans, None, lists,
    tuples, dicts with string keys; a dtype is written as its name); what is not is refused before
    the file is touched. A module of the user's own class is saved by its class name (or its
    registered name): load it with ``custom_objects`` or after ``register_module``. Returns the path.
    """
    path = Path(path)
    architecture = {"format": FORMAT, "version": VERSION, "model": _describe(model, "", shown_path(path))}
    text = json.dumps(architecture, allow_nan=False, ensure_ascii=True).encode("ascii")
    state = host_state(model, path)            # nl.save's check: numbers only, before the file is touched
    with atomic_write(path) as file:
        np.savez(file, **{MODEL_ENTRY: np.frombuffer(text, dtype=np.uint8)}, **state)
    return path


def load_model(path, custom_objects: dict | None = None, *, allow_nonfinite: bool = False) -> Module:
    """The model saved by ``save_model`` at ``path``, rebuilt, loaded and in eval mode, ready for
    ``nl.predict`` (``model.train()`` before training it further).

    ``custom_objects``: ``{class name: class}`` for the user's own Module classes (see
    ``register_module`` for a lasting alternative). Refused with a ``WeightsFileError`` naming the
    file, with nothing imported or executed and no model returned: an archive ``nl.load`` would
    refuse, no ``__model__`` entry (a weights-only file: build the model and use ``nl.load``),
    architecture that is not valid JSON of this format, an unknown class name, settings the class
    refuses, a model larger than the arrays the file holds (checked before each layer is built, so a
    forged size costs no memory), arrays whose names, shapes or dtypes do not fit the rebuilt model
    (the dtype rule of ``nl.load``; float parameters take the file's float dtype), NaN or inf
    unless ``allow_nonfinite``. A missing file raises ``FileNotFoundError``.
    """
    classes = _library_classes() | _USER_CLASSES | _checked_custom(custom_objects)

    def read(archive, entries, name):
        if MODEL_ENTRY not in entries:
            raise WeightsFileError(f"{name}: holds weights only, no architecture (a file of nl.save): build "
                                   "the model, then nl.load(model, path)")
        _, dtype, shape, _, _ = entries[MODEL_ENTRY]
        if dtype != np.uint8 or len(shape) != 1 or shape[0] > _MAX_JSON:
            raise WeightsFileError(f"{name}: entry {MODEL_ENTRY!r} is not JSON bytes (dtype {dtype}, shape "
                                   f"{shape}; expected uint8 of at most {_MAX_JSON:,} bytes)")
        tree = _parse(read_entry(archive, entries, MODEL_ENTRY, name), name)
        weights = {key: entry for key, entry in entries.items() if key != MODEL_ENTRY}
        budget = _Budget(weights, name)
        try:
            model = _build(tree, classes, name, "", budget)
        except RecursionError:
            raise WeightsFileError(f"{name}: the model description nests too deeply to rebuild") from None
        _match_float_dtypes(model, {key: dtype for key, (_, dtype, _, _, _) in weights.items()})
        check_state_layout(model, {key: (dtype, shape) for key, (_, dtype, shape, _, _) in weights.items()}, name)
        return model, {key: read_entry(archive, entries, key, name) for key in weights}

    model, state = read_archive(path, read)
    model.load_state_dict(state, source=shown_path(path), allow_nonfinite=allow_nonfinite)
    return model.eval()


# -- writing ---------------------------------------------------------------------------------------

def _describe(module: Module, path: str, where: str) -> dict:
    """{"class", "settings", "children"} for ``module`` and, recursively, its children."""
    cls = type(module)
    name = _name_of(cls)
    settings = module.settings()
    if not isinstance(settings, dict):
        raise TypeError(f"{where}: not saved, {_at(path)} {name}.settings() returned "
                        f"{type(settings).__name__}, not a dict")
    return {"class": name, "settings": {str(key): _json_value(value, f"{_at(path)} {name} setting {key!r}", where)
                                        for key, value in settings.items()},
            "children": [[child_name, _describe(child, f"{path}.{child_name}" if path else child_name, where)]
                         for child_name, child in module.named_children()]}


def _name_of(cls) -> str:
    for name, registered in _USER_CLASSES.items():
        if registered is cls:
            return name
    return cls.__name__


def _json_value(value, what: str, where: str):
    """``value`` as JSON data: tuples become lists, numpy scalars numbers, dtypes their names."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, (int, float, np.integer, np.floating, np.bool_)):
        value = value.item() if isinstance(value, np.generic) else value
        if isinstance(value, float) and not np.isfinite(value):
            raise ValueError(f"{where}: not saved, {what} is {value!r}, which JSON cannot hold")
        return value
    if isinstance(value, np.dtype) or (isinstance(value, type) and issubclass(value, np.generic)):
        return np.dtype(value).name
    if isinstance(value, (list, tuple)):
        return [_json_value(item, what, where) for item in value]
    if isinstance(value, dict) and all(isinstance(key, str) for key in value):
        return {key: _json_value(item, what, where) for key, item in value.items()}
    raise TypeError(f"{where}: not saved, {what} is {value!r} ({type(value).__name__}), not JSON data "
                    "(numbers, strings, booleans, None, lists, tuples, dicts)")


# -- reading ---------------------------------------------------------------------------------------

def _library_classes() -> dict:
    """{name: class} of the library's public Module classes (those in ``nl.__all__``)."""
    import nnlayers

    found = {}
    for name in nnlayers.__all__:
        value = getattr(nnlayers, name, None)
        if isinstance(value, type) and issubclass(value, Module) and value.__name__ == name:
            found[name] = value
    return found


def _checked_custom(custom_objects) -> dict:
    if custom_objects is None:
        return {}
    if not isinstance(custom_objects, dict):
        raise TypeError(f"load_model: custom_objects must be a dict {{name: Module class}}, got "
                        f"{type(custom_objects).__name__}")
    for name, cls in custom_objects.items():
        if not (isinstance(cls, type) and issubclass(cls, Module)):
            raise TypeError(f"load_model: custom_objects[{name!r}] is {cls!r}, not a Module class")
    return dict(custom_objects)


def _parse(data: np.ndarray, name: str) -> dict:
    try:
        architecture = json.loads(data.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as error:
        raise WeightsFileError(f"{name}: entry {MODEL_ENTRY!r} is not valid JSON ({error})") from None
    if not isinstance(architecture, dict) or architecture.get("format") != FORMAT:
        raise WeightsFileError(f"{name}: entry {MODEL_ENTRY!r} is not an nnlayers model description")
    if architecture.get("version") != VERSION:
        raise WeightsFileError(f"{name}: model format version {architecture.get('version')!r}; this nnlayers "
                               f"reads version {VERSION}")
    return architecture.get("model")


class _Budget:
    """The bytes the file's arrays can hold (their headers' claims, capped by what the zip entries
    can decompress to): a rebuilt model may not be larger, so forged settings
    (``Linear(10**6, 10**6)``) are refused before their arrays are allocated."""

    _DEFLATE_RATIO = 1032    # deflate's largest possible expansion

    def __init__(self, entries: dict, name: str):
        claimed = sum(int(np.prod(shape, dtype=object)) * dtype.itemsize for _, dtype, shape, _, _ in entries.values())
        holdable = sum(info.compress_size * (self._DEFLATE_RATIO if info.compress_type else 1)
                       for info, *_ in entries.values())
        self.bytes, self.used, self.name = min(claimed, holdable), 0, name

    def check_settings(self, settings: dict, path: str, shown: str) -> None:
        """Before building one of nnlayers' layers: the two largest sizes in its settings (in × out for
        Linear and Conv2D, a lower bound on its weights) as float32 numbers must fit in the file."""
        sizes = sorted(_integers(settings))[-2:]
        need = int(np.prod(sizes, dtype=object)) * 4 if len(sizes) == 2 else 0
        if need > self.bytes + (1 << 20):
            raise WeightsFileError(f"{self.name}: {path}: {shown} needs at least {need:,} bytes of weights, the "
                                   f"file holds at most {self.bytes:,}")

    def add(self, module: Module, path: str) -> None:
        """After building: the module's own arrays count against the file (float64 before a cast: 2×)."""
        self.used += sum(a.data.nbytes for a in list(module._parameters.values()) + list(module._buffers.values()))
        if self.used > 2 * self.bytes + (1 << 20):
            raise WeightsFileError(f"{self.name}: {path}: the model built so far holds {self.used:,} bytes of "
                                   f"weights, more than the file's {self.bytes:,} can fill")


def _integers(value):
    if isinstance(value, bool):
        return
    if isinstance(value, int):
        yield abs(value)
    elif isinstance(value, (tuple, dict)):
        for item in (value.values() if isinstance(value, dict) else value):
            yield from _integers(item)


def _build(node, classes: dict, name: str, dotted: str, budget: _Budget) -> Module:
    """The module a tree node describes (at the dotted path ``dotted``): a container from its
    children, any other from its settings."""
    path = path_label(dotted) if dotted else "the model"
    if not isinstance(node, dict) or not isinstance(node.get("class"), str) or \
            not isinstance(node.get("settings"), dict) or not isinstance(node.get("children"), list) or \
            not all(isinstance(c, list) and len(c) == 2 and isinstance(c[0], str) for c in node["children"]):
        raise WeightsFileError(f"{name}: {path} is not a module description "
                               "({\"class\": …, \"settings\": {…}, \"children\": [[name, {…}], …]})")
    class_name = node["class"]
    cls = classes.get(class_name)
    if cls is None:
        raise WeightsFileError(f"{name}: {path} is of class {class_name!r}, which is neither one of nnlayers' "
                               "modules nor registered: pass load_model(path, custom_objects={"
                               f"{class_name!r}: {class_name.rsplit('.', 1)[-1]}}}) or decorate the class with "
                               "@nl.register_module (nothing named in a file is ever imported)")
    settings = {key: _from_json(value) for key, value in node["settings"].items()}
    children = [(child, _build(sub, classes, name, f"{dotted}.{child}" if dotted else child, budget))
                for child, sub in node["children"]]
    if cls.__module__.startswith("nnlayers."):   # sizes whose meaning we know; a user's class is counted once built
        budget.check_settings(settings, path, f"{class_name}({_shown(settings)})")
    try:
        module = _construct(cls, settings, children)
    except Exception as error:   # whatever the constructor makes of forged settings, told as the file's fault
        raise WeightsFileError(f"{name}: {path}: {class_name}({_shown(settings)}) cannot be built: "
                               f"{type(error).__name__}: {error}") from error
    budget.add(module, path)
    built = [(child, _class_of(sub)) for child, sub in module.named_children()]
    expected = [(child, _class_of(sub)) for child, sub in children]
    if built != expected:
        raise WeightsFileError(f"{name}: {path}: {class_name}({_shown(settings)}) builds the children "
                               f"{built}, the file describes {expected}")
    return module


def _construct(cls, settings: dict, children: list) -> Module:
    """The containers take their children as arguments (Sequential, Parallel: all; Residual: block and
    shortcut); every other module is built from its settings alone (and makes its own children,
    which the caller compares with the file's)."""
    from .containers import Parallel, Residual, Sequential

    modules = [module for _, module in children]
    if issubclass(cls, (Sequential, Parallel)):
        return cls(*modules, **settings)
    if issubclass(cls, Residual):
        names = [child for child, _ in children]
        if names not in (["block"], ["block", "shortcut"]):
            raise ValueError(f"a Residual's children are block (and shortcut), got {names}")
        return cls(*modules, **settings)
    return cls(**settings)


def _class_of(module) -> str:
    return _name_of(type(module))


def _from_json(value):
    """JSON's lists back to the tuples settings hold."""
    if isinstance(value, list):
        return tuple(_from_json(item) for item in value)
    if isinstance(value, dict):
        return {key: _from_json(item) for key, item in value.items()}
    return value


def _match_float_dtypes(model: Module, dtypes: dict) -> None:
    """Give each floating-point parameter and buffer of the freshly built model the file's float dtype
    (a model saved in float32 comes back in float32, whatever its layers' default)."""
    from .state import state_targets

    for key, target in state_targets(model).items():
        dtype = dtypes.get(key)
        if dtype is not None and dtype.kind == "f" and target.data.dtype.kind == "f" and dtype != target.data.dtype:
            target.data = target.data.astype(dtype)
            if hasattr(target, "grad"):
                target.grad = target.grad.astype(dtype)


def _at(path: str) -> str:
    return f"layer {path}" if path else "the model,"


def _shown(settings: dict) -> str:
    text = ", ".join(f"{key}={value!r}" for key, value in settings.items())
    return text if len(text) <= 200 else text[:200] + "…"
