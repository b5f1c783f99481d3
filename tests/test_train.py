"""bplib.train: fit learns what it should, records what it did, stops when training blows up,
and backs the claims chapter 5 (and the learning-rate lab) make about learning rates."""
import time
import warnings

import numpy as np
import pytest

from bplib import data, train
from bplib.layers import BatchNorm1d, Dropout, Linear, ReLU, Sequential, mlp
from bplib.losses import mse_loss
from bplib.optim import SGD


@pytest.fixture(scope="module")
def line():
    return data.line(n=100, noise=0.1, seed=0)


def least_squares(X, y):
    A = np.column_stack([X[:, 0], np.ones(len(X))])
    return np.linalg.lstsq(A, y[:, 0], rcond=None)[0]


def fit_line(X, y, lr, steps=100):
    model = Linear(1, 1, rng=0)
    return model, train.fit(model, X, y, loss="mse", lr=lr, steps=steps, progress=False)


def test_fit_recovers_the_line(line):
    X, y = line
    model, history = fit_line(X, y, lr=0.5, steps=200)
    w, b = model.W.value[0, 0], model.b.value[0]
    assert history.final_loss < 0.0095            # the noise floor is 0.1**2 = 0.01
    assert abs(w - 2.0) < 0.05 and abs(b - 1.0) < 0.05
    np.testing.assert_allclose([w, b], least_squares(X, y), atol=1e-8)
    assert history.steps == len(history.loss) == len(history.grad_norm) == 200
    assert len(history.epoch_loss) == 200         # full batch: one step per epoch
    assert history.diverged_at is None


def test_fit_is_the_loop_written_by_hand(line):
    X, y = line
    by_hand = Linear(1, 1, rng=0)
    for _ in range(20):
        by_hand.zero_grad()
        loss, dout = mse_loss(by_hand(X), y)
        by_hand.backward(dout)
        for p in by_hand.parameters():
            p.value -= 0.1 * p.grad
    model, _ = fit_line(X, y, lr=0.1, steps=20)
    np.testing.assert_array_equal(model.W.value, by_hand.W.value)
    np.testing.assert_array_equal(model.b.value, by_hand.b.value)


@pytest.mark.parametrize("name, make, kwargs, threshold", [
    ("moons", lambda: data.moons(n=200, noise=0.1, seed=0), dict(lr=0.5, steps=300), 0.97),
    ("spirals", lambda: data.spirals(seed=0), dict(lr=0.3, steps=1000), 0.97),
])
def test_fit_classifies(name, make, kwargs, threshold):
    X, y = make()
    model = mlp([2, 16, 16, int(y.max()) + 1], rng=0)
    before = train.accuracy(model, X, y)
    history = train.fit(model, X, y, progress=False, **kwargs)
    assert train.accuracy(model, X, y) > threshold > before
    assert history.final_loss < 0.2 * history.loss[0]


def test_minibatches_are_deterministic_with_a_seed(line):
    X, y = line

    def run(seed):
        model = mlp([1, 8, 1], rng=0)
        return train.fit(model, X, y, loss="mse", lr=0.05, epochs=3, batch_size=32, rng=seed,
                         progress=False), model

    (h1, m1), (h2, m2), (h3, _) = run(0), run(0), run(1)
    assert h1.loss == h2.loss and h1.grad_norm == h2.grad_norm
    np.testing.assert_array_equal(m1[0].W.value, m2[0].W.value)
    assert h1.loss != h3.loss
    assert h1.steps == 3 * 4 and len(h1.epoch_loss) == 3     # 100 rows in batches of 32: 4
    np.testing.assert_allclose(h1.epoch_loss[0], np.mean(h1.loss[:4]))


def test_steps_overrides_epochs(line):
    X, y = line
    history = train.fit(Linear(1, 1, rng=0), X, y, loss="mse", lr=0.1, epochs=1, steps=9,
                        batch_size=40, rng=0, progress=False)
    assert history.steps == 9
    assert len(history.epoch_loss) == 3                      # 3 + 3 + 3 steps of 40, 40, 20


