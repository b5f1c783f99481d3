r"""The numbers behind the book's three labs: one *frame* per setting of a lab's controls.

A frame is a JSON-able dict (floats rounded to 4 significant digits, ``None`` where a value is
not finite) that ``lab.js`` draws, with a ``readout`` line summing it up. ``LABS`` describes
each lab's controls: the range a live lab offers (``min``/``max``, or the options of a select)
and the ``grid`` of values the static book precomputes. ``bpcourse.widgets`` shows the same lab
live in JupyterLab and as precomputed frames in the HTML book.

- ``lr_frame``: gradient descent on $L(w, b) = \text{mean}((wx + b - y)^2)$ for the points of
  ``data.line`` (y = 2x + 1 + noise): the loss per step, the path of (w, b), divergence.
- ``init_frame``: one forward and backward pass of a deep net on 128 digits: activation std,
  gradient norms and activation histograms per layer.
- ``depth_frame``: plain against residual nets of the same depth on the spirals: gradient norms
  per layer at initialisation, then the loss over a short training run.
"""
import functools
import itertools
import math

import numpy as np

from bplib import data
from bplib.diagnostics import deep_net, layer_stats
from bplib.layers import Linear
from bplib.losses import mse_loss
from bplib.optim import SGD
from bplib.train import fit

MOMENTUM = {"SGD": 0.0, "momentum": 0.9}
W_RANGE, B_RANGE = (-2.0, 6.0), (-3.0, 5.0)   # the (w, b) window of the loss surface
BOUNDED = {"sigmoid": (0.0, 1.0), "tanh": (-1.0, 1.0)}   # histogram ranges; ReLU: [0, 99th %]
DEPTH_STEPS, DEPTH_LR = 30, 0.03


def _round(values):
    """Floats rounded to 4 significant digits, as a (nested) list; None where not finite."""
    a = np.asarray(values, dtype=float)
    if a.ndim > 1:
        return [_round(row) for row in a]
    flat = [float(f"{v:.4g}") if math.isfinite(v) else None for v in np.atleast_1d(a).tolist()]
    return flat if a.ndim else flat[0]


def _control(name, label, grid, default, lo=None, hi=None, kind="slider"):
    return {"name": name, "label": label, "kind": kind, "grid": grid, "default": default,
            "min": grid[0] if lo is None else lo, "max": grid[-1] if hi is None else hi}


def _seed():
    return _control("seed", "seed", [0, 1], 0, 0, 99)


LABS = {
    "lr": {"title": "Learning rate: gradient descent on y = 2x + 1", "controls": [
        _control("lr", "learning rate η", [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.3,
                                           0.5, 0.7, 0.8, 0.9, 1.0, 1.1, 1.3, 1.5, 2.0, 2.5, 3.0],
                 0.1, kind="log"),
        _control("optimizer", "optimizer", list(MOMENTUM), "SGD", kind="select"),
        _control("steps", "steps", [10, 30, 100], 100, 5, 300), _seed()]},
    "init": {"title": "Initialisation: what one pass through a deep net looks like", "controls": [
        _control("scheme", "weights", ["normal", "xavier", "he"], "he", kind="select"),
        {**_control("sigma", "σ of N(0, σ²)", [0.01, 0.1, 0.2, 0.5, 1.0, 2.0], 1.0, 0.001,
                    3.0, kind="log"), "when": ["scheme", "normal"]},
        _control("activation", "activation", ["sigmoid", "tanh", "relu"], "relu", kind="select"),
        _control("depth", "depth", [5, 15, 30, 50], 30, 1, 50), _seed()]},
    "depth": {"title": "Depth and skip connections: plain against residual", "controls": [
        _control("depth", "depth", [2, 5, 10, 20, 30, 50], 30, 1, 50), _seed()]},
}


@functools.cache
def _line():
    return data.line(n=100, noise=0.1, seed=0)


