r"""The training loop: forward, loss, backward, update, with a record of what happened.

``fit`` repeats, for every step: ``model.train()``; ``zero_grad``; forward; loss; backward;
record the global gradient norm (before any clipping); clip; ``optimizer.step()``. It stops
early, without an update for that step, when the loss or the gradient norm stops being a finite
number or the loss grows past ``1e6`` times the first loss, and says so in
``History.diverged_at`` and, in words, in ``History.stopped``. It neither raises nor warns
then: diverging (a learning rate too large) is a lesson the chapters show on purpose. A
one-line progress bar is written to stderr for a run that lasts over a second, unless the
environment variable ``BPLIB_NO_PROGRESS`` is set (the Makefile and the tests set it, so book
builds stay quiet).
"""
import os
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field

import numpy as np

from . import data, losses, optim, validate
from .init import as_rng

DIVERGENCE_FACTOR = 1e6


@dataclass
class History:
    """What ``fit`` recorded: one entry per step in ``loss`` and ``grad_norm`` (the global norm
    before clipping), one per epoch in ``epoch_loss`` (the mean step loss, partial epochs
    included) and, with validation data, in ``val_loss`` and ``val_accuracy`` (classification
    only). ``steps`` counts the updates applied; ``diverged_at`` is the index of the step whose
    loss or gradient norm blew up (recorded, but not followed by an update), or None, and
    ``stopped`` says the same in words (the step, the loss, the last finite loss), or is None."""

    loss: list = field(default_factory=list)
    grad_norm: list = field(default_factory=list)
    epoch_loss: list = field(default_factory=list)
    val_loss: list = field(default_factory=list)
    val_accuracy: list = field(default_factory=list)
    diverged_at: int | None = None
    stopped: str | None = None
    steps: int = 0

    @property
    def final_loss(self):
        """The loss of the last step run (nan if none ran)."""
        return self.loss[-1] if self.loss else float("nan")

    def __repr__(self):
        return f"History({self.steps} steps, final loss {self.final_loss:.4g}" + (
            f"; {self.stopped})" if self.stopped else ")")


def _stop_reason(loss, norm):
    """Why fit stops after the step just recorded, in words, or None to go on."""
    step, value = len(loss) - 1, loss[-1]
    if np.isfinite(value) and np.isfinite(norm) and not 0 < DIVERGENCE_FACTOR * loss[0] < value:
        return None
    last = step if np.isfinite(value) else step - 1  # every loss before this one was finite
    return (f"stopped at step {step}: loss {value:.4g} (the first was {loss[0]:.4g}), gradient "
            f"norm {norm:.4g}; training diverged and step {step} made no update; last finite loss "
            + (f"{loss[last]:.4g} at step {last}" if last >= 0 else "none"))


def predict(model, X):
    """The model's output for X in eval mode (scores for classification), e.g. (N, C)."""
    was_training = getattr(model, "training", True)
    model.eval()
    try:
        return model.forward(X)
    finally:
        model.train(was_training)


def accuracy(model, X, y):
    """Fraction of rows of X whose largest score (eval mode) is at the label y, shape (N,)."""
    scores = predict(model, X)
    y = validate.check_labels(y, "y", "accuracy", scores.shape[1], len(scores))
    return float(np.mean(scores.argmax(axis=1) == y))


class _Progress:
    """``fit [#####.....] 40/80 steps, loss 0.3123`` on stderr for a run long enough to need it:
    first drawn once the run has taken a second, then redrawn in place at most 10 times a second
    and at the end. A shorter run, or ``show`` false, draws nothing."""

    def __init__(self, total, show):
        self.total, self.show, self.start, self.drawn = total, show, time.monotonic(), None

    def update(self, done, loss, final=False):
        now, last = time.monotonic(), self.drawn
        due = (now - self.start >= 1 and not final) if last is None else (final or now - last > 0.1)
        if self.show and due:
            self.drawn, filled = now, 20 * done // self.total
            sys.stderr.write(f"\rfit [{'#' * filled}{'.' * (20 - filled)}] {done}/{self.total} "
                             f"steps, loss {loss:.4g}" + ("\n" if final else ""))


