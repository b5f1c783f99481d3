import warnings

import numpy as np
import pytest
from registry import LAYER_CASES, check_autograd, check_finite_differences, check_torch, randn

from bplib.checkpoint import Checkpoint
from bplib.gradcheck import rel_error
from bplib.layers import (ACTIVATIONS, BatchNorm1d, Dropout, LeakyReLU, Linear, ReLU, Residual,
                          Sequential, Sigmoid, Tanh, mlp)

each_case = pytest.mark.parametrize("case", LAYER_CASES, ids=lambda case: case.name)


@each_case
def test_backward_matches_finite_differences(case):
    check_finite_differences(case)


@each_case
def test_forward_and_backward_match_autograd(case):
    check_autograd(case)


@each_case
def test_forward_and_backward_match_torch(case):
    check_torch(case)


def backward_with_input_grad_off(layer, dout, full):
    """Assert what the contract says: a layer with parameters returns None; one without any
    (never called by a Sequential with the switch off) still returns its dX."""
    dX = layer.backward(dout)
    if layer.parameters():
        assert dX is None
    else:
        np.testing.assert_array_equal(dX, full["X"])


@each_case
def test_with_input_grad_off_backward_adds_the_same_parameter_gradients(case):
    """With ``input_grad`` off (as fit has it: the data needs no gradient) backward gives every
    parameter exactly what it gives with the switch on, accumulates the same way, and a layer
    with parameters returns None; switched back on, it returns dX again."""
    subject = case.make()
    out = subject.forward()
    dout = randn(11, *out.shape)
    full = subject.backward(dout)  # zeroes, then backward with the switch on
    layer = subject.layer
    layer.input_grad = False
    layer.zero_grad()
    subject.forward()
    backward_with_input_grad_off(layer, dout, full)
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, full[name], rtol=1e-13, atol=1e-15, err_msg=name)
    subject.forward()
    backward_with_input_grad_off(layer, dout, full)  # a second pass adds
    for name, p in layer.named_parameters():
        np.testing.assert_allclose(p.grad, 2 * full[name], rtol=1e-13, atol=1e-15, err_msg=name)
    layer.input_grad = True
    assert all(sub.input_grad for sub in layer.walk())
    subject.forward()
    np.testing.assert_array_equal(subject.backward(dout)["X"], full["X"])


class Spy(ReLU):
    """A ReLU that counts its backward calls."""
    calls = 0

    def backward(self, dout):
        Spy.calls += 1
        return super().backward(dout)


class Watched(np.ndarray):
    """An array that records every time its transpose ``.T`` is formed."""
    transposes = 0

    @property
    def T(self):
        Watched.transposes += 1
        return super().T


def spied_models():
    """(model, first Linear, spied ReLUs above it, spied ReLUs in all): the layers below the
    first Linear have nothing to learn; the model's input is (6, 4) and its output (6, 2)."""
    plain = Sequential(Spy(), Dropout(0.2, rng=0), Linear(4, 3, rng=0), Spy(), Linear(3, 2, rng=1))
    first = Linear(4, 4, rng=0)
    residual = Sequential(Spy(), Residual(Sequential(first, Spy())), Spy(), Linear(4, 2, rng=1))
    checkpointed = Checkpoint(Sequential(Spy(), Linear(4, 3, rng=0), Spy(), Linear(3, 2, rng=1)))
    return [(plain, plain[2], 1, 2), (residual, first, 2, 3),
            (checkpointed, checkpointed.layer[1], 1, 2)]


@pytest.mark.parametrize("index", range(3), ids=["plain", "residual", "checkpoint"])
def test_input_grad_off_stops_at_the_first_layer_with_parameters(index):
    """With the switch off, the layers below the first Linear are not visited and the first
    Linear never forms W.T (dout @ W.T is dX); switched back on, both happen again."""
    model, first, above, total = spied_models()[index]
    first.W.value = first.W.value.view(Watched)
    X, dout = randn(0, 6, 4), randn(1, 6, 2)
    for on, calls, transposes in ((False, above, 0), (True, total, 1)):
        model.input_grad = on
        model.forward(X)
        Spy.calls = Watched.transposes = 0
        dX = model.backward(dout)
        assert (dX is not None) == on
        assert (Spy.calls, Watched.transposes) == (calls, transposes)


