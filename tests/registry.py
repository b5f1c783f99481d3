"""One table of layers and losses that drives the value tests and the gradient tests.

Each ``Case`` builds a fresh *subject* from fixed seeds and carries two references for its
forward pass, written here independently of bplib: ``ag`` in ``autograd.numpy`` and ``th`` from
PyTorch's own ops. A subject has

- ``inputs``: name -> the float64 array it reads (X and every parameter's ``value``, so that
  perturbing one in place changes the output),
- ``forward()`` -> output, ``backward(dout)`` -> {name: gradient},
- ``constants()`` -> what the references need besides the inputs (labels, a dropout mask).

test_layers.py and test_losses.py run the three checks at the bottom on every case.
"""
from dataclasses import dataclass
from typing import Callable

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

from bplib.checkpoint import Checkpoint
from bplib.conv import Conv1d
from bplib.gradcheck import numerical_gradient, rel_error
from bplib.layers import (BatchNorm1d, Dropout, LeakyReLU, Linear, Parameter, ReLU, Residual,
                          Sequential, Sigmoid, Tanh, mlp)
from bplib.losses import (l2_penalty, masked_softmax_cross_entropy, mse_loss,
                          softmax_cross_entropy)
from bplib.rnn import RNN

try:
    import torch
    import torch.nn.functional as F
except ImportError:
    torch = F = None


def randn(seed, *shape):
    """Normal samples pushed 0.05 away from 0, clear of ReLU's kink for finite differences."""
    x = np.random.default_rng(seed).standard_normal(shape)
    return x + 0.05 * np.sign(x)


def randomized(layer, seed=1):
    """The layer with every parameter redrawn (biases, gamma and beta are otherwise 0 or 1)."""
    for i, p in enumerate(layer.parameters()):
        p.value[...] = 0.7 * randn(seed + i, *p.shape)
    return layer


class LayerSubject:
    def __init__(self, layer, X, reseed=None, constants=lambda layer: {}):
        self.layer, self.reseed, self._constants = layer, reseed, constants
        self.inputs = {"X": X, **{name: p.value for name, p in layer.named_parameters()}}

    def forward(self):
        if self.reseed is not None:  # Dropout: draw the same mask at every call
            self.layer.rng = np.random.default_rng(self.reseed)
        return self.layer.forward(self.inputs["X"])

    def backward(self, dout):
        self.layer.zero_grad()
        dX = self.layer.backward(dout)
        return {"X": dX, **{name: p.grad.copy() for name, p in self.layer.named_parameters()}}

    def constants(self):
        return self._constants(self.layer)


class LossSubject:
    def __init__(self, loss, arg, value, y):
        self.loss, self.arg, self.y = loss, arg, y
        self.inputs = {arg: value}

    def forward(self):
        value, self.grad = self.loss(self.inputs[self.arg], self.y)
        return np.array(value)

    def backward(self, dout):
        return {self.arg: self.grad * dout}

    def constants(self):
        return {"y": self.y}


class PenaltySubject:
    def __init__(self, lam, *params):
        self.lam, self.params = lam, params
        self.inputs = {p.name: p.value for p in params}

    def forward(self):
        for p in self.params:
            p.grad.fill(0.0)
        return np.array(l2_penalty(self.params, self.lam))

    def backward(self, dout):
        return {p.name: p.grad * dout for p in self.params}

    def constants(self):
        return {"lam": self.lam}


@dataclass
class Case:
    name: str
    make: Callable  # () -> subject
    ag: Callable    # (inputs, constants) -> output, in autograd.numpy
    th: Callable    # (inputs as tensors, constants) -> output, in torch


# ---- references -----------------------------------------------------------------------------

def ag_sigmoid(z):
    return 1.0 / (1.0 + anp.exp(-z))


def ag_batchnorm(X, gamma, beta, mean, var, eps=1e-5):
    return gamma * (X - mean) / anp.sqrt(var + eps) + beta


def ag_cross_entropy(logits, targets):
    m = anp.max(logits, axis=1, keepdims=True)
    log_p = logits - m - anp.log(anp.sum(anp.exp(logits - m), axis=1, keepdims=True))
    return -anp.sum(targets * log_p) / logits.shape[0]


