"""What chapter 8 (beyond the basics) claims, asserted on the library with the chapter's
settings: checkpointing memory and identical gradients, float16 underflow and loss scaling,
dynamic loss scaling in training, and the masked sequence loss."""
import copy
import re

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

from bplib.checkpoint import checkpoint_sequential
from bplib.measure import peak_memory
from bplib.layers import mlp
from bplib.losses import masked_softmax_cross_entropy, mse_loss, softmax_cross_entropy
from bplib.precision import LossScaler, cast_parameters


# ---- memory: gradient checkpointing ---------------------------------------------------------

@pytest.fixture(scope="module")
def deep():
    net = mlp([128] * 65, rng=0)  # 127 layers, as in the chapter
    X = np.random.default_rng(1).standard_normal((256, 128))
    dout = np.random.default_rng(2).standard_normal((256, 128))

    def step(model):
        model.zero_grad()
        model.forward(X)
        return model.backward(dout)

    return net, step


def test_the_caches_are_nearly_all_of_the_peak(deep):
    net, step = deep
    net.forward(np.zeros((256, 128)))
    cached = sum(c.nbytes for layer in net for c in layer.cache)
    with threadpool_limits(limits=1):
        _, peak = peak_memory(step, net)
    assert cached < peak < 1.1 * cached


def test_checkpointing_every_16_layers_keeps_the_gradients_and_cuts_memory_4x(deep):
    net, step = deep
    ckpt = checkpoint_sequential(net, 16)
    with threadpool_limits(limits=1):
        dX = step(net)
        grads = [p.grad.copy() for p in net.parameters()]
        np.testing.assert_array_equal(step(ckpt), dX)
        for p, g in zip(ckpt.parameters(), grads):
            np.testing.assert_array_equal(p.grad, g)
        _, plain = peak_memory(step, net)
        _, checkpointed = peak_memory(step, ckpt)
    assert plain / checkpointed > 3.5, (plain, checkpointed)  # measured 4.0


def test_memory_is_least_near_sqrt_n_and_segments_of_one_cost_more(deep):
    net, step = deep
    lengths = [1, 2, 4, 8, 16, 32, 64, len(net)]
    with threadpool_limits(limits=1):
        _, plain = peak_memory(step, net)
        peaks = [peak_memory(step, checkpoint_sequential(net, k))[1] for k in lengths]
    assert lengths[int(np.argmin(peaks))] in (8, 16)  # sqrt(127) = 11.3
    assert peaks[0] > 1.5 * plain                     # every pre-activation is kept as well
    assert abs(peaks[-1] / plain - 1) < 0.05          # one segment: back to the plain network


# ---- mixed precision ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def slice16():
    rng = np.random.default_rng(3)
    X = rng.standard_normal((512, 16)).astype(np.float16)
    y = rng.integers(0, 10, 512)
    net16 = cast_parameters(mlp([16, 64, 64, 64, 10], rng=0), np.float16)
    net64 = cast_parameters(copy.deepcopy(net16), np.float64)
    _, grad = softmax_cross_entropy(net64.forward(X.astype(np.float64)), y)

    def backward(model, M, scale=1.0):
        dtype = model.parameters()[0].value.dtype
        model.zero_grad()
        model.forward(X.astype(dtype))
        deltas = []
        with np.errstate(over="ignore", invalid="ignore"):
            delta = (scale * grad * 512 / M).astype(dtype)
            for layer in reversed(model.layers):
                delta = layer.backward(delta)
                deltas.append(delta.astype(np.float64).ravel() / scale)
        grads = [p.grad.astype(np.float64).ravel() / scale for p in model.parameters()]
        return np.concatenate(deltas), np.concatenate(grads)

    def compare(M, scale=1.0):
        d64, g64 = backward(net64, M)
        d16, g16 = backward(net16, M, scale)
        return np.mean(d16[d64 != 0] == 0), np.linalg.norm(g16 - g64) / np.linalg.norm(g64)

    return backward, compare, net16, net64


def test_float16_loses_small_deltas_and_loss_scaling_keeps_them(slice16):
    _, compare, _, _ = slice16
    lost, error = compare(2**20)
    assert lost > 0.10 and error > 0.03      # measured 13% and 5.7%
    lost, error = compare(2**20, scale=2.0**16)
    assert lost < 1e-4 and error < 0.01      # measured 5 of 160k and 0.34%


def test_the_damage_grows_with_the_number_of_averaged_tokens(slice16):
    _, compare, _, _ = slice16
    lost = [compare(M)[0] for M in (2**12, 2**18, 2**24)]
    assert lost[0] < lost[1] < lost[2] and lost[2] > 0.9
    assert all(compare(M, scale=2.0**16)[1] < 0.01 for M in (2**12, 2**24))


def test_too_large_a_scale_overflows(slice16):
    backward, _, net16, net64 = slice16
    _, g64 = backward(net64, 2**20)
    q = int(np.ceil(np.log2(65504 / np.abs(g64).max()))) + 1
    _, g16 = backward(net16, 2**20, 2.0**q)
    assert np.sum(~np.isfinite(g16)) > 0


def test_float16_arithmetic_facts():
    f16 = np.finfo(np.float16)
    assert float(f16.max) == 65504 and np.float16(1e-8) == 0
    with np.errstate(over="ignore"):
        assert np.isinf(np.float16(70000.0))
    assert np.float16(1) + np.float16(1e-4) == 1
    assert abs(float(np.float16(1.234e-6)) / 1.234e-6 - 1) > 1e-3  # a subnormal: few digits