def test_validation_is_recorded_per_epoch_in_eval_mode():
    X, y = data.moons(n=100, seed=0)
    X_val, y_val = data.moons(n=60, seed=1)
    model = Sequential(Linear(2, 16, rng=0), ReLU(), Dropout(0.5, rng=0), Linear(16, 2, rng=1))
    history = train.fit(model, X, y, lr=0.3, epochs=4, batch_size=50, rng=0, progress=False,
                        X_val=X_val, y_val=y_val)
    assert len(history.val_loss) == len(history.val_accuracy) == 4
    assert history.val_accuracy[-1] == train.accuracy(model, X_val, y_val)
    assert model.training                                    # fit leaves the model training
    np.testing.assert_array_equal(train.predict(model, X_val), train.predict(model, X_val))


def test_loss_can_be_a_function_and_a_bad_name_is_refused(line):
    X, y = line
    calls = []

    def loss(y_hat, target):
        calls.append(y_hat.shape)
        return mse_loss(y_hat, target)

    train.fit(Linear(1, 1, rng=0), X, y, loss=loss, steps=3, progress=False)
    assert calls == [(100, 1)] * 3
    with pytest.raises(ValueError, match="mean_squared"):
        train.fit(Linear(1, 1, rng=0), X, y, loss="mean_squared", progress=False)


def test_a_given_optimizer_is_used(line):
    X, y = line
    model = Linear(1, 1, rng=0)
    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    train.fit(model, X, y, loss="mse", optimizer=optimizer, steps=2, progress=False)
    assert np.any(optimizer.velocity[0] != 0)


def test_divergence_stops_training_without_a_warning(line):
    X, y = line
    with warnings.catch_warnings():
        warnings.simplefilter("error")                       # any RuntimeWarning fails the test
        model, history = fit_line(X, y, lr=5.0, steps=500)
        deep = mlp([2, 64, 64, 64, 3], rng=0)
        X2, y2 = data.spirals(seed=0)
        history2 = train.fit(deep, X2, y2, lr=1e4, steps=200, progress=False)
    for h in (history, history2):
        assert isinstance(h.diverged_at, int)
        assert h.steps == h.diverged_at == len(h.loss) - 1 < 100
        bad = h.loss[-1]
        assert not np.isfinite(bad) or bad > 1e6 * h.loss[0]
        assert all(np.isfinite(h.loss[:-1]))


def test_clip_caps_the_step_but_records_the_norm_before_clipping(line):
    X, y = line
    model = Linear(1, 1, rng=0)
    model.W.value[...] = 50.0                                # far away: a huge gradient
    before = np.concatenate([p.value.ravel() for p in model.parameters()])
    history = train.fit(model, X, y, loss="mse", lr=0.1, steps=1, clip=1.0, progress=False)
    after = np.concatenate([p.value.ravel() for p in model.parameters()])
    assert history.grad_norm[0] > 10.0
    assert np.linalg.norm(after - before) == pytest.approx(0.1 * 1.0)


class _Slow(Linear):
    """A Linear whose forward pass takes 0.3 s: five steps make a run long enough for a bar."""

    def forward(self, X):
        time.sleep(0.3)
        return super().forward(X)


def test_progress_bar_shows_for_long_runs_and_follows_the_environment(line, capsys, monkeypatch):
    X, y = line

    def bar_text(layer=_Slow, **kwargs):
        train.fit(layer(1, 1, rng=0), X, y, loss="mse", steps=5, **kwargs)
        return capsys.readouterr().err

    monkeypatch.setenv("BPLIB_NO_PROGRESS", "1")
    assert bar_text() == ""
    assert "5/5" in bar_text(progress=True)
    monkeypatch.delenv("BPLIB_NO_PROGRESS")
    text = bar_text()
    assert "5/5" in text and text.endswith("\n") and text.count("\n") == 1
    assert bar_text(progress=False) == ""
    assert bar_text(Linear) == "" and bar_text(Linear, progress=True) == ""  # over in a moment


def test_accuracy_and_predict_use_eval_mode_and_restore_it():
    X, y = data.moons(n=40, seed=0)
    model = Sequential(Linear(2, 8, rng=0), BatchNorm1d(8), ReLU(), Linear(8, 2, rng=1))
    model(X)                                                 # one batch of running statistics
    running = model[1].running_mean.copy()
    acc = train.accuracy(model, X, y)
    assert 0.0 <= acc <= 1.0 and model.training
    np.testing.assert_array_equal(model[1].running_mean, running)   # eval mode: no update
    assert train.predict(model, X).shape == (40, 2)


