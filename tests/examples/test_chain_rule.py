"""The chain rule ∂f/∂z = Jᵀv on the derivation's example, by hand and by finite differences."""
import subprocess
import sys

import numpy as np
import pytest

from tests.helpers import SCRIPTS
import nnlayers as nl
from nnlayers.examples import chain_rule

SCRIPT = SCRIPTS / "chain_rule.py"


def test_hand_evaluated_at_z_1_2():
    # z = (1, 2):  x₁ = 1 − 2 = −1,  x₂ = 1² = 1,  x₃ = 2² = 4,  x₄ = 1² + 1·2 = 3.
    # Brackets: a = x₁ + 10x₂ = 9,  b = x₃ − x₄ = 1,  c = x₂ + 2x₃ = 9,  d = x₁ − x₄ = −4.
    # f = a² + 5b² + c⁴ + 10d⁴ = 81 + 5 + 6561 + 2560 = 9207.
    # v = ∂f/∂x:  2a + 40d³ = 18 − 2560 = −2542;   20a + 4c³ = 180 + 2916 = 3096;
    #             10b + 8c³ = 10 + 5832 = 5842;    −10b − 40d³ = −10 + 2560 = 2550.
    # J = ∂x/∂z = [[1, −1], [2z₁, 0], [0, 2z₂], [2z₁ + z₂, z₁]] = [[1, −1], [2, 0], [0, 4], [4, 1]].
    # Jᵀv: ∂f/∂z₁ = −2542 + 2·3096 + 0·5842 + 4·2550 = −2542 + 6192 + 10200 = 13850
    #      ∂f/∂z₂ = 2542 + 0·3096 + 4·5842 + 1·2550 = 2542 + 23368 + 2550 = 28460
    z = np.array([1.0, 2.0])
    np.testing.assert_array_equal(chain_rule.x_of_z(z), [-1, 1, 4, 3])
    assert chain_rule.f_of_z(z) == 9207
    np.testing.assert_array_equal(chain_rule.df_dx([-1, 1, 4, 3]), [-2542, 3096, 5842, 2550])
    np.testing.assert_array_equal(chain_rule.dx_dz(z), [[1, -1], [2, 0], [0, 4], [4, 1]])
    np.testing.assert_array_equal(chain_rule.grad_z(z), [13850, 28460])


@pytest.mark.parametrize("z", [(1.0, 2.0), (0.5, -1.5), (-0.3, 0.7), (2.0, -0.1), (-1.0, 0.5)])
def test_jacobian_vector_product_matches_finite_differences(z):
    result = chain_rule.check(z)
    np.testing.assert_allclose(result.grad, result.numeric, rtol=1e-6)
    assert result.max_rel_diff < 1e-6
    np.testing.assert_array_equal(result.grad, chain_rule.grad_z(z))


def test_gradient_vanishes_at_the_origin():
    # x(0) = 0 is f's minimum (f ≥ 0 = f(0)): every bracket is 0, so v = 0 and Jᵀv = 0;
    # relative error means nothing there, the absolute one must be tiny.
    result = chain_rule.check((0.0, 0.0))
    np.testing.assert_array_equal(result.grad, [0, 0])
    assert result.max_abs_diff < 1e-9


def test_each_factor_matches_its_own_finite_differences():
    z = np.array([0.7, -1.2])
    x = chain_rule.x_of_z(z)
    np.testing.assert_allclose(chain_rule.dx_dz(z), nl.numerical_jacobian(chain_rule.x_of_z, z), rtol=1e-7,
                               atol=1e-9)
    np.testing.assert_allclose(chain_rule.df_dx(x), nl.numerical_jacobian(chain_rule.f, x)[0], rtol=1e-7)


def test_check_reports_the_largest_difference():
    result = chain_rule.check((1, 2))
    assert result.max_abs_diff == np.max(np.abs(result.grad - result.numeric))
    assert 0 < result.max_abs_diff < 1e-4         # finite differences are never exact at f ≈ 9207
    text = str(result)
    assert "13850.0000000000" in text and "28460.0000000000" in text and "largest difference" in text


@pytest.mark.parametrize("call, message", [
    (lambda: chain_rule.f([1, 2, 3]), r"chain_rule\.f: expected x with 4 entries, got shape \(3,\)"),
    (lambda: chain_rule.x_of_z(np.zeros((2, 1))), r"chain_rule\.x_of_z: expected z with 2 entries"),
    (lambda: chain_rule.check((1, 2, 3)), r"chain_rule\.check: expected z with 2 entries"),
])
def test_wrong_sizes_are_named(call, message):
    with pytest.raises(ValueError, match=message):
        call()


def run_script(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True,
                          encoding="utf-8", timeout=60)


def test_script_prints_j_v_and_both_gradients():
    done = run_script()
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "z = (1, 2)" in out and "f(x(z)) = 9207" in out
    assert "J = ∂x/∂z" in out and "v = ∂f/∂x" in out
    assert "-2542" in out and "5842" in out
    for line, exact in (("∂f/∂z₁", 13850.0), ("∂f/∂z₂", 28460.0)):
        row = next(text for text in out.splitlines() if text.startswith(line))
        analytic, numeric, difference = (float(value) for value in row.split()[1:])
        assert analytic == exact
        assert abs(numeric - exact) < 1e-4 and difference == pytest.approx(analytic - numeric, abs=1e-9)
    assert "largest difference:" in out


def test_script_takes_a_point():
    done = run_script("--z", "0.5", "-1.5")
    assert done.returncode == 0, done.stderr
    assert "z = (0.5, -1.5)" in done.stdout
    # Jᵀv at (0.5, −1.5), from the formulas: x = (2, 0.25, 2.25, −0.5), v = (634, 518.6875, 884.875, −652.5)
    assert "1478.9375000000" in done.stdout and "-3614.8750000000" in done.stdout


@pytest.mark.parametrize("args, message", [
    (["--z", "1"], "expected 2 arguments"),
    (["--z", "a", "1"], "not a number: 'a'"),
    (["--z", "inf", "1"], "must be finite"),
    (["--eps", "0"], "must be positive"),
])
def test_script_rejects_bad_arguments(args, message):
    done = run_script(*args)
    assert done.returncode == 2
    assert message in done.stderr
