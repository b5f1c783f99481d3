r"""Layers with a forward and a backward pass, in the style of CS231n's ``layers.py``.

``forward(X)`` computes the output and caches what ``backward`` needs. ``backward(dout)`` takes
$\partial L/\partial\,\text{out}$ (the shape of the output), returns $\partial L/\partial X$ and
*adds* the parameter gradients into each ``Parameter.grad``. Adding rather than overwriting is
what makes an input used twice (a residual block) or two backward passes come out right; call
``zero_grad()`` before each new backward pass. With ``input_grad`` off, the backward of a layer
with parameters returns None instead of $\partial L/\partial X$ (see ``Layer.input_grad``).
"""
import copy

import numpy as np

from . import init as initializers
from . import validate


class Parameter:
    """A trainable array ``value`` and the gradient ``grad`` accumulated for it (same shape)."""

    def __init__(self, value, name=""):
        self.value = validate.as_float(value, name or "value", "Parameter").copy()
        if not np.isfinite(self.value).all():
            raise ValueError(f"Parameter({name!r}): value holds nan or inf; expected finite values")
        self.grad = np.zeros_like(self.value)
        self.name = name

    @property
    def shape(self):
        return self.value.shape

    def __repr__(self):
        return f"Parameter({self.name!r}, shape={self.value.shape})"


class Layer:
    """Base class: a subclass writes ``forward`` and ``backward``; the rest is shared."""

    training = True   # train() / eval() switch it, for Dropout and BatchNorm1d
    cache = None      # what forward saved for backward; None until forward has run
    out_shape = None  # shape of the last output, which dout must match
    _input_grad = True

    def forward(self, X):
        raise NotImplementedError

    def backward(self, dout):
        raise NotImplementedError

    @property
    def input_grad(self):
        r"""Whether ``backward`` returns dX (True by default). ``fit`` switches it off for the
        model, whose input is the data: nobody needs $\partial L/\partial X$ there (PyTorch
        skips it for any tensor without ``requires_grad``). A layer with parameters then adds
        their gradients, skips the work that only dX needs and returns None. A layer without
        parameters has nothing to add and ignores the switch: a Sequential never calls it below
        its first layer with parameters, which already returned None."""
        return self._input_grad

    @input_grad.setter
    def input_grad(self, on):
        self._input_grad = on
        for layer in self._input_layers():
            layer.input_grad = on

    def _input_layers(self):
        """The layers inside this one that get its input, and so need no dX when it needs none;
        the switch is passed on to them."""
        return [child for _, child in self.children()]

    def __call__(self, X):
        return self.forward(X)

    def children(self):
        """(name, layer) pairs of the layers inside this one; containers override this."""
        return []

    def named_layers(self, path=""):
        """(path, layer) for this layer and every layer nested inside it, depth first:
        ("", self), then paths such as "0", "2.F", "2.F.0"."""
        yield path, self
        for name, child in self.children():
            yield from child.named_layers(f"{path}.{name}" if path else name)

    def walk(self):
        """This layer and every layer nested inside it, depth first."""
        return (layer for _, layer in self.named_layers())

    def named_parameters(self):
        """(name, Parameter) pairs: this layer's by attribute name, then its children's ("0.W").
        A Parameter shared by two layers is listed once, under its first name."""
        found = {}
        for path, layer in self.named_layers():
            for name, p in vars(layer).items():
                if isinstance(p, Parameter):
                    found.setdefault(id(p), (f"{path}.{name}" if path else name, p))
        return list(found.values())

    def parameters(self):
        return [p for _, p in self.named_parameters()]

    def zero_grad(self):
        for p in self.parameters():
            p.grad.fill(0.0)

    def train(self, mode=True):
        self.training = mode
        for _, child in self.children():
            child.train(mode)
        return self

    def eval(self):
        return self.train(False)

    def extra_repr(self):
        return ""

    def __repr__(self):
        return f"{type(self).__name__}({self.extra_repr()})"

    def _where(self, method):
        """Where an error happened: "ReLU.backward", "Linear(3 -> 4).forward"."""
        return f"{repr(self) if self.extra_repr() else type(self).__name__}.{method}"

    def _input(self, X, shape=None):
        """X, checked. A float ndarray with a non-empty batch whose trailing sizes match ``shape``
        passes without further work (the common case, at every layer of every step)."""
        if type(X) is np.ndarray and X.dtype.kind == "f":
            got = X.shape
            if got and got[0] and (shape is None or got[1:] == shape[1:]):
                return X
        return validate.check_array(X, "X", self._where("forward"), shape)

    def _save(self, out, *cache):
        """Keep ``cache`` for backward and the output's shape to check dout against."""
        self.cache, self.out_shape = cache, out.shape
        return out

    def _dout(self, dout):
        """dout, checked against the output of the last forward (a float ndarray of exactly
        that shape passes without further work)."""
        if (self.cache is not None and type(dout) is np.ndarray and dout.dtype.kind == "f"
                and dout.shape == self.out_shape):
            return dout
        return validate.check_dout(dout, self._where("backward"), self.cache, self.out_shape)


