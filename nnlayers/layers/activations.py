"""Activations: element-wise ones, Z = f(X) and δX = f′ ⊙ δZ, each stating only f and f′; and softmax.

``Elementwise`` holds what they share (the input check, the cache, the
gradient-shape check, δX = f′ ⊙ δZ); a subclass writes ``function`` (f) and
``derivative`` (f′, from the input X and the output Z). ``GELU`` needs the
error function, which numpy lacks: ``erf`` and ``erfc`` are W. J. Cody's
rational approximations, accurate to float64 rounding.

``Softmax`` is not element-wise: each output depends on its whole row. It
takes an optional boolean mask (True = not allowed, as PyTorch's ``attn_mask``),
and ``masked_softmax`` / ``softmax_backward`` are the two formulas it shares
with ``MultiHeadAttention``.
"""
from __future__ import annotations

import numpy as np

from ..backend import get_array_module
from ..kernels import fast_paths_on
from ..kernels.gelu import gelu_float32
from ..module import Module, ShapeError

__all__ = ["Elementwise", "Sigmoid", "sigmoid", "ReLU", "Tanh", "GELU", "erf", "erfc", "normal_cdf", "Softmax",
           "masked_softmax", "softmax_backward", "boolean_mask"]

_MASK = np.dtype(np.bool_)
_FLOAT32 = np.dtype(np.float32)


def sigmoid(X: np.ndarray) -> np.ndarray:
    """σ(X) = 1 / (1 + e^(−X)), element-wise, for any finite X without overflow or warnings.

    Multiplying numerator and denominator by e^min(X, 0) gives

        σ(X) = e^min(X, 0) / (e^min(X, 0) + e^−max(X, 0))

    where both exponents are ≤ 0, so neither exponential can overflow, and
    both are computed exactly (−max(X, 0) = min(X, 0) − X). The result keeps
    full relative precision (within 2 ulps), down to subnormals such as σ(−720).
    """
    low = np.minimum(X, 0.0)              # min(X, 0)
    numerator = np.exp(low)               # e^min(X, 0)
    np.subtract(low, X, out=low)          # −max(X, 0)
    np.exp(low, out=low)                  # e^−max(X, 0)
    low += numerator
    numerator /= low
    return numerator