def one_hot(y, C):
    return np.eye(C)[y]


def ag_conv1d(X, W, b):
    """Valid cross-correlation as a sum over kernel taps k of shifted slices of X."""
    K, T = W.shape[2], X.shape[2] - W.shape[2] + 1
    taps = [anp.einsum("nct,oc->not", X[:, :, k:k + T], W[:, :, k]) for k in range(K)]
    return sum(taps) + b[:, None]


def ag_rnn(X, W_xh, W_hh, b_h):
    """The tanh recurrence step by step from h_0 = 0, the steps stacked on axis 1."""
    h, steps = anp.zeros((X.shape[0], W_hh.shape[0])), []
    for t in range(X.shape[1]):
        h = anp.tanh(anp.dot(X[:, t], W_xh) + anp.dot(h, W_hh) + b_h)
        steps.append(h)
    return anp.stack(steps, axis=1)


def th_rnn(v):
    """The same recurrence with torch's own ops (test_rnn.py also compares torch.nn.RNN)."""
    h, steps = torch.zeros(v["X"].shape[0], v["W_hh"].shape[0], dtype=torch.float64), []
    for t in range(v["X"].shape[1]):
        h = torch.tanh(v["X"][:, t] @ v["W_xh"] + h @ v["W_hh"] + v["b_h"])
        steps.append(h)
    return torch.stack(steps, dim=1)


def ag_masked_cross_entropy(logits, y, mask):
    m = anp.max(logits, axis=2, keepdims=True)
    log_p = logits - m - anp.log(anp.sum(anp.exp(logits - m), axis=2, keepdims=True))
    targets = one_hot(np.where(mask, y, 0), logits.shape[2]) * mask[:, :, None]
    return -anp.sum(targets * log_p) / mask.sum()


def th_mlp(v):
    h = F.relu(F.linear(v["X"], v["0.W"].T, v["0.b"]))
    h = F.relu(F.linear(h, v["2.W"].T, v["2.b"]))
    return torch.sigmoid(F.linear(h, v["4.W"].T, v["4.b"]))


def ag_mlp(v):
    h = anp.maximum(v["X"] @ v["0.W"] + v["0.b"], 0.0)
    h = anp.maximum(h @ v["2.W"] + v["2.b"], 0.0)
    return ag_sigmoid(h @ v["4.W"] + v["4.b"])


def dropout_constants(layer):
    return {"keep": layer.cache[0] > 0, "p": layer.p}


def eval_batchnorm():
    bn = randomized(BatchNorm1d(3)).eval()
    bn.running_mean = np.array([0.5, -1.0, 2.0])
    bn.running_var = np.array([0.5, 2.0, 1.5])
    stats = {"mean": bn.running_mean, "var": bn.running_var}
    return LayerSubject(bn, 2.0 * randn(0, 6, 3) + 1.0, constants=lambda layer: stats)


LABELS = np.array([0, 3, 1, 1, 2, 3])
SEQ_MASK = np.array([[1, 1, 1, 1, 1], [1, 1, 1, 0, 0], [1, 0, 0, 0, 0]], dtype=bool)
SEQ_LABELS = np.where(SEQ_MASK, np.random.default_rng(6).integers(0, 4, (3, 5)), -1)  # -1: pad
SOFT_TARGETS = np.random.default_rng(5).dirichlet(np.ones(4), size=6)