@functools.cache
def lr_surface(n=41):
    """What every frame of the learning-rate lab shares: the data, the least-squares (w, b) and
    its loss (``floor``), and the loss on an n x n grid (``loss[i][j]`` at ``b[i]``, ``w[j]``)."""
    X, y = _line()
    w, b = np.linspace(*W_RANGE, n), np.linspace(*B_RANGE, n)
    residual = w[None, :, None] * X[:, 0] + b[:, None, None] - y[:, 0]
    best = np.linalg.lstsq(np.column_stack([X[:, 0], np.ones(len(X))]), y[:, 0], rcond=None)[0]
    floor = np.mean((best[0] * X[:, 0] + best[1] - y[:, 0]) ** 2)
    return {"w": _round(w), "b": _round(b), "loss": _round(np.mean(residual**2, axis=-1)),
            "x": _round(X[:, 0]), "y": _round(y[:, 0]), "best": _round(best),
            "floor": _round(floor)}


class _Tracked(SGD):
    """SGD that appends the (w, b) of a Linear(1, 1) to ``path`` after every update."""

    def step(self):
        super().step()
        self.path.append([p.value.item() for p in self.parameters])


def lr_frame(lr=0.1, optimizer="SGD", steps=100, seed=0):
    r"""Full-batch descent from a start drawn with ``seed`` on a circle of radius 3 around
    (w, b) = (2, 1). ``path[k]`` is (w, b) after k updates and ``loss[k]`` the loss there; a run
    that diverges (``bplib.train.fit``'s test) stops at ``diverged_at``, whose loss is kept."""
    X, y = _line()
    angle = np.random.default_rng(seed).uniform(0, 2 * np.pi)
    model = Linear(1, 1)
    model.W.value[:], model.b.value[:] = 2 + 3 * np.cos(angle), 1 + 3 * np.sin(angle)
    opt = _Tracked(model.parameters(), lr=lr, momentum=MOMENTUM[optimizer])
    opt.path = [[model.W.value.item(), model.b.value.item()]]
    history = fit(model, X, y, loss="mse", optimizer=opt, steps=steps, progress=False)
    loss = history.loss + ([] if history.diverged_at is not None else [mse_loss(model(X), y)[0]])
    (w, b), about = opt.path[-1], f"lr = {lr:.3g} · {optimizer} · {steps} steps · seed {seed}"
    end = (f"diverged at step {history.diverged_at}" if history.diverged_at is not None
           else f"final loss {loss[-1]:.4g} at (w, b) = ({w:.3g}, {b:.3g})")
    return {"loss": _round(loss), "path": _round(opt.path), "diverged_at": history.diverged_at,
            "readout": f"{about} · {end}"}


@functools.cache
def _digits():
    """128 digits, each of the 64 pixels standardised to mean 0 and std 1."""
    X, y, _, _ = data.digits(seed=0)
    return ((X - X.mean(axis=0)) / (X.std(axis=0) + 1e-8))[:128], y[:128]


