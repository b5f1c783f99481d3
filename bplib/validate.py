"""Checks on user input that fail with a message a learner can act on.

Every message starts with where the problem was found (``Linear(3 -> 4).forward``), names the
argument, then says what was expected and what arrived::

    Linear(3 -> 4).forward: X has shape (5, 2); expected (N, 3)

Dtype policy: float arrays keep their precision (float64 is the default everywhere; float32
runs in float32, as the benchmarks do; gradient checks need float64). Booleans and integers are
converted to float64. Strings, objects (including ragged lists) and complex numbers raise
``TypeError``. Wrong shapes and values raise ``ValueError``. An ndarray subclass that defines
its own arithmetic (``__array_ufunc__``), such as chapter 5's dual arrays, passes as it is; any
other subclass is read as a plain ndarray. No check uses ``assert``, which
``python -O`` would silently remove.
"""
import math
import numbers

import numpy as np


def fmt_shape(shape):
    """Write a shape as Python does, allowing names for free sizes: ("N", 3) -> "(N, 3)"."""
    parts = [str(size) for size in shape]
    return "(" + ", ".join(parts) + ("," if len(parts) == 1 else "") + ")"


def as_float(x, name, where):
    """``x`` as a float ndarray (ints and bools become float64), or TypeError if not real."""
    if type(x) is np.ndarray and x.dtype.kind == "f":  # the common case, checked cheaply
        return x
    # An ndarray subclass with arithmetic of its own (chapter 5's dual arrays) is kept as it is.
    keep = isinstance(x, np.ndarray) and type(x).__array_ufunc__ is not np.ndarray.__array_ufunc__
    try:
        arr = x if keep else np.asarray(x)
    except ValueError:  # numpy refuses ragged nested lists
        raise TypeError(f"{where}: {name} is not a rectangular array of numbers "
                        "(rows of different lengths?)") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{where}: {name} has dtype {arr.dtype}; expected real numbers "
                        "(float, or int/bool which are converted to float64)")
    return arr if arr.dtype.kind == "f" else arr.astype(np.float64)


def check_shape(arr, name, where, expected):
    """Raise ValueError unless ``arr.shape`` matches ``expected``; a str entry matches any size."""
    if arr.ndim != len(expected) or not all(
            want == got or isinstance(want, str) for want, got in zip(expected, arr.shape)):
        raise ValueError(f"{where}: {name} has shape {fmt_shape(arr.shape)}; "
                         f"expected {fmt_shape(expected)}")
    return arr


def check_array(x, name, where, shape=None):
    """Float array of the given shape (None: any shape with a batch axis), with no size 0."""
    arr = as_float(x, name, where)
    if shape is not None:
        check_shape(arr, name, where, shape)
    elif arr.ndim == 0:
        raise ValueError(f"{where}: {name} is a scalar; expected an array of shape (N, ...)")
    if arr.size == 0:
        raise ValueError(f"{where}: {name} has shape {fmt_shape(arr.shape)}; expected " +
                         ("a non-empty batch (N >= 1)" if arr.shape[0] == 0 else "every size >= 1"))
    return arr


def check_labels(y, name, where, num_classes, n):
    """Integer class labels of shape (n,) with values in [0, num_classes), as integers."""
    if type(y) is np.ndarray and y.dtype.kind in "iu" and y.shape == (n,):
        # The common case, in one pass: read as unsigned, a negative label becomes huge.
        if n == 0 or y.view(f"u{y.itemsize}").max() < num_classes:
            return y
        # anything else is examined below for a precise message
    arr = np.asarray(y)
    if arr.dtype.kind not in "iuf":
        raise TypeError(f"{where}: {name} has dtype {arr.dtype}; "
                        f"expected integer class labels in [0, {num_classes})")
    check_shape(arr, name, where, (n,))
    if arr.dtype.kind == "f":
        bad = arr[~np.isfinite(arr) | (arr != np.round(arr))]
        if bad.size:
            raise ValueError(f"{where}: {name} holds non-integer labels such as {bad[0]}; "
                             f"expected integers in [0, {num_classes})")
    arr = arr.astype(np.int64, copy=False)
    if arr.size and (arr.min() < 0 or arr.max() >= num_classes):
        raise ValueError(f"{where}: {name} has labels from {arr.min()} to {arr.max()}; "
                         f"expected integers in [0, {num_classes})")
    return arr


# What a setting of the library may be: the words an error message uses, and the test.
RANGES = {
    "an int >= 1": lambda v: v >= 1,
    "an int >= 2": lambda v: v >= 2,
    "a number >= 0": lambda v: v >= 0,
    "a number > 0": lambda v: v > 0,
    "a number > 1": lambda v: v > 1,
    "a number in [0, 1]": lambda v: 0 <= v <= 1,
    "a number in [0, 1)": lambda v: 0 <= v < 1,
    "a number in (0, 1)": lambda v: 0 < v < 1,
    "a drop probability in [0, 1)": lambda v: 0 <= v < 1,
}


def check_number(value, name, where, expected):
    """Return ``value`` if it is a finite real number in the range ``expected``, a key of
    RANGES (an int for the rows that say so). nan and inf are refused: no setting of the
    library means anything with them."""
    kind = numbers.Integral if expected.startswith("an int") else numbers.Real
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"{where}: {name} = {value!r} is a {type(value).__name__}; "
                        f"expected {expected}")
    finite = isinstance(value, numbers.Integral) or math.isfinite(value)
    if not finite or not RANGES[expected](value):
        raise ValueError(f"{where}: {name} = {value!r}; expected "
                         f"{'' if finite else 'a finite value, '}{expected}")
    return value


def check_dout(dout, where, cache, out_shape):
    """The upstream gradient as a float array, with exactly the shape of forward's output;
    ValueError if forward has not stored its ``cache`` yet."""
    if cache is None:
        raise ValueError(f"{where}: called before forward; run forward(X) first")
    arr = as_float(dout, "dout", where)
    if arr.shape != tuple(out_shape):
        raise ValueError(f"{where}: dout has shape {fmt_shape(arr.shape)}; expected "
                         f"{fmt_shape(out_shape)}, the shape of the output of forward")
    return arr