def test_input_grad_reaches_the_layers_that_see_the_input():
    model = Sequential(ReLU(), Linear(4, 3, rng=0), ReLU(), Linear(3, 2, rng=1))
    model.input_grad = False
    assert [layer.input_grad for layer in model] == [False, False, True, True]
    model.input_grad = True
    assert all(layer.input_grad for layer in model.walk())
    # With no parameters the switch reaches every layer and none of them acts on it: only a
    # layer with parameters returns None, and a Sequential stops there.
    nothing_to_learn = Sequential(ReLU(), Tanh())
    X, dout = randn(0, 3, 2), randn(1, 3, 2)
    nothing_to_learn.forward(X)
    dX = nothing_to_learn.backward(dout)
    nothing_to_learn.input_grad = False
    assert not any(layer.input_grad for layer in nothing_to_learn.walk())
    nothing_to_learn.forward(X)
    np.testing.assert_array_equal(nothing_to_learn.backward(dout), dX)


def test_backward_accumulates_until_zero_grad():
    layer = Linear(3, 2, rng=0)
    X, dout = randn(0, 4, 3), randn(1, 4, 2)
    layer.forward(X)
    layer.backward(dout)
    once = [p.grad.copy() for p in layer.parameters()]
    layer.backward(dout)
    for p, g in zip(layer.parameters(), once):
        np.testing.assert_allclose(p.grad, 2 * g)
    layer.zero_grad()
    assert all(not p.grad.any() for p in layer.parameters())
    layer.backward(dout)
    for p, g in zip(layer.parameters(), once):
        np.testing.assert_array_equal(p.grad, g)


def test_residual_adds_the_gradients_of_both_paths():
    F = Linear(3, 3, rng=0)
    block = Residual(F)
    X, dout = randn(0, 4, 3), randn(1, 4, 3)
    np.testing.assert_allclose(block.forward(X), X + X @ F.W.value + F.b.value)
    np.testing.assert_allclose(block.backward(dout), dout + dout @ F.W.value.T)


def test_same_input_twice_in_one_graph():
    """X reaches the output of Residual(Residual(Tanh())) along three paths; gradients add."""
    block = Residual(Residual(Tanh()))
    X, dout = randn(0, 4, 3), randn(1, 4, 3)
    np.testing.assert_allclose(block.forward(X), 2 * X + np.tanh(X))
    np.testing.assert_allclose(block.backward(dout), dout * (2 + 1 - np.tanh(X)**2))


def test_backward_twice_after_zero_grad_is_identical():
    net = mlp([3, 5, 2], activation="tanh", rng=0)
    X, dout = randn(0, 4, 3), randn(1, 4, 2)
    runs = []
    for _ in range(2):
        net.zero_grad()
        net.forward(X)
        dX = net.backward(dout)
        runs.append([dX] + [p.grad.copy() for p in net.parameters()])
    for first, second in zip(*runs):
        np.testing.assert_array_equal(first, second)


def test_batchnorm_running_statistics_match_torch():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed: comparison skipped")
    bn, ref = BatchNorm1d(3, momentum=0.2), torch.nn.BatchNorm1d(3, momentum=0.2).double()
    for seed in range(3):
        X = randn(seed, 6, 3) * 2 + seed
        bn.forward(X)
        ref(torch.tensor(X))
    assert rel_error(bn.running_mean, ref.running_mean.numpy()) < 1e-12
    assert rel_error(bn.running_var, ref.running_var.numpy()) < 1e-12
    bn.eval()
    ref.eval()
    X = randn(9, 4, 3)
    assert rel_error(bn.forward(X), ref(torch.tensor(X)).detach().numpy()) < 1e-12


def test_sigmoid_is_stable_at_large_inputs():
    X = np.array([[-1000.0, -40.0, 0.0, 40.0, 1000.0]])
    layer = Sigmoid()
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        out = layer.forward(X)
        dX = layer.backward(np.ones_like(X))
    np.testing.assert_allclose(out, [[0.0, 1 / (1 + np.exp(40)), 0.5, 1 / (1 + np.exp(-40)), 1.0]])
    assert np.all(np.isfinite(dX)) and dX[0, 2] == 0.25


