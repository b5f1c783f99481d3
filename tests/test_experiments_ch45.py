"""Claims chapters 4 and 5 make in prose, asserted on independent small implementations: each
classic backprop bug fails a gradient check while the correct code passes, a ReLU kink fails a
check without a bug, and the training-time behaviour of dropout, batch norm and clipping."""
import numpy as np
import pytest

from bplib import data, train
from bplib.gradcheck import gradcheck, rel_error
from bplib.layers import BatchNorm1d, Dropout, Linear, mlp, sigmoid
from bplib.losses import mse_loss, softmax, softmax_cross_entropy

BUGS = [None, "f'(a)", "db over everything", "no 1/N", "transposed dW1"]


def sigmoid_net_grads(X, y, p, bug=None):
    """Gradients of a sigmoid-hidden softmax network, optionally with one classic bug."""
    z1 = X @ p["W1"] + p["b1"]
    a1 = sigmoid(z1)
    N = len(y)
    delta2 = softmax(a1 @ p["W2"] + p["b2"])
    delta2[np.arange(N), y] -= 1.0
    delta2 = delta2 if bug == "no 1/N" else delta2 / N
    g = {name: np.zeros_like(v) for name, v in p.items()}
    g["W2"] += a1.T @ delta2
    g["b2"] += delta2.sum() if bug == "db over everything" else delta2.sum(axis=0)
    s = sigmoid(a1 if bug == "f'(a)" else z1)
    delta1 = (delta2 @ p["W2"].T) * s * (1.0 - s)
    g["W1"] += delta1.T @ X if bug == "transposed dW1" else X.T @ delta1
    g["b1"] += delta1.sum(axis=0)
    return g


@pytest.mark.parametrize("bug", BUGS)
def test_each_classic_bug_fails_the_gradient_check(bug):
    rng = np.random.default_rng(3)
    X, y = rng.standard_normal((8, 4)), rng.integers(0, 3, size=8)
    p = {"W1": rng.standard_normal((4, 4)), "b1": 0.1 * rng.standard_normal(4),
         "W2": rng.standard_normal((4, 3)), "b2": 0.1 * rng.standard_normal(3)}

    def loss(_):
        return softmax_cross_entropy(sigmoid(X @ p["W1"] + p["b1"]) @ p["W2"] + p["b2"], y)[0]

    g = sigmoid_net_grads(X, y, p, bug)
    worst = max(gradcheck(loss, p[name], g[name]).rel_error for name in p)
    if bug is None:
        assert worst < 1e-7
    else:
        assert worst > 1e-2
    if bug == "no 1/N":
        assert worst == pytest.approx((8 - 1) / 8, rel=1e-6)


def relu_net(X, y, W1, b1, W2, b2):
    """Loss and gradients of a ReLU-hidden softmax network, written out by hand."""
    z1 = X @ W1 + b1
    a1 = np.maximum(z1, 0.0)
    loss, delta2 = softmax_cross_entropy(a1 @ W2 + b2, y)
    delta1 = (delta2 @ W2.T) * (z1 > 0)
    return loss, {"W1": X.T @ delta1, "b1": delta1.sum(axis=0),
                  "W2": a1.T @ delta2, "b2": delta2.sum(axis=0)}


def test_hand_written_two_layer_backward_matches_bplib():
    X, y = data.spirals(seed=0)
    model = mlp([2, 16, 3], rng=0)
    model[0].b.value[...] = np.linspace(-0.2, 0.2, 16)
    p = {"W1": model[0].W.value, "b1": model[0].b.value,
         "W2": model[2].W.value, "b2": model[2].b.value}
    _, grads = relu_net(X, y, **p)
    model.zero_grad()
    model.backward(softmax_cross_entropy(model(X), y)[1])
    library = {"W1": model[0].W.grad, "b1": model[0].b.grad,
               "W2": model[2].W.grad, "b2": model[2].b.grad}
    for name in p:
        assert rel_error(grads[name], library[name]) < 1e-12


