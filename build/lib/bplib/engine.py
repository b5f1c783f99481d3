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
"""
import math
import operator
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


class Value:
    """A scalar that remembers how it was computed, so gradients can flow back to it."""

    __slots__ = ("data", "grad", "label", "op", "_children", "_const")
    __array_ufunc__ = None  # make numpy scalars defer: np.float64(2) * v calls v.__rmul__

    def __init__(self, data, label="", _children=(), _op=""):
        if isinstance(data, Value) or not isinstance(data, Real):
            raise TypeError(f"Value(data): expected a real number (int or float), "
                            f"got {type(data).__name__} {data!r}")
        self.data = float(data)
        self.grad = 0.0
        self.label = label
        self.op = _op
        self._children = tuple(_children)
        self._const = ()

    def __repr__(self):
        name = f", label={self.label!r}" if self.label else ""
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g}{name})"

    # ---- arithmetic: each builds one new node --------------------------------
    def __add__(self, other):
        return _binary("+", self, other)

    def __radd__(self, other):          # 2 + v
        return _binary("+", other, self)

    def __sub__(self, other):
        return _binary("-", self, other)

    def __rsub__(self, other):          # 2 - v
        return _binary("-", other, self)

    def __mul__(self, other):
        return _binary("*", self, other)

    def __rmul__(self, other):          # 2 * v
        return _binary("*", other, self)

    def __truediv__(self, other):
        return _binary("/", self, other)

    def __rtruediv__(self, other):      # 2 / v
        return _binary("/", other, self)

    def __neg__(self):
        return Value(-self.data, "", (self,), "neg")

    def __pow__(self, n):
        if isinstance(n, Value) or not isinstance(n, Real):
            raise TypeError(f"Value ** exponent: the exponent must be a plain number "
                            f"(int or float), got {type(n).__name__}; "
                            f"for a Value exponent n write (n * x.log()).exp()")
        n = float(n)
        out = self.data ** n
        if isinstance(out, complex):
            raise ValueError(f"**: {self.data!r} ** {n!r} is not a real number")
        node = Value(out, "", (self,), "**")
        node._const = (n,)
        return node

    def __rpow__(self, base):
        raise TypeError(f"number ** Value is not supported (got {type(base).__name__} ** Value); "
                        f"for b ** x write (x * math.log(b)).exp()")

    # ---- elementary functions ------------------------------------------------
    def exp(self):
        return Value(math.exp(self.data), "", (self,), "exp")

    def log(self):
        if self.data <= 0:
            name = f" {self.label!r}" if self.label else ""
            raise ValueError(f"log: input{name} must be positive, got {self.data!r}")
        return Value(math.log(self.data), "", (self,), "log")

    def tanh(self):
        return Value(math.tanh(self.data), "", (self,), "tanh")

    def sigmoid(self):
        x = self.data
        if x >= 0:                      # exp(-x) <= 1: cannot overflow
            s = 1.0 / (1.0 + math.exp(-x))
        else:                           # exp(x) < 1: cannot overflow
            e = math.exp(x)
            s = e / (1.0 + e)
        return Value(s, "", (self,), "sigmoid")

    def relu(self):
        return Value(max(self.data, 0.0), "", (self,), "relu")

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
            node.grad += g
            if node._children:
                inputs = [child.data for child in node._children]
                local = VJP_RULES[node.op](g, node.data, *inputs, *node._const)
                for child, dchild in zip(node._children, local):
                    grads[child] += dchild              # += : a node may feed many others

    def zero_grad(self):
        """Set ``.grad`` to 0 on this Value and every Value it depends on."""
        for node in topological_order(self):
            node.grad = 0.0


_FORWARD = {"+": operator.add, "-": operator.sub, "*": operator.mul, "/": operator.truediv}


def _binary(op, a, b):
    """The node for ``a op b``; a plain number on either side becomes a constant Value."""
    a, b = _as_value(a), _as_value(b)
    if a is None or b is None:
        return NotImplemented           # lets Python raise its usual TypeError
    return Value(_FORWARD[op](a.data, b.data), "", (a, b), op)


def _as_value(x):
    """x itself if it is a Value, a constant Value if it is a plain number, else None."""
    if isinstance(x, Value):
        return x
    return Value(x) if isinstance(x, Real) else None


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
