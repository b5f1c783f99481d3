"""One table of scalar operations, OPS, for the reverse-mode engine (test_engine.py) and forward
mode (test_forward_mode.py).

Each row has a builder and an independent autograd.numpy version of the same function. The
builders use only what ``Value``, ``Dual`` and torch tensors all have (``.exp()``, ``.sigmoid()``,
``2 / x`` ...), so the same builder gives bplib's result and the PyTorch reference.
"""
import math

import autograd.numpy as anp
import numpy as np

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


# name, domain of every input, builder, autograd.numpy reference
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


def arity(build):
    return build.__code__.co_argcount


def points(name, domain, n_inputs, n=4):
    """n fixed random inputs; |x| in [0.5, 2] keeps relu's kink and 1/x's pole out of reach."""
    rng = np.random.default_rng(sum(map(ord, name)))
    magnitude = rng.uniform(0.5, 2.0, size=(n, n_inputs))
    sign = 1.0 if domain == POSITIVE else rng.choice([-1.0, 1.0], size=(n, n_inputs))
    return [[float(v) for v in row] for row in magnitude * sign]


# Inputs at the edge of an op's domain that are still fine, so the domain checks must let them
# through: (x, builder, value, derivative), the derivatives worked out by hand.
EDGES = [
    (-8.0,    lambda a: a ** 3,    -512.0,           192.0),            # negative base, int power
    (0.0,     lambda a: a ** 2,    0.0,              0.0),
    (0.0,     lambda a: a ** 1.5,  0.0,              0.0),              # 1.5 * 0 ** 0.5
    (709.0,   lambda a: a.exp(),   math.exp(709.0),  math.exp(709.0)),  # just below overflow
    (-1000.0, lambda a: a.exp(),   0.0,              0.0),              # underflow to 0 is fine
    (1e-300,  lambda a: a * a,     0.0,              2e-300),
    (1e-300,  lambda a: a.log(),   math.log(1e-300), 1e300),
    (-1e300,  lambda a: a.tanh(),  -1.0,             0.0),
]
