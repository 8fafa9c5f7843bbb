"""Garbage-collector settings for a serving process.

A 1,000-item batch allocates tens of thousands of short-lived containers. At CPython's default
threshold (700) that set off some 22 young and 2 full collections a batch, 10 to 16 ms of a
batch's ~80 ms of CPU, measured with gc.callbacks in bench-style runs. Almost all of that
garbage is freed by reference counting anyway; the collector is only for cycles.
"""

from __future__ import annotations

import gc

# Young collections after this many net allocations; the older generations keep their ratios.
YOUNG_THRESHOLD = 50_000
# The threshold counts containers, not bytes: a request with a 1 MB body allocates few
# containers, and graphql-core's execution context is a reference cycle that holds its
# variables. Without a collection every so many bytes, 250 such requests could keep 500 MB.
BODY_BYTES_PER_COLLECTION = 8 * 1024 * 1024

_pending_bytes = 0


def tune_gc() -> None:
    """Call once the app has started: what exists then (modules, the schema, caches) lives as
    long as the process, so it moves out of the collector's sight and full collections stop
    walking it; young collections run every YOUNG_THRESHOLD allocations, not every 700."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)


def request_done(body_bytes: int) -> None:
    """Count a finished request's body; past BODY_BYTES_PER_COLLECTION, collect the young
    generations, where that request's garbage cycles are. Costs about a millisecond once per
    32 batches of 1,000 items."""
    global _pending_bytes
    _pending_bytes += body_bytes
    if _pending_bytes >= BODY_BYTES_PER_COLLECTION:
        _pending_bytes = 0
        gc.collect(1)
