"""bpcourse.labs and bpcourse.widgets: the labs show what the chapters claim, the same seed gives the
same frame, the live widget turns controls into frames, and the static version stays small and
offline.

Measured values for the seeds used are noted next to the assertions; the thresholds leave room.
"""
import json
import re
import warnings

import numpy as np
import pytest

from bpcourse import labs
from bpcourse.widgets import Lab, depth_lab, init_lab, lr_lab, static_html

pytestmark = pytest.mark.jupyter  # kernels, widgets: not in the numpy 2.0.2 run

WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"


@pytest.fixture(autouse=True)
def warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # an overflow or invalid-value RuntimeWarning fails
        yield


def lr(**controls):
    return labs.frame("lr", **controls)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_learning_rate_regimes(seed):
    """Too small, just right, oscillating and diverging, with plain SGD (100 steps)."""
    floor = labs.lr_surface()["floor"]                          # 0.0094, the noise
    slow, good, zigzag, blown = (lr(lr=v, seed=seed) for v in (0.001, 0.1, 0.9, 1.5))
    assert slow["loss"][-1] > 100 * floor                      # 3.0 to 6.0
    assert good["loss"][-1] < 1.05 * floor and good["diverged_at"] is None
    b = np.array(zigzag["path"])[:, 1] - labs.lr_surface()["best"][1]
    assert np.mean(np.sign(b[1:40]) != np.sign(b[:39])) > 0.9  # b jumps across its target
    assert zigzag["loss"][-1] < 1.05 * floor
    assert isinstance(blown["diverged_at"], int) and blown["diverged_at"] < 20   # 10 to 12
    assert blown["readout"].endswith(f"diverged at step {blown['diverged_at']}")
    assert len(blown["loss"]) == len(blown["path"]) == blown["diverged_at"] + 1
    assert blown["loss"][-1] is None or blown["loss"][-1] > 1e6 * blown["loss"][0]


def test_momentum_makes_the_loss_go_up_and_down_and_still_converge():
    frame = lr(lr=0.1, optimizer="momentum", seed=0)
    assert np.sum(np.diff(frame["loss"]) > 0) > 20             # 44 of 100 steps go up
    assert frame["loss"][-1] < 1.05 * labs.lr_surface()["floor"]
    assert np.all(np.diff(lr(lr=0.1, seed=0)["loss"]) <= 0)   # plain SGD: down every step


def test_lr_frame_layout():
    frame = lr(lr=0.1, steps=30)
    assert len(frame["loss"]) == len(frame["path"]) == 31      # the start and 30 updates
    assert frame["readout"].startswith("lr = 0.1 · SGD · 30 steps · seed 0 · final loss")
    shared = labs.lr_surface()
    assert np.array(shared["loss"]).shape == (len(shared["b"]), len(shared["w"]))
    assert np.allclose(shared["best"], [2, 1], atol=0.05)


def grad_spread(frame):
    return max(frame["grad_W"]) / min(frame["grad_W"])


@pytest.mark.parametrize("seed", [0, 1])
def test_he_keeps_relu_gradients_within_10x_unit_normal_sigmoid_does_not(seed):
    he = labs.frame("init", scheme="he", activation="relu", depth=30, seed=seed)
    sigmoid = labs.frame("init", scheme="normal", sigma=1.0, activation="sigmoid", depth=30,
                         seed=seed)
    assert len(he["grad_W"]) == len(he["grad_h"]) == len(he["act_std"]) == 31
    assert grad_spread(he) < 10                                # 3.5 and 4.1
    assert grad_spread(sigmoid) > 100                          # 190 and 1,500
    assert max(he["grad_h"]) / min(he["grad_h"]) < 10          # 2.1 and 1.4


def test_init_histograms_are_fractions_over_the_activation_range():
    frame = labs.frame("init", scheme="xavier", activation="tanh", depth=15)
    assert frame["hist_layers"] == [1, 6, 11, 16] and frame["hist_range"] == [-1, 1]
    assert np.allclose(np.sum(frame["hist"], axis=1), 1, atol=1e-3)
    small = labs.frame("init", scheme="normal", sigma=0.01, activation="tanh", depth=15)
    assert small["act_std"][-1] < 1e-10 * small["act_std"][0]  # shrinks layer after layer
    assert small["grad_h"][0] < 1e-10 * small["grad_h"][-1]    # and so does the gradient


