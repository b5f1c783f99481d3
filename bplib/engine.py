r"""Scalar reverse-mode automatic differentiation.

A :class:`Value` wraps one float. Arithmetic on Values records a graph: every result
remembers its inputs (``_children``) and the operation that made it (``op``).
:meth:`Value.backward` walks that graph from the output back to the inputs and applies
the chain rule, looking up the local derivative of each operation in one table,
``VJP_RULES``.

>>> x = Value(3.0, label="x")
>>> y = x * x
>>> y.backward()
>>> x.grad            # d(x^2)/dx = 2x, and x is used twice
6.0

Gradients accumulate, as in PyTorch: each call of ``backward()`` *adds*
:math:`\partial\,\text{root} / \partial\,\text{node}` to every node's ``.grad``. Calling it twice
without ``root.zero_grad()`` in between doubles every gradient.

Every value, forward and backward, is a finite float: an operation outside its domain (division
by zero, the log of 0, ...) or one that overflows raises a ValueError that names it.
"""
import math
import sys
from math import isfinite
from numbers import Real

# One rule per operation: given the upstream gradient g, the node's own value `out`,
# its inputs' values and any constant (the exponent of **), return one gradient per input.
VJP_RULES = {
    "+":       lambda g, out, a, b: (g, g),
    "-":       lambda g, out, a, b: (g, -g),
    "*":       lambda g, out, a, b: (g * b, g * a),
    "/":       lambda g, out, a, b: (g / b, -g * out / b),        # d(a/b)/db = -a/b^2
    "neg":     lambda g, out, a: (-g,),
    "**":      lambda g, out, a, n: (g * n * a ** (n - 1),),
    "exp":     lambda g, out, a: (g * out,),
    "log":     lambda g, out, a: (g / a,),
    "tanh":    lambda g, out, a: (g * (1.0 - out * out),),
    "sigmoid": lambda g, out, a: (g * out * (1.0 - out),),
    "relu":    lambda g, out, a: (g if a > 0 else 0.0,),
}
LARGEST = sys.float_info.max            # about 1.8e308
LARGEST_EXP = math.log(LARGEST)         # 709.78: exp of anything larger overflows


class Value:
    """A scalar that remembers how it was computed, so gradients can flow back to it."""

    __slots__ = ("data", "grad", "label", "op", "_children", "_const")
    __array_ufunc__ = None  # make numpy scalars defer: np.float64(2) * v calls v.__rmul__

    def __init__(self, data, label="", _children=(), _op="", _const=()):
        if type(data) is not float or not isfinite(data):   # fast path: an operation's result
            data = _checked(data, _op, _children)
        self.data, self.grad, self.label = data, 0.0, label
        self.op, self._children, self._const = _op, _children, _const

    def __repr__(self):
        name = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g}{name})"

    # ---- arithmetic: each builds one new node; a plain number becomes a constant Value ----
    # (`type(x) is Value` first: a cheap test that holds for almost every operand)
    def __add__(self, other):
        other = other if type(other) is Value else _as_value(other, "+")
        return Value(self.data + other.data, "", (self, other), "+")

    def __sub__(self, other):
        other = other if type(other) is Value else _as_value(other, "-")
        return Value(self.data - other.data, "", (self, other), "-")

    def __mul__(self, other):
        other = other if type(other) is Value else _as_value(other, "*")
        return Value(self.data * other.data, "", (self, other), "*")

    def __truediv__(self, other):
        other = other if type(other) is Value else _as_value(other, "/")
        if other.data == 0.0:
            raise ValueError(f"/: division by zero ({_short(self)} / {_short(other)})")
        return Value(self.data / other.data, "", (self, other), "/")

    # 2 + v, 2 - v, 2 * v, 2 / v: the number becomes a constant Value on the left
    def __radd__(self, other): return _as_value(other, "+") + self
    def __rsub__(self, other): return _as_value(other, "-") - self
    def __rmul__(self, other): return _as_value(other, "*") * self
    def __rtruediv__(self, other): return _as_value(other, "/") / self

    def __neg__(self):
        return Value(-self.data, "", (self,), "neg")

    def __pow__(self, n):
        n = real(n, "Value ** exponent")
        return Value(power(self.data, n), "", (self,), "**", (n,))

    # ---- elementary functions ------------------------------------------------
    def exp(self):
        return Value(exp(self.data), "", (self,), "exp")

    def log(self):
        return Value(log(self.data, self.label), "", (self,), "log")

    def tanh(self):
        return Value(math.tanh(self.data), "", (self,), "tanh")

    def sigmoid(self):
        return Value(sigmoid(self.data), "", (self,), "sigmoid")

    def relu(self):
        return Value(self.data if self.data > 0.0 else 0.0, "", (self,), "relu")

    # ---- reverse mode --------------------------------------------------------
    def backward(self):
        """Add d(self)/d(node) to ``node.grad`` for every node this Value depends on.

        The gradients of this pass are summed in a local dict and added to ``.grad`` once per
        node, so a second call adds exactly the same amounts again (it never re-propagates
        the gradients that the first call left in intermediate nodes).
        """
        order = topological_order(self)
        grads = dict.fromkeys(order, 0.0)
        grads[self] = 1.0                               # d(self)/d(self)
        for node in reversed(order):                    # outputs before inputs
            g = grads[node]
            if not isfinite(g):                         # finite parts that add up to inf
                raise ValueError(f"backward: the gradients reaching {_short(node)} from the "
                                 f"nodes that use it add up to {g}; expected a finite number")
            node.grad += g
            if not node._children:
                continue
            rule = VJP_RULES[node.op]
            try:                                        # one input or two, spelled out: faster
                if len(node._children) == 2:            # a + b, a * b, ...
                    a, b = node._children
                    da, db = rule(g, node.data, a.data, b.data)
                    grads[b] += db
                else:                                   # -a, a ** n, exp(a), ...
                    (a,) = node._children
                    (da,) = rule(g, node.data, a.data, *node._const)
                    db = 0.0
            except (ZeroDivisionError, OverflowError):  # e.g. d(x ** 0.5)/dx at x = 0
                da = db = math.inf
            if not (isfinite(da) and isfinite(db)):    # or an overflow: d(log x)/dx at 1e-310
                raise _backward_error(node, g, db if isfinite(da) else da)
            grads[a] += da                              # += : a node may feed many others

    def zero_grad(self):
        """Set ``.grad`` to 0 on this Value and every Value it depends on."""
        for node in topological_order(self):
            node.grad = 0.0


