r"""Graded checks for the exercise notebooks: ``check("linear_backward", linear_backward)``.

Every task in ``TASKS`` draws random inputs (so a hard-coded answer fails), asks an oracle for the
right outputs and compares them with the learner's. The oracles ship no solution code: they run
bplib's own layers, losses and engine (tested against finite differences, autograd and PyTorch),
take finite differences of a given forward function, or test properties. A wrong output gets a
message naming it, its first wrong entry with the expected and the actual value, and the likely
cause: a tag from ``CAUSES`` or "arity", "error", "threshold", "values".

Every case has sizes that differ from each other (a W that needs a transpose cannot pass by being
square); after the first, random case come the task's ``edges`` (``EDGES``): a batch of one row, a
width of 1, inputs exactly at a kink, logits of +-800. Gradients must agree to ``TOL``: an answer
that agrees only to about 1e-6, as a finite-difference estimate does, fails, and is told why.

What the grader (``bpcourse.grade``) relies on: ``task.draw(rng, n)`` returns n argument tuples
(numpy arrays, floats and ints); the learner's function is called as ``fn(*args)``, or as
``task.call(fn, *args)`` if the task has a ``call`` (whose source the grader runs in the
learner's kernel), and returns an array or a number, or a tuple of them (lists are not
tuples); ``task.compare(args, task.expected(*args), got)`` returns a ``Result`` and is pure.
"""
import copy
import math
import operator
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Callable

import numpy as np

from bplib import data
from bplib.engine import LARGEST_EXP, VJP_RULES, Value, topological_order
from bplib.gradcheck import numerical_gradient, rel_error
from bplib.init import as_rng
from bplib.layers import LeakyReLU, Linear, ReLU, Residual, Sequential, Sigmoid, Tanh, sigmoid
from bplib.losses import mse_loss, softmax, softmax_cross_entropy

CAUSES = {
    "shape": "a gradient has the shape of the thing it is the gradient of",
    "transposed": "it is the transpose of the answer: write down the shapes, they leave one choice",
    "sign": "the sign is flipped: check each minus (y_hat - y, not y - y_hat)",
    "batch_scale": "off by the batch size N={N}: mean versus sum? A mean puts 1/N in the gradient",
    "fprime_of_a": "it matches f'(a), the slope at the activation: take f' at the pre-activation z",
    "bias_not_summed": "sum it over the batch (axis=0): the bias was added to every row",
    "not_finite": "it holds nan or inf: an overflow? (exp of a large number: subtract the max)",
}
# The cases after the first, random one, by name: what inputs a right answer must survive.
EDGES = {
    "one_row": "when the batch has one row",
    "width_1": "when a width is 1",
    "kink": "where an input is exactly 0, at the kink (the course takes the slope there from the "
            "left, as bplib does: ReLU'(0) = 0, LeakyReLU'(0) = alpha)",
    "logits_800": "when logits reach +-800",
    "diamond": "on the graph a = x + y, b = a * a, L = b + a (n0 = x, n1 = y, n2 = a, n3 = b, "
               "n4 = L)",
    "chain": "on a chain 2,000 nodes deep",
    "one_node": "when the root is a single node with no inputs",
    "stale": "when the nodes still hold gradients from an earlier pass",
    "both_zero": "when both arrays are all zeros",
    "one_zero": "when one of the two arrays is all zeros",
    "single": "when the two are single numbers",
    "mismatch": "when the two arrays have different shapes",
}
# Measured on 30 cases of each gradient task: the masters agree with the oracles to 8e-16 at
# worst; central differences at the usual step 1e-6 to 4e-12 at best, and with the step tuned to
# each case to 2e-13 (a scalar), 3e-12 on arrays. Only for a linear map (linear_backward,
# mul_rule) do differences with a large step agree to 1e-15: those pass.
TOL = 1e-13
FD_TOL = 1e-4  # between TOL and this: a finite-difference estimate (or float32 arithmetic)


@dataclass
class Result:
    """Outcome of a check: ``passed``, a one-line ``message``, a ``cause`` tag (None if passed).
    True in an ``if`` exactly when passed."""

    passed: bool
    message: str
    cause: str | None = None

    def __bool__(self):
        return self.passed

    def _ipython_display_(self):
        """check() printed the result already: a cell ending in check(...) shows no echo."""


@dataclass
class Task:
    """One graded task. ``expected(*args)`` returns a tuple, one entry per name in ``outputs``;
    ``variants(expected, *args)`` lists classic mistakes as (cause, hint or None, outputs);
    ``batch(*args)`` is N, to recognise mean versus sum and a batch of one row; ``edges`` name
    the cases after the first (``EDGES``), ``make_inputs(rng, edge)`` draws each; ``hint`` is the
    advice when nothing more specific fits; ``gradient``: the outputs are analytic gradients, so
    an answer agreeing to finite-difference accuracy only is called such. ``compare`` defaults
    to ``compare_outputs``. ``call(fn, *args)``, if given, calls the learner's ``fn`` on
    something the arrays describe and returns arrays; the grader runs its source in the
    learner's kernel, so it imports what it uses."""

    name: str
    notebook: str
    function: str
    make_inputs: Callable
    expected: Callable
    outputs: tuple = ("result",)
    variants: Callable | None = None
    batch: Callable | None = None
    hint: str = ""
    tol: float = TOL
    edges: tuple = ("one_row", "width_1")
    gradient: bool = True
    as_tuple: bool = False  # one output, returned as a 1-tuple (engine rules)
    compare: Callable | None = None
    points: int = 1
    call: Callable | None = None  # call(fn, *args) runs fn: on a Value graph (``_graph_call``)
    edge_of: Callable | None = None  # edge_of(*args): the case's edge, for inputs not arrays

    def __post_init__(self):
        if self.compare is None:
            self.compare = lambda args, expected, got: compare_outputs(self, args, expected, got)

    def draw(self, rng, n):
        """n argument tuples: a random case, then the edges in turn; for n > 1 at least one
        case per edge."""
        n = max(n, 1 + len(self.edges)) if n > 1 else n
        edges = [None] + [self.edges[i % len(self.edges)] for i in range(n - 1)] \
            if self.edges else [None] * n
        return [self.make_inputs(rng, edge) for edge in edges[:n]]


