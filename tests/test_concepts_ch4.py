"""Chapter 4's "Reading a gradient" and "From the scalar engine to real training", asserted on
the numbers the executed chapter glued: the three gate patterns on a Value graph, a weight whose
input is 0 gets no gradient, a saturated sigmoid unit's weights get less by the ratio of the
slopes, doubling an input doubles its weights' gradient, and the spiral network trained with
Value gets the matrix code's gradients and weights, learns, and is much slower."""
import math

import pytest

pytestmark = [pytest.mark.book, pytest.mark.xdist_group("book")]


def sigmoid_slope(z):
    s = 1.0 / (1.0 + math.exp(-z))
    return s * (1.0 - s)


# ---- reading a gradient --------------------------------------------------------------------

def test_add_distributes_multiply_swaps_max_routes(ch4):
    """L = 3 (u v + max(s, t)): the add node gets 3 from the factor 3."""
    g = ch4("gate_dsum")
    assert g == 3.0
    assert ch4("gate_uv") == ch4("gate_u") * ch4("gate_v")
    assert ch4("gate_max") == max(ch4("gate_s"), ch4("gate_t"))
    # add: both terms get the sum's gradient unchanged
    assert ch4("gate_duv") == g and ch4("gate_dmax") == g
    # multiply: each factor gets the upstream gradient times the other factor
    assert ch4("gate_du") == g * ch4("gate_v") != g * ch4("gate_u")
    assert ch4("gate_dv") == g * ch4("gate_u") != g * ch4("gate_v")
    # max: the larger input gets all of it, the smaller nothing
    assert ch4("gate_t") > ch4("gate_s")
    assert ch4("gate_dt") == g and ch4("gate_ds") == 0.0


def test_an_input_of_zero_gives_its_weights_no_gradient(ch4):
    """The digits batch has blank border pixels; their 128 first-layer weights each get 0."""
    assert ch4("n_blank") >= 1
    assert ch4("n_blank_weights") == 128 * ch4("n_blank")
    assert ch4("blank_grad_max") == 0.0
    assert ch4("n_others_all_zero") == 0           # every pixel that is not blank gets some
    assert 1 <= ch4("n_never") <= ch4("n_blank")   # blank in all training images: never moves


def test_a_saturated_sigmoid_unit_gets_less_by_the_ratio_of_the_slopes(ch4):
    assert ch4("z_active") == 0.0 and ch4("z_saturated") == 5.0
    expected = sigmoid_slope(ch4("z_active")) / sigmoid_slope(ch4("z_saturated"))
    assert expected > 30
    for ratio in ch4("saturation_ratios"):        # one per input: every incoming weight
        assert ratio == pytest.approx(expected, rel=1e-12)
    assert ch4("saturation_ratio") == ch4("saturation_ratios")[0]


def test_doubling_an_input_doubles_its_weights_gradient(ch4):
    """Feature 2 doubled and its weights halved: the same z, twice the gradient on those weights,
    the same on feature 1's; relative to the weight's size a step is 4 times as large."""
    assert ch4("scale_z_change") == 0.0
    ratios, steps = ch4("scale_ratios"), ch4("scale_relative_steps")
    assert ratios[0] == pytest.approx([1.0, 1.0], rel=1e-12)
    assert ratios[1] == pytest.approx([2.0, 2.0], rel=1e-12)
    assert steps[0] == pytest.approx([1.0, 1.0], rel=1e-12)
    assert steps[1] == pytest.approx([4.0, 4.0], rel=1e-12)
    assert (ch4("scale_ratio_row1"), ch4("scale_ratio_row2")) == (ratios[0][0], ratios[1][0])
    assert ch4("scale_relative_step") == steps[1][0]


# ---- the scalar engine, trained --------------------------------------------------------------

def test_value_gets_the_matrix_codes_gradients_and_weights(ch4):
    assert ch4("value_vs_matrix") < 1e-10              # the gradient at the start
    assert ch4("trained_vs_matrix") < 1e-10            # the weights after every step


def test_value_graph_has_a_node_per_scalar_operation(ch4):
    """At least a multiply and an add for every weight and example of the 2-16-3 network."""
    assert ch4("value_nodes") >= 2 * ch4("n_sub") * (2 * 16 + 16 * 3)


def test_value_training_learns_the_spiral_within_the_budget(ch4):
    """A subset and a few dozen steps (the text says so), well above chance (a third)."""
    assert ch4("n_sub") + ch4("n_rest") == 300 and ch4("n_sub") <= 100
    assert ch4("value_steps") <= 100
    assert ch4("value_loss_last") < 0.5 * ch4("value_loss_first")
    assert ch4("value_acc_sub") > 75                   # percent
    assert ch4("value_acc_rest") > 2 * 100 / 3         # twice chance, on points never seen


def test_the_matrix_code_is_many_times_faster(ch4):
    speedup = ch4("value_speedup")
    assert speedup > 50
    assert speedup == pytest.approx(1e3 * ch4("value_grad_ms") / ch4("matrix_grad_us"))
    assert ch4("value_us_per_node") == pytest.approx(
        1e3 * ch4("value_grad_ms") / ch4("value_nodes"))
    assert ch4("value_train_s") > 10 * ch4("matrix_train_ms") / 1e3
