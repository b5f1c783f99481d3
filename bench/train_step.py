"""`make bench`: one full training step (forward, softmax cross-entropy, backward, SGD update) of
bplib against a hand-written vectorised numpy step and PyTorch eager on the CPU (when installed).

The three run interleaved in one process and are timed in the process's CPU time, so the ratios
compare like with like on whatever machine this is, shared or not. Targets (issues 2 and 8): bplib
<= 1.25x the hand-written step and <= 0.6x PyTorch eager at every size; `import bplib` < 0.3 s.
"""
import statistics
import subprocess
import sys
import time

import numpy as np

from bplib.layers import Linear, ReLU, Residual, Sequential
from bplib.losses import softmax_cross_entropy
from bplib.optim import SGD

LR = 0.01
NUMPY_TARGET, TORCH_TARGET = 1.25, 0.6  # bplib's time over the hand-written step's, over torch's
# name, input width, hidden widths, residual hidden blocks?, classes, batch
CONFIGS = [
    ("2-16-16-2", 2, [16, 16], False, 2, 64),
    ("784-128-64-10", 784, [128, 64], False, 10, 64),
    ("32 plain x 64", 64, [64] * 32, False, 10, 128),
    ("32 residual x 64", 64, [64] * 32, True, 10, 128),
]


def make_weights(d_in, hidden, n_out, dtype, residual=False, seed=0):
    """He-initialised (W, b) pairs shared by all three implementations."""
    rng = np.random.default_rng(seed)
    sizes = [d_in, *hidden, n_out]
    # Residual branches start small (std / sqrt(depth)) so 32 blocks do not blow up the signal.
    branch = 1 / np.sqrt(len(hidden)) if residual else 1.0
    return [(rng.normal(0, np.sqrt(2 / m) * (branch if i < len(hidden) else 1), (m, n)).astype(dtype),
             np.zeros(n, dtype)) for i, (m, n) in enumerate(zip(sizes[:-1], sizes[1:]))]


def bplib_step(weights, residual):
    layers = []
    for W, b in weights:
        lin = Linear(*W.shape)
        lin.W.value, lin.b.value = W.copy(), b.copy()
        lin.W.grad, lin.b.grad = np.zeros_like(W), np.zeros_like(b)
        layers.append(lin)
    body = []
    for lin in layers[:-1]:
        body += [Residual(Sequential(lin, ReLU()))] if residual else [lin, ReLU()]
    model = Sequential(*body, layers[-1])
    model.input_grad = False  # as bplib.train.fit has it: no gradient for the data
    opt = SGD(model.parameters(), lr=LR)

    def step(X, y):
        opt.zero_grad()
        loss, dlogits = softmax_cross_entropy(model.forward(X), y)
        model.backward(dlogits)
        opt.step()
        return loss
    return step


def numpy_step(weights, residual):
    """The step as one would write it by hand: explicit arrays, explicit backward."""
    params = [(W.copy(), b.copy()) for W, b in weights]

    def step(X, y):
        h, cache = X, []
        for W, b in params[:-1]:
            z = h @ W + b
            a = np.maximum(z, 0)
            cache.append((h, z))
            h = h + a if residual else a
        Wo, bo = params[-1]
        logits = h @ Wo + bo
        shifted = logits - logits.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        n = len(y)
        loss = -log_p[np.arange(n), y].mean()
        dlogits = np.exp(log_p)
        dlogits[np.arange(n), y] -= 1
        dlogits /= n
        grads = [(h.T @ dlogits, dlogits.sum(axis=0))]
        dh = dlogits @ Wo.T
        for i, ((W, b), (h_in, z)) in enumerate(zip(reversed(params[:-1]), reversed(cache))):
            dz = dh * (z > 0)
            grads.append((h_in.T @ dz, dz.sum(axis=0)))
            if i < len(cache) - 1:  # no gradient for the input data X
                dh = dh + dz @ W.T if residual else dz @ W.T
        for (W, b), (dW, db) in zip(params, reversed(grads)):
            W -= LR * dW
            b -= LR * db
        return loss
    return step


def torch_step(weights, residual):
    import torch

    class Block(torch.nn.Module):
        def __init__(self, lin):
            super().__init__()
            self.lin = lin

        def forward(self, x):
            a = torch.relu(self.lin(x))
            return x + a if residual else a

    lins = []
    for W, b in weights:
        lin = torch.nn.Linear(*W.shape)
        with torch.no_grad():
            lin.weight.copy_(torch.from_numpy(W.T.copy()))
            lin.bias.copy_(torch.from_numpy(b))
        lins.append(lin.to(torch.from_numpy(W).dtype))
    model = torch.nn.Sequential(*[Block(lin) for lin in lins[:-1]], lins[-1])
    opt = torch.optim.SGD(model.parameters(), lr=LR)

    def step(X, y):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(model(X), y)
        loss.backward()
        opt.step()
        return loss.item()
    return step


def matmul_step(weights, batch):
    """Only the matrix products of one step, at bplib's shapes and layout: X @ W forward, X.T @ dout
    and (above the first layer) dout @ W.T backward. What no numpy step can go below."""
    rng = np.random.default_rng(2)
    products = []
    for i, (W, _) in enumerate(weights):
        X, dout = (rng.normal(size=(batch, n)).astype(W.dtype) for n in W.shape)
        products += [(X, W), (X.T, dout)] + ([(dout, W.T)] if i else [])

    def step(*_):
        for A, B in products:
            A @ B
    return step