def test_a_relu_kink_fails_the_check_without_a_bug():
    """With bplib's zero biases, the spiral's points at the origin sit on every ReLU kink."""
    X, y = data.spirals(seed=0)
    at_origin = np.abs(X).sum(axis=1) == 0
    assert at_origin.sum() == 3
    model = mlp([2, 16, 3], rng=0)
    # b2 = 0 would hide the kink: the three origin points (one per class) would then have
    # uniform softmax outputs whose contributions to db1 cancel exactly.
    p = {"W1": model[0].W.value.copy(), "b1": np.zeros(16),
         "W2": model[2].W.value.copy(), "b2": np.array([0.3, -0.1, 0.05])}

    def check(X, y):
        _, grads = relu_net(X, y, **p)
        return gradcheck(lambda _: relu_net(X, y, **p)[0], p["b1"], grads["b1"]).rel_error

    assert 1e-5 < check(X, y) < 1e-2
    assert check(X[~at_origin], y[~at_origin]) < 1e-7


def test_dropout_differs_between_calls_in_training_only():
    drop = Dropout(0.5, rng=0)
    ones = np.ones((1, 8))
    assert not np.array_equal(drop(ones), drop(ones))
    drop.eval()
    np.testing.assert_array_equal(drop(ones), ones)
    drop.train()
    assert drop(np.ones((10_000, 8))).mean() == pytest.approx(1.0, abs=0.02)


def test_batch_norm_running_statistics_and_eval_mode():
    rng = np.random.default_rng(0)
    mean, std = np.array([5.0, -2.0]), np.array([2.0, 0.5])
    bn = BatchNorm1d(2)
    for _ in range(200):
        bn(mean + std * rng.standard_normal((32, 2)))
    np.testing.assert_allclose(bn.running_mean, mean, atol=0.2)
    np.testing.assert_allclose(np.sqrt(bn.running_var), std, rtol=0.1)
    example = np.array([[6.0, -1.5]])
    others = mean + std * rng.standard_normal((2, 7, 2))
    batches = [np.vstack([example, o]) for o in others]
    train_outs = [bn(b)[0] for b in batches]
    assert np.abs(train_outs[0] - train_outs[1]).max() > 0.05
    bn.eval()
    eval_outs = [bn(b)[0] for b in batches]
    np.testing.assert_array_equal(eval_outs[0], eval_outs[1])
    np.testing.assert_array_equal(eval_outs[0], bn(example)[0])


def test_clipping_keeps_one_corrupted_label_from_wrecking_the_fit():
    X, y = data.line(n=100, noise=0.1, seed=0)
    y_bad = y.copy()
    y_bad[7] = 40.0
    clean = {}
    for clip in (None, 1.0):
        model = Linear(1, 1, rng=0)
        train.fit(model, X, y_bad, loss="mse", lr=0.1, epochs=20, batch_size=10, rng=0,
                  clip=clip, progress=False)
        clean[clip] = mse_loss(model(X), y)[0]
    assert clean[1.0] < 0.05 < 0.2 < clean[None]


def test_the_spiral_is_learned_with_mini_batches():
    X, y = data.spirals(seed=0)
    X_val, y_val = data.spirals(seed=1)
    net = mlp([2, 16, 16, 3], rng=0)
    history = train.fit(net, X, y, lr=0.3, epochs=100, batch_size=30, rng=0, progress=False,
                        X_val=X_val, y_val=y_val)
    assert train.accuracy(net, X, y) > 0.95 and history.val_accuracy[-1] > 0.95
    assert history.val_loss[-1] < 2 * history.epoch_loss[-1]


def test_scaling_the_inputs_by_three_makes_the_good_learning_rate_diverge():
    X, y = data.line(n=100, noise=0.1, seed=0)
    fine = train.fit(Linear(1, 1, rng=0), X, y, loss="mse", lr=0.5, steps=100, progress=False)
    scaled = train.fit(Linear(1, 1, rng=0), 3 * X, y, loss="mse", lr=0.5, steps=100,
                       progress=False)
    assert fine.diverged_at is None and scaled.diverged_at is not None
