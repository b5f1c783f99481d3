"""Tests for bplib.engine (scalar reverse mode) and bplib.graph (drawing it).

The table of operations, OPS, is shared with forward mode (tests/scalar_ops.py); here every op is
checked against finite differences, autograd and PyTorch. Bad input and domain errors are rows of
the table in tests/test_errors.py.
"""
import math
import shutil
import subprocess
import sys

import autograd
import numpy as np
import pytest
from scalar_ops import EDGES, IDS, OPS, arity, composite, points

from bplib.engine import VJP_RULES, Value, topological_order
from bplib.gradcheck import rel_error
from bplib.graph import draw_graph


def bplib_value_and_grad(build, xs):
    inputs = [Value(x) for x in xs]
    out = build(*inputs)
    out.backward()
    return out.data, np.array([v.grad for v in inputs])


@pytest.mark.parametrize("name, domain, build, ref", OPS, ids=IDS)
def test_against_finite_differences(name, domain, build, ref):
    h = 1e-6
    for xs in points(name, domain, arity(build)):
        value, grad = bplib_value_and_grad(build, xs)
        assert rel_error(value, ref(*xs)) < 1e-12
        numeric = []
        for i in range(len(xs)):
            up = [x + h if j == i else x for j, x in enumerate(xs)]
            down = [x - h if j == i else x for j, x in enumerate(xs)]
            f_up = build(*map(Value, up)).data
            f_down = build(*map(Value, down)).data
            numeric.append((f_up - f_down) / (2 * h))
        assert rel_error(grad, numeric) < 1e-7, (xs, grad, numeric)


@pytest.mark.parametrize("name, domain, build, ref", OPS, ids=IDS)
def test_against_autograd(name, domain, build, ref):
    for xs in points(name, domain, arity(build)):
        _, grad = bplib_value_and_grad(build, xs)
        expected = [autograd.grad(ref, i)(*xs) for i in range(len(xs))]
        assert rel_error(grad, expected) < 1e-12, (xs, grad, expected)


@pytest.mark.parametrize("name, domain, build, ref", OPS, ids=IDS)
def test_against_torch(name, domain, build, ref):
    torch = pytest.importorskip("torch", reason="PyTorch not installed: reference check skipped")
    for xs in points(name, domain, arity(build)):
        value, grad = bplib_value_and_grad(build, xs)
        tensors = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
        out = build(*tensors)
        out.backward()
        assert rel_error(value, out.item()) < 1e-12
        assert rel_error(grad, [t.grad.item() for t in tensors]) < 1e-12


def test_node_used_twice_accumulates():
    x = Value(3.0, label="x")
    y = x * x
    y.backward()
    assert y.data == 9.0
    assert x.grad == 6.0            # overwriting instead of += would give 3


def test_deep_chain_has_no_recursion_limit():
    x = Value(0.5, label="x")
    y = x
    for _ in range(5000):
        y = y + x                   # y = 5001 x, with x reused 5000 times
    assert 5000 > sys.getrecursionlimit()
    assert len(topological_order(y)) == 5001
    y.backward()
    assert y.data == pytest.approx(5001 * 0.5)
    assert x.grad == 5001.0


def _graph_grads(root):
    return [node.grad for node in topological_order(root)]


def test_backward_twice_with_zero_grad_in_between_gives_same_grads():
    a, b, c = Value(0.7), Value(-1.3), Value(1.1)
    out = composite(a, b, c)
    out.backward()
    first = _graph_grads(out)
    out.zero_grad()
    assert all(g == 0.0 for g in _graph_grads(out))
    out.backward()
    assert _graph_grads(out) == first


def test_backward_twice_without_zeroing_doubles_every_grad():
    a, b, c = Value(0.7), Value(-1.3), Value(1.1)
    out = composite(a, b, c)
    out.backward()
    first = _graph_grads(out)
    out.backward()
    assert _graph_grads(out) == pytest.approx([2 * g for g in first], rel=1e-15)


