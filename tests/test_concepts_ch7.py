"""Chapter 7, per-layer learning during training: what the text says about gradient norms,
update/weight ratios and the sigmoid network's plateau, asserted on the numbers the executed
chapter glued."""
import math

import numpy as np
import pytest

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]

RULE_OF_THUMB = 1e-3  # CS231n's update/weight ratio
EPS64 = float(np.finfo(np.float64).eps)


def test_sigmoid_layers_get_updates_below_float64_precision_and_never_change(ch7):
    """The first layer's gradient is more than 20 orders of magnitude below the last one's; its
    update/weight ratio is below what float64 can register, the first weight matrices stay bit for
    bit the same (input layer + 50 hidden + output = 52 matrices), and from step 100 on every
    layer's ratio is below float64's precision."""
    assert ch7("sig_gW_first0") < 1e-20 * ch7("sig_gW_last0")
    assert ch7("sig_r_first0") < EPS64 / 2
    assert ch7("n_weights") == 52
    assert 10 <= ch7("sig_frozen") < ch7("n_weights")
    assert ch7("sig_r_max100") < EPS64
    assert ch7("eps64") == EPS64


def test_plain_relu_ratios_start_below_the_rule_of_thumb_and_the_first_layer_lags(ch7):
    assert ch7("relu_r_med0") <= ch7("relu_r_max0") < RULE_OF_THUMB
    assert ch7("relu_r_first_below") > 2
    assert ch7("relu_r_med_min") <= ch7("relu_r_med0") <= ch7("relu_r_med_max")
    assert ch7("relu_frozen") == 0  # every weight matrix moved


def test_residual_branch_ratios_start_hundreds_of_times_the_rule_and_fall(ch7):
    assert ch7("res_r_med0") > 100 * RULE_OF_THUMB
    assert ch7("res_r_med150") < ch7("res_r_med0") / 10
    assert ch7("res_r_first0") < ch7("res_r_med0") / 10  # the first layer is not a small branch
    assert ch7("res_frozen") == 0


def test_a_tiny_gradient_sits_at_a_blind_guess_while_a_large_one_sits_near_zero_loss(ch7):
    """'A small gradient does not mean a minimum is near': the sigmoid network ends with a
    gradient norm at rounding level and the loss of a uniform guess, ln 3, because its last hidden
    layer no longer depends on the input; the residual network of the same depth ends with a far
    larger gradient at a loss more than ten times lower."""
    assert ch7("sig_gn_end") < 1e-12
    assert ch7("sig_gn0") > 1e6 * ch7("sig_gn_end")
    assert ch7("res_gn_end") > 0.1
    assert math.isclose(ch7("gn_ratio_end"), ch7("res_gn_end") / ch7("sig_gn_end"))
    assert abs(ch7("sig_loss_end") - math.log(3)) < 1e-9
    assert math.isclose(ch7("sig_gap_ln3"), abs(ch7("sig_loss_end") - math.log(3)), abs_tol=1e-15)
    assert ch7("loss_sigmoid") == pytest.approx(math.log(3), abs=1e-9)
    assert abs(ch7("acc_sigmoid") - 100 / 3) < 0.5  # 100 points per class, one class predicted
    assert ch7("res_loss_end") < ch7("sig_loss_end") / 10
    assert ch7("sig_spread") < 1e-12


def test_check_yourself_ratio_question(ch7):
    assert math.isclose(ch7("q_ratio"), 5e-4) and ch7("q_ratio") < RULE_OF_THUMB


def test_training_in_chunks_makes_the_same_updates_as_one_run():
    """The chapter trains in chunks of 50 steps and says that makes exactly the updates of one
    call of fit: plain full-batch gradient descent keeps no state between steps."""
    from bplib import data
    from bplib.diagnostics import deep_net
    from bplib.train import fit

    X, y = data.spirals(n_per_class=30, n_classes=3, seed=0)
    whole, chunked = (deep_net(8, 16, 2, 3, residual=True, rng=0) for _ in range(2))
    losses = fit(whole, X, y, lr=0.1, steps=30).loss
    chunks = [fit(chunked, X, y, lr=0.1, steps=10).loss for _ in range(3)]
    assert losses == [v for chunk in chunks for v in chunk]
    for p, q in zip(whole.parameters(), chunked.parameters()):
        assert np.array_equal(p.value, q.value)
