"""RNN: the tanh recurrence and its backward pass through time. (Finite differences, autograd
and torch's ops check it through the registry in test_layers.py; here: torch.nn.RNN with the
same weights, the initial state, the per-step sums of the shared weights, dL/dh_t, the edges
T = 1 and N = 1, and the messages for bad input.)"""
import ast
import re
from pathlib import Path

import autograd
import autograd.numpy as anp
import numpy as np
import pytest
from registry import randn, randomized

from bplib.gradcheck import numerical_gradient, rel_error
from bplib.rnn import RNN


def make(N=3, T=6, n_in=4, n_h=5, seed=0):
    """A randomized RNN, an input X, an initial state h0 and an upstream gradient dout."""
    rnn = randomized(RNN(n_in, n_h, rng=seed), seed + 1)
    return (rnn, randn(seed + 2, N, T, n_in), randn(seed + 3, N, n_h),
            np.random.default_rng(seed + 4).standard_normal((N, T, n_h)))


def unrolled(X, h0, W_xh, W_hh_per_step, b_h, extra=None):
    """The recurrence with its own copy of W_hh at every step (and, if given, extra[t] added to
    h_t), stacked on axis 1: the network the RNN is, unrolled."""
    h, steps = h0, []
    for t, W_hh in enumerate(W_hh_per_step):
        h = anp.tanh(anp.dot(X[:, t], W_xh) + anp.dot(h, W_hh) + b_h)
        h = h + extra[t] if extra is not None else h
        steps.append(h)
    return anp.stack(steps, axis=1)


def test_matches_torch_nn_rnn_with_the_same_weights_and_initial_state():
    torch = pytest.importorskip("torch", reason="PyTorch is not installed")
    rnn, X, h0, dout = make()
    H = rnn.forward(X, h0)
    rnn.zero_grad()
    dX = rnn.backward(dout)
    ref = torch.nn.RNN(4, 5, batch_first=True, dtype=torch.float64)  # tanh by default
    with torch.no_grad():  # torch keeps W as (out, in) and two biases; one is zero here
        ref.weight_ih_l0.copy_(torch.tensor(rnn.W_xh.value.T))
        ref.weight_hh_l0.copy_(torch.tensor(rnn.W_hh.value.T))
        ref.bias_ih_l0.copy_(torch.tensor(rnn.b_h.value))
        ref.bias_hh_l0.zero_()
    X_t, h0_t = torch.tensor(X, requires_grad=True), torch.tensor(h0[None], requires_grad=True)
    H_t, h_last = ref(X_t, h0_t)
    (H_t * torch.tensor(dout)).sum().backward()
    pairs = [(H, H_t.detach()), (H[:, -1], h_last[0].detach()), (dX, X_t.grad),
             (rnn.W_xh.grad, ref.weight_ih_l0.grad.T), (rnn.W_hh.grad, ref.weight_hh_l0.grad.T),
             (rnn.b_h.grad, ref.bias_ih_l0.grad), (rnn.dh0, h0_t.grad[0])]
    for ours, theirs in pairs:
        assert rel_error(ours, theirs.numpy()) < 1e-13


def test_the_initial_state_gets_its_gradient_and_backward_twice_adds():
    rnn, X, h0, dout = make(seed=10)
    rnn.forward(X, h0)
    rnn.zero_grad()
    rnn.backward(dout)
    first = {name: p.grad.copy() for name, p in rnn.named_parameters()}
    numeric = numerical_gradient(lambda h: rnn.forward(X, h), h0.copy(), dout)
    assert rel_error(rnn.dh0, numeric) < 1e-7
    rnn.forward(X, h0)
    rnn.backward(dout)  # no zero_grad: the gradients add up
    for name, p in rnn.named_parameters():
        assert rel_error(p.grad, 2 * first[name]) < 1e-15


def test_each_shared_weight_gets_the_sum_of_its_per_step_gradients():
    """Unrolled with a separate W_hh per step, each copy gets its step's share; the RNN's one
    W_hh gets their sum, and no single step's share (the last, say) alone."""
    rnn, X, h0, dout = make(seed=20)
    rnn.forward(X, h0)
    rnn.zero_grad()
    rnn.backward(dout)
    W_xh, W_hh, b_h = (p.value for p in rnn.parameters())
    T = X.shape[1]
    shares = autograd.grad(lambda Ws: anp.sum(unrolled(X, h0, W_xh, Ws, b_h) * dout))(
        [W_hh.copy() for _ in range(T)])
    assert rel_error(rnn.W_hh.grad, sum(shares)) < 1e-13
    assert all(rel_error(rnn.W_hh.grad, share) > 0.1 for share in shares)


