import numpy as np
import pytest

from bplib.data import moons
from bplib.layers import Parameter, mlp
from bplib.losses import l2_penalty, softmax_cross_entropy
from bplib.optim import SGD, clip_grad_norm, grad_norm


def param(value, grad):
    p = Parameter(np.array(value, dtype=float))
    p.grad[...] = grad
    return p


def test_sgd_step_is_value_minus_lr_times_grad():
    p = param([1.0, -2.0], [0.5, 4.0])
    SGD([p], lr=0.1).step()
    np.testing.assert_allclose(p.value, [1.0 - 0.05, -2.0 - 0.4])


def test_momentum_two_steps_by_hand():
    p = param([1.0], [2.0])
    opt = SGD([p], lr=0.1, momentum=0.9)
    opt.step()  # v = 2, w = 1 - 0.2
    p.grad[...] = 1.0
    opt.step()  # v = 0.9 * 2 + 1 = 2.8, w = 0.8 - 0.28
    np.testing.assert_allclose(p.value, [0.52])


def test_weight_decay_adds_to_the_gradient():
    p = param([2.0], [0.5])
    SGD([p], lr=0.1, weight_decay=0.25).step()
    np.testing.assert_allclose(p.value, [2.0 - 0.1 * (0.5 + 0.25 * 2.0)])


def test_zero_grad_and_mutable_lr():
    p = param([1.0], [3.0])
    opt = SGD([p], lr=0.1)
    opt.lr = 0.01
    opt.step()
    np.testing.assert_allclose(p.value, [0.97])
    opt.zero_grad()
    assert p.grad[0] == 0.0
    with pytest.raises(ValueError, match="SGD: lr = -1; expected"):
        opt.lr = -1


def test_clip_grad_norm_caps_the_global_norm():
    a, b = param([0.0, 0.0], [3.0, 0.0]), param([0.0], [4.0])
    assert grad_norm([a, b]) == pytest.approx(5.0)
    assert clip_grad_norm([a, b], max_norm=1.0) == pytest.approx(5.0)
    assert grad_norm([a, b]) == pytest.approx(1.0)
    np.testing.assert_allclose(np.r_[a.grad, b.grad], [0.6, 0.0, 0.8])  # direction kept
    assert clip_grad_norm([a, b], max_norm=10.0) == pytest.approx(1.0)
    assert grad_norm([a, b]) == pytest.approx(1.0)  # below the cap: untouched


def test_training_an_mlp_on_moons_lowers_the_loss():
    X, y = moons(n=200, noise=0.1, seed=0)
    net = mlp([2, 16, 2], rng=0)
    opt = SGD(net.parameters(), lr=0.5, momentum=0.5)
    losses = []
    for _ in range(150):
        opt.zero_grad()
        loss, dout = softmax_cross_entropy(net.forward(X), y)
        net.backward(dout)
        opt.step()
        losses.append(loss)
    accuracy = np.mean(net.forward(X).argmax(axis=1) == y)
    assert losses[-1] < 0.25 * losses[0] and accuracy > 0.95


def test_a_parameter_listed_twice_counts_once():
    """As in PyTorch: an optimizer steps each parameter once, norms and penalties count it once."""
    p = param([1.0], [2.0])
    opt = SGD([p, p], lr=0.1, momentum=0.9)
    opt.step()
    np.testing.assert_allclose(p.value, [0.8])               # 1 - 0.1 * 2, not 1 - 2 * 0.2
    assert len(opt.velocity) == 1
    q = param([0.0], [4.0])
    assert grad_norm([p, q, p]) == pytest.approx(np.hypot(2.0, 4.0))
    clip_grad_norm([q, q], max_norm=1.0)
    np.testing.assert_allclose(q.grad, [1.0])
    w = param([3.0], [0.0])
    assert l2_penalty([w, w], lam=1.0) == pytest.approx(4.5)
    np.testing.assert_allclose(w.grad, [3.0])


def test_clipping_a_non_finite_norm_raises_and_leaves_the_gradients():
    a, b = param([0.0, 0.0], [np.inf, 1.0]), param([0.0], [2.0])
    with pytest.raises(ValueError, match="clip_grad_norm: the global gradient norm is inf"):
        clip_grad_norm([a, b], max_norm=1.0)
    np.testing.assert_array_equal(np.r_[a.grad, b.grad], [np.inf, 1.0, 2.0])
