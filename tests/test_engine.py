"""Tests for bplib.engine (scalar reverse mode) and bplib.graph (drawing it).

One table, OPS, drives the value and gradient checks. Each row has a bplib builder and an
independent autograd.numpy version of the same function. The builders use only methods that
torch tensors also have (``.exp()``, ``.sigmoid()``, ``2 / x`` ...), so the same builder run
on float64 tensors gives the PyTorch reference.
"""
import math
import shutil
import subprocess
import sys

import autograd
import autograd.numpy as anp
import numpy as np
import pytest

from bplib.engine import Value, topological_order
from bplib.graph import draw_graph

ANY, POSITIVE = "any", "positive"


def composite(a, b, c):
    """Uses every op: + - * / (a number on either side too), unary -, **, exp, log, tanh,
    sigmoid and relu."""
    u = (a * b - c / 2).tanh() + 1 / (1 + b ** 2)
    v = (2 - a).exp() * (b * b + 1).log()
    w = (3 * c).relu() - (-a).sigmoid() + (c + 1.5) / b
    return u * v + w - 0.5


def composite_ref(a, b, c):
    u = anp.tanh(a * b - c / 2) + 1 / (1 + b ** 2)
    v = anp.exp(2 - a) * anp.log(b * b + 1)
    w = anp.maximum(3 * c, 0.0) - 1 / (1 + anp.exp(a)) + (c + 1.5) / b
    return u * v + w - 0.5


# name, domain of every input, bplib builder, autograd.numpy reference
OPS = [
    ("add",        ANY,      lambda a, b: a + b,        lambda a, b: anp.add(a, b)),
    ("sub",        ANY,      lambda a, b: a - b,        lambda a, b: anp.subtract(a, b)),
    ("mul",        ANY,      lambda a, b: a * b,        lambda a, b: anp.multiply(a, b)),
    ("div",        ANY,      lambda a, b: a / b,        lambda a, b: anp.divide(a, b)),
    ("radd",       ANY,      lambda a: 2.5 + a,         lambda a: anp.add(2.5, a)),
    ("rsub",       ANY,      lambda a: 2.5 - a,         lambda a: anp.subtract(2.5, a)),
    ("rmul",       ANY,      lambda a: 2.5 * a,         lambda a: anp.multiply(2.5, a)),
    ("rtruediv",   ANY,      lambda a: 2.5 / a,         lambda a: anp.divide(2.5, a)),
    ("sub_number", ANY,      lambda a: a - 0.75,        lambda a: anp.subtract(a, 0.75)),
    ("div_number", ANY,      lambda a: a / 4,           lambda a: anp.divide(a, 4.0)),
    ("neg",        ANY,      lambda a: -a,              lambda a: anp.negative(a)),
    ("pow3",       ANY,      lambda a: a ** 3,          lambda a: anp.power(a, 3.0)),
    ("pow_frac",   POSITIVE, lambda a: a ** -1.5,       lambda a: anp.power(a, -1.5)),
    ("exp",        ANY,      lambda a: a.exp(),         lambda a: anp.exp(a)),
    ("log",        POSITIVE, lambda a: a.log(),         lambda a: anp.log(a)),
    ("tanh",       ANY,      lambda a: a.tanh(),        lambda a: anp.tanh(a)),
    ("sigmoid",    ANY,      lambda a: a.sigmoid(),     lambda a: 1 / (1 + anp.exp(-a))),
    ("relu",       ANY,      lambda a: a.relu(),        lambda a: anp.maximum(a, 0.0)),
    ("x_times_x",  ANY,      lambda a: a * a,           lambda a: anp.square(a)),
    ("composite",  ANY,      composite,                 composite_ref),
]
IDS = [row[0] for row in OPS]


def points(name, domain, arity, n=4):
    """n fixed random inputs; |x| in [0.5, 2] keeps relu's kink and 1/x's pole out of reach."""
    rng = np.random.default_rng(sum(map(ord, name)))
    magnitude = rng.uniform(0.5, 2.0, size=(n, arity))
    sign = 1.0 if domain == POSITIVE else rng.choice([-1.0, 1.0], size=(n, arity))
    return [tuple(float(v) for v in row) for row in magnitude * sign]


def arity(f):
    return f.__code__.co_argcount


def bplib_value_and_grad(build, xs):
    inputs = [Value(x) for x in xs]
    out = build(*inputs)
    out.backward()
    return out.data, np.array([v.grad for v in inputs])


def rel_error(a, ref):
    """Normwise: max|a - ref| / max|ref| (an elementwise ratio blows up on tiny entries)."""
    a, ref = np.atleast_1d(a), np.atleast_1d(ref)
    return np.max(np.abs(a - ref)) / max(np.max(np.abs(ref)), 1e-300)


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


def test_errors_name_the_problem():
    with pytest.raises(TypeError, match=r"Value\(data\).*got str 'a'"):
        Value("a")
    with pytest.raises(TypeError, match=r"Value\(data\).*got Value"):
        Value(Value(1.0))
    for bad in (0.0, -1.0):
        with pytest.raises(ValueError, match=rf"log: input 'x' must be positive, got {bad}"):
            Value(bad, label="x").log()
    with pytest.raises(TypeError, match=r"exponent must be a plain number.*got Value"):
        Value(2.0) ** Value(3.0)
    with pytest.raises(TypeError, match=r"number \*\* Value is not supported"):
        2 ** Value(3.0)
    with pytest.raises(ValueError, match=r"\*\*: -8.0 \*\* 0.5 is not a real number"):
        Value(-8.0) ** 0.5
    with pytest.raises(TypeError, match=r"unsupported operand.*'Value' and 'str'"):
        Value(1.0) + "a"


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
