"""TALLY_HEADER_TIMEOUT: seconds a connection has to send a request's line and headers;
TALLY_FAST_PATHS=off: responses written as uvicorn writes them (no held headers)."""

from __future__ import annotations

import math
from collections.abc import Mapping

from app.config import fast_paths_mode

HEADER_TIMEOUT_VAR = "TALLY_HEADER_TIMEOUT"
DEFAULT_HEADER_TIMEOUT = 30.0  # well inside the 60 s a half-open connection may live


def header_timeout(environ: Mapping[str, str]) -> float:
    """The deadline in seconds; 0 means off (uvicorn's plain protocol is used)."""
    raw = environ.get(HEADER_TIMEOUT_VAR, "").strip()
    if not raw:
        return DEFAULT_HEADER_TIMEOUT
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value < 0:
        raise ValueError(f"{HEADER_TIMEOUT_VAR} must be seconds (0: off); got {raw!r}")
    return value


def hold_headers() -> bool:
    """Whether a response's headers wait for its first body chunk (tally.serving.held_headers):
    unless TALLY_FAST_PATHS is off."""
    return fast_paths_mode() != "off"
