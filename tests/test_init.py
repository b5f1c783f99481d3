import numpy as np
import pytest

from bplib import init

FAN_IN, FAN_OUT = 400, 600

# scheme, the variance it aims for
VARIANCES = [
    (init.he_normal, 2 / FAN_IN),
    (init.xavier_uniform, 2 / (FAN_IN + FAN_OUT)),
    (lambda shape, rng: init.normal(shape, sigma=0.1, rng=rng), 0.01),
]


@pytest.mark.parametrize("scheme, variance", VARIANCES)
def test_empirical_variance_is_the_target(scheme, variance):
    W = scheme((FAN_IN, FAN_OUT), rng=0)
    assert W.shape == (FAN_IN, FAN_OUT)
    assert abs(W.mean()) < 0.01 * np.sqrt(variance)
    assert W.var() == pytest.approx(variance, rel=0.02)


def test_xavier_gain_scales_the_standard_deviation():
    W = init.xavier_uniform((FAN_IN, FAN_OUT), rng=0, gain=3.0)
    assert W.std() == pytest.approx(3.0 * np.sqrt(2 / (FAN_IN + FAN_OUT)), rel=0.02)
    assert np.abs(W).max() <= 3.0 * np.sqrt(6 / (FAN_IN + FAN_OUT))


@pytest.mark.parametrize("name", sorted(init.SCHEMES))
def test_same_seed_same_weights_other_seed_other_weights(name):
    scheme = init.get(name)
    a, b, c = scheme((5, 4), rng=1), scheme((5, 4), rng=1), scheme((5, 4), rng=2)
    np.testing.assert_array_equal(a, b)
    assert name == "zeros" or not np.array_equal(a, c)


def test_scheme_names():
    assert {"normal", "xavier", "xavier_uniform", "he", "he_normal", "zeros"} <= set(init.SCHEMES)
    assert init.get("he") is init.he_normal and init.get("xavier") is init.xavier_uniform
    assert not init.zeros((2, 3)).any()


def test_as_rng():
    rng = np.random.default_rng(0)
    assert init.as_rng(rng) is rng
    assert init.as_rng(5).random() == init.as_rng(5).random()
    assert isinstance(init.as_rng(None), np.random.Generator)
    with pytest.raises(TypeError, match="as_rng: got a str"):
        init.as_rng("0")
