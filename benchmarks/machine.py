"""How fast this machine runs Python right now: a fixed, interpreter-bound workload, timed.

The same code's figures move with the machine: on 2026-12-01 machines of the same kind ran the
unchanged scoring core at 262,000 records/s in one session and at 122,000 to 134,000 in the next. A
benchmark prints ``reference_s`` (this workload's best time, before and after its own work) beside its
figures, so that a slower machine can be told apart from slower code: compare figures only from
sittings whose reference times agree. Lower is faster.
"""

from __future__ import annotations

import gc
import time

#: The workload's result: the same on every machine (a check that it ran in full).
CHECKSUM = 7_450_120


def workload(n: int = 200_000) -> int:
    """Dictionary updates, string formatting and a sort: what the sync's own Python mostly does."""
    counts: dict[str, int] = {}
    total = 0
    for i in range(n):
        key = f"k{i % 5000}"
        counts[key] = counts.get(key, 0) + i
        total += len(key) * (i & 7)
    ordered = sorted(counts.items(), key=lambda kv: kv[1])
    return total + len(ordered) + ordered[-1][1]


def reference_seconds(repeats: int = 5) -> float:
    """The workload's best time of ``repeats`` runs, in seconds (rounded to the millisecond). The
    garbage collector is off meanwhile: a collection's length depends on what the process holds, not on
    the machine."""
    best = float("inf")
    collecting = gc.isenabled()
    gc.disable()
    try:
        for _ in range(repeats):
            start = time.perf_counter()
            result = workload()
            best = min(best, time.perf_counter() - start)
            if result != CHECKSUM:  # pragma: no cover - the workload is deterministic
                raise AssertionError(f"reference workload gave {result}, expected {CHECKSUM}")
    finally:
        if collecting:
            gc.enable()
    return round(best, 3)
