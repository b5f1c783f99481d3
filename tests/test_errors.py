"""Bad input gets a ValueError or TypeError naming the layer or op, the argument, what was
expected and what arrived; never a bare numpy traceback, never an ``assert``."""
import ast
import re
from pathlib import Path

import numpy as np
import pytest

from bplib import data, diagnostics, gradcheck, init, measure, optim, precision, train
from bplib.checkpoint import Checkpoint, checkpoint_sequential
from bplib.engine import Value
from bplib.forward_mode import Dual, gradient_forward, gradient_reverse
from bplib.layers import (BatchNorm1d, Dropout, Linear, Parameter, ReLU, Residual, Sequential,
                          Sigmoid, Tanh, mlp, sigmoid)
from bplib.losses import (l2_penalty, log_softmax, masked_softmax_cross_entropy, mse_loss,
                          softmax, softmax_cross_entropy)


def after_forward(layer, X):
    layer.forward(X)
    return layer


def used_twice(layer, *between):
    """Sequential(Linear(2, 3), layer, *between, layer): one layer object in two places."""
    return Sequential(Linear(2, 3), layer, *between, layer)


def grads_with(value):
    """The parameters of a Linear(2, 2) whose first gradient entry is ``value``."""
    layer = Linear(2, 2, rng=0)
    layer.W.grad[0, 0] = value
    return layer.parameters()


X4, Y4 = np.ones((4, 2)), np.array([0, 1, 0, 1])