def _fail(task, text, cause, args=None):
    edge = _edge_of(task, args) if args is not None else None
    return Result(False, f"{task.name}: " + (f"fails {EDGES[edge]}: " if edge else "") + text,
                  cause)


def _edge_of(task, args):
    """The edge of the task's that the inputs ``args`` stand on (a key of ``EDGES``), or None."""
    if task.edge_of:
        return task.edge_of(*args)
    arrays = [a for a in args if isinstance(a, np.ndarray)]
    floats = [a for a in arrays if a.dtype.kind == "f" and a.size]
    found = [edge for edge, there in [
        ("logits_800", any(np.abs(a).max() > LARGEST_EXP for a in floats)),
        ("kink", any((a == 0).any() for a in floats)),
        ("one_row", task.batch is not None and task.batch(*args) == 1),
        ("width_1", any(1 in a.shape for a in arrays))] if there and edge in task.edges]
    return found[0] if found else None


def _close(g, e, tol):
    return g.shape == e.shape and rel_error(g, e) < tol


def _first_wrong(name, g, e, tol):
    """'dW[1, 2]: expected 0.25, got -0.25 (relative error 2.0e+00)' at the first wrong entry
    (off by more than tol times the largest expected entry, or nan, or inf)."""
    finite = bool(np.all(np.isfinite(g)))
    atol = tol * np.abs(e).max(initial=0.0)  # nan and inf are never close
    i = np.unravel_index(np.argmax(~np.isclose(g, e, rtol=0.0, atol=atol)), e.shape)
    where = f"{name}[{', '.join(str(int(k)) for k in i)}]" if e.ndim else name
    error = f" (relative error {rel_error(g, e):.1e})" if finite else ""
    return f"{where}: expected {e[i]:.6g}, got {g[i]:.6g}{error}"


def compare_outputs(task, args, expected, got):
    """Compare the outputs in order and diagnose the first wrong one."""
    names, multi = task.outputs, len(task.outputs) > 1 or task.as_tuple
    if got is None or multi != isinstance(got, tuple) or multi and len(got) != len(names):
        n = f"{len(got)} values" if isinstance(got, tuple) else "None" if got is None else \
            f"a {type(got).__name__}"
        want = f"a tuple of {len(names)}: {', '.join(names)}" if multi else f"one, {names[0]}"
        return _fail(task, f"returned {n}; expected {want}", "arity", args)
    got = got if multi else (got,)
    for i in range(len(names)):
        g, e = np.asarray(got[i], dtype=float), np.asarray(expected[i], dtype=float)
        if not _close(g, e, task.tol):
            return _diagnose(task, args, expected, i, g, e)
    return Result(True, f"{task.name}: correct", None)


def _diagnose(task, args, expected, i, g, e):
    name, tol = task.outputs[i], task.tol
    N = task.batch(*args) if task.batch else None

    def fail(cause, hint=None):
        detail = (f"{name} has shape {g.shape}; expected {e.shape}" if g.shape != e.shape
                  else _first_wrong(name, g, e, tol))
        hint = hint or CAUSES.get(cause, "").format(N=N) or task.hint
        return _fail(task, detail + (f". {hint[0].upper()}{hint[1:]}" if hint else ""), cause,
                     args)

    if not np.all(np.isfinite(g)):
        return fail("not_finite")
    if task.gradient and g.shape == e.shape and rel_error(g, e) < FD_TOL:
        return _fail(task, f"{name} agrees only to {rel_error(g, e):.0e}, as a finite-difference "
                           "estimate (or float32 arithmetic) does; the task asks for the analytic "
                           "gradient", "finite_difference", args)
    for cause, hint, outs in task.variants(expected, *args) if task.variants else []:
        if _close(g, np.asarray(outs[i], dtype=float), tol):
            return fail(cause, hint)
    if _close(g, e.T, tol):
        return fail("transposed")
    if g.ndim == e.ndim + 1 and g.shape[0] > 1 and _close(g.sum(axis=0), e, tol):
        return fail("bias_not_summed")
    if _close(g, -e, tol):
        return fail("sign")
    if N and (_close(g, e * N, tol) or _close(g, e / N, tol)):
        return fail("batch_scale")
    for j, other in enumerate(expected):
        if j != i and _close(g, np.asarray(other, dtype=float), tol):
            return fail("values", f"that is {task.outputs[j]}: return "
                                  f"{', '.join(task.outputs)} in this order")
    if g.shape != e.shape:
        return fail("shape", "it is summed over every axis; sum over the batch only (axis=0)"
                    if g.ndim == 0 else None)
    return fail("values")


def run_task(name, fn, rng=None, cases=3, extra_cases=()):
    """Run ``fn`` on ``cases`` input sets drawn from ``rng`` (None: fresh entropy, so a
    hard-coded answer fails), then on ``extra_cases`` (argument tuples, e.g. an instructor's).
    Returns the first failing Result, or a passing one; never raises for the learner's bugs."""
    task, rng = TASKS[name], as_rng(rng)
    inputs = task.draw(rng, cases) + [tuple(a) for a in extra_cases]
    for args in inputs:
        expected = task.expected(*args)
        try:
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                args_copy = copy.deepcopy(args)  # a copy: the learner may change the inputs
                got = task.call(fn, *args_copy) if task.call else fn(*args_copy)
        except NotImplementedError as err:
            todo = str(err) or f"fill in {task.function}"
            return _fail(task, f"not implemented yet: {todo}", "error")
        except Exception as err:
            shapes = "" if task.call else ", ".join(
                str(a.shape) for a in args if isinstance(a, np.ndarray))
            return _fail(task, f"{task.function} raised {type(err).__name__}: {err}"
                         + (f" (arrays of shapes {shapes})" if shapes else ""), "error", args)
        try:
            result = task.compare(args, expected, got)
        except (TypeError, ValueError) as err:
            return _fail(task, f"cannot read what {task.function} returned: {err}", "values")
        if not result.passed:
            return result
    return Result(True, f"{name}: correct on {len(inputs)} cases", None)