class Elementwise(Module):
    """Z = f(X) element-wise, any shape; δX = f′(X) ⊙ δZ.

    A subclass defines ``function(X)`` (f) and ``derivative(X, Z)`` (f′ at
    each element, from the input X or the output Z, whichever is simpler):
    a new array, or a boolean mask for a 0/1 derivative.

    f′ is computed in forward and cached, rather than Z: the Z returned is
    then the caller's to modify, and backward is a single product. The
    arithmetic is the same as computing f′ from a cached Z in backward.

    Cache: f′ (an array like X, or a boolean mask).
    """

    cache_names = ("_D",)

    def __init__(self):
        super().__init__()
        self._D = None

    def function(self, X: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not define function (f)")

    def derivative(self, X: np.ndarray, Z: np.ndarray) -> np.ndarray:
        raise NotImplementedError(f"{type(self).__name__} does not define derivative (f′)")

    def forward(self, X):
        """Z = f(X); caches f′(X)."""
        X = self.float_input(X)
        Z = self.function(X)
        D = self.derivative(X, Z)
        if D is Z or D is X:  # f′ = f (eˣ) or the identity's X: keep our own copy
            D = D.copy()
        self._D = D
        return Z

    def backward(self, dZ):
        """δX = f′ ⊙ δZ  (same shape as X)."""
        D = self.forward_cache(self._D)
        dZ = self.check_grad(dZ, D.shape)
        return np.multiply(dZ, D) if D.dtype is _MASK else np.multiply(D, dZ)  # fresh: D is kept


class Sigmoid(Elementwise):
    """Z = σ(X) = 1 / (1 + e^(−X)); σ′(X) = σ(X)(1 − σ(X)) = Z (1 − Z), so δX = Z (1 − Z) ⊙ δZ."""

    def function(self, X):
        """Z = σ(X), overflow-free (see ``sigmoid``)."""
        return sigmoid(X)

    def derivative(self, X, Z):
        """σ′ = Z (1 − Z)."""
        D = 1.0 - Z
        D *= Z
        return D


class ReLU(Elementwise):
    """Z = max(X, 0); ReLU′(X) = [X > 0] = [Z > 0], so δX = [Z > 0] ⊙ δZ.

    At X = 0 the derivative is taken as 0 (as PyTorch does).
    """

    def function(self, X):
        """Z = max(X, 0)."""
        # Against an array of zeros, not the scalar 0: numpy (2.4) runs maximum with a scalar
        # operand in a loop without SIMD, markedly slower on float32. Same values, same dtype.
        return np.maximum(X, np.zeros_like(X))       # ufuncs dispatch to the array's backend

    def derivative(self, X, Z):
        """ReLU′ = [Z > 0] (a mask)."""
        return Z > 0


class Tanh(Elementwise):
    """Z = tanh(X); tanh′(X) = 1 − tanh²(X) = 1 − Z², so δX = (1 − Z²) ⊙ δZ."""

    def function(self, X):
        """Z = tanh(X)."""
        return np.tanh(X)

    def derivative(self, X, Z):
        """tanh′ = 1 − Z²."""
        D = np.square(Z)
        np.subtract(1, D, out=D)
        return D


# -- the error function, for GELU (W. J. Cody, 1969) -----------------------------------------------------
#
# Cody's rational Chebyshev approximations ("Rational Chebyshev approximations for the error function",
# Math. Comp. 23 (1969), 631–637; the coefficients of his SPECFUN routine CALERF), accurate to about
# float64's rounding in each of three ranges (y = |x|):
#
#   y ≤ 0.46875:        erf(x)  = x · A(x²) / B(x²)
#   0.46875 < y ≤ 4:    erfc(y) = e^(−y²) · C(y) / D(y)
#   y > 4:              erfc(y) = e^(−y²) / y · (1/√π − z · P(z) / Q(z)),   z = 1/y²
#
# and erf = 1 − erfc, erfc(−y) = 2 − erfc(y) between them. Each polynomial is written from its
# highest power down, for Horner's rule.
_A = (1.85777706184603153e-1, 3.16112374387056560e00, 1.13864154151050156e02, 3.77485237685302021e02,
      3.20937758913846947e03)
_B = (1.0, 2.36012909523441209e01, 2.44024637934444173e02, 1.28261652607737228e03, 2.84423683343917062e03)
_C = (2.15311535474403846e-8, 5.64188496988670089e-1, 8.88314979438837594e00, 6.61191906371416295e01,
      2.98635138197400131e02, 8.81952221241769090e02, 1.71204761263407058e03, 2.05107837782607147e03,
      1.23033935479799725e03)
_D = (1.0, 1.57449261107098347e01, 1.17693950891312499e02, 5.37181101862009858e02, 1.62138957456669019e03,
      3.29079923573345963e03, 4.36261909014324716e03, 3.43936767414372164e03, 1.23033935480374942e03)
_P = (1.63153871373020978e-2, 3.05326634961232344e-1, 3.60344899949804439e-1, 1.25781726111229246e-1,
      1.60837851487422766e-2, 6.58749161529837803e-4)
_Q = (1.0, 2.56852019228982242e00, 1.87295284992346047e00, 5.27905102951428412e-1, 6.05183413124413191e-2,
      2.33520497626869185e-3)
_ONE_OVER_SQRT_PI = 0.56418958354775628695
_ONE_OVER_SQRT_2 = 0.70710678118654752440
_ONE_OVER_SQRT_2PI = 0.39894228040143267794
_SMALL = 0.46875                          # where the first range ends


def _polynomial(coefficients, t):
    """c₀ tⁿ + c₁ tⁿ⁻¹ + … + cₙ by Horner's rule."""
    value = coefficients[0] * t + coefficients[1]
    for c in coefficients[2:]:
        value *= t
        value += c
    return value


def _erf_small(x):
    """erf(x) for |x| ≤ 0.46875: x · A(x²) / B(x²)."""
    z = x * x
    return x * _polynomial(_A, z) / _polynomial(_B, z)


def _erfc_tail(y):
    """erfc(y) for y ≥ 0.46875 (y may hold smaller values: the caller does not use them): e^(−y²) times
    C(y)/D(y) up to 4, the asymptotic form beyond. Over the whole array, but for the rare y > 4."""
    xp = get_array_module(y)
    y = xp.clip(y, _SMALL, 28.0)            # erfc(28) = e^(−784)… is 0 in float64 already (inf stays 0)
    R = _polynomial(_C, y)
    R /= _polynomial(_D, y)
    far = y > 4.0
    if bool(far.any()):
        yl = y[far]
        z = 1.0 / (yl * yl)
        R[far] = (_ONE_OVER_SQRT_PI - z * _polynomial(_P, z) / _polynomial(_Q, z)) / yl
    # e^(−y²) without y²'s rounding error, which e^… would scale up by y²: with s = ⌊16y⌋/16,
    # y² = s² + (y − s)(y + s), and s² is exact (s has four fractional bits).
    s = xp.floor(y * 16.0) / 16.0
    R *= xp.exp(-(s * s))
    R *= xp.exp(-((y - s) * (y + s)))
    return R


def _select(condition, a, b):
    """a where ``condition``, else b: a·c + b·(1 − c), exact when both are finite (v·1 = v, v·0 = 0), and
    on the CPU several times faster than ``np.where`` for a condition that changes from element to element."""
    return a * condition + b * ~condition


def _float_array(x, owner: str):
    """``x`` as a flat floating-point array (integers and booleans as float64) and its shape."""
    xp = get_array_module(x)
    x = xp.asarray(x)
    if x.dtype.kind in "iub":
        x = x.astype(np.float64)
    elif x.dtype.kind != "f":
        raise TypeError(f"{owner}: expected a numeric array, got dtype {x.dtype}")
    return x.reshape(-1), x.shape


def erf(x):
    """The error function erf(x) = (2/√π) ∫₀ˣ e^(−t²) dt, element-wise, in x's float dtype.

    W. J. Cody's rational Chebyshev approximations (1969; see the comment above
    ``_A`` in this file), within a few units of float64 rounding of ``math.erf``
    everywhere (tests/layers/test_gelu.py checks a dense grid). NaN gives NaN,
    ±inf gives ±1.
    """
    x, shape = _float_array(x, "erf")
    xp = get_array_module(x)
    y = xp.abs(x)
    erf_y = _select(y <= _SMALL, _erf_small(xp.minimum(y, _SMALL)), 1.0 - _erfc_tail(y))     # erf(|x|)
    return xp.copysign(erf_y, x).reshape(shape)                         # erf is odd, erf(−0) = −0 included


def erfc(x):
    """The complementary error function erfc(x) = 1 − erf(x), element-wise, in x's float dtype.

    Computed directly, not as 1 − erf(x), so it keeps its relative accuracy in the
    tail (erfc(10) ≈ 2.1e-45) where 1 − erf(x) is 0. Same method and accuracy as ``erf``.
    """
    x, shape = _float_array(x, "erfc")
    xp = get_array_module(x)
    y = xp.abs(x)
    tail = _erfc_tail(y)
    tail = _select(x < 0, 2.0 - tail, tail)                             # erfc(−y) = 2 − erfc(y)
    small = 1.0 - _erf_small(xp.clip(x, -_SMALL, _SMALL))
    return _select(y <= _SMALL, small, tail).reshape(shape)


def normal_cdf(x):
    """Φ(x) = P(N(0, 1) ≤ x) = ½ erfc(−x/√2), element-wise (accurate in the lower tail too)."""
    x, shape = _float_array(x, "normal_cdf")
    return 0.5 * erfc(x * -_ONE_OVER_SQRT_2).reshape(shape)


class GELU(Elementwise):
    """Z = X Φ(X), the Gaussian error linear unit (Hendrycks & Gimpel, 2016), exact form.

    Φ is the standard normal distribution function and φ its density::

        Φ(x) = ½ (1 + erf(x/√2)) = ½ erfc(−x/√2),     φ(x) = Φ′(x) = e^(−x²/2) / √(2π)

    so GELU′(x) = Φ(x) + x φ(x), and δX = (Φ(X) + X φ(X)) ⊙ δZ. This is PyTorch's
    ``nn.GELU()`` (``approximate='none'``), not the tanh approximation. erf is
    ``erf`` here (numpy has none), accurate to float64 rounding.

    Cache: GELU′(X), as every ``Elementwise`` (forward computes Φ once for Z and GELU′).
    """

    def function(self, X):
        """Z = X Φ(X)."""
        return X * normal_cdf(X)

    def derivative(self, X, Z):
        """GELU′ = Φ(X) + X φ(X)."""
        return normal_cdf(X) + X * (_ONE_OVER_SQRT_2PI * get_array_module(X).exp(-0.5 * X * X))

    def forward(self, X):
        """Z = X Φ(X); caches GELU′ = Φ(X) + X φ(X), from the one Φ(X)."""
        X = self.float_input(X)
        if X.dtype == _FLOAT32 and type(X) is np.ndarray and fast_paths_on():   # nnlayers.kernels.gelu
            Z, self._D = gelu_float32(X)
            return Z
        xp = get_array_module(X)
        Phi = normal_cdf(X)
        Z = X * Phi
        D = X * (_ONE_OVER_SQRT_2PI * xp.exp(-0.5 * X * X))          # X φ(X)
        D += Phi
        self._D = D
        return Z


# -- softmax ---------------------------------------------------------------------------------------------

def boolean_mask(owner, mask):
    """``mask`` as a boolean array (True = masked out), or a clear error naming ``owner``.

    Booleans are taken as they are; numbers that are all 0 or 1 (a mask stored as
    floats, or an ONNX graph's float input) are read as booleans. PyTorch also takes
    *additive* float masks (0 and −inf): those are refused rather than misread.
    """
    name = owner if isinstance(owner, str) else repr(owner)
    xp = get_array_module(mask)
    mask = xp.asarray(mask)
    kind = mask.dtype.kind
    if kind == "b":
        return mask
    if kind not in "iuf":
        raise TypeError(f"{name}: expected a boolean mask (True = masked), got dtype {mask.dtype}")
    if not bool(xp.all((mask == 0) | (mask == 1))):
        raise ValueError(f"{name}: a mask must be boolean (True = masked) or hold only 0 and 1, got other "
                         f"values; an additive float mask (0 and -inf, as PyTorch also takes) is not "
                         f"supported: pass mask == -inf instead")
    return mask != 0


def masked_softmax(X, mask=None, axis: int = -1):
    """P = softmax(X) along ``axis``, entries where ``mask`` is True given probability 0::

        S = X, with −∞ where masked;   m = max S;   P = e^(S − m) / Σ e^(S − m)

    Subtracting the row maximum m changes nothing mathematically and keeps every
    e^… ≤ 1 (no overflow); masked entries get e^(−∞) = 0 exactly. ``mask`` is
    boolean and broadcasts to X. No checks: every row must keep at least one entry.
    """
    xp = get_array_module(X)
    S = X if mask is None else xp.where(mask, -np.inf, X)
    with np.errstate(over="ignore"):          # X − m below −1.8e308 is −inf: e^−inf = 0, as it should be
        E = S - S.max(axis=axis, keepdims=True)
    xp.exp(E, out=E)
    E /= E.sum(axis=axis, keepdims=True)
    return E


def softmax_backward(P, dP, axis: int = -1):
    """δX = P ⊙ (δP − Σ δP ⊙ P) along ``axis``: the softmax Jacobian applied to δP.

    Per row, ∂Pᵢ/∂Xⱼ = Pᵢ (δᵢⱼ − Pⱼ), so δXⱼ = Σᵢ δPᵢ Pᵢ (δᵢⱼ − Pⱼ) = Pⱼ δPⱼ − Pⱼ Σᵢ δPᵢ Pᵢ.
    A masked entry has Pⱼ = 0, so its δXⱼ is 0.
    """
    dX = dP * P                                                        # P ⊙ δP
    dX -= P * dX.sum(axis=axis, keepdims=True)                          # − P Σ δP ⊙ P
    return dX


class Softmax(Module):
    """Z = softmax(X) along ``axis`` (the last by default), with an optional boolean mask.

    Each row (the values along ``axis``) becomes probabilities::

        Zᵢ = e^(Xᵢ − m) / Σⱼ e^(Xⱼ − m),    m = maxⱼ Xⱼ

    (subtracting the row maximum changes nothing but keeps e^… from overflowing).

    ``forward(X)`` or ``forward(X, mask)``: ``mask`` is boolean, broadcastable to
    X's shape, **True = masked out** (PyTorch's convention for a boolean
    ``attn_mask``: True means "not allowed"). Masked entries get Zᵢ = 0 exactly, as if
    Xᵢ were −∞. A row whose every entry is masked has no softmax (0/0; PyTorch gives
    NaN there): it is refused with a ValueError. 0/1 numbers are read as booleans.

    Backward, from the Jacobian of one row, ∂Zᵢ/∂Xⱼ = Zᵢ (δᵢⱼ − Zⱼ)::

        δXⱼ = Σᵢ δZᵢ Zᵢ (δᵢⱼ − Zⱼ) = Zⱼ (δZⱼ − Σᵢ δZᵢ Zᵢ),   i.e.  δX = Z ⊙ (δZ − Σ δZ ⊙ Z)

    one product and one row sum, no Jacobian matrix. A masked entry has Zⱼ = 0, so
    δXⱼ = 0: the mask needs no backward of its own, and has no gradient (None).
    backward returns δX for ``forward(X)``, ``(δX, None)`` for ``forward(X, mask)``.

    Cache: Z (called P in the code); forward returns a copy, the caller's to modify.
    """

    cache_names = ("_P", "_masked")

    def __init__(self, axis: int = -1):
        super().__init__()
        if isinstance(axis, (bool, np.bool_)) or not isinstance(axis, (int, np.integer)):
            raise TypeError(f"Softmax: axis must be an integer, got {axis!r} ({type(axis).__name__})")
        self.axis = int(axis)
        self._P = self._masked = None

    def forward(self, X, mask=None):
        """Z = softmax(X) along the axis, masked entries (True) 0."""
        X = self.float_input(X)
        if not -X.ndim <= self.axis < X.ndim:
            raise ShapeError(f"{self!r}: input of shape {X.shape} has no axis {self.axis}")
        if mask is not None:
            mask = self._checked_mask(mask, X)
        P = masked_softmax(X, mask, self.axis)
        self._P, self._masked = P, mask is not None
        return P.copy()

    def _checked_mask(self, mask, X):
        xp = get_array_module(X)
        mask = boolean_mask(self, mask)
        try:
            fits = np.broadcast_shapes(mask.shape, X.shape) == X.shape
        except ValueError:
            fits = False
        if not fits:
            raise ShapeError(f"{self!r}: mask of shape {mask.shape} does not broadcast to the input's shape "
                             f"{X.shape}")
        hidden = xp.all(xp.broadcast_to(mask, X.shape), axis=self.axis)
        if bool(xp.any(hidden)):
            row = tuple(int(i) for i in xp.argwhere(hidden)[0])
            raise ValueError(f"{self!r}: the mask hides every entry of row {row} (input shape {X.shape}, "
                             f"axis {self.axis}); a softmax over no entries is undefined (PyTorch gives NaN): "
                             f"leave at least one entry of each row unmasked")
        return mask

    def backward(self, dZ):
        """δX = Z ⊙ (δZ − Σ δZ ⊙ Z) along the axis; the mask, if given, gets None."""
        P = self.forward_cache(self._P)
        dZ = self.check_grad(dZ, P.shape)
        dX = softmax_backward(P, dZ, self.axis)
        return (dX, None) if self._masked else dX

    def settings(self) -> dict:
        return {"axis": self.axis}