def train_regression(mixed, steps=200, lr=0.5):
    """The chapter's loop: float32, or float16 passes with float32 master weights."""
    rng = np.random.default_rng(5)
    X = rng.standard_normal((128, 8)).astype(np.float32)
    y = mlp([8, 32, 16], rng=1).forward(X).astype(np.float32)
    model = mlp([8, 32, 32, 16], rng=0)
    master = [p.value.astype(np.float32) for p in model.parameters()]
    dtype = np.float16 if mixed else np.float32
    cast_parameters(model, dtype)
    scaler = LossScaler(window=20)
    losses, scales, skipped = [], [], 0
    for _ in range(steps):
        model.zero_grad()
        loss, grad = mse_loss(model.forward(X.astype(dtype)).astype(np.float32), y)
        losses.append(loss)
        scales.append(scaler.scale)
        with np.errstate(over="ignore", invalid="ignore"):
            if mixed:
                model.backward((scaler.scale * grad).astype(dtype))
                grads = scaler.unscale([p.grad for p in model.parameters()])
            else:
                model.backward(grad)
                grads = [p.grad for p in model.parameters()]
        if grads is None:
            skipped += 1
            continue
        for w, g, p in zip(master, grads, model.parameters()):
            w -= lr * g
            p.value[...] = w
    return np.array(losses), np.array(scales), skipped


def test_mixed_precision_with_dynamic_scaling_trains_like_float32():
    loss32, _, _ = train_regression(mixed=False)
    loss16, scales, skipped = train_regression(mixed=True)
    assert loss32[-1] < loss32[0] / 20
    assert abs(loss16[-1] / loss32[-1] - 1) < 0.05   # measured 0.0982 against 0.0964
    assert 1 <= skipped <= 20                         # measured 5 of 200
    assert scales[0] == 2.0**16 and scales.max() >= 2.0**18


# ---- masked sequence loss -------------------------------------------------------------------

@pytest.fixture
def batch():
    lengths = np.array([8, 5, 3, 6])
    mask = np.arange(8) < lengths[:, None]
    rng = np.random.default_rng(8)
    y = np.where(mask, rng.integers(0, 5, (4, 8)), -1)
    return lengths, mask, y, rng.standard_normal((4, 8, 5)), rng.standard_normal((4, 8, 5))


def unmasked(logits, y):
    N, T, C = logits.shape
    return softmax_cross_entropy(logits.reshape(N * T, C), np.maximum(y, 0).ravel())[0]


def test_padding_content_changes_the_unmasked_loss_but_not_the_masked_one(batch):
    _, mask, y, logits, noise = batch
    masked, plain = set(), []
    for scale in np.linspace(0.0, 6.0, 13):
        padded = np.where(mask[:, :, None], logits, scale * noise)
        loss, grad = masked_softmax_cross_entropy(padded, y, mask)
        masked.add(loss)
        assert np.all(grad[~mask] == 0) and np.any(grad[mask] != 0)
        plain.append(unmasked(padded, y))
    assert len(masked) == 1                       # bit for bit the same loss
    assert max(plain) - min(plain) > 2.0          # measured 1.89 to 4.65


def test_masked_loss_is_the_mean_over_the_real_tokens_whatever_the_padded_length(batch):
    lengths, mask, y, logits, _ = batch
    loss, grad = masked_softmax_cross_entropy(logits, y, mask)
    real = list(enumerate(lengths))
    ref, ref_grad = softmax_cross_entropy(np.concatenate([logits[i, :n] for i, n in real]),
                                          np.concatenate([y[i, :n] for i, n in real]))
    assert loss == ref
    np.testing.assert_array_equal(grad[mask], ref_grad)
    wider = np.pad(logits, ((0, 0), (0, 8), (0, 0)))
    wider_y = np.pad(y, ((0, 0), (0, 8)), constant_values=-1)
    wider_mask = np.pad(mask, ((0, 0), (0, 8)))
    assert masked_softmax_cross_entropy(wider, wider_y, wider_mask)[0] == loss
    assert unmasked(wider, wider_y) != unmasked(logits, y)


def test_masked_loss_accepts_a_0_1_mask_and_any_labels_at_padding(batch):
    _, mask, y, logits, _ = batch
    y_other = np.where(mask, y, 99)  # out of range, but padded: never read
    a = masked_softmax_cross_entropy(logits, y, mask)
    b = masked_softmax_cross_entropy(logits, y_other, mask.astype(int))
    assert a[0] == b[0]
    np.testing.assert_array_equal(a[1], b[1])


@pytest.mark.parametrize("run, message", [
    (lambda: masked_softmax_cross_entropy(np.zeros((2, 3)), np.zeros((2, 3)), np.ones((2, 3))),
     "masked_softmax_cross_entropy: logits has shape (2, 3); expected (N, T, C)"),
    (lambda: masked_softmax_cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 3)), np.ones((2, 4))),
     "masked_softmax_cross_entropy: mask has shape (2, 4); expected (2, 3)"),
    (lambda: masked_softmax_cross_entropy(np.zeros((2, 3, 4)), np.zeros(6), np.ones((2, 3))),
     "masked_softmax_cross_entropy: y has shape (6,); expected (2, 3)"),
    (lambda: masked_softmax_cross_entropy(np.zeros((2, 3, 4)), np.zeros((2, 3)), np.zeros((2, 3))),
     "masked_softmax_cross_entropy: mask is all zero; expected at least one real position"),
])
def test_masked_loss_bad_input_gets_an_actionable_message(run, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        run()
