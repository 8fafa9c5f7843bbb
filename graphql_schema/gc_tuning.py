"""The collector's work a serving process adds to app.collector's tuning: a collection every so
many request body bytes.
"""

from __future__ import annotations

import gc

# The threshold counts containers, not bytes: a request with a 1 MB body allocates few
# containers, and graphql-core's execution context is a reference cycle that holds its
# variables. Without a collection every so many bytes, 250 such requests could keep 500 MB.
BODY_BYTES_PER_COLLECTION = 8 * 1024 * 1024

_pending_bytes = 0


def request_done(body_bytes: int) -> None:
    """Count a finished request's body; past BODY_BYTES_PER_COLLECTION, collect the young
    generations, where that request's garbage cycles are. Costs about a millisecond once per
    32 batches of 1,000 items."""
    global _pending_bytes
    _pending_bytes += body_bytes
    if _pending_bytes >= BODY_BYTES_PER_COLLECTION:
        _pending_bytes = 0
        gc.collect(1)
