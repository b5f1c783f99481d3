"""bpcourse.check: every exercise's reference solution passes its check, every classic mistake
fails with the right diagnosis, and nothing a learner writes makes a check raise."""
import copy
import functools
import math
import re
import warnings

import jupytext
import numpy as np
import pytest

from book import ROOT
from bpcourse.check import TASKS, check, passed, progress, run_task, tasks_of
from bplib.engine import VJP_RULES
from bplib.gradcheck import numerical_gradient
from bplib.losses import softmax, softmax_cross_entropy
from bplib.rnn import RNN

EXERCISES = ROOT / "exercises"
NOTEBOOKS = sorted({task.notebook for task in TASKS.values()})
SEEDS = range(5)


def tags(cell):
    return cell.metadata.get("tags", [])


def read(notebook):
    return jupytext.read(EXERCISES / f"{notebook}.md")


@functools.cache
def namespace(notebook):
    """The master notebook's first code cell (its imports) and its solution cells, executed."""
    code = [cell for cell in read(notebook).cells if cell.cell_type == "code"]
    ns = {}
    for cell in [code[0]] + [c for c in code if "solution" in tags(c)]:
        exec(cell.source, ns)
    return ns


def ref(name):
    """The reference solution of a task, taken from its master notebook."""
    return namespace(TASKS[name].notebook)[TASKS[name].function]


def direct(name):
    """The reference solution as the grader calls it: on the task's arguments, through the
    task's ``call`` if it has one (a Value graph described by arrays, say)."""
    task = TASKS[name]
    return functools.partial(task.call, ref(name)) if task.call else ref(name)


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-z))


# ---- the classic mistakes, one function each, and the diagnosis each must get ----------------
def negated(name):
    def wrong(*args):
        out = ref(name)(*args)
        return tuple(-o for o in out) if isinstance(out, tuple) else -out
    return wrong


def one_replaced(name, i, change):
    """The reference, with output i replaced by change(output, *args)."""
    def wrong(*args):
        out = list(ref(name)(*args))
        out[i] = change(out[i], *args)
        return tuple(out)
    return wrong


def dropped_last(name):
    return lambda *args: ref(name)(*args)[:-1]


def naive_softmax(z):
    return np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)


def naive_softmax_ce(z, y):
    p = naive_softmax(z)
    rows = np.arange(len(y))
    dz = p.copy()
    dz[rows, y] -= 1
    return -np.log(p[rows, y]).mean(), dz / len(y)


def mlp2_buggy(bug):
    """The two-layer sigmoid network's backward pass with one of the chapter's bugs."""
    def backward(X, y, W1, b1, W2, b2):
        N = len(X)
        z1 = X @ W1 + b1
        a1 = sigmoid(z1)
        delta2 = softmax(a1 @ W2 + b2) - np.eye(W2.shape[1])[y]
        delta2 = delta2 if bug == "sum" else delta2 / N
        slope = sigmoid(a1) * (1 - sigmoid(a1)) if bug == "fprime_of_a" else a1 * (1 - a1)
        delta1 = (delta2 @ W2.T) * slope
        dW1 = delta1.T @ X if bug == "transposed" else X.T @ delta1
        db1 = delta1 if bug == "unsummed" else delta1.sum() if bug == "all" else delta1.sum(0)
        return dW1, db1, a1.T @ delta2, delta2.sum(axis=0)
    return backward


def mlp3_relu_prime_of_a(X, y, W1, b1, W2, b2, W3, b3):
    """ReLU'(a) in place of ReLU'(z): harmless, since a > 0 exactly where z > 0."""
    a1 = np.maximum(X @ W1 + b1, 0)
    a2 = np.maximum(a1 @ W2 + b2, 0)
    delta3 = (softmax(a2 @ W3 + b3) - np.eye(W3.shape[1])[y]) / len(X)
    delta2 = (delta3 @ W3.T) * (a2 > 0)
    delta1 = (delta2 @ W2.T) * (a1 > 0)
    return X.T @ delta1, delta1.sum(0), a1.T @ delta2, delta2.sum(0), a2.T @ delta3, delta3.sum(0)


def numerical_dW(difference):
    """numerical_dW with a flawed difference quotient."""
    def wrong(W, X, y, eps):
        def f(W):
            return softmax_cross_entropy(X @ W, y)[0]
        grad = np.zeros_like(W)
        for i in np.ndindex(W.shape):
            grad[i] = difference(f, W, i, eps)
        return grad
    return wrong


def one_sided(f, W, i, eps):
    base = f(W)
    W[i] += eps
    up = f(W)
    W[i] -= eps
    return (up - base) / eps


def over_eps(f, W, i, eps):
    old = W[i]
    W[i] = old + eps
    up = f(W)
    W[i] = old - eps
    down = f(W)
    W[i] = old
    return (up - down) / eps


def not_restored(f, W, i, eps):
    W[i] += eps
    up = f(W)
    W[i] -= 2 * eps
    return (up - f(W)) / (2 * eps)