@pytest.mark.parametrize("depth", [20, 50])
def test_residual_nets_keep_larger_first_layer_gradients_and_train(depth):
    """Seeds 0 and 1: first-layer gradient 8x to 87x larger with skips; after 30 steps the
    residual loss is 0.56 to 0.77, the plain one 0.93 to 1.10."""
    for seed in (0, 1):
        frame = labs.frame("depth", depth=depth, seed=seed)
        plain, residual = frame["plain"], frame["residual"]
        assert len(plain["grad_W"]) == len(residual["grad_W"]) == depth + 1
        assert residual["grad_W"][0] > 5 * plain["grad_W"][0]
        assert residual["loss"][-1] < plain["loss"][-1]


@pytest.mark.parametrize("name, controls", [
    ("lr", dict(lr=0.3, optimizer="momentum", seed=3)),
    ("init", dict(scheme="normal", sigma=0.5, activation="tanh", depth=5, seed=4)),
    ("depth", dict(depth=5, seed=2)),
])
def test_the_same_seed_gives_the_same_frame_and_another_seed_does_not(name, controls):
    first = labs.frame(name, **controls)
    assert labs.frame(name, **controls) == first
    assert labs.frame(name, **{**controls, "seed": controls["seed"] + 1}) != first
    assert json.loads(json.dumps(first)) == first             # JSON-able as it is


def test_precomputed_grid_covers_every_combination():
    data = labs.precompute("init")
    grids = [c["grid"] for c in data["controls"]]
    assert len(data["index"]) == np.prod([len(g) for g in grids])
    # sigma only matters for normal weights: He at any sigma is one frame
    position = dict(scheme=2, sigma=0, activation=2, depth=2, seed=1)

    def flat(pos):
        k = 0
        for c in data["controls"]:
            k = k * len(c["grid"]) + pos[c["name"]]
        return k

    frame = data["frames"][data["index"][flat(position)]]
    assert data["index"][flat({**position, "sigma": 3})] == data["index"][flat(position)]
    assert frame == labs.frame("init", scheme="he", activation="relu", depth=30, seed=1)


# ---- the widget, driven from Python (no kernel needed) ------------------------------------

def test_widget_turns_controls_into_frames():
    lab = lr_lab()
    assert lab.controls == {"lr": 0.1, "optimizer": "SGD", "steps": 100, "seed": 0}
    assert lab.frame == lr() and lab.frame["diverged_at"] is None
    served = lab.served
    lab.set(lr=1.5)
    assert lab.frame["diverged_at"] is not None and lab.served == served + 1
    lab.controls = {**lab.controls, "lr": 0.1}
    assert lab.frame["loss"][-1] < 0.01
    lab.set(optimizer="momentum", steps=30, seed=2)
    assert lab.frame == lr(lr=0.1, optimizer="momentum", steps=30, seed=2)


def test_same_initialisation_again_reproduces_the_frame():
    lab = init_lab(scheme="xavier", activation="tanh", depth=15, seed=1)
    before, served = lab.frame, lab.served
    assert lab.rerun() is True and lab.frame == before and lab.served == served + 1
    lab._message(lab, {"do": "rerun"}, [])                    # the button's message
    assert lab.frame == before and lab.served == served + 2


def test_widget_refuses_bad_controls_with_a_clear_message():
    lab = depth_lab(depth=5)
    with pytest.raises(ValueError, match=r"depth_lab: depth = 500; expected 1 to 50"):
        lab.set(depth=500)
    with pytest.raises(ValueError, match=r"lr_lab: optimizer = 'adam'"):
        lr_lab(optimizer="adam")
    with pytest.raises(ValueError, match=r"no control \['width'\]"):
        lab.set(width=3)
    assert lab.controls["depth"] == 5


def test_mimebundle_carries_the_widget_view_and_the_static_html():
    lab = depth_lab()
    data, _ = lab._repr_mimebundle_()
    assert data[WIDGET_VIEW]["model_id"] == lab.model_id
    assert data["text/html"] == static_html("depth")
    assert "\nexport default" in Lab._esm and "\nexport default" not in data["text/html"]


@pytest.mark.parametrize("name", list(labs.LABS))
def test_static_html_is_small_self_contained_and_offline(name):
    html = static_html(name)
    assert len(html.encode()) <= 1.5e6                         # lr 0.27, init 0.27, depth 0.03 MB
    assert not re.search(r"https?://", html)
    assert html.count("<script") == html.count("</script>") == 2
    payload = json.loads(html.split('<script type="application/json">')[1].split("</script>")[0])
    assert payload["lab"] == name and len(payload["index"]) >= len(payload["frames"])