_RESULTS = {}


class CheckFailed(AssertionError):
    """What ``check(..., raises=True)`` raises for a failed task (nbgrader's autograder tests
    raise AssertionError)."""


VERDICT = {True: "✅ passed", False: "❌ failed"}  # signs with words: not all fonts have the signs


def check(name, fn, raises=None):
    """Check the learner's function ``fn`` on task ``name``: print one line, ``✅ passed`` (to
    stdout) or ``❌ failed`` and the message (to stderr: nbgrader's autograde scores a grade cell with stderr 0), and
    remember it for ``progress()``. Returns the Result (true when passed; a notebook does not
    echo it). Never raises for a wrong or unfinished ``fn``, unless ``raises`` (None: whether the
    environment variable BPCOURSE_CHECK_RAISES is 1), which raises ``CheckFailed``."""
    result = run_task(name, fn) if name in TASKS else Result(
        False, f"{name}: no such task; expected one of {sorted(TASKS)}", "error")
    _RESULTS[name] = result
    print(VERDICT[result.passed] + " " + result.message,
          file=sys.stdout if result.passed else sys.stderr)
    if raises is None:
        raises = os.environ.get("BPCOURSE_CHECK_RAISES") == "1"
    if raises and not result.passed:
        raise CheckFailed(result.message)
    return result


def passed(name):
    """Whether task ``name`` passed its last check in this process (guards cells that use it)."""
    return bool(_RESULTS.get(name))


def tasks_of(notebook):
    """The task names of one exercise notebook such as "04_backprop_matrix", in order."""
    return [t.name for t in TASKS.values() if t.notebook == notebook]


def progress(notebook=None):
    """Print the tasks of ``notebook`` (None: of each notebook with a task checked in this
    process) as ✅ passed, ❌ failed or · not run (words beside the signs, which a machine without
    an emoji font draws as two identical boxes)."""
    books = [notebook] if notebook else sorted({TASKS[n].notebook for n in _RESULTS if n in TASKS})
    names = [n for book in books for n in tasks_of(book)]
    for n in names:
        print(f"{VERDICT[passed(n)] if n in _RESULTS else '·  not run'} {n}")
    print(f"{sum(map(passed, names))} of {len(names)} tasks passed")


# ---- oracles: bplib's layers, losses and engine; finite differences; properties -------------
def _dims(rng, k, edge=None, low=2, high=7):
    """k sizes, the batch N first, no two equal (so no matrix is square by chance); the edge
    "one_row" makes N 1, "width_1" the next size."""
    dims = [int(n) for n in rng.permutation(np.arange(low, high + 1))[:k]]
    dims[0], dims[1] = (1 if edge == "one_row" else dims[0]), (1 if edge == "width_1" else dims[1])
    return dims


def _at_kinks(rng, z):
    """z with about a third of its entries, the first included, exactly 0."""
    z[rng.random(z.shape) < 0.3] = 0.0
    z.flat[0] = 0.0
    return z


def _logits(rng, shape, edge):
    """Random logits; the edge "logits_800" shifts every row by +800 or -800, in turn."""
    z = 3 * rng.standard_normal(shape)
    return z + 800.0 * (-1.0) ** np.arange(shape[0])[:, None] if edge == "logits_800" else z


def _linear(W, b=0.0):
    """A bplib Linear holding W of shape (in, out) and b."""
    lin = Linear(*W.shape, init="zeros")
    lin.W.value[...], lin.b.value[...] = W, b
    return lin


def _run(layers, X, dout=None, y=None, at_a=False):
    """Forward X through bplib layers, backward from ``dout`` (or from the mean softmax
    cross-entropy on labels y); returns dX, the parameters' gradients stay in the layers.
    ``at_a`` re-caches each activation at its own output, so backward uses f'(a): the bug."""
    h = X
    for layer in layers:
        h = layer.forward(h)
        if at_a and not isinstance(layer, Linear):
            layer.forward(h)
    dout = dout if y is None else softmax_cross_entropy(h, y)[1]
    for layer in reversed(layers):
        dout = layer.backward(dout)
    return dout


def _slope(layer, z):
    """f'(z) entry by entry, from an activation layer's backward."""
    return _run([layer], z, np.ones_like(z))


def _mlp(X, y, *params, act=ReLU, at_a=False):
    """(dW1, db1, dW2, ...) of the mean cross-entropy of an MLP with ``act`` after each hidden
    layer."""
    lins = [_linear(W, b) for W, b in zip(params[::2], params[1::2])]
    _run([layer for lin in lins[:-1] for layer in (lin, act())] + lins[-1:], X, y=y, at_a=at_a)
    return tuple(g for lin in lins for g in (lin.W.grad, lin.b.grad))


def _mlp_inputs(n_layers, scale=1.0):
    """(X, y, W1, b1, ...); the edge "kink" zeroes X's first row and half of b1 and b2, whose
    other entries it makes negative, so that z1 and z2 hold exact zeros in that row."""
    def make(rng, edge=None):
        N, *sizes = _dims(rng, n_layers + 2, edge)
        params = [p for m, n in zip(sizes[:-1], sizes[1:]) for p in (
            scale * rng.standard_normal((m, n)) / math.sqrt(m), 0.1 * rng.standard_normal(n))]
        X = rng.standard_normal((N, sizes[0]))
        if edge == "kink":
            X[0] = 0.0
            for b in params[1:4:2]:
                b[...] = -np.abs(b) * (np.arange(b.size) % 2)
        return (X, rng.integers(0, sizes[-1], N), *params)
    return make


