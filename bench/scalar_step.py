"""`make bench`: one training step of a 2-16-16-2 MLP of scalar Values (bplib.engine), and of
the same MLP built from micrograd's Value when the `micrograd` package is installed.

The network and the loss follow micrograd's demo: neurons as in its `nn.py` (ReLU hidden units, a
linear output), 64 points of the two moons, an SVM hinge loss with L2 regularisation. A step is
forward, zero_grad, backward and an SGD update, timed with the garbage collector ON. Each engine
runs a few consecutive steps at a time, as in a training loop, so each pays for collecting its
own garbage; `gc.collect()` before each such block (not timed) keeps one engine's garbage out of
the other's timing. The engines take turns, so the ratio compares like with like on whatever
machine this is.
Target (issue 8): bplib <= 100 ms per step.
"""
import gc
import random
import statistics
import time

from bplib.data import moons
from bplib.engine import Value, topological_order

SIZES = [2, 16, 16, 2]
BATCH, ALPHA, LR, TARGET_MS = 64, 1e-4, 0.05, 100.0


def make_mlp(value, seed=0):
    """[(weights, bias), ...] per neuron per layer, micrograd's uniform(-1, 1) weights."""
    rnd = random.Random(seed)
    return [[([value(rnd.uniform(-1, 1)) for _ in range(n_in)], value(0.0)) for _ in range(n_out)]
            for n_in, n_out in zip(SIZES[:-1], SIZES[1:])]


def parameters(mlp):
    return [p for layer in mlp for w, b in layer for p in [*w, b]]


def scores(mlp, x):
    """The MLP on one point: ReLU neurons, then a linear output layer."""
    for i, layer in enumerate(mlp):
        x = [sum((wi * xi for wi, xi in zip(w, x)), b) for w, b in layer]
        if i < len(mlp) - 1:
            x = [a.relu() for a in x]
    return x


def hinge_loss(mlp, value, X, y):
    """Multiclass SVM loss max(0, 1 + s_wrong - s_right) averaged over the batch, + L2."""
    losses = []
    for x, label in zip(X, y):
        s = scores(mlp, [value(float(v)) for v in x])
        losses += [(1 + s[j] - s[label]).relu() for j in range(len(s)) if j != label]
    data_loss = sum(losses) * (1.0 / len(X))
    return data_loss + ALPHA * sum(p * p for p in parameters(mlp))


def step(mlp, value, X, y):
    """One full training step; returns the loss before the update."""
    loss = hinge_loss(mlp, value, X, y)
    params = parameters(mlp)
    for p in params:
        p.grad = 0.0
    loss.backward()
    for p in params:
        p.data -= LR * p.grad
    return loss.data


def timed_steps_ms(mlp, value, X, y, steps):
    """Milliseconds of each of ``steps`` consecutive steps."""
    gc.collect()
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        step(mlp, value, X, y)
        times.append((time.perf_counter() - start) * 1e3)
    return times


def main(rounds=5, steps=3):
    X, y = moons(n=BATCH, noise=0.1, seed=0)
    engines = {"bplib": Value}
    try:
        from micrograd.engine import Value as MicrogradValue
        engines["micrograd"] = MicrogradValue
    except ImportError:
        print("micrograd is not installed (pip install micrograd): timing bplib alone")
    mlps = {name: make_mlp(value) for name, value in engines.items()}
    first = {name: step(mlps[name], value, X, y) for name, value in engines.items()}
    if max(first.values()) - min(first.values()) > 1e-9:
        raise RuntimeError(f"the engines disagree on the loss: {first}")
    nodes = len(topological_order(hinge_loss(mlps["bplib"], Value, X, y)))
    times = {name: [] for name in engines}
    for _ in range(rounds):             # interleaved: machine noise hits every engine alike
        for name, value in engines.items():
            times[name] += timed_steps_ms(mlps[name], value, X, y, steps)
    print(f"scalar engine, one step of a {'-'.join(map(str, SIZES))} MLP on {BATCH} points "
          f"with a hinge loss ({nodes:,} nodes), garbage collector on, {rounds * steps} steps:")
    for name, t in times.items():
        print(f"  {name:<10} median {statistics.median(t):6.1f} ms  "
              f"(min {min(t):6.1f}, max {max(t):6.1f})")
    median = statistics.median(times["bplib"])
    if "micrograd" in times:
        print(f"  micrograd / bplib: {statistics.median(times['micrograd']) / median:.1f}x")
    print(f"  target bplib <= {TARGET_MS:.0f} ms: {'met' if median <= TARGET_MS else 'MISSED'}")


if __name__ == "__main__":
    main()
