r"""Gradient checkpointing: trade memory for a second forward pass.

``Checkpoint(layer)`` keeps only its input. Its forward runs ``layer`` and then drops every cache
inside it; its backward runs ``layer.forward`` again from the saved input, which rebuilds those
caches, and then ``layer.backward``. The gradients are exactly those of ``layer`` alone.

Cutting a chain of $D$ layers into segments of $k$ keeps $D/k$ segment inputs plus the caches of
one segment at a time: about $D/k + k$ arrays, least at $k \approx \sqrt D$.
"""
from . import validate
from .layers import Layer, Sequential, _check_layer, _refuse_reuse


class Checkpoint(Layer):
    """``layer`` run without keeping its caches between forward and backward.

    Random layers inside draw the same numbers in the repeated forward pass
    (their generator's state is saved). BatchNorm1d in training mode would
    update its running statistics twice.
    """

    def __init__(self, layer):
        self.layer = _check_layer(layer, "Checkpoint", "layer")
        _refuse_reuse(self)

    def forward(self, X):
        X = self._input(X)
        self.rng_states = [(sub, sub.rng.bit_generator.state)
                           for sub in self.layer.walk() if hasattr(sub, "rng")]
        out = self.layer.forward(X)
        for sub in self.layer.walk():  # drop every cache inside
            sub.cache = None
        return self._save(out, X)  # and keep only the input

    def backward(self, dout):
        dout = self._dout(dout)
        (X,) = self.cache
        for sub, state in self.rng_states:
            sub.rng.bit_generator.state = state
        self.layer.forward(X)  # the recomputation: caches are back
        dX = self.layer.backward(dout)
        for sub in self.layer.walk():
            sub.cache = None
        return dX

    def children(self):
        return [("layer", self.layer)]

    def extra_repr(self):
        return repr(self.layer)


def checkpoint_sequential(model, every):
    """The layers of a Sequential grouped ``every`` at a time, each group in a Checkpoint.

    The layers are shared, not copied: the result has the same parameters as ``model``.
    """
    validate.check_number(every, "every", "checkpoint_sequential", "an int >= 1")
    if not isinstance(model, Sequential):
        raise TypeError(f"checkpoint_sequential: model is {model!r}; expected a Sequential")
    groups = [Sequential(*model.layers[i:i + every]) for i in range(0, len(model), every)]
    return Sequential(*(Checkpoint(group) for group in groups))
