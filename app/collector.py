"""Python's cyclic garbage collector, tuned for a long-running process: the server, the
scheduler and `tally jobs run`.

Most of what a request or a renewal batch allocates is freed by reference counting; the
collector only looks for cycles. At CPython's default threshold (700) a 1,000-item batch set
off some 22 young and 2 full collections, 10 to 16 ms of a batch's ~80 ms of CPU, and a
renewal sweep spent about 12% of its Python in collections (8 µs a workspace; gc.callbacks in
bench-style runs), the full ones walking every object of the process.
"""

from __future__ import annotations

import gc

# Young collections after this many net allocations; the older generations keep their ratios.
YOUNG_THRESHOLD = 50_000


def tune_gc() -> None:
    """Call once the process has started: what exists then (modules, the schema, caches) lives
    as long as the process, so it moves out of the collector's sight and full collections stop
    walking it; young collections run every YOUNG_THRESHOLD allocations, not every 700."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, older, oldest)