def _rule(op, n):
    """Inputs (g, out, *xs) for the engine rule of ``op`` (a key of bplib's ``VJP_RULES``) with
    n inputs, and the oracle: bplib's rule."""
    fn = {"*": operator.mul, "tanh": math.tanh}[op]

    def make(rng, edge=None):
        xs = [float(v) for v in rng.uniform(0.5, 2.0, n) * rng.choice([-1.0, 1.0], n)]
        return (float(rng.standard_normal()), fn(*xs), *xs)
    return make, lambda g, out, *xs: VJP_RULES[op](g, out, *xs)


def _tiny(x, y_true, w1, b1, w2, b2):
    """(dw1, db1, dw2, db2) of (y_true - y_pred)^2 for the one-neuron network, by the engine."""
    p = [Value(v) for v in (w1, b1, w2, b2)]
    ((y_true - (p[2] * (p[0] * x + p[1]).sigmoid() + p[3])) ** 2).backward()
    return tuple(v.grad for v in p)


def _compare_fit(args, expected, got):
    (X, y, lr, steps), task = args, TASKS["fit_line"]
    if not isinstance(got, tuple) or len(got) != 2:
        return _fail(task, "expected a tuple of two numbers, w and b", "arity")
    w, b = (float(np.asarray(v, dtype=float).reshape(-1)[0]) for v in got)
    with np.errstate(all="ignore"):  # a diverged w overflows when squared
        loss, best, start = (mse_loss(v * X + c, y)[0] for v, c in [(w, b), expected, (0, 0)])
    if loss <= best + 1e-6:
        return Result(True, f"fit_line: loss {loss:.4g}, w = {w:.3f}, b = {b:.3f}", None)
    why = (f"It ended above the loss at w = b = 0, {start:.3g}: training diverged. Mean versus "
           "sum? Descent subtracts lr * gradient" if not loss <= start else "Check the gradients "
           "and the update (with bplib layers: zero_grad() every step)")
    return _fail(task, f"loss {loss:.4g} after {steps} steps at lr = {lr} (w = {w:.4g}, b = "
                       f"{b:.4g}); needs <= {best + 1e-6:.6g}. {why}",
                 "threshold" if np.isfinite(loss) else "not_finite")


def _compare_he(args, expected, got):
    (fan_in, fan_out, _seed), task, W = args, TASKS["he_init"], np.asarray(got, dtype=float)
    if W.shape != (fan_in, fan_out):
        return _fail(task, f"W has shape {W.shape}; expected (fan_in, fan_out) = "
                           f"{(fan_in, fan_out)}, one row per input as in X @ W",
                     "transposed" if W.shape == (fan_out, fan_in) else "shape")
    std, target = float(W.std()), expected[0]
    if abs(std / target - 1) < 0.05 and abs(W.mean()) < 5 * target / math.sqrt(W.size):
        return Result(True, f"he_init: std {std:.4f} (target {target:.4f})", None)
    guesses = [(2 / fan_in, "that is the variance 2 / fan_in: take its square root"),
               (math.sqrt(2 / fan_out), "He divides by fan_in, not fan_out"),
               (math.sqrt(1 / fan_in), "He's variance has a 2 for the half ReLU zeroes"),
               (math.sqrt(2 / (fan_in + fan_out)), "that is Xavier's scale")]
    hint = next((hint for guess, hint in guesses if abs(std / guess - 1) < 0.05),
                "expected mean 0 and variance 2 / fan_in")
    return _fail(task, f"W has std {std:.4g} and mean {W.mean():.2g}; {hint}", "values")


def _residual(dout, X, W, b, skip=True, at_a=False):
    """(dX, dW, db) of X + tanh(X W + b) by bplib's Residual; skip=False: the branch alone
    (where ``at_a`` applies)."""
    lin = _linear(W, b)
    layers = [Residual(Sequential(lin, Tanh()))] if skip else [lin, Tanh()]
    return _run(layers, X, dout, at_a=at_a), lin.W.grad, lin.b.grad


def _deep(dout, X, Ws, at_a=False):
    """dX through the layers tanh(h @ W) for W in Ws, by bplib's layers."""
    return (_run([m for W in Ws for m in (_linear(W), Tanh())], X, dout, at_a=at_a),)


# ---- Value graphs as arrays: the grader hands a learner's kernel arrays only ----------------
GRAPH_OPS = ("leaf", "+", "-", "*", "neg", "tanh", "sigmoid")  # the codes in ``ops``
CHAIN = 2000  # nodes in the "chain" edge: deeper than Python's 1,000 nested calls


def _graph_call(fn, data, ops, children, grads=None):
    r"""Build the Value graph the arrays describe, call ``fn(root)`` on it and return what the
    check compares. Node i is ``GRAPH_OPS[ops[i]]`` of the nodes ``children[i]`` (-1: none),
    a leaf holding ``data[i]`` if ``ops[i]`` is 0; the last node is the root; node i is
    labelled "n{i}". Without ``grads`` (topo_order): the nodes fn returned, as indices (-1: not
    a node of the graph; [-2] if it returned no list or tuple). With ``grads`` (engine_backward):
    every node's ``.grad`` after fn ran on the graph whose nodes held ``grads`` before. With
    fn None: the nodes. The grader runs this function's source in the learner's kernel."""
    import sys

    from bplib.engine import Value
    nodes = []
    for i, op in enumerate(ops.tolist()):
        a, b = (nodes[k] if k >= 0 else None for k in children[i].tolist())
        node = (Value(float(data[i])) if op == 0 else a + b if op == 1 else a - b if op == 2
                else a * b if op == 3 else -a if op == 4 else a.tanh() if op == 5
                else a.sigmoid())
        node.label = f"n{i}"
        nodes.append(node)
    if fn is None:
        return nodes
    for node, g in zip(nodes, [] if grads is None else grads.tolist()):
        node.grad = g
    try:
        out = fn(nodes[-1])
    except RecursionError:
        raise RecursionError(
            f"on a graph of {len(nodes)} nodes, more nested calls than Python allows "
            f"({sys.getrecursionlimit()}): walk the graph with a loop and a list as the stack, "
            "not a recursive function") from None
    if grads is not None:
        for node in nodes:
            if not isinstance(node.grad, (int, float)):
                raise TypeError(f"{node.label}.grad is a {type(node.grad).__name__}; expected a "
                                "number")
        return [float(node.grad) for node in nodes]
    if not isinstance(out, (list, tuple)):
        return [-2]
    where = {id(node): i for i, node in enumerate(nodes)}
    return [where.get(id(item), -1) for item in out]


