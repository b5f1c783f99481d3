r"""Deep networks to experiment with, and what happens inside them in one backward pass.

``deep_net`` builds a plain or a residual MLP of any depth. ``layer_stats`` runs one forward and
one backward pass and reports, for each hidden block's output $A_\ell$, the mean and standard
deviation of the activations, the fraction of dead ReLUs, $\lVert\partial L/\partial A_\ell\rVert$
and $\lVert\partial L/\partial W_\ell\rVert$. ``block_jacobians`` returns each block's Jacobian
$J_\ell = \partial \mathbf a_\ell/\partial \mathbf a_{\ell-1}$ at one example.

A *block* is a run of a Sequential's layers that ends at an activation or a ``Residual``: in
``Sequential(Linear, BatchNorm1d, ReLU, Linear, ReLU, Linear)`` the blocks are the first three
layers and the next two; the last Linear is the output layer, not a block.
"""
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from . import init as initializers
from . import losses, validate
from .layers import ACTIVATIONS, BatchNorm1d, Linear, ReLU, Residual, Sequential, activation_layer


def deep_net(depth, width, d_in, d_out, activation="relu", init="he", residual=False, rng=None,
             batchnorm=False, branch_scale=None):
    r"""Linear(d_in, width), activation, then ``depth`` hidden blocks, then Linear(width, d_out).

    - A plain block is Linear(width, width) and the activation; a residual block is
      ``Residual(Sequential(Linear(width, width), activation))``, computing
      $\mathbf a + F(\mathbf a)$.
    - init: anything ``Linear`` accepts (a scheme name, a float sigma, a function).
    - batchnorm: a BatchNorm1d(width) between every Linear but the last and its activation.
    - branch_scale: a factor on the initial weights inside each residual branch. None means
      1/depth: a ReLU branch has a positive mean that adds up over the blocks, and with
      branches of size 1/depth all of them together change $\mathbf a$ by a bounded amount.
    - rng: one seed or generator for all the weights.
    """
    validate.check_number(depth, "depth", "deep_net", "an int >= 1")
    rng = initializers.as_rng(rng)
    scale = (1.0 / depth if branch_scale is None else branch_scale) if residual else 1.0

    branch_init = (lambda shape, r: scale * initializers.initialize(init, shape, r))

    def block(d, w_init):
        norm = [BatchNorm1d(width)] if batchnorm else []
        return [Linear(d, width, init=w_init, rng=rng), *norm, activation_layer(activation, "deep_net")]

    layers = block(d_in, init)
    for _ in range(depth):
        inner = block(width, branch_init if residual else init)
        layers += [Residual(Sequential(*inner))] if residual else inner
    return Sequential(*layers, Linear(width, d_out, init=init, rng=rng))


def split_blocks(model, where="split_blocks"):
    """The hidden blocks of a Sequential (each a Sequential of the model's own layers), and a
    Sequential of the output layers that follow the last block."""
    if not isinstance(model, Sequential):
        raise TypeError(f"{where}: model is {model!r}; expected a Sequential such as deep_net(...)")
    blocks, current = [], []
    for layer in model:
        current.append(layer)
        if isinstance(layer, (Residual, *ACTIVATIONS.values())):
            blocks.append(Sequential(*current))
            current = []
    return blocks, Sequential(*current)


def _walk(layer, kind):
    """``layer`` and every layer nested inside it that is an instance of ``kind``."""
    return [sub for sub in layer.walk() if isinstance(sub, kind)]


@contextmanager
def _grads_kept(model):
    """Zero the model's grads inside the block; restore what they held before on the way out."""
    saved = [(p, p.grad.copy()) for p in model.parameters()]
    model.zero_grad()
    try:
        yield
    finally:
        for p, grad in saved:
            p.grad[...] = grad


@dataclass
class LayerStats:
    """One entry per hidden block, in depth order: arrays of shape (n_blocks,), and in
    ``activations`` each block's output of shape (N, width)."""

    act_mean: np.ndarray
    act_std: np.ndarray
    dead: np.ndarray    # fraction of the block's ReLUs that are 0 for every example (nan: none)
    grad_h: np.ndarray  # norm of dL/dA for the block's output A (dA in code)
    grad_W: np.ndarray  # norm of dL/dW over the block's Linear layers
    loss: float
    activations: list = field(repr=False)


def layer_stats(model, X, y, loss="cross_entropy"):
    """One forward and one backward pass of ``model`` on (X, y), measured block by block.

    - X: inputs of shape (N, d_in); y: what the loss compares the output with, e.g. integer
      labels of shape (N,) for cross-entropy.
    - loss: a name in ``bplib.losses.LOSSES`` or a function ``(output, y) -> (loss, dout)``.

    Returns a ``LayerStats``.
    The grads of the model end as they began; its caches (and BatchNorm's running statistics)
    are those of this pass.
    """
    loss_fn = losses.get(loss, "layer_stats")
    blocks, head = split_blocks(model, "layer_stats")
    acts, grad_h = [X], []
    with _grads_kept(model):
        for block in blocks:
            acts.append(block.forward(acts[-1]))
        value, dout = loss_fn(head.forward(acts[-1]), y)
        dout = head.backward(dout)
        for block in reversed(blocks):
            grad_h.insert(0, np.linalg.norm(dout))
            dout = block.backward(dout)
        grad_W = [np.sqrt(sum(np.sum(lin.W.grad**2) for lin in _walk(b, Linear))) for b in blocks]
    dead = [np.mean(np.concatenate([~r.cache[0].any(axis=0) for r in _walk(b, ReLU)]))
            if _walk(b, ReLU) else np.nan for b in blocks]
    acts = acts[1:]
    return LayerStats(np.array([a.mean() for a in acts]), np.array([a.std() for a in acts]),
                      np.array(dead), np.array(grad_h), np.array(grad_W), value, acts)


def block_jacobians(model, x):
    r"""The Jacobian $\partial \mathbf a_\ell/\partial \mathbf a_{\ell-1}$ of every hidden block at
    one example.

    x: one input of shape (d_in,) or (1, d_in). Returns a list with one array per block of
    shape (block output size, block input size); the first block's input is x. Each is read off
    the block's own backward pass: n copies of $\mathbf a_{\ell-1}$ go forward and the n x n
    identity comes back as dout, so row j of the result is $e_j^\top J_\ell$. Grads end as they
    began. Not for BatchNorm in training mode (a batch of copies has no variance).
    """
    h, jacobians = np.reshape(validate.as_float(x, "x", "block_jacobians"), (1, -1)), []
    with _grads_kept(model):
        for block in split_blocks(model, "block_jacobians")[0]:
            out = block.forward(h)
            block.forward(np.repeat(h, out.shape[1], axis=0))
            jacobians.append(block.backward(np.eye(out.shape[1])))
            h = out
    return jacobians
