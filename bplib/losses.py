r"""Loss functions. Each returns ``(loss, grad)``: the loss as a float and
$\partial\,\text{loss}/\partial\,\text{input}$ with the input's shape, ready to be the ``dout``
of the last layer's backward.
"""
import numpy as np

from . import validate
from .layers import parameter_list


def mse_loss(y_hat, y):
    r"""Mean squared error $\frac{1}{M}\sum (\hat y - y)^2$ over all $M$ entries.

    y_hat and y must have the same shape, e.g. (N, 1): a y of shape (N,) against a y_hat of
    shape (N, 1) would silently broadcast to (N, N), so it is refused. For one output this is
    exactly $(y - \hat y)^2$. The gradient is $2(\hat y - y)/M$. The targets y must be finite;
    a y_hat of nan or inf (a model that diverged) gives a loss of nan or inf.
    """
    y_hat = validate.check_array(y_hat, "y_hat", "mse_loss")
    y = validate.check_array(y, "y", "mse_loss", y_hat.shape)
    if not np.isfinite(y).all():
        raise ValueError("mse_loss: y holds nan or inf; expected finite target values")
    diff = y_hat - y
    return float(np.mean(diff**2)), 2.0 * diff / diff.size


def log_softmax(logits):
    r"""$z_c - \log\sum_k e^{z_k}$ along the last axis, shifting by $\max_k z_k$ so no exponent
    exceeds 0 (log-sum-exp): no overflow even for logits of 1e4."""
    z = validate.check_array(logits, "logits", "log_softmax")
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - np.log(np.exp(shifted).sum(axis=-1, keepdims=True))


def softmax(logits):
    r"""$e^{z_c} / \sum_k e^{z_k}$ along the last axis, computed stably (rows sum to 1)."""
    return np.exp(log_softmax(validate.check_array(logits, "logits", "softmax")))


def softmax_cross_entropy(logits, y):
    r"""Mean cross-entropy of softmax(logits) against the targets.

    - logits: of shape (N, C).
    - y: integer labels of shape (N,) in [0, C), or target probabilities of shape (N, C)
      (rows of non-negative numbers summing to 1, e.g. one-hot).

    Returns the loss $-\frac{1}{N}\sum_i \sum_c y_{ic} \log p_{ic}$ and its gradient
    $(p - y)/N$ of shape (N, C), where $p$ = softmax(logits) and $y$ the one-hot targets.
    """
    where = "softmax_cross_entropy"
    logits = validate.check_array(logits, "logits", where, ("N", "C"))
    N, C = logits.shape
    log_p = log_softmax(logits)
    if np.ndim(y) == 2:
        targets = validate.check_array(y, "y", where, (N, C))
        if np.any(targets < 0) or not np.allclose(targets.sum(axis=1), 1.0):
            raise ValueError(f"{where}: y has shape ({N}, {C}) but its rows are not "
                             "probabilities; expected non-negative rows summing to 1")
        return float(-np.sum(targets * log_p) / N), (np.exp(log_p) - targets) / N
    # Integer labels: the one-hot t is never built; p - t subtracts 1 at each row's label.
    rows, labels = np.arange(N), validate.check_labels(y, "y", where, C, N)
    grad = np.exp(log_p)
    grad[rows, labels] -= 1.0
    grad /= N
    return float(-log_p[rows, labels].sum() / N), grad


def masked_softmax_cross_entropy(logits, y, mask):
    r"""Cross-entropy of a batch of padded sequences, averaged over the real positions only.

    - logits: of shape (N, T, C), one row of C scores per sequence i and position t.
    - y: integer labels of shape (N, T); at padded positions they are ignored (any value,
      e.g. -1).
    - mask: of shape (N, T), true (or 1) at real positions and false (0) at padding.

    Returns $-\frac{1}{M}\sum_{i,t} m_{it} \log p_{it, y_{it}}$ with $M = \sum m_{it}$, and its
    gradient of shape (N, T, C): $(p - y)/M$ (y one-hot) at real positions and exactly 0 at
    padded ones, which this loss never reads.
    """
    where = "masked_softmax_cross_entropy"
    logits = validate.check_array(logits, "logits", where, ("N", "T", "C"))
    mask = validate.check_array(mask, "mask", where, logits.shape[:2])
    if not np.isin(mask, (0, 1)).all():
        raise ValueError(f"{where}: mask holds values other than 0 and 1; expected 0 or 1 only")
    mask = mask != 0
    labels = validate.check_shape(np.asarray(y), "y", where, logits.shape[:2])
    if not mask.any():
        raise ValueError(f"{where}: mask is all zero; expected at least one real position")
    loss, grad_real = softmax_cross_entropy(logits[mask], labels[mask])
    grad = np.zeros_like(logits)
    grad[mask] = grad_real
    return loss, grad


def l2_penalty(parameters, lam):
    r"""Weight decay term $\frac{\lambda_\text{wd}}{2}\sum_W \lVert W\rVert^2$ over the given
    parameters (``lam`` is $\lambda_\text{wd}$).

    Side effect: adds its gradient $\lambda_\text{wd} W$ into each ``parameter.grad``, so call it
    after ``zero_grad()`` and before the optimizer step, and pass only the weights you want decayed
    (usually not biases); one listed twice counts once. Returns the penalty as a float, to add
    to the data loss.
    """
    lam = validate.check_number(lam, "lam", "l2_penalty", "a number >= 0")
    total = 0.0
    for p in parameter_list(parameters, "l2_penalty"):
        total += 0.5 * lam * float(np.sum(p.value**2))
        p.grad += lam * p.value
    return total


LOSSES = {"cross_entropy": softmax_cross_entropy, "mse": mse_loss}


def get(loss, where="losses.get"):
    """The loss function ``(y_hat, y) -> (loss, grad)`` named ``loss`` in LOSSES, or ``loss``
    itself if it is already a function."""
    if callable(loss):
        return loss
    if not isinstance(loss, str) or loss not in LOSSES:
        raise ValueError(f"{where}: loss = {loss!r}; expected one of {sorted(LOSSES)} or a "
                         "function (y_hat, y) -> (loss, grad)")
    return LOSSES[loss]
