"""The audit log (R39): each change made with an admin or operator key, written by the service
that makes it, in its transaction, so a change that rolls back leaves no entry and the CLI's
changes are audited like the API's.

Who acts comes from app.requests (the adapter that authenticated the key sets it); a change
with no actor (a scheduled job's) is not an admin's and is not audited here. Values before and
after are plain JSON; a secret is never one of them.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from tortoise.backends.base.client import BaseDBAsyncClient

from app.db import fetch
from app.errors import InvalidInput
from app.models import AuditEntry
from app.requests import current_actor, request_id

MAX_PAGE = 200


def _plain(value: Any) -> Any:
    if isinstance(value, uuid.UUID | Decimal):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def _json(values: dict[str, Any] | None) -> str | None:
    if values is None:
        return None
    return json.dumps(values, default=_plain, separators=(",", ":"), sort_keys=True)


async def record(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID | None,
    action: str,
    target: str | None,
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    now: datetime,
) -> None:
    actor = current_actor()
    if actor is None:
        return
    await fetch(
        conn,
        "INSERT INTO audit_entry (workspace_id, at, actor, api_key_id, action, target, before,"
        ' "after", request_id) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)',
        None if workspace_id is None else str(workspace_id),
        now,
        actor.name,
        None if actor.api_key_id is None else str(actor.api_key_id),
        action,
        target,
        _json(before),
        _json(after),
        request_id(),
    )


@dataclass(frozen=True)
class AuditPage:
    entries: list[AuditEntry]
    has_next_page: bool


async def audit_page(
    workspace_id: uuid.UUID, first: int | None = None, after: str | None = None
) -> AuditPage:
    """The workspace's audit entries, newest first; `after` is a cursor this gave."""
    size = 50 if first is None else first
    if not 1 <= size <= MAX_PAGE:
        raise InvalidInput(f"first must be between 1 and {MAX_PAGE}; got {size}")
    query = AuditEntry.filter(workspace_id=workspace_id)
    if after is not None:
        if not after.startswith("a") or not after[1:].isdigit() or len(after) > 20:
            raise InvalidInput(f"after is not a cursor of this list: {after!r}")
        query = query.filter(id__lt=int(after[1:]))
    rows = list(await query.order_by("-id").limit(size + 1))
    return AuditPage(rows[:size], len(rows) > size)


def cursor(entry: AuditEntry) -> str:
    return f"a{entry.id}"


def values(text: str | None) -> Any:
    return None if text is None else json.loads(text)
