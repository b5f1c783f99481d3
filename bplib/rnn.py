r"""A recurrent layer and its backward pass through time.

A tanh RNN reads a sequence $x_1, \dots, x_T$ and keeps a hidden state,
$h_t = \tanh(x_t W_{xh} + h_{t-1} W_{hh} + b_h)$, with the same weights at every step. Unrolled
over the $T$ steps it is a deep network whose layers share $W_{xh}$, $W_{hh}$ and $b_h$, so
backward (backpropagation through time) adds each weight's contributions from all steps.
"""
import numpy as np

from . import init as initializers
from . import validate
from .layers import Layer, Parameter


class RNN(Layer):
    r"""Tanh recurrent layer over X of shape (N, T, n_in), hidden size n_h.

    - W_xh (n_in, n_h), W_hh (n_h, n_h) and b_h (n_h,) are shared by all T steps.
    - init, rng: as for ``Linear`` (both matrices are drawn with ``init``, "xavier" by default).
    - After ``backward``: ``dH`` of shape (N, T, n_h) holds $\partial L/\partial h_t$ for every
      t (from the output at step t and from $h_{t+1}$), ``dh0`` that of the initial state.
    """

    def __init__(self, in_features, hidden_size, init="xavier", rng=None):
        for name, size in (("in_features", in_features), ("hidden_size", hidden_size)):
            validate.check_number(size, name, "RNN", "an int >= 1")
        self.in_features, self.hidden_size, rng = in_features, hidden_size, initializers.as_rng(rng)
        W = (lambda n: initializers.initialize(init, (n, hidden_size), rng, where=repr(self)))
        self.W_xh, self.W_hh = Parameter(W(in_features), "W_xh"), Parameter(W(hidden_size), "W_hh")
        self.b_h = Parameter(np.zeros(hidden_size), "b_h")

    def forward(self, X, h0=None):
        """X of shape (N, T, n_in), h0 of shape (N, n_h) (None: zeros) -> H of shape
        (N, T, n_h), whose step t is h_t."""
        X = self._input(X, ("N", "T", self.in_features))
        shape = (len(X), self.hidden_size)  # of h0 and of every h_t
        h = h0 = (np.zeros(shape, X.dtype) if h0 is None
                  else validate.check_array(h0, "h0", self._where("forward"), shape))
        H = np.empty(X.shape[:2] + shape[1:], dtype=np.result_type(X, h0))
        for t in range(X.shape[1]):
            h = H[:, t] = np.tanh(X[:, t] @ self.W_xh.value + h @ self.W_hh.value + self.b_h.value)
        return self._save(H, X, h0, H)

    def backward(self, dout):
        r"""dout of shape (N, T, n_h) -> dX of shape (N, T, n_in), or None with ``input_grad``
        off. From t = T down to 1: $\partial L/\partial h_t$ = dout[:, t] plus what came back
        from $h_{t+1}$; $\delta_t$ (the gradient of the pre-activation) = that times
        $1 - h_t^2$; each shared weight adds its step's share ($x_t^\top \delta_t$,
        $h_{t-1}^\top \delta_t$, $\sum_i \delta_t$), and $\delta_t W_{hh}^\top$ goes on to
        $h_{t-1}$."""
        dout = self._dout(dout)
        X, h0, H = self.cache
        self.dH, dX, dh = np.empty_like(H), np.empty_like(X), np.zeros_like(h0)
        for t in reversed(range(X.shape[1])):
            dh = self.dH[:, t] = dh + dout[:, t]
            delta = dh * (1.0 - H[:, t] ** 2)
            self.W_xh.grad += X[:, t].T @ delta
            self.W_hh.grad += (H[:, t - 1] if t else h0).T @ delta
            self.b_h.grad += delta.sum(axis=0)
            dX[:, t], dh = delta @ self.W_xh.value.T, delta @ self.W_hh.value.T  # to x_t, h_{t-1}
        self.dh0 = dh
        return dX if self.input_grad else None

    def extra_repr(self):
        return f"{self.in_features} -> {self.hidden_size}"