# The learning-rate regimes chapter 5 shows and the learning-rate lab builds on. On y = 2x + 1
# with Linear(1, 1) and full-batch gradient descent, the loss is a bowl whose steepest curvature
# lambda_max is about 2, so steps are stable for lr < 2 / lambda_max (about 0.99 here) and
# overshoot (the parameters zigzag) for lr > 1 / lambda_max.
LR_SLOW, LR_GOOD, LR_ZIGZAG, LR_DIVERGE = 0.01, 0.5, 0.9, 1.1


def curvature(X):
    A = np.column_stack([X[:, 0], np.ones(len(X))])
    return np.linalg.eigvalsh(2 * A.T @ A / len(X)).max()


def test_learning_rate_regimes_on_the_line(line):
    X, y = line
    floor = fit_line(X, y, lr=LR_GOOD, steps=500)[1].final_loss
    assert 1 / curvature(X) < LR_ZIGZAG < 2 / curvature(X) < LR_DIVERGE

    slow = fit_line(X, y, LR_SLOW)[1]
    assert slow.final_loss > 20 * floor and slow.diverged_at is None
    assert np.all(np.diff(slow.loss) < 0)                   # steady, just slow

    good = fit_line(X, y, LR_GOOD)[1]
    assert good.final_loss < 1.001 * floor

    model = Linear(1, 1, rng=0)
    b_star = least_squares(X, y)[1]
    signs = []
    for _ in range(30):
        train.fit(model, X, y, loss="mse", lr=LR_ZIGZAG, steps=1, progress=False)
        signs.append(np.sign(model.b.value[0] - b_star))
    assert np.all(np.array(signs[:-1]) * signs[1:] < 0)     # b jumps across its target every step
    zigzag = fit_line(X, y, LR_ZIGZAG)[1]
    assert zigzag.final_loss < 1.01 * floor                 # and still converges

    diverged = fit_line(X, y, LR_DIVERGE)[1]
    assert diverged.diverged_at is not None and diverged.diverged_at < 100


def test_a_large_learning_rate_makes_the_network_loss_oscillate():
    """On the spiral network a large but stable learning rate makes the loss itself go up and
    down (unlike on the bowl), while a smaller one lowers it at every step."""
    X, y = data.spirals(seed=0)
    runs = {lr: train.fit(mlp([2, 16, 16, 3], rng=0), X, y, lr=lr, steps=300, progress=False)
            for lr in (0.1, 1.0, 100.0)}
    assert np.all(np.diff(runs[0.1].loss) < 0)
    ups = np.sum(np.diff(runs[1.0].loss) > 0)
    assert ups > 30 and runs[1.0].diverged_at is None
    assert runs[1.0].final_loss < runs[0.1].final_loss
    assert runs[100.0].diverged_at is not None


def test_fit_takes_a_model_of_your_own_with_only_forward_and_backward():
    """A learner's duck-typed model (no ``input_grad`` switch) trains as a bplib layer does."""
    class Mine:
        def __init__(self):
            self.inner = Linear(1, 1, rng=0)

        def forward(self, X):
            return self.inner.forward(X)

        def backward(self, dout):
            return self.inner.backward(dout)

        def parameters(self):
            return self.inner.parameters()

        def zero_grad(self):
            self.inner.zero_grad()

        def train(self, mode=True):
            return self

        def eval(self):
            return self

    X = np.linspace(-1, 1, 20)[:, None]
    y = 2 * X + 1
    mine, reference = Mine(), Linear(1, 1, rng=0)
    ours = train.fit(mine, X, y, loss="mse", lr=0.1, steps=50, progress=False)
    theirs = train.fit(reference, X, y, loss="mse", lr=0.1, steps=50, progress=False)
    assert ours.loss == theirs.loss
    assert ours.final_loss < 0.1 * ours.loss[0]


