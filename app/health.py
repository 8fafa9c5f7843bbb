"""Readiness: the database answers and its schema is the code's (every migration applied)."""

from __future__ import annotations

import asyncio
import pkgutil

import app.migrations
from app.db import connection, fetch

TIMEOUT = 3.0  # seconds: a probe that hangs is as unready as one that fails


def expected_migrations() -> set[str]:
    return {m.name for m in pkgutil.iter_modules(app.migrations.__path__) if m.name[0].isdigit()}


async def readiness() -> tuple[bool, str]:
    """(ready, why not)."""
    try:
        rows = await asyncio.wait_for(
            fetch(connection(), "SELECT name FROM tortoise_migrations WHERE app = 'tally'"),
            TIMEOUT,
        )
    except Exception as error:  # any failure to answer is "not ready", with its kind
        return False, f"the database does not answer: {type(error).__name__}"
    missing = expected_migrations() - {str(r["name"]) for r in rows}
    if missing:
        return False, f"migrations not applied: {', '.join(sorted(missing))}"
    return True, "ok"
