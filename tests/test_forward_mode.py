"""Tests for bplib.forward_mode: dual numbers against the reverse-mode engine and PyTorch's
forward mode on the table of ops shared with test_engine.py (tests/scalar_ops.py), and the
operation counter that chapter 3 uses to compare the two modes."""
import math

import numpy as np
import pytest
from scalar_ops import EDGES, IDS, OPS, arity, composite, points

from bplib.forward_mode import Dual, gradient_forward, gradient_reverse, jvp


def unpacked(build):
    return lambda xs: build(*xs)


@pytest.mark.parametrize("name, domain, build, ref", OPS, ids=IDS)
def test_forward_mode_matches_reverse_mode(name, domain, build, ref):
    for xs in points(name, domain, arity(build)):
        value_f, grad_f = gradient_forward(unpacked(build), xs)
        value_r, grad_r = gradient_reverse(unpacked(build), xs)
        assert value_f == pytest.approx(value_r, rel=1e-14, abs=1e-15)
        np.testing.assert_allclose(grad_f, grad_r, rtol=1e-12, atol=1e-14)


# torch's forward AD scripts some of its rules on first use, which warns inside torch itself.
@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
@pytest.mark.parametrize("name, domain, build, ref", OPS, ids=IDS)
def test_jvp_matches_torch_forward_mode(name, domain, build, ref):
    torch = pytest.importorskip("torch", reason="PyTorch not installed: reference check skipped")
    import torch.autograd.forward_ad as fwAD
    rng = np.random.default_rng(1)
    for xs in points(name, domain, arity(build)):
        v = rng.standard_normal(len(xs)).tolist()
        value, tangent = jvp(unpacked(build), xs, v)
        with fwAD.dual_level():                      # PyTorch's own dual numbers
            duals = [fwAD.make_dual(torch.tensor(x, dtype=torch.float64),
                                    torch.tensor(d, dtype=torch.float64)) for x, d in zip(xs, v)]
            ref_value, ref_tangent = fwAD.unpack_dual(build(*duals))
        assert value == pytest.approx(ref_value.item(), rel=1e-12)
        assert tangent == pytest.approx(ref_tangent.item(), rel=1e-12, abs=1e-14)


def test_dual_arithmetic_by_hand():
    x = Dual(3.0, 1.0)
    y = x * x
    assert (y.value, y.tangent) == (9.0, 6.0)       # a node used twice: 2x
    z = (x + 1) / x                                  # 1 + 1/x, derivative -1/x^2
    assert z.value == pytest.approx(4 / 3) and z.tangent == pytest.approx(-1 / 9)
    assert repr(y) == "Dual(value=9, tangent=6)"


def test_jvp_is_linear_in_the_direction():
    xs = [0.3, -1.2, 0.8]
    u, v = [1.0, 2.0, -0.5], [0.0, -1.0, 3.0]
    f = unpacked(composite)
    _, ju = jvp(f, xs, u)
    _, jv = jvp(f, xs, v)
    _, jw = jvp(f, xs, [2 * a - 3 * b for a, b in zip(u, v)])
    assert jw == pytest.approx(2 * ju - 3 * jv, rel=1e-12)
    _, grad = gradient_forward(f, xs)
    assert ju == pytest.approx(float(np.dot(grad, u)), rel=1e-12)


def test_worked_example_gradient_both_ways():
    def loss(p):
        w1, b1, w2, b2 = p
        return (2.5 - (w2 * (w1 * 3.0 + b1).sigmoid() + b2)) ** 2

    value, grad = gradient_forward(loss, [2.0, -1.0, 1.5, 0.5])
    assert round(value, 4) == 0.2601
    assert [round(g, 4) for g in grad] == [-0.0305, -0.0102, -1.0133, -1.0201]
    assert grad == pytest.approx(gradient_reverse(loss, [2.0, -1.0, 1.5, 0.5])[1], rel=1e-12)


def test_numbers_on_either_side_including_numpy_scalars():
    d = Dual(2.0, 1.0)
    for out, value, tangent in [(np.float64(3.0) * d, 6.0, 3.0), (d * np.float64(3.0), 6.0, 3.0),
                                (1 - d, -1.0, -1.0), (d - 1, 1.0, 1.0), (4 / d, 2.0, -1.0),
                                (d / 4, 0.5, 0.25), (1 + d, 3.0, 1.0)]:
        assert isinstance(out, Dual)
        assert (out.value, out.tangent) == (value, tangent)


def test_sigmoid_is_stable_for_large_inputs():
    for x, expected in [(800.0, 1.0), (-800.0, 0.0), (-40.0, math.exp(-40.0))]:
        s = Dual(x, 1.0).sigmoid()
        assert s.value == pytest.approx(expected, rel=1e-12, abs=1e-300)
        assert math.isfinite(s.tangent) and s.tangent >= 0.0


def test_relu_passes_no_tangent_below_zero():
    assert Dual(-2.0, 5.0).relu().tangent == 0.0
    assert Dual(2.0, 5.0).relu().tangent == 5.0


def test_ops_counts_each_operation_once_and_not_constants():
    Dual.ops = 0
    x = Dual(1.0, 1.0)
    Dual(2.0)                                        # creating inputs is not an operation
    assert Dual.ops == 0
    (x * x + 1).tanh()                               # *, +, tanh
    assert Dual.ops == 3


def test_gradient_forward_runs_one_pass_per_input():
    calls = []

    def f(xs):
        calls.append(1)
        return sum((xs[i] * xs[i + 1]).tanh() for i in range(len(xs) - 1))

    n = 7
    Dual.ops = 0
    _, grad = gradient_forward(f, [0.1 * i for i in range(n)])
    assert len(calls) == n and len(grad) == n
    assert Dual.ops == n * 3 * (n - 1)               # per pass: n-1 of *, tanh and +


def test_jvp_and_gradient_forward_reject_mismatched_or_empty_inputs():
    with pytest.raises(ValueError):
        jvp(lambda xs: xs[0], [1.0, 2.0], [1.0])
    with pytest.raises(ValueError, match="empty"):
        gradient_forward(lambda xs: 0.0, [])


@pytest.mark.parametrize("x, build, value, derivative", EDGES)
def test_domain_edges_that_are_fine(x, build, value, derivative):
    out = build(Dual(x, 1.0))
    assert out.value == pytest.approx(value, rel=1e-15, abs=0.0)
    assert out.tangent == pytest.approx(derivative, rel=1e-15, abs=0.0)


def test_constant_function_has_zero_tangent():
    assert jvp(lambda xs: 3.0, [1.0], [1.0]) == (3.0, 0.0)