def test_dropout_scales_survivors_in_training_and_is_identity_in_eval():
    layer = Dropout(0.25, rng=0)
    X = np.ones((200, 50))
    out = layer.forward(X)
    assert set(np.unique(out)) == {0.0, 1 / 0.75}
    assert abs((out == 0).mean() - 0.25) < 0.01
    np.testing.assert_array_equal(layer.backward(X), out)  # dout = 1 gives back the mask
    layer.eval()
    np.testing.assert_array_equal(layer.forward(X), X)
    np.testing.assert_array_equal(layer.backward(2 * X), 2 * X)


def test_train_and_eval_reach_nested_layers():
    net = Sequential(Linear(2, 3), Residual(Sequential(Dropout(0.5), BatchNorm1d(3))))
    inner = net[1].F
    assert net.training and inner[0].training and inner[1].training
    net.eval()
    assert not any(layer.training for layer in (net, net[1], inner, inner[0], inner[1]))
    net.train()
    assert inner[1].training


def test_mlp_structure_names_and_repr():
    net = mlp([2, 16, 16, 3], activation="tanh", final_activation="sigmoid", rng=0)
    kinds = [type(layer).__name__ for layer in net]
    assert kinds == ["Linear", "Tanh", "Linear", "Tanh", "Linear", "Sigmoid"]
    names = [name for name, _ in net.named_parameters()]
    assert names == ["0.W", "0.b", "2.W", "2.b", "4.W", "4.b"]
    assert repr(net[0]) == "Linear(2 -> 16)" and len(net) == 6 and len(net[:2]) == 2
    assert net.layers[1] is not net.layers[3]  # one activation per position: each has its cache
    assert set(ACTIVATIONS) == {"relu", "leaky_relu", "sigmoid", "tanh"}
    assert repr(Sequential(Linear(3, 4), ReLU())) == "Sequential(Linear(3 -> 4), ReLU())"


def test_mlp_is_reproducible_from_its_seed():
    a, b, c = mlp([2, 8, 2], rng=3), mlp([2, 8, 2], rng=3), mlp([2, 8, 2], rng=4)
    np.testing.assert_array_equal(a[0].W.value, b[0].W.value)
    assert not np.array_equal(a[0].W.value, c[0].W.value)
    assert not np.array_equal(a[0].W.value[:, :2], a[2].W.value.T)  # layers draw different numbers


def test_linear_init_options():
    assert Linear(3, 4, init="zeros").W.value.sum() == 0
    assert np.all(Linear(3, 4, init=lambda shape, rng: np.full(shape, 0.5)).W.value == 0.5)
    small = Linear(300, 200, init=0.01, rng=0).W.value
    assert abs(small.std() - 0.01) < 0.001


def test_a_parameter_shared_by_two_layers_is_listed_once():
    """Tied weights: one Parameter in two layers is one entry, under its first name."""
    first, second = Linear(3, 3, rng=0), Linear(3, 3, rng=1)
    second.W = first.W
    net = Sequential(first, Tanh(), second)
    assert [name for name, _ in net.named_parameters()] == ["0.W", "0.b", "2.b"]
    assert [p is first.W for p in net.parameters()] == [True, False, False]


def test_an_activation_layer_given_to_mlp_is_copied_for_each_place():
    """mlp(activation=LeakyReLU()) gives every place its own layer (each caches its own input),
    so its gradients are those of the network built from the name."""
    X, dout = randn(0, 5, 2), randn(1, 5, 1)
    grads = []
    for activation in (LeakyReLU(0.01), "leaky_relu"):
        net = mlp([2, 4, 4, 1], activation=activation, rng=0)
        assert net[1] is not net[3]
        net.forward(X)
        net.backward(dout)
        grads.append([p.grad.copy() for p in net.parameters()])
    for ours, theirs in zip(*grads):
        np.testing.assert_array_equal(ours, theirs)


def test_batchnorm_keeps_its_running_statistics_when_it_refuses_a_batch():
    bn = BatchNorm1d(2)
    bn.forward(randn(0, 6, 2))
    mean, var = bn.running_mean.copy(), bn.running_var.copy()
    bad = randn(1, 6, 2)
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="running statistics kept"):
        bn.forward(bad)
    np.testing.assert_array_equal(bn.running_mean, mean)
    np.testing.assert_array_equal(bn.running_var, var)
    assert np.isfinite(bn.eval().forward(randn(2, 3, 2))).all()
