r"""Forward-mode automatic differentiation with dual numbers.

A :class:`Dual` is a number $a + \dot a\,\varepsilon$ with $\varepsilon^2 = 0$: ``value`` $a$ and
``tangent`` $\dot a$, the derivative of $a$ along one direction chosen at the inputs. Each
operation computes its result's value and tangent together, so one pass through a function
gives one directional derivative $J v$ (a Jacobian-vector product). The full gradient of a
function of $n$ inputs takes $n$ passes; reverse mode (:mod:`bplib.engine`) takes one.

>>> x = Dual(3.0, 1.0)    # d x / d x = 1
>>> y = x * x
>>> y.value, y.tangent
(9.0, 6.0)

Every operation adds 1 to the class counter ``Dual.ops``, so the cost of a computation can
be counted: set ``Dual.ops = 0``, compute, read it.
"""
import math
from math import isfinite
from numbers import Real

from .engine import Value, exp, log, power, real, sigmoid

# One rule per binary operation: from (a, da, b, db), the result's (value, tangent).
JVP_RULES = {
    "+": lambda a, da, b, db: (a + b, da + db),
    "-": lambda a, da, b, db: (a - b, da - db),
    "*": lambda a, da, b, db: (a * b, da * b + a * db),
    "/": lambda a, da, b, db: (a / b, (da - a / b * db) / b),
}


class Dual:
    """A value and its tangent (derivative along the chosen input direction)."""

    __slots__ = ("value", "tangent")
    __array_ufunc__ = None  # np.float64(2) * d calls d.__rmul__
    ops = 0                 # operations evaluated so far, by all Duals

    def __init__(self, value, tangent=0.0):
        self.value, self.tangent = real(value, "Dual(value)"), real(tangent, "Dual(tangent)")

    def __repr__(self):
        return f"Dual(value={self.value:.6g}, tangent={self.tangent:.6g})"

    def __neg__(self):
        return _result(-self.value, -self.tangent)

    def __pow__(self, n):
        n = real(n, "Dual ** exponent")
        out = power(self.value, n)              # checks the base first
        try:
            slope = n * self.value ** (n - 1)
        except (ZeroDivisionError, OverflowError):  # e.g. the slope of x ** 0.5 at x = 0
            slope = math.inf
        return _result(out, slope * self.tangent, "**", self, n)

    def exp(self):
        out = exp(self.value)
        return _result(out, out * self.tangent, "exp", self)

    def log(self):
        return _result(log(self.value), self.tangent / self.value, "log", self)

    def tanh(self):
        out = math.tanh(self.value)
        return _result(out, (1.0 - out * out) * self.tangent)

    def sigmoid(self):
        out = sigmoid(self.value)
        return _result(out, out * (1.0 - out) * self.tangent)

    def relu(self):
        return _result(max(self.value, 0.0), self.tangent if self.value > 0 else 0.0)


# a + b, b + a, a - b, b - a, ...: each binary operator looks its rule up in JVP_RULES.
for _op, _name in (("+", "add"), ("-", "sub"), ("*", "mul"), ("/", "truediv")):
    setattr(Dual, f"__{_name}__", lambda self, other, op=_op: _binary(op, self, other))
    setattr(Dual, f"__r{_name}__", lambda self, other, op=_op: _binary(op, other, self))


def _result(value, tangent, op="", *inputs):
    """A new Dual made by an operation (counted in ``Dual.ops``), skipping input checks; a
    ValueError naming the op and its inputs if the value or tangent is not finite (an overflow,
    or an infinite slope such as that of x ** 0.5 at 0)."""
    if not (isfinite(value) and isfinite(tangent)):
        raise ValueError(f"{op}: at {', '.join(map(repr, inputs))} got value {value} and tangent "
                         f"{tangent}; expected finite numbers")
    Dual.ops += 1
    out = object.__new__(Dual)
    out.value, out.tangent = value, tangent
    return out


def _binary(op, a, b):
    """``a op b``; a plain number on either side is a constant (tangent 0)."""
    a, b = _as_dual(a), _as_dual(b)
    if a is None or b is None:
        return NotImplemented           # lets Python raise its usual TypeError
    if op == "/" and b.value == 0.0:
        raise ValueError(f"/: division by zero ({a!r} / {b!r})")
    return _result(*JVP_RULES[op](a.value, a.tangent, b.value, b.tangent), op, a, b)


def _as_dual(x):
    """x itself if it is a Dual, a constant Dual if it is a plain number, else None."""
    return x if isinstance(x, Dual) else Dual(x) if isinstance(x, Real) else None


def jvp(f, x, v):
    r"""One forward pass: $f(x)$ and the directional derivative $\nabla f(x) \cdot v$.

    - f: a function of a list of n numbers (Duals here) returning one number.
    - x: the n input values; v: the n input tangents (the direction).

    Returns (value, tangent) as two floats.
    """
    inputs = [Dual(xi, vi) for xi, vi in zip(x, v, strict=True)]  # ValueError if lengths differ
    out = _as_dual(f(inputs))
    return out.value, out.tangent


def gradient_forward(f, x):
    """The gradient of f at x by forward mode: one ``jvp`` per input, n passes for n inputs.

    Returns (value, grads) with grads a list of n floats.
    """
    x = list(x)
    if not x:
        raise ValueError("gradient_forward: x is empty; expected at least one input")
    passes = [jvp(f, x, [float(j == i) for j in range(len(x))]) for i in range(len(x))]
    return passes[0][0], [tangent for _, tangent in passes]


def gradient_reverse(f, x):
    """The same gradient by reverse mode (:class:`bplib.engine.Value`): one forward pass to
    record the graph, one backward pass. Returns (value, grads) like ``gradient_forward``."""
    inputs = [Value(xi) for xi in x]
    out = f(inputs)
    out.backward()
    return out.data, [xi.grad for xi in inputs]
