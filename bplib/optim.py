r"""Stochastic gradient descent and gradient-norm helpers.

The optimizer reads each ``Parameter.grad`` (filled by backward) and updates ``Parameter.value``
in place, so the layers see the new weights without being told.
"""
import numpy as np

from . import validate
from .layers import parameter_list


class SGD:
    r"""Gradient descent with optional momentum and weight decay.

    Per parameter $w$ with gradient $g$ (as PyTorch's SGD):
    $g \leftarrow g + \text{weight\_decay}\cdot w$;
    $v \leftarrow \text{momentum}\cdot v + g$ (when momentum > 0, with $v = 0$ at the start);
    $w \leftarrow w - \eta\, v$ (or $w - \eta\, g$ without momentum), with $\eta$ = ``lr``.
    ``lr`` can be changed between steps (learning-rate schedules). A parameter listed twice is
    updated once.
    """

    def __init__(self, parameters, lr, momentum=0.0, weight_decay=0.0):
        self.parameters = parameter_list(parameters, "SGD")
        self.lr = lr
        self.momentum = validate.check_number(momentum, "momentum", "SGD", "a number in [0, 1)")
        self.weight_decay = validate.check_number(weight_decay, "weight_decay", "SGD",
                                                  "a number >= 0")
        self.velocity = [np.zeros_like(p.value) for p in self.parameters]

    @property
    def lr(self):
        return self._lr

    @lr.setter
    def lr(self, value):
        self._lr = validate.check_number(value, "lr", "SGD", "a number >= 0")

    def step(self):
        """Update every parameter in place from its current gradient."""
        lr, momentum, decay = self._lr, self.momentum, self.weight_decay
        for p, v in zip(self.parameters, self.velocity):
            g = p.grad + decay * p.value if decay else p.grad
            if momentum:
                v *= momentum
                v += g
                g = v
            p.value -= lr * g

    def zero_grad(self):
        for p in self.parameters:
            p.grad.fill(0.0)


def grad_norm(parameters):
    r"""Global gradient norm $\sqrt{\sum_p \lVert p.\text{grad}\rVert^2}$ over all parameters
    (a parameter listed twice counts once)."""
    params = parameter_list(parameters, "grad_norm")
    return float(np.sqrt(sum(np.sum(p.grad**2) for p in params)))


def clip_grad_norm(parameters, max_norm):
    """Scale all gradients in place by one factor so their global norm is at most ``max_norm``.

    Returns the norm before clipping (useful to log: spikes show exploding gradients). A norm of
    nan or inf raises ValueError: no factor would give the gradients a direction again.
    """
    params = parameter_list(parameters, "clip_grad_norm")
    validate.check_number(max_norm, "max_norm", "clip_grad_norm", "a number > 0")
    total = grad_norm(params)
    if not np.isfinite(total):
        raise ValueError(f"clip_grad_norm: the global gradient norm is {total}; expected a finite "
                         "norm (nan or inf in a gradient, or gradients near 1e154)")
    if total > max_norm:
        for p in params:
            p.grad *= max_norm / total
    return total
