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
(numpy arrays, floats and ints), more if the task has n or more edges; the learner's function is
called as ``fn(*args)``, or as ``task.call(fn, *args)`` if the task has a ``call`` (whose source
the grader runs in the learner's kernel), and returns an array or a number, or a tuple of them
(lists are not tuples); ``task.compare(args, task.expected(*args), got)`` returns a ``Result``
and is pure.
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
from bplib.conv import Conv1d
from bplib.layers import (BatchNorm1d, LeakyReLU, Linear, Parameter, ReLU, Residual, Sequential,
                          Sigmoid, Tanh, sigmoid)
from bplib.losses import mse_loss, softmax, softmax_cross_entropy
from bplib.optim import SGD, clip_grad_norm
from bplib.rnn import RNN

CAUSES = {
    "shape": "a gradient has the shape of the thing it is the gradient of",
    "transposed": "it is the transpose of the answer: write down the shapes, they leave one choice",
    "sign": "the sign is flipped: check each minus (y_hat - y, not y - y_hat)",
    "batch_scale": "off by the batch size N={N}: mean versus sum? A mean puts 1/N in the gradient",
    "fprime_of_a": "it matches f'(a), the slope at the activation: take f' at the pre-activation z",
    "bias_not_summed": "sum it over the batch (axis=0): the bias was added to every row",
    "not_finite": "it holds nan or inf: an overflow? (exp of a large number: subtract the max)",
    "batch_stats": "forgot the batch statistics depend on the input: that is gamma * dout / "
                   "sigma, as if the batch mean and variance were constants; they move with every "
                   "x_i, which adds two terms to dX (chapter 6, Batch norm's backward pass)",
    "n_minus_1": "that divides by N - 1: batch norm's variance is the biased one, a mean over N "
                 "(np.var's default)",
    "no_gamma": "gamma is missing: the gradient reaches x_hat as dx_hat = gamma * dout",
    "in_place": "return new arrays: w - lr * v makes one, w -= lr * v writes over the caller's",
}
# The cases after the first, random one, by name: what inputs a right answer must survive.
EDGES = {
    "one_row": "when the batch has one row",
    "width_1": "when a width is 1",
    "kink": "where an input is exactly 0, at the kink (the course takes the slope there from the "
            "left, as bplib does: ReLU'(0) = 0, LeakyReLU'(0) = alpha)",
    "logits_800": "when logits reach +-800",
    "one_step": "when the sequence has one step (T = 1)",
    "all_zero": "when every gradient is zero",
    "below_limit": "when the global norm is below max_norm (nothing to clip)",
    "two_rows": "when the batch has two rows",
    "constant_column": "when a column of X is constant (variance 0: only eps keeps sigma above 0)",
    "first_step": "on the first step (every velocity 0)",
    "momentum_0": "when momentum is 0",
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
    to ``compare_outputs``. ``keeps`` names the arguments when the function must leave them alone:
    an answer that changes one in place, or returns an array sharing memory with one, fails (in
    the check; the grader passes copies through files and cannot see it). ``call(fn, *args)``,
    if given, calls the learner's ``fn`` on something the arrays describe and returns arrays; the
    grader runs its source in the learner's kernel, so it imports what it uses."""

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
    keeps: tuple = ()  # the arguments' names, when fn must leave them alone and share no memory
    call: Callable | None = None  # call(fn, *args) runs fn: on a Value graph (``_graph_call``)
    edge_of: Callable | None = None  # edge_of(*args): the case's edge, for inputs not arrays

    def __post_init__(self):
        if self.compare is None:
            self.compare = lambda args, expected, got: compare_outputs(self, args, expected, got)

    def draw(self, rng, n):
        """n argument tuples: a random case, then one case per edge (in turn, if n > 3). For n > 1
        at least one more than there are edges, so that every edge is tried."""
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
    norm = math.sqrt(sum(float(np.sum(a**2)) for a in floats))
    found = [edge for edge, there in [
        ("logits_800", any(np.abs(a).max() > LARGEST_EXP for a in floats)),
        ("kink", any((a == 0).any() for a in floats)),
        ("one_row", task.batch is not None and task.batch(*args) == 1),
        ("one_step", any(a.ndim == 3 and a.shape[1] == 1 for a in arrays)),
        ("width_1", any(1 in a.shape for a in arrays)),
        ("all_zero", bool(floats) and norm == 0),
        ("below_limit", isinstance(args[-1], float) and norm < args[-1]),
        ("two_rows", task.batch is not None and task.batch(*args) == 2),
        ("constant_column", any(a.ndim == 2 and (np.ptp(a, axis=0) == 0).any() for a in floats)),
        ("first_step", any(not a.any() for a in floats)),
        ("momentum_0", any(isinstance(a, float) and a == 0 for a in args))]
        if there and edge in task.edges]
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
            given = copy.deepcopy(args)  # a copy: the learner may change the inputs
            with warnings.catch_warnings(), np.errstate(all="ignore"):
                warnings.simplefilter("ignore")
                got = task.call(fn, *given) if task.call else fn(*given)
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
        if result.passed and task.keeps:
            result = _kept(task, args, given, got)
        if not result.passed:
            return result
    return Result(True, f"{name}: correct on {len(inputs)} cases", None)


def _kept(task, args, given, got):
    """A failing Result if ``fn`` changed an argument it was ``given`` (``args`` holds the
    originals) or returned an array that shares memory with one; else a passing one."""
    for name, before, after in zip(task.keeps, args, given):
        if isinstance(before, np.ndarray) and not np.array_equal(before, after):
            i = np.unravel_index(np.argmax(before != after), before.shape)
            where = f"{name}[{', '.join(str(int(k)) for k in i)}]"
            return _fail(task, f"changed the caller's {name} in place ({where} was "
                               f"{before[i]:.6g}, is now {after[i]:.6g}). "
                               f"{CAUSES['in_place'][0].upper()}{CAUSES['in_place'][1:]}",
                         "in_place", args)
    outputs = zip(task.outputs, got if isinstance(got, tuple) else (got,))
    for out_name, out in outputs:
        for array in out if isinstance(out, (list, tuple)) else [out]:
            for name, arg in zip(task.keeps, given):
                if isinstance(array, np.ndarray) and isinstance(arg, np.ndarray) \
                        and np.may_share_memory(array, arg):
                    return _fail(task, f"{out_name} shares memory with the caller's {name}: when "
                                       f"the caller changes {name} (zero_grad() fills gradients "
                                       f"with 0), your {out_name} changes with it. Return a new "
                                       "array (g.copy(), or momentum * v + g)", "in_place", args)
    return Result(True, f"{task.name}: correct", None)


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


def _rnn(dout, X, W_xh, W_hh, b_h, bug=None):
    """(dX, dW_xh, dW_hh, db_h) of a tanh RNN from h_0 = 0, by bplib's RNN. The classic mistakes,
    for the diagnosis: "fprime_of_a" and "at_z" take tanh' as 1 - tanh(h_t)^2 and 1 - z_t^2 (the
    cache changed before backward: dX and dW_xh come out as with the mistake); "no_carry" sends
    nothing from h_t back to h_{t-1} (W_hh zero during backward); "last" and "first" give each
    weight one step's share only (step T's, or step 1's: = for += in a backward loop)."""
    rnn = RNN(*W_xh.shape, init="zeros")
    for p, value in zip(rnn.parameters(), (W_xh, W_hh, b_h)):
        p.value[...] = value
    H = rnn.forward(X)
    if bug in ("fprime_of_a", "at_z"):
        rnn.cache = (X, rnn.cache[1], np.tanh(H) if bug == "fprime_of_a" else np.arctanh(H))
    if bug == "no_carry":
        rnn.W_hh.value[...] = 0.0
    dX, grads = rnn.backward(dout), [p.grad for p in rnn.parameters()]
    if bug in ("last", "first"):  # step t's share, from bplib's dL/dh_t
        t = -1 if bug == "last" else 0
        delta = rnn.dH[:, t] * (1.0 - H[:, t] ** 2)
        h_prev = H[:, -2] if bug == "last" and H.shape[1] > 1 else np.zeros_like(H[:, 0])
        grads = [X[:, t].T @ delta, h_prev.T @ delta, delta.sum(axis=0)]
    return (dX, *grads)


def _rnn_inputs(rng, edge=None):
    """(dout, X, W_xh, W_hh, b_h) with N, T, n_in, n_h all different; the edges "one_row" and
    "one_step" make N and T 1."""
    N, T, n_in, n_h = _dims(rng, 4, "one_row" if edge == "one_row" else None)
    T = 1 if edge == "one_step" else T
    return (rng.standard_normal((N, T, n_h)), rng.standard_normal((N, T, n_in)),
            rng.standard_normal((n_in, n_h)) / math.sqrt(n_in),
            0.9 * rng.standard_normal((n_h, n_h)) / math.sqrt(n_h), 0.1 * rng.standard_normal(n_h))


def _clip(*args, per_array=False):
    """The gradients (all but the last argument) clipped to the global norm max_norm (the last)
    by bplib; ``per_array``: each by its own norm, the mistake."""
    *grads, max_norm = args
    params = [Parameter(np.zeros_like(g)) for g in grads]
    for p, g in zip(params, grads):
        p.grad[...] = g
    for group in ([[p] for p in params] if per_array else [params]):
        clip_grad_norm(group, max_norm)
    return tuple(p.grad for p in params)


def _clip_inputs(rng, edge=None):
    """(dW_xh, dW_hh, db_h, max_norm): a global norm 3 to 10 times max_norm; the edges
    "below_limit" and "all_zero" make it half of max_norm and 0."""
    n_in, n_h = _dims(rng, 2, None, 2, 6)
    grads = [rng.standard_normal(shape) for shape in ((n_in, n_h), (n_h, n_h), (n_h,))]
    max_norm = float(rng.uniform(0.5, 2.0))
    norm = math.sqrt(sum(float(np.sum(g**2)) for g in grads))
    target = {"below_limit": 0.5, "all_zero": 0.0}.get(edge, float(rng.uniform(3, 10))) * max_norm
    return (*(g * target / norm for g in grads), max_norm)


def _clip_variants(expected, *args):
    """Classic mistakes of clipping by the global norm."""
    *grads, max_norm = args
    norm = math.sqrt(sum(float(np.sum(g**2)) for g in grads))
    squares = norm**2
    return [("values", "each array was clipped by its own norm: the global norm is the square "
                       "root of the sum of the squares of the entries of ALL the arrays",
             _clip(*args, per_array=True)),
            ("values", "the factor is max_norm / norm, not norm / max_norm",
             tuple(g * norm / max_norm for g in grads)),
            ("values", "the norm is the square root of the sum of squares",
             tuple(g * max_norm / squares for g in grads))]


def _conv_weight_grad(X, delta, batch=None):
    """dW of bplib's Conv1d for X of shape (N, C_in, L) and delta of shape (N, C_out, T), with
    K = L - T + 1; ``batch``: only the first examples (the mistake of not summing over n)."""
    X, delta = (X, delta) if batch is None else (X[:batch], delta[:batch])
    conv = Conv1d(X.shape[1], delta.shape[1], X.shape[2] - delta.shape[2] + 1, init="zeros")
    conv.forward(X)
    conv.backward(delta)
    return (conv.W.grad,)


def _conv_inputs(rng, edge=None):
    """(X, delta) with N, C_in, C_out, K and T all different; the edges "one_row" and "width_1"
    make N and C_in 1."""
    N, C_in, C_out, K, T = _dims(rng, 5, edge, 2, 8)
    return rng.standard_normal((N, C_in, T + K - 1)), rng.standard_normal((N, C_out, T))
# ---- 05: a classifier trained by the learner's loop; one step of momentum --------------------
# Measured on 30 seeds (lr in [0.5, 0.9], 300 steps): a pure-numpy loop and bplib's layers differ
# by 2e-16 at step 0, growing to 1.4e-14 (relative) in the loss and 6e-14 in the parameters; the
# mildest mistake, biases never updated, departs by 5e-3 at step 1. On 300 draws of these inputs
# the reference reached 75% to 98% held-out accuracy (chance: 25% or 33%).
LOSS_TOL = 1e-10  # relative, at every step, and for the final parameters (normwise)
ACCURACY_MIN = 0.6
SPIRAL_NOISE, HELD_OUT_SEED = 0.2, 2**31 + 7  # training seeds are drawn below 2**31


def _classifier_inputs(rng, edge=None):
    """(X, y, W1, b1, W2, b2, lr, steps): a spiral of C = 3 or 4 arms, a hidden layer of 12 to 24
    ReLU units, He-scaled weights, small biases, lr in [0.5, 0.9] (never 1: lr**2 != lr)."""
    C, H = int(rng.integers(3, 5)), int(rng.integers(12, 25))
    X, y = data.spirals(int(rng.integers(40, 61)), C, SPIRAL_NOISE, int(rng.integers(2**31)))
    return (X, y, rng.standard_normal((2, H)), 0.1 * rng.standard_normal(H),
            rng.standard_normal((H, C)) * math.sqrt(2 / H), 0.1 * rng.standard_normal(C),
            float(rng.uniform(0.5, 0.9)), 300)


def _train(X, y, W1, b1, W2, b2, lr, steps, biases=True):
    """(losses, W1, b1, W2, b2) of full-batch gradient descent on the mean softmax cross-entropy
    of X -> Linear -> ReLU -> Linear, by bplib's layers; ``biases=False`` never updates b1, b2."""
    lin1, relu, lin2 = _linear(W1, b1), ReLU(), _linear(W2, b2)
    params, losses = [lin1.W, lin1.b, lin2.W, lin2.b], []
    for _ in range(steps):
        for p in params:
            p.grad.fill(0.0)
        loss, dout = softmax_cross_entropy(lin2.forward(relu.forward(lin1.forward(X))), y)
        losses.append(loss)
        lin1.backward(relu.backward(lin2.backward(dout)))
        for p in params if biases else params[::2]:
            p.value -= lr * p.grad
    return (np.array(losses), *(p.value for p in params))


def _training_mistake(args, losses, step):
    """(cause, hint) of the classic mistake whose loss curve the learner's ``losses`` follow,
    from the step where they depart, or ("values", advice)."""
    X, y, W1, b1, W2, b2, lr, steps = args
    N = len(X)
    if step == 0:
        if abs(losses[0] / _train(*args[:7], 1)[0][0] - N) < 1e-6 * N:
            return "batch_scale", f"the loss is a sum over the N={N} points; take the mean"
        return "values", ("the loss at the initial parameters is already off: check the forward "
                          "pass (ReLU after the first layer only) and the loss, the mean of "
                          "-log p at each point's label")
    mistakes = [("no_update", "the parameters never change: update them every step", 0.0, True),
                ("sign", "the loss grows: descent subtracts lr * gradient", -lr, True),
                ("lr_twice", "the learning rate is applied twice (lr * lr * gradient)", lr**2,
                 True),
                ("lr_twice", "every step goes twice as far: is the update applied twice?", 2 * lr,
                 True),
                ("batch_scale", CAUSES["batch_scale"].format(N=N), lr * N, True),
                ("bias_frozen", "the biases never change: update b1 and b2 too", lr, False)]
    for cause, hint, rate, biases in mistakes:  # each departs at this step by its own amount
        if np.isclose(losses[step], _train(*args[:6], rate, step + 1, biases)[0][step],
                      rtol=1e-6, atol=0.0):
            return cause, hint
    return "values", ("check the backward pass: delta2 = (P - Y) / N, dW2 = A1.T @ delta2, "
                      "db2 = delta2.sum(axis=0), delta1 = (delta2 @ W2.T) * (Z1 > 0), and compute "
                      "every gradient before changing any parameter")


def _compare_training(args, expected, got):
    task, steps, names = TASKS["train_classifier"], args[7], TASKS["train_classifier"].outputs
    if not isinstance(got, tuple) or len(got) != len(names):
        n = f"{len(got)} values" if isinstance(got, tuple) else f"a {type(got).__name__}"
        return _fail(task, f"returned {n}; expected a tuple of 5: {', '.join(names)}", "arity")
    got = [np.asarray(g, dtype=float) for g in got]
    losses, want = got[0], expected[0]
    if losses.shape != want.shape:
        return _fail(task, f"losses has shape {losses.shape}; expected ({steps},), the loss of "
                           "each step's forward pass, before its update", "shape")
    with np.errstate(all="ignore"):
        off = ~(np.abs(losses - want) <= LOSS_TOL * np.abs(want))
        if off.any():
            step = int(np.argmax(off))
            cause, hint = _training_mistake(args, losses, step)
            return _fail(task, f"the loss departs from the reference at step {step}: expected "
                               f"{want[step]:.10g}, got {losses[step]:.10g}. {hint[0].upper()}"
                               f"{hint[1:]}", cause)
    for name, g, e in zip(names[1:], got[1:], expected[1:]):
        if g.shape != e.shape:
            return _fail(task, f"{name} has shape {g.shape}; expected {e.shape}", "shape")
        if not _close(g, e, LOSS_TOL):
            return _fail(task, f"every loss agrees, the final parameters do not: "
                               f"{_first_wrong(name, g, e, LOSS_TOL)}. Return them after the "
                               "last update", "values")
    X_test, y_test = data.spirals(100, got[4].size, SPIRAL_NOISE, HELD_OUT_SEED)
    logits = np.maximum(X_test @ got[1] + got[2], 0.0) @ got[3] + got[4]
    accuracy = float(np.mean(logits.argmax(axis=1) == y_test))
    if accuracy < ACCURACY_MIN:
        return _fail(task, f"held-out accuracy {accuracy:.1%}; needs {ACCURACY_MIN:.0%}",
                     "threshold")
    return Result(True, f"train_classifier: loss {want[0]:.3f} -> {want[-1]:.3f} in {steps} "
                        f"steps, held-out accuracy {accuracy:.1%}", None)


def _momentum_inputs(rng, edge=None):
    """(params, grads, velocities, lr, momentum): k arrays of shape (m, n) stacked in each."""
    shape = _dims(rng, 3, low=2, high=6)
    velocities = np.zeros(shape) if edge == "first_step" else rng.standard_normal(shape)
    return (rng.standard_normal(shape), rng.standard_normal(shape), velocities,
            float(rng.uniform(0.01, 0.5)), 0.0 if edge == "momentum_0" else
            float(rng.uniform(0.5, 0.95)))


def _momentum(params, grads, velocities, lr, momentum):
    """(new params, new velocities) of one step of bplib's SGD; with momentum 0, where SGD
    keeps no velocity, the new velocity is g (= 0 * v + g)."""
    ps = [Parameter(w) for w in params]
    for p, g in zip(ps, grads):
        p.grad[...] = g
    sgd = SGD(ps, lr, momentum=momentum)
    for v, v0 in zip(sgd.velocity, velocities):
        v[...] = v0
    sgd.step()
    return np.array([p.value for p in ps]), np.array(sgd.velocity if momentum else grads)


def _momentum_mistakes(e, params, grads, velocities, lr, momentum):
    inside = momentum * velocities + lr * grads
    return [("velocity", "those are the velocities you were given: return the new ones, "
                         "momentum * v + g (the next step needs them)", (e[0], velocities)),
            ("velocity", "that is plain gradient descent: v = momentum * v + g keeps a share of "
                         "the old velocity", (params - lr * grads, grads)),
            ("lr_inside", "the learning rate went inside v (v = momentum * v + lr * g, w - v); "
                          "bplib's SGD keeps it out: v = momentum * v + g, w - lr * v",
             (params - inside, inside)),
            ("values", "step with the new velocity: first v = momentum * v + g, then w - lr * v",
             (params - lr * velocities, e[1])),
            ("sign", None, (params + lr * e[1], e[1]))]


# ---- 06: batch norm's backward pass -----------------------------------------------------------
def _batchnorm_inputs(rng, edge=None):
    """(dout, X, gamma, beta, eps), X of shape (N, n) with columns of their own offset and scale;
    the edges: N = 2, n = 1, or one constant column. With two rows x_hat is +-1 up to eps, and dX
    shrinks to the size of eps / sigma^2, where correct answers differ by round-off (measured on 30
    cases: 6e-11 at eps = 1e-5, 3e-15 at eps = 0.1): that edge takes eps = 0.1."""
    N, n = _dims(rng, 2, "width_1" if edge == "width_1" else None, low=3, high=8)
    N = 2 if edge == "two_rows" else N
    X = rng.uniform(-2, 2, n) + rng.uniform(0.5, 3, n) * rng.standard_normal((N, n))
    if edge == "constant_column":  # a multiple of 1/4: the mean is exact, the variance 0
        X[:, rng.integers(n)] = rng.integers(-8, 9) / 4
    eps = 0.1 if edge == "two_rows" else float(rng.choice([1e-5, 1e-3]))
    return (rng.standard_normal((N, n)), X, rng.uniform(0.5, 2.0, n) * rng.choice([-1, 1], n),
            rng.standard_normal(n), eps)


def _batchnorm(dout, X, gamma, beta, eps, training=True):
    """(dX, dgamma, dbeta) by bplib's BatchNorm1d, in training mode (or, ``training=False``, with
    this batch's statistics held fixed as the running ones)."""
    bn = BatchNorm1d(X.shape[1], eps=eps)
    bn.gamma.value[...], bn.beta.value[...] = gamma, beta
    bn.running_mean, bn.running_var = X.mean(axis=0), X.var(axis=0)
    bn.train(training).forward(X)
    return bn.backward(dout), bn.gamma.grad, bn.beta.grad


def _batchnorm_mistakes(e, dout, X, gamma, beta, eps):
    N, ones = len(X), np.ones_like(gamma)
    sigma = np.sqrt(X.var(axis=0) + eps)
    x_hat, dx_hat = (X - X.mean(axis=0)) / sigma, gamma * dout
    var_term = x_hat * (dx_hat * x_hat).mean(axis=0) / sigma
    c = math.sqrt(N / (N - 1))  # the unbiased variance is N / (N - 1) times the biased one
    unbiased = _batchnorm(dout, X, gamma / c, beta, eps / c**2)
    return [("batch_stats", None, _batchnorm(dout, X, gamma, beta, eps, training=False)),
            ("batch_stats", "the batch mean depends on the input too: subtract the batch mean of "
                            "dx_hat", (e[0] + dx_hat.mean(axis=0) / sigma, *e[1:])),
            ("batch_stats", "the batch variance depends on the input too: subtract x_hat times "
                            "the batch mean of dx_hat * x_hat", (e[0] + var_term, *e[1:])),
            ("n_minus_1", None, (unbiased[0], unbiased[1] / c, unbiased[2])),
            ("n_minus_1", None, (e[0] + var_term - var_term * N / (N - 1), *e[1:])),
            ("no_gamma", None, (_batchnorm(dout, X, ones, beta, eps)[0], *e[1:])),
            ("values", "dgamma sums dout * x_hat, the normalised input, not dout * X",
             (e[0], (dout * X).sum(axis=0), e[2])),
            ("values", "a constant column still has a gradient: its x_hat is 0, but dX there is "
                       "gamma * (dout - mean(dout)) / sqrt(eps)",
             (np.where(X.var(axis=0) > 0, e[0], 0.0), *e[1:]))]
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
    # 05 training: the loop on y = 2x + 1; a classifier's loop; a momentum step
    Task("fit_line", "05_training", "fit_line",
         lambda rng, edge=None: (
             *data.line(int(rng.integers(40, 101)), 0.1, int(rng.integers(2**31))), 0.1, 200),
         lambda X, y, lr, steps: tuple(np.linalg.lstsq(np.column_stack([X, np.ones_like(X)]),
                                                       y[:, 0], rcond=None)[0]),
         compare=_compare_fit, edges=(), points=2),
    Task("train_classifier", "05_training", "train_classifier", _classifier_inputs, _train,
         outputs=("losses", "W1", "b1", "W2", "b2"), compare=_compare_training, edges=(),
         points=2),
    Task("momentum_step", "05_training", "momentum_step", _momentum_inputs, _momentum,
         outputs=("new_params", "new_velocities"), variants=_momentum_mistakes, gradient=False,
         edges=("first_step", "momentum_0"),
         keeps=("params", "grads", "velocities", "lr", "momentum")),
    # 06 vanishing gradients: He initialisation; a product of Jacobians; batch norm's backward
    Task("he_init", "06_vanishing_gradients", "he_normal",
         lambda rng, edge=None: tuple(int(n) for n in rng.integers([200, 30, 0], [400, 80, 2**31])),
         lambda fan_in, fan_out, seed: (math.sqrt(2 / fan_in),), compare=_compare_he, edges=()),
    Task("deep_tanh_backward", "06_vanishing_gradients", "deep_tanh_backward",
         lambda rng, edge=None: (lambda N, d, L: (
             rng.standard_normal((N, d)), rng.standard_normal((N, d)),
             rng.standard_normal((L, d, d)) / math.sqrt(d)))(*_dims(rng, 3, edge, 3)),
         _deep, outputs=("dX",), batch=_rows,
         variants=lambda e, *args: [("fprime_of_a", None, _deep(*args, at_a=True))]),
    Task("batchnorm_backward", "06_vanishing_gradients", "batchnorm_backward", _batchnorm_inputs,
         _batchnorm, outputs=("dX", "dgamma", "dbeta"), variants=_batchnorm_mistakes,
         batch=_rows, edges=("two_rows", "width_1", "constant_column"), points=2),
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
    # 08 beyond the basics: backpropagation through time, gradient clipping, convolution
    Task("rnn_backward", "08_beyond", "rnn_backward", _rnn_inputs, _rnn,
         outputs=("dX", "dW_xh", "dW_hh", "db_h"), batch=lambda dout, X, *_: len(X),
         edges=("one_step", "one_row"), points=2,
         variants=lambda e, *args: [
             ("values", "that is step T's share only: a weight used at every step gets the sum "
                        "of its shares over all steps", _rnn(*args, bug="last")),
             ("values", "that is step 1's share only: add each step's share (+=) instead of "
                        "assigning it", _rnn(*args, bug="first")),
             ("values", "nothing flows from h_t back into h_{t-1}: dL/dh_{t-1} is dout[:, t-1] "
                        "plus delta_t @ W_hh.T", _rnn(*args, bug="no_carry")),
             ("fprime_of_a", "that takes tanh' as 1 - tanh(h_t)**2: h_t is tanh's output "
                             "already, so tanh'(z_t) = 1 - h_t**2", _rnn(*args, bug="fprime_of_a")),
             ("fprime_of_a", "1 - z_t**2 is not tanh'(z_t): that is 1 - tanh(z_t)**2 = 1 - h_t**2",
              _rnn(*args, bug="at_z"))]),
    Task("clip_grad_norm", "08_beyond", "clip_grad_norm", _clip_inputs, _clip,
         outputs=("dW_xh", "dW_hh", "db_h"), edges=("below_limit", "all_zero"), gradient=False,
         variants=_clip_variants,
         hint="one factor for all arrays: min(1, max_norm / norm), with norm the square root of "
              "the sum of the squares of every entry of every array"),
    Task("conv1d_weight_grad", "08_beyond", "conv1d_weight_grad", _conv_inputs,
         _conv_weight_grad, outputs=("dW",), batch=lambda X, delta: len(X),
         variants=lambda e, X, delta: [
             ("values", "that is the kernel flipped: dW[o, c, k] pairs delta[n, o, t] with "
                        "X[n, c, t + k], a correlation like the forward pass",
              (e[0][:, :, ::-1],)),
             ("transposed", "dW has W's shape (C_out, C_in, K): o first, then c",
              (e[0].transpose(1, 0, 2),)),
             ("values", "sum over the examples n as well as over t",
              _conv_weight_grad(X, delta, batch=1))]),
]}
