"""Webhook deliveries an admin reads and asks for (R36): the log, newest first; a resend of any
event; a test event to one endpoint."""

from __future__ import annotations

import base64
import binascii
import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.expressions import Q
from tortoise.transactions import in_transaction

from app import validation
from app.db import connection
from app.errors import InvalidInput, NotFound
from app.events.rules import NewEvent
from app.events.store import deliver, insert_events, subscribed_endpoints, wants
from app.events.types import TEST_PING
from app.models import Event, WebhookDelivery
from app.webhooks.endpoints import get_endpoint, require_enabled

DEFAULT_PAGE = 50
MAX_PAGE = 200


@dataclass(frozen=True)
class DeliveryPage:
    deliveries: list[WebhookDelivery]
    has_next_page: bool


async def deliveries_page(
    workspace_id: uuid.UUID,
    *,
    endpoint_id: str | None = None,
    event_id: str | None = None,
    first: int | None = None,
    after: str | None = None,
) -> DeliveryPage:
    """The workspace's deliveries, newest first, of one endpoint (deleted ones too) or one
    event when asked; `after` is a cursor `delivery_cursor` gave."""
    size = DEFAULT_PAGE if first is None else first
    if not 1 <= size <= MAX_PAGE:
        raise InvalidInput(f"first must be between 1 and {MAX_PAGE}; got {size}")
    query = WebhookDelivery.filter(workspace_id=workspace_id)
    if endpoint_id is not None:
        endpoint = await get_endpoint(connection(), workspace_id, endpoint_id, deleted=True)
        query = query.filter(endpoint_id=endpoint.id)
    if event_id is not None:
        query = query.filter(event_id=(await get_event(workspace_id, event_id)).id)
    if after is not None:
        created_at, last_id = decode_cursor(after)
        query = query.filter(
            Q(created_at__lt=created_at) | Q(created_at=created_at, id__lt=last_id)
        )
    rows = list(await query.order_by("-created_at", "-id").limit(size + 1))
    return DeliveryPage(rows[:size], len(rows) > size)


def delivery_cursor(delivery: WebhookDelivery) -> str:
    text = f"delivery:{delivery.created_at.isoformat()}|{delivery.id}"
    return base64.urlsafe_b64encode(text.encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        text = base64.urlsafe_b64decode(cursor.encode()).decode()
        kind, _, rest = text.partition(":")
        instant, _, delivery_id = rest.partition("|")
        if kind != "delivery":
            raise ValueError(kind)
        return datetime.fromisoformat(instant), uuid.UUID(delivery_id)
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise InvalidInput(f"after is not a cursor of this list: {cursor[:80]!r}") from None


async def get_event(workspace_id: uuid.UUID, event_id: str | uuid.UUID) -> Event:
    eid = validation.object_id(event_id, "event")
    event = await Event.get_or_none(id=eid, workspace_id=workspace_id)
    if event is None:
        raise NotFound(f"event {event_id} not found")
    return event


async def resend_event(
    workspace_id: uuid.UUID, event_id: str, endpoint_id: str | None, now: datetime
) -> list[WebhookDelivery]:
    """A new delivery, due now, of the event (the same webhook-id) to the endpoint named, or
    to every enabled endpoint that subscribes to its type."""
    event = await get_event(workspace_id, event_id)
    async with in_transaction() as conn:
        if endpoint_id is not None:
            endpoint = await get_endpoint(conn, workspace_id, endpoint_id)
            require_enabled(endpoint)
            targets = [endpoint.id]
        else:
            subscribed = await subscribed_endpoints(conn, workspace_id)
            targets = [eid for eid, types in subscribed if wants(types, event.type)]
        ids = await deliver(conn, workspace_id, event.id, targets, now)
        return list(await WebhookDelivery.filter(id__in=ids).using_db(conn).order_by("id"))


async def send_test_event(
    workspace_id: uuid.UUID, endpoint_id: str, now: datetime
) -> WebhookDelivery:
    """A `test.ping` event (data: the workspace id only) delivered to this endpoint alone."""
    async with in_transaction() as conn:
        endpoint = await get_endpoint(conn, workspace_id, endpoint_id)
        require_enabled(endpoint)
        [event_id] = await insert_events(conn, workspace_id, [NewEvent(TEST_PING, {})], now)
        [delivery_id] = await deliver(conn, workspace_id, event_id, [endpoint.id], now)
        return await WebhookDelivery.get(id=delivery_id, using_db=conn)
