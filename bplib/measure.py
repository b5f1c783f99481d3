"""Measuring a computation: how long it takes, and how much memory it holds at its peak.

Both helpers return the function's result with the measurement, ``(result, seconds)`` and
``(result, bytes)``, so a cell that needs the value does not have to compute it twice.
"""
import time
import tracemalloc

from . import validate


MIN_SECONDS = 0.02  # the shortest measurement: in a browser the clock ticks in 0.1 ms or more


def best_time(f, *args, repeats=7):
    """``(f(*args), seconds)``: the result of the last run and the fastest of ``repeats``
    measurements of one run, the one the rest of the machine disturbed least. A measurement
    runs f as many times as it takes to last MIN_SECONDS (doubling) and divides, so that a clock
    that ticks coarsely still times a fast f."""
    validate.check_number(repeats, "repeats", "best_time", "an int >= 1")
    best, runs = float("inf"), 1
    for _ in range(repeats):
        while True:
            start = time.perf_counter()
            for _ in range(runs):
                result = f(*args)
            elapsed = time.perf_counter() - start
            if elapsed >= MIN_SECONDS or runs >= 1 << 20:
                break
            runs *= 2
        best = min(best, elapsed / runs)
    return result, best


def peak_memory(f, *args):
    """``(f(*args), peak)``: peak is the most bytes that were allocated at once while f ran,
    as ``tracemalloc`` counts them (numpy reports its arrays to it). Starts and stops tracing."""
    tracemalloc.start()
    try:
        return f(*args), tracemalloc.get_traced_memory()[1]  # f runs first
    finally:
        tracemalloc.stop()
