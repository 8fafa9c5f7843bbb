"""Fast paths past strawberry's and graphql-core's public API, fenced here with an off switch.

`http` answers a POST of JSON without strawberry's request handling for every transport;
`output` completes objects of plain leaf fields without graphql-core's per-field walk, and
`variables` coerces list variables with code compiled once per type; both override methods of
graphql-core's ExecutionContext (`execute_fields`, `complete_list_value`, `build`) that are not
its public API. So they are installed only by `install()`, only on the library versions they
were written for (on any other, a warning and graphql-core's own execution), and never when
TALLY_FAST_PATHS=off. TALLY_FAST_PATHS=verify computes every answer both ways and compares them
(`verify`); the test suite runs so.
"""

from __future__ import annotations

import logging
from importlib.metadata import version
from typing import Literal

from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext as ExecutionContext

from app.versions import major_minor

log = logging.getLogger("tally")

Mode = Literal["on", "off", "verify"]
MODES: tuple[Mode, ...] = ("on", "off", "verify")
# (distribution, major.minor) each fast path was written and tested for.
WRITTEN_FOR = (("graphql-core", (3, 3)), ("strawberry-graphql", (0, 341)))


def install(mode: Mode) -> type[ExecutionContext] | None:
    """The execution context class for the schema, or None for strawberry's own."""
    if mode == "off":
        return None
    found = _unexpected_versions()
    if found:
        log.warning(
            "fast paths not installed: written for graphql-core 3.3.x and strawberry-graphql"
            " 0.341.x, found %s; answers are graphql-core's own",
            ", ".join(found),
        )
        return None
    if mode == "verify":
        from graphql_schema.perf.verify import VerifiedExecutionContext

        return VerifiedExecutionContext
    from graphql_schema.perf.output import FastOutputExecutionContext

    return FastOutputExecutionContext


def http_enabled(mode: Mode) -> bool:
    """Whether a POST of JSON is answered by `http.answer` (also under verify, so the suite
    runs it; tests/api/test_fast_http.py compares it with strawberry's own answers)."""
    return mode != "off" and not _unexpected_versions()


def _unexpected_versions() -> list[str]:
    unexpected = []
    for distribution, wanted in WRITTEN_FOR:
        found = version(distribution)
        if major_minor(found) != wanted:
            unexpected.append(f"{distribution} {found}")
    return unexpected
