"""Claims chapters 4 and 5 make in prose, asserted on the numbers the executed chapters glued:
each classic backprop bug fails a gradient check while the correct code passes, a ReLU kink
fails a check without a bug, and the training-time behaviour of dropout, batch norm and
clipping, the spiral learned with mini-batches, and the learning rate that the input scale
breaks."""
import pytest

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]



# ---- chapter 4 -----------------------------------------------------------------------------

@pytest.mark.parametrize("bug", ["bug_fprime", "bug_db", "bug_mean", "bug_transpose"])
def test_each_classic_bug_fails_the_gradient_check(ch4, bug):
    assert ch4("correct") < 1e-7
    assert ch4(bug) > 1e-2


def test_sum_instead_of_mean_is_off_by_n_minus_1_over_n(ch4):
    assert ch4("bug_mean") == pytest.approx((8 - 1) / 8, rel=1e-6)   # a batch of 8


def test_hand_written_two_layer_backward_matches_bplib(ch4):
    assert ch4("two_layer_vs_bplib") < 1e-12
    assert ch4("two_layer_gradcheck") < 1e-7


def test_a_relu_kink_fails_the_check_without_a_bug(ch4):
    """With bplib's zero biases, the spiral's three points at the origin sit on every ReLU kink
    of the 16 hidden units; without them the same code passes."""
    assert ch4("n_at_kink") == 3 * 16
    assert 1e-5 < ch4("kink_error") < 1e-2
    assert ch4("away_error") < 1e-7


# ---- chapter 5 -----------------------------------------------------------------------------

def test_dropout_differs_between_calls_in_training_only(ch5):
    assert ch5("dropout_differs") > 0
    assert ch5("dropout_eval_same") is True
    assert ch5("dropout_mean") == pytest.approx(1.0, abs=0.02)


def test_batch_norm_running_statistics_and_eval_mode(ch5):
    """Batches drawn with means (5, -2) and standard deviations (2, 0.5)."""
    assert ch5("bn_mean_0") == pytest.approx(5.0, abs=0.2)
    assert ch5("bn_mean_1") == pytest.approx(-2.0, abs=0.2)
    assert ch5("bn_std_0") == pytest.approx(2.0, rel=0.1)
    assert ch5("bn_std_1") == pytest.approx(0.5, rel=0.1)
    assert ch5("bn_train_diff") > 0.05
    assert ch5("bn_eval_diff") == 0.0 and ch5("bn_alone_diff") == 0.0


def test_clipping_keeps_one_corrupted_label_from_wrecking_the_fit(ch5):
    assert ch5("clip_on_clean") < 0.05 < 0.2 < ch5("clip_off_clean")


def test_the_spiral_is_learned_with_mini_batches(ch5):
    assert ch5("spiral_acc") > 95 and ch5("spiral_val_acc") > 95     # percent
    assert ch5("spiral_val_loss") < 2 * ch5("spiral_epoch_loss")


def test_scaling_the_inputs_by_three_makes_the_good_learning_rate_diverge(ch5):
    assert ch5("lr_right") == 0.5 and ch5("lr_right_diverged") is False
    assert isinstance(ch5("q_scaled_diverged_at"), int)


def test_the_line_bowl_is_only_somewhat_elongated_and_steepest_along_b(ch5):
    """Chapter 5 calls the bowl "somewhat elongated" (not long and narrow) and steepest near the
    b axis: a curvature ratio under 5, the steep direction within 15 degrees of b."""
    assert 1.5 < ch5("lam_ratio") < 5
    assert abs(ch5("lam_ratio") - ch5("lam_max") / ch5("lam_min")) < 1e-9
    assert ch5("steep_angle") < 15
