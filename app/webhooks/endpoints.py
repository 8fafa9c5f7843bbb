"""Webhook endpoints (R36): an admin registers, changes, rotates the secret of, and deletes them.

An endpoint is deleted softly (its deliveries stay readable); a deleted endpoint is NOT_FOUND
to every other operation. Disabling one, by an admin or by the worker, stops its pending
deliveries: they become FAILED with the reason, and a resend sends them again.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app import audit, locks, validation
from app.db import fetch, fetch_one
from app.errors import InvalidInput, NotFound, QuotaExceeded
from app.models import WebhookEndpoint
from app.webhooks import rules
from app.webhooks.rules import DeliveryStatus
from app.webhooks.signing import new_secret

DISABLED_BY_ADMIN = "disabled by an admin"


@dataclass(frozen=True)
class EndpointInput:
    url: str
    event_types: list[str] | None = None  # None or empty: every type
    description: str | None = None
    enabled: bool | None = None  # None: as it is (a new endpoint is enabled)


@dataclass(frozen=True)
class Checked:
    url: str
    event_types: str
    description: str | None


def check(data: EndpointInput, allow_private: bool) -> Checked:
    url = validation.text(data.url.strip(), "url", rules.MAX_URL) or ""
    description = validation.text(data.description, "description", rules.MAX_DESCRIPTION)
    return Checked(
        rules.check_url(url, allow_private),
        rules.event_types(data.event_types),
        rules.description(description),
    )


async def create_endpoint(
    workspace_id: uuid.UUID, data: EndpointInput, now: datetime, allow_private: bool
) -> tuple[WebhookEndpoint, str]:
    """The endpoint and its secret, which is shown this once."""
    checked = check(data, allow_private)
    secret = new_secret()
    async with in_transaction() as conn:
        if await locks.workspace_row(conn, workspace_id) is None:
            raise NotFound("workspace not found")
        row = await fetch_one(
            conn,
            "SELECT COUNT(*) AS n FROM webhook_endpoint"
            " WHERE workspace_id = $1 AND deleted_at IS NULL",
            str(workspace_id),
        )
        if row is not None and int(row["n"]) >= rules.MAX_ENDPOINTS:
            raise QuotaExceeded(f"a workspace has at most {rules.MAX_ENDPOINTS} webhook endpoints")
        enabled = data.enabled is not False
        endpoint = await WebhookEndpoint.create(
            using_db=conn,
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            url=checked.url,
            event_types=checked.event_types,
            description=checked.description,
            enabled=enabled,
            disabled_reason=None if enabled else DISABLED_BY_ADMIN,
            secret=secret,
            created_at=now,
        )
        await _audit(conn, "webhook_endpoint.create", endpoint, None, _state(endpoint), now)
    return endpoint, secret


async def update_endpoint(
    workspace_id: uuid.UUID,
    endpoint_id: str,
    data: EndpointInput,
    now: datetime,
    allow_private: bool,
) -> WebhookEndpoint:
    """Replaces url, event types and description; `enabled: true` re-enables (the reason and
    the failing streak are cleared), `false` disables, null leaves it."""
    checked = check(data, allow_private)
    async with in_transaction() as conn:
        endpoint = await get_endpoint(conn, workspace_id, endpoint_id)
        before = _state(endpoint)
        endpoint.url = checked.url
        endpoint.event_types = checked.event_types
        endpoint.description = checked.description
        disabling = data.enabled is False and endpoint.enabled
        if data.enabled is True and not endpoint.enabled:
            endpoint.enabled, endpoint.disabled_reason, endpoint.failing_since = True, None, None
        elif disabling:
            endpoint.enabled, endpoint.disabled_reason = False, DISABLED_BY_ADMIN
        await endpoint.save(using_db=conn)  # the endpoint, then its deliveries: one order
        if disabling:
            await fail_pending(conn, endpoint.id, "endpoint disabled: " + DISABLED_BY_ADMIN)
        await _audit(conn, "webhook_endpoint.update", endpoint, before, _state(endpoint), now)
    return endpoint


async def delete_endpoint(
    workspace_id: uuid.UUID, endpoint_id: str, now: datetime
) -> WebhookEndpoint:
    async with in_transaction() as conn:
        endpoint = await get_endpoint(conn, workspace_id, endpoint_id)
        before = _state(endpoint)
        endpoint.deleted_at, endpoint.enabled = now, False  # it sends nothing any more
        await endpoint.save(using_db=conn, update_fields=["deleted_at", "enabled"])
        await fail_pending(conn, endpoint.id, "endpoint deleted")
        await _audit(conn, "webhook_endpoint.delete", endpoint, before, None, now)
    return endpoint


async def rotate_secret(
    workspace_id: uuid.UUID, endpoint_id: str, now: datetime
) -> tuple[WebhookEndpoint, str]:
    """A new secret, shown once; the one it replaces keeps signing for 24 hours."""
    secret = new_secret()
    async with in_transaction() as conn:
        endpoint = await get_endpoint(conn, workspace_id, endpoint_id)
        endpoint.previous_secret = endpoint.secret
        endpoint.previous_secret_until = now + rules.ROTATION_OVERLAP
        endpoint.secret = secret
        await endpoint.save(
            using_db=conn, update_fields=["secret", "previous_secret", "previous_secret_until"]
        )
        rotated: dict[str, object] = {"previousSecretUntil": endpoint.previous_secret_until}
        await _audit(conn, "webhook_endpoint.rotate_secret", endpoint, None, rotated, now)
    return endpoint, secret


def _state(endpoint: WebhookEndpoint) -> dict[str, object]:
    """What the audit log keeps of an endpoint: never its secret."""
    return {
        "url": endpoint.url,
        "eventTypes": rules.event_type_list(endpoint.event_types),
        "description": endpoint.description,
        "enabled": endpoint.enabled,
    }


async def _audit(
    conn: BaseDBAsyncClient,
    action: str,
    endpoint: WebhookEndpoint,
    before: dict[str, object] | None,
    after: dict[str, object] | None,
    now: datetime,
) -> None:
    target = f"webhook_endpoint:{endpoint.id}"
    await audit.record(conn, endpoint.workspace_id, action, target, before, after, now)


async def list_endpoints(workspace_id: uuid.UUID) -> list[WebhookEndpoint]:
    query = WebhookEndpoint.filter(workspace_id=workspace_id, deleted_at__isnull=True)
    return list(await query.order_by("created_at", "id"))


async def get_endpoint(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    endpoint_id: str | uuid.UUID,
    *,
    deleted: bool = False,
) -> WebhookEndpoint:
    """The workspace's endpoint; another workspace's, or a deleted one, is NOT_FOUND."""
    eid = validation.object_id(endpoint_id, "webhook endpoint")
    query = WebhookEndpoint.filter(id=eid, workspace_id=workspace_id).using_db(conn)
    if not deleted:
        query = query.filter(deleted_at__isnull=True)
    endpoint = await query.first()
    if endpoint is None:
        raise NotFound(f"webhook endpoint {endpoint_id} not found")
    return endpoint


def require_enabled(endpoint: WebhookEndpoint) -> None:
    if not endpoint.enabled:
        raise InvalidInput(
            f"webhook endpoint {endpoint.id} is disabled ({endpoint.disabled_reason});"
            " enable it with updateWebhookEndpoint first"
        )


async def fail_pending(conn: BaseDBAsyncClient, endpoint_id: uuid.UUID, reason: str) -> None:
    """The endpoint's pending deliveries stop: FAILED, with the reason as their error."""
    await fetch(
        conn,
        "UPDATE webhook_delivery SET status = $2, last_error = $3, next_attempt_at = NULL"
        " WHERE endpoint_id = $1 AND status = $4",
        str(endpoint_id),
        DeliveryStatus.FAILED.value,
        rules.clip(reason),
        DeliveryStatus.PENDING.value,
    )
