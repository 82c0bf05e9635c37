"""erf, erfc and GELU: Cody's erf against math.erf on a dense grid, the tails, special values, GELU by hand,
its derivative, PyTorch parity over a wide range, dtypes and the strict device."""
import math

import numpy as np
import pytest

import nnlayers as nl
from nnlayers.layers.activations import erf, erfc, normal_cdf
from tests.helpers import importable, require

# A dense grid over where erf changes (steps of 1e-4 out to ±8), every range boundary, and magnitudes
# from 1e-300 to 30 on both sides.
GRID = np.concatenate([np.linspace(-8.0, 8.0, 160001), [0.46875, -0.46875, 4.0, -4.0],
                       np.nextafter(0.46875, [0, 1]), np.nextafter(4.0, [0, 5]),
                       np.geomspace(1e-300, 30.0, 20001), -np.geomspace(1e-300, 30.0, 20001)])


def ulps(ours, exact):
    """|ours − exact| in units of the last place of exact."""
    return np.abs(ours - exact) / np.spacing(np.abs(exact))


def test_erf_matches_math_erf_to_float64_rounding():
    exact = np.array([math.erf(x) for x in GRID])
    ours = erf(GRID)
    assert ulps(ours, exact).max() <= 4
    nonzero = exact != 0
    assert (np.abs(ours - exact)[nonzero] / np.abs(exact[nonzero])).max() < 1e-15


def test_erfc_keeps_its_relative_accuracy_in_the_tails():
    exact = np.array([math.erfc(x) for x in GRID])
    ours = erfc(GRID)
    normal = exact > np.finfo(np.float64).tiny                   # subnormals have fewer digits to compare
    assert (np.abs(ours - exact)[normal] / exact[normal]).max() < 2e-15
    assert ulps(ours, exact)[exact > 0].max() <= 8
    # where 1 − erf(x) has no digits left, erfc still has them all
    assert erfc(np.array(10.0)) == pytest.approx(2.088487583762545e-45, rel=1e-14)
    assert erfc(np.array(26.0)) == pytest.approx(math.erfc(26.0), rel=1e-14)


def test_special_values():
    values = np.array([0.0, -0.0, np.inf, -np.inf, np.nan])
    np.testing.assert_array_equal(erf(values)[:4], [0.0, -0.0, 1.0, -1.0])
    np.testing.assert_array_equal(erfc(values)[:4], [1.0, 1.0, 0.0, 2.0])
    assert np.isnan(erf(values)[4]) and np.isnan(erfc(values)[4])
    assert np.signbit(erf(values)[1])                               # erf is odd, −0 included
    np.testing.assert_array_equal(erfc(np.array([40.0, 1e300])), [0.0, 0.0])


def test_erf_is_odd_and_erfc_its_complement():
    x = np.linspace(-6, 6, 1201)
    np.testing.assert_array_equal(erf(-x), -erf(x))
    np.testing.assert_allclose(erf(x) + erfc(x), 1.0, rtol=0, atol=2.3e-16)


def test_dtypes_and_scalars():
    assert erf(np.linspace(-3, 3, 7, dtype=np.float32)).dtype == np.float32
    np.testing.assert_allclose(erf(np.linspace(-3, 3, 61, dtype=np.float32)),
                               [math.erf(v) for v in np.linspace(-3, 3, 61, dtype=np.float32)], rtol=3e-7,
                               atol=1e-7)
    assert float(erf(0.5)) == pytest.approx(math.erf(0.5), rel=3e-16)
    np.testing.assert_allclose(erf(np.array([1, 2])), [math.erf(1), math.erf(2)], rtol=3e-16)
    with pytest.raises(TypeError, match="erf: expected a numeric array"):
        erf(np.array(["a"]))


def test_normal_cdf_by_hand():
    np.testing.assert_allclose(normal_cdf(np.array([0.0, 1.0, -1.0, 1.959963984540054])),
                               [0.5, 0.8413447460685429, 0.15865525393145707, 0.975], rtol=1e-15)
    # the lower tail keeps its relative accuracy: Φ(−30) ≈ 4.9e-198
    assert normal_cdf(np.array(-30.0)) == pytest.approx(0.5 * math.erfc(30 / math.sqrt(2)), rel=1e-13)


def test_gelu_values_and_derivative_by_hand():
    layer = nl.GELU()
    X = np.array([[0.0, 1.0, -1.0, 3.0]])
    Phi = np.array([0.5, 0.8413447460685429, 0.15865525393145707, 0.9986501019683699])
    phi = np.exp(-X ** 2 / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(layer.forward(X), X * Phi, rtol=1e-15)
    dZ = np.array([[2.0, 1.0, -1.0, 0.5]])
    np.testing.assert_allclose(layer.backward(dZ), dZ * (Phi + X * phi), rtol=1e-15)   # GELU′ = Φ + x φ
    assert layer.backward(dZ)[0, 0] == 1.0                                               # GELU′(0) = ½


def test_gelu_function_and_derivative_agree_with_forward(rng):
    layer = nl.GELU()
    X = rng.normal(scale=3, size=(4, 5))
    Z = layer.forward(X)
    np.testing.assert_array_equal(layer.function(X), Z)
    np.testing.assert_allclose(layer.derivative(X, Z), layer.backward(np.ones_like(X)), rtol=1e-15)


def test_gelu_gradcheck_across_the_ranges(rng):
    X = np.concatenate([rng.uniform(-0.6, 0.6, 20), rng.uniform(-6, 6, 20), [-8.5, 8.5, 4.5, -4.5]])
    assert nl.gradcheck(nl.GELU(), X.reshape(4, 11)).passed


def test_gelu_matches_torch_over_a_wide_range():
    require(importable("torch"), "PyTorch is not installed (pip install torch==2.13.0); parity tests need it")
    import torch
    X = np.concatenate([np.linspace(-12, 12, 4801), np.geomspace(1e-8, 40, 200), -np.geomspace(1e-8, 40, 200)])
    G = np.random.default_rng(0).normal(size=X.shape)
    layer = nl.GELU()
    Z = layer.forward(X)
    dX = layer.backward(G)
    Xt = torch.tensor(X, requires_grad=True)
    Zt = torch.nn.GELU()(Xt)
    Zt.backward(torch.tensor(G))
    np.testing.assert_allclose(Z, Zt.detach().numpy(), rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(dX, Xt.grad.numpy(), rtol=1e-12, atol=1e-15)


def test_gelu_in_float32_and_integers():
    layer = nl.GELU()
    Z = layer.forward(np.linspace(-4, 4, 9, dtype=np.float32))
    assert Z.dtype == np.float32 and layer.backward(np.ones(9, np.float32)).dtype == np.float32
    # float32 (its kernel, nnlayers.kernels.gelu): within float32 rounding of values up to 4, about 5e-7 · |x|
    np.testing.assert_allclose(Z, nl.GELU().forward(np.linspace(-4, 4, 9)), rtol=1e-6, atol=2e-6)
    assert nl.GELU().forward(np.array([-2, 0, 2])).dtype == np.float64


def test_gelu_and_erf_on_the_strict_device():
    from nnlayers import backend
    from tests.strict_backend import StrictArray
    X = np.linspace(-7, 7, 57)
    assert type(erf(backend.to_device(X, "strict"))) is StrictArray
    np.testing.assert_array_equal(backend.to_host(erfc(backend.to_device(X, "strict"))), erfc(X))
