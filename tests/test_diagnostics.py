"""bplib.diagnostics, and the effects chapters 6 and 7 describe, measured with fixed seeds.

The thresholds leave room around what these seeds give (noted next to each assertion) and
around what other seeds give (noted in the docstrings), so they test the effect, not a number.
"""
import numpy as np
import pytest

from bplib import data
from bplib.diagnostics import block_jacobians, deep_net, layer_stats, split_blocks
from bplib.gradcheck import numerical_gradient, rel_error
from bplib.layers import BatchNorm1d, Linear, ReLU
from bplib.losses import softmax_cross_entropy
from bplib.train import fit


@pytest.fixture(scope="module")
def digits():
    """256 standardised 8x8 digits: 64 features of mean 0 and std 1, 10 classes."""
    X, y, _, _ = data.digits(seed=0)
    X = (X - X.mean(axis=0)) / (X.std(axis=0) + 1e-8)
    return X[:256], y[:256]


def test_deep_net_layout():
    plain = deep_net(3, 8, 2, 4, activation="tanh", rng=0)
    assert [type(layer).__name__ for layer in plain] == ["Linear", "Tanh"] * 4 + ["Linear"]
    assert plain(np.ones((5, 2))).shape == (5, 4)
    res = deep_net(3, 8, 2, 4, residual=True, batchnorm=True, rng=0)
    assert [type(layer).__name__ for layer in res] == ["Linear", "BatchNorm1d", "ReLU",
                                                       "Residual", "Residual", "Residual",
                                                       "Linear"]
    branch = res[3].F
    assert [type(layer) for layer in branch] == [Linear, BatchNorm1d, ReLU]
    blocks, head = split_blocks(res)
    assert len(blocks) == 4 and [type(layer) for layer in head] == [Linear]


def test_residual_branches_start_small_and_init_takes_a_sigma():
    """Branch weights are the scheme's times branch_scale (1/depth by default)."""
    plain = deep_net(10, 8, 8, 2, init=0.5, rng=0)
    res = deep_net(10, 8, 8, 2, init=0.5, residual=True, rng=0)
    np.testing.assert_allclose(res[0].W.value, plain[0].W.value)   # the first block: as is
    np.testing.assert_allclose(res[2].F[0].W.value, plain[2].W.value / 10)
    half = deep_net(10, 8, 8, 2, init=0.5, residual=True, branch_scale=0.5, rng=0)
    np.testing.assert_allclose(half[2].F[0].W.value, plain[2].W.value / 2)


def test_layer_stats_against_a_manual_pass_and_grads_left_alone(digits):
    X, y = digits
    model = deep_net(2, 16, 64, 10, rng=1)
    for p in model.parameters():
        p.grad[...] = 7.0
    stats = layer_stats(model, X, y)
    assert all(np.all(p.grad == 7.0) for p in model.parameters())

    model.zero_grad()
    h1 = model[1](model[0](X))
    h2 = model[3](model[2](h1))
    h3 = model[5](model[4](h2))
    loss, dout = softmax_cross_entropy(model[6](h3), y)
    d3 = model[6].backward(dout)
    d2 = model[4].backward(model[5].backward(d3))
    model[0].backward(model[1].backward(model[2].backward(model[3].backward(d2))))
    assert stats.loss == pytest.approx(loss)
    np.testing.assert_allclose(stats.act_std, [h.std() for h in (h1, h2, h3)])
    np.testing.assert_allclose(stats.act_mean, [h.mean() for h in (h1, h2, h3)])
    np.testing.assert_allclose(stats.grad_h[1:], [np.linalg.norm(d2), np.linalg.norm(d3)])
    np.testing.assert_allclose(stats.grad_W, [np.linalg.norm(model[i].W.grad) for i in (0, 2, 4)])
    np.testing.assert_allclose(stats.dead, [np.mean(np.all(h <= 0, axis=0)) for h in (h1, h2, h3)])
    assert np.isnan(layer_stats(deep_net(2, 4, 64, 10, activation="tanh", rng=0), X, y).dead).all()


def test_sigmoid_with_unit_normal_weights_vanishes(digits):
    """First hidden layer's weight gradient vs the last: 8e-5 to 1e-3 over seeds 0-9."""
    stats = layer_stats(deep_net(20, 32, 64, 10, activation="sigmoid", init=1.0, rng=0), *digits)
    assert stats.grad_W[0] < stats.grad_W[-1] / 100    # seed 0: about 1/3,700