def _graph_edge(data, ops, children, grads=None):
    n = len(ops)
    return ("one_node" if n == 1 else "chain" if n > CHAIN // 2 else "diamond" if n == 5
            else "stale" if grads is not None and np.any(grads) else None)


def _graph_inputs(with_grads):
    """(data, ops, children[, grads]) of a random graph (8 to 16 nodes, nodes used twice among
    them) or of an edge's graph; the edge "stale" presets random gradients."""
    code = {op: i for i, op in enumerate(GRAPH_OPS)}

    def make(rng, edge=None):
        if edge == "one_node":
            rows = [("leaf", -1, -1)]
        elif edge == "chain":
            rows = [("leaf", -1, -1)] + [("tanh", i, -1) for i in range(CHAIN - 1)]
        elif edge == "diamond":
            rows = [("leaf", -1, -1)] * 2 + [("+", 0, 1), ("*", 2, 2), ("+", 3, 2)]
        else:
            rows = [("leaf", -1, -1)] * int(rng.integers(2, 5))
            for _ in range(int(rng.integers(4, 9))):
                op = GRAPH_OPS[int(rng.integers(1, len(GRAPH_OPS)))]
                a, b = (int(k) for k in rng.choice(len(rows), 2, replace=False))
                rows.append((op, a, b if op in "+-*" else -1))  # x * x: the diamond's alone
            used = {k for _, a, b in rows for k in (a, b)}
            unused = [i for i in range(len(rows)) if i not in used]
            last = unused[0]  # every node feeds the root: sum the nodes nothing uses
            for k in unused[1:]:
                rows.append(("+", last, k))
                last = len(rows) - 1
        ops = np.array([code[op] for op, _, _ in rows])
        children = np.array([(a, b) for _, a, b in rows])
        data = np.where(ops == 0, rng.uniform(0.5, 1.5, len(rows)) * rng.choice([-1, 1],
                                                                               len(rows)), 0.0)
        if not with_grads:
            return data, ops, children
        return data, ops, children, (rng.standard_normal(len(rows)) if edge == "stale"
                                     else np.zeros(len(rows)))
    return make


def _describe(nodes, i):
    """'n5 = n3 * n4', 'n2 = tanh(n1)' or 'n0 (a leaf)': node i as the messages name it."""
    node = nodes[i]
    kids = [child.label for child in node._children]
    if not kids:
        return f"{node.label} (a leaf)"
    return f"{node.label} = " + (f" {node.op} ".join(kids) if len(kids) == 2 else
                                 f"-{kids[0]}" if node.op == "neg" else f"{node.op}({kids[0]})")


def _topo_expected(data, ops, children):
    nodes = _graph_call(None, data, ops, children)
    where = {id(node): i for i, node in enumerate(nodes)}
    return (np.array([where[id(node)] for node in topological_order(nodes[-1])]),)


def _compare_order(args, expected, got):
    """Any valid order passes: every node once, each after its inputs."""
    task, nodes = TASKS["topo_order"], _graph_call(None, *args)
    order, n = np.asarray(got).reshape(-1).astype(int), len(nodes)
    fail = lambda text, cause="values": _fail(task, text, cause, args)  # noqa: E731
    if list(order) == [-2]:
        return fail("it returned no list: return a list of the graph's Values", "arity")
    if (order < 0).any():
        return fail(f"item {int(np.argmax(order < 0))} of the list is not a node of the graph: "
                    "list the Value objects themselves")
    counts = np.bincount(order, minlength=n)
    if counts.max() > 1:
        i = int(np.argmax(counts > 1))
        return fail(f"{_describe(nodes, i)} is in the list {counts[i]} times; expected once. A "
                    "node used twice is reached twice: remember the nodes already visited (a set)")
    missing = [i for i in range(n) if not counts[i]]
    if missing:
        leaves = all(not nodes[i]._children for i in missing)
        which = ", all of them leaves (nodes with no inputs)" if leaves else ""
        return fail(f"{len(missing)} of the {n} nodes are missing{which}, e.g. "
                    f"{_describe(nodes, missing[0])}: every node the root depends on, the root and "
                    "the leaves included, belongs in the list", "shape")
    position = np.empty(n, int)
    position[order] = np.arange(n)
    edges = [(i, k) for i in range(n) for k in children_of(args, i)]
    late = [(i, k) for i, k in edges if position[k] > position[i]]
    if not late:
        return Result(True, f"topo_order: correct ({n} nodes)", None)
    if all(position[k] > position[i] for i, k in edges):
        return fail("the order is reversed: each node comes after all of its inputs, the root "
                    "last (backward walks the list from the end)")
    i, k = late[0]
    return fail(f"{_describe(nodes, i)} comes before its input {nodes[k].label}: append a node "
                "only after all of its inputs are in the list")


def children_of(args, i):
    """The inputs of node i of the graph ``args`` describes, as indices."""
    return [int(k) for k in args[2][i] if k >= 0]