ERRORS = [  # (what to run, the exception, the message it must contain)
    # shapes
    (lambda: Linear(3, 4).forward(np.ones((5, 2))), ValueError,
     "Linear(3 -> 4).forward: X has shape (5, 2); expected (N, 3)"),
    (lambda: Linear(3, 4).forward(np.ones(3)), ValueError,
     "Linear(3 -> 4).forward: X has shape (3,); expected (N, 3)"),
    (lambda: mlp([2, 4, 1]).forward(np.ones((3, 3))), ValueError,
     "Linear(2 -> 4).forward: X has shape (3, 3); expected (N, 2)"),
    (lambda: BatchNorm1d(3).forward(np.ones((4, 2))), ValueError,
     "BatchNorm1d(3).forward: X has shape (4, 2); expected (N, 3)"),
    (lambda: BatchNorm1d(3).forward(np.ones((1, 3))), ValueError,
     "BatchNorm1d(3).forward: X has shape (1, 3); expected N >= 2 in training mode"),
    (lambda: Residual(Linear(3, 2)).forward(np.ones((4, 3))), ValueError,
     "Residual(Linear(3 -> 2)).forward: F(X) has shape (4, 2); expected (4, 3)"),
    (lambda: mse_loss(np.ones((5, 1)), np.ones(5)), ValueError,
     "mse_loss: y has shape (5,); expected (5, 1)"),
    (lambda: softmax_cross_entropy(np.zeros(4), 1), ValueError,
     "softmax_cross_entropy: logits has shape (4,); expected (N, C)"),
    (lambda: masked_softmax_cross_entropy(np.zeros((2, 3)), np.zeros((2, 3)), np.ones((2, 3))),
     ValueError, "masked_softmax_cross_entropy: logits has shape (2, 3); expected (N, T, C)"),
    (lambda: masked_softmax_cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 3)), np.ones((2, 4))),
     ValueError, "masked_softmax_cross_entropy: mask has shape (2, 4); expected (2, 3)"),
    (lambda: masked_softmax_cross_entropy(np.zeros((2, 3, 4)), np.zeros(6), np.ones((2, 3))),
     ValueError, "masked_softmax_cross_entropy: y has shape (6,); expected (2, 3)"),
    (lambda: masked_softmax_cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 3)), np.zeros((2, 3))),
     ValueError, "masked_softmax_cross_entropy: mask is all zero; expected at least one real"),
    (lambda: ReLU().forward(3.0), ValueError, "ReLU.forward: X is a scalar; expected"),
    # dtypes (int and bool are converted to float64)
    (lambda: ReLU().forward(np.array([["a", "b"]])), TypeError,
     "ReLU.forward: X has dtype <U1; expected real numbers"),
    (lambda: Linear(2, 2).forward(np.array([[None, 1]], dtype=object)), TypeError,
     "Linear(2 -> 2).forward: X has dtype object; expected real numbers"),
    (lambda: Sigmoid().forward(np.ones((2, 2)) * 1j), TypeError,
     "Sigmoid.forward: X has dtype complex128; expected real numbers"),
    (lambda: Tanh().forward([[1.0, 2.0], [3.0]]), TypeError,
     "Tanh.forward: X is not a rectangular array of numbers"),
    # empty batch
    (lambda: Linear(3, 4).forward(np.ones((0, 3))), ValueError,
     "Linear(3 -> 4).forward: X has shape (0, 3); expected a non-empty batch (N >= 1)"),
    (lambda: mse_loss(np.ones((0, 1)), np.ones((0, 1))), ValueError,
     "mse_loss: y_hat has shape (0, 1); expected a non-empty batch"),
    # labels
    (lambda: softmax_cross_entropy(np.zeros((3, 4)), [0, 4, 1]), ValueError,
     "softmax_cross_entropy: y has labels from 0 to 4; expected integers in [0, 4)"),
    (lambda: softmax_cross_entropy(np.zeros((3, 4)), [0, -1, 1]), ValueError,
     "y has labels from -1 to 1; expected integers in [0, 4)"),
    (lambda: softmax_cross_entropy(np.zeros((3, 4)), [0.0, 1.5, 2.0]), ValueError,
     "softmax_cross_entropy: y holds non-integer labels such as 1.5"),
    (lambda: softmax_cross_entropy(np.zeros((3, 4)), [0.0, np.inf, 2.0]), ValueError,
     "softmax_cross_entropy: y holds non-integer labels such as inf"),
    (lambda: softmax_cross_entropy(np.zeros((3, 4)), ["a", "b", "c"]), TypeError,
     "softmax_cross_entropy: y has dtype <U1; expected integer class labels in [0, 4)"),
    (lambda: softmax_cross_entropy(np.zeros((3, 4)), [0, 1]), ValueError,
     "softmax_cross_entropy: y has shape (2,); expected (3,)"),
    (lambda: softmax_cross_entropy(np.zeros((2, 3)), np.ones((2, 3))), ValueError,
     "softmax_cross_entropy: y has shape (2, 3) but its rows are not probabilities"),
    # backward before forward, and a dout of the wrong shape
    (lambda: ReLU().backward(np.ones((2, 2))), ValueError,
     "ReLU.backward: called before forward; run forward(X) first"),
    (lambda: Linear(3, 4).backward(np.ones((2, 4))), ValueError,
     "Linear(3 -> 4).backward: called before forward; run forward(X) first"),
    (lambda: after_forward(Linear(3, 4), np.ones((5, 3))).backward(np.ones((5, 3))), ValueError,
     "Linear(3 -> 4).backward: dout has shape (5, 3); expected (5, 4), the shape of the output"),
    (lambda: after_forward(Dropout(0.5), np.ones((5, 3))).backward(np.ones(5)), ValueError,
     "Dropout(p=0.5).backward: dout has shape (5,); expected (5, 3)"),
    (lambda: after_forward(Tanh(), np.ones((2, 3))).backward("x"), TypeError,
     "Tanh.backward: dout has dtype <U1"),
    # constructor arguments
    (lambda: Linear(0, 3), ValueError, "Linear: in_features = 0; expected an int >= 1"),
    (lambda: Linear(2.5, 3), TypeError, "Linear: in_features = 2.5 is a float; expected an int"),
    (lambda: Linear(3, 2, init=lambda shape, rng: np.ones((2, 3))), ValueError,
     "Linear(3 -> 2): init(shape, rng) has shape (2, 3); expected (3, 2)"),
    (lambda: Linear(3, 2, init=[0.1]), TypeError, "Linear(3 -> 2): init is a list; expected"),
    (lambda: Linear(3, 2, init="kaiming"), ValueError, "init.get: unknown scheme 'kaiming'"),
    (lambda: Dropout(1.0), ValueError, "Dropout: p = 1.0; expected a drop probability in [0, 1)"),
    (lambda: Sequential(Linear(2, 3), ReLU), TypeError, "Sequential: layer 1 is <class"),
    (lambda: mlp([2, 3], activation="softmax", final_activation="softmax"), ValueError,
     "mlp: activation = 'softmax'; expected one of"),
    (lambda: mlp([2]), ValueError, "mlp: sizes = [2]; expected at least [in, out]"),
    (lambda: init.he_normal((3,)), ValueError, "init.he_normal: shape = (3,); expected (fan_in"),
    # optimisers, penalties, tools
    (lambda: optim.SGD(Linear(2, 2).parameters(), lr=-0.1), ValueError,
     "SGD: lr = -0.1; expected a number >= 0"),
    (lambda: optim.SGD(Linear(2, 2).parameters(), lr=0.1, momentum=1.0), ValueError,
     "SGD: momentum = 1.0; expected a number in [0, 1)"),
    (lambda: optim.SGD(mlp([2, 2]), lr=0.1), TypeError,
     "SGD: parameters is a Sequential; expected a list of Parameters such as model.parameters()"),
    (lambda: optim.SGD([np.ones(3)], lr=0.1), TypeError,
     "SGD: parameters[0] has type ndarray; expected a Parameter"),
    (lambda: optim.clip_grad_norm(Linear(2, 2).parameters(), 0), ValueError,
     "clip_grad_norm: max_norm = 0; expected a number > 0"),
    (lambda: l2_penalty(Linear(2, 2).parameters(), -1.0), ValueError,
     "l2_penalty: lam = -1.0; expected a number >= 0"),
    (lambda: gradcheck.numerical_gradient(lambda x: x, np.arange(3)), TypeError,
     "numerical_gradient: x is ndarray of dtype int64; expected a float64 ndarray"),
    (lambda: data.minibatches(np.ones((5, 2)), np.ones(4), 2), ValueError,
     "minibatches: X has shape (5, 2) and y has shape (4,); expected the same number of rows"),
    (lambda: data.moons(n=200, noise=-0.1), ValueError,
     "moons: noise = -0.1; expected a number >= 0"),
    # ---- careless use: empty batches, fit, layers used twice, optimisers, non-finite values ----
    # empty batches, zero classes (every size of an array must be >= 1)
    (lambda: softmax_cross_entropy(np.zeros((3, 0)), [0, 0, 0]), ValueError,
     "softmax_cross_entropy: logits has shape (3, 0); expected every size >= 1"),
    (lambda: softmax_cross_entropy(np.zeros((0, 3)), []), ValueError,
     "softmax_cross_entropy: logits has shape (0, 3); expected a non-empty batch (N >= 1)"),
    (lambda: softmax(np.zeros((0, 3))), ValueError,
     "softmax: logits has shape (0, 3); expected a non-empty batch (N >= 1)"),
    (lambda: softmax(np.zeros((2, 0))), ValueError,
     "softmax: logits has shape (2, 0); expected every size >= 1"),
    (lambda: log_softmax(3.0), ValueError,
     "log_softmax: logits is a scalar; expected an array of shape (N, ...)"),
    (lambda: mse_loss(np.ones((3, 0)), np.ones((3, 0))), ValueError,
     "mse_loss: y_hat has shape (3, 0); expected every size >= 1"),
    (lambda: masked_softmax_cross_entropy(np.zeros((2, 3, 0)), np.zeros((2, 3)), np.ones((2, 3))),
     ValueError, "masked_softmax_cross_entropy: logits has shape (2, 3, 0); expected every size"),
    (lambda: data.minibatches(np.ones((0, 2)), np.ones(0), 2), ValueError,
     "minibatches: X has shape (0, 2) and y has shape (0,); expected the same number of rows"),
    # fit: its arguments are checked before the first step
    (lambda: train.fit(mlp([2, 2]), X4, Y4, batch_size=0), ValueError,
     "fit: batch_size = 0; expected an int >= 1"),
    (lambda: train.fit(mlp([2, 2]), X4, Y4, batch_size=2.5), TypeError,
     "fit: batch_size = 2.5 is a float; expected an int >= 1"),
    (lambda: train.fit([Linear(2, 2)], X4, Y4), TypeError,
     "fit: model is [Linear(2 -> 2)]; expected a model with forward, backward and parameters()"),
    (lambda: train.fit(Linear, X4, Y4), TypeError,
     "fit: model is <class 'bplib.layers.Linear'>; expected a model with forward, backward"),
    (lambda: train.fit(lambda X: X, X4, Y4), TypeError, "fit: model is <function"),
    (lambda: train.fit(mlp([2, 2]), X4, Y4, X_val=X4), ValueError,
     "fit: only one of X_val and y_val is given; expected both or neither"),
    (lambda: train.fit(mlp([2, 2]), np.ones((0, 2)), [], batch_size=2), ValueError,
     "fit: X has shape (0, 2); expected a non-empty batch (N >= 1)"),
    (lambda: train.fit(mlp([2, 2]), [[1.0, np.nan]] * 4, Y4), ValueError,
     "fit: X holds nan or inf; expected finite numbers"),
    (lambda: train.fit(mlp([2, 1]), X4, [[1.0], [np.inf], [0.0], [1.0]], loss="mse"), ValueError,
     "fit: y holds nan or inf; expected finite numbers"),
    (lambda: train.fit(mlp([2, 2]), X4, Y4, X_val=X4, y_val=[0.0, 1.0, np.nan, 0.0]), ValueError,
     "fit: y_val holds nan or inf; expected finite numbers"),
    (lambda: train.accuracy(mlp([2, 2]), X4, Y4[:, None]), ValueError,
     "accuracy: y has shape (4, 1); expected (4,)"),
    # a layer object in two places of one tree (its cache holds one input)
    (lambda: used_twice(ReLU(), Linear(3, 3)), ValueError,
     "Sequential: layer 3 is the same ReLU object as layer 1; a layer caches one input per "
     "forward pass; use a new ReLU() for each place"),
    (lambda: Sequential(Residual(lin := Linear(3, 3)), Residual(Sequential(lin, ReLU()))),
     ValueError, "Sequential: layer 1.F.0 is the same Linear object as layer 0.F;"),
    (lambda: Sequential(Checkpoint(lin := Linear(3, 3)), lin), ValueError,
     "Sequential: layer 1 is the same Linear object as layer 0.layer;"),
    (lambda: Residual(Sequential(bn := BatchNorm1d(3), ReLU(), bn)), ValueError,
     "Sequential: layer 2 is the same BatchNorm1d object as layer 0;"),
    # non-finite values: refused where they would spread
    (lambda: BatchNorm1d(2).forward([[1.0, 2.0], [np.nan, 0.0]]), ValueError,
     "BatchNorm1d(2).forward: X has a batch mean or variance of nan or inf; expected finite "
     "numbers (running statistics kept)"),
    (lambda: optim.clip_grad_norm(grads_with(np.inf), 1.0), ValueError,
     "clip_grad_norm: the global gradient norm is inf; expected a finite norm"),
    (lambda: optim.clip_grad_norm(grads_with(np.nan), 1.0), ValueError,
     "clip_grad_norm: the global gradient norm is nan; expected a finite norm"),
    (lambda: precision.cast_parameters(Linear(2, 2), np.int32), TypeError,
     "cast_parameters: dtype = <class 'numpy.int32'>; expected a float dtype such as np.float32"),
    (lambda: precision.cast_parameters(Linear(2, 2), bool), TypeError,
     "cast_parameters: dtype = <class 'bool'>; expected a float dtype"),
    (lambda: precision.cast_parameters(Linear(2, 2), None), TypeError,
     "cast_parameters: dtype = None; expected a float dtype"),
    (lambda: precision.cast_parameters([Linear(2, 2)], np.float32), TypeError,
     "cast_parameters: model is [Linear(2 -> 2)]; expected a Layer instance"),
    (lambda: Parameter([1.0, np.nan], "W"), ValueError,
     "Parameter('W'): value holds nan or inf; expected finite values"),
    (lambda: Linear(2, 2, init=lambda shape, rng: np.full(shape, np.inf)), ValueError,
     "Parameter('W'): value holds nan or inf"),
    (lambda: mse_loss(np.ones((2, 1)), [[1.0], [np.nan]]), ValueError,
     "mse_loss: y holds nan or inf; expected finite target values"),
    (lambda: masked_softmax_cross_entropy(np.zeros((1, 2, 3)), [[0, 0]], [[1.0, np.nan]]),
     ValueError, "masked_softmax_cross_entropy: mask holds values other than 0 and 1; expected"),
    # a setting of nan or inf means nothing anywhere (validate.check_number)
    (lambda: l2_penalty(Linear(2, 2).parameters(), np.inf), ValueError,
     "l2_penalty: lam = inf; expected a finite value, a number >= 0"),
    (lambda: optim.SGD(Linear(2, 2).parameters(), lr=0.1, weight_decay=np.inf), ValueError,
     "SGD: weight_decay = inf; expected a finite value, a number >= 0"),
    (lambda: optim.SGD(Linear(2, 2).parameters(), lr=np.nan), ValueError,
     "SGD: lr = nan; expected a finite value, a number >= 0"),
    (lambda: Linear(2, 2, init=np.inf), ValueError,
     "init.normal: sigma = inf; expected a finite value, a number >= 0"),
    (lambda: init.xavier_uniform((2, 2), gain=np.nan), ValueError,
     "init.xavier_uniform: gain = nan; expected a finite value, a number > 0"),
    (lambda: init.xavier_uniform((2, 2), gain=-1.0), ValueError,
     "init.xavier_uniform: gain = -1.0; expected a number > 0"),
    (lambda: BatchNorm1d(3, eps=np.inf), ValueError, "BatchNorm1d: eps = inf; expected a finite"),
    (lambda: data.moons(noise=np.inf), ValueError, "moons: noise = inf; expected a finite value"),
    (lambda: precision.LossScaler(scale=np.inf), ValueError,
     "LossScaler: scale = inf; expected a finite value, a number > 0"),
    # optimisers and tools given nothing, or the wrong thing
    (lambda: optim.SGD([], lr=0.1), ValueError,
     "SGD: parameters is empty; expected at least one Parameter"),
    (lambda: optim.SGD(ReLU().parameters(), lr=0.1), ValueError,
     "SGD: parameters is empty; expected at least one Parameter"),
    (lambda: init.zeros((3,)), ValueError,
     "init.zeros: shape = (3,); expected (fan_in, fan_out) of positive ints"),
    (lambda: init.get(["he"]), ValueError, "init.get: unknown scheme ['he']; expected one of"),
    (lambda: mlp(3), ValueError, "mlp: sizes = 3; expected at least [in, out]"),
    (lambda: sigmoid("a"), TypeError, "sigmoid: x has dtype <U1; expected real numbers"),
    (lambda: gradcheck.numerical_gradient(np.sin, np.ones(2), eps=0.0), ValueError,
     "numerical_gradient: eps = 0.0; expected a number > 0"),
    (lambda: gradcheck.numerical_gradient(np.sin, np.ones(3), dout=np.ones(2)), ValueError,
     "numerical_gradient: dout has shape (2,); expected (3,)"),
    (lambda: gradcheck.check_layer(np.tanh, np.ones((2, 2))), TypeError,
     "check_layer: layer is <ufunc 'tanh'>; expected a Layer instance"),
    (lambda: diagnostics.deep_net(0, 4, 2, 2, residual=True), ValueError,
     "deep_net: depth = 0; expected an int >= 1"),
    (lambda: diagnostics.layer_stats(Linear(2, 2), X4, Y4), TypeError,
     "layer_stats: model is Linear(2 -> 2); expected a Sequential"),
    (lambda: diagnostics.block_jacobians(mlp([2, 3, 2]), "ab"), TypeError,
     "block_jacobians: x has dtype <U2; expected real numbers"),
    (lambda: checkpoint_sequential(Linear(2, 2), 1), TypeError,
     "checkpoint_sequential: model is Linear(2 -> 2); expected a Sequential"),
    (lambda: measure.best_time(print, repeats=0), ValueError,
     "best_time: repeats = 0; expected an int >= 1"),
    # ---- the scalar engine and forward mode: domain and range, forward and backward ----
    # Value, forward: the op, its inputs, what was expected
    (lambda: Value(1) / Value(0), ValueError,
     "/: division by zero (Value(data=1) / Value(data=0))"),
    (lambda: 2.0 / Value(0.0, label="b"), ValueError,
     "/: division by zero (Value(data=2) / Value(data=0, label='b'))"),
    (lambda: Value(0.0, label="x").log(), ValueError, "log: input 'x' must be positive, got 0.0"),
    (lambda: Value(-1.5).log(), ValueError, "log: input must be positive, got -1.5"),
    (lambda: Value(0.0) ** -1, ValueError, "**: the exponent -1 needs a positive base, got 0.0"),
    (lambda: Value(-8.0) ** 0.5, ValueError,
     "**: the exponent 0.5 needs a positive base, got -8.0"),
    (lambda: Value(10.0) ** 400, ValueError,
     "**: 10.0 ** 400.0 overflows a float (largest about 1.8e+308)"),
    (lambda: Value(1000.0).exp(), ValueError,
     "exp: 1000.0 overflows a float (largest about 709.78)"),
    (lambda: Value(1e200) * Value(1e200), ValueError,
     "*: Value(data=1e+200) * Value(data=1e+200) = inf overflows a float (largest about 1.8e+308)"),
    (lambda: Value(1e308) + 1e308, ValueError,
     "+: Value(data=1e+308) + Value(data=1e+308) = inf overflows a float"),
    (lambda: -1e308 - Value(1e308), ValueError,
     "-: Value(data=-1e+308) - Value(data=1e+308) = -inf overflows a float"),
    (lambda: Value(1e300) / 1e-10, ValueError,
     "/: Value(data=1e+300) / Value(data=1e-10) = inf overflows a float"),
    (lambda: Value(float("nan")), ValueError, "Value(data): expected a finite number, got nan"),
    (lambda: Value(np.float64("-inf")), ValueError,
     "Value(data): expected a finite number, got np.float64(-inf)"),
    (lambda: Value("a"), TypeError, "Value(data): expected a real number (int or float), got str"),
    (lambda: Value(Value(1.0)), TypeError, "Value(data): expected a real number (int or float), "
     "got Value Value(data=1, grad=0)"),
    (lambda: Value(1.0) + "a", TypeError, "+: expected a Value or a real number, got str 'a'"),
    (lambda: [1.0] * Value(2.0), TypeError, "*: expected a Value or a real number, got list"),
    (lambda: Value(2.0) ** Value(3.0), TypeError,
     "Value ** exponent: expected a real number (int or float), got Value"),
    (lambda: Value(2.0) ** float("inf"), ValueError,
     "Value ** exponent: expected a finite number, got inf"),
    (lambda: 2 ** Value(3.0), TypeError, "unsupported operand type(s) for ** or pow(): 'int' and "
     "'Value'"),
    # Value, backward: the node's op, its inputs, the gradient that is not finite
    (lambda: (Value(0.0) ** 0.5).backward(), ValueError,
     "** in backward: the gradient is inf; expected a finite number (inputs Value(data=0), "
     "exponent 0.5, upstream gradient 1)"),
    (lambda: (Value(1e-200) ** -1.5).backward(), ValueError,
     "** in backward: the gradient is inf; expected a finite number (inputs Value(data=1e-200)"),
    (lambda: Value(1e-310, label="x").log().backward(), ValueError,
     "log in backward: the gradient is inf; expected a finite number "
     "(inputs Value(data=1e-310, label='x'), upstream gradient 1)"),
    (lambda: (1 / Value(1e-200)).backward(), ValueError,
     "/ in backward: the gradient is -inf; expected a finite number "
     "(inputs Value(data=1), Value(data=1e-200), upstream gradient 1)"),
    (lambda: (Value(1e-100) * 1e200 * 1e200).backward(), ValueError,
     "* in backward: the gradient is inf; expected a finite number "
     "(inputs Value(data=1e-100), Value(data=1e+200), upstream gradient 1e+200)"),
    (lambda x=Value(1e-10, label="x"): (x * 1.5e308 + x * 1.5e308).backward(), ValueError,
     "backward: the gradients reaching Value(data=1e-10, label='x') from the nodes that use it "
     "add up to inf; expected a finite number"),
    (lambda: gradient_reverse(lambda xs: xs[0] ** 0.5, [0.0]), ValueError, "** in backward"),
    # Dual: the same domain, and no value or tangent that is not finite
    (lambda: Dual(1.0) / Dual(0.0), ValueError,
     "/: division by zero (Dual(value=1, tangent=0) / Dual(value=0, tangent=0))"),
    (lambda: 1.0 / Dual(0.0, 1.0), ValueError,
     "/: division by zero (Dual(value=1, tangent=0) / Dual(value=0, tangent=1))"),
    (lambda: Dual(0.0).log(), ValueError, "log: input must be positive, got 0.0"),
    (lambda: Dual(0.0) ** -1, ValueError, "**: the exponent -1 needs a positive base, got 0.0"),
    (lambda: Dual(-8.0) ** 0.5, ValueError, "**: the exponent 0.5 needs a positive base, got -8.0"),
    (lambda: Dual(10.0) ** 400, ValueError, "**: 10.0 ** 400.0 overflows a float"),
    (lambda: Dual(1000.0).exp(), ValueError, "exp: 1000.0 overflows a float (largest about 709.78)"),
    (lambda: Dual(1e200) * Dual(1e200), ValueError,
     "*: at Dual(value=1e+200, tangent=0), Dual(value=1e+200, tangent=0) got value inf and "
     "tangent 0.0; expected finite numbers"),
    (lambda: Dual(1.0, 1e300) * 1e10, ValueError,
     "*: at Dual(value=1, tangent=1e+300), Dual(value=1e+10, tangent=0) got value 10000000000.0 "
     "and tangent inf; expected finite numbers"),
    (lambda: Dual(0.0, 1.0) ** 0.5, ValueError,
     "**: at Dual(value=0, tangent=1), 0.5 got value 0.0 and tangent inf; expected finite numbers"),
    (lambda: Dual(1e-310, 1.0).log(), ValueError,
     "log: at Dual(value=1e-310, tangent=1) got value -713.8"),
    (lambda: Dual(float("inf")), ValueError, "Dual(value): expected a finite number, got inf"),
    (lambda: Dual(1.0, float("nan")), ValueError, "Dual(tangent): expected a finite number, got nan"),
    (lambda: Dual("1.0"), TypeError, "Dual(value): expected a real number (int or float), got str"),
    (lambda: Dual(2.0) ** Dual(2.0), TypeError,
     "Dual ** exponent: expected a real number (int or float), got Dual"),
    (lambda: Dual(2.0) + "a", TypeError, "unsupported operand type(s) for +: 'Dual' and 'str'"),
    (lambda: Dual(2.0) * Value(1.0), TypeError,
     "*: expected a Value or a real number, got Dual Dual(value=2, tangent=0)"),
    (lambda: gradient_forward(lambda xs: xs[0].log(), [0.0]), ValueError,
     "log: input must be positive, got 0.0"),
]


