"""The effects that chapters 2 (loss) and 3 (chain rule) describe, asserted on the numbers the
executed chapters glued: the overflow of a naive softmax and the exactness of the fused loss,
the NaN of the two-step gradient, the push of cross-entropy on a wrong answer, mean against sum,
the L2 penalty, and the cost of forward against reverse mode.

If one of these fails, a sentence in a chapter has become false: fix the library or the text.
"""
import math

import pytest

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]



# ---- chapter 2 -----------------------------------------------------------------------------

def test_naive_softmax_overflows_where_the_fused_loss_is_exact(ch2):
    """Logits (1000, 999, 998): the naive softmax is all nan; bplib's softmax is that of the
    logits minus 1000, and the fused loss matches a 50-digit reference. (The build fails on
    any warning, so the fused path did not over- or underflow either.)"""
    assert ch2("naive_big_nan") is True
    assert ch2("big_shift_error") <= 1e-15
    assert ch2("big_fused") == pytest.approx(math.log(1 + math.e + math.e**2), rel=1e-14)
    assert ch2("big_error") < 1e-14


def test_naive_loss_underflows_to_inf_before_the_fused_one_does(ch2):
    """Logits s * (1, 0, -1), true class the last: naive log(softmax) is inf from s ~ 373 (its
    p_y = e^-2s is below the smallest float64); the fused loss follows 2s and the reference."""
    last_finite, first_inf = ch2("naive_last_scale"), ch2("naive_first_inf_scale")
    assert 300 < last_finite < 373 <= first_inf < 1000   # one switch, from finite to inf
    assert ch2("fused_vs_reference") < 1e-14
    assert ch2("fused_vs_2s_large") < 1e-12


def test_fused_gradient_is_softmax_minus_onehot_over_n(ch2):
    assert ch2("batch_grad_diff") <= 1e-16
    assert ch2("grad_fd_error") < 1e-7


def test_two_step_gradient_is_nan_for_a_confident_mistake_and_fused_is_not(ch2):
    assert ch2("two_step_ordinary_diff") <= 1e-15
    assert ch2("two_step_behind_nan") is True
    assert ch2("fused_behind") == [[-1.0, 1.0, 0.0]]


def test_cross_entropy_pushes_a_wrong_answer_harder_than_squared_error(ch2):
    """Two classes, logits (z, 0), class 0 true: at z = -8 cross-entropy's slope is ~1 and the
    squared error's on the probabilities is over 1000 times smaller."""
    assert ch2("ce_grad_wrong") > 0.999
    assert ch2("se_ratio") > 1000


def test_summed_loss_gives_a_gradient_n_times_larger(ch2):
    assert ch2("worst_ratio_error") < 1e-14
    norms = ch2("norm_mean_by_N")
    # the mean's scale does not grow with N (it settles once N is more than a handful)
    assert 0.5 < norms[300] / norms[10] < 2.0


def test_l2_penalty_adds_lambda_w_and_passes_a_gradient_check(ch2):
    assert ch2("l2_added_error") < 1e-14
    assert ch2("l2_check") < 1e-7


# ---- chapter 3 -----------------------------------------------------------------------------

def test_reverse_mode_advantage_grows_with_the_number_of_inputs(ch3):
    """Gradient of sum_i tanh(x_i x_{i+1}): forward mode runs the function's 3 (n - 1)
    operations n times, reverse mode forward and backward once; the ratio is exactly n / 2."""
    rows = ch3("cost_rows")
    assert [row[0] for row in rows] == [10, 20, 50, 100, 200, 500]
    for n, ops_forward, ops_reverse, _, _ in rows:
        assert ops_forward == n * 3 * (n - 1)
        assert ops_reverse == 2 * 3 * (n - 1)
        assert ops_forward / ops_reverse == n / 2
    assert ch3("same_gradient") is True


def test_reverse_mode_is_faster_on_the_clock_too(ch3):
    """A loose check (the chapter shows ratios of ~100 at n = 200): forward mode at n = 200
    does 100 times the operations, so even a busy machine shows it at least 10 times slower."""
    t_forward, t_reverse = {row[0]: row[3:] for row in ch3("cost_rows")}[200]
    assert t_forward > 10 * t_reverse


def test_chapter_3_shows_pytorch_outputs_that_its_text_describes(ch3, built_book):
    """The PyTorch section ran real PyTorch in the build: its gradients match the hand ones to
    float64 rounding, two backward passes double dL/dw2, .data hides a change (gradient 0) and
    .detach() raises; each of those outputs is on the page, as the prose says."""
    import re

    assert ch3("torch_diff") < 1e-12
    page = (built_book[2] / "chapters" / "03_chain_rule.html").read_text()
    text = re.sub(r"<[^>]+>", "", page)
    assert re.search(r"PyTorch 2\.13\.0", text)
    doubled = re.search(r"dL/dw2 after two backward passes: (-?[\d.]+) \(by hand, once: (-?[\d.]+)\)", text)
    assert doubled and math.isclose(float(doubled[1]), 2 * float(doubled[2]), rel_tol=1e-9)
    assert re.search(r"gradient after changing \.data: \[0\. 0\. 0\.\]", text)
    assert "modified by an inplace operation" in text
    assert "not measured" not in text and "not installed" not in text


def test_a_naive_softmax_past_the_exp_limit_gives_nan_probabilities_but_an_inf_loss(ch2):
    """Chapter 2: at s = 800, e^800 overflows; p_1 = inf/inf is nan, p_2 and p_3 are 0, and the
    loss, -log p_3, is inf (not nan)."""
    assert math.isnan(ch2("naive_p0_800"))
    assert ch2("naive_p1_800") == 0.0 and ch2("naive_p2_800") == 0.0
    assert ch2("naive_loss_800") == math.inf


def test_rounding_a1_early_gives_exactly_1_98995(ch1, ch3):
    """1.5 * 0.9933 + 0.5 = 1.98995 in exact arithmetic; the tutorial's 1.9899 is a truncation;
    float64 stores the sum just below 1.98995."""
    from decimal import Decimal

    exact = Decimal("1.5") * Decimal("0.9933") + Decimal("0.5")
    assert ch1("a1_rounded") == 0.9933
    assert ch1("y_pred_from_rounded") == float(exact) == ch3("tutorial_y_pred")
    assert Decimal(ch1("y_pred_from_rounded_float")) < exact  # its exact binary value
    assert f"{ch3('tutorial_loss'):.4f}" == "0.2602"


def test_micrograds_first_walk_gives_21_on_chapter_3s_graph(ch3):
    """Chapter 3 cites micrograd's first commit: a depth-first walk that passes each node's
    gradient on at once gives dL/dx = 21 on a = x + y, b = a*a, L = b + a (x = 1, y = 2),
    three times the true 7 (2a + 1)."""
    assert ch3("dx_right") == 7
    assert ch3("dx_at_once") == 21
