"""What the scheduler did to each cycle, and what each cycle is billed in money (R14-R21)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from app.models.workspace import Workspace


class Renewal(Model):
    """One period opened for one workspace. Unique per (workspace, period start), so no
    scheduler, retry or crash can renew, grant or cap the same period twice (R14)."""

    id = fields.BigIntField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="renewals", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    period_start = fields.DatetimeField()  # the boundary this renewal opened
    kind = fields.CharField(max_length=16)  # ACTIONS, CYCLE or TRIAL_END
    plan_code = fields.CharField(max_length=32)  # the plan from this boundary on
    credit_tier = fields.IntField(null=True)
    billing_interval = fields.CharField(max_length=16)
    credits_before = fields.BigIntField()
    credits_expired = fields.BigIntField(default=0)
    credits_granted = fields.BigIntField(default=0)
    credits_capped = fields.BigIntField(default=0)
    credits_after = fields.BigIntField()
    actions_capacity = fields.IntField()
    processed_at = fields.DatetimeField()  # may be hours after period_start (R14)

    class Meta:
        table = "renewal"
        unique_together = (("workspace", "period_start"),)


class BillingCharge(Model):
    """Money owed for one cycle: a plan fee, an upgrade proration or a top-up (R19, R20)."""

    id = fields.UUIDField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="billing_charges", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    kind = fields.CharField(max_length=16)  # PLAN_FEE, PRORATION or TOP_UP
    period_start = fields.DatetimeField()  # the cycle it is billed on
    plan_code = fields.CharField(max_length=32)
    credit_tier = fields.IntField(null=True)
    billing_interval = fields.CharField(max_length=16)
    credits = fields.BigIntField(default=0)  # units bought (top-ups) or granted (fees)
    amount_cents = fields.BigIntField()
    description = fields.CharField(max_length=300)
    idempotency_key = fields.CharField(max_length=255, null=True)
    created_at = fields.DatetimeField()

    class Meta:
        table = "billing_charge"
        indexes = (("workspace_id", "created_at"),)