def test_dH_holds_the_gradient_of_every_hidden_state():
    """dH[:, t] = dL/dh_t: what reaches h_t from its own output and from all later steps."""
    rnn, X, h0, dout = make(seed=30)
    rnn.forward(X, h0)
    rnn.zero_grad()
    rnn.backward(dout)
    W_xh, W_hh, b_h = (p.value for p in rnn.parameters())
    T, zeros = X.shape[1], np.zeros((X.shape[1],) + h0.shape)
    ref = autograd.grad(lambda e: anp.sum(unrolled(X, h0, W_xh, [W_hh] * T, b_h, e) * dout))(zeros)
    assert rel_error(rnn.dH, np.moveaxis(ref, 0, 1)) < 1e-13
    assert rel_error(rnn.dH[:, -1], dout[:, -1]) == 0.0  # nothing comes after the last step


@pytest.mark.parametrize("N, T", [(1, 4), (3, 1), (1, 1)])
def test_one_step_and_one_sequence_match_autograd(N, T):
    rnn, X, h0, dout = make(N=N, T=T, seed=40)
    rnn.forward(X, h0)
    rnn.zero_grad()
    dX = rnn.backward(dout)
    W_xh, W_hh, b_h = (p.value for p in rnn.parameters())
    f = lambda X, h0, W_xh, W_hh, b_h: anp.sum(unrolled(X, h0, W_xh, [W_hh] * T, b_h) * dout)
    grads = autograd.grad(f, argnum=(0, 1, 2, 3, 4))(X, h0, W_xh, W_hh, b_h)
    ours = (dX, rnn.dh0, rnn.W_xh.grad, rnn.W_hh.grad, rnn.b_h.grad)
    for name, a, b in zip(["dX", "dh0", "dW_xh", "dW_hh", "db_h"], ours, grads):
        assert rel_error(a, b) < 1e-13, name


def test_float32_stays_float32_and_a_default_h0_is_zero():
    rnn = RNN(3, 4, rng=0)
    X = randn(0, 2, 5, 3)
    assert rnn.forward(X.astype(np.float32)).dtype == np.float32
    np.testing.assert_array_equal(rnn.forward(X), rnn.forward(X, np.zeros((2, 4))))
    assert repr(rnn) == "RNN(3 -> 4)"
    assert [name for name, _ in rnn.named_parameters()] == ["W_xh", "W_hh", "b_h"]


@pytest.mark.parametrize("run, error, message", [
    (lambda: RNN(3, 4).forward(np.ones((2, 5, 2))), ValueError,
     "RNN(3 -> 4).forward: X has shape (2, 5, 2); expected (N, T, 3)"),
    (lambda: RNN(3, 4).forward(np.ones((2, 3))), ValueError,
     "RNN(3 -> 4).forward: X has shape (2, 3); expected (N, T, 3)"),
    (lambda: RNN(3, 4).forward(np.ones((2, 0, 3))), ValueError,
     "RNN(3 -> 4).forward: X has shape (2, 0, 3); expected every size >= 1"),
    (lambda: RNN(3, 4).forward(np.ones((2, 5, 3)), np.ones((3, 4))), ValueError,
     "RNN(3 -> 4).forward: h0 has shape (3, 4); expected (2, 4)"),
    (lambda: RNN(3, 4).forward(np.ones((2, 5, 3)), "zeros"), TypeError,
     "RNN(3 -> 4).forward: h0 has dtype <U5; expected real numbers"),
    (lambda: RNN(0, 4), ValueError, "RNN: in_features = 0; expected an int >= 1"),
    (lambda: RNN(3, 4.0), TypeError, "RNN: hidden_size = 4.0 is a float"),
    (lambda: RNN(3, 4).backward(np.ones((2, 5, 4))), ValueError,
     "RNN(3 -> 4).backward: called before forward"),
])
def test_bad_input_gets_an_actionable_message(run, error, message):
    with pytest.raises(error, match=re.escape(message)):
        run()


def test_dout_of_the_wrong_length_is_refused():
    rnn = RNN(3, 4, rng=0)
    rnn.forward(np.ones((2, 5, 3)))
    with pytest.raises(ValueError, match=re.escape("dout has shape (2, 4, 4); expected (2, 5, 4)")):
        rnn.backward(np.ones((2, 4, 4)))


def test_no_assert_statements():
    source = (Path(__file__).parents[1] / "bplib" / "rnn.py").read_text()
    assert not [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assert)]
