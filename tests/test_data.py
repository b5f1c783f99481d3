import numpy as np
import pytest

from bplib import data

CLASSIFICATION = {
    "spirals": (lambda seed: data.spirals(n_per_class=50, n_classes=3, seed=seed), 150, 3),
    "moons": (lambda seed: data.moons(n=101, seed=seed), 101, 2),
}


@pytest.mark.parametrize("name", CLASSIFICATION)
def test_classification_sets(name):
    make, n, n_classes = CLASSIFICATION[name]
    X, y = make(0)
    assert X.shape == (n, 2) and X.dtype == np.float64
    assert y.shape == (n,) and y.dtype.kind == "i"
    counts = np.bincount(y)
    assert len(counts) == n_classes and counts.max() - counts.min() <= 1
    assert len(set(y[: n // 4])) == n_classes  # shuffled: classes mixed from the start
    X2, y2 = make(0)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, make(1)[0])


def test_line_recovers_slope_and_intercept():
    X, y = data.line(n=500, noise=0.1, seed=0)
    assert X.shape == y.shape == (500, 1) and np.all(np.abs(X) <= 1)
    slope, intercept = np.polyfit(X[:, 0], y[:, 0], 1)
    assert slope == pytest.approx(2.0, abs=0.05) and intercept == pytest.approx(1.0, abs=0.05)
    np.testing.assert_array_equal(y, data.line(n=500, noise=0.1, seed=0)[1])


def test_digits_split():
    X_train, y_train, X_test, y_test = data.digits(seed=0, test_fraction=0.2)
    assert X_train.shape == (1797 - 359, 64) and X_test.shape == (359, 64)
    assert y_train.shape == (1438,) and set(y_test) == set(range(10))
    assert X_train.min() == 0.0 and X_train.max() == 1.0
    np.testing.assert_array_equal(X_test, data.digits(seed=0)[2])
    assert not np.array_equal(X_test, data.digits(seed=1)[2])


def test_minibatches_cover_an_epoch_once():
    X, y = np.arange(10.0).reshape(10, 1), np.arange(10)
    batches = list(data.minibatches(X, y, batch_size=4, rng=0))
    assert [len(yb) for _, yb in batches] == [4, 4, 2]
    seen = np.concatenate([yb for _, yb in batches])
    assert sorted(seen) == list(range(10)) and not np.array_equal(seen, y)
    for Xb, yb in batches:
        np.testing.assert_array_equal(Xb[:, 0], yb)  # rows stay paired
    again = np.concatenate([yb for _, yb in data.minibatches(X, y, 4, rng=0)])
    np.testing.assert_array_equal(seen, again)
    in_order = np.concatenate([yb for _, yb in data.minibatches(X, y, 3, shuffle=False)])
    np.testing.assert_array_equal(in_order, y)
