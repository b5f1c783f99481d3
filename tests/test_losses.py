import warnings

import numpy as np
import pytest
from registry import LOSS_CASES, check_autograd, check_finite_differences, check_torch

from bplib.layers import Parameter
from bplib.losses import (l2_penalty, log_softmax, masked_softmax_cross_entropy, mse_loss, softmax,
                          softmax_cross_entropy)

each_case = pytest.mark.parametrize("case", LOSS_CASES, ids=lambda case: case.name)


@each_case
def test_gradient_matches_finite_differences(case):
    check_finite_differences(case)


@each_case
def test_value_and_gradient_match_autograd(case):
    check_autograd(case)


@each_case
def test_value_and_gradient_match_torch(case):
    check_torch(case)


def test_mse_of_one_output_is_the_squared_error():
    loss, grad = mse_loss(np.array([[2.5]]), np.array([[4.0]]))
    assert loss == (4.0 - 2.5) ** 2 and grad[0, 0] == 2 * (2.5 - 4.0)


def test_softmax_rows_are_probabilities_and_log_softmax_is_their_log():
    logits = np.array([[1.0, 2.0, 3.0], [0.0, 0.0, 0.0]])
    p = softmax(logits)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    np.testing.assert_allclose(p[1], 1 / 3)
    np.testing.assert_allclose(log_softmax(logits), np.log(p))
    np.testing.assert_allclose(softmax(logits + 100.0), p)  # shifting every logit changes nothing


def test_cross_entropy_is_finite_for_huge_logits():
    logits = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 5e3]])
    with warnings.catch_warnings(), np.errstate(over="raise", invalid="raise", divide="raise"):
        warnings.simplefilter("error")
        loss, grad = softmax_cross_entropy(logits, np.array([0, 2]))
    assert np.isfinite(loss) and np.all(np.isfinite(grad))
    assert loss == pytest.approx(5e3 / 2)  # sample 0 is right (loss 0), sample 1 off by 5e3
    np.testing.assert_allclose(grad, [[0, 0, 0], [0, 0.5, -0.5]], atol=1e-12)


def test_cross_entropy_of_one_hot_targets_equals_that_of_labels():
    logits, y = np.random.default_rng(0).standard_normal((5, 3)), np.array([0, 2, 1, 1, 0])
    by_label = softmax_cross_entropy(logits, y)
    by_target = softmax_cross_entropy(logits, np.eye(3)[y])
    assert by_label[0] == pytest.approx(by_target[0])
    np.testing.assert_allclose(by_label[1], by_target[1])


def test_masked_cross_entropy_is_the_plain_one_over_the_real_tokens():
    """Sequences of lengths 8, 5, 3 and 6 padded to 8. The mask may be 0/1 integers, and the
    labels at padded positions anything: they are never read."""
    mask = np.arange(8) < np.array([[8], [5], [3], [6]])
    rng = np.random.default_rng(8)
    y = np.where(mask, rng.integers(0, 5, (4, 8)), 99)
    logits = rng.standard_normal((4, 8, 5))
    loss, grad = masked_softmax_cross_entropy(logits, y, mask.astype(int))
    ref, ref_grad = softmax_cross_entropy(logits[mask], y[mask])
    assert loss == ref
    np.testing.assert_array_equal(grad[mask], ref_grad)
    assert np.all(grad[~mask] == 0)


def test_l2_penalty_adds_into_existing_grads():
    W = Parameter(np.array([[1.0, -2.0], [3.0, 0.0]]))
    W.grad[...] = 1.0
    assert l2_penalty([W], lam=0.1) == pytest.approx(0.05 * 14)
    np.testing.assert_allclose(W.grad, 1.0 + 0.1 * W.value)
