"""How `tally serve` speaks HTTP: uvicorn's httptools protocol plus a deadline for headers.

uvicorn 0.54 times out a connection only while it idles between requests; one that sends
nothing, or trickles its request line and headers, is never closed, so slow clients can hold
sockets forever. The fix subclasses uvicorn internals, so it is fenced in this package: one
entry point (`http_protocol`), an off switch (TALLY_HEADER_TIMEOUT=0) and a version check
that falls back to uvicorn's own protocol on any uvicorn it was not written for.
"""

from __future__ import annotations

import asyncio
import logging
import os
from importlib.metadata import version

from tally.serving.settings import HEADER_TIMEOUT_VAR, header_timeout

__all__ = ["http_protocol"]

log = logging.getLogger("tally")

WRITTEN_FOR = (0, 54)  # the uvicorn minor version whose HttpToolsProtocol is subclassed
PLAIN = "auto"  # uvicorn's own pick (httptools when installed): what `tally serve` used before


def http_protocol() -> type[asyncio.Protocol] | str:
    """The `http=` argument for uvicorn: the header-deadline protocol, or uvicorn's plain one.

    Raises ValueError when TALLY_HEADER_TIMEOUT is not a number of seconds.
    """
    if header_timeout(os.environ) == 0:
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
    return tuple(int(part) for part in found.split(".")[:2] if part.isdigit()) == WRITTEN_FOR


def _dotted(parts: tuple[int, ...]) -> str:
    return ".".join(str(part) for part in parts)


def _plain(reason: str) -> str:
    log.warning(
        "%s ignored, requests have no header deadline: tally.serving's protocol is %s",
        HEADER_TIMEOUT_VAR,
        reason,
    )
    return PLAIN
