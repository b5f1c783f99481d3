"""Chapter 6's added concepts, asserted on the numbers the executed chapter glued: batch norm's
backward pass (derived, checked three ways, and what it says about the gradient's growth) and
symmetry breaking (constant initial weights keep hidden units identical)."""
import math

import pytest

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]


def test_batchnorm_compact_form_matches_jacobian_bplib_and_finite_differences(ch6):
    """The compact dx equals the N x N Jacobian route and BatchNorm1d.backward to round-off, and
    central differences to their own truncation error."""
    assert ch6("bnd_err_jac") < 1e-12
    assert ch6("bnd_err_bplib") < 1e-12
    assert ch6("bnd_err_fd") < 1e-7


def test_batchnorm_jacobian_is_a_projection_over_sigma(ch6):
    """sigma times the Jacobian has eigenvalues 1 (N - 2 of them) and two near 0: the mean and
    x_hat directions; epsilon = 1e-5 keeps the second above 0, but far below 1e-4."""
    assert ch6("bnd_eig_one_err") < 1e-9
    assert 0 <= ch6("bnd_eig_small") < 1e-4


def test_batchnorm_growth_is_relu_half_times_one_over_relu_spread(ch6):
    """Per hidden block: the ReLUs pass sqrt(1/2) of the gradient's norm, batch norm and W^T
    together 1/std(max(0, z)) = sqrt(2 pi / (pi - 1)) for a standard normal z; their product is
    the per-layer growth the chapter measured with layer_stats; the projection P shortens the
    gradient only a little (it never lengthens it)."""
    assert abs(ch6("bnd_relu") - math.sqrt(0.5)) < 0.02
    assert abs(ch6("bnd_norm") - math.sqrt(2 * math.pi / (math.pi - 1))) < 0.03
    assert math.isclose(ch6("bnd_relu_theory"), math.sqrt(0.5))
    assert math.isclose(ch6("bnd_norm_theory"), 1 / math.sqrt(0.5 - 1 / (2 * math.pi)))
    assert abs(ch6("bnd_product") - ch6("bn_per_layer_he")) < 0.005
    assert 0.95 < ch6("bnd_kept_min") <= ch6("bnd_kept_max") <= 1.0


def test_constant_init_keeps_hidden_units_identical_random_init_or_dropout_break_it(ch6):
    """Over several seeds of the data order: with every weight equal the hidden units' incoming
    weights stay equal (to round-off) and the hidden outputs have rank 1, and the network
    classifies poorly; He's random weights or dropout leave 16 distinct units, weights that
    differ by order 1, and far better accuracy."""
    assert ch6("sym_seeds") >= 3
    assert ch6("sym_diff_max_const") < 1e-12
    assert ch6("sym_rank_min_const") == ch6("sym_rank_max_const") == 1
    for key in ("he", "drop"):
        assert ch6(f"sym_diff_min_{key}") > 0.1, key
        assert ch6(f"sym_rank_min_{key}") == 16, key
        assert ch6(f"sym_acc_{key}") > ch6("sym_acc_const") + 40, key
    assert ch6("sym_acc_const") < 40
    assert ch6("sym_acc_drop") < ch6("sym_acc_he")
