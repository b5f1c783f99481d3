"""Small data sets, each fully determined by ``seed``, and a minibatch iterator.

The 2-D classification sets return X of shape (n, 2) (float64) and y of shape (n,) (int64),
shuffled so that any slice holds every class.
"""
import numpy as np

from . import validate
from .init import as_rng


def _shuffled(X, y, rng):
    order = rng.permutation(len(y))
    return X[order], y[order]


def line(n=100, noise=0.1, seed=0):
    r"""Points near a line: x uniform in [-1, 1], $y = 2x + 1 + \text{noise}\cdot\xi$ with $\xi$
    standard normal.

    Returns X of shape (n, 1) and y of shape (n, 1).
    """
    validate.check_number(n, "n", "line", "an int >= 1")
    validate.check_number(noise, "noise", "line", "a number >= 0")
    rng = as_rng(seed)
    X = rng.uniform(-1.0, 1.0, size=(n, 1))
    return X, 2.0 * X + 1.0 + noise * rng.standard_normal((n, 1))


def spirals(n_per_class=100, n_classes=3, noise=0.2, seed=0):
    r"""``n_classes`` interleaved spiral arms, one class per arm (the CS231n toy problem).

    Point $i$ of arm $k$ has radius $r_i$ evenly spaced in [0, 1] and angle
    $4 r_i + 2\pi k / K$ plus Gaussian noise of scale ``noise``: no line separates the arms.
    """
    validate.check_number(n_per_class, "n_per_class", "spirals", "an int >= 1")
    validate.check_number(n_classes, "n_classes", "spirals", "an int >= 2")
    validate.check_number(noise, "noise", "spirals", "a number >= 0")
    rng = as_rng(seed)
    r = np.tile(np.linspace(0.0, 1.0, n_per_class), n_classes)
    y = np.repeat(np.arange(n_classes), n_per_class)
    theta = 4.0 * r + 2.0 * np.pi * y / n_classes + noise * rng.standard_normal(r.size)
    return _shuffled(np.column_stack([r * np.sin(theta), r * np.cos(theta)]), y, rng)


def moons(n=200, noise=0.1, seed=0):
    """Two interleaving half circles: class 0 the upper arc, class 1 the lower one, shifted."""
    validate.check_number(n, "n", "moons", "an int >= 2")
    validate.check_number(noise, "noise", "moons", "a number >= 0")
    rng = as_rng(seed)
    n_upper = n // 2
    t_upper, t_lower = np.linspace(0.0, np.pi, n_upper), np.linspace(0.0, np.pi, n - n_upper)
    X = np.vstack([np.column_stack([np.cos(t_upper), np.sin(t_upper)]),
                   np.column_stack([1.0 - np.cos(t_lower), 0.5 - np.sin(t_lower)])])
    y = np.repeat([0, 1], [n_upper, n - n_upper])
    return _shuffled(X + noise * rng.standard_normal(X.shape), y, rng)


def digits(seed=0, test_fraction=0.2):
    """The 1,797 8x8 handwritten digits that ship with scikit-learn (no download).

    Pixels are scaled from 0..16 to [0, 1]; the split is a seeded permutation.
    Returns X_train (N_train, 64), y_train (N_train,), X_test (N_test, 64), y_test (N_test,).
    """
    validate.check_number(test_fraction, "test_fraction", "digits", "a number in (0, 1)")
    from sklearn.datasets import load_digits  # here, so that `import bplib` stays light

    data = load_digits()
    X, y = data.data / 16.0, data.target.astype(np.int64)
    order = as_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    return X[order[n_test:]], y[order[n_test:]], X[order[:n_test]], y[order[:n_test]]


def minibatches(X, y, batch_size, rng=None, shuffle=True):
    """Iterate over one epoch as (X_batch, y_batch) pairs of ``batch_size`` rows (the last may be
    smaller), in a random order drawn from ``rng`` if ``shuffle``, else in order."""
    X, y = np.asarray(X), np.asarray(y)
    if X.ndim == 0 or y.ndim == 0 or len(X) != len(y) or len(X) == 0:
        raise ValueError(f"minibatches: X has shape {validate.fmt_shape(X.shape)} and y has shape "
                         f"{validate.fmt_shape(y.shape)}; expected the same number of rows, >= 1")
    validate.check_number(batch_size, "batch_size", "minibatches", "an int >= 1")
    order = as_rng(rng).permutation(len(X)) if shuffle else np.arange(len(X))
    batches = (order[start:start + batch_size] for start in range(0, len(X), batch_size))
    return ((X[idx], y[idx]) for idx in batches)
