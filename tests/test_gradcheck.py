import numpy as np
import pytest

from bplib.gradcheck import GradCheckResult, check_layer, gradcheck, numerical_gradient, rel_error
from bplib.layers import BatchNorm1d, Linear, mlp
from bplib.losses import softmax_cross_entropy

X = np.random.default_rng(0).standard_normal((4, 3))


class TransposedLinear(Linear):
    """A classic bug: dW = dout^T X instead of X^T dout (same shape when D = M)."""

    def backward(self, dout):
        dX = super().backward(dout)
        self.W.grad[...] = self.W.grad.T
        return dX


class SignFlippedLinear(Linear):
    def backward(self, dout):
        dX = super().backward(dout)
        self.W.grad *= -1
        return dX


def test_numerical_gradient_of_a_square_and_x_is_restored():
    x = np.array([[1.0, -2.0], [0.5, 3.0]])
    before, dout = x.copy(), np.array([[1.0, 2.0], [-1.0, 0.5]])
    numeric = numerical_gradient(lambda x: x**2, x, dout)
    np.testing.assert_allclose(numeric, 2 * before * dout, rtol=1e-8)
    np.testing.assert_array_equal(x, before)


def test_x_is_restored_when_f_fails():
    x, calls = np.zeros(3), []

    def f(x):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("boom")
        return x

    with pytest.raises(RuntimeError):
        numerical_gradient(f, x)
    np.testing.assert_array_equal(x, 0.0)


def test_rel_error_is_normwise():
    a, b = np.array([1.0, 1e-12]), np.array([1.0, 2e-12])
    assert rel_error(a, b) == pytest.approx(1e-12)  # elementwise it would be 1/3
    assert rel_error(np.zeros(3), np.zeros(3)) == 0.0
    assert rel_error([2.0, 0.0], [1.0, 0.0]) == pytest.approx(0.5)


def test_gradcheck_of_a_loss():
    logits, y = np.random.default_rng(1).standard_normal((5, 4)), np.array([0, 1, 2, 3, 0])
    _, grad = softmax_cross_entropy(logits, y)
    result = gradcheck(lambda z: softmax_cross_entropy(z, y)[0], logits, grad)
    assert isinstance(result, GradCheckResult) and result.passed() and result.rel_error < 1e-8


@pytest.mark.parametrize("layer", [Linear(3, 3, rng=0), mlp([3, 5, 2], activation="tanh", rng=0),
                                   BatchNorm1d(3)], ids=repr)
def test_check_layer_passes_correct_layers(layer):
    values = [p.value.copy() for p in layer.parameters()]
    results = check_layer(layer, X)
    assert set(results) == {"X"} | {name for name, _ in layer.named_parameters()}
    assert all(r.passed(tol=1e-7) for r in results.values()), results
    for p, v in zip(layer.parameters(), values):
        np.testing.assert_array_equal(p.value, v)


@pytest.mark.parametrize("Bad", [TransposedLinear, SignFlippedLinear])
def test_check_layer_catches_a_wrong_dW(Bad):
    results = check_layer(Bad(3, 3, rng=0), X)
    W = results["W"]
    assert W.rel_error > 1e-2 and not W.passed()
    assert len(W.index) == 2 and all(0 <= i < 3 for i in W.index)
    assert W.numeric != pytest.approx(W.analytic)
    assert results["X"].passed() and results["b"].passed()
    assert f"index {W.index}" in str(W)
