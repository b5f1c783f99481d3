"""The book's worked example: one sigmoid neuron, a linear output and a squared error.

    z1 = w1*x + b1,  a1 = sigmoid(z1),  y_pred = w2*a1 + b2,  L = (y_true - y_pred)^2

with x = 3, w1 = 2, b1 = -1, w2 = 1.5, b2 = 0.5, y_true = 2.5 and one gradient-descent step
with lr = 0.1. Every number is computed at full precision and rounded only when compared.
The expected values are checked twice: through bplib's engine and by the chain rule by hand.
"""
import math

import pytest

from bplib.engine import Value

X, W1, B1, W2, B2, Y_TRUE, LR = 3.0, 2.0, -1.0, 1.5, 0.5, 2.5, 0.1

EXPECTED = {"y_pred": 1.9900, "loss": 0.2601, "dL/dy_pred": -1.0201, "dL/dw2": -1.0133,
            "dL/db2": -1.0201, "dL/dw1": -0.0305, "dL/db1": -0.0102}
EXPECTED_AFTER_STEP = {"w2": 1.6013, "y_pred": 2.1927, "loss": 0.0944}


def forward(params):
    """The network on bplib Values; returns (y_pred, loss)."""
    z1 = params["w1"] * X + params["b1"]
    a1 = z1.sigmoid()
    y_pred = params["w2"] * a1 + params["b2"]
    loss = (Y_TRUE - y_pred) ** 2
    return y_pred, loss


def by_engine():
    """Forward, backward, one step and a second forward, all through bplib."""
    params = {name: Value(v, label=name) for name, v in
              [("w1", W1), ("b1", B1), ("w2", W2), ("b2", B2)]}
    y_pred, loss = forward(params)
    loss.backward()
    before = {"y_pred": y_pred.data, "loss": loss.data, "dL/dy_pred": y_pred.grad,
              **{f"dL/d{name}": p.grad for name, p in params.items()}}
    for p in params.values():
        p.data -= LR * p.grad
    loss.zero_grad()
    y_pred, loss = forward(params)
    after = {"w2": params["w2"].data, "y_pred": y_pred.data, "loss": loss.data}
    return before, after


def by_hand():
    """The same numbers with plain floats and math.exp: the chain rule written out."""
    def sigmoid(z):
        return 1.0 / (1.0 + math.exp(-z))

    a1 = sigmoid(W1 * X + B1)
    y_pred = W2 * a1 + B2
    dy = -2.0 * (Y_TRUE - y_pred)                  # dL/dy_pred
    dz1 = dy * W2 * a1 * (1.0 - a1)                # through y_pred = w2*a1 + b2 and sigmoid
    before = {"y_pred": y_pred, "loss": (Y_TRUE - y_pred) ** 2, "dL/dy_pred": dy,
              "dL/dw2": dy * a1, "dL/db2": dy, "dL/dw1": dz1 * X, "dL/db1": dz1}
    w1, b1 = W1 - LR * before["dL/dw1"], B1 - LR * before["dL/db1"]
    w2, b2 = W2 - LR * before["dL/dw2"], B2 - LR * before["dL/db2"]
    y_pred = w2 * sigmoid(w1 * X + b1) + b2
    after = {"w2": w2, "y_pred": y_pred, "loss": (Y_TRUE - y_pred) ** 2}
    return before, after


def rounded(numbers):
    return {name: round(v, 4) for name, v in numbers.items()}


def test_forward_and_gradients():
    before, _ = by_engine()
    assert rounded(before) == EXPECTED


def test_one_gradient_descent_step():
    _, after = by_engine()
    assert rounded(after) == EXPECTED_AFTER_STEP


def test_engine_agrees_with_chain_rule_by_hand():
    engine, hand = by_engine(), by_hand()
    for got, expected in zip(engine, hand):
        assert got.keys() == expected.keys()
        for name in got:
            assert got[name] == pytest.approx(expected[name], rel=1e-12, abs=1e-15), name
    assert rounded(hand[0]) == EXPECTED and rounded(hand[1]) == EXPECTED_AFTER_STEP


def test_differs_from_a_popular_tutorials_rounded_numbers():
    """A popular tutorial prints y_pred 1.9899, loss 0.2602 and, after the step, loss 0.0940.

    Exact arithmetic does not give those: y_pred = 1.98996..., loss = 0.26014...,
    loss after the step = 0.09442.... The first two are what you get by rounding
    a1 = sigmoid(5) = 0.993307... to 0.9933 before using it, which is why the book never
    rounds intermediate results.
    """
    before, after = by_engine()
    assert round(before["y_pred"], 4) != 1.9899
    assert round(before["loss"], 4) != 0.2602
    assert round(after["loss"], 4) != 0.0940
    a1_rounded = round(1.0 / (1.0 + math.exp(-5.0)), 4)
    y_pred_rounded = W2 * a1_rounded + B2
    assert (a1_rounded, round(y_pred_rounded, 4)) == (0.9933, 1.9899)
    assert round((Y_TRUE - round(y_pred_rounded, 4)) ** 2, 4) == 0.2602
