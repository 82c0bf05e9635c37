"""Optimizers: they see only ``Parameter`` objects and update ``data`` in place from ``grad``.

Notation: θ a parameter, g = ∂L/∂θ its accumulated gradient, η the learning
rate, t the step count starting at 1. The optimizers follow PyTorch's
definitions step for step, so results can be compared directly. A learning-rate
schedule (``nnlayers/schedules.py``) sets ``optimizer.lr`` between steps.
"""
from __future__ import annotations

import numpy as np

from ._args import flag, non_negative_int, real
from .backend import device_of, get_array_module, to_device, to_host
from .module import Parameter

__all__ = ["Optimizer", "SGD", "Adam", "AdamW"]


class Optimizer:
    """Holds a list of parameters; ``step()`` updates them, ``zero_grad()`` clears their gradients.

    What an optimizer accumulates while stepping (the step count t, momentum
    buffers, Adam's moments) is its *state*: ``state_dict()`` copies it out,
    ``load_state_dict(state)`` puts it back, so training can resume exactly
    where it was (the Trainer uses them to undo a step that diverged).
    Hyper-parameters (η, μ, β …) are settings, not state: they stay as set.
    """

    #: Attributes holding per-parameter state: a list of one array per parameter, or None if unused.
    state_names: tuple = ()

    #: η₀ for learning-rate schedules: set to ``lr`` by the first schedule attached (``nnlayers/schedules.py``).
    initial_lr = None

    def __init__(self, parameters, lr: float):
        self.parameters = list(parameters)
        if not self.parameters:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        seen = set()
        for position, parameter in enumerate(self.parameters):
            if not isinstance(parameter, Parameter):
                raise TypeError(f"{type(self).__name__}: item {position} is {type(parameter).__name__}, "
                                "not a Parameter (pass model.parameters())")
            if id(parameter) in seen:  # it would be updated twice per step
                raise ValueError(f"{type(self).__name__}: parameter {parameter.name!r} (item {position}) "
                                 "is listed twice")
            seen.add(id(parameter))
        self.lr = lr
        self.steps = 0
        # One scratch buffer per parameter: updates allocate nothing in the hot loop.
        self._scratch = [np.empty_like(p.data) for p in self.parameters]

    @property
    def lr(self) -> float:
        """The learning rate η; may be changed between steps (e.g. for a schedule)."""
        return self._lr

    @lr.setter
    def lr(self, value) -> None:
        self._lr = real(value, "lr", type(self).__name__, low=0.0)
        # η also as a 0-d array of each parameter's dtype: numpy multiplies an array by one
        # faster than by a Python float, which counts in small networks' steps.
        self._lr_arrays = [get_array_module(p.data).asarray(self._lr, dtype=p.data.dtype) for p in self.parameters]

    def zero_grad(self) -> None:
        for parameter in self.parameters:
            parameter.grad.fill(0)  # not parameter.zero_grad(): one call fewer per parameter per step

    def step(self) -> None:
        raise NotImplementedError

    def state_dict(self) -> dict:
        """A copy of the state: ``{"steps": t, name: [one array per parameter], …}``.

        Names are those of ``state_names`` without the underscore (SGD:
        ``velocity`` when momentum is used; Adam: ``m`` and ``v``).
        """
        state = {name: [array.copy() for array in arrays] for name, arrays in self.state_arrays()}
        state["steps"] = self.steps
        return state

    def load_state_dict(self, state) -> None:
        """Put back a state that ``state_dict`` returned, all or nothing.

        The names, the number of arrays and each array's shape must match this
        optimizer's (same parameters, same options); all are checked before
        any is copied in. Arrays are converted to the parameters' dtypes.
        """
        owner = f"{type(self).__name__}.load_state_dict"
        if not isinstance(state, dict):
            raise TypeError(f"{owner}: expected a dict from state_dict(), got {type(state).__name__}")
        live = dict(self.state_arrays())
        if set(state) != set(live) | {"steps"}:
            raise ValueError(f"{owner}: expected the entries {sorted(set(live) | {'steps'})}, "
                             f"got {sorted(map(str, state))}")
        steps = non_negative_int(state["steps"], "steps", owner)
        converted = {}
        for name, arrays in live.items():
            given = state[name]
            if not isinstance(given, (list, tuple)):
                raise TypeError(f"{owner}: {name} must be a list of arrays, got {type(given).__name__}")
            if len(given) != len(arrays):
                raise ValueError(f"{owner}: {name} must be a list of {len(arrays)} arrays (one per parameter), "
                                 f"got {len(given)}")
            converted[name] = []
            for position, (value, array) in enumerate(zip(given, arrays)):
                value = to_host(value)
                if value.dtype.kind not in "fiu":
                    raise TypeError(f"{owner}: {name}[{position}] must hold numbers, got dtype {value.dtype}")
                if value.shape != array.shape:
                    raise ValueError(f"{owner}: {name}[{position}] must have shape {array.shape}, "
                                     f"got shape {value.shape}")
                converted[name].append(value)
        for name, arrays in live.items():
            for array, value in zip(arrays, converted[name]):
                array[...] = to_device(value, device_of(array))
        self.steps = steps

    def to(self, device) -> "Optimizer":
        """Move the optimizer's state (momentum, moments) to ``device``, as ``Module.to`` moves the
        parameters; an optimizer built after ``model.to(device)`` needs no move."""
        for name, arrays in self._state():
            setattr(self, name, [to_device(array, device) for array in arrays])
        self._scratch = [to_device(array, device) for array in self._scratch]
        self.lr = self._lr  # η again, as 0-d arrays on the parameters' device
        return self

    def state_arrays(self) -> list:
        """``(name, list of live arrays)`` for each state in use (names as in ``state_dict``: ``m``, ``v``,
        ``velocity``). The arrays are the optimizer's own, updated in place by every step: the Trainer's
        snapshots copy into and out of them; read them, never keep them across ``to(device)``."""
        return [(name.lstrip("_"), arrays) for name, arrays in self._state()]

    def _state(self) -> list:
        """(attribute name, list of live arrays) for each state in use."""
        return [(name, getattr(self, name)) for name in self.state_names if getattr(self, name) is not None]

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class SGD(Optimizer):
    """Stochastic gradient descent, optionally with momentum, Nesterov and weight decay.

    g ← g + λθ                       (weight decay λ, if any)
    v ← μ v + g                      (momentum μ, if any; v starts at 0, so v₁ = g₁)
    g ← g + μ v  (Nesterov)  or  g ← v  (classic momentum)
    θ ← θ − η g

    State: the step count and, with momentum, v per parameter.
    """

    state_names = ("_velocity",)

    def __init__(self, parameters, lr: float, momentum: float = 0.0, nesterov: bool = False,
                 weight_decay: float = 0.0):
        super().__init__(parameters, lr)
        self.momentum = real(momentum, "momentum", "SGD", low=0.0)
        self.weight_decay = real(weight_decay, "weight_decay", "SGD", low=0.0)
        self.nesterov = flag(nesterov, "nesterov", "SGD")
        if self.nesterov and self.momentum == 0:
            raise ValueError("SGD: nesterov=True needs a momentum > 0")
        self._velocity = [np.zeros_like(p.data) for p in self.parameters] if self.momentum else None

    def step(self) -> None:
        lrs, mu, decay = self._lr_arrays, self.momentum, self.weight_decay
        for i, parameter in enumerate(self.parameters):
            theta, g = parameter.data, parameter.grad
            update = self._scratch[i]
            if decay:
                np.multiply(theta, decay, out=update)
                update += g                                # g ← g + λθ
                g = update
            if mu:
                v = self._velocity[i]
                v *= mu
                v += g                                     # v ← μv + g
                if self.nesterov:
                    if g is not update:
                        np.copyto(update, g)
                    update += mu * v                       # g ← g + μv
                    g = update
                else:
                    g = v                                  # g ← v
            np.multiply(g, lrs[i], out=update)
            theta -= update                                # θ ← θ − η g
        self.steps += 1

    def extra_repr(self) -> str:
        return (f"lr={self.lr}, momentum={self.momentum}, nesterov={self.nesterov}, "
                f"weight_decay={self.weight_decay}")


