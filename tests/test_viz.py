"""The plotting helpers (one module, bplib.viz, shared by all chapters) return figures with the
expected artists and data, render to SVG, and leave nothing open in pyplot."""
import dataclasses
import io

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
from matplotlib.collections import PathCollection  # noqa: E402
from matplotlib.figure import Figure  # noqa: E402
from matplotlib.patches import Polygon, Rectangle  # noqa: E402

from bplib import data, train, viz  # noqa: E402
from bplib.diagnostics import deep_net, layer_stats  # noqa: E402
from bplib.layers import LeakyReLU, Linear, mlp  # noqa: E402


@pytest.fixture(autouse=True)
def no_open_figures():
    plt.close("all")
    yield
    assert plt.get_fignums() == [], "a helper left a figure open in pyplot"


def renders(fig):
    buf = io.BytesIO()
    fig.savefig(buf, format="svg")
    return buf.getvalue().startswith(b"<?xml")


def scatters(ax):
    return [c for c in ax.collections if isinstance(c, PathCollection)]


def test_plot_activations_draws_function_and_derivative_per_panel():
    fig = viz.plot_activations()
    assert isinstance(fig, Figure)
    assert len(fig.axes) == 4
    assert all(len(ax.lines) == 2 for ax in fig.axes)


def test_plot_activations_derivative_comes_from_backward():
    x = np.linspace(-3.0, 3.0, 61)
    fig = viz.plot_activations(["sigmoid", "tanh"], z=x)
    (s_x, s), (_, ds) = [line.get_data() for line in fig.axes[0].lines]
    (_, t), (_, dt) = [line.get_data() for line in fig.axes[1].lines]
    np.testing.assert_allclose(s_x, x)
    np.testing.assert_allclose(s, 1.0 / (1.0 + np.exp(-x)), rtol=1e-12)
    np.testing.assert_allclose(ds, s * (1.0 - s), rtol=1e-12)
    np.testing.assert_allclose(t, np.tanh(x), rtol=1e-12)
    np.testing.assert_allclose(dt, 1.0 - np.tanh(x) ** 2, rtol=1e-12)


def test_plot_activations_layout_layers_and_no_derivative():
    fig = viz.plot_activations(["relu", LeakyReLU(alpha=0.2), "tanh"], derivative=False)
    assert len(fig.axes) == 3                       # a 2 x 2 grid with the spare panel removed
    assert all(len(ax.lines) == 1 for ax in fig.axes)
    assert fig.axes[1].get_title() == "LeakyReLU(alpha=0.2)"
    _, y = fig.axes[1].lines[0].get_data()
    assert y[0] == pytest.approx(0.2 * -5.0)


def test_plot_activations_rejects_unknown_names():
    with pytest.raises(ValueError, match="softplus"):
        viz.plot_activations(["softplus"])


