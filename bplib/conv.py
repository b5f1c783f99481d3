r"""A 1-D convolution layer: the same small kernel slid along a sequence.

Like PyTorch's ``conv1d`` (and every deep-learning library) this computes a *cross-correlation*
over the 'valid' positions, without flipping the kernel:

$$\text{out}[i, o, t] = b[o] + \sum_{c}\sum_{k} W[o, c, k]\, X[i, c, t + k].$$

Its backward pass is built from the same operation: the weight gradient is the correlation of
the input with $\delta$ = dout, and the input gradient is the 'full' convolution of $\delta$
with the kernel (correlation with the flipped kernel over a zero-padded $\delta$).
"""
import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from . import init as initializers
from . import validate
from .layers import Layer, Parameter


class Conv1d(Layer):
    r"""Cross-correlation of X of shape (N, C_in, T_in) with W of shape (C_out, C_in, K), plus b.

    - in_channels C_in, out_channels C_out, kernel_size K; the output has shape
      (N, C_out, T_out), T_out = T_in - K + 1 (no padding, stride 1).
    - init, rng: as for ``Linear``, with fan_in = C_in * K.
    """

    def __init__(self, in_channels, out_channels, kernel_size, init="he", rng=None):
        for name, size in (("in_channels", in_channels), ("out_channels", out_channels),
                           ("kernel_size", kernel_size)):
            validate.check_number(size, name, "Conv1d", "an int >= 1")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size = kernel_size
        # drawn as a (fan_in, fan_out) matrix, the shape every scheme in bplib.init expects
        W = initializers.initialize(init, (in_channels * kernel_size, out_channels),
                                    initializers.as_rng(rng), where=repr(self))
        self.W = Parameter(W.T.reshape(out_channels, in_channels, kernel_size), "W")
        self.b = Parameter(np.zeros(out_channels), "b")

    def forward(self, X):
        """X of shape (N, C_in, T_in) with T_in >= K -> out of shape (N, C_out, T_in - K + 1)."""
        X = self._input(X)
        C, K = self.in_channels, self.kernel_size
        if X.ndim != 3 or X.shape[1] != C or X.shape[2] < K:
            raise ValueError(f"{self._where('forward')}: X has shape "
                             f"{validate.fmt_shape(X.shape)}; expected (N, {C}, L) with L >= {K}")
        windows = sliding_window_view(X, K, axis=2)  # [n, c, t, k] = X[n, c, t + k]
        out = np.einsum("nctk,ock->not", windows, self.W.value) + self.b.value[:, None]
        return self._save(out, X)

    def backward(self, dout):
        r"""dout of shape (N, C_out, T_out) -> dX of shape (N, C_in, T_in); None with ``input_grad``
        off.

        Adds to W.grad the correlation of X with delta = dout,
        $dW[o, c, k] = \sum_i \sum_t X[i, c, t + k]\, \delta[i, o, t]$,
        and to b.grad $\sum_i \sum_t \delta[i, o, t]$.
        """
        dout = self._dout(dout)
        (X,) = self.cache
        K, T = self.kernel_size, dout.shape[2]
        # [n, c, k, t] = X[n, c, k + t]: windows as long as dout
        X_windows = sliding_window_view(X, T, axis=2)
        self.W.grad += np.einsum("nckt,not->ock", X_windows, dout)
        self.b.grad += dout.sum(axis=(0, 2))
        if not self.input_grad:  # no dX wanted: skip the full convolution below
            return None
        # dX[n, c, s] = sum_o sum_k W[o, c, k] dout[n, o, s - k], the
        # full convolution: pad dout with K - 1 zeros on both sides and
        # correlate it with the kernel flipped along k.
        padded = np.pad(dout, ((0, 0), (0, 0), (K - 1, K - 1)))
        windows = sliding_window_view(padded, K, axis=2)
        return np.einsum("nosj,ocj->ncs", windows, self.W.value[:, :, ::-1])

    def extra_repr(self):
        return f"{self.in_channels} -> {self.out_channels}, k={self.kernel_size}"