LAYER_CASES = [
    Case("linear", lambda: LayerSubject(randomized(Linear(4, 3, rng=0)), randn(0, 5, 4)),
         lambda v, c: v["X"] @ v["W"] + v["b"],
         lambda v, c: F.linear(v["X"], v["W"].T, v["b"])),
    Case("relu", lambda: LayerSubject(ReLU(), randn(0, 4, 5)),
         lambda v, c: anp.where(v["X"] > 0, v["X"], 0.0),
         lambda v, c: F.relu(v["X"])),
    Case("leaky_relu", lambda: LayerSubject(LeakyReLU(0.1), randn(0, 4, 5)),
         lambda v, c: anp.where(v["X"] > 0, v["X"], 0.1 * v["X"]),
         lambda v, c: F.leaky_relu(v["X"], 0.1)),
    Case("sigmoid", lambda: LayerSubject(Sigmoid(), 3 * randn(0, 4, 5)),
         lambda v, c: ag_sigmoid(v["X"]),
         lambda v, c: torch.sigmoid(v["X"])),
    Case("tanh", lambda: LayerSubject(Tanh(), 2 * randn(0, 4, 5)),
         lambda v, c: anp.tanh(v["X"]),
         lambda v, c: torch.tanh(v["X"])),
    Case("mlp", lambda: LayerSubject(
            randomized(mlp([3, 6, 4, 2], rng=0, final_activation="sigmoid")), randn(0, 5, 3)),
         lambda v, c: ag_mlp(v),
         lambda v, c: th_mlp(v)),
    Case("residual", lambda: LayerSubject(
            randomized(Residual(Sequential(Linear(4, 6, rng=0), Tanh(), Linear(6, 4, rng=1)))),
            randn(0, 5, 4)),
         lambda v, c: v["X"] + anp.tanh(v["X"] @ v["F.0.W"] + v["F.0.b"]) @ v["F.2.W"] + v["F.2.b"],
         lambda v, c: v["X"] + F.linear(torch.tanh(F.linear(v["X"], v["F.0.W"].T, v["F.0.b"])),
                                        v["F.2.W"].T, v["F.2.b"])),
    Case("dropout_train", lambda: LayerSubject(Dropout(0.3), randn(0, 8, 5), reseed=7,
                                               constants=dropout_constants),
         lambda v, c: anp.where(c["keep"], v["X"] / (1 - c["p"]), 0.0),
         lambda v, c: torch.where(torch.as_tensor(c["keep"]), v["X"] / (1 - c["p"]), 0.0)),
    Case("dropout_eval", lambda: LayerSubject(Dropout(0.3, rng=0).eval(), randn(0, 8, 5)),
         lambda v, c: 1.0 * v["X"],
         lambda v, c: F.dropout(v["X"], 0.3, training=False)),
    Case("batchnorm_train",
         lambda: LayerSubject(randomized(BatchNorm1d(3)), 2 * randn(0, 6, 3) + 1),
         lambda v, c: ag_batchnorm(v["X"], v["gamma"], v["beta"], anp.mean(v["X"], axis=0),
                                   anp.mean((v["X"] - anp.mean(v["X"], axis=0))**2, axis=0)),
         lambda v, c: F.batch_norm(v["X"], None, None, v["gamma"], v["beta"], training=True,
                                   eps=1e-5)),
    Case("batchnorm_eval", eval_batchnorm,
         lambda v, c: ag_batchnorm(v["X"], v["gamma"], v["beta"], c["mean"], c["var"]),
         lambda v, c: F.batch_norm(v["X"], torch.as_tensor(c["mean"]), torch.as_tensor(c["var"]),
                                   v["gamma"], v["beta"], training=False, eps=1e-5)),
    Case("conv1d", lambda: LayerSubject(randomized(Conv1d(2, 3, 3, rng=0)), randn(0, 4, 2, 7)),
         lambda v, c: ag_conv1d(v["X"], v["W"], v["b"]),
         lambda v, c: F.conv1d(v["X"], v["W"], v["b"])),
    Case("rnn", lambda: LayerSubject(randomized(RNN(3, 4, rng=0)), randn(0, 2, 5, 3)),
         lambda v, c: ag_rnn(v["X"], v["W_xh"], v["W_hh"], v["b_h"]),
         lambda v, c: th_rnn(v)),
    Case("checkpoint", lambda: LayerSubject(
            randomized(Checkpoint(Sequential(Linear(4, 6, rng=0), Tanh(), Linear(6, 3, rng=1)))),
            randn(0, 5, 4)),
         lambda v, c: anp.tanh(v["X"] @ v["layer.0.W"] + v["layer.0.b"]) @ v["layer.2.W"]
         + v["layer.2.b"],
         lambda v, c: F.linear(torch.tanh(F.linear(v["X"], v["layer.0.W"].T, v["layer.0.b"])),
                               v["layer.2.W"].T, v["layer.2.b"])),
]

