"""Writing events with their outbox rows, and reading them (R34, R36).

An event is inserted in the transaction of the change it reports, so a change that rolls back
leaves no event and no committed change lacks its event. The workspace's row is locked first
(one workspace's events commit in the order of their seq) and its live subscribers are told
(app.events.bus). Its deliveries, one per enabled endpoint of the workspace that wants its
type, are inserted beside it: the outbox the delivery worker (app.webhooks) reads after the
commit.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.bulk import insert_many
from app.db import fetch
from app.errors import InvalidInput
from app.events import bus
from app.events.rules import NewEvent
from app.models import Event

EVENT_COLUMNS = [
    ("id", "uuid"),
    ("workspace_id", "uuid"),
    ("type", "text"),
    ("data", "text"),
    ("created_at", "timestamptz"),
]
DELIVERY_COLUMNS = [
    ("id", "uuid"),
    ("workspace_id", "uuid"),
    ("event_id", "uuid"),
    ("endpoint_id", "uuid"),
    ("status", "text"),
    ("attempts", "integer"),
    ("next_attempt_at", "timestamptz"),
    ("created_at", "timestamptz"),
]
PENDING = "PENDING"


def payload(workspace_id: uuid.UUID, event: NewEvent) -> str:
    """The event's JSON. orjson takes a tenth of the stdlib's time (a renewal sweep encodes
    100,000); an event's data are the server's own strings and ints, so the text is the one
    `json.dumps(..., separators=(",", ":"))` gives (tests/unit/test_event_payloads.py), except
    that non-ASCII text (a catalog's plan code may have some) is UTF-8, not \\u escapes: the
    same JSON, and webhooks sign the data re-encoded (app.webhooks.signing)."""
    return orjson.dumps({"workspaceId": str(workspace_id), **event.data}).decode()


async def emit(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    events: Sequence[NewEvent],
    now: datetime,
) -> list[uuid.UUID]:
    """Insert the events and their outbox rows; returns the events' ids."""
    if not events:
        return []
    ids = await insert_events(conn, workspace_id, events, now)
    endpoints = await subscribed_endpoints(conn, workspace_id)
    for event_id, event in zip(ids, events, strict=True):
        targets = [endpoint for endpoint, types in endpoints if wants(types, event.type)]
        await deliver(conn, workspace_id, event_id, targets, now)
    return ids


async def insert_events(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    events: Sequence[NewEvent],
    now: datetime,
) -> list[uuid.UUID]:
    """The event rows alone (`emit` adds their deliveries); returns their ids."""
    await bus.notify_events(conn, workspace_id)
    ids = [uuid.uuid4() for _ in events]
    rows = [
        (event_id, workspace_id, event.type, payload(workspace_id, event), now)
        for event_id, event in zip(ids, events, strict=True)
    ]
    await insert_many(conn, "event", EVENT_COLUMNS, rows)
    return ids


async def deliver(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    event_id: uuid.UUID,
    endpoint_ids: Sequence[uuid.UUID],
    now: datetime,
) -> list[uuid.UUID]:
    """Outbox rows, due now, of one event to these endpoints; returns their ids."""
    ids = [uuid.uuid4() for _ in endpoint_ids]
    rows = [
        (delivery_id, workspace_id, event_id, endpoint_id, PENDING, 0, now, now)
        for delivery_id, endpoint_id in zip(ids, endpoint_ids, strict=True)
    ]
    await insert_many(conn, "webhook_delivery", DELIVERY_COLUMNS, rows)
    return ids


async def subscribed_endpoints(
    conn: BaseDBAsyncClient, workspace_id: uuid.UUID
) -> list[tuple[uuid.UUID, str]]:
    rows = await fetch(
        conn,
        "SELECT id, event_types FROM webhook_endpoint"
        " WHERE workspace_id = $1 AND enabled AND deleted_at IS NULL ORDER BY id",
        str(workspace_id),
    )
    return [(uuid.UUID(str(r["id"])), str(r["event_types"])) for r in rows]


def wants(event_types: str, event_type: str) -> bool:
    """`event_types` is "" (every type) or ",type,type," as stored."""
    return not event_types or f",{event_type}," in event_types


@dataclass(frozen=True)
class EventPage:
    events: list[Event]
    has_next_page: bool


MAX_PAGE = 200


async def events_page(
    workspace_id: uuid.UUID,
    first: int | None = None,
    after: str | None = None,
    types: Sequence[str] | None = None,
) -> EventPage:
    """The workspace's events, newest first; `after` is a cursor `events_cursor` gave."""
    size = 50 if first is None else first
    if not 1 <= size <= MAX_PAGE:
        raise InvalidInput(f"first must be between 1 and {MAX_PAGE}; got {size}")
    query = Event.filter(workspace_id=workspace_id)
    if types:
        query = query.filter(type__in=list(types))
    if after is not None:
        query = query.filter(seq__lt=_seq_of(after))
    rows = list(await query.order_by("-seq").limit(size + 1))
    return EventPage(rows[:size], len(rows) > size)


async def last_seq(workspace_id: uuid.UUID) -> int:
    """The seq of the workspace's latest event; 0 when it has none."""
    latest = await Event.filter(workspace_id=workspace_id).order_by("-seq").first()
    return 0 if latest is None else latest.seq


async def events_after(
    workspace_id: uuid.UUID, seq: int, types: Sequence[str] | None, limit: int
) -> list[Event]:
    """The workspace's events after `seq`, oldest first, at most `limit`: one workspace's
    events commit in seq order, so reading on from the last one sent misses none."""
    query = Event.filter(workspace_id=workspace_id, seq__gt=seq)
    if types:
        query = query.filter(type__in=list(types))
    return list(await query.order_by("seq").limit(limit))


def events_cursor(event: Event) -> str:
    return f"e{event.seq}"


def _seq_of(cursor: str) -> int:
    if not cursor.startswith("e") or not cursor[1:].isdigit() or len(cursor) > 20:
        raise InvalidInput(f"after is not a cursor of this list: {cursor!r}")
    return int(cursor[1:])


async def events_by_id(event_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, Event]:
    """Events by their public id, in one query (a page of deliveries names a page of them)."""
    rows = await Event.filter(id__in=list(set(event_ids)))
    return {row.id: row for row in rows}


async def get_event(workspace_id: uuid.UUID, event_id: uuid.UUID) -> Event | None:
    return await Event.get_or_none(id=event_id, workspace_id=workspace_id)


def data_of(event: Event) -> dict[str, Any]:
    value: dict[str, Any] = json.loads(event.data)
    return value


async def emit_now(workspace_id: uuid.UUID, events: Sequence[NewEvent], now: datetime) -> None:
    """Emit outside a change's transaction (events about the webhooks themselves)."""
    async with in_transaction() as conn:
        await emit(conn, workspace_id, events, now)