def median_step_ms(step, X, y, steps):
    """CPU time of this process per step: time spent while another process has the core (two
    cores, shared) does not count, for any of the implementations."""
    t0 = time.process_time()
    for _ in range(steps):
        step(X, y)
    return (time.process_time() - t0) / steps * 1e3


def bench_config(name, d_in, hidden, residual, n_out, batch, dtype, torch, rounds=7):
    weights = make_weights(d_in, hidden, n_out, dtype, residual)
    rng = np.random.default_rng(1)
    X = rng.normal(size=(batch, d_in)).astype(dtype)
    y = rng.integers(0, n_out, batch)
    impls = {"numpy": (numpy_step(weights, residual), X, y),
             "bplib": (bplib_step(weights, residual), X, y)}
    if torch is not None:
        impls["torch"] = (torch_step(weights, residual), torch.from_numpy(X), torch.from_numpy(y))
    # Same loss from all three at the first step and, after one update, at the second: they
    # compute the same thing, gradients and update included.
    tol = 1e-4 if dtype == np.float32 else 1e-7
    for which in ("first", "second"):
        loss = {k: float(step(a, b)) for k, (step, a, b) in impls.items()}
        if max(loss.values()) - min(loss.values()) > tol * max(1.0, abs(loss["numpy"])):
            raise RuntimeError(f"{name}: implementations disagree on the {which} loss: {loss}")
    impls["matmuls"] = (matmul_step(weights, batch), X, y)
    # Steps per timing so that one timing lasts ~20 ms.
    steps = max(3, int(20 / max(median_step_ms(impls["numpy"][0], X, y, 3), 1e-3)))
    times = {k: [] for k in impls}
    for _ in range(rounds):  # interleaved: machine noise hits every implementation alike
        for k, (step, a, b) in impls.items():
            times[k].append(median_step_ms(step, a, b, steps))
    return {k: statistics.median(v) for k, v in times.items()}


CORE = "bplib, bplib.layers, bplib.losses, bplib.optim, bplib.init, bplib.gradcheck, bplib.engine, bplib.data"


def import_time(runs=5):
    """Median seconds to import bplib with all its core modules in a fresh interpreter, and to
    import numpy alone (most of the former)."""
    def once(modules):
        code = f"import time; t = time.perf_counter(); import {modules}; print(time.perf_counter() - t)"
        return float(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                    check=True).stdout)
    return (statistics.median(once(CORE) for _ in range(runs)),
            statistics.median(once("numpy") for _ in range(runs)))


def main():
    # One thread each for numpy's BLAS and torch: on 2 cores, thread scheduling noise otherwise
    # swamps these small steps. (The Makefile also pins glibc's allocator thresholds so that
    # page faults on freshly mapped buffers do not favour whichever code frees memory last.)
    from threadpoolctl import threadpool_limits
    threadpool_limits(1)
    try:
        import torch
        torch.set_num_threads(1)
    except ImportError:
        torch = None
        print("PyTorch is not installed: comparing bplib with hand-written numpy only "
              "(pip install torch==2.13.0 for the third column)\n")
    header = f"{'config':<18} {'dtype':<8} {'numpy ms':>9} {'bplib ms':>9} {'torch ms':>9} " \
             f"{'bplib/numpy':>12} {'bplib/torch':>12} {'matmuls/torch':>14}  " \
             f"targets <= {NUMPY_TARGET}, <= {TORCH_TARGET}"
    print(header)
    print("-" * len(header))
    all_ok = True
    for dtype in (np.float64, np.float32):
        for name, *shape in CONFIGS:
            t = bench_config(name, *shape, dtype, torch)
            r_np = t["bplib"] / t["numpy"]
            r_t = t["bplib"] / t["torch"] if "torch" in t else float("nan")
            r_mm = t["matmuls"] / t["torch"] if "torch" in t else float("nan")
            ok = r_np <= NUMPY_TARGET and (torch is None or r_t <= TORCH_TARGET)
            all_ok &= ok
            print(f"{name:<18} {np.dtype(dtype).name:<8} {t['numpy']:9.3f} {t['bplib']:9.3f} "
                  f"{t.get('torch', float('nan')):9.3f} {r_np:12.2f} {r_t:12.2f} {r_mm:14.2f}  "
                  f"{'met' if ok else 'MISSED'}")
    print("\nmatmuls/torch: the step's matrix products alone, in numpy at bplib's shapes, over "
          "torch's whole step.\nWhere it is near or above the torch target, no numpy step can "
          "meet it: the time is in\nthe BLAS products themselves (numpy's BLAS library against "
          "torch's). Where the hand-written\nstep (numpy ms) is itself near the target, bplib "
          "would have to beat it.")
    bp, nump = import_time()
    ok = bp < 0.3
    all_ok &= ok
    print(f"\nimport bplib and its core modules: {bp * 1e3:.0f} ms (import numpy alone: {nump * 1e3:.0f} ms; "
          f"ratio {bp / nump:.2f}); target < 300 ms: {'met' if ok else 'MISSED'}")
    print("\nall targets met" if all_ok else "\nsome targets MISSED")


if __name__ == "__main__":
    main()