@pytest.mark.parametrize("run, error, message", ERRORS, ids=[m[:40] for _, _, m in ERRORS])
def test_bad_input_gets_an_actionable_message(run, error, message):
    with pytest.raises(error, match=re.escape(message)):
        run()


def test_float32_stays_float32():
    net = mlp([3, 4, 2], activation="tanh", rng=0)
    for p in net.parameters():
        p.value, p.grad = p.value.astype(np.float32), p.grad.astype(np.float32)
    logits = net.forward(np.ones((5, 3), dtype=np.float32))
    _, dout = softmax_cross_entropy(logits, np.zeros(5, dtype=int))
    assert logits.dtype == dout.dtype == net.backward(dout).dtype == np.float32


def test_integers_and_booleans_are_converted_to_float64():
    out = Linear(2, 3, rng=0).forward(np.ones((4, 2), dtype=np.int64))
    assert out.dtype == np.float64
    assert ReLU().forward(np.array([[True, False]])).dtype == np.float64
    assert softmax_cross_entropy(np.zeros((2, 3)), np.array([0.0, 2.0]))[0] > 0  # 2.0 is a label


MODULES = ["validate", "layers", "losses", "init", "optim", "gradcheck", "data", "train",
           "precision", "diagnostics", "checkpoint", "conv", "measure", "engine", "forward_mode"]


@pytest.mark.parametrize("module", MODULES)
def test_no_assert_statements(module):
    """``python -O`` strips asserts, so user input must never be checked with them."""
    source = (Path(__file__).parents[1] / "bplib" / f"{module}.py").read_text()
    assert not [node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.Assert)]