def parameter_list(parameters, where):
    """The parameters as a list, each once (an optimizer must not step one twice); TypeError
    naming the first entry that is not a Parameter, ValueError if there is none."""
    if isinstance(parameters, (Layer, Parameter)) or not hasattr(parameters, "__iter__"):
        raise TypeError(f"{where}: parameters is a {type(parameters).__name__}; "
                        "expected a list of Parameters such as model.parameters()")
    params = list(parameters)
    for i, p in enumerate(params):
        if not isinstance(p, Parameter):
            raise TypeError(f"{where}: parameters[{i}] has type {type(p).__name__}; "
                            "expected a Parameter (pass model.parameters())")
    if not params:
        raise ValueError(f"{where}: parameters is empty; expected at least one Parameter "
                         "(a model without weights, or a generator already used up?)")
    return list({id(p): p for p in params}.values())


class Linear(Layer):
    r"""Affine layer $\text{out} = XW + b$.

    - in_features D, out_features M: W has shape (D, M) and b shape (M,).
    - init: a name from ``bplib.init.SCHEMES`` ("he" by default), a float sigma meaning
      normal(sigma), or a function ``f(shape, rng)`` returning an array of shape (D, M).
    - rng: an int seed, a np.random.Generator, or None.
    """

    def __init__(self, in_features, out_features, init="he", rng=None):
        for name, size in (("in_features", in_features), ("out_features", out_features)):
            validate.check_number(size, name, "Linear", "an int >= 1")
        self.in_features, self.out_features = in_features, out_features
        W = initializers.initialize(init, (in_features, out_features), initializers.as_rng(rng),
                                    where=repr(self))
        self.W = Parameter(W, "W")
        self.b = Parameter(np.zeros(out_features), "b")

    def forward(self, X):
        """X of shape (N, n_in) -> out of shape (N, n_out)."""
        X = self._input(X, ("N", self.in_features))
        out = X @ self.W.value
        out += self.b.value  # out is a fresh array: add in place
        return self._save(out, X)

    def backward(self, dout):
        r"""dout of shape (N, n_out) -> dX of shape (N, n_in), or None with ``input_grad`` off. Adds
        $X^\top\,dout$ to W.grad and the column sums of dout to b.grad (b was added to every
        row)."""
        dout = self._dout(dout)
        (X,) = self.cache
        self.W.grad += X.T @ dout
        self.b.grad += dout.sum(axis=0)
        if not self.input_grad:  # no dout @ W.T: a third of the layer's work
            return None
        return dout @ self.W.value.T

    def extra_repr(self):
        return f"{self.in_features} -> {self.out_features}"


class ReLU(Layer):
    r"""$\max(0, x)$ elementwise, any shape (N, ...). Backward lets dout through where $x > 0$."""

    def forward(self, X):
        X = self._input(X)
        return self._save(np.maximum(X, 0.0), X > 0)

    def backward(self, dout):
        dout = self._dout(dout)
        (mask,) = self.cache
        return dout * mask


class LeakyReLU(Layer):
    r"""$x$ for $x > 0$, else $\alpha x$; the slope (1 or $\alpha$) is cached for backward."""

    def __init__(self, alpha=0.01):
        self.alpha = validate.check_number(alpha, "alpha", "LeakyReLU", "a number >= 0")

    def forward(self, X):
        X = self._input(X)
        slope = np.where(X > 0, 1.0, self.alpha)
        return self._save(X * slope, slope)

    def backward(self, dout):
        dout = self._dout(dout)
        (slope,) = self.cache
        return dout * slope

    def extra_repr(self):
        return f"alpha={self.alpha}"


def sigmoid(x):
    r"""$\sigma(x) = 1/(1 + e^{-x})$ without overflow: $e^{-|x|} \le 1$ is the only exponential."""
    x = validate.as_float(x, "x", "sigmoid")
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


class Sigmoid(Layer):
    r"""$\sigma(x)$ elementwise. The output $a$ is cached: $d\sigma/dx = a(1 - a)$."""

    def forward(self, X):
        out = sigmoid(self._input(X))
        return self._save(out, out)

    def backward(self, dout):
        dout = self._dout(dout)
        (out,) = self.cache
        return dout * out * (1.0 - out)


class Tanh(Layer):
    r"""$\tanh(x)$ elementwise. The output $a$ is cached: $d\tanh/dx = 1 - a^2$."""

    def forward(self, X):
        out = np.tanh(self._input(X))
        return self._save(out, out)

    def backward(self, dout):
        dout = self._dout(dout)
        (out,) = self.cache
        return dout * (1.0 - out**2)