LOSS_CASES = [
    Case("mse", lambda: LossSubject(mse_loss, "y_hat", randn(0, 5, 2), randn(1, 5, 2)),
         lambda v, c: anp.mean((v["y_hat"] - c["y"])**2),
         lambda v, c: F.mse_loss(v["y_hat"], torch.as_tensor(c["y"]))),
    Case("cross_entropy_labels",
         lambda: LossSubject(softmax_cross_entropy, "logits", 2 * randn(0, 6, 4), LABELS),
         lambda v, c: ag_cross_entropy(v["logits"], one_hot(c["y"], 4)),
         lambda v, c: F.cross_entropy(v["logits"], torch.as_tensor(c["y"]))),
    Case("cross_entropy_soft",
         lambda: LossSubject(softmax_cross_entropy, "logits", 2 * randn(0, 6, 4), SOFT_TARGETS),
         lambda v, c: ag_cross_entropy(v["logits"], c["y"]),
         lambda v, c: F.cross_entropy(v["logits"], torch.as_tensor(c["y"]))),
    Case("masked_cross_entropy",
         lambda: LossSubject(lambda logits, y: masked_softmax_cross_entropy(logits, y, SEQ_MASK),
                             "logits", 2 * randn(0, 3, 5, 4), SEQ_LABELS),
         lambda v, c: ag_masked_cross_entropy(v["logits"], c["y"], SEQ_MASK),
         lambda v, c: F.cross_entropy(v["logits"].reshape(-1, 4),
                                      torch.as_tensor(np.where(SEQ_MASK, c["y"], -100).ravel()),
                                      ignore_index=-100)),
    Case("l2_penalty",
         lambda: PenaltySubject(0.3, Parameter(randn(0, 3, 4), "W1"), Parameter(randn(1, 4), "W2")),
         lambda v, c: c["lam"] / 2 * (anp.sum(v["W1"]**2) + anp.sum(v["W2"]**2)),
         lambda v, c: c["lam"] / 2 * ((v["W1"]**2).sum() + (v["W2"]**2).sum())),
]


# ---- the checks -----------------------------------------------------------------------------

def run(case, seed=100):
    """A fresh subject, its output, a random dout and the gradients its backward returns."""
    subject = case.make()
    out = subject.forward()
    dout = np.random.default_rng(seed).standard_normal(np.shape(out))
    return subject, out, dout, subject.backward(dout)


def check_finite_differences(case, tol=1e-7):
    subject, _, dout, grads = run(case)
    for name, x in subject.inputs.items():
        numeric = numerical_gradient(lambda _: subject.forward(), x, dout)
        err = rel_error(numeric, grads[name])
        assert err < tol, f"{case.name}: d{name} differs from finite differences by {err:.1e}"


def check_autograd(case, tol=1e-12):
    subject, out, dout, grads = run(case)
    values, consts = {k: x.copy() for k, x in subject.inputs.items()}, subject.constants()
    err = rel_error(out, case.ag(values, consts))
    assert err < tol, f"{case.name}: forward differs from autograd by {err:.1e}"
    ref = autograd.grad(lambda v: anp.sum(case.ag(v, consts) * dout))(values)
    for name in values:
        err = rel_error(grads[name], ref[name])
        assert err < tol, f"{case.name}: d{name} differs from autograd by {err:.1e}"


def check_torch(case, tol=1e-12):
    pytest.importorskip("torch", reason="PyTorch is not installed: comparison with torch skipped")
    subject, out, dout, grads = run(case)
    tensors = {k: torch.tensor(x, requires_grad=True) for k, x in subject.inputs.items()}
    ref = case.th(tensors, subject.constants())
    (ref * torch.as_tensor(dout)).sum().backward()
    err = rel_error(out, ref.detach().numpy())
    assert err < tol, f"{case.name}: forward differs from torch by {err:.1e}"
    for name, t in tensors.items():
        err = rel_error(grads[name], t.grad.numpy())
        assert err < tol, f"{case.name}: d{name} differs from torch by {err:.1e}"
