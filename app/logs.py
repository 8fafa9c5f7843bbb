"""Logging for every Tally process: one line an event, JSON with TALLY_LOG_FORMAT=json.

structlog renders both its own loggers and the standard library's (uvicorn's, tortoise's,
`logging.getLogger("tally")`), with the context bound for the request (its id, and what the
request middleware adds) merged into every line. Secrets are never logged: nothing logs a
header, a request body or a variable.
"""

from __future__ import annotations

import logging
from typing import Any

import structlog

FORMATS = ("text", "json")


def configure_logging(fmt: str = "text", level: int = logging.INFO) -> None:
    shared: list[Any] = [
        structlog.contextvars.merge_contextvars,
        structlog.stdlib.add_logger_name,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    if fmt == "json":
        renderer: Any = structlog.processors.JSONRenderer()
        tail: list[Any] = [structlog.processors.dict_tracebacks]
    else:
        renderer = structlog.dev.ConsoleRenderer(colors=False)
        tail = []
    structlog.configure(
        processors=[*shared, structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
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


def get_logger(name: str) -> Any:
    return structlog.get_logger(name)
