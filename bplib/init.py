r"""Weight initialisation schemes.

Every scheme takes ``shape = (fan_in, fan_out)`` (the shape of ``W`` in ``X @ W``) and an
``rng`` and returns a float64 array of that shape. The variances they aim for:

* Xavier/Glorot: $\mathrm{Var}(W) = \text{gain}^2 \cdot 2 / (\text{fan\_in} + \text{fan\_out})$,
  which keeps activations and gradients at a steady scale through tanh or sigmoid layers.
* He/Kaiming: $\mathrm{Var}(W) = 2 / \text{fan\_in}$, which makes up for ReLU zeroing half its
  inputs.
"""
import numbers

import numpy as np

from . import validate


def as_rng(seed_or_rng=None):
    """A ``np.random.Generator`` from an int seed, an existing Generator, or None (fresh entropy).

    Pass an int wherever a result must be reproducible; None draws new numbers on every run.
    """
    if isinstance(seed_or_rng, np.random.Generator):
        return seed_or_rng
    if seed_or_rng is None or (isinstance(seed_or_rng, numbers.Integral)
                               and not isinstance(seed_or_rng, bool)):
        if seed_or_rng is not None and seed_or_rng < 0:
            raise ValueError(f"as_rng: seed = {seed_or_rng}; expected an int >= 0")
        return np.random.default_rng(seed_or_rng)
    raise TypeError(f"as_rng: got a {type(seed_or_rng).__name__}; "
                    "expected an int seed, None or a np.random.Generator")


def _fans(shape, where):
    ok = isinstance(shape, (tuple, list)) and len(shape) == 2 and all(
        isinstance(s, numbers.Integral) and s >= 1 for s in shape)
    if not ok:
        raise ValueError(f"{where}: shape = {shape!r}; expected (fan_in, fan_out) of positive ints")
    return tuple(shape)


def normal(shape, sigma=1.0, rng=None):
    r"""Entries drawn from $\mathcal{N}(0, \sigma_w^2)$; CS231n's ``weight_scale`` is $\sigma_w$."""
    validate.check_number(sigma, "sigma", "init.normal", "a number >= 0")
    return sigma * as_rng(rng).standard_normal(_fans(shape, "init.normal"))


def xavier_uniform(shape, rng=None, gain=1.0):
    r"""Uniform on $[-a, a]$ with $a = \text{gain}\sqrt{6 / (\text{fan\_in} + \text{fan\_out})}$."""
    fan_in, fan_out = _fans(shape, "init.xavier_uniform")
    validate.check_number(gain, "gain", "init.xavier_uniform", "a number > 0")
    a = gain * np.sqrt(6.0 / (fan_in + fan_out))
    return as_rng(rng).uniform(-a, a, size=shape)


def he_normal(shape, rng=None):
    r"""Normal with $\sigma_w = \sqrt{2 / \text{fan\_in}}$."""
    fan_in, _ = _fans(shape, "init.he_normal")
    return np.sqrt(2.0 / fan_in) * as_rng(rng).standard_normal(shape)


def zeros(shape, rng=None):
    """All zeros: every hidden unit computes the same thing, and training cannot separate them."""
    return np.zeros(_fans(shape, "init.zeros"))


SCHEMES = {"normal": normal, "xavier": xavier_uniform, "xavier_uniform": xavier_uniform,
           "he": he_normal, "he_normal": he_normal, "zeros": zeros}


def get(name):
    """The scheme called ``name`` in ``SCHEMES``."""
    if not isinstance(name, str) or name not in SCHEMES:
        raise ValueError(f"init.get: unknown scheme {name!r}; expected one of {sorted(SCHEMES)}")
    return SCHEMES[name]


def initialize(init, shape, rng, where="init.initialize"):
    r"""Weights of ``shape`` from a scheme name, a float $\sigma_w$ (normal), or ``f(shape, rng)``."""
    if isinstance(init, str):
        return get(init)(shape, rng=rng)
    if isinstance(init, numbers.Real) and not isinstance(init, bool):
        return normal(shape, sigma=init, rng=rng)
    if callable(init):
        return validate.check_array(init(shape, rng), "init(shape, rng)", where, shape)
    raise TypeError(f"{where}: init is a {type(init).__name__}; expected a scheme name "
                    f"{sorted(SCHEMES)}, a float sigma, or a function f(shape, rng)")
