r"""Mixed precision: a float16 forward and backward pass, float32 master weights, loss scaling.

float16 keeps about 3 decimal digits and stops at 65504 (beyond: inf); below about 6e-8 it
rounds to 0. Gradients are often that small, so the loss is multiplied by a scale $S$ before the
backward pass (every gradient is then $S$ times larger, by the chain rule) and the gradients
are divided by $S$ again in float32.
"""
import numpy as np

from . import validate
from .layers import _check_layer


class LossScaler:
    r"""Dynamic loss scaling, with PyTorch's ``GradScaler`` defaults.

    Multiply the first dout (the loss gradient) by ``scale`` before a float16 backward pass and
    pass the gradients to ``unscale``. If any is inf or nan the scale was too large: ``unscale``
    returns None (skip this step) and divides the scale by ``factor``. After ``window`` good
    steps in a row the scale is multiplied by ``factor``, to find the largest one that is safe.
    """

    def __init__(self, scale=2.0**16, factor=2.0, window=2000):
        self.scale = float(validate.check_number(scale, "scale", "LossScaler", "a number > 0"))
        self.factor = validate.check_number(factor, "factor", "LossScaler", "a number > 1")
        self.window = validate.check_number(window, "window", "LossScaler", "an int >= 1")
        self.good_steps = 0

    def unscale(self, grads):
        """float32 copies of ``grads`` divided by the scale, or None if any entry is inf or nan."""
        grads = [np.asarray(g, dtype=np.float32) / np.float32(self.scale) for g in grads]
        if not all(np.isfinite(g).all() for g in grads):
            self.scale, self.good_steps = self.scale / self.factor, 0
            return None
        self.good_steps += 1
        if self.good_steps == self.window:
            self.scale, self.good_steps = self.scale * self.factor, 0
        return grads


def cast_parameters(model, dtype):
    """Convert every parameter's value and grad of ``model`` to ``dtype`` in place: a float dtype
    (np.float16, np.float32, np.float64); anything else raises TypeError."""
    if dtype is None or np.dtype(dtype).kind != "f":  # np.dtype(None) would be float64
        raise TypeError(f"cast_parameters: dtype = {dtype!r}; expected a float dtype such as "
                        "np.float32 or np.float16")
    for p in _check_layer(model, "cast_parameters", "model").parameters():
        p.value, p.grad = p.value.astype(dtype), p.grad.astype(dtype)
    return model
