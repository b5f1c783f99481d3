"""Figures shared by the chapters, one helper per kind of picture.

Every helper returns a ``matplotlib.figure.Figure``. Each new figure is closed in pyplot right
away, so a notebook shows it exactly once: when a cell returns it (and nothing piles up in
pyplot). Pass ``ax=`` to draw into an existing axes instead (for example, before/after panels
side by side); the helper then returns that axes' figure.

``import bplib`` does not import this module, so numpy-only code never loads matplotlib.
"""
import matplotlib.pyplot as plt
import numpy as np
from matplotlib.colors import ListedColormap

from . import layers


def _figure(figsize):
    """A new figure of ``figsize`` inches, already closed in pyplot (shown only when returned).

    Made through pyplot so that Jupyter's inline backend is set up to display it.
    """
    fig = plt.figure(figsize=figsize, layout="constrained")
    plt.close(fig)
    return fig


def _new_axes(ax, figsize):
    """The given axes, or the single axes of a new figure of ``figsize`` inches."""
    return ax if ax is not None else _figure(figsize).add_subplot()


def axes_row(n, width, height):
    """``n`` axes side by side in a new figure, each panel ``width`` x ``height`` inches (the
    one figure set-up for a chapter that draws into panels itself; ``axes[0].figure`` shows
    it)."""
    return _figure((width * n, height)).subplots(1, n, squeeze=False)[0]


def _finish(ax, title, legend=None, grid=False):
    """The end of every one-axes helper: a light grid if ``grid``, a frameless legend of font
    size ``legend`` (None: no legend), the title; returns the axes' figure."""
    if grid:
        ax.grid(color="0.9")
    if legend:
        ax.legend(fontsize=legend, frameon=False)
    if title:
        ax.set_title(title, fontsize=10)
    return ax.figure


def _finish_panels(fig, title):
    """The end of every helper with several panels: the title above them all; returns fig."""
    if title:
        fig.suptitle(title, fontsize=10)
    return fig


