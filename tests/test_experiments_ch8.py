"""What chapter 8 (beyond the basics) claims, asserted on the numbers the executed chapter
glued: checkpointing memory and identical gradients, float16 underflow and loss scaling, dynamic
loss scaling in training, and the masked sequence loss."""
import pytest

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]


# ---- memory: gradient checkpointing ---------------------------------------------------------

def test_the_caches_are_nearly_all_of_the_peak(ch8):
    """127 layers of width 128, a batch of 256."""
    assert ch8("n_layers") == 127
    cached, peak = ch8("cache_total_mb"), ch8("peak_plain_mb")
    assert cached < peak < 1.1 * cached


def test_checkpointing_every_16_layers_keeps_the_gradients_and_cuts_memory_4x(ch8):
    assert ch8("every") == 16
    assert ch8("ckpt_identical") == "identical"
    assert ch8("memory_ratio") > 3.5                  # measured 4.0


def test_memory_is_least_near_sqrt_n_and_segments_of_one_cost_more(ch8):
    assert ch8("best_k") in (8, 16)                   # sqrt(127) = 11.3
    plain = ch8("peak_plain_mb")
    assert ch8("peak_k1_mb") > 1.5 * plain            # every pre-activation is kept as well
    assert abs(ch8("peak_whole_mb") / plain - 1) < 0.05   # one segment: the plain network


# ---- mixed precision ------------------------------------------------------------------------

def test_float16_loses_small_deltas_and_loss_scaling_keeps_them(ch8):
    """A mean over 2^20 tokens; S = 2^16."""
    assert ch8("lost_plain_pct") > 10 and ch8("err_plain_pct") > 3     # measured 13%, 5.7%
    assert ch8("n_lost_scaled") / ch8("n_deltas") < 1e-4              # measured 5 of 160k
    assert ch8("err_scaled_pct") < 1                                    # measured 0.34%


def test_the_damage_grows_with_the_number_of_averaged_tokens(ch8):
    lost = dict(zip(ch8("token_counts"), ch8("lost_by_M")["S = 1"]))
    assert lost[2**12] < lost[2**18] < lost[2**24] and lost[2**24] > 90   # percent
    error = dict(zip(ch8("token_counts"), ch8("error_by_M")["S = 2^16"]))
    assert error[2**12] < 1 and error[2**24] < 1


def test_too_large_a_scale_overflows(ch8):
    assert ch8("n_overflow") > 0


def test_float16_arithmetic_facts(ch8):
    assert ch8("f16_max") == 65504 and ch8("f16_overflow") == "inf"
    assert ch8("f16_underflow") == 0 and ch8("f16_one_plus") == 1
    assert abs(ch8("f16_subnormal") / 1.234e-6 - 1) > 1e-3  # a subnormal: few digits


def test_mixed_precision_with_dynamic_scaling_trains_like_float32(ch8):
    assert ch8("loss32_final") < ch8("loss32_first") / 20
    assert abs(ch8("loss16_final") / ch8("loss32_final") - 1) < 0.05  # measured 0.0982, 0.0964
    assert 1 <= ch8("skipped16") <= 20                                 # measured 5 of 200
    assert ch8("scale_first_log2") == 16 and ch8("scale_max_log2") >= 18


# ---- masked sequence loss -------------------------------------------------------------------

def test_padding_content_changes_the_unmasked_loss_but_not_the_masked_one(ch8):
    assert ch8("masked_spread") == 0.0                # bit for bit the same loss
    assert ch8("unmasked_max") - ch8("unmasked_min") > 2.0   # measured 1.89 to 4.65
    assert ch8("grad_pad_masked") == 0.0 and ch8("grad_real_masked") > 0


def test_masked_loss_is_the_mean_over_the_real_tokens_whatever_the_padded_length(ch8):
    assert ch8("masked_same") == "equal"
    assert ch8("unmasked_8") != ch8("unmasked_16")
