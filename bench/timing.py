"""Shared timing helper of the bench scripts (run them as ``python bench/NAME.py``)."""

from __future__ import annotations

import time


def best_time(fn, repeats: int) -> float:
    """Best wall time of ``repeats`` calls of ``fn`` after one warm-up (compile) call."""
    fn()  # compile / warm up
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)
