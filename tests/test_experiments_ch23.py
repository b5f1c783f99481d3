"""The effects that chapters 2 (loss) and 3 (chain rule) describe, asserted on the library.

If one of these fails, a sentence in a chapter has become false: fix the library or the text.
"""
import time
from decimal import Decimal, localcontext

import numpy as np
import pytest

from bplib import data
from bplib.engine import Value, topological_order
from bplib.forward_mode import Dual, gradient_forward, gradient_reverse
from bplib.gradcheck import gradcheck, rel_error
from bplib.layers import Linear
from bplib.losses import l2_penalty, mse_loss, softmax, softmax_cross_entropy


def naive_softmax(z):
    e = np.exp(z)
    return e / e.sum(axis=-1, keepdims=True)


def cross_entropy_reference(logits, label):
    """-log softmax(logits)[label] with 50 significant digits and no shifting."""
    with localcontext() as ctx:
        ctx.prec = 50
        z = [Decimal(float(v)) for v in logits]
        return float(sum(v.exp() for v in z).ln() - z[label])


def softmax_backward(p, dp):
    return p * (dp - (p * dp).sum(axis=-1, keepdims=True))


# ---- chapter 2 -----------------------------------------------------------------------------

def test_naive_softmax_overflows_where_the_fused_loss_is_exact():
    big = np.array([[1000.0, 999.0, 998.0]])
    with np.errstate(over="ignore", invalid="ignore"):
        assert np.all(np.isnan(naive_softmax(big)))
    with np.errstate(all="raise"):                  # the library never over- or underflows here
        loss, grad = softmax_cross_entropy(big, np.array([2]))
        p = softmax(big)
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    np.testing.assert_allclose(p, softmax(big - 1000.0), rtol=1e-15)
    assert loss == pytest.approx(cross_entropy_reference(big[0], 2), rel=1e-14)


def test_naive_loss_underflows_to_inf_before_the_fused_one_does():
    """Logits s * (1, 0, -1), true class the last: naive log(softmax) is inf from s ~ 373."""
    for s, naive_finite in [(300.0, True), (372.0, True), (373.0, False), (1000.0, False)]:
        logits = s * np.array([[1.0, 0.0, -1.0]])
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
            naive = -np.log(naive_softmax(logits)[0, 2])
        assert np.isfinite(naive) == naive_finite, s
        fused, _ = softmax_cross_entropy(logits, np.array([2]))
        assert fused == pytest.approx(cross_entropy_reference(logits[0], 2), rel=1e-14)
        assert fused == pytest.approx(2 * s, rel=1e-12)


def test_fused_gradient_is_softmax_minus_onehot_over_n():
    rng = np.random.default_rng(0)
    for N, C in [(1, 3), (8, 4), (64, 10)]:
        logits = 3.0 * rng.standard_normal((N, C))
        labels = rng.integers(0, C, size=N)
        _, grad = softmax_cross_entropy(logits, labels)
        np.testing.assert_allclose(grad, (softmax(logits) - np.eye(C)[labels]) / N,
                                   rtol=0, atol=1e-16)


def test_two_step_gradient_is_nan_for_a_confident_mistake_and_fused_is_not():
    onehot = np.array([[1.0, 0.0, 0.0]])
    ordinary = np.array([[2.0, 1.0, 0.1]])
    p = softmax(ordinary)
    np.testing.assert_allclose(softmax_backward(p, -onehot / p),
                               softmax_cross_entropy(ordinary, np.array([0]))[1], atol=1e-15)
    far_behind = np.array([[0.0, 800.0, 0.0]])
    p = softmax(far_behind)
    with np.errstate(divide="ignore", invalid="ignore"):
        assert np.all(np.isnan(softmax_backward(p, -onehot / p)))
    np.testing.assert_array_equal(softmax_cross_entropy(far_behind, np.array([0]))[1],
                                  [[-1.0, 1.0, 0.0]])