def _backward_expected(data, ops, children, grads):
    nodes = _graph_call(None, data, ops, children)
    nodes[-1].backward()
    return (np.array([node.grad for node in nodes]),)


def _compare_grads(args, expected, got):
    task, nodes = TASKS["engine_backward"], _graph_call(None, *args[:3])
    g, e, stale = np.asarray(got, dtype=float).reshape(-1), expected[0], args[3]

    def right(i, offset=0.0):
        return abs(g[i] - offset - e[i]) <= TOL * max(1.0, abs(e[i]))

    if g.shape == e.shape and all(right(i) for i in range(len(e))):
        return Result(True, f"engine_backward: correct ({len(nodes)} nodes)", None)
    fail = lambda text, cause="values": _fail(task, text, cause, args)  # noqa: E731
    if g.shape != e.shape or not np.all(np.isfinite(g)):
        return fail("a .grad is not a finite number", "not_finite")
    root = len(nodes) - 1
    i = next(int(i) for i in reversed(_topo_expected(*args[:3])[0]) if not right(i))
    detail = f"{_describe(nodes, i)}: .grad expected {e[i]:.6g}, got {g[i]:.6g}"
    if stale[i] and right(i, stale[i]):  # its consumers are right: it kept what it held
        return fail(f"{detail}, the gradient plus the {stale[i]:.6g} it held before. Set every "
                    "node's .grad to 0 first")
    if i == root:
        return fail(f"{detail}. Set root.grad = 1 (d root/d root) before passing gradients on")
    inputs = set(children_of(args, root))
    rest = [k for k in range(root) if k not in inputs]
    if not any(g[k] for k in rest) and any(e[k] for k in rest):
        return fail(f"{detail}; the gradients stopped at the root's inputs. Visit the nodes "
                    "outputs first: the topological order reversed" if any(g[k] for k in inputs)
                    else f"{detail}; no gradient got past the root. Set root.grad = 1 before "
                    "walking the order, not after")
    uses = sum(children_of(args, k).count(i) for k in range(len(nodes)))
    if uses > 1:
        return fail(f"{detail}: a node used twice got only one of its gradients ({nodes[i].label} "
                    f"is an input {uses} times). Add each contribution with +=, never =")
    return fail(f"{detail}. {task.hint[0].upper()}{task.hint[1:]}")


def _error_call(fn, a, b):
    """fn(a, b); for a and b of different shapes, [1 if it raised a ValueError, then 1 for each
    of the two shapes its message names] (-1 if it returned). The grader runs its source in the
    learner's kernel."""
    import numpy as np
    if np.shape(a) == np.shape(b):
        return fn(a, b)
    try:
        fn(a, b)
    except ValueError as err:
        said = str(err).replace(" ", "")
        return [1.0] + [float(str(np.shape(x)).replace(" ", "") in said) for x in (a, b)]
    return [-1.0]


def _error_inputs(rng, edge=None):
    """(a, b): random arrays of one shape, max|a| the larger, or an edge's: "one_zero" zeroes a,
    "single" gives two floats, "mismatch" b of shape (M,) beside a (N, M), which numpy would
    broadcast without a word."""
    N, M = _dims(rng, 2)
    a, b = rng.standard_normal((N, M)), rng.standard_normal((N, M))
    b = a + rng.choice([1e-3, 1e-7]) * b if rng.random() < 0.5 and edge is None else b
    if np.abs(a).max() < np.abs(b).max():  # so that dividing by max|b| alone is wrong
        a, b = b, a
    if edge == "single":
        return float(a[0, 0]), float(b[0, 0])
    return {"both_zero": (0 * a, 0 * b), "one_zero": (0 * a, b), "mismatch": (a, b[0])}.get(
        edge, (a, b))


def _error_edge(a, b):
    return ("mismatch" if np.shape(a) != np.shape(b) else "single" if np.ndim(a) == 0 else
            "both_zero" if not np.any(a) and not np.any(b) else
            "one_zero" if not np.any(a) or not np.any(b) else None)


def _compare_error(args, expected, got):
    (a, b), task = args, TASKS["relative_error"]  # analytic, numeric
    fail = lambda text, cause="values": _fail(task, text, cause, args)  # noqa: E731
    got = np.asarray(got, dtype=float)
    if np.shape(a) != np.shape(b):
        if got.tolist() == [1.0, 1.0, 1.0]:
            return Result(True, "relative_error: correct", None)
        shapes = f"arrays of shapes {np.shape(a)} and {np.shape(b)}"
        if got.tolist() == [-1.0]:
            return fail(f"it returned a number for {shapes}, which numpy broadcasts without a "
                        "word: raise a ValueError that names both shapes")
        return fail(f"its ValueError for {shapes} does not name both shapes")
    if got.size != 1:
        return fail(f"it returned {got.size} numbers; expected one", "arity")
    g, e = float(got.reshape(-1)[0]), expected[0]
    if abs(g - e) <= TOL * e or g == e:  # relative: e may be 1e-7 (a passing gradient check)
        return Result(True, "relative_error: correct", None)
    x, y = np.abs(np.asarray(a, dtype=float)), np.abs(np.asarray(b, dtype=float))
    diff = np.abs(np.asarray(a, dtype=float) - np.asarray(b, dtype=float))
    with np.errstate(all="ignore"):
        guesses = [
            (diff.max() / y.max(), "it divides by max|numeric| only: divide by the larger of "
                                   "the two arrays' largest entries, so that swapping them "
                                   "changes nothing"),
            ((diff / (x + y)).max(), "that is the largest entrywise error, which blows up on "
                                     "entries tiny in both; the error is normwise: the largest "
                                     "difference over the largest entry of either"),
            (diff.mean() / max(x.max(), y.max()), "take the largest difference, not the mean"),
            (np.linalg.norm(diff) / max(np.linalg.norm(x), np.linalg.norm(y)), "that uses the "
             "Euclidean norm; the book's error uses the largest entry (max|.|)")]
    if not np.isfinite(g):
        hint = ("0/0: when both are all zeros they agree, and the error is 0 (bplib floors the "
                "denominator at the smallest positive float)" if not x.any() and not y.any()
                else "it is not a number: divide by the larger of the two arrays' largest "
                "entries")
        return fail(f"expected {e:.6g}, got {g}; {hint}", "not_finite")
    hint = next((hint for guess, hint in guesses if abs(g - guess) <= TOL * abs(guess)),
                task.hint)
    return fail(f"expected {e:.6g}, got {g:.6g}; {hint}")