def plot_activations(activations=("sigmoid", "tanh", "relu", "leaky_relu"), z=None,
                     derivative=True, ncols=2):
    r"""One panel per activation: $\phi(z)$ and (dashed) its derivative $\phi'(z)$.

    - activations: names from ``bplib.layers.ACTIVATIONS`` or layer instances (whose cache
      this overwrites).
    - z: the points to evaluate at, shape (n,); default 401 points on [-5, 5].
    - derivative: also draw $\phi'(z)$, taken from the layer's own backward pass with dout = 1.
    - ncols: panels per row.

    Returns a Figure with ``len(activations)`` axes, each holding 1 or 2 lines.
    """
    z = np.linspace(-5.0, 5.0, 401) if z is None else np.asarray(z, dtype=float)
    acts = [layers.activation_layer(a, "plot_activations") for a in activations]
    ncols = min(ncols, len(acts))
    nrows = -(-len(acts) // ncols)
    fig = _figure((3.2 * ncols, 2.4 * nrows))
    axes = fig.subplots(nrows, ncols, squeeze=False).ravel()
    for ax in axes[len(acts):]:
        ax.remove()
    for ax, layer in zip(axes, acts):
        ax.plot(z, layer.forward(z[:, None])[:, 0], color="C0", label=r"$\phi(z)$")
        if derivative:
            slope = layer.backward(np.ones((z.size, 1)))[:, 0]
            ax.plot(z, slope, color="C3", linestyle="--", label=r"$\phi'(z)$")
        ax.set_title(repr(layer), fontsize=10)
        ax.grid(color="0.9")
        ax.set_xlabel("$z$")
    axes[0].legend(loc="upper left", fontsize=9, frameon=False)
    return fig


def plot_decision_regions(predict, X, y, ax=None, resolution=200, padding=0.3, title=None):
    """Colour the plane by the class a model picks, with the labelled points on top.

    - predict: function from points of shape (n, 2) to class scores of shape (n, C), e.g. a
      model's ``forward``; the region's class is the argmax of the scores.
    - X: points of shape (N, 2); y: their integer labels, shape (N,).
    - resolution: grid points along each side; padding: margin around the data.

    Returns the Figure (one axes holding a filled contour and one scatter per class).
    """
    X, y = np.asarray(X, dtype=float), np.asarray(y)
    ax = _new_axes(ax, (4.2, 4.0))
    (x0, y0), (x1, y1) = X.min(axis=0) - padding, X.max(axis=0) + padding
    gx, gy = np.meshgrid(np.linspace(x0, x1, resolution), np.linspace(y0, y1, resolution))
    scores = np.asarray(predict(np.column_stack([gx.ravel(), gy.ravel()])))
    n_classes = max(scores.shape[1], int(y.max()) + 1)
    colors = [f"C{k % 10}" for k in range(n_classes)]  # also for the regions, lighter
    regions = scores.argmax(axis=1).reshape(gx.shape)
    ax.contourf(gx, gy, regions, levels=np.arange(n_classes + 1) - 0.5,
                cmap=ListedColormap(colors), alpha=0.25)
    for k in range(n_classes):
        ax.scatter(*X[y == k].T, s=12, color=colors[k], edgecolor="white", linewidth=0.4,
                   label=f"class {k}")
    ax.set(xlim=(x0, x1), ylim=(y0, y1), aspect="equal", xlabel="$x_1$", ylabel="$x_2$")
    return _finish(ax, title)


def plot_fit(x, y, predictions, ax=None, num=200, title=None):
    """Data points of a 1-D regression problem with one curve per model.

    - x, y: the data, shape (N,) or (N, 1).
    - predictions: ``{label: predict}``, where ``predict`` maps inputs of shape (n, 1) to
      outputs of shape (n, 1) (e.g. a model's ``forward``); each becomes a line.
    - num: points on each curve.

    Returns the Figure (one axes: a scatter of the data and ``len(predictions)`` lines).
    """
    x, y = np.ravel(x).astype(float), np.ravel(y).astype(float)
    ax = _new_axes(ax, (5.0, 3.2))
    ax.scatter(x, y, s=10, color="0.55", label="data")
    grid = np.linspace(x.min(), x.max(), num)[:, None]
    for label, predict in predictions.items():
        ax.plot(grid[:, 0], np.ravel(predict(grid)), linewidth=1.8, label=label)
    ax.set(xlabel="$x$", ylabel="$y$")
    return _finish(ax, title, legend=9)


def plot_history(histories, keys=("loss", "grad_norm"), logy=True, title=None):
    """Training curves recorded by ``bplib.train.fit``: one panel per key, one line per run.

    - histories: ``{label: History}``.
    - keys: History fields, per step ("loss", "grad_norm") or per epoch ("epoch_loss",
      "val_loss", "val_accuracy").
    - logy: logarithmic y axes (never for accuracies).

    Non-finite values are left out; a run that diverged gets an x at its last finite loss.
    Returns the Figure (``len(keys)`` axes side by side).
    """
    axes = axes_row(len(keys), 3.4, 2.8)
    for ax, key in zip(axes, keys):
        per_step = key in ("loss", "grad_norm")
        for k, (label, history) in enumerate(histories.items()):
            values = np.asarray(getattr(history, key), dtype=float)
            x = np.arange(len(values)) + (0 if per_step else 1)
            ok = np.isfinite(values)
            ax.plot(x[ok], values[ok], color=f"C{k}", linewidth=1.2, label=label)
            if per_step and history.diverged_at is not None and ok.any():
                ax.plot(x[ok][-1], values[ok][-1], "x", color=f"C{k}", markersize=8)
        ax.set(xlabel="step" if per_step else "epoch", ylabel=key.replace("_", " "),
               yscale="log" if logy and "accuracy" not in key else "linear")
        ax.grid(color="0.9")
    axes[0].legend(fontsize=9, frameon=False)
    return _finish_panels(axes[0].figure, title)


def plot_rel_errors(errors, tol=1e-7, ax=None, title=None):
    """Relative errors of gradient checks as horizontal bars on a log scale.

    - errors: ``{label: relative error}``, drawn top to bottom.
    - tol: the pass mark, a dashed line; bars below it are green, bars above it red.

    Returns the Figure (one axes with ``len(errors)`` bars, each labelled with its value).
    """
    labels, values = list(errors), np.array(list(errors.values()), dtype=float)
    floor = min(values[values > 0].min(initial=tol), tol) / 100
    ax = _new_axes(ax, (5.6, 0.45 * len(labels) + 1.0))
    ax.barh(labels, np.maximum(values, floor) - floor, left=floor,
            color=["C2" if v < tol else "C3" for v in values])
    for i, v in enumerate(values):
        ax.annotate(f"{v:.1e}", (max(v, floor), i), xytext=(3, 0), textcoords="offset points",
                    va="center", fontsize=8)
    ax.axvline(tol, color="0.3", linestyle="--", linewidth=1)
    ax.set(xscale="log", xlim=(floor, max(values.max(), tol) * 1e3), xlabel="relative error")
    ax.invert_yaxis()
    return _finish(ax, title)


def plot_descent_paths(loss, paths, xlim, ylim, ax=None, num=150, levels=14,
                       labels=("$w$", "$b$"), target=None, title=None):
    """Contours of a loss of two parameters, with the points gradient descent visited.

    - loss: function of two arrays of one shape (a grid of the two parameters) returning the
      loss at every grid point, same shape.
    - paths: ``{label: points}``, points of shape (k, 2): the parameters after each step.
    - xlim, ylim: the window; paths that leave it are cut off. target: a point to mark.

    Returns the Figure (one axes: contour lines, geometrically spaced, and one line per path).
    """
    ax = _new_axes(ax, (4.6, 3.8))
    g1, g2 = np.meshgrid(np.linspace(*xlim, num), np.linspace(*ylim, num))
    grid = np.asarray(loss(g1, g2), dtype=float)
    low = max(grid.min(), grid.max() * 1e-6)
    ax.contour(g1, g2, grid, levels=np.geomspace(low, grid.max(), levels), colors="0.75",
               linewidths=0.7)
    for label, points in paths.items():
        ax.plot(*np.asarray(points, dtype=float).T, marker="o", markersize=2.5, linewidth=1,
                label=label)
    if target is not None:
        ax.plot(*target, "*", color="black", markersize=10)
    ax.set(xlim=xlim, ylim=ylim, xlabel=labels[0], ylabel=labels[1])
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    return _finish(ax, title)


def plot_matmul_shapes(products, title=None):
    """Matrix products ``result = left @ right`` drawn as rectangles sized by their shapes.

    - products: a list of ``(result, left, right)``, each a ``(label, (rows, cols))`` pair, e.g.
      ``(("dW2", (16, 3)), ("a1ᵀ", (16, 64)), ("delta2", (64, 3)))``.

    A side of n entries is drawn n**0.4 long (so 2 and 300 both fit) and labelled with n.
    Returns the Figure (one axes, one row of three rectangles per product).
    """
    gap, rows_y, y = 4.2, [], 0.0
    for row in products:
        height = max(shape[0] ** 0.4 for _, shape in row)
        rows_y.append(y - 1.2 - height / 2)
        y -= height + 1.6
    right = max(sum(shape[1] ** 0.4 for _, shape in row) for row in products) + 2 * gap
    ax = _figure((0.18 * (right + 1.4) + 0.3, 0.18 * -y + 0.3)).add_subplot()
    for row, yc in zip(products, rows_y):
        x = 0.0
        for k, (label, (n_rows, n_cols)) in enumerate(row):
            w, h = n_cols**0.4, n_rows**0.4
            ax.add_patch(plt.Rectangle((x, yc - h / 2), w, h, color=f"C{k}", alpha=0.3))
            ax.text(x + w / 2, yc, label, ha="center", va="center", fontsize=9)
            ax.text(x + w / 2, yc + h / 2 + 0.4, str(n_cols), ha="center", va="center", fontsize=7)
            ax.text(x - 0.15, yc, str(n_rows), ha="right", va="center", fontsize=7)
            if k < 2:  # the = and the @ between the three arrays
                ax.text(x + w + 1.4, yc, "=@"[k], ha="center", va="center", fontsize=12)
            x += w + gap
    ax.set(aspect="equal", xlim=(-1.2, right + 0.2), ylim=(y, 0.0))
    ax.axis("off")
    return _finish(ax, title)


# Axis labels for the fields of bplib.diagnostics.LayerStats.
STAT_LABELS = {"act_mean": "activation mean", "act_std": "activation std",
               "dead": "dead ReLUs (fraction)", "grad_h": r"$\Vert\partial L/\partial A\Vert$",
               "grad_W": r"$\Vert\partial L/\partial W\Vert$"}


def plot_layer_stats(stats, keys=("act_std", "grad_W"), logy=("act_std", "grad_h", "grad_W"),
                     xlabel="layer", title=None):
    """Statistics per layer of several networks: one panel per key, one line per network.

    - stats: ``{label: s}``, s a ``bplib.diagnostics.LayerStats`` or a dict, where ``s.key``
      (or ``s[key]``) has shape (n_layers,); the networks may differ in depth.
    - keys: the fields to draw ("act_std", "act_mean", "dead", "grad_h", "grad_W", or any key
      of the dicts); logy: the keys drawn on a logarithmic y axis.

    Layer i is drawn at x = i + 1; values that are not finite (or, on a log axis, not positive)
    are left out. Returns the Figure (``len(keys)`` axes side by side).
    """
    axes = axes_row(len(keys), 3.5, 2.9)
    for ax, key in zip(axes, keys):
        for k, (label, s) in enumerate(stats.items()):
            y = np.asarray(s[key] if isinstance(s, dict) else getattr(s, key), dtype=float)
            ok = np.isfinite(y) & ((y > 0) if key in logy else True)
            ax.plot(np.arange(1, y.size + 1), np.where(ok, y, np.nan), color=f"C{k}",
                    marker="o", markersize=2.5, linewidth=1.2, label=label)
        ax.set(xlabel=xlabel, ylabel=STAT_LABELS.get(key, key),
               yscale="log" if key in logy else "linear")
        ax.grid(color="0.9")
    axes[0].legend(fontsize=8, frameon=False)
    return _finish_panels(axes[0].figure, title)


def plot_activation_histograms(activations, layers=None, bins=30, title=None):
    """Histograms of the values in some layers: one row per network, one column per layer.

    - activations: ``{label: [A_1, A_2, ...]}``, one array per layer (such as
      ``LayerStats.activations``); every network needs the layers asked for.
    - layers: 0-based indices of the layers to show; default the first, middle and last of
      the shallowest network.

    The panels of a row share one range of values, so a distribution that shrinks with depth
    is seen shrinking. Returns the Figure (a grid of ``len(activations)`` x ``len(layers)`` axes).
    """
    n = min(len(acts) for acts in activations.values())
    layers = [0, n // 2, n - 1] if layers is None else list(layers)
    fig = _figure((2.2 * len(layers) + 0.8, 1.3 * len(activations) + 0.5))
    grid = fig.subplots(len(activations), len(layers), squeeze=False)
    for row, (axes, (label, acts)) in enumerate(zip(grid, activations.items())):
        values = [np.ravel(acts[i]).astype(float) for i in layers]
        lo, hi = min(v.min() for v in values), max(v.max() for v in values)
        for ax, i, v in zip(axes, layers, values):
            ax.hist(v, bins=bins, range=(lo, hi) if hi > lo else None, color=f"C{row}",
                    histtype="stepfilled", alpha=0.7)
            ax.set_yticks([])
            if row == 0:
                ax.set_title(f"layer {i + 1}", fontsize=9)
        axes[0].set_ylabel(label, fontsize=9)
    return _finish_panels(fig, title)


def plot_lines(x, lines, ax=None, xlabel=None, ylabel=None, title=None, logx=False,
               logy=False, marker=None, dashed=()):
    """Several curves over one shared x axis.

    - x: shape (n,); lines: ``{label: y}`` with each y of shape (n,). NaN and inf entries
      are left out, so a computation that breaks down shows as a line that stops.
    - logx, logy: logarithmic axes; marker: e.g. "o" to mark every point;
      dashed: labels drawn dashed (reference lines such as "∝ n").

    Returns the Figure (one axes holding ``len(lines)`` lines).
    """
    x = np.ravel(x).astype(float)
    ax = _new_axes(ax, (4.8, 3.2))
    for label, y in lines.items():
        y = np.ravel(y).astype(float)
        if y.shape != x.shape:
            raise ValueError(f"plot_lines: line {label!r} has shape {y.shape}; "
                             f"expected x's shape {x.shape}")
        ax.plot(x, np.where(np.isfinite(y), y, np.nan), marker=marker, markersize=4,
                linestyle="--" if label in dashed else "-", label=label)
    ax.set(xscale="log" if logx else "linear", yscale="log" if logy else "linear",
           xlabel=xlabel, ylabel=ylabel)
    return _finish(ax, title, legend=9, grid=True)


def plot_tangents(curves, span=1.0, num=101, ax=None, xlabel="step $s$", ylabel="loss",
                  title=None):
    r"""Functions of a step $s$ around 0, each with its tangent line at $s = 0$ (dashed).

    - curves: ``{label: (f, slope)}``; f maps a float s to a float (e.g. the loss with one
      weight moved by s) and slope is $f'(0)$ as a gradient reports it.
    - span: s runs over [-span, span] at ``num`` points.

    Returns the Figure (one axes: per curve a solid line, a dashed tangent and a dot at s = 0).
    """
    t = np.linspace(-span, span, num)
    ax = _new_axes(ax, (4.8, 3.2))
    for k, (label, (f, slope)) in enumerate(curves.items()):
        values = np.array([f(float(ti)) for ti in t])
        f0, color = f(0.0), f"C{k}"
        ax.plot(t, values, color=color, label=label)
        ax.plot(t, f0 + slope * t, color=color, linestyle="--", linewidth=1,
                label=f"slope {slope:.4f}")
        ax.plot([0.0], [f0], "o", color=color, markersize=4)
    ax.set(xlabel=xlabel, ylabel=ylabel)
    return _finish(ax, title, legend=9, grid=True)


def plot_magnitudes(arrays, dtype=np.float16, bins=80, ax=None, title=None):
    r"""Histograms of $\log_{10}|x|$ over the nonzero entries of each array, drawn over the
    ranges of a floating-point type: shaded where a value rounds to 0, where it is subnormal
    (fewer significant bits) and where it overflows to inf.

    - arrays: ``{label: array}`` of exact values (taken as float64).
    - dtype: the numpy float type whose ranges are shaded, float16 by default.

    Returns the Figure (one axes: three shaded spans and one histogram per array).
    """
    info, name = np.finfo(dtype), np.dtype(dtype).name
    # below half the smallest subnormal number, rounding gives 0
    limits = np.array([info.smallest_subnormal, info.smallest_normal, info.max], dtype=float)
    zero, tiny, big = np.log10(limits * [0.5, 1.0, 1.0])
    mags = {label: np.abs(np.ravel(a).astype(float)) for label, a in arrays.items()}
    logs = {label: np.log10(m[m > 0]) for label, m in mags.items()}
    lo = np.floor(min(zero - 1, *(v.min() for v in logs.values() if v.size)))
    hi = np.ceil(max(big + 1, *(v.max() for v in logs.values() if v.size)))
    ax = _new_axes(ax, (6.0, 3.2))
    ax.axvspan(lo, zero, color="C3", alpha=0.15, label=f"rounds to 0 in {name}")
    ax.axvspan(zero, tiny, color="C1", alpha=0.15, label="subnormal: few digits")
    ax.axvspan(big, hi, color="0.5", alpha=0.2, label="overflows to inf")
    for label, v in logs.items():
        ax.hist(v, bins=np.linspace(lo, hi, bins + 1), histtype="stepfilled", alpha=0.55,
                label=label)
    ax.set(xlim=(lo, hi), xlabel=r"$\log_{10}|x|$", ylabel="entries")
    ax.legend(fontsize=8, frameon=False, loc="upper right")
    return _finish(ax, title)

def plot_panels(x, panels, xlabel=None, logx=False, logy=(), marker="o", title=None):
    """Panels side by side over one shared x axis, several labelled curves in each.

    - x: shape (n,); panels: ``{ylabel: {label: y}}`` where y has shape (n,) (NaN and inf are
      left out) or is one number, drawn as a dashed horizontal reference line.
    - logx: a logarithmic x axis in base 2 (ticks as plain numbers up to 1024, as powers of
      2 beyond); logy: the ylabels of the panels with a logarithmic y axis; marker: for the
      curves, None for none.

    Returns the Figure (one axes per panel).
    """
    x = np.ravel(x).astype(float)
    axes = axes_row(len(panels), 4.0, 3.0)
    for ax, (ylabel, lines) in zip(axes, panels.items()):
        for k, (label, y) in enumerate(lines.items()):
            y = np.asarray(y, dtype=float)
            if y.ndim == 0:
                ax.axhline(y, color=f"C{k}", linestyle="--", linewidth=1.2, label=label)
                continue
            if y.shape != x.shape:
                raise ValueError(f"plot_panels: {label!r} in panel {ylabel!r} has shape "
                                 f"{y.shape}; expected x's shape {x.shape} or one number")
            ax.plot(x, np.where(np.isfinite(y), y, np.nan), color=f"C{k}", marker=marker,
                    markersize=4, label=label)
        if logx:
            ax.set_xscale("log", base=2)
            if x.max() <= 1024:
                ax.xaxis.set_major_formatter("{x:g}")
        ax.set(yscale="log" if ylabel in logy else "linear", xlabel=xlabel, ylabel=ylabel)
        ax.grid(color="0.9")
        ax.legend(fontsize=8, frameon=False)
    return _finish_panels(axes[0].figure, title)