class Adam(Optimizer):
    """Adam (Kingma & Ba, 2015), as PyTorch defines it (weight decay added to the gradient):

    g ← g + λθ                       (weight decay λ, if any)
    m ← β₁ m + (1 − β₁) g            v ← β₂ v + (1 − β₂) g²
    m̂ = m / (1 − β₁ᵗ)                v̂ = v / (1 − β₂ᵗ)      (bias correction: note the power t)
    θ ← θ − η m̂ / (√v̂ + ε)

    State: the step count t and the moments m and v per parameter.
    """

    state_names = ("_m", "_v")
    #: Weight decay added to the gradient (Adam) or applied to θ apart from it (AdamW).
    decoupled = False

    def __init__(self, parameters, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0):
        super().__init__(parameters, lr)
        name = type(self).__name__
        if not isinstance(betas, (tuple, list)):
            raise TypeError(f"{name}: betas must be a pair of numbers in [0, 1), got {betas!r} "
                            f"({type(betas).__name__})")
        if len(betas) != 2:
            raise ValueError(f"{name}: betas must be a pair of numbers in [0, 1), got {betas!r}")
        self.betas = tuple(real(beta, f"betas[{i}]", name, low=0.0, high=1.0, high_open=True)
                           for i, beta in enumerate(betas))
        self.eps = real(eps, "eps", name, low=0.0)
        self.weight_decay = real(weight_decay, "weight_decay", name, low=0.0)
        self._m = [np.zeros_like(p.data) for p in self.parameters]
        self._v = [np.zeros_like(p.data) for p in self.parameters]

    def step(self) -> None:
        self.steps += 1
        t = self.steps
        beta1, beta2 = self.betas
        correction1 = 1.0 - beta1 ** t                    # 1 − β₁ᵗ
        correction2 = 1.0 - beta2 ** t                    # 1 − β₂ᵗ
        step_size = self.lr / correction1                 # η / (1 − β₁ᵗ)
        sqrt_correction2 = np.sqrt(correction2)
        for i, parameter in enumerate(self.parameters):
            theta, g = parameter.data, parameter.grad
            m, v, scratch = self._m[i], self._v[i], self._scratch[i]
            if self.weight_decay:
                if self.decoupled:
                    theta *= 1.0 - self.lr * self.weight_decay  # θ ← θ − ηλθ  (AdamW)
                else:
                    g = g + self.weight_decay * theta      # g ← g + λθ  (Adam)
            m *= beta1
            np.multiply(g, 1.0 - beta1, out=scratch)
            m += scratch                                   # m ← β₁m + (1 − β₁)g
            v *= beta2
            np.multiply(g, g, out=scratch)
            scratch *= 1.0 - beta2
            v += scratch                                   # v ← β₂v + (1 − β₂)g²
            # √v̂ + ε = √v / √(1 − β₂ᵗ) + ε
            np.sqrt(v, out=scratch)
            scratch /= sqrt_correction2
            scratch += self.eps
            np.divide(m, scratch, out=scratch)            # m / (√v̂ + ε)
            scratch *= step_size                          # η m̂ / (√v̂ + ε)
            theta -= scratch

    def extra_repr(self) -> str:
        return f"lr={self.lr}, betas={self.betas}, eps={self.eps}, weight_decay={self.weight_decay}"


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter, 2019), as ``torch.optim.AdamW``:

    θ ← θ − η λ θ                    (decay applied to θ directly, not through g; λ = 0.01 by default)
    m, v, m̂, v̂ as in Adam, from the gradient g alone
    θ ← θ − η m̂ / (√v̂ + ε)

    In Adam the decay term λθ passes through the 1/√v̂ scaling, so weights with
    large gradients are barely decayed; here every weight shrinks by the same
    factor 1 − ηλ per step, whatever its gradient history.
    """

    decoupled = True

    def __init__(self, parameters, lr: float = 1e-3, betas=(0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2):
        super().__init__(parameters, lr, betas, eps, weight_decay)

