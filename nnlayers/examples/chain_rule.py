"""The chain rule as a Jacobian-vector product, on the derivation's worked example.

A scalar f of four variables x, each of which depends on two variables z::

    f(x) = (x₁ + 10x₂)² + 5(x₃ − x₄)² + (x₂ + 2x₃)⁴ + 10(x₁ − x₄)⁴

    x₁ = z₁ − z₂     x₂ = z₁²     x₃ = z₂²     x₄ = z₁² + z₁z₂

The gradient of the composition g(z) = f(x(z)) is a Jacobian-transpose times
a vector::

    ∂g/∂zⱼ = Σᵢ ∂f/∂xᵢ · ∂xᵢ/∂zⱼ        i.e.   ∇g(z) = Jᵀ v

with v = ∂f/∂x (4 entries, evaluated at x(z)) and J = ∂x/∂z (4×2). This is
exactly what a layer's ``backward`` does: it receives v = δZ from above and
returns Jᵀv = δX without ever forming J for a whole network.

``check(z)`` computes all of it and compares Jᵀv with central finite
differences of g (``nnlayers.numerical_jacobian``).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..gradcheck import numerical_jacobian

__all__ = ["f", "x_of_z", "f_of_z", "df_dx", "dx_dz", "grad_z", "check", "ChainRuleCheck"]


def _vector(value, size: int, name: str, where: str) -> np.ndarray:
    array = np.asarray(value, dtype=np.float64)
    if array.shape != (size,):
        raise ValueError(f"chain_rule.{where}: expected {name} with {size} entries, got shape {array.shape}")
    return array


def f(x) -> float:
    """f(x) = (x₁ + 10x₂)² + 5(x₃ − x₄)² + (x₂ + 2x₃)⁴ + 10(x₁ − x₄)⁴ for x of 4 entries."""
    x1, x2, x3, x4 = _vector(x, 4, "x", "f")
    return float((x1 + 10 * x2) ** 2 + 5 * (x3 - x4) ** 2 + (x2 + 2 * x3) ** 4 + 10 * (x1 - x4) ** 4)


def x_of_z(z) -> np.ndarray:
    """x(z) = (z₁ − z₂, z₁², z₂², z₁² + z₁z₂) for z of 2 entries."""
    z1, z2 = _vector(z, 2, "z", "x_of_z")
    return np.array([z1 - z2, z1 ** 2, z2 ** 2, z1 ** 2 + z1 * z2])


def f_of_z(z) -> float:
    """The composition g(z) = f(x(z))."""
    return f(x_of_z(z))


def df_dx(x) -> np.ndarray:
    """v = ∂f/∂x.

    Each term of f differentiated::

        ∂f/∂x₁ =  2(x₁ + 10x₂)                + 40(x₁ − x₄)³
        ∂f/∂x₂ = 20(x₁ + 10x₂) + 4(x₂ + 2x₃)³
        ∂f/∂x₃ = 10(x₃ − x₄)   + 8(x₂ + 2x₃)³
        ∂f/∂x₄ = −10(x₃ − x₄)                 − 40(x₁ − x₄)³
    """
    x1, x2, x3, x4 = _vector(x, 4, "x", "df_dx")
    a, b, c, d = x1 + 10 * x2, x3 - x4, x2 + 2 * x3, x1 - x4   # the four bracketed terms
    return np.array([2 * a + 40 * d ** 3,
                     20 * a + 4 * c ** 3,
                     10 * b + 8 * c ** 3,
                     -10 * b - 40 * d ** 3])


def dx_dz(z) -> np.ndarray:
    """J = ∂x/∂z.

    Row i holds (∂xᵢ/∂z₁, ∂xᵢ/∂z₂)::

        ⎡ 1         −1  ⎤   x₁ = z₁ − z₂
        ⎢ 2z₁        0  ⎥   x₂ = z₁²
        ⎢ 0         2z₂ ⎥   x₃ = z₂²
        ⎣ 2z₁ + z₂   z₁ ⎦   x₄ = z₁² + z₁z₂
    """
    z1, z2 = _vector(z, 2, "z", "dx_dz")
    return np.array([[1.0, -1.0],
                     [2 * z1, 0.0],
                     [0.0, 2 * z2],
                     [2 * z1 + z2, z1]])


def grad_z(z) -> np.ndarray:
    """∂f/∂z = Jᵀ v with J = ∂x/∂z at z and v = ∂f/∂x at x(z): a 2-vector."""
    return dx_dz(z).T @ df_dx(x_of_z(z))


@dataclass
class ChainRuleCheck:
    """Everything ``check`` computed at one point z; ``str()`` prints it side by side."""

    z: np.ndarray
    x: np.ndarray          # x(z)
    f: float               # f(x(z))
    J: np.ndarray          # ∂x/∂z, 4×2
    v: np.ndarray          # ∂f/∂x at x(z)
    grad: np.ndarray       # Jᵀv
    numeric: np.ndarray    # central differences of f∘x
    eps: float

    @property
    def max_abs_diff(self) -> float:
        """Largest ``|Jᵀv − numeric|`` over the two entries."""
        return float(np.max(np.abs(self.grad - self.numeric)))

    @property
    def max_rel_diff(self) -> float:
        """Largest ``|Jᵀv − numeric| / max(|Jᵀv|, |numeric|)``, entry by entry (0 where both are 0)."""
        scale = np.maximum(np.abs(self.grad), np.abs(self.numeric))
        error = np.abs(self.grad - self.numeric)
        return float(np.max(np.divide(error, scale, out=np.zeros_like(error), where=scale > 0)))

    def __str__(self) -> str:
        def row(values):
            return "  ".join(f"{value:12.6g}" for value in values)

        lines = [f"z = ({self.z[0]:g}, {self.z[1]:g})",
                 f"x = x(z) = ({', '.join(f'{value:g}' for value in self.x)})",
                 f"f(x(z)) = {self.f:.10g}",
                 "",
                 "J = ∂x/∂z (4×2):"]
        lines += ["  " + row(J_row) for J_row in self.J]
        lines += ["", "v = ∂f/∂x (at x(z)):", "  " + row(self.v), "",
                  f"{'':6}{'Jᵀv':>18}  {'finite differences of f∘x':>26}  {'difference':>12}"]
        for j in range(2):
            lines.append(f"∂f/∂z{'₁₂'[j]}{self.grad[j]:18.10f}  {self.numeric[j]:26.10f}  "
                         f"{self.grad[j] - self.numeric[j]:12.3e}")
        lines += ["", f"largest difference: {self.max_abs_diff:.3e} absolute, "
                      f"{self.max_rel_diff:.3e} relative (central differences, eps = {self.eps:g})"]
        return "\n".join(lines)


def check(z=(1.0, 2.0), eps: float = 1e-6) -> ChainRuleCheck:
    """Evaluate x, f, J, v and Jᵀv at ``z`` and the finite-difference gradient of f∘x."""
    z = _vector(z, 2, "z", "check")
    x = x_of_z(z)
    J, v = dx_dz(z), df_dx(x)
    numeric = numerical_jacobian(f_of_z, z, eps=eps)[0]   # a 1×2 Jacobian: the gradient row
    return ChainRuleCheck(z=z, x=x, f=f(x), J=J, v=v, grad=J.T @ v, numeric=numeric, eps=eps)
