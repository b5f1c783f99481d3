r"""Gradient checking: compare a backward pass with central finite differences.

For a function $f$ and an upstream gradient $dout$ (the shape of $f(x)$), the vector-Jacobian
product that backward computes is the gradient of the scalar $\sum f(x) \odot dout$. Each
entry is estimated by
$\frac{\partial}{\partial x_i} \approx \frac{s(x + \epsilon e_i) - s(x - \epsilon e_i)}{2\epsilon}$,
whose error is $O(\epsilon^2)$. Results are returned, never printed.
"""
from dataclasses import dataclass

import numpy as np

from . import validate
from .init import as_rng
from .layers import _check_layer


def numerical_gradient(f, x, dout=None, eps=1e-6):
    r"""Central-difference gradient of $\sum f(x) \odot dout$ with respect to ``x``.

    - f: a function of x (it may also ignore its argument and read x from elsewhere, e.g. a
      layer's weights, since x is perturbed in place and restored afterwards).
    - x: float64 ndarray of any shape.
    - dout: array of the shape of f(x); None means 1 (for a scalar f such as a loss).

    Returns an array of the shape of x.
    """
    if not (isinstance(x, np.ndarray) and x.dtype == np.float64):
        raise TypeError(f"numerical_gradient: x is {type(x).__name__} of dtype "
                        f"{getattr(x, 'dtype', None)}; expected a float64 ndarray (it is perturbed "
                        "in place, so it must be the array f reads)")
    validate.check_number(eps, "eps", "numerical_gradient", "a number > 0")
    # a dout is checked against the shape of f(x): one more call of f
    dout = 1.0 if dout is None else validate.check_array(dout, "dout", "numerical_gradient",
                                                         np.shape(f(x)))
    grad = np.zeros_like(x)
    for i in np.ndindex(x.shape):
        old = x[i]
        try:
            x[i] = old + eps
            up = np.sum(f(x) * dout)
            x[i] = old - eps
            down = np.sum(f(x) * dout)
        finally:
            x[i] = old
        grad[i] = (up - down) / (2 * eps)
    return grad


def rel_error(a, b):
    r"""Normwise relative error $\max|a - b| \,/\, \max(\max|a|, \max|b|)$.

    Unlike the elementwise $|a - b|/(|a| + |b|)$ this does not blow up on entries that are
    tiny in both (a correct gradient with a 1e-12 entry can show an elementwise error of 1e-3).
    """
    a, b = validate.as_float(a, "a", "rel_error"), validate.as_float(b, "b", "rel_error")
    if a.shape != b.shape:
        raise ValueError(f"rel_error: a has shape {validate.fmt_shape(a.shape)}; "
                         f"expected b's shape {validate.fmt_shape(b.shape)}")
    scale = max(np.max(np.abs(a), initial=0.0), np.max(np.abs(b), initial=0.0),
                np.finfo(np.float64).tiny)  # no entries at all: an error of 0
    return float(np.max(np.abs(a - b), initial=0.0) / scale)


@dataclass
class GradCheckResult:
    """Outcome of one gradient check: the error and the entry where the two disagree most."""

    rel_error: float
    index: tuple
    numeric: float
    analytic: float

    def passed(self, tol=1e-7):
        return self.rel_error < tol

    def __str__(self):
        return (f"rel_error {self.rel_error:.2e}; worst at index {self.index}: "
                f"numeric {self.numeric:.6g}, analytic {self.analytic:.6g}")


def gradcheck(f, x, analytic_grad, dout=None, eps=1e-6):
    """Compare ``analytic_grad`` with ``numerical_gradient(f, x, dout, eps)``."""
    numeric = numerical_gradient(f, x, dout, eps)
    analytic = validate.check_array(analytic_grad, "analytic_grad", "gradcheck", x.shape)
    index = tuple(int(i) for i in np.unravel_index(np.argmax(np.abs(numeric - analytic)), x.shape))
    return GradCheckResult(rel_error(numeric, analytic), index,
                           float(numeric[index]), float(analytic[index]))


def check_layer(layer, X, rng=0, eps=1e-6):
    """Check a layer's backward for its input and each parameter, with a random ``dout``.

    Runs forward, then backward (after ``zero_grad()``) with dout ~ N(0, 1) drawn from ``rng``,
    then finite differences. Returns a dict of GradCheckResult such as {"X": ..., "W": ...,
    "b": ...} (names like "0.W" inside a Sequential). Check stochastic layers in eval mode:
    Dropout draws a new mask at every forward. Parameter values end as they began; their grads
    hold this check's.
    """
    _check_layer(layer, "check_layer", "layer")
    X = validate.check_array(X, "X", "check_layer").copy()
    # a child stream, so dout never equals an X drawn from the same seed (with dout = X,
    # BatchNorm's true dX is ~1e-5 and round-off dominates the check)
    dout = as_rng(rng).spawn(1)[0].standard_normal(np.shape(layer.forward(X)))
    layer.zero_grad()
    results = {"X": gradcheck(layer.forward, X, layer.backward(dout), dout, eps)}
    for name, p in layer.named_parameters():
        results[name] = gradcheck(lambda _: layer.forward(X), p.value, p.grad.copy(), dout, eps)
    return results
