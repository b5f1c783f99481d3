"""LossScaler and cast_parameters: float16 gradients underflow without loss scaling and survive
with it; dynamic scaling halves on inf/nan (skipping the step) and doubles after a window."""
import copy
import re
import warnings

import numpy as np
import pytest
from registry import randn

from bplib.layers import Linear, mlp
from bplib.precision import LossScaler, cast_parameters


def backward16(scale):
    """Gradient of a float16 Linear layer for a tiny dout (1e-8 per entry), unscaled in float32."""
    layer = cast_parameters(Linear(4, 3, rng=0), np.float16)
    X = np.ones((2, 4), dtype=np.float16)
    layer.forward(X)
    layer.backward(np.full((2, 3), 1e-8 * scale, dtype=np.float16))
    return LossScaler(scale=scale).unscale([layer.W.grad])[0]


def test_float16_gradients_underflow_without_scaling_and_survive_with_it():
    assert np.float16(1e-8) == 0
    assert np.all(backward16(1.0) == 0)           # 1e-8 rounds to 0 in float16
    np.testing.assert_allclose(backward16(2.0**16), 2e-8, rtol=2e-3)  # two rows of 1e-8


def test_unscale_divides_in_float32():
    scaler = LossScaler(scale=1024.0)
    grads = scaler.unscale([np.array([1024.0, 2048.0], dtype=np.float16), np.ones(2)])
    assert all(g.dtype == np.float32 for g in grads)
    np.testing.assert_array_equal(grads[0], [1.0, 2.0])
    np.testing.assert_array_equal(grads[1], 1 / 1024)


def test_inf_or_nan_skips_the_step_and_halves_the_scale():
    scaler = LossScaler(scale=2.0**16, window=3)
    for bad in (np.inf, np.nan):
        assert scaler.unscale([np.ones(2), np.array([1.0, bad], dtype=np.float16)]) is None
    assert scaler.scale == 2.0**14 and scaler.good_steps == 0


def test_the_scale_doubles_after_a_window_of_good_steps():
    scaler = LossScaler(scale=8.0, factor=2.0, window=3)
    scales = []
    for _ in range(7):
        assert scaler.unscale([np.ones(3)]) is not None
        scales.append(scaler.scale)
    assert scales == [8, 8, 16, 16, 16, 32, 32]
    scaler.unscale([np.array([np.inf])])     # an overflow resets the count
    scaler.unscale([np.ones(1)])
    assert scaler.scale == 16 and scaler.good_steps == 1


def test_dynamic_scaling_finds_a_safe_scale_for_overflowing_gradients():
    """Start far too high: the scale halves until the float16 gradients are finite."""
    net16 = cast_parameters(mlp([8, 16, 4], rng=0), np.float16)
    X = randn(0, 32, 8).astype(np.float16)
    dout = randn(1, 32, 4)
    scaler, skipped = LossScaler(scale=2.0**40), 0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # np.errstate must keep float16 overflow quiet
        while True:
            net16.zero_grad()
            net16.forward(X)
            with np.errstate(over="ignore", invalid="ignore"):
                net16.backward((scaler.scale * dout).astype(np.float16))
            grads = scaler.unscale([p.grad for p in net16.parameters()])
            if grads is not None:
                break
            skipped += 1
    assert 10 < skipped < 40
    assert max(np.abs(g).max() for g in grads) * scaler.scale < 65504


def test_cast_parameters_converts_values_and_grads():
    net = mlp([3, 4, 2], rng=0)
    copy16 = cast_parameters(copy.deepcopy(net), np.float16)
    for p, q in zip(net.parameters(), copy16.parameters()):
        assert q.value.dtype == q.grad.dtype == np.float16
        np.testing.assert_array_equal(q.value, p.value.astype(np.float16))
    assert copy16.forward(np.ones((2, 3), dtype=np.float16)).dtype == np.float16


@pytest.mark.parametrize("run, error, message", [
    (lambda: LossScaler(scale=0), ValueError, "LossScaler: scale = 0; expected a number > 0"),
    (lambda: LossScaler(factor=1.0), ValueError, "LossScaler: factor = 1.0; expected a number > 1"),
    (lambda: LossScaler(window=2.5), TypeError, "LossScaler: window = 2.5 is a float"),
])
def test_bad_input_gets_an_actionable_message(run, error, message):
    with pytest.raises(error, match=re.escape(message)):
        run()
