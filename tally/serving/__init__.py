"""How `tally serve` speaks HTTP: uvicorn's httptools protocol plus a deadline for headers, and
each response's headers sent with its body in one write.

uvicorn 0.54 times out a connection only while it idles between requests; one that sends
nothing, or trickles its request line and headers, is never closed, so slow clients can hold
sockets forever (tally.serving.header_deadline). And it writes a response's headers and body
in two sends (tally.serving.held_headers). Both subclass uvicorn internals, so they are fenced
in this package: one entry point (`http_protocol`), off switches (TALLY_HEADER_TIMEOUT=0 for the
deadline, TALLY_FAST_PATHS=off for the held headers) and a version check that falls back to
uvicorn's own protocol on any uvicorn they were not written for.
"""

from __future__ import annotations

import asyncio
import logging
import os
from importlib.metadata import version

from app.versions import major_minor
from tally.serving.settings import HEADER_TIMEOUT_VAR, header_timeout, hold_headers

__all__ = ["http_protocol"]

log = logging.getLogger("tally")

WRITTEN_FOR = (0, 54)  # the uvicorn minor version whose HttpToolsProtocol is subclassed
PLAIN = "auto"  # uvicorn's own pick (httptools when installed): what `tally serve` used before


def http_protocol() -> type[asyncio.Protocol] | str:
    """The `http=` argument for uvicorn: Tally's protocol, or uvicorn's plain one when both of
    its changes are switched off.

    Raises ValueError when TALLY_HEADER_TIMEOUT is not a number of seconds.
    """
    if header_timeout(os.environ) == 0 and not hold_headers():
        return PLAIN
    found = version("uvicorn")
    if not _written_for(found):
        return _plain(f"written for uvicorn {_dotted(WRITTEN_FOR)}.x, found {found}")
    try:
        from tally.serving.header_deadline import HeaderDeadlineProtocol
    except ImportError as error:  # httptools missing: uvicorn falls back to h11 by itself
        return _plain(f"cannot import it ({error})")
    return HeaderDeadlineProtocol


def _written_for(found: str) -> bool:
    return major_minor(found) == WRITTEN_FOR


def _dotted(parts: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in parts)


def _plain(reason: str) -> str:
    log.warning(
        "tally.serving's protocol is %s: requests have no header deadline (%s ignored) and"
        " responses are written as uvicorn writes them",
        reason,
        HEADER_TIMEOUT_VAR,
    )
    return PLAIN
