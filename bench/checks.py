"""`python bench/checks.py`: how long each exercise check takes with its reference solution.

A check draws three random input sets, computes the oracle's answer for each and runs the
learner's function on it; ``bpcourse.check.run_task`` is timed whole, with the reference solution
of each task taken from its master notebook in exercises/. Target: every median under 0.2 s,
so that a learner re-running a check cell never waits.
"""
import statistics
import sys
import time
from pathlib import Path

import jupytext

from bpcourse.check import TASKS, run_task

EXERCISES = Path(__file__).resolve().parents[1] / "exercises"
TARGET = 0.2  # seconds per check
RUNS = 15


def reference_solutions(notebook):
    """Run the master notebook's first code cell (its imports) and its solution cells."""
    code = [c for c in jupytext.read(EXERCISES / f"{notebook}.md").cells if c.cell_type == "code"]
    namespace = {}
    for cell in [code[0]] + [c for c in code if "solution" in c.metadata.get("tags", [])]:
        exec(cell.source, namespace)
    return namespace


def main():
    solutions = {}
    print(f"{'task':<20} {'notebook':<24} {'median ms':>10} {'max ms':>8}  target < {TARGET} s")
    worst = 0.0
    for name, task in TASKS.items():
        if task.notebook not in solutions:
            solutions[task.notebook] = reference_solutions(task.notebook)
        fn = solutions[task.notebook][task.function]
        run_task(name, fn, rng=0)  # warm up (imports, caches)
        times = []
        for seed in range(RUNS):
            start = time.perf_counter()
            result = run_task(name, fn, rng=seed)
            times.append(time.perf_counter() - start)
            if not result.passed:
                sys.exit(f"{name}: the reference solution failed: {result.message}")
        median = statistics.median(times)
        worst = max(worst, median)
        print(f"{name:<20} {task.notebook:<24} {median * 1e3:10.2f} {max(times) * 1e3:8.2f}  "
              f"{'met' if median < TARGET else 'MISSED'}")
    print(f"\nslowest median {worst * 1e3:.1f} ms: target {'met' if worst < TARGET else 'MISSED'}")


if __name__ == "__main__":
    main()