@contextmanager
def _input_grad_off(model):
    """Inside the block ``model.input_grad`` is off: the data is the model's input and nobody
    needs its gradient. The switch is restored afterwards, even after an error. A model of your
    own without the switch (only ``forward`` and ``backward``) is left as it is."""
    was = getattr(model, "input_grad", None)
    if was is not None:
        model.input_grad = False
    try:
        yield
    finally:
        if was is not None:
            model.input_grad = was


def fit(model, X, y, loss="cross_entropy", optimizer=None, lr=0.1,
        momentum=0.0, epochs=1, steps=None, batch_size=None, rng=None,
        clip=None, progress=None, X_val=None, y_val=None):
    """Train ``model`` on X of shape (N, ...) and targets y (labels (N,) or values (N, k)).

    - loss: "cross_entropy" (softmax cross-entropy on the model's logits), "mse", or a function
      ``(y_hat, y) -> (loss, grad)``.
    - optimizer: an ``optim.SGD``; None makes ``SGD(model.parameters(), lr, momentum)``.
    - epochs: passes over the data. steps: if given, exactly this many updates are made (as
      many epochs as that takes; ``epochs`` is then ignored), unless training diverges.
    - batch_size: None for the full batch (in order); else shuffled mini-batches from
      ``data.minibatches`` drawn with ``rng`` (an int seed makes them reproducible).
    - clip: the largest global gradient norm allowed (``optim.clip_grad_norm``), or None.
    - progress: None shows a progress bar unless ``BPLIB_NO_PROGRESS`` is set; True/False force it.
    - X_val, y_val: evaluated (eval mode) after every epoch; give both or neither.

    Returns a ``History``. The arguments are checked first (ValueError for nan or inf in the
    data); divergence is recorded in the History, never raised.
    """
    loss_fn = losses.get(loss, "fit")
    if isinstance(model, type) or not callable(getattr(model, "parameters", None)):
        raise TypeError(f"fit: model is {model!r}; expected a model with forward, backward and "
                        "parameters(), such as mlp([2, 16, 2])")
    if (X_val is None) != (y_val is None):
        raise ValueError("fit: only one of X_val and y_val is given; expected both or neither")
    X = validate.check_array(X, "X", "fit")
    for name, arr in (("X", X), ("y", y), ("X_val", X_val), ("y_val", y_val)):
        if np.asarray(arr).dtype.kind == "f" and not np.isfinite(arr).all():
            raise ValueError(f"fit: {name} holds nan or inf; expected finite numbers")
    optimizer = optimizer or optim.SGD(model.parameters(), lr=lr, momentum=momentum)
    for name, n in (("epochs", epochs), ("steps", steps), ("batch_size", batch_size)):
        if n is not None:
            validate.check_number(n, name, "fit", "an int >= 1")
    n_batches = 1 if batch_size is None else -(-len(X) // batch_size)
    total = steps if steps is not None else epochs * n_batches
    rng, history = as_rng(rng), History()
    show = not os.environ.get("BPLIB_NO_PROGRESS") if progress is None else bool(progress)
    bar = _Progress(total, show)
    # overflow is detected below (divergence), not printed as a RuntimeWarning
    with np.errstate(all="ignore"), _input_grad_off(model):
        while history.steps < total and history.stopped is None:
            batches = [(X, y)] if batch_size is None else data.minibatches(X, y, batch_size, rng)
            first = len(history.loss)  # this epoch's first step
            for X_batch, y_batch in batches:
                model.train()
                model.zero_grad()
                value, dout = loss_fn(model.forward(X_batch), y_batch)
                model.backward(dout)
                history.loss.append(value)
                history.grad_norm.append(optim.grad_norm(optimizer.parameters))
                history.stopped = _stop_reason(history.loss, history.grad_norm[-1])
                if history.stopped:
                    history.diverged_at = len(history.loss) - 1
                    break
                if clip is not None:
                    optim.clip_grad_norm(optimizer.parameters, clip)
                optimizer.step()
                history.steps += 1
                bar.update(history.steps, value)
                if history.steps == total:
                    break
            history.epoch_loss.append(float(np.mean(history.loss[first:])))
            if X_val is not None and history.stopped is None:
                out = predict(model, X_val)
                history.val_loss.append(loss_fn(out, y_val)[0])
                if np.ndim(y_val) == 1:
                    history.val_accuracy.append(float(np.mean(out.argmax(axis=1) == y_val)))
    bar.update(history.steps, history.final_loss, final=True)
    return history
