"""Writing what an attempt came to (R36), in one transaction: the attempt's row, the delivery's
new state, and the endpoint's failing streak, which disables it after 410 or 5 days of failures.

Rows are written in one order, endpoint then delivery (as app.webhooks.endpoints does), so a
delete or a disable never deadlocks with an outcome. The delivery is updated only while it is
still this worker's claim (PENDING, with the lease it was claimed with): after a lapsed lease
another worker owns it, and after a delete or a disable it stays FAILED; the attempt is
recorded either way.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app.db import fetch, fetch_one
from app.events.rules import NewEvent
from app.events.store import emit
from app.events.types import ENDPOINT_DISABLED
from app.metrics import WEBHOOK_DELIVERIES
from app.webhooks import rules
from app.webhooks.endpoints import fail_pending
from app.webhooks.rules import AttemptResult, DeliveryStatus, Verdict


@dataclass(frozen=True)
class Claim:
    """A delivery this worker holds until `lease_until`."""

    delivery_id: uuid.UUID
    workspace_id: uuid.UUID
    endpoint_id: uuid.UUID
    attempts: int  # made before this one
    lease_until: datetime


@dataclass(frozen=True)
class Next:
    status: DeliveryStatus
    next_attempt_at: datetime | None


async def record(
    claim: Claim,
    result: AttemptResult,
    attempted_at: datetime,
    now: datetime,
    schedule: Sequence[float],
    rng: random.Random,
) -> Next:
    """Record the attempt made at `attempted_at`, whose answer came at `now`."""
    async with in_transaction() as conn:
        disable = await _endpoint_streak(conn, claim, result, now)
        after = _next(claim, result, disable, schedule, now, rng)
        await _update_delivery(conn, claim, result, after, attempted_at)
        if disable is not None:
            await disable_endpoint(conn, claim.workspace_id, claim.endpoint_id, disable, now)
        await fetch(
            conn,
            "INSERT INTO webhook_attempt (delivery_id, attempted_at, response_status, error,"
            " duration_ms) VALUES ($1, $2, $3, $4, $5)",
            str(claim.delivery_id),
            attempted_at,
            result.status,
            None if result.error is None else rules.clip(result.error),
            result.duration_ms,
        )
    # Counted once committed: PENDING is an attempt that failed and will be tried again.
    WEBHOOK_DELIVERIES.labels(status=after.status.value).inc()
    return after


async def _endpoint_streak(
    conn: BaseDBAsyncClient, claim: Claim, result: AttemptResult, now: datetime
) -> str | None:
    """Clear the failing streak on success, start or extend it on failure; returns the reason
    to disable the endpoint, if it must be."""
    endpoint = str(claim.endpoint_id)
    if result.verdict is Verdict.SUCCEEDED:
        await fetch(
            conn,
            "UPDATE webhook_endpoint SET failing_since = NULL"
            " WHERE id = $1 AND failing_since IS NOT NULL",
            endpoint,
        )
        return None
    row = await fetch_one(
        conn,
        "UPDATE webhook_endpoint SET failing_since = COALESCE(failing_since, $2) WHERE id = $1"
        " RETURNING failing_since, enabled",
        endpoint,
        now,
    )
    if row is None or not row["enabled"]:
        return None
    if result.verdict is Verdict.GONE:
        return rules.gone_reason(result.status or 410)
    since = instant(row["failing_since"])
    return rules.failing_reason(since) if rules.failing_too_long(since, now) else None


def _next(
    claim: Claim,
    result: AttemptResult,
    disable: str | None,
    schedule: Sequence[float],
    now: datetime,
    rng: random.Random,
) -> Next:
    if result.verdict is Verdict.SUCCEEDED:
        return Next(DeliveryStatus.SUCCEEDED, None)
    if result.verdict is Verdict.GONE or disable is not None:
        return Next(DeliveryStatus.FAILED, None)
    due = rules.next_attempt_at(claim.attempts + 1, schedule, now, rng)
    return Next(DeliveryStatus.PENDING if due else DeliveryStatus.FAILED, due)


async def _update_delivery(
    conn: BaseDBAsyncClient,
    claim: Claim,
    result: AttemptResult,
    after: Next,
    attempted_at: datetime,
) -> None:
    await fetch(
        conn,
        "UPDATE webhook_delivery SET status = $3, attempts = attempts + 1, next_attempt_at = $4,"
        " last_attempt_at = $5, last_response_status = $6, last_error = $7"
        " WHERE id = $1 AND status = 'PENDING' AND next_attempt_at = $2",
        str(claim.delivery_id),
        claim.lease_until,
        after.status.value,
        after.next_attempt_at,
        attempted_at,
        result.status,
        None if result.error is None else rules.clip(result.error),
    )


async def disable_endpoint(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    endpoint_id: uuid.UUID,
    reason: str,
    now: datetime,
) -> bool:
    """Disable an enabled endpoint with the reason shown, stop its pending deliveries, and emit
    webhook.endpoint_disabled (to the workspace's other endpoints). False: it was not enabled."""
    disabled = await fetch(
        conn,
        "UPDATE webhook_endpoint SET enabled = $2, disabled_reason = $3"
        " WHERE id = $1 AND enabled RETURNING id",
        str(endpoint_id),
        False,
        rules.clip(reason),
    )
    if not disabled:
        return False
    await fail_pending(conn, endpoint_id, rules.clip(f"endpoint disabled: {reason}"))
    event = NewEvent(ENDPOINT_DISABLED, {"endpointId": str(endpoint_id), "reason": reason})
    await emit(conn, workspace_id, [event], now)
    return True


async def fail_unsendable(claim: Claim, reason: str) -> None:
    """A claimed delivery whose endpoint was disabled or deleted meanwhile: FAILED, unsent."""
    async with in_transaction() as conn:
        await fetch(
            conn,
            "UPDATE webhook_delivery SET status = $3, next_attempt_at = NULL, last_error = $4"
            " WHERE id = $1 AND status = 'PENDING' AND next_attempt_at = $2",
            str(claim.delivery_id),
            claim.lease_until,
            DeliveryStatus.FAILED.value,
            rules.clip(reason),
        )


def instant(value: object) -> datetime:
    """A timestamp read with raw SQL: a datetime on PostgreSQL, ISO text on SQLite."""
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))