def test_he_keeps_relu_gradients_within_10x_but_unit_normal_sigmoid_does_not(digits):
    """Largest / smallest per-layer weight-gradient norm at depth 30, width 64: He + ReLU
    1.9 to 8 over seeds 0-29; N(0, 1) + sigmoid 200 to 2,000 over seeds 0-9."""
    he = layer_stats(deep_net(30, 64, 64, 10, init="he", rng=0), *digits).grad_W
    sig = layer_stats(deep_net(30, 64, 64, 10, activation="sigmoid", init=1.0, rng=0),
                      *digits).grad_W
    assert he.max() / he.min() < 10                    # seed 0: 4.7
    assert sig.max() / sig.min() > 100                 # seed 0: 250


def test_xavier_keeps_tanh_activations_alive_small_shrinks_large_saturates(digits):
    """std of the 31st hidden layer over the 1st at width 64, seeds 0-4: Xavier 0.17-0.25;
    sigma 0.05: 7e-13-1.4e-12 (0.37x-0.44x per layer for seed 0); sigma 1: 1.0, with 73% of
    the last layer's values at |a| > 0.99."""
    def stats(init):
        return layer_stats(deep_net(30, 64, 64, 10, activation="tanh", init=init, rng=0), *digits)

    xavier, small, large = stats("xavier"), stats(0.05), stats(1.0)
    assert 0.1 < xavier.act_std[-1] / xavier.act_std[0] < 1.0
    shrink = small.act_std[1:] / small.act_std[:-1]
    assert small.act_std[-1] / small.act_std[0] < 1e-8
    assert np.all((shrink > 0.3) & (shrink < 0.5))      # geometric: the same factor each layer
    assert np.mean(np.abs(large.activations[-1]) > 0.99) > 0.5


def test_negative_biases_kill_relus_and_the_gradient_below(digits):
    """With every hidden bias at -2, seeds 0-4: dead fractions ~[0, 0.45, 0.85, 1, 1]; the
    loss stays at ln 10 (2.3026 -> 2.3008 in 20 steps for seed 0)."""
    X, y = digits
    model = deep_net(4, 64, 64, 10, rng=0)
    for linear in [layer for layer in model if isinstance(layer, Linear)][:-1]:
        linear.b.value[:] = -2.0
    stats = layer_stats(model, X, y)
    assert np.mean(stats.dead) > 0.5
    assert stats.dead[-1] == 1.0
    assert np.all(stats.grad_W == 0.0)                 # nothing gets through a dead layer
    history = fit(model, X, y, lr=0.1, steps=20, progress=False)
    assert layer_stats(model, X, y).dead[-1] == 1.0    # and training cannot revive it
    assert history.final_loss > 0.9 * history.loss[0]


def test_skips_train_a_50_block_net_that_plain_layers_cannot():
    """150 full-batch steps, lr 0.1, spirals, seeds 0-5: plain final/first loss 0.91-1.02;
    residual final loss 0.037-0.087."""
    X, y = data.spirals(n_per_class=100, n_classes=3, seed=0)
    plain = fit(deep_net(50, 32, 2, 3, rng=0), X, y, lr=0.1, steps=150, progress=False)
    res = fit(deep_net(50, 32, 2, 3, residual=True, rng=0), X, y, lr=0.1, steps=150,
              progress=False)
    assert plain.final_loss > 0.85 * plain.loss[0]     # seed 0: 1.02
    assert res.final_loss < 0.2                        # seed 0: 0.045
    assert res.final_loss < 0.25 * plain.final_loss


def fd_jacobian(f, x):
    """Central-difference Jacobian of f at x of shape (1, n): row i is d f_i / d x."""
    n_out = f(x).shape[1]
    return np.vstack([numerical_gradient(f, x, dout=np.eye(n_out)[[i]]) for i in range(n_out)])


def test_block_jacobians_match_finite_differences_and_keep_grads():
    model = deep_net(2, 6, 3, 2, activation="tanh", init="xavier", rng=0)
    for p in model.parameters():
        p.grad[...] = 3.0
    x = np.random.default_rng(2).standard_normal((1, 3))
    jacobians = block_jacobians(model, x[0])
    assert [J.shape for J in jacobians] == [(6, 3), (6, 6), (6, 6)]
    assert all(np.all(p.grad == 3.0) for p in model.parameters())
    blocks, _ = split_blocks(model)
    h = x
    for J, block in zip(jacobians, blocks):
        assert rel_error(J, fd_jacobian(block.forward, h.copy())) < 1e-8
        h = block.forward(h)