def topological_order(root):
    """Every Value that ``root`` depends on, each after all of its inputs; ``root`` is last.

    Iterative depth-first search, so deep graphs (10,000+ nodes) hit no recursion limit.
    """
    order, visited = [], set()
    stack = [(root, False)]
    while stack:
        node, inputs_done = stack.pop()
        if inputs_done:
            order.append(node)
        elif node not in visited:
            visited.add(node)
            stack.append((node, True))          # place it after its inputs are placed
            for child in reversed(node._children):  # reversed: first input is placed first
                if child not in visited:
                    stack.append((child, False))
    return order


def _as_value(x, op):
    """A plain number x as a constant Value, an operand of ``op``; TypeError for anything else."""
    if type(x) is float or isinstance(x, Real):
        return Value(x)
    raise TypeError(f"{op}: expected a Value or a real number, got {type(x).__name__} {x!r}")


def _short(v):
    """Value(data=2) or Value(data=2, label='x'): a Value as error messages show it."""
    name = f", label={v.label!r}" if v.label else ""
    return f"Value(data={v.data:g}{name})"


def _checked(data, op, inputs):
    """data as a float; the error for a non-number, a non-finite input or an overflow."""
    if op and isinstance(data, float):
        raise ValueError(f"{op}: {f' {op} '.join(map(_short, inputs))} = {data} overflows a "
                         f"float (largest about {LARGEST:.3g})")
    return real(data, "Value(data)")


def _backward_error(node, g, gradient):
    """The error for a gradient that is not finite, naming the node's op and inputs."""
    inputs = ", ".join(map(_short, node._children))
    exponent = f", exponent {node._const[0]:g}" if node._const else ""
    return ValueError(f"{node.op} in backward: the gradient is {gradient}; expected a finite "
                      f"number (inputs {inputs}{exponent}, upstream gradient {g:g})")


# ---- the elementary functions on floats, with their domain and range checked ----
# (shared with bplib.forward_mode, whose Dual numbers must fail the same way)
def real(x, what):
    """x as a float; a TypeError unless it is a real number, a ValueError unless finite."""
    if not isinstance(x, Real):
        raise TypeError(f"{what}: expected a real number (int or float), "
                        f"got {type(x).__name__} {x!r}")
    if not -LARGEST <= x <= LARGEST:    # false for inf and nan, and exact for huge ints
        raise ValueError(f"{what}: expected a finite number, got {x!r}")
    return float(x)


def power(x, n):
    """x ** n for floats; a non-integer n needs a base x >= 0, a negative n needs x != 0."""
    if (x < 0 and not n.is_integer()) or (x == 0 and n < 0):
        raise ValueError(f"**: the exponent {n:g} needs a positive base, got {x!r}")
    try:
        return x ** n
    except OverflowError:
        message = f"**: {x!r} ** {n!r} overflows a float (largest about {LARGEST:.3g})"
        raise ValueError(message) from None


def exp(x):
    """math.exp(x), or a ValueError where it would overflow."""
    if x > LARGEST_EXP:
        raise ValueError(f"exp: {x!r} overflows a float (largest about {LARGEST_EXP:.2f})")
    return math.exp(x)


def log(x, label=""):
    """math.log(x), or a ValueError naming the input (``label``) if x <= 0."""
    if x <= 0:
        name = f" {label!r}" if label else ""
        raise ValueError(f"log: input{name} must be positive, got {x!r}")
    return math.log(x)


def sigmoid(x):
    """1 / (1 + exp(-x)), computed without overflow for any x."""
    if x >= 0:                          # exp(-x) <= 1: cannot overflow
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)                     # exp(x) < 1: cannot overflow
    return e / (1.0 + e)
