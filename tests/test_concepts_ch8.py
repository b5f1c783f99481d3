"""What chapter 8's section on backpropagation through time claims, asserted on the numbers the
executed chapter glued: the shared weight's per-step shares add up to its gradient, the rate per
step of dL/dh_t is the spectral radius of W_hh (not its largest singular value), clipping the
gradient keeps an exploding run finite, and clipping the loss zeroes the gradient while a
gradient check passes."""
import pytest

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]

RADII = {"9": 0.9, "10": 1.0, "11": 1.1}


def test_the_shares_of_the_steps_add_up_to_the_shared_weights_gradient(ch8):
    assert ch8("bptt_T") == 5
    assert ch8("bptt_sum_error") < 1e-7               # finite differences: measured 1e-9
    assert ch8("bptt_last_error") > 0.3               # the last step alone is far off: 0.72
    assert ch8("bptt_share_T") > 0.1
    assert ch8("bptt_share_1") == 0.0                 # h_0 = 0


def test_the_rate_per_step_is_the_spectral_radius_within_a_percent(ch8):
    for key, rho in RADII.items():
        assert abs(ch8(f"spec_rate_{key}") / rho - 1) < 0.01, key


def test_the_largest_singular_value_bounds_one_step_but_is_well_above_the_rate(ch8):
    for key, rho in RADII.items():
        sigma = ch8(f"spec_sigma_{key}")
        assert ch8(f"spec_stretch_{key}") <= sigma, key   # |tanh'| <= 1: one step at most sigma
        assert sigma > 1.3 * rho, key                      # "well under": measured 1.5-1.7 rho
    assert ch8("spec_sigma_9") > 1                         # and yet the gradient vanishes


def test_the_gradient_vanishes_below_radius_1_and_explodes_above(ch8):
    T = ch8("spec_T")
    assert T == 60 and ch8("spec_far") == 20
    assert ch8("spec_ratio_9") < 1e-2                 # measured 7.5e-4
    assert ch8("spec_ratio_11") > 10                  # measured 24
    # the growth is slowed near the loss: less than the far rate over every step
    assert ch8("spec_ratio_11") < ch8("spec_rate_11") ** (T - 1)


def test_the_states_stay_small_where_the_rate_is_measured(ch8):
    for key in RADII:
        assert ch8(f"spec_h_{key}") < 0.1, key        # tanh' > 0.99 there


def test_clipping_the_gradient_keeps_the_exploding_run_finite_and_learning(ch8):
    first = ch8("clip_rnn_first")
    assert ch8("clip_rnn_finite") == "finite"
    assert ch8("clip_rnn_final") < first / 4          # 1.60 -> 0.17
    assert ch8("clip_rnn_max_norm") > 1               # clipping was at work (c = 1)
    assert ch8("noclip_rnn_max_loss") > 1e6 * first   # without it the run blows up
    assert ch8("noclip_rnn_final") > 1e6 * first      # and never comes back
    assert ch8("noclip_rnn_max_norm") > 1e3 * ch8("clip_rnn_max_norm")


def test_clipping_the_loss_zeroes_the_gradient_and_the_gradient_check_still_passes(ch8):
    assert ch8("pit_loss") > ch8("pit_c")
    assert ch8("pit_true_norm") > 1
    assert ch8("pit_clipped_norm") == 0.0
    assert ch8("pit_numeric_max") == 0.0
    assert ch8("pit_check") == 0.0                    # below any tolerance: a "pass"


def test_the_check_yourself_bound_on_a_contracting_W_hh(ch8):
    assert ch8("q_sigma") < 1
    assert abs(ch8("q_bound") - ch8("q_sigma") ** (ch8("q_T") - 1)) < 1e-15