ACTIVATIONS = {"relu": ReLU, "leaky_relu": LeakyReLU, "sigmoid": Sigmoid, "tanh": Tanh}


def _check_layer(layer, where, what):
    if not isinstance(layer, Layer):
        raise TypeError(f"{where}: {what} is {layer!r}; expected a Layer instance such as "
                        "Linear(2, 3) or ReLU()")
    return layer


def _refuse_reuse(container):
    """A layer caches the input of its last forward pass, so one layer object in two places of
    a tree would run its backward on the wrong input: refused when the tree is built."""
    first = {}
    for path, layer in container.named_layers():
        name = type(layer).__name__
        if id(layer) in first:
            raise ValueError(f"{type(container).__name__}: layer {path} is the same {name} object "
                             f"as layer {first[id(layer)]}; a layer caches one input per forward "
                             f"pass; use a new {name}() for each place")
        first[id(layer)] = path


class Sequential(Layer):
    """Layers applied in order; backward runs through them in reverse. A layer object may appear
    only once in the tree (it caches one input): Sequential(act, ..., act) is refused."""

    def __init__(self, *layers):
        self.layers = [_check_layer(layer, "Sequential", f"layer {i}")
                       for i, layer in enumerate(layers)]
        _refuse_reuse(self)

    def forward(self, X):
        for layer in self.layers:
            X = layer.forward(X)
        return X

    def backward(self, dout):
        for layer in reversed(self.layers):
            dout = layer.backward(dout)
            if dout is None:  # that layer's input needs no gradient: nothing below has any to add
                return None
        return dout

    def _input_layers(self):
        """The layers up to the first one that has parameters: with the input needing no
        gradient, that first one returns None, and the layers below it are not visited."""
        first = next((i for i, layer in enumerate(self.layers) if layer.parameters()),
                     len(self.layers))
        return self.layers[:first + 1]

    def children(self):
        return [(str(i), layer) for i, layer in enumerate(self.layers)]

    def __getitem__(self, i):
        return Sequential(*self.layers[i]) if isinstance(i, slice) else self.layers[i]

    def __len__(self):
        return len(self.layers)

    def __iter__(self):
        return iter(self.layers)

    def extra_repr(self):
        return ", ".join(repr(layer) for layer in self.layers)


def activation_layer(act, where="activation_layer"):
    """A new activation layer: from a name in ACTIVATIONS ("relu"), a Layer class (``Tanh``), or
    a copy of a layer (``LeakyReLU(0.1)``), so that every place gets a layer of its own."""
    if isinstance(act, Layer):
        return copy.deepcopy(act)
    if isinstance(act, str) and act in ACTIVATIONS:
        return ACTIVATIONS[act]()
    if isinstance(act, type) and issubclass(act, Layer):
        return act()
    raise ValueError(f"{where}: activation = {act!r}; expected one of {sorted(ACTIVATIONS)}, "
                     "a Layer class such as Tanh or a layer such as LeakyReLU(0.1)")