def _per_example(X, y, W, b):
    """(dW_each, db_each, dW, db): each example's gradients of its own loss, by bplib's Linear on
    a batch of that one row, and those of the mean loss over the batch."""
    rows, batch = [_linear(W, b) for _ in X], _linear(W, b)
    for lin, i in zip(rows, range(len(X))):
        _run([lin], X[i:i + 1], y=y[i:i + 1])
    _run([batch], X, y=y)
    return (np.stack([lin.W.grad for lin in rows]), np.stack([lin.b.grad for lin in rows]),
            batch.W.grad, batch.b.grad)


def _per_example_mistakes(e, X, y, W, b):
    N = len(X)
    return [
        ("transposed", "each example's dW has W's shape (D, C): the outer product of x_i "
                       "(D,) and delta_i (C,) is X[:, :, None] * delta[:, None, :]",
         (e[0].transpose(0, 2, 1), *e[1:])),
        ("batch_scale", "an example's gradients are of its own loss, with no 1/N: the mean "
                        "divides by N when it averages them", (e[0] / N, e[1] / N, *e[2:])),
        ("values", "that is the outer product of the sums, (sum of x_i)(sum of delta_i)^T / N; "
                   "dW sums the outer products, X^T delta: multiply, then sum over the batch",
         (e[0], e[1], np.outer(X.sum(axis=0), e[1].sum(axis=0)) / N, e[3]))]


def _rows(*args):
    """N, the rows of the first argument: the batch."""
    return len(args[0])


