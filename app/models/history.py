"""Daily usage rollups: what usage history reads instead of every charge (R24)."""

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