def mlp(sizes, activation="relu", init="he", rng=None, final_activation=None):
    """Sequential(Linear(sizes[0], sizes[1]), activation, ..., Linear(sizes[-2], sizes[-1])).

    ``mlp([2, 16, 16, 2])`` has two hidden layers of 16. Each activation is a fresh layer (each
    caches its own input); ``final_activation`` (None by default) follows the last Linear. All
    layers draw their weights from one generator, so one seed fixes the whole network.
    """
    if not isinstance(sizes, (list, tuple)) or len(sizes) < 2:
        raise ValueError(f"mlp: sizes = {sizes!r}; expected at least [in, out], e.g. [2, 16, 2]")
    rng = initializers.as_rng(rng)
    layers = []
    for i, (d_in, d_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(Linear(d_in, d_out, init=init, rng=rng))
        act = activation if i < len(sizes) - 2 else final_activation
        if act is not None:
            layers.append(activation_layer(act, "mlp"))
    return Sequential(*layers)


class Residual(Layer):
    r"""$\text{out} = X + F(X)$ for a layer F that keeps the shape.

    X reaches the output along two paths, straight and through F, so its gradient is the sum
    ``dout + F.backward(dout)``.
    """

    def __init__(self, F):
        self.F = _check_layer(F, "Residual", "F")
        _refuse_reuse(self)

    def forward(self, X):
        X = self._input(X)
        FX = self.F.forward(X)
        if FX.shape != X.shape:
            raise ValueError(f"{self._where('forward')}: F(X) has shape {FX.shape}; expected "
                             f"{X.shape}, the shape of X, so that X + F(X) is defined")
        return X + FX

    def backward(self, dout):
        dX_F = self.F.backward(dout)  # None when input_grad is off and F has parameters
        return dout + dX_F if self.input_grad else None

    def children(self):
        return [("F", self.F)]

    def extra_repr(self):
        return repr(self.F)


class Dropout(Layer):
    r"""Inverted dropout with drop probability p.

    In training each entry is zeroed with probability p and the survivors are scaled by
    $1/(1-p)$, so the expected output is X and eval mode needs no rescaling. The mask (entries 0
    or $1/(1-p)$, shape of X) is cached in ``cache[0]``; backward multiplies dout by it. In eval
    mode the layer is the identity.
    """

    def __init__(self, p=0.5, rng=None):
        self.p = validate.check_number(p, "p", "Dropout", "a drop probability in [0, 1)")
        self.rng = initializers.as_rng(rng)

    def forward(self, X):
        X = self._input(X)
        if not self.training:
            return self._save(X, None)
        mask = (self.rng.random(X.shape) >= self.p) / (1.0 - self.p)
        return self._save(X * mask, mask)

    def backward(self, dout):
        dout = self._dout(dout)
        (mask,) = self.cache
        return dout if mask is None else dout * mask

    def extra_repr(self):
        return f"p={self.p}"


class BatchNorm1d(Layer):
    r"""Batch normalisation of X of shape (N, n), feature by feature:
    $\hat x = (x - \mu_B)/\sqrt{\sigma_B^2 + \epsilon_\text{BN}}$,
    $\text{out} = \gamma \hat x + \beta$, with $\mu_B$ and $\sigma_B^2$ the batch's mean and
    variance and $\epsilon_\text{BN}$ = ``eps``.

    Training uses the batch mean and (biased) variance, and updates ``running_mean`` and
    ``running_var`` as ``(1 - momentum) * running + momentum * batch`` (with the unbiased batch
    variance, as PyTorch does). Eval normalises with the running statistics instead.
    Parameters gamma and beta have shape (n,). A training batch whose mean or variance is nan or
    inf is refused before it reaches the running statistics (one bad batch would spoil them).
    """

    def __init__(self, num_features, momentum=0.1, eps=1e-5):
        where = "BatchNorm1d"
        self.num_features = validate.check_number(num_features, "num_features", where,
                                                  "an int >= 1")
        self.momentum = validate.check_number(momentum, "momentum", where, "a number in [0, 1]")
        self.eps = validate.check_number(eps, "eps", where, "a number > 0")
        self.gamma = Parameter(np.ones(num_features), "gamma")
        self.beta = Parameter(np.zeros(num_features), "beta")
        self.running_mean = np.zeros(num_features)
        self.running_var = np.ones(num_features)

    def forward(self, X):
        X = self._input(X, ("N", self.num_features))
        if self.training:
            N = X.shape[0]
            if N < 2:
                raise ValueError(f"{self._where('forward')}: X has shape {X.shape}; expected "
                                 "N >= 2 in training mode (one sample has no variance)")
            mean, var = X.mean(axis=0), X.var(axis=0)
            if not np.isfinite([mean, var]).all():  # before the running statistics change
                raise ValueError(f"{self._where('forward')}: X has a batch mean or variance of "
                                 "nan or inf; expected finite numbers (running statistics kept)")
            m = self.momentum
            self.running_mean = (1 - m) * self.running_mean + m * mean
            self.running_var = (1 - m) * self.running_var + m * var * N / (N - 1)
        else:
            mean, var = self.running_mean, self.running_var
        inv_std = 1.0 / np.sqrt(var + self.eps)
        X_hat = (X - mean) * inv_std
        out = self.gamma.value * X_hat + self.beta.value
        return self._save(out, X_hat, inv_std, self.training)

    def backward(self, dout):
        r"""dout of shape (N, n) -> dX of shape (N, n), or None with ``input_grad`` off.

        With $d\hat x = \gamma \cdot dout$: in training, where the mean and variance depend on X,
        $dX = \frac{1}{N\sigma_B}\big(N d\hat x - \sum_i d\hat x_i
        - \hat x \sum_i d\hat x_i \hat x_i\big)$, $\sigma_B = \sqrt{\sigma_B^2+\epsilon_\text{BN}}$;
        in eval simply $d\hat x$ over the running standard deviation.
        """
        dout = self._dout(dout)
        X_hat, inv_std, batch_stats = self.cache
        self.gamma.grad += (dout * X_hat).sum(axis=0)
        self.beta.grad += dout.sum(axis=0)
        if not self.input_grad:  # no dX wanted
            return None
        dX_hat = dout * self.gamma.value
        if not batch_stats:
            return dX_hat * inv_std
        N = dout.shape[0]
        return inv_std / N * (N * dX_hat - dX_hat.sum(axis=0)
                              - X_hat * (dX_hat * X_hat).sum(axis=0))

    def extra_repr(self):
        return f"{self.num_features}"