TASKS = {t.name: t for t in [
    # 01 the forward pass: activations and their derivatives
    Task("sigmoid_grad", "01_forward_pass", "sigmoid_grad",
         lambda rng, edge=None: (3 * rng.standard_normal(_dims(rng, 2, edge)),),
         lambda z: (_slope(Sigmoid(), z),), batch=_rows,
         variants=lambda e, z: [("fprime_of_a", None, (_slope(Sigmoid(), sigmoid(z)),))]),
    Task("tanh_grad", "01_forward_pass", "tanh_grad",
         lambda rng, edge=None: (2 * rng.standard_normal(_dims(rng, 2, edge)),),
         lambda z: (_slope(Tanh(), z),), batch=_rows,
         variants=lambda e, z: [("fprime_of_a", None, (_slope(Tanh(), np.tanh(z)),))]),
    Task("leaky_relu_grad", "01_forward_pass", "leaky_relu_grad",
         lambda rng, edge=None: (
             (lambda z: _at_kinks(rng, z) if edge == "kink" else z)(
                 rng.choice([-1, 1], _dims(rng, 2, edge)) * rng.uniform(0.1, 3)),
             float(rng.uniform(0.01, 0.3))),
         lambda z, alpha: (_slope(LeakyReLU(alpha), z),), batch=_rows, edges=("kink", "one_row"),
         hint="for z <= 0 the slope is alpha"),
    # 02 loss: a stable softmax; softmax cross-entropy and its gradient
    Task("softmax", "02_loss", "softmax",
         lambda rng, edge=None: (_logits(rng, _dims(rng, 2, edge), edge),),
         lambda logits: (softmax(logits),), batch=_rows, edges=("logits_800", "one_row"),
         gradient=False,
         variants=lambda e, logits: [("values", "normalise each row (axis=1, keepdims=True), "
                                                "not each column", (softmax(logits.T).T,))]),
    Task("softmax_ce", "02_loss", "softmax_ce",
         lambda rng, edge=None: (lambda N, C: (_logits(rng, (N, C), edge),
                                               rng.integers(0, C, N)))(*_dims(rng, 2, edge, 3)),
         softmax_cross_entropy, outputs=("loss", "dlogits"), batch=_rows,
         edges=("logits_800", "one_row"),
         variants=lambda e, z, y: [("values", "subtract 1 at each row's label: (p - Y) / N",
                                    (e[0], softmax(z) / len(z)))]),
    # 03 the chain rule: by hand, and backward rules of the scalar engine
    Task("tiny_backprop", "03_chain_rule", "tiny_backprop",
         lambda rng, edge=None: tuple(float(v) for v in rng.uniform(-2, 2, 6)), _tiny,
         outputs=("dw1", "db1", "dw2", "db2"), edges=()),
    Task("engine_mul_rule", "03_chain_rule", "mul_rule", *_rule("*", 2),
         outputs=("grad_a", "grad_b"), edges=(),
         variants=lambda e, g, out, a, b: [("values", "the gradients are swapped: d(a*b)/da is b",
                                            e[::-1])]),
    Task("engine_tanh_rule", "03_chain_rule", "tanh_rule", *_rule("tanh", 1),
         outputs=("grad_a",), as_tuple=True, edges=(),
         variants=lambda e, g, out, a: [("fprime_of_a", "that is tanh'(out); 1 - out**2 is "
                                         "tanh'(a), the slope at the input",
                                         VJP_RULES["tanh"](g, math.tanh(out), out))]),
    Task("topo_order", "03_chain_rule", "topological_order", _graph_inputs(False),
         _topo_expected, outputs=("order",), compare=_compare_order, call=_graph_call,
         edges=("diamond", "chain", "one_node"), edge_of=_graph_edge, gradient=False,
         hint="depth first: put a node in the list after all of its inputs"),
    Task("engine_backward", "03_chain_rule", "backward", _graph_inputs(True),
         _backward_expected, outputs=("grads",), compare=_compare_grads, call=_graph_call,
         edges=("diamond", "stale", "chain"), edge_of=_graph_edge, points=2,
         hint="zero every .grad, set root.grad = 1, then for each node of the topological order "
              "reversed add each of RULES[node.op]'s gradients to its input's .grad"),
    # 04 backprop in matrix form: one layer, two and three layers, numerical gradients
    Task("linear_backward", "04_backprop_matrix", "linear_backward",
         lambda rng, edge=None: (lambda N, D, M: (
             rng.standard_normal((N, M)), rng.standard_normal((N, D)),
             rng.standard_normal((D, M))))(*_dims(rng, 3, edge)),
         lambda dout, X, W: (lambda lin: (_run([lin], X, dout), lin.W.grad, lin.b.grad))(
             _linear(W)),
         outputs=("dX", "dW", "db"), batch=lambda dout, X, W: len(X)),
    Task("mlp2_backward", "04_backprop_matrix", "mlp2_backward", _mlp_inputs(2, scale=2.0),
         lambda *args: _mlp(*args, act=Sigmoid), outputs=("dW1", "db1", "dW2", "db2"),
         batch=_rows,
         variants=lambda e, *args: [("fprime_of_a", None, _mlp(*args, act=Sigmoid, at_a=True))]),
    Task("mlp3_backward", "04_backprop_matrix", "mlp3_backward", _mlp_inputs(3), _mlp,
         outputs=("dW1", "db1", "dW2", "db2", "dW3", "db3"), batch=_rows,
         edges=("kink", "one_row"), points=2),
    Task("numerical_grad", "04_backprop_matrix", "numerical_dW",
         lambda rng, edge=None: (lambda N, D, C: (
             rng.standard_normal((D, C)), rng.standard_normal((N, D)), rng.integers(0, C, N),
             float(rng.choice([1e-3, 1e-4]))))(*_dims(rng, 3, edge)),
         lambda W, X, y, eps: (numerical_gradient(
             lambda W_: softmax_cross_entropy(X @ W_, y)[0], W.copy(), eps=eps),),
         outputs=("dW",), batch=lambda W, X, y, eps: len(X), tol=1e-6, gradient=False,
         variants=lambda e, *args: [
             ("values", "divide by 2 * eps, the distance from W - eps to W + eps", (2 * e[0],))],
         hint="central differences (f(x + eps) - f(x - eps)) / (2 eps), one entry at a time, "
              "putting x[i] back after each"),
    Task("relative_error", "04_backprop_matrix", "relative_error", _error_inputs,
         lambda a, b: (rel_error(a, b) if np.shape(a) == np.shape(b) else math.nan,),
         compare=_compare_error, call=_error_call, gradient=False, edge_of=_error_edge,
         edges=("both_zero", "one_zero", "single", "mismatch"),
         hint="the largest difference over the largest entry of either array"),
    Task("per_example_grads", "04_backprop_matrix", "per_example_grads",
         lambda rng, edge=None: (lambda N, D, C: (
             rng.standard_normal((N, D)), rng.integers(0, C, N), rng.standard_normal((D, C)),
             0.1 * rng.standard_normal(C)))(*_dims(rng, 3, edge)),
         _per_example, outputs=("dW_each", "db_each", "dW", "db"), variants=_per_example_mistakes,
         batch=_rows, points=2),
    # 05 training: the loop on y = 2x + 1
    Task("fit_line", "05_training", "fit_line",
         lambda rng, edge=None: (
             *data.line(int(rng.integers(40, 101)), 0.1, int(rng.integers(2**31))), 0.1, 200),
         lambda X, y, lr, steps: tuple(np.linalg.lstsq(np.column_stack([X, np.ones_like(X)]),
                                                       y[:, 0], rcond=None)[0]),
         compare=_compare_fit, edges=(), points=2),
    # 06 vanishing gradients: He initialisation; a product of Jacobians
    Task("he_init", "06_vanishing_gradients", "he_normal",
         lambda rng, edge=None: tuple(int(n) for n in rng.integers([200, 30, 0], [400, 80, 2**31])),
         lambda fan_in, fan_out, seed: (math.sqrt(2 / fan_in),), compare=_compare_he, edges=()),
    Task("deep_tanh_backward", "06_vanishing_gradients", "deep_tanh_backward",
         lambda rng, edge=None: (lambda N, d, L: (
             rng.standard_normal((N, d)), rng.standard_normal((N, d)),
             rng.standard_normal((L, d, d)) / math.sqrt(d)))(*_dims(rng, 3, edge, 3)),
         _deep, outputs=("dX",), batch=_rows,
         variants=lambda e, *args: [("fprime_of_a", None, _deep(*args, at_a=True))]),
    # 07 residual connections: the input used twice
    Task("residual_backward", "07_resnet_skips", "residual_backward",
         lambda rng, edge=None: (lambda N, d: (
             rng.standard_normal((N, d)), rng.standard_normal((N, d)),
             rng.standard_normal((d, d)) / math.sqrt(d), 0.1 * rng.standard_normal(d)))(
                 *_dims(rng, 2, edge, 3)),
         _residual, outputs=("dX", "dW", "db"), batch=_rows,
         variants=lambda e, dout, X, W, b: [
             ("values", "X is used twice: add dout (the skip)", _residual(dout, X, W, b, False)),
             ("values", "add what comes back through the branch", (dout, *e[1:])),
             ("fprime_of_a", None, (lambda d: (dout + d[0], *d[1:]))(
                 _residual(dout, X, W, b, skip=False, at_a=True)))]),
]}
