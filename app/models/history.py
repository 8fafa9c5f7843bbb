"""Daily usage rollups: what usage history reads instead of every charge (R24); the plan
history balances at a past instant read (R38)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from app.models.workspace import Workbook, Workspace


class UsageDaily(Model):
    """Usage summed per UTC day, stored cycle, workbook, table, provider and kind (R24).

    Kept in the same transaction as each charge and refund. No table or no provider is an
    empty string, not NULL, so the unique key also holds for them.
    """

    id = fields.BigIntField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="usage_daily", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    day = fields.DateField()
    period_start = fields.DatetimeField()
    workbook: fields.ForeignKeyRelation[Workbook] = fields.ForeignKeyField(
        "tally.Workbook", related_name="usage_daily", on_delete=fields.RESTRICT
    )
    workbook_id: uuid.UUID
    table_id = fields.CharField(max_length=200, default="")
    provider = fields.CharField(max_length=64, default="")  # the model name for AI
    kind = fields.CharField(max_length=32)
    actions = fields.BigIntField(default=0)
    credits = fields.BigIntField(default=0)  # Data Credit units, net of refunds
    results = fields.BigIntField(default=0)

    class Meta:
        table = "usage_daily"
        unique_together = (
            ("workspace", "day", "period_start", "workbook", "table_id", "provider", "kind"),
        )


class PlanPeriod(Model):
    """The plan and Actions capacity a workspace ran on from `started_at` on (R38).

    Append-only, one row per change of either, written in the transaction that makes the change
    (creation, an upgrade, leaving free, a renewal step that changes them) and stamped with the
    same instant as that transaction's ledger entries, so a balance at any instant reads the
    plan and the meters of the same moment.
    """

    id = fields.BigIntField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="plan_periods", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    started_at = fields.DatetimeField()
    plan_code = fields.CharField(max_length=32)
    credit_tier = fields.IntField(null=True)  # None during a trial
    billing_interval = fields.CharField(max_length=16)
    actions_capacity = fields.IntField()
    source = fields.CharField(max_length=16)  # CREATED, UPGRADE, SUBSCRIBED, a renewal kind

    class Meta:
        table = "plan_period"
        indexes = (("workspace_id", "started_at", "id"),)
