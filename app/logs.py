"""Logging for every Tally process: one line an event (logfmt), JSON with TALLY_LOG_FORMAT=json.

structlog renders both its own loggers and the standard library's (uvicorn's, tortoise's,
`logging.getLogger("tally")`), with the context bound for the request (its id, and what the
request middleware adds) merged into every line. Secrets are never logged: nothing logs a
header, a request body or a variable.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any, TextIO

import orjson
import structlog
from structlog.tracebacks import ExceptionDictTransformer

FORMATS = ("text", "json")


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    leading: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    # Both renderers are the cheap ones: the request line is written once a request, and
    # structlog's ConsoleRenderer (padded columns) cost 57 µs a line here, logfmt 33, JSON
    # through orjson 12 (bench/README.md).
    if fmt == "json":
        renderer: Any = structlog.processors.JSONRenderer(serializer=_orjson_text)
        # A traceback as data, without each frame's locals: they may hold a key or a body.
        tail: list[Any] = [
            structlog.processors.ExceptionRenderer(ExceptionDictTransformer(show_locals=False))
        ]
    else:
        renderer = structlog.processors.LogfmtRenderer(key_order=_FIRST)
        tail = [structlog.processors.format_exc_info]
    # structlog's own loggers (the request line, one a request) render and write directly, as
    # structlog's performance notes advise: through the standard library's LogRecord, handler
    # and formatter the line cost about a sixth of a charge request's CPU.
    stream = sys.stderr
    structlog.configure(
        processors=[*leading, *tail, renderer],
        logger_factory=lambda *names: _NamedWriter(stream, names[0] if names else "tally"),
        wrapper_class=structlog.make_filtering_bound_logger(level),
        cache_logger_on_first_use=True,
    )
    # The standard library's loggers (uvicorn's, tortoise's, tally's own) get the same lines.
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=leading,
        processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, *tail, renderer],
    )
    handler = logging.StreamHandler()
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers = [handler]
    root.setLevel(level)
    for name in ("uvicorn", "uvicorn.error"):
        logging.getLogger(name).handlers = []  # through the root's handler, formatted alike
        logging.getLogger(name).propagate = True
    # One line per request is the request middleware's (tally.request, with the operation and
    # the outcome): uvicorn's own access line would repeat it, and its protocol writes one
    # whenever the logger has a handler, even with access_log=False.
    access = logging.getLogger("uvicorn.access")
    access.handlers = []
    access.propagate = False


_FIRST = ["timestamp", "level", "logger", "event"]


def _orjson_text(value: Any, **options: Any) -> str:
    """orjson for structlog's JSONRenderer; what orjson refuses and the standard library's
    encoder writes (a lone surrogate a client sent, an integer wider than 64 bits) goes
    through the latter, so that a log line never raises."""
    fallback = options.get("default", str)
    try:
        return orjson.dumps(value, default=fallback, option=orjson.OPT_NON_STR_KEYS).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value, default=fallback)


class _NamedWriter(structlog.WriteLogger):
    """A structlog writer with a name, for `add_logger_name`, like a standard library logger."""

    def __init__(self, stream: TextIO | None = None, name: str = "tally") -> None:
        super().__init__(stream)
        self.name, self.stream = name, stream

    def __deepcopy__(self, memo: Any) -> _NamedWriter:
        return _NamedWriter(self.stream, self.name)  # WriteLogger's own would drop the name


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
