"""Alerts an admin sets on a meter (R35): on Data Credits an amount, on Actions a percent of
capacity. Setting one that is already crossed does not fire it; it arms once the meter is back
on the safe side (app.events.rules)."""

from __future__ import annotations

import uuid
from datetime import datetime
from decimal import Decimal

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.transactions import in_transaction

from app import audit, locks, validation
from app.db import fetch
from app.errors import InvalidInput, NotFound, QuotaExceeded
from app.events.rules import Meters, alert_armed_when_set
from app.kinds import Meter
from app.models import Alert
from app.units import units_to_credits

MAX_ALERTS = 50  # per workspace


def threshold_units(meter: Meter, threshold: Decimal) -> int:
    """A Data Credit amount in units, or a whole percent of Actions capacity (1 to 100)."""
    if meter is Meter.DATA_CREDITS:
        return validation.credit_amount(threshold, "threshold")
    if meter is Meter.ACTIONS:
        if threshold != threshold.to_integral_value() or not 1 <= threshold <= 100:
            raise InvalidInput(
                f"an Actions threshold is a whole percent, 1 to 100; got {threshold}"
            )
        return int(threshold)
    raise InvalidInput(f"alerts are set on DATA_CREDITS or ACTIONS, not {meter.value}")


def threshold_value(meter: str, units: int) -> Decimal:
    """What the API shows of a stored threshold: Data Credits, or a percent of Actions."""
    if meter == Meter.DATA_CREDITS.value:
        return units_to_credits(units)
    return Decimal(units)


async def set_alert(
    workspace_id: uuid.UUID, meter: Meter, threshold: Decimal, now: datetime
) -> Alert:
    """The alert on (meter, threshold); setting the same one twice gives the first."""
    units = threshold_units(meter, threshold)
    async with in_transaction() as conn:
        workspace = await locks.workspace(conn, workspace_id)
        if workspace is None:
            raise NotFound("workspace not found")
        found = await Alert.get_or_none(
            workspace_id=workspace_id, meter=meter.value, threshold=units, using_db=conn
        )
        if found is not None:
            return found
        if workspace.alert_count >= MAX_ALERTS:
            raise QuotaExceeded(f"a workspace has at most {MAX_ALERTS} alerts")
        meters = Meters(
            workspace.credit_balance - workspace.credits_held,
            workspace.actions_used,
            workspace.actions_capacity,
        )
        alert = await Alert.create(
            using_db=conn,
            id=uuid.uuid4(),
            workspace_id=workspace_id,
            meter=meter.value,
            threshold=units,
            armed=alert_armed_when_set(meter, units, meters),
            created_at=now,
        )
        await _count(conn, workspace_id, +1)
        await audit.record(conn, workspace_id, "alert.set", f"alert:{alert.id}", None,
                           _state(alert), now)  # fmt: skip
        return alert


async def delete_alert(workspace_id: uuid.UUID, alert_id: str, now: datetime) -> Alert:
    aid = validation.object_id(alert_id, "alert")
    async with in_transaction() as conn:
        await locks.workspace_row(conn, workspace_id)
        alert = await Alert.get_or_none(id=aid, workspace_id=workspace_id, using_db=conn)
        if alert is None:
            raise NotFound(f"alert {alert_id} not found")
        await Alert.filter(id=aid).using_db(conn).delete()
        await _count(conn, workspace_id, -1)
        await audit.record(conn, workspace_id, "alert.delete", f"alert:{alert.id}",
                           _state(alert), None, now)  # fmt: skip
        return alert


def _state(alert: Alert) -> dict[str, object]:
    return {"meter": alert.meter, "threshold": threshold_value(alert.meter, alert.threshold)}


async def list_alerts(workspace_id: uuid.UUID) -> list[Alert]:
    return list(await Alert.filter(workspace_id=workspace_id).order_by("meter", "threshold"))


async def _count(conn: BaseDBAsyncClient, workspace_id: uuid.UUID, delta: int) -> None:
    await fetch(
        conn,
        "UPDATE workspace SET alert_count = alert_count + $2 WHERE id = $1",
        str(workspace_id),
        delta,
    )