def test_backward_twice_matches_torch():
    torch = pytest.importorskip("torch", reason="PyTorch not installed: reference check skipped")
    xs = (0.7, -1.3, 1.1)
    values = [Value(x) for x in xs]
    tensors = [torch.tensor(x, dtype=torch.float64, requires_grad=True) for x in xs]
    out, t_out = composite(*values), composite(*tensors)
    for _ in range(2):
        out.backward()
        t_out.backward(retain_graph=True)
    assert [v.grad for v in values] == pytest.approx([t.grad.item() for t in tensors], rel=1e-12)


def test_sigmoid_is_stable_for_large_inputs():
    for x, expected in [(800.0, 1.0), (-800.0, 0.0), (40.0, 1.0), (-40.0, math.exp(-40.0))]:
        v = Value(x)
        s = v.sigmoid()
        s.backward()
        assert s.data == pytest.approx(expected, rel=1e-12, abs=1e-300)
        assert math.isfinite(v.grad) and v.grad >= 0.0


def test_relu_passes_no_gradient_below_zero():
    x = Value(-2.0)
    y = x.relu()
    y.backward()
    assert (y.data, x.grad) == (0.0, 0.0)


def test_numbers_on_either_side_including_numpy_scalars():
    x = Value(2.0)
    for out, expected in [(1 + x, 3.0), (x + 1, 3.0), (5 - x, 3.0), (x - 5, -3.0),
                          (3 * x, 6.0), (x * 3, 6.0), (1 / x, 0.5), (x / 4, 0.5),
                          (np.float64(3.0) * x, 6.0), (x ** 2, 4.0)]:
        assert isinstance(out, Value) and out.data == expected


@pytest.mark.parametrize("x, build, value, derivative", EDGES)
def test_domain_edges_that_are_fine(x, build, value, derivative):
    v = Value(x)
    out = build(v)
    out.backward()
    assert out.data == pytest.approx(value, rel=1e-15, abs=0.0)
    assert v.grad == pytest.approx(derivative, rel=1e-15, abs=0.0)


def test_backward_uses_the_rules_in_VJP_RULES(monkeypatch):
    """Exercise 3 puts the learner's rule into the table: backward must look rules up there."""
    monkeypatch.setitem(VJP_RULES, "*", lambda g, out, a, b: (g * a, g * b))  # a swapped rule
    x, w = Value(3.0), Value(2.0)
    (x * w).backward()
    assert (x.grad, w.grad) == (3.0, 2.0)       # the library's rule gives (2.0, 3.0)


def test_import_engine_does_not_import_graphviz():
    code = "import sys, bplib.engine; sys.exit('graphviz' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


def _labelled_example():
    x, w, b = Value(3.0, label="x"), Value(2.0, label="w1"), Value(-1.0, label="b1")
    z = w * x + b
    z.label = "z1"
    a = z.sigmoid()
    a.label = "a1"
    loss = (2.5 - a) ** 2
    loss.label = "L"
    loss.backward()
    return loss


def test_draw_graph_shows_every_node_with_data_and_grad():
    graphviz = pytest.importorskip("graphviz", reason="the graphviz Python package is missing")
    if shutil.which("dot") is None:
        pytest.skip("Graphviz's `dot` is not installed (apt-get install graphviz)")
    loss = _labelled_example()
    dot = draw_graph(loss)
    assert isinstance(dot, graphviz.Digraph)
    for node in topological_order(loss):
        text = f"data {node.data:.4f} | grad {node.grad:.4f}"
        assert (f"{node.label} | {text}" if node.label else text) in dot.source
    assert "w1 | data 2.0000 | grad " in dot.source
    for op in ("*", "+", "sigmoid", "-", "**2"):
        assert f'label="{op}"' in dot.source or f"label={op} " in dot.source
    svg = dot.pipe(format="svg").decode()
    assert "<svg" in svg
    again = draw_graph(_labelled_example()).pipe(format="svg").decode()
    assert svg == again                             # node ids are stable, not id()-based


def test_draw_graph_errors(monkeypatch):
    with pytest.raises(ValueError, match="rankdir must be one of"):
        draw_graph(Value(1.0), rankdir="sideways")
    pytest.importorskip("graphviz", reason="the graphviz Python package is missing")
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="apt-get install graphviz"):
        draw_graph(Value(1.0))
