"""Measuring a computation: how long it takes, and how much memory it holds at its peak.

Both helpers return the function's result with the measurement, ``(result, seconds)`` and
``(result, bytes)``, so a cell that needs the value does not have to compute it twice.
"""
import time
import tracemalloc

from . import validate


def best_time(f, *args, repeats=7):
    """``(f(*args), seconds)``: the result of the last run and the fastest of ``repeats`` runs,
    the one the rest of the machine disturbed least."""
    validate.check_number(repeats, "repeats", "best_time", "an int >= 1")
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        result = f(*args)
        best = min(best, time.perf_counter() - start)
    return result, best


def peak_memory(f, *args):
    """``(f(*args), peak)``: peak is the most bytes that were allocated at once while f ran,
    as ``tracemalloc`` counts them (numpy reports its arrays to it). Starts and stops tracing."""
    tracemalloc.start()
    try:
        return f(*args), tracemalloc.get_traced_memory()[1]  # f runs first
    finally:
        tracemalloc.stop()