def test_plot_decision_regions_colours_the_plane_and_shows_each_class():
    X = np.array([[-1.0, 0.0], [1.0, 0.5], [0.5, -1.0], [-0.5, 1.0]])
    y = np.array([0, 1, 2, 1])
    seen = []

    def predict(points):
        seen.append(points.shape)
        return np.column_stack([-points[:, 0], points[:, 0], points[:, 1]])

    fig = viz.plot_decision_regions(predict, X, y, resolution=50, title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert seen == [(50 * 50, 2)]
    assert len(scatters(ax)) == 3                   # one per class
    assert sum(len(c.get_offsets()) for c in scatters(ax)) == len(X)
    assert len(ax.collections) > 3                  # the filled regions are there too
    assert ax.get_title() == "t"


def test_plot_decision_regions_takes_a_model_and_an_existing_axes():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((30, 2)), rng.integers(0, 3, 30)
    fig = Figure()
    left, right = fig.subplots(1, 2)
    out = viz.plot_decision_regions(mlp([2, 8, 3], rng=0).forward, X, y, ax=right)
    assert out is fig
    assert len(scatters(right)) == 3 and not left.collections


def test_plot_fit_draws_data_and_one_line_per_model():
    x = np.linspace(-1.0, 1.0, 20)[:, None]
    y = 2.0 * x + 1.0
    fig = viz.plot_fit(x, y, {"true": lambda g: 2.0 * g + 1.0,
                              "net": mlp([1, 4, 1], rng=0).forward}, num=30)
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    assert len(scatters(ax)) == 1 and len(scatters(ax)[0].get_offsets()) == 20
    gx, gy = ax.lines[0].get_data()
    assert len(gx) == 30
    np.testing.assert_allclose(gy, 2.0 * gx + 1.0)
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["data", "true", "net"]


def test_figures_render():
    """Each figure can be saved (what the notebook's inline backend does)."""
    X, y = np.array([[0.0, 0.0], [1.0, 1.0]]), np.array([0, 1])
    for fig in (viz.plot_activations(),
                viz.plot_decision_regions(lambda p: np.column_stack([p[:, 0], -p[:, 0]]), X, y),
                viz.plot_fit([0.0, 1.0], [0.0, 1.0], {"id": lambda g: g})):
        assert renders(fig)


# ---- helpers added for chapters 2 and 3 ------------------------------------------------------


def test_plot_lines_draws_one_line_per_entry_with_its_label():
    x = np.arange(1.0, 6.0)
    fig = viz.plot_lines(x, {"squares": x ** 2, "ref": 2 * x}, xlabel="n", ylabel="cost",
                         title="t", dashed=("ref",), marker="o")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    assert len(ax.lines) == 2
    np.testing.assert_allclose(ax.lines[0].get_ydata(), x ** 2)
    assert ax.lines[0].get_linestyle() == "-" and ax.lines[1].get_linestyle() == "--"
    assert ax.lines[0].get_marker() == "o"
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["squares", "ref"]
    assert (ax.get_xlabel(), ax.get_ylabel(), ax.get_title()) == ("n", "cost", "t")
    assert ax.get_xscale() == "linear"


def test_plot_lines_leaves_out_nan_and_inf_and_takes_log_axes():
    x = np.array([1.0, 10.0, 100.0, 1000.0])
    y = np.array([1.0, 2.0, np.inf, np.nan])
    fig = viz.plot_lines(x, {"breaks down": y}, logx=True, logy=True)
    ax = fig.axes[0]
    assert (ax.get_xscale(), ax.get_yscale()) == ("log", "log")
    drawn = ax.lines[0].get_ydata()
    assert list(drawn[:2]) == [1.0, 2.0] and np.all(np.isnan(drawn[2:]))


def test_plot_lines_rejects_a_line_of_the_wrong_length():
    with pytest.raises(ValueError, match="'b' has shape"):
        viz.plot_lines([1, 2, 3], {"a": [1, 2, 3], "b": [1, 2]})


def test_plot_lines_draws_into_a_given_axes():
    fig = Figure()
    left, right = fig.subplots(1, 2)
    assert viz.plot_lines([0, 1], {"a": [0, 1]}, ax=right) is fig
    assert len(right.lines) == 1 and not left.lines


def test_plot_tangents_draws_curve_tangent_and_point():
    def f(t):
        return (t - 1.0) ** 2                        # f(0) = 1, f'(0) = -2

    fig = viz.plot_tangents({"parabola": (f, -2.0)}, span=0.5, num=11, title="t")
    ax = fig.axes[0]
    curve, tangent, point = ax.lines
    t, y = curve.get_data()
    np.testing.assert_allclose(t, np.linspace(-0.5, 0.5, 11))
    np.testing.assert_allclose(y, (t - 1.0) ** 2)
    np.testing.assert_allclose(tangent.get_ydata(), 1.0 - 2.0 * t)
    assert tangent.get_linestyle() == "--"
    assert list(point.get_xdata()) == [0.0] and list(point.get_ydata()) == [1.0]
    labels = [text.get_text() for text in ax.get_legend().get_texts()]
    assert labels == ["parabola", "slope -2.0000"]
    assert ax.get_title() == "t"


def test_plot_tangents_gives_each_curve_its_own_colour():
    fig = viz.plot_tangents({"a": (lambda t: t, 1.0), "b": (lambda t: -t, -1.0)})
    lines = fig.axes[0].lines
    assert len(lines) == 6
    assert lines[0].get_color() == lines[1].get_color() != lines[3].get_color()


def test_figures_of_chapters_2_and_3_render():
    for fig in (viz.plot_lines([1, 2], {"a": [1, 2]}),
                viz.plot_tangents({"a": (lambda t: t * t, 0.0)})):
        assert renders(fig)


# ---- helpers added for chapters 4 and 5 ------------------------------------------------------


@pytest.fixture(scope="module")
def histories():
    X, y = data.line(n=50, seed=0)
    return {f"lr {lr}": train.fit(Linear(1, 1, rng=0), X, y, loss="mse", lr=lr, steps=60,
                                  progress=False, X_val=X, y_val=y)
            for lr in (0.1, 2.0)}


def test_plot_history_one_panel_per_key_one_line_per_run(histories):
    fig = viz.plot_history(histories)
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    loss_ax, norm_ax = fig.axes
    assert loss_ax.get_yscale() == "log" and loss_ax.get_xlabel() == "step"
    good, bad = histories.values()
    x, y = loss_ax.lines[0].get_data()
    np.testing.assert_array_equal(y, good.loss)
    np.testing.assert_array_equal(x, np.arange(len(good.loss)))
    # the diverged run: its curve, then an x at its last finite loss
    assert bad.diverged_at is not None
    assert len(loss_ax.lines) == 3 and loss_ax.lines[2].get_marker() == "x"
    assert [t.get_text() for t in loss_ax.get_legend().get_texts()] == list(histories)
    np.testing.assert_array_equal(norm_ax.lines[0].get_data()[1], good.grad_norm)
    assert renders(fig)


def test_plot_history_per_epoch_keys_and_linear_accuracy(histories):
    # a stand-in accuracy: the line task has no classes
    good = {"good": dataclasses.replace(histories["lr 0.1"], val_accuracy=[0.5, 0.75])}
    fig = viz.plot_history(good, keys=("val_loss", "val_accuracy"), title="t")
    loss_ax, acc_ax = fig.axes
    assert loss_ax.get_xlabel() == "epoch"
    np.testing.assert_array_equal(acc_ax.lines[0].get_data()[0], [1, 2])
    assert acc_ax.get_yscale() == "linear" and loss_ax.get_yscale() == "log"
    assert fig.get_suptitle() == "t"


def test_plot_rel_errors_colours_pass_and_fail():
    errors = {"correct": 3e-10, "bug": 0.4, "exact": 0.0}
    fig = viz.plot_rel_errors(errors, tol=1e-7, title="checks")
    (ax,) = fig.axes
    bars = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(bars) == 3
    colors = [matplotlib.colors.to_hex(b.get_facecolor()) for b in bars]
    assert colors[0] == colors[2] != colors[1]      # below the mark green, above it red
    assert ax.get_xscale() == "log"
    assert [t.get_text() for t in ax.get_yticklabels()] == list(errors)
    assert any(t.get_text() == "4.0e-01" for t in ax.texts)
    assert renders(fig)


def test_plot_descent_paths_draws_contours_paths_and_target():
    def loss(w, b):
        return (w - 2.0) ** 2 + 3.0 * (b - 1.0) ** 2

    path = np.array([[0.0, 0.0], [1.0, 1.5], [1.8, 0.8]])
    fig = viz.plot_descent_paths(loss, {"lr 0.3": path, "lr 0.6": path[::-1]},
                                 xlim=(-1, 3), ylim=(-1, 2), target=(2.0, 1.0), num=40)
    (ax,) = fig.axes
    assert len(ax.lines) == 3                       # two paths and the target
    np.testing.assert_array_equal(np.column_stack(ax.lines[0].get_data()), path)
    assert ax.get_xlim() == (-1, 3)
    assert renders(fig)


def test_plot_matmul_shapes_one_rectangle_per_array():
    products = [(("Z", (64, 16)), ("X", (64, 2)), ("W", (2, 16))),
                (("dW", (2, 16)), ("Xᵀ", (2, 64)), ("delta", (64, 16)))]
    fig = viz.plot_matmul_shapes(products, title="shapes")
    (ax,) = fig.axes
    rects = [p for p in ax.patches if isinstance(p, Rectangle)]
    assert len(rects) == 6
    assert rects[1].get_height() == pytest.approx(64**0.4)
    assert rects[1].get_width() == pytest.approx(2**0.4)
    labels = [t.get_text() for t in ax.texts]
    assert {"Z", "X", "W", "dW", "Xᵀ", "delta", "=", "@", "64", "16", "2"} <= set(labels)
    assert renders(fig)


# ---- helpers added for chapters 6 and 7 ------------------------------------------------------


@pytest.fixture(scope="module")
def stats():
    rng = np.random.default_rng(0)
    X, y = rng.standard_normal((32, 4)), rng.integers(0, 3, 32)
    return {"relu": layer_stats(deep_net(5, 8, 4, 3, rng=0), X, y),
            "tanh": layer_stats(deep_net(3, 8, 4, 3, activation="tanh", rng=0), X, y)}


def test_plot_layer_stats_one_panel_per_key_one_line_per_network(stats):
    fig = viz.plot_layer_stats(stats, keys=("act_std", "grad_W", "dead"))
    assert isinstance(fig, Figure) and len(fig.axes) == 3
    assert all(len(ax.lines) == 2 for ax in fig.axes)
    std, grad, dead = fig.axes
    x, y = std.lines[0].get_data()
    np.testing.assert_array_equal(x, np.arange(1, 7))          # 6 blocks drawn at 1..6
    np.testing.assert_allclose(y, stats["relu"].act_std)
    assert std.get_yscale() == "log" and dead.get_yscale() == "linear"
    assert dead.get_ylabel() == "dead ReLUs (fraction)"
    assert np.isnan(dead.lines[1].get_data()[1]).all()         # tanh has no ReLUs: left out
    assert [t.get_text() for t in std.get_legend().get_texts()] == ["relu", "tanh"]


def test_plot_layer_stats_takes_dicts_and_leaves_out_what_a_log_axis_cannot_show():
    fig = viz.plot_layer_stats({"a": {"norm": np.array([1.0, 0.0, 0.1, np.inf])}},
                               keys=("norm",), logy=("norm",), xlabel="depth", title="t")
    ax = fig.axes[0]
    _, y = ax.lines[0].get_data()
    np.testing.assert_array_equal(np.isnan(y), [False, True, False, True])
    assert ax.get_xlabel() == "depth" and ax.get_ylabel() == "norm"
    assert fig._suptitle.get_text() == "t"


def test_plot_activation_histograms_grid_with_a_shared_range_per_row(stats):
    acts = {k: s.activations for k, s in stats.items()}
    fig = viz.plot_activation_histograms(acts)
    assert len(fig.axes) == 2 * 3
    relu_row = fig.axes[:3]
    assert [ax.get_title() for ax in relu_row] == ["layer 1", "layer 3", "layer 4"]
    assert relu_row[0].get_ylabel() == "relu"
    assert all(len(ax.patches) == 1 for ax in fig.axes)        # one filled histogram each
    lo = min(acts["relu"][i].min() for i in (0, 2, 3))
    hi = max(acts["relu"][i].max() for i in (0, 2, 3))
    for ax in relu_row:
        xs = ax.patches[0].get_path().vertices[:, 0]
        assert xs.min() == pytest.approx(lo) and xs.max() == pytest.approx(hi)


def test_plot_activation_histograms_chosen_layers_and_constant_values():
    fig = viz.plot_activation_histograms({"zeros": [np.zeros((4, 3))] * 3}, layers=[2])
    assert len(fig.axes) == 1 and fig.axes[0].get_title() == "layer 3"


def test_figures_render_as_svg(stats):
    for fig in (viz.plot_layer_stats(stats),
                viz.plot_activation_histograms({k: s.activations for k, s in stats.items()})):
        assert renders(fig)


# ---- helpers added for chapter 8 -------------------------------------------------------------


def test_plot_magnitudes_shades_the_float16_ranges_and_draws_one_histogram_per_array():
    rng = np.random.default_rng(0)
    small = 10.0 ** rng.uniform(-9, -5, 1000)
    fig = viz.plot_magnitudes({"small": np.append(small, 0.0), "scaled": 2.0**16 * small},
                              title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 1
    ax = fig.axes[0]
    spans = [p for p in ax.patches if isinstance(p, (Polygon, Rectangle))
             and p.get_label() in ("rounds to 0 in float16", "subnormal: few digits",
                                   "overflows to inf")]
    assert len(spans) == 3
    hists = [p for p in ax.patches if p.get_label() in ("small", "scaled")]
    assert len(hists) == 2
    lo, hi = ax.get_xlim()
    assert lo <= np.log10(6e-8 / 2) and hi >= np.log10(65504)  # the whole float16 range
    assert ax.get_title() == "t"
    assert renders(fig)


def test_plot_magnitudes_other_dtype_and_existing_axes():
    fig = Figure()
    ax = fig.subplots()
    out = viz.plot_magnitudes({"x": [1e-30, 1.0, 1e30]}, dtype=np.float32, ax=ax)
    assert out is fig
    labels = [p.get_label() for p in ax.patches]
    assert "rounds to 0 in float32" in labels
    assert ax.get_xlim()[1] >= 38  # float32's largest number is about 3.4e38


def test_plot_panels_one_axes_per_panel_with_reference_lines():
    x = [1, 2, 4, 8]
    fig = viz.plot_panels(x, {"memory": {"k": [4, 3, 2, 3], "plain": 5.0},
                              "time": {"k": [1, 1.2, 1.3, np.inf]}},
                          xlabel="k", logx=True, logy=("time",), title="t")
    assert isinstance(fig, Figure) and len(fig.axes) == 2
    memory, time = fig.axes
    assert len(memory.lines) == 2 and len(time.lines) == 1
    ref = memory.lines[1]
    assert ref.get_linestyle() == "--" and list(ref.get_ydata()) == [5.0, 5.0]
    _, y = time.lines[0].get_data()
    assert np.isnan(y[-1])                    # inf is left out
    assert memory.get_xscale() == "log" and time.get_yscale() == "log"
    assert memory.get_yscale() == "linear"
    assert [memory.get_ylabel(), time.get_xlabel()] == ["memory", "k"]
    assert [t.get_text() for t in memory.get_legend().get_texts()] == ["k", "plain"]
    assert renders(fig)


def test_plot_panels_refuses_a_curve_of_the_wrong_length():
    with pytest.raises(ValueError, match="'a' in panel 'p' has shape \\(2,\\); expected x's shape"):
        viz.plot_panels([1, 2, 3], {"p": {"a": [1, 2]}})