def init_frame(scheme="he", sigma=1.0, activation="relu", depth=30, seed=0, bins=24):
    r"""``depth`` + 1 hidden layers of width 64 (``deep_net``), one pass on 128 digits:
    ``act_std``, ``grad_h`` ($\lVert\partial L/\partial h_\ell\rVert$, the gradient passed
    back) and ``grad_W`` ($\lVert\partial L/\partial W_\ell\rVert$) per layer, and
    histograms (fractions of the values in ``bins`` equal bins over ``hist_range``, the
    activation's range or, for ReLU, 0 to the 99th percentile; values outside land in the end
    bins) of four layers, ``hist_layers`` (numbered from 1)."""
    init = sigma if scheme == "normal" else scheme
    with np.errstate(all="ignore"):
        stats = layer_stats(deep_net(depth, 64, 64, 10, activation=activation, init=init,
                                     rng=seed), *_digits())
        shown = sorted({0, depth // 3, 2 * depth // 3, depth})
        top = np.percentile(np.concatenate([stats.activations[i].ravel() for i in shown]), 99)
        lo, hi = BOUNDED.get(activation, (0.0, top if 0 < top < np.inf else 1.0))
        hist = [np.histogram(np.clip(stats.activations[i], lo, hi), bins, (lo, hi))[0]
                / stats.activations[i].size for i in shown]
        spread = [np.max(g) / np.min(g) for g in (stats.grad_h, stats.grad_W)]
        shrink = stats.act_std[-1] / stats.act_std[0]
    name = {"normal": f"N(0, {sigma:.3g}²)", "xavier": "Xavier", "he": "He"}[scheme]
    readout = (f"{name} · {activation} · depth {depth} · seed {seed} · largest/smallest over "
               f"the layers: ‖∂L/∂h‖ {spread[0]:.3g}, ‖∂L/∂W‖ {spread[1]:.3g} · activation "
               f"std, last/first layer: {shrink:.3g}")
    return {"act_std": _round(stats.act_std), "grad_h": _round(stats.grad_h),
            "grad_W": _round(stats.grad_W),
            "hist_layers": [i + 1 for i in shown], "hist_range": _round([lo, hi]),
            "hist": _round(hist), "readout": readout}


@functools.cache
def _spirals():
    return data.spirals(n_per_class=50, seed=0)


def depth_frame(depth=30, seed=0):
    """Plain and residual ReLU nets (``deep_net``, width 16, He init) of ``depth`` hidden
    blocks on 150 spiral points: ``grad_W`` per layer at initialisation, then the ``loss`` of
    ``DEPTH_STEPS`` full-batch steps of SGD with lr ``DEPTH_LR``."""
    X, y = _spirals()
    frame = {}
    for kind in ("plain", "residual"):
        model = deep_net(depth, 16, 2, 3, residual=kind == "residual", rng=seed)
        grad_W = layer_stats(model, X, y).grad_W
        loss = fit(model, X, y, lr=DEPTH_LR, steps=DEPTH_STEPS, progress=False).loss
        frame[kind] = {"grad_W": _round(grad_W), "loss": _round(loss)}
    plain, residual = frame["plain"], frame["residual"]
    frame["readout"] = (f"depth {depth} · seed {seed} · first-layer ‖∂L/∂W‖: plain "
                        f"{plain['grad_W'][0]:.3g}, residual {residual['grad_W'][0]:.3g} · loss "
                        f"after {DEPTH_STEPS} steps at lr {DEPTH_LR}: plain "
                        f"{plain['loss'][-1]:.3g}, residual {residual['loss'][-1]:.3g}")
    return frame


FRAMES = {"lr": lr_frame, "init": init_frame, "depth": depth_frame}
SHARED = {"lr": lr_surface}


def spec(name):
    """What ``lab.js`` needs besides the frames: the lab's name, title, controls, shared data."""
    return {"lab": name, **LABS[name], "shared": SHARED[name]() if name in SHARED else None}


def defaults(name):
    return {c["name"]: c["default"] for c in LABS[name]["controls"]}


@functools.cache
def _blas():
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()


def check_controls(name, controls):
    """``controls`` if every control of lab ``name`` has a value it offers, else ValueError
    naming the control, the value and what it takes."""
    spec = LABS[name]
    for c in spec["controls"]:
        value = controls.get(c["name"])
        fits = (value in c["grid"] if c["kind"] == "select" else
                isinstance(value, (int, float)) and c["min"] <= value <= c["max"])
        if not fits:
            allowed = c["grid"] if c["kind"] == "select" else f"{c['min']} to {c['max']}"
            raise ValueError(f"{name}_lab: {c['name']} = {value!r}; expected {allowed}")
    unknown = set(controls) - {c["name"] for c in spec["controls"]}
    if unknown:
        raise ValueError(f"{name}_lab: no control {sorted(unknown)}; the controls are "
                         f"{[c['name'] for c in spec['controls']]}")
    return controls


def frame(name, **controls):
    """The frame of lab ``name`` for ``controls`` (the defaults for those not given), computed
    on one BLAS thread: faster for these small matrices, and far faster on a busy machine."""
    with _blas().limit(limits=1):
        return FRAMES[name](**{**defaults(name), **controls})


@functools.cache
def precompute(name):
    """Every frame of the lab's grid: ``frames`` (each distinct frame once) and ``index``, the
    frame shown for each combination of grid positions, in row-major order of the controls. A
    control with ``when = [other, value]`` matters only when ``other`` has that value."""
    controls, frames, index, seen = LABS[name]["controls"], [], [], {}
    for values in itertools.product(*(c["grid"] for c in controls)):
        args = dict(zip((c["name"] for c in controls), values))
        for c in controls:
            if "when" in c and args[c["when"][0]] != c["when"][1]:
                args[c["name"]] = c["default"]
        key = tuple(args.values())
        if key not in seen:
            seen[key] = len(frames)
            frames.append(frame(name, **args))
        index.append(seen[key])
    return {**spec(name), "frames": frames, "index": index}
