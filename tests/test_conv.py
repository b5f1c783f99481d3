"""Conv1d: a valid cross-correlation whose weight gradient is the correlation of X with delta
and whose input gradient is the full convolution of delta with the kernel. (Finite differences,
autograd and PyTorch check it through the registry in test_layers.py.)"""
import ast
import re
from pathlib import Path

import numpy as np
import pytest
from registry import randn

from bplib.conv import Conv1d
from bplib.gradcheck import check_layer, rel_error


def loop_forward(X, W, b):
    N, C_in, L = X.shape
    C_out, _, K = W.shape
    out = np.empty((N, C_out, L - K + 1))
    for n in range(N):
        for o in range(C_out):
            out[n, o] = b[o] + sum(np.correlate(X[n, c], W[o, c], "valid") for c in range(C_in))
    return out


def test_forward_is_a_valid_cross_correlation():
    conv = Conv1d(3, 4, 5, rng=0)
    conv.b.value[...] = randn(1, 4)
    X = randn(2, 6, 3, 11)
    out = conv.forward(X)
    assert out.shape == (6, 4, 7)
    np.testing.assert_allclose(out, loop_forward(X, conv.W.value, conv.b.value), rtol=1e-12)


def test_weight_gradient_correlates_x_with_delta_and_dx_is_a_full_convolution():
    conv = Conv1d(2, 3, 4, rng=0)
    X, delta = randn(0, 5, 2, 9), randn(1, 5, 3, 6)
    conv.forward(X)
    dX = conv.backward(delta)
    dW = np.array([[[sum(np.correlate(X[n, c], delta[n, o], "valid")[k] for n in range(5))
                     for k in range(4)] for c in range(2)] for o in range(3)])
    full = np.array([[sum(np.convolve(delta[n, o], conv.W.value[o, c], "full") for o in range(3))
                      for c in range(2)] for n in range(5)])
    assert rel_error(conv.W.grad, dW) < 1e-13
    assert rel_error(dX, full) < 1e-13
    np.testing.assert_allclose(conv.b.grad, delta.sum(axis=(0, 2)))


def test_gradients_accumulate_and_float32_stays_float32():
    conv = Conv1d(2, 2, 3, rng=0)
    X, dout = randn(0, 3, 2, 6), randn(1, 3, 2, 4)
    conv.forward(X)
    conv.backward(dout)
    once = conv.W.grad.copy()
    conv.backward(dout)
    np.testing.assert_allclose(conv.W.grad, 2 * once)
    for p in conv.parameters():
        p.value, p.grad = p.value.astype(np.float32), p.grad.astype(np.float32)
    out = conv.forward(X.astype(np.float32))
    assert out.dtype == conv.backward(dout.astype(np.float32)).dtype == np.float32


def test_check_layer_passes_and_kernel_as_long_as_the_input():
    for conv, X in ((Conv1d(2, 3, 3, rng=0), randn(0, 4, 2, 8)),
                    (Conv1d(1, 2, 5, rng=1), randn(1, 3, 1, 5))):  # T = 1
        conv.b.value[...] = 0.3
        assert all(r.rel_error < 1e-8 for r in check_layer(conv, X).values())


def test_init_uses_fan_in_of_channels_times_kernel():
    W = Conv1d(16, 64, 8, rng=0).W.value
    assert W.shape == (64, 16, 8)
    assert abs(W.std() - np.sqrt(2 / (16 * 8))) < 0.01
    assert np.all(Conv1d(2, 3, 3, init="zeros").W.value == 0)
    assert repr(Conv1d(2, 3, 3)) == "Conv1d(2 -> 3, k=3)"


@pytest.mark.parametrize("run, error, message", [
    (lambda: Conv1d(2, 3, 3).forward(np.ones((4, 5))), ValueError,
     "Conv1d(2 -> 3, k=3).forward: X has shape (4, 5); expected (N, 2, L) with L >= 3"),
    (lambda: Conv1d(2, 3, 3).forward(np.ones((4, 1, 5))), ValueError,
     "X has shape (4, 1, 5); expected (N, 2, L) with L >= 3"),
    (lambda: Conv1d(2, 3, 3).forward(np.ones((4, 2, 2))), ValueError,
     "X has shape (4, 2, 2); expected (N, 2, L) with L >= 3"),
    (lambda: Conv1d(2, 3, 0), ValueError, "Conv1d: kernel_size = 0; expected an int >= 1"),
    (lambda: Conv1d(2.0, 3, 3), TypeError, "Conv1d: in_channels = 2.0 is a float"),
    (lambda: Conv1d(2, 3, 3).backward(np.ones((1, 3, 1))), ValueError,
     "Conv1d(2 -> 3, k=3).backward: called before forward"),
])
def test_bad_input_gets_an_actionable_message(run, error, message):
    with pytest.raises(error, match=re.escape(message)):
        run()


def test_dout_of_the_wrong_length_is_refused():
    conv = Conv1d(2, 3, 3, rng=0)
    conv.forward(np.ones((4, 2, 7)))
    with pytest.raises(ValueError, match=re.escape("dout has shape (4, 3, 6); expected (4, 3, 5)")):
        conv.backward(np.ones((4, 3, 6)))


@pytest.mark.parametrize("module", ["conv", "checkpoint", "precision"])
def test_no_assert_statements(module):
    source = (Path(__file__).parents[1] / "bplib" / f"{module}.py").read_text()
    assert not [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assert)]