def fit_line_buggy(bug):
    def fit(X, y, lr, steps):
        x, t = X[:, 0], y[:, 0]
        w = b = 0.0
        for _ in range(steps // 10 if bug == "few steps" else steps):
            r = w * x + b - t
            dw, db = 2 * np.sum(r * x), 2 * np.sum(r)
            if bug != "sum":
                dw, db = dw / len(x), db / len(x)
            sign = 1.0 if bug == "ascent" else -1.0
            w, b = w + sign * lr * dw, b + sign * lr * db
        return w if bug == "one value" else (w, b)
    return fit


def he_scaled(std):
    def he(fan_in, fan_out, seed):
        return std(fan_in, fan_out) * np.random.default_rng(seed).standard_normal((fan_in, fan_out))
    return he


def deep_tanh_buggy(bug):
    def backward(dout, X, Ws):
        hs = [X]
        for W in Ws:
            hs.append(np.tanh(hs[-1] @ W))
        grad = dout
        for W, h in zip(Ws[::-1], hs[:0:-1]):
            slope = 1 - np.tanh(h) ** 2 if bug == "fprime_of_a" else 1.0 if bug == "no slope" \
                else 1 - h**2
            grad = (grad * slope) @ (W if bug == "W not transposed" else W.T)
        return grad
    return backward


def residual_buggy(bug):
    def backward(dout, X, W, b):
        a = np.tanh(X @ W + b)
        dz = dout * (1 - np.tanh(a) ** 2 if bug == "fprime_of_a" else 1 - a**2)
        dX = {"no skip": dz @ W.T, "skip only": dout}.get(bug, dout + dz @ W.T)
        dW = dz.T @ X if bug == "transposed" else X.T @ dz
        return dX, dW, dz if bug == "unsummed" else dz.sum(0)
    return backward


def rnn_buggy(bug):
    """Backpropagation through time for the tanh RNN from h_0 = 0, with one classic mistake."""
    def backward(dout, X, W_xh, W_hh, b_h):
        N, T, _ = X.shape
        Z, H, h = [], [], np.zeros((N, W_hh.shape[0]))
        for t in range(T):
            Z.append(X[:, t] @ W_xh + h @ W_hh + b_h)
            h = np.tanh(Z[-1])
            H.append(h)
        dX, dW_xh, dW_hh = np.zeros_like(X), np.zeros_like(W_xh), np.zeros_like(W_hh)
        db_h = np.zeros((N, len(b_h))) if bug == "db unsummed" else np.zeros_like(b_h)
        dh = np.zeros_like(h)
        for t in reversed(range(T)):
            dh = dout[:, t] + (0.0 if bug == "no carry" else dh)
            slope = {"f'(a)": 1 - np.tanh(H[t]) ** 2, "at z": 1 - Z[t] ** 2}.get(bug, 1 - H[t] ** 2)
            delta = dh * slope
            if bug == "squeezed delta":
                delta = np.squeeze(delta)
            h_prev = H[t - 1] if t else np.zeros_like(h)
            shares = [X[:, t].T @ delta,
                      delta.T @ h_prev if bug == "transposed dW_hh" else h_prev.T @ delta,
                      delta if bug == "db unsummed" else delta.sum(axis=0)]
            for g, share in zip((dW_xh, dW_hh, db_h), shares):
                if bug == "overwritten":
                    g[...] = share
                elif bug != "last step only" or t == T - 1:
                    g += share
            dX[:, t] = delta @ W_xh.T
            dh = delta @ W_hh.T
        return dX, dW_xh, dW_hh, db_h
    return backward


def rnn_squeezed(dout, X, W_xh, W_hh, b_h):
    """Squeezes its inputs: with one step, X of shape (N, 1, n_in) becomes (N, n_in)."""
    return ref("rnn_backward")(np.squeeze(dout), np.squeeze(X), W_xh, W_hh, b_h)


def clip_buggy(bug):
    def clip(dW_xh, dW_hh, db_h, max_norm):
        grads = (dW_xh, dW_hh, db_h)
        squares = sum(np.sum(g**2) for g in grads)
        norm = squares if bug == "no sqrt" else np.sqrt(squares)
        if bug == "per array":
            return tuple(g * min(1.0, max_norm / np.linalg.norm(g)) for g in grads)
        if bug == "always":  # rescales below the limit too
            return tuple(g * max_norm / norm for g in grads)
        if bug == "0/0":  # right except that 0 / 0 is nan
            return tuple(g / norm * min(norm, max_norm) for g in grads)
        factor = norm / max_norm if bug == "inverted" else max_norm / norm
        return tuple(g * factor for g in grads) if norm > max_norm else grads
    return clip


def conv_buggy(bug):
    def weight_grad(X, delta):
        N, T = len(X), delta.shape[2]
        K = X.shape[2] - T + 1
        taps = [np.einsum("not,nct->oc", delta[:1] if bug == "first example" else delta,
                          X[:1, :, k:k + T] if bug == "first example" else X[:, :, k:k + T])
                for k in range(K)]
        dW = np.stack(taps[::-1] if bug == "flipped" else taps, axis=2)
        return {"channels swapped": dW.transpose(1, 0, 2), "mean": dW / N,
                "squeezed dW": np.squeeze(dW)}.get(bug, dW)
    return weight_grad


def conv_squeezed(X, delta):
    """Squeezes the batch: with one example, X of shape (1, C_in, L) becomes (C_in, L)."""
    X, delta = np.squeeze(X, axis=0) if len(X) == 1 else X, np.squeeze(delta)
    return conv_buggy(None)(X, delta)
def train_classifier_buggy(bug):
    """The spiral classifier's loop, written out again, with one classic mistake."""
    def train(X, y, W1, b1, W2, b2, lr, steps):
        N, Y = len(X), np.eye(W2.shape[1])[y]
        rate = {"no update": 0.0, "ascent": -lr, "lr twice": lr * lr, "sum": lr * N}.get(bug, lr)
        losses = []
        for _ in range(steps):
            Z1 = X @ W1 + b1
            A1 = np.maximum(Z1, 0.0)
            Z2 = A1 @ W2 + b2
            log_p = Z2 - Z2.max(axis=1, keepdims=True)
            log_p -= np.log(np.exp(log_p).sum(axis=1, keepdims=True))
            losses.append(-np.sum(Y * log_p) / (1 if bug == "sum loss" else N))
            delta2 = (np.exp(log_p) - Y) / N
            delta1 = (delta2 @ W2.T) * (Z1 > 0)
            W1, W2 = W1 - rate * X.T @ delta1, W2 - rate * A1.T @ delta2
            if bug != "frozen biases":
                b1, b2 = b1 - rate * delta1.sum(axis=0), b2 - rate * delta2.sum(axis=0)
        if bug == "losses only":
            return np.array(losses)
        return np.array(losses[1:] if bug == "one loss short" else losses), W1, b1, W2, b2
    return train


def momentum_buggy(bug):
    def step(params, grads, velocities, lr, momentum):
        new_params, new_velocities = [], []
        for w, g, v in zip(params, grads, velocities):
            v_new = momentum * v + (lr * g if bug == "lr inside v" else g)
            step_along = {"plain": g, "old v": v}.get(bug, v_new)
            w_new = w - (1.0 if bug == "lr inside v" else lr) * step_along
            new_params.append(w_new)
            new_velocities.append(v.copy() if bug == "v not kept" else v_new)
        return new_params, new_velocities
    return step


def momentum_in_place(params, grads, velocities, lr, momentum):
    """Right values, but written over the caller's arrays."""
    for w, g, v in zip(params, grads, velocities):
        v *= momentum
        v += g
        w -= lr * v
    return params, velocities


def momentum_grads_kept_at_0(params, grads, velocities, lr, momentum):
    """With momentum 0 it hands back the caller's gradients as the velocities."""
    if momentum == 0:
        return [w - lr * g for w, g in zip(params, grads)], list(grads)
    return ref("momentum_step")(params, grads, velocities, lr, momentum)


def momentum_grads_kept_first(params, grads, velocities, lr, momentum):
    """On the first step (no velocity yet) it hands back the caller's gradients."""
    if not np.any(velocities):
        return [w - lr * g for w, g in zip(params, grads)], list(grads)
    return ref("momentum_step")(params, grads, velocities, lr, momentum)


def momentum_stale_at_0(params, grads, velocities, lr, momentum):
    """With momentum 0 it skips the velocity and returns the old one."""
    if momentum == 0:
        return [w - lr * g for w, g in zip(params, grads)], [v.copy() for v in velocities]
    return ref("momentum_step")(params, grads, velocities, lr, momentum)


def momentum_warm_up(params, grads, velocities, lr, momentum):
    """On the first step it only fills the velocity and leaves the weights."""
    if not np.any(velocities):
        return [w.copy() for w in params], [g.copy() for g in grads]
    return ref("momentum_step")(params, grads, velocities, lr, momentum)


def batchnorm_buggy(bug):
    """Batch norm's backward pass, CS231n's staged way, with one classic mistake."""
    def backward(dout, X, gamma, beta, eps):
        N = len(X)
        mu = X.mean(axis=0)
        xc = X - mu
        var = (xc**2).sum(axis=0) / (N - 1 if bug == "N - 1" else N)
        std = np.sqrt(var + eps)
        x_hat = xc / std
        dx_hat = dout if bug == "no gamma" else dout * gamma
        if bug == "constants":
            dX = dx_hat / std
        else:
            dvar = -0.5 * (dx_hat * xc).sum(axis=0) / std**3
            dxc = dx_hat / std + (0 if bug == "no variance" else
                                  2 * xc * dvar / (N - 1 if bug == "N - 1" else N))
            dX = dxc - (0 if bug == "no mean" else dxc.mean(axis=0))
        if bug == "constant column zeroed":
            dX = dX * (var > 0)
        dgamma = (dout * (X if bug == "dgamma of X" else x_hat)).sum(axis=0)
        return dX, np.squeeze(dgamma) if bug == "squeezed" else dgamma, dout.sum(axis=0)
    return backward


def batchnorm_jacobian(dout, X, gamma, beta, eps):
    """The whole-batch Jacobian route, one N x N matrix per column: right, slower."""
    N = len(X)
    sigma = np.sqrt(X.var(axis=0) + eps)
    x_hat = (X - X.mean(axis=0)) / sigma
    dX = np.column_stack([
        (gamma[j] * dout[:, j]) @ (np.eye(N) - 1 / N - np.outer(x_hat[:, j], x_hat[:, j]) / N)
        / sigma[j] for j in range(X.shape[1])])
    return dX, (dout * x_hat).sum(axis=0), dout.sum(axis=0)
def topo_buggy(bug):
    """topological_order with one classic mistake."""
    def order(root):
        if bug == "recursive":
            placed, seen = [], set()

            def visit(node):
                if node not in seen:
                    seen.add(node)
                    for child in node._children:
                        visit(child)
                    placed.append(node)
            visit(root)
            return placed
        placed, stack = [], [(root, False)]  # "no visited set"
        while stack:
            node, done = stack.pop()
            if done:
                placed.append(node)
            else:
                stack.append((node, True))
                stack += [(child, False) for child in node._children]
        return placed
    return order


def backward_buggy(bug):
    """backward with one of chapter 3's bugs, on the reference's topological order (or on a
    recursive one)."""
    def backward(root):
        order = (topo_buggy("recursive") if bug == "recursive order" else
                 ref("topo_order"))(root)
        if bug != "not zeroed":
            for node in order:
                node.grad = 0.0
        root.grad = 0.0 if bug == "root grad 0" else 1.0
        for node in order if bug == "inputs first" else reversed(order):
            if node._children:
                grads = VJP_RULES[node.op](node.grad, node.data,
                                           *[c.data for c in node._children], *node._const)
                pairs = dict(zip(node._children, grads)) if bug == "dict" else \
                    zip(node._children, grads)
                for child, grad in (pairs.items() if bug == "dict" else pairs):
                    if bug == "=":
                        child.grad = grad
                    else:
                        child.grad += grad
    return backward


def relative_error_buggy(bug):
    def error(u, v):
        if bug == "shape attribute" and u.shape != v.shape:  # floats have no .shape
            raise ValueError(f"shapes {u.shape} and {v.shape}")
        u, v = np.asarray(u, dtype=float), np.asarray(v, dtype=float)
        if bug not in ("no shape check", "shape attribute") and u.shape != v.shape:
            raise ValueError(f"relative_error: {u.shape} vs {v.shape}" if bug != "vague" else
                             "relative_error: shapes differ")
        if bug == "zero means equal" and not (u.any() and v.any()):
            return 0.0
        diff = np.abs(u - v)
        with np.errstate(all="ignore"):
            return float({"by numeric": diff.max() / np.abs(v).max(),
                          "by analytic": diff.max() / np.abs(u).max(),
                          "entrywise": (diff / (np.abs(u) + np.abs(v))).max(),
                          "mean": diff.mean() / max(np.abs(u).max(), np.abs(v).max()),
                          "no floor": diff.max() / max(np.abs(u).max(), np.abs(v).max())}.get(
                bug, diff.max() / max(np.abs(u).max(), np.abs(v).max(), np.finfo(float).tiny)))
    return error


def per_example_buggy(bug):
    def grads(X, y, W, b):
        N = len(X)
        delta = softmax(X @ W + b) - np.eye(W.shape[1])[y]  # rows: p_i - e_{y_i}
        each = delta / N if bug == "1/N in each" else delta
        dW_each = X[:, None, :] * each[:, :, None] if bug == "(C, n_0) each" else \
            X[:, :, None] * each[:, None, :]
        dW_each = np.squeeze(dW_each) if bug == "squeezed" else dW_each
        dW = {"outer of sums": np.outer(X.sum(0), delta.sum(0)) / N,
              "sum": X.T @ delta}.get(bug, X.T @ delta / N)
        db = {"db unsummed": delta / N, "sum": delta.sum(0)}.get(bug, delta.mean(0))
        return dW_each, each, dW, db
    return grads


MISTAKES = [
    ("sigmoid_grad", "f'(a)", lambda z: ref("sigmoid_grad")(sigmoid(z)), "fprime_of_a"),
    ("sigmoid_grad", "sign", negated("sigmoid_grad"), "sign"),
    ("sigmoid_grad", "flattened", lambda z: ref("sigmoid_grad")(z).ravel(), "shape"),
    ("sigmoid_grad", "two values", lambda z: (ref("sigmoid_grad")(z), z), "arity"),
    ("tanh_grad", "f'(a)", lambda z: ref("tanh_grad")(np.tanh(z)), "fprime_of_a"),
    ("tanh_grad", "1 - tanh", lambda z: 1 - np.tanh(z), "values"),
    ("leaky_relu_grad", "plain ReLU", lambda z, alpha: (z > 0) * 1.0, "values"),
    ("leaky_relu_grad", "transposed", lambda z, alpha: ref("leaky_relu_grad")(z, alpha).T,
     "transposed"),
    ("softmax", "naive", naive_softmax, "not_finite"),
    ("softmax", "columns", lambda z: ref("softmax")(z.T).T, "values"),
    ("softmax", "transposed", lambda z: ref("softmax")(z).T, "transposed"),
    ("softmax_ce", "sum", lambda z, y: tuple(o * len(z) for o in ref("softmax_ce")(z, y)),
     "batch_scale"),
    ("softmax_ce", "y - p", one_replaced("softmax_ce", 1, lambda g, z, y: -g), "sign"),
    ("softmax_ce", "loss only", lambda z, y: ref("softmax_ce")(z, y)[0], "arity"),
    ("softmax_ce", "naive", naive_softmax_ce, "not_finite"),
    ("softmax_ce", "no one-hot", one_replaced("softmax_ce", 1, lambda g, z, y: softmax(z) / len(z)),
     "values"),
    ("tiny_backprop", "y_true - y_hat", negated("tiny_backprop"), "sign"),
    ("tiny_backprop", "three values", dropped_last("tiny_backprop"), "arity"),
    ("engine_mul_rule", "swapped", lambda g, out, a, b: (g * a, g * b), "values"),
    ("engine_mul_rule", "one value", lambda g, out, a, b: g * b, "arity"),
    ("engine_mul_rule", "sign", negated("engine_mul_rule"), "sign"),
    ("engine_tanh_rule", "f'(out)", lambda g, out, a: (g * (1 - math.tanh(out) ** 2),),
     "fprime_of_a"),
    ("engine_tanh_rule", "no tuple", lambda g, out, a: g * (1 - out**2), "arity"),
    ("topo_order", "no visited set", topo_buggy("no visited set"), "values"),
    ("topo_order", "reversed", lambda root: ref("topo_order")(root)[::-1], "values"),
    ("topo_order", "no leaves", lambda root: [n for n in ref("topo_order")(root) if n._children],
     "shape"),
    ("topo_order", "root first", lambda root: [root] + ref("topo_order")(root)[:-1], "values"),
    ("topo_order", "a set", lambda root: set(ref("topo_order")(root)), "arity"),
    ("engine_backward", "= for +=", backward_buggy("="), "values"),
    ("engine_backward", "inputs first", backward_buggy("inputs first"), "values"),
    ("engine_backward", "root grad 0", backward_buggy("root grad 0"), "values"),
    ("linear_backward", "transposed dW", one_replaced("linear_backward", 1, lambda g, *a: g.T),
     "transposed"),
    ("linear_backward", "sign", negated("linear_backward"), "sign"),
    ("linear_backward", "mean", one_replaced("linear_backward", 1, lambda g, d, X, W: g / len(X)),
     "batch_scale"),
    ("linear_backward", "db unsummed", one_replaced("linear_backward", 2, lambda g, d, X, W: d),
     "bias_not_summed"),
    ("linear_backward", "db summed over all", one_replaced("linear_backward", 2,
                                                          lambda g, *a: g.sum()), "shape"),
    ("linear_backward", "db keepdims", one_replaced("linear_backward", 2, lambda g, *a: g[None]),
     "shape"),
    ("linear_backward", "two values", dropped_last("linear_backward"), "arity"),
    ("linear_backward", "order", lambda *a: (lambda dX, dW, db: (dW, dX, db))(
        *ref("linear_backward")(*a)), "values"),
    ("mlp2_backward", "f'(a)", mlp2_buggy("fprime_of_a"), "fprime_of_a"),
    ("mlp2_backward", "transposed dW1", mlp2_buggy("transposed"), "transposed"),
    ("mlp2_backward", "sum", mlp2_buggy("sum"), "batch_scale"),
    ("mlp2_backward", "db1 unsummed", mlp2_buggy("unsummed"), "bias_not_summed"),
    ("mlp2_backward", "db1 summed over all", mlp2_buggy("all"), "shape"),
    ("mlp2_backward", "sign", negated("mlp2_backward"), "sign"),
    ("mlp3_backward", "transposed dW2", one_replaced("mlp3_backward", 2, lambda g, *a: g.T),
     "transposed"),
    ("mlp3_backward", "sum", lambda X, *a: tuple(g * len(X) for g in ref("mlp3_backward")(X, *a)),
     "batch_scale"),
    ("mlp3_backward", "db3 unsummed", one_replaced("mlp3_backward", 5, lambda g, X, y, *p: (
        softmax_cross_entropy(np.maximum(np.maximum(X @ p[0] + p[1], 0) @ p[2] + p[3], 0) @ p[4]
                              + p[5], y)[1])), "bias_not_summed"),
    ("mlp3_backward", "sign", negated("mlp3_backward"), "sign"),
    ("mlp3_backward", "four values", lambda *a: ref("mlp3_backward")(*a)[:4], "arity"),
    ("mlp3_backward", "flattened dW3", one_replaced("mlp3_backward", 4, lambda g, *a: g.ravel()),
     "shape"),
    ("numerical_grad", "one-sided", numerical_dW(one_sided), "values"),
    ("numerical_grad", "over eps", numerical_dW(over_eps), "values"),
    ("numerical_grad", "x not restored", numerical_dW(not_restored), "values"),
    ("numerical_grad", "sign", negated("numerical_grad"), "sign"),
    ("relative_error", "by numeric", relative_error_buggy("by numeric"), "values"),
    ("relative_error", "entrywise", relative_error_buggy("entrywise"), "values"),
    ("relative_error", "mean", relative_error_buggy("mean"), "values"),
    ("relative_error", "by analytic", relative_error_buggy("by analytic"), "not_finite"),
    ("per_example_grads", "(C, n_0) each", per_example_buggy("(C, n_0) each"), "transposed"),
    ("per_example_grads", "1/N in each", per_example_buggy("1/N in each"), "batch_scale"),
    ("per_example_grads", "db unsummed", per_example_buggy("db unsummed"), "bias_not_summed"),
    ("per_example_grads", "outer of sums", per_example_buggy("outer of sums"), "values"),
    ("per_example_grads", "sum", per_example_buggy("sum"), "batch_scale"),
    ("fit_line", "sum", fit_line_buggy("sum"), "not_finite"),
    ("fit_line", "ascent", fit_line_buggy("ascent"), "threshold"),
    ("fit_line", "few steps", fit_line_buggy("few steps"), "threshold"),
    ("fit_line", "one value", fit_line_buggy("one value"), "arity"),
    ("train_classifier", "no update", train_classifier_buggy("no update"), "no_update"),
    ("train_classifier", "ascent", train_classifier_buggy("ascent"), "sign"),
    ("train_classifier", "lr twice", train_classifier_buggy("lr twice"), "lr_twice"),
    ("train_classifier", "sum", train_classifier_buggy("sum"), "batch_scale"),
    ("train_classifier", "sum loss", train_classifier_buggy("sum loss"), "batch_scale"),
    ("train_classifier", "frozen biases", train_classifier_buggy("frozen biases"),
     "bias_frozen"),
    ("train_classifier", "one loss short", train_classifier_buggy("one loss short"), "shape"),
    ("train_classifier", "losses only", train_classifier_buggy("losses only"), "arity"),
    ("momentum_step", "v not kept", momentum_buggy("v not kept"), "velocity"),
    ("momentum_step", "plain", momentum_buggy("plain"), "velocity"),
    ("momentum_step", "lr inside v", momentum_buggy("lr inside v"), "lr_inside"),
    ("momentum_step", "old v", momentum_buggy("old v"), "values"),
    ("momentum_step", "in place", momentum_in_place, "in_place"),
    ("momentum_step", "one value", lambda *a: ref("momentum_step")(*a)[0], "arity"),
    ("he_init", "fan_out", he_scaled(lambda i, o: math.sqrt(2 / o)), "values"),
    ("he_init", "variance", he_scaled(lambda i, o: 2 / i), "values"),
    ("he_init", "Xavier", he_scaled(lambda i, o: math.sqrt(2 / (i + o))), "values"),
    ("he_init", "transposed", lambda i, o, s: ref("he_init")(o, i, s), "transposed"),
    ("he_init", "constant", lambda i, o, s: np.full((i, o), math.sqrt(2 / i)), "values"),
    ("deep_tanh_backward", "f'(a)", deep_tanh_buggy("fprime_of_a"), "fprime_of_a"),
    ("deep_tanh_backward", "no slope", deep_tanh_buggy("no slope"), "values"),
    ("deep_tanh_backward", "W not transposed", deep_tanh_buggy("W not transposed"), "values"),
    ("deep_tanh_backward", "sign", negated("deep_tanh_backward"), "sign"),
    ("batchnorm_backward", "constants", batchnorm_buggy("constants"), "batch_stats"),
    ("batchnorm_backward", "no mean", batchnorm_buggy("no mean"), "batch_stats"),
    ("batchnorm_backward", "no variance", batchnorm_buggy("no variance"), "batch_stats"),
    ("batchnorm_backward", "N - 1", batchnorm_buggy("N - 1"), "n_minus_1"),
    ("batchnorm_backward", "no gamma", batchnorm_buggy("no gamma"), "no_gamma"),
    ("batchnorm_backward", "dgamma of X", batchnorm_buggy("dgamma of X"), "values"),
    ("batchnorm_backward", "sign", negated("batchnorm_backward"), "sign"),
    ("batchnorm_backward", "dbeta unsummed", one_replaced("batchnorm_backward", 2,
                                                         lambda g, dout, *a: dout),
     "bias_not_summed"),
    ("residual_backward", "no skip", residual_buggy("no skip"), "values"),
    ("residual_backward", "skip only", residual_buggy("skip only"), "values"),
    ("residual_backward", "f'(a)", residual_buggy("fprime_of_a"), "fprime_of_a"),
    ("residual_backward", "transposed dW", residual_buggy("transposed"), "transposed"),
    ("residual_backward", "db unsummed", residual_buggy("unsummed"), "bias_not_summed"),
    ("residual_backward", "two values", dropped_last("residual_backward"), "arity"),
    ("rnn_backward", "last step only", rnn_buggy("last step only"), "values"),
    ("rnn_backward", "overwritten", rnn_buggy("overwritten"), "values"),
    ("rnn_backward", "no carry", rnn_buggy("no carry"), "values"),
    ("rnn_backward", "f'(a)", rnn_buggy("f'(a)"), "fprime_of_a"),
    ("rnn_backward", "at z", rnn_buggy("at z"), "fprime_of_a"),
    ("rnn_backward", "transposed dW_hh", rnn_buggy("transposed dW_hh"), "transposed"),
    ("rnn_backward", "db unsummed", rnn_buggy("db unsummed"), "bias_not_summed"),
    ("rnn_backward", "sign", negated("rnn_backward"), "sign"),
    ("clip_grad_norm", "per array", clip_buggy("per array"), "values"),
    ("clip_grad_norm", "inverted", clip_buggy("inverted"), "values"),
    ("clip_grad_norm", "no sqrt", clip_buggy("no sqrt"), "values"),
    ("clip_grad_norm", "two values", dropped_last("clip_grad_norm"), "arity"),
    ("conv1d_weight_grad", "flipped", conv_buggy("flipped"), "values"),
    ("conv1d_weight_grad", "channels swapped", conv_buggy("channels swapped"), "transposed"),
    ("conv1d_weight_grad", "first example", conv_buggy("first example"), "values"),
    ("conv1d_weight_grad", "mean", conv_buggy("mean"), "batch_scale"),
]
HINTS = {("residual_backward", "no skip"): "used twice", ("engine_mul_rule", "swapped"): "swapped",
         ("numerical_grad", "over eps"): "2 * eps", ("he_init", "fan_out"): "fan_out",
         ("he_init", "variance"): "square root", ("linear_backward", "order"): "in this order",
         ("softmax", "columns"): "each row", ("fit_line", "ascent"): "diverged",
         ("fit_line", "sum"): "Mean versus sum",
         ("rnn_backward", "last step only"): "step T's share only",
         ("rnn_backward", "overwritten"): "step 1's share only",
         ("rnn_backward", "no carry"): "flows from h_t back into h_{t-1}",
         ("rnn_backward", "f'(a)"): "1 - tanh(h_t)**2", ("rnn_backward", "at z"): "1 - z_t**2",
         ("clip_grad_norm", "per array"): "its own norm",
         ("clip_grad_norm", "inverted"): "max_norm / norm",
         ("clip_grad_norm", "no sqrt"): "square root",
         ("conv1d_weight_grad", "flipped"): "kernel flipped",
         ("conv1d_weight_grad", "channels swapped"): "(C_out, C_in, K)",
         ("conv1d_weight_grad", "first example"): "over the examples n",
         ("train_classifier", "no update"): "departs from the reference at step 1",
         ("train_classifier", "sum loss"): "departs from the reference at step 0",
         ("train_classifier", "lr twice"): "applied twice",
         ("train_classifier", "frozen biases"): "update b1 and b2",
         ("momentum_step", "v not kept"): "the velocities you were given",
         ("momentum_step", "lr inside v"): "learning rate went inside v",
         ("momentum_step", "in place"): "changed the caller's params in place",
         ("batchnorm_backward", "constants"): "Forgot the batch statistics depend on the input",
         ("batchnorm_backward", "no mean"): "mean depends on the input",
         ("batchnorm_backward", "no variance"): "variance depends on the input",
         ("batchnorm_backward", "N - 1"): "N - 1",
         ("batchnorm_backward", "no gamma"): "Gamma is missing",
         ("topo_order", "no visited set"): "remember the nodes already visited",
         ("topo_order", "reversed"): "the order is reversed",
         ("topo_order", "no leaves"): "all of them leaves",
         ("topo_order", "root first"): "comes before its input",
         ("topo_order", "a set"): "no list",
         ("engine_backward", "= for +="): "a node used twice got only one of its gradients",
         ("engine_backward", "inputs first"): "stopped at the root's inputs",
         ("engine_backward", "root grad 0"): "Set root.grad = 1",
         ("relative_error", "by numeric"): "max|numeric| only",
         ("relative_error", "entrywise"): "entrywise",
         ("relative_error", "by analytic"): "all zeros",
         ("relative_error", "mean"): "not the mean",
         ("per_example_grads", "(C, n_0) each"): "X[:, :, None] * delta[:, None, :]",
         ("per_example_grads", "1/N in each"): "own loss, with no 1/N",
         ("per_example_grads", "db unsummed"): "um it over the batch",
         ("per_example_grads", "outer of sums"): "outer product of the sums",
         ("per_example_grads", "sum"): "mean versus sum"}


def test_the_tasks_cover_every_chapter_with_exercises():
    assert len(TASKS) >= 12
    assert NOTEBOOKS == ["01_forward_pass", "02_loss", "03_chain_rule", "04_backprop_matrix",
                         "05_training", "06_vanishing_gradients", "07_resnet_skips", "08_beyond"]
    required = {"sigmoid_grad", "softmax_ce", "engine_mul_rule", "linear_backward", "mlp3_backward",
                "numerical_grad", "fit_line", "he_init", "residual_backward"}
    assert required <= set(TASKS)


def test_exercises_3_and_4_ask_for_their_tasks_in_order_with_their_points():
    """Counted by hand: exercise 3 has 5 tasks worth 1 + 1 + 1 + 1 + 2 = 6 points, exercise 4
    has 6 worth 1 + 1 + 2 + 1 + 1 + 2 = 8."""
    chain = ["tiny_backprop", "engine_mul_rule", "engine_tanh_rule", "topo_order",
             "engine_backward"]
    matrix = ["linear_backward", "mlp2_backward", "mlp3_backward", "numerical_grad",
              "relative_error", "per_example_grads"]
    assert tasks_of("03_chain_rule") == chain and tasks_of("04_backprop_matrix") == matrix
    assert sum(TASKS[name].points for name in chain) == 6
    assert sum(TASKS[name].points for name in matrix) == 8
    for notebook, names in [("03_chain_rule", chain), ("04_backprop_matrix", matrix)]:
        text = (EXERCISES / f"{notebook}.md").read_text()
        assert [text.index(f'check("{name}", ') for name in names] == sorted(
            text.index(f'check("{name}", ') for name in names)


@pytest.mark.parametrize("notebook", NOTEBOOKS)
def test_each_task_has_statement_hint_solution_check_and_link(notebook):
    path = EXERCISES / f"{notebook}.md"
    text = path.read_text()
    assert text.startswith("---\njupytext:")
    cells = read(notebook).cells
    code = [c.source for c in cells if c.cell_type == "code"]
    for name in tasks_of(notebook):
        function = TASKS[name].function
        solution = [c.source for c in cells if "solution" in tags(c)
                    and f"def {function}(" in c.source]
        assert len(solution) == 1, name
        assert "### BEGIN SOLUTION" in solution[0] and "### END SOLUTION" in solution[0]
        checks = [c for c in cells if f'check("{name}", {function})' in c.source]
        assert len(checks) == 1 and "check" in tags(checks[0]), name
    assert text.count(":class: dropdown") >= len(tasks_of(notebook))
    assert f'progress("{notebook}")' in code[-1]
    for link in set(re.findall(r"\]\((\.\./chapters/[^)#]+)\)", text)):
        assert (path.parent / link).resolve().exists(), link
    assert f"../chapters/{notebook}.md" in text


@pytest.mark.parametrize("name", TASKS)
def test_reference_solution_passes(name):
    for seed in SEEDS:
        result = run_task(name, ref(name), rng=seed)
        assert result.passed and result.cause is None, (seed, result.message)


@pytest.mark.parametrize("name,label,wrong,cause", MISTAKES,
                         ids=[f"{m[0]}-{m[1]}" for m in MISTAKES])
def test_classic_mistake_fails_with_its_diagnosis(name, label, wrong, cause):
    for seed in SEEDS:
        result = run_task(name, wrong, rng=seed)
        assert not result.passed and result.cause == cause, (seed, result.message)
        assert result.message.startswith(f"{name}: ")
        assert HINTS.get((name, label), "") in result.message


def test_every_task_has_classic_mistakes():
    assert {m[0] for m in MISTAKES} == set(TASKS)


@pytest.mark.parametrize("name", ["linear_backward", "mlp2_backward", "residual_backward"])
def test_message_names_the_output_entry_expected_and_got(name):
    result = run_task(name, negated(name), rng=0)
    output = TASKS[name].outputs[0]
    assert result.message.startswith(f"{name}: {output}[0, 0]: expected ")
    assert ", got " in result.message and "relative error" in result.message
    assert "sign is flipped" in result.message


def test_relu_prime_of_a_is_harmless():
    """The chapter's claim: with ReLU, f'(a) in place of f'(z) gives the same gradients."""
    assert run_task("mlp3_backward", mlp3_relu_prime_of_a, rng=0).passed


@pytest.mark.parametrize("name", TASKS)
def test_a_hard_coded_answer_fails(name):
    args = TASKS[name].make_inputs(np.random.default_rng(0))
    answer = direct(name)(*copy.deepcopy(args))
    result = run_task(name, lambda *_: answer, rng=1)
    assert not result.passed, result.message


@pytest.mark.parametrize("name", TASKS)
def test_learner_exceptions_are_reported_not_raised(name):
    def broken(*args):
        raise ValueError("shapes (3,4) and (5,6) not aligned")

    def unfinished(*args):
        raise NotImplementedError("fill in")

    result = run_task(name, broken)
    assert (result.passed, result.cause) == (False, "error")
    assert result.message.startswith(f"{name}: {TASKS[name].function} raised ValueError: shapes "
                                     "(3,4) and (5,6) not aligned")
    result = run_task(name, unfinished)
    assert result.cause == "error" and "not implemented yet" in result.message


@pytest.mark.parametrize("got", [None, "a string", [[1, 2], [3]], {"dW": 1}, np.zeros(3)])
def test_any_return_value_gives_a_result(got):
    for name in TASKS:
        result = run_task(name, lambda *_: got, rng=0)
        assert not result.passed and result.cause in {"arity", "shape", "values", "transposed",
                                                      "not_finite"}, (name, result.message)


@pytest.mark.parametrize("name", [name for name, task in TASKS.items() if not task.keeps])
def test_learner_cannot_change_the_oracles_inputs(name):
    """A function that scribbles over its arguments after computing its answer still passes:
    it works on copies (a task with ``keeps`` fails it: see the next test)."""
    def scribbler(*args):
        out = ref(name)(*args)
        for a in args:
            if isinstance(a, np.ndarray) and a.dtype.kind == "f":
                a[...] = np.nan
        return out

    assert run_task(name, scribbler, rng=0).passed


@pytest.mark.parametrize("name", TASKS)
def test_oracle_and_compare_are_pure_and_work_on_what_the_grader_loads(name):
    """As bpcourse.grade does: arguments through .npy (0-d arrays become Python numbers), the
    learner's outputs back the same way, compared in this process."""
    task = TASKS[name]
    args = task.make_inputs(np.random.default_rng(3))
    assert all(np.asarray(a).dtype.kind in "biuf" for a in args)
    before = copy.deepcopy(args)
    expected = task.expected(*args)
    for a, b in zip(args, before):
        np.testing.assert_array_equal(a, b)

    def loaded(x):
        x = np.asarray(x)
        return x.item() if x.ndim == 0 else x

    out = direct(name)(*[loaded(a) for a in args])
    got = tuple(loaded(o) for o in out) if isinstance(out, tuple) else loaded(out)
    assert task.compare(args, expected, got).passed
    assert task.compare(args, expected, got).passed
    for a, b in zip(expected, task.expected(*args)):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("wrong,edge,words", [
    (momentum_in_place, None, "changed the caller's params in place (params[0, 0, 0] was "),
    (momentum_grads_kept_at_0, "when momentum is 0", "new_velocities shares memory with the "
                                                     "caller's grads"),
    (momentum_grads_kept_first, "on the first step", "new_velocities shares memory with the "
                                                     "caller's grads")])
def test_momentum_step_must_leave_the_callers_arrays_alone(wrong, edge, words):
    """Right values written over the caller's arrays, or handed back as the caller's own
    gradients, fail the check (the grader, which passes copies through files, cannot see it)."""
    for seed in SEEDS:
        result = run_task("momentum_step", wrong, rng=seed)
        assert not result.passed and result.cause == "in_place", result.message
        assert result.message.startswith("momentum_step: " + (f"fails {edge}" if edge else
                                                              words)), result.message
        assert words in result.message and "new array" in result.message
        if edge:
            assert run_task("momentum_step", wrong, rng=seed, cases=1).passed


def test_the_momentum_check_sees_an_argument_changed_after_the_answer():
    def scribbler(*args):
        out = ref("momentum_step")(*args)
        args[2][...] = np.nan
        return out

    result = run_task("momentum_step", scribbler, rng=0)
    assert result.cause == "in_place" and "caller's velocities in place" in result.message


@pytest.mark.parametrize("name,right", [
    ("train_classifier", train_classifier_buggy(None)),  # one-hot, log-softmax, other order
    ("batchnorm_backward", batchnorm_buggy(None)),  # CS231n's staged graph
    ("batchnorm_backward", batchnorm_jacobian)])
def test_other_correct_implementations_pass(tmp_path, name, right):
    """The tolerances leave room for a correct answer computed in another order."""
    for seed in range(10):
        assert run_task(name, right, rng=seed).passed, run_task(name, right, rng=seed).message
    assert graded(tmp_path, name, right)["passed"]


def test_train_classifier_compares_every_step_and_names_the_first_departure():
    def late(X, y, *params):
        """Right for 100 steps, then the learning rate halves."""
        out = train_classifier_buggy(None)(X, y, *params[:4], params[4], 100)
        rest = train_classifier_buggy(None)(X, y, *out[1:], params[4] / 2, params[5] - 100)
        return np.concatenate([out[0], rest[0]]), *rest[1:]

    result = run_task("train_classifier", late, rng=0)
    assert result.message.startswith("train_classifier: the loss departs from the reference at "
                                     "step 101: expected "), result.message
    assert result.cause == "values" and "check the backward pass" in result.message.lower()


def test_train_classifier_needs_held_out_accuracy(monkeypatch):
    """An answer equal to the reference passes only while the reference reaches the bar."""
    from bpcourse import check as check_module
    assert run_task("train_classifier", ref("train_classifier"), rng=0).passed
    monkeypatch.setattr(check_module, "ACCURACY_MIN", 1.01)
    result = run_task("train_classifier", ref("train_classifier"), rng=0)
    assert result.cause == "threshold" and "held-out accuracy" in result.message


def test_batchnorm_oracle_agrees_with_finite_differences_on_every_edge():
    """The oracle (bplib's BatchNorm1d) against central differences of the forward pass written
    here, on a random case and on each edge."""
    def forward(X, gamma, beta, eps):
        return gamma * (X - X.mean(axis=0)) / np.sqrt(X.var(axis=0) + eps) + beta

    task = TASKS["batchnorm_backward"]
    for dout, X, gamma, beta, eps in task.draw(np.random.default_rng(0), 4):
        dX, dgamma, dbeta = task.expected(dout, X, gamma, beta, eps)
        for got, wrt, f in [
                (dX, X, lambda v: forward(v, gamma, beta, eps)),
                (dgamma, gamma, lambda v: forward(X, v, beta, eps)),
                (dbeta, beta, lambda v: forward(X, gamma, v, eps))]:
            numeric = numerical_gradient(f, wrt.copy(), dout, eps=1e-6)
            assert np.abs(numeric - got).max() <= 1e-6 * max(1.0, np.abs(got).max())


def test_extra_cases_are_run():
    X = np.arange(6.0).reshape(3, 2)
    dout, W = np.ones((3, 2)), np.eye(2)
    assert run_task("linear_backward", ref("linear_backward"), cases=0,
                    extra_cases=[(dout, X, W)]).message.endswith("correct on 1 cases")

    def right_on_random_inputs_only(dout, X, W):
        return ref("linear_backward")(dout, X, W) if X[0, 0] != 0 else (dout, X, W)

    assert run_task("linear_backward", right_on_random_inputs_only, rng=0).passed
    assert not run_task("linear_backward", right_on_random_inputs_only, rng=0,
                        extra_cases=[(dout, X, W)]).passed


def test_check_prints_records_and_progress_lists(capsys):
    assert check("sigmoid_grad", ref("sigmoid_grad"))
    assert not check("tanh_grad", lambda z: z)
    assert not check("no_such_task", ref("tanh_grad"))
    assert passed("sigmoid_grad") and not passed("tanh_grad")
    printed = capsys.readouterr()
    assert printed.out.startswith("✅ passed sigmoid_grad: correct") and printed.out.count("\n") == 1
    failed = printed.err.splitlines()  # nbgrader's autograde scores a cell with stderr 0
    assert failed[0].startswith("❌ failed tanh_grad: result[0, 0]: expected")
    assert failed[1].startswith("❌ failed no_such_task: no such task")
    progress("01_forward_pass")
    table = capsys.readouterr().out.splitlines()
    assert table == ["✅ passed sigmoid_grad", "❌ failed tanh_grad", "·  not run leaky_relu_grad",
                     "1 of 3 tasks passed"]


def test_checks_never_print_warnings(capsys):
    """A naive softmax overflows inside the check: the learner sees the diagnosis, not numpy's
    RuntimeWarning."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = run_task("softmax", naive_softmax, rng=0)
    assert result.cause == "not_finite" and caught == []
    assert capsys.readouterr().err == ""


# ---- edges: one row, width 1, exact zeros at kinks, logits of +-800; finite differences ------
def leaky_at_zero_is_one(z, alpha):
    return np.where(z >= 0, 1.0, alpha)


def mlp3_relu_prime_at_zero_is_one(X, y, W1, b1, W2, b2, W3, b3):
    """ReLU'(0) taken as 1 (z >= 0): bplib and the course take 0."""
    z1 = X @ W1 + b1
    a1 = np.maximum(z1, 0)
    z2 = a1 @ W2 + b2
    a2 = np.maximum(z2, 0)
    delta3 = (softmax(a2 @ W3 + b3) - np.eye(W3.shape[1])[y]) / len(X)
    delta2 = (delta3 @ W3.T) * (z2 >= 0)
    delta1 = (delta2 @ W2.T) * (z1 >= 0)
    return X.T @ delta1, delta1.sum(0), a1.T @ delta2, delta2.sum(0), a2.T @ delta3, delta3.sum(0)


def linear_squeezed(dout, X, W):
    """Squeezes the batch: (1, M) becomes (M,)."""
    dout, X = np.squeeze(dout), np.squeeze(X)
    return dout @ W.T, X.T @ dout, dout.sum(axis=0)


def linear_dW_squeezed(dout, X, W):
    """Squeezes dW: (1, M) becomes (M,) when X has one column."""
    return dout @ W.T, np.squeeze(X.T @ dout), dout.sum(axis=0)


def sigmoid_grad_squeezed(z):
    s = sigmoid(np.squeeze(z))
    return s * (1 - s)


AT_ZERO, AT_800 = "where an input is exactly 0", "when logits reach +-800"
ONE_ROW, WIDTH_1 = "when the batch has one row", "when a width is 1"
DIAMOND, CHAIN, ONE_NODE = "on the graph a = x + y", "on a chain 2,000 nodes deep", \
    "when the root is a single node"
STALE, BOTH_ZERO, ONE_ZERO = "when the nodes still hold gradients", \
    "when both arrays are all zeros", "when one of the two arrays is all zeros"
SINGLE, MISMATCH = "when the two are single numbers", "when the two arrays have different shapes"
EDGE_MISTAKES = [  # task, label, function, the words of its edge in the message
    ("topo_order", "recursive", topo_buggy("recursive"), CHAIN),
    ("topo_order", "nothing for a leaf", lambda root: ref("topo_order")(root) if root._children
     else [], ONE_NODE),
    ("engine_backward", "x * x kept once", backward_buggy("dict"), DIAMOND),
    ("engine_backward", "not zeroed", backward_buggy("not zeroed"), STALE),
    ("engine_backward", "recursive order", backward_buggy("recursive order"), CHAIN),
    ("relative_error", "0/0", relative_error_buggy("no floor"), BOTH_ZERO),
    ("relative_error", "zero means equal", relative_error_buggy("zero means equal"), ONE_ZERO),
    ("relative_error", "shape attribute", relative_error_buggy("shape attribute"), SINGLE),
    ("relative_error", "no shape check", relative_error_buggy("no shape check"), MISMATCH),
    ("relative_error", "vague error", relative_error_buggy("vague"), MISMATCH),
    ("per_example_grads", "squeezed", per_example_buggy("squeezed"), ONE_ROW),
    ("leaky_relu_grad", "slope 1 at 0", leaky_at_zero_is_one, AT_ZERO),
    ("mlp3_backward", "ReLU'(0) = 1", mlp3_relu_prime_at_zero_is_one, AT_ZERO),
    ("softmax", "no max subtracted", naive_softmax, AT_800),
    ("softmax_ce", "no max subtracted", naive_softmax_ce, AT_800),
    ("linear_backward", "squeezed batch", linear_squeezed, ONE_ROW),
    ("sigmoid_grad", "squeezed batch", sigmoid_grad_squeezed, ONE_ROW),
    ("linear_backward", "squeezed dW", linear_dW_squeezed, WIDTH_1),
    ("rnn_backward", "squeezed steps", rnn_squeezed, "when the sequence has one step (T = 1)"),
    ("rnn_backward", "squeezed delta", rnn_buggy("squeezed delta"), ONE_ROW),
    ("clip_grad_norm", "rescaled below the limit", clip_buggy("always"),
     "when the global norm is below max_norm"),
    ("clip_grad_norm", "0 / 0", clip_buggy("0/0"), "when every gradient is zero"),
    ("conv1d_weight_grad", "squeezed batch", conv_squeezed, ONE_ROW),
    ("conv1d_weight_grad", "squeezed dW", conv_buggy("squeezed dW"), WIDTH_1),
    ("momentum_step", "stale v at momentum 0", momentum_stale_at_0, "when momentum is 0"),
    ("momentum_step", "warm-up first step", momentum_warm_up, "on the first step"),
    ("batchnorm_backward", "squeezed dgamma", batchnorm_buggy("squeezed"), WIDTH_1),
    ("batchnorm_backward", "constant column zeroed", batchnorm_buggy("constant column zeroed"),
     "when a column of X is constant"),
]


class InProcessKernel:
    """What bpcourse.grade.grade_task asks of a kernel, with the learner's function run here."""

    def __init__(self, folder, function, fn):
        self.folder, self.namespace = folder, {function: fn}

    def run(self, code, timeout, record=True):
        try:
            with np.errstate(all="ignore"):  # as in a kernel: numpy's warnings are not errors
                exec(code, self.namespace)
            return "ok", ""
        except Exception as err:
            return "error", f"{type(err).__name__}: {err}"


def graded(tmp_path, name, fn, seed=0):
    """The grader's outcome for task ``name``: its cases as bpcourse.grade.Grader draws them,
    the results through .npy files and the task's compare, as for a submission."""
    from bpcourse.grade import Grader, grade_task
    task = TASKS[name]
    cases = Grader(TASKS, seed=seed).cases("learner.md", name)
    return grade_task(InProcessKernel(tmp_path, task.function, fn), task, cases, lambda: 30.0)[0]


@pytest.mark.parametrize("name,label,wrong,edge", EDGE_MISTAKES,
                         ids=[f"{m[0]}-{m[1]}" for m in EDGE_MISTAKES])
def test_an_edge_wrong_answer_fails_and_names_the_edge(tmp_path, name, label, wrong, edge):
    """Right on random inputs, wrong on an edge: the check and the grader both fail it, without
    instructor cases, and say on which edge."""
    for seed in SEEDS:
        assert run_task(name, wrong, rng=seed, cases=1).passed  # the random case alone
        result = run_task(name, wrong, rng=seed)
        assert not result.passed and result.message.startswith(f"{name}: fails {edge}"), \
            (seed, result.message)
        report = graded(tmp_path, name, wrong, seed)
        assert report["points"] == 0 and not report["passed"], report
        if report["cause"] is not None:  # what the kernel raised is reported as it is
            assert edge in report["message"], report["message"]


@pytest.mark.parametrize("name", TASKS)
def test_masters_pass_the_grader_on_the_edges(tmp_path, name):
    assert graded(tmp_path, name, ref(name))["passed"]


def test_each_case_after_the_first_stands_on_its_edge():
    from bpcourse.check import _edge_of
    for task in TASKS.values():
        for seed in SEEDS:
            cases = task.draw(np.random.default_rng(seed), 1 + 2 * len(task.edges))
            assert [_edge_of(task, args) for args in cases] == \
                [None] + list(task.edges) * 2, task.name
    X, _, W1, b1, W2, b2, *_ = TASKS["mlp3_backward"].draw(np.random.default_rng(0), 2)[1]
    z1 = X @ W1 + b1
    z2 = np.maximum(z1, 0) @ W2 + b2
    assert (z1 == 0).any() and (z2 == 0).any()


def test_no_two_sizes_are_equal_so_an_untransposed_W_fails(tmp_path):
    def square_W(dout, X, W):  # dout @ W where dout @ W.T is meant: runs only if W is square
        return dout @ W, X.T @ dout, dout.sum(axis=0)

    for seed in range(20):
        result = run_task("linear_backward", square_W, rng=seed)
        assert result.cause == "error" and "arrays of shapes" in result.message, result.message
        assert graded(tmp_path, "linear_backward", square_W, seed)["points"] == 0


def central_differences(name, eps=1e-5):
    """An answer by central differences, at the step that suits these tasks best (measured)."""
    def numeric(f, x, dout=None):
        return numerical_gradient(f, x.copy(), dout, eps=eps)

    def mlp2(X, y, W1, b1, W2, b2):
        def loss(W1, b1, W2, b2):
            return softmax_cross_entropy(sigmoid(X @ W1 + b1) @ W2 + b2, y)[0]
        p = [W1, b1, W2, b2]
        return tuple(numeric(lambda v, i=i: loss(*p[:i], v, *p[i + 1:]), p[i]) for i in range(4))

    def batchnorm(dout, X, gamma, beta, eps_bn):
        def out(X, gamma, beta):
            return gamma * (X - X.mean(axis=0)) / np.sqrt(X.var(axis=0) + eps_bn) + beta
        return (numeric(lambda v: out(v, gamma, beta), X, dout),
                numeric(lambda v: out(X, v, beta), gamma, dout),
                numeric(lambda v: out(X, gamma, v), beta, dout))

    return {
        "batchnorm_backward": batchnorm,
        "sigmoid_grad": lambda z: (sigmoid(z + eps) - sigmoid(z - eps)) / (2 * eps),
        "tanh_grad": lambda z: (np.tanh(z + eps) - np.tanh(z - eps)) / (2 * eps),
        "softmax_ce": lambda z, y: (softmax_cross_entropy(z, y)[0],
                                    numeric(lambda v: softmax_cross_entropy(v, y)[0], z)),
        "mlp2_backward": mlp2,
        "residual_backward": lambda dout, X, W, b: (
            numeric(lambda v: v + np.tanh(v @ W + b), X, dout),
            numeric(lambda v: X + np.tanh(X @ v + b), W, dout),
            numeric(lambda v: X + np.tanh(X @ W + v), b, dout)),
        "rnn_backward": lambda dout, X, *weights: tuple(
            numeric(lambda v, i=i: rnn_forward(*[X, *weights][:i], v, *[X, *weights][i + 1:]),
                    [X, *weights][i], dout) for i in range(4)),
    }[name]


def rnn_forward(X, W_xh, W_hh, b_h):
    """Every hidden state of the tanh RNN from h_0 = 0, by bplib's RNN."""
    rnn = RNN(*W_xh.shape, init="zeros")
    for p, value in zip(rnn.parameters(), (W_xh, W_hh, b_h)):
        p.value[...] = value
    return rnn.forward(X)


@pytest.mark.parametrize("name", ["sigmoid_grad", "tanh_grad", "softmax_ce", "mlp2_backward",
                                  "residual_backward", "rnn_backward", "batchnorm_backward"])
def test_a_finite_difference_answer_earns_nothing(tmp_path, name):
    for seed in SEEDS:
        result = run_task(name, central_differences(name), rng=seed)
        assert result.cause == "finite_difference", result.message
        assert re.search(r"agrees only to \de-\d\d, as a finite-difference", result.message)
        assert "the task asks for the analytic gradient" in result.message
    report = graded(tmp_path, name, central_differences(name))
    assert report["points"] == 0 and report["cause"] == "finite_difference", report
    assert "as a finite-difference estimate" in report["message"]


def test_check_raises_on_request_for_nbgrader(monkeypatch, capsys):
    """nbgrader's autograde scores a grade cell by whether it raised: with raises=True, or with
    BPCOURSE_CHECK_RAISES=1 in the environment, a failed check raises CheckFailed."""
    from bpcourse.check import CheckFailed
    with pytest.raises(CheckFailed, match="tanh_grad: result"):
        check("tanh_grad", lambda z: z, raises=True)
    assert check("tanh_grad", ref("tanh_grad"), raises=True)
    def unfinished(z):
        raise NotImplementedError("fill in tanh_grad")

    monkeypatch.setenv("BPCOURSE_CHECK_RAISES", "1")
    with pytest.raises(CheckFailed, match="not implemented yet"):
        check("tanh_grad", unfinished)
    assert not check("tanh_grad", lambda z: z, raises=False)
    monkeypatch.setenv("BPCOURSE_CHECK_RAISES", "0")
    assert not check("tanh_grad", lambda z: z)
    capsys.readouterr()


def kahn_order(root):
    """A topological order by Kahn's algorithm: leaves first, then whatever became ready; on
    most graphs not the order bplib's depth-first search gives."""
    nodes, stack = {root}, [root]
    while stack:
        for child in stack.pop()._children:
            if child not in nodes:
                nodes.add(child)
                stack.append(child)
    waiting = {node: len(set(node._children)) for node in nodes}
    users = {node: [u for u in nodes if node in u._children] for node in nodes}
    ready, placed = [node for node in nodes if not node._children], []
    while ready:
        node = ready.pop(0)
        placed.append(node)
        for user in users[node]:
            waiting[user] -= 1
            if not waiting[user]:
                ready.append(user)
    return placed


def test_any_valid_topological_order_passes():
    """The check tests validity, not equality with bplib's list: Kahn's order passes, and it
    differs from bplib's on the random graphs."""
    from bplib.engine import topological_order
    differs = 0
    for seed in SEEDS:
        assert run_task("topo_order", kahn_order, rng=seed).passed
        args = TASKS["topo_order"].make_inputs(np.random.default_rng(seed))
        root = TASKS["topo_order"].call(None, *args)[-1]  # fn None: the graph's nodes
        differs += kahn_order(root) != topological_order(root)
    assert differs >= 3


def test_a_recursive_order_fails_on_the_chain_and_is_told_to_loop(tmp_path):
    result = run_task("topo_order", topo_buggy("recursive"), rng=0)
    assert result.cause == "error" and "RecursionError" in result.message
    assert "walk the graph with a loop and a list as the stack" in result.message
    report = graded(tmp_path, "topo_order", topo_buggy("recursive"))
    assert report["points"] == 0 and "a loop and a list as the stack" in report["message"]