def test_cross_entropy_pushes_a_wrong_answer_harder_than_squared_error():
    """Two classes, logits (z, 0), class 0 true: at z = -8 cross-entropy's slope is ~1 and the
    squared error's on the probabilities is over 1000 times smaller."""
    logits = np.array([[-8.0, 0.0]])
    _, dz_ce = softmax_cross_entropy(logits, np.array([0]))
    p = softmax(logits)
    _, dp = mse_loss(p, np.array([[1.0, 0.0]]))
    dz_se = softmax_backward(p, dp)
    assert abs(dz_ce[0, 0]) > 0.999
    assert abs(dz_ce[0, 0]) / abs(dz_se[0, 0]) > 1000


def test_summed_loss_gives_a_gradient_n_times_larger():
    X, y = data.spirals(n_per_class=100, n_classes=3, seed=0)
    layer = Linear(2, 3, rng=0)
    norms = {}
    for n in [1, 10, 100, 300]:
        _, dlogits = softmax_cross_entropy(layer(X[:n]), y[:n])
        layer.zero_grad()
        layer.backward(dlogits)
        dW_mean = layer.W.grad.copy()
        layer.zero_grad()
        layer.backward(n * dlogits)
        assert rel_error(layer.W.grad, n * dW_mean) < 1e-14
        norms[n] = np.linalg.norm(dW_mean)
    # the mean's scale does not grow with N (it settles once N is more than a handful)
    assert 0.5 < norms[300] / norms[10] < 2.0


def test_l2_penalty_adds_lambda_w_and_passes_a_gradient_check():
    X, y = data.spirals(n_per_class=100, n_classes=3, seed=0)
    X, y = X[:64], y[:64]
    layer, lam = Linear(2, 3, rng=0), 0.1
    _, dlogits = softmax_cross_entropy(layer(X), y)
    layer.backward(dlogits)
    dW_data = layer.W.grad.copy()
    penalty = l2_penalty([layer.W], lam)
    assert penalty == pytest.approx(0.5 * lam * np.sum(layer.W.value ** 2), rel=1e-15)
    assert rel_error(layer.W.grad - dW_data, lam * layer.W.value) < 1e-14

    def total(_):
        return softmax_cross_entropy(layer(X), y)[0] + 0.5 * lam * np.sum(layer.W.value ** 2)

    assert gradcheck(total, layer.W.value, layer.W.grad.copy()).rel_error < 1e-7


# ---- chapter 3 -----------------------------------------------------------------------------

def chain_of_tanh(xs):
    return sum((xs[i] * xs[i + 1]).tanh() for i in range(len(xs) - 1))


def op_counts(n):
    """(forward-mode operations, reverse-mode operations) for the gradient of chain_of_tanh."""
    xs = np.random.default_rng(n).uniform(-1.0, 1.0, n).tolist()
    Dual.ops = 0
    _, grad_f = gradient_forward(chain_of_tanh, xs)
    ops_forward = Dual.ops
    out = chain_of_tanh([Value(v) for v in xs])
    ops_reverse = 2 * sum(1 for node in topological_order(out) if node.op)
    np.testing.assert_allclose(grad_f, gradient_reverse(chain_of_tanh, xs)[1], rtol=1e-12)
    return ops_forward, ops_reverse


def test_reverse_mode_advantage_grows_with_the_number_of_inputs():
    ratios = {}
    for n in [10, 30, 100, 300]:                     # n = 1000 takes ~5 s and shows nothing new
        ops_forward, ops_reverse = op_counts(n)
        assert ops_forward == n * 3 * (n - 1)        # n passes of the whole function
        assert ops_reverse == 2 * 3 * (n - 1)        # one forward, one backward
        ratios[n] = ops_forward / ops_reverse
    assert ratios == {10: 5.0, 30: 15.0, 100: 50.0, 300: 150.0}   # exactly n / 2


def test_reverse_mode_is_faster_on_the_clock_too():
    """A loose check (the chapter shows ratios of ~100 at n = 200): forward mode at n = 200
    does 100 times the operations, so even a busy machine shows it at least 10 times slower."""
    xs = np.random.default_rng(0).uniform(-1.0, 1.0, 200).tolist()

    def best(f):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            f(chain_of_tanh, xs)
            times.append(time.perf_counter() - start)
        return min(times)

    assert best(gradient_forward) > 10 * best(gradient_reverse)