def test_fit_stops_at_a_non_finite_loss_and_says_so_in_words(line, capsys):
    """The step, the loss and the last finite loss are in ``stopped`` and in repr(history); no
    update is made for that step; nothing is raised or written to stderr."""
    X, y = line

    def loss_nan_at_step_3(y_hat, target):
        value, dout = mse_loss(y_hat, target)
        calls.append(value)
        return (np.nan if len(calls) == 4 else value), dout

    calls = []
    model, reference = Linear(1, 1, rng=0), Linear(1, 1, rng=0)
    history = train.fit(model, X, y, loss=loss_nan_at_step_3, lr=0.1, steps=10, progress=False)
    train.fit(reference, X, y, loss="mse", lr=0.1, steps=3, progress=False)
    assert history.diverged_at == 3 and history.steps == 3 and len(history.loss) == 4
    np.testing.assert_array_equal(model.W.value, reference.W.value)   # step 3 made no update
    assert history.stopped.startswith("stopped at step 3: loss nan")
    assert f"last finite loss {calls[2]:.4g} at step 2" in history.stopped
    assert repr(history) == f"History(3 steps, final loss nan; {history.stopped})"
    assert capsys.readouterr().err == ""


def test_fit_stops_at_a_non_finite_gradient_norm_even_when_clipping(line):
    """A finite loss with a nan gradient: fit stops before clipping (which would raise) and
    before the update."""
    X, y = line

    class NanAtStep2(Linear):
        steps = 0

        def backward(self, dout):
            dX = super().backward(dout)
            NanAtStep2.steps += 1
            if NanAtStep2.steps == 3:
                self.W.grad[0, 0] = np.nan
            return dX

    model, reference = NanAtStep2(1, 1, rng=0), Linear(1, 1, rng=0)
    history = train.fit(model, X, y, loss="mse", lr=0.1, steps=10, clip=100.0, progress=False)
    train.fit(reference, X, y, loss="mse", lr=0.1, steps=2, clip=100.0, progress=False)
    assert history.diverged_at == 2 and history.steps == 2 and np.isnan(history.grad_norm[2])
    np.testing.assert_array_equal(model.W.value, reference.W.value)
    assert history.stopped.startswith(f"stopped at step 2: loss {history.loss[2]:.4g} (the first "
                                      f"was {history.loss[0]:.4g}), gradient norm nan;")
    assert history.stopped.endswith(f"last finite loss {history.loss[2]:.4g} at step 2")


def test_a_run_that_did_not_stop_says_nothing(line):
    X, y = line
    model, history = fit_line(X, y, lr=0.1, steps=5)
    assert history.stopped is None and history.diverged_at is None
    assert repr(history) == f"History(5 steps, final loss {history.final_loss:.4g})"
    _, blown = fit_line(X, y, lr=5.0, steps=500)
    assert blown.stopped.startswith(f"stopped at step {blown.diverged_at}: loss ")
    assert blown.loss[-1] > 1e6 * blown.loss[0] and np.isfinite(blown.loss[-1])


class Recorded(Linear):
    """A Linear that keeps what each backward call returned."""

    def backward(self, dout):
        self.returned.append(super().backward(dout))
        return self.returned[-1]


def test_fit_switches_the_input_gradient_off_and_restores_it(line):
    """fit's backward skips the data's gradient (the first layer returns None) but the hand-
    written loop's does not; afterwards, and after an error inside fit, the switch is back on."""
    X, y = line
    first = Recorded(1, 4, rng=0)
    first.returned = []
    model = Sequential(first, ReLU(), Linear(4, 1, rng=1))
    train.fit(model, X, y, loss="mse", lr=0.1, steps=3, progress=False)
    assert first.returned == [None] * 3
    assert all(layer.input_grad for layer in model.walk())
    assert model.backward(np.ones((len(X), 1))).shape == X.shape
    model.input_grad = False  # a switch already off stays off
    train.fit(model, X, y, loss="mse", lr=0.1, steps=1, progress=False)
    assert not model.input_grad and not first.input_grad
    model.input_grad = True
    with pytest.raises(ValueError):
        train.fit(model, X, y[:10], loss="mse", steps=1, progress=False)
    assert all(layer.input_grad for layer in model.walk())
