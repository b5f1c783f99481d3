"""What chapters 6 (vanishing gradients) and 7 (residual networks) say, asserted on the numbers
the executed chapters glued."""
import pytest

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]


def test_residual_jacobian_is_identity_plus_branch_jacobian(ch7):
    """J_H and I + J_F by finite differences, and J_H read off the backward pass."""
    assert ch7("err_identity") < 1e-8
    assert ch7("err_backward") < 1e-8


def test_measured_branch_norms_give_bounds_that_hold(ch7):
    """Chapter 7: the branches' Jacobian norms (epsilon) are measured, not assumed to be 1/L;
    they exceed 1/50, the bounds (1 -+ eps)^50 are wider than e^-+1, and the singular values of
    the 50-block product lie inside them."""
    import math

    assert 0.02 < ch7("eps_min") <= ch7("eps_max") < 0.1
    assert math.isclose(ch7("eps_bound_lo"), (1 - ch7("eps_max")) ** 50)
    assert math.isclose(ch7("eps_bound_hi"), (1 + ch7("eps_max")) ** 50)
    assert ch7("eps_bound_lo") < math.exp(-1) and ch7("eps_bound_hi") > math.e
    assert ch7("eps_bound_lo") < ch7("sv_res_min") <= ch7("sv_res_max") < ch7("eps_bound_hi")
    assert 2.0 < ch7("w_norm_min") <= ch7("w_norm_max") < 3.2  # "about 2 sqrt 2"


def test_batchnorm_makes_a_network_learn_but_its_gradient_grows_toward_the_input(ch6):
    """Chapter 6: sigma = 0.02 without BatchNorm learns nothing (loss about ln 10, accuracy about
    one in ten); with it the loss falls and held-out accuracy is well above chance. With
    BatchNorm the gradient grows by about sqrt(pi / (pi - 1)) per layer toward the input, for
    every initialisation; residual branches take most of the growth away."""
    import math

    assert abs(ch6("bn_loss_plain") - math.log(10)) < 0.05 and ch6("bn_acc_plain") < 15
    assert ch6("bn_loss_normed") < 1.8 and ch6("bn_acc_normed") > 30
    theory = math.sqrt(math.pi / (math.pi - 1))
    for key in ("small", "he", "one"):
        assert abs(ch6(f"bn_per_layer_{key}") - theory) < 0.03, key
        assert ch6(f"bn_growth_{key}") > 100
    assert ch6("bn_growth_res") < ch6("bn_growth_he") / 10
