"""Checkpoint: the same gradients as the plain layers, bit for bit, with fewer arrays kept alive
and one extra forward pass per layer."""
import re

import numpy as np
import pytest
from registry import randn
from threadpoolctl import threadpool_limits

from bplib.checkpoint import Checkpoint, checkpoint_sequential
from bplib.layers import BatchNorm1d, Dropout, Linear, Residual, Sequential, Tanh, mlp
from bplib.measure import peak_memory


def step(model, X, dout):
    model.zero_grad()
    out = model.forward(X)
    dX = model.backward(dout)
    return [out, dX] + [p.grad.copy() for p in model.parameters()]


def assert_identical(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


@pytest.mark.parametrize("every", [1, 2, 3, 5, 100])
def test_checkpointed_gradients_are_identical(every):
    net = mlp([6, 8, 8, 8, 8, 3], activation="tanh", rng=0)
    X, dout = randn(0, 5, 6), randn(1, 5, 3)
    plain = step(net, X, dout)
    assert_identical(step(checkpoint_sequential(net, every), X, dout), plain)


def test_dropout_inside_a_checkpoint_draws_the_same_mask_again():
    def net():
        return Sequential(Linear(4, 16, rng=0), Dropout(0.5, rng=3), Tanh(), Linear(16, 2, rng=1))

    X, dout = randn(0, 8, 4), randn(1, 8, 2)
    plain, wrapped = net(), Checkpoint(net())
    for _ in range(3):  # the generators advance alike from one step to the next
        assert_identical(step(wrapped, X, dout), step(plain, X, dout))


def test_nested_checkpoints_and_residual_blocks():
    def net():
        block = Residual(Sequential(Linear(5, 5, rng=0), Tanh(), Linear(5, 5, rng=1)))
        return Sequential(block, Linear(5, 2, rng=2))

    X, dout = randn(0, 4, 5), randn(1, 4, 2)
    inner = net()
    nested = Checkpoint(Sequential(Checkpoint(inner[0]), inner[1]))
    assert_identical(step(nested, X, dout), step(net(), X, dout))


def test_forward_drops_the_inner_caches_and_backward_leaves_them_dropped():
    net = mlp([3, 4, 4, 2], rng=0)
    wrapped = Checkpoint(net)
    X = randn(0, 5, 3)
    wrapped.forward(X)
    assert all(layer.cache is None for layer in net)
    np.testing.assert_array_equal(wrapped.cache[0], X)  # only the input is kept
    wrapped.backward(np.ones((5, 2)))
    assert all(layer.cache is None for layer in net)


def test_each_layer_runs_forward_twice(monkeypatch):
    calls = []
    forward = Linear.forward
    monkeypatch.setattr(Linear, "forward", lambda self, X: calls.append(self) or forward(self, X))
    net = mlp([4] * 9, rng=0)  # 8 Linear layers
    X, dout = randn(0, 3, 4), randn(1, 3, 4)
    step(net, X, dout)
    assert len(calls) == 8
    calls.clear()
    step(checkpoint_sequential(net, 4), X, dout)
    assert len(calls) == 16 and all(calls.count(layer) == 2 for layer in net[::2])


def test_checkpoint_sequential_shares_the_layers():
    net = mlp([3, 4, 4, 2], rng=0)
    ck = checkpoint_sequential(net, 2)
    assert len(ck) == 3 and all(isinstance(seg, Checkpoint) for seg in ck)
    assert [id(p) for p in ck.parameters()] == [id(p) for p in net.parameters()]
    assert [name for name, _ in ck.named_parameters()][:2] == ["0.layer.0.W", "0.layer.0.b"]
    assert repr(Checkpoint(Tanh())) == "Checkpoint(Tanh())"


def test_checkpointing_cuts_the_peak_memory_by_a_large_factor():
    """127 layers, segments of 16 (about sqrt(127)): measured 4.0 times less memory."""
    net = mlp([64] * 65, rng=0)
    X, dout = randn(0, 256, 64), randn(1, 256, 64)

    def lean_step(model):  # no copies of the gradients: they would count too
        model.zero_grad()
        model.forward(X)
        model.backward(dout)

    with threadpool_limits(limits=1):
        _, plain = peak_memory(lean_step, net)
        _, ckpt = peak_memory(lean_step, checkpoint_sequential(net, 16))
    assert plain > 64 * X.nbytes  # every Linear keeps its input
    assert plain / ckpt > 3.3, (plain, ckpt)


def test_batchnorm_in_eval_mode_is_checkpointed_exactly():
    def net():
        bn = BatchNorm1d(4).eval()
        bn.running_mean, bn.running_var = np.arange(4.0), np.arange(1.0, 5.0)
        return Sequential(Linear(3, 4, rng=0), bn, Tanh())

    X, dout = randn(0, 5, 3), randn(1, 5, 4)
    assert_identical(step(Checkpoint(net()), X, dout), step(net(), X, dout))


@pytest.mark.parametrize("run, error, message", [
    (lambda: Checkpoint(Linear), TypeError, "Checkpoint: layer is <class"),
    (lambda: checkpoint_sequential(mlp([2, 2]), 0), ValueError,
     "checkpoint_sequential: every = 0; expected an int >= 1"),
    (lambda: Checkpoint(Tanh()).backward(np.ones((2, 2))), ValueError,
     "Checkpoint(Tanh()).backward: called before forward"),
])
def test_bad_input_gets_an_actionable_message(run, error, message):
    with pytest.raises(error, match=re.escape(message)):
        run()
