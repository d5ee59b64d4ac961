"""The garbage collector in long-running processes (API, scheduler, simulator fleets).

CPython's full (generation 2) collection walks every tracked object. After start-up most
of them live as long as the process: modules, mappers, routes, compiled queries, and in a
simulator thousands of clusters. Measured at 10,000 clusters (docs/benchmarks.md,
2026-12-03): full collections of 150 to 250 ms in the API and 400 to 700 ms in each
simulator process, landing in the middle of an emergency's answers.
"""

from __future__ import annotations

import gc


def settle(*, full_collection_every: int | None = None) -> None:
    """Once start-up is done: what exists now is kept out of later full collections
    (`gc.freeze`), so they walk only what came after. Only for a process's own entry point,
    never in a library or a test run (frozen cycles are never freed).

    `full_collection_every`: generation 1 collections between full ones (CPython's default
    is 10), for a process whose later objects are mostly long-lived timers and tasks."""
    gc.collect()
    gc.freeze()
    if full_collection_every is not None:
        young, middle, _ = gc.get_threshold()
        gc.set_threshold(young, middle, full_collection_every)
