"""Workspaces with their two meters, their API keys and their workbooks."""

from __future__ import annotations

import uuid

from tortoise import fields
from tortoise.models import Model


class Workspace(Model):
    id = fields.UUIDField(primary_key=True)
    name = fields.CharField(max_length=200)
    plan_code = fields.CharField(max_length=32)
    credit_tier = fields.IntField(null=True)  # whole credits a month; None during a trial
    billing_interval = fields.CharField(max_length=16)
    status = fields.CharField(max_length=16)
    anchor_at = fields.DatetimeField()  # R14: the original subscription timestamp
    period_start = fields.DatetimeField()
    period_end = fields.DatetimeField()
    actions_period_end = fields.DatetimeField()  # Actions renew monthly on every plan (R15)
    trial_ends_at = fields.DatetimeField(null=True)
    actions_capacity = fields.IntField()
    actions_used = fields.IntField(default=0)
    credit_balance = fields.BigIntField()
    credits_held = fields.BigIntField(default=0, db_default=0)  # held for runs, part of balance
    monthly_credits = fields.BigIntField()  # this cycle's grant per month, in units
    created_at = fields.DatetimeField()
    # A change waiting for the cycle end (R21, R27, R30), or a plan chosen during a trial.
    pending_plan_code = fields.CharField(max_length=32, null=True)
    pending_credit_tier = fields.IntField(null=True)
    pending_interval = fields.CharField(max_length=16, null=True)
    # R34: NULL while the event is armed; once fired, the headroom it fired at (available
    # credits, remaining Actions). It re-arms when the headroom grows past that.
    depleted_headroom = fields.BigIntField(null=True)
    exhausted_headroom = fields.BigIntField(null=True)
    alert_count = fields.IntField(default=0, db_default=0)  # R35: alerts set, read with the row
    # R37 auto top-up: off while the threshold is NULL.
    auto_topup_threshold = fields.BigIntField(null=True)
    auto_topup_credits = fields.BigIntField(null=True)
    auto_topup_max_per_cycle = fields.IntField(default=3, db_default=3)
    auto_topup_used = fields.IntField(default=0, db_default=0)  # this cycle's
    trial_ending_sent_at = fields.DatetimeField(null=True)  # R34: subscription.trial_ending
    # Live updates: a subscriber somewhere until then, so charges notify (app.events.bus).
    live_until = fields.DatetimeField(null=True)

    class Meta:
        table = "workspace"
        # The scheduler finds due work by this column (every cycle boundary is a month one).
        indexes = (("actions_period_end",),)


class ApiKey(Model):
    id = fields.UUIDField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="api_keys", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    name = fields.CharField(max_length=200)
    role = fields.CharField(max_length=16)
    key_hash = fields.CharField(max_length=64, unique=True)  # sha256 of the secret
    prefix = fields.CharField(max_length=16)  # shown to tell keys apart
    created_at = fields.DatetimeField()
    revoked_at = fields.DatetimeField(null=True)

    class Meta:
        table = "api_key"


class Workbook(Model):
    id = fields.UUIDField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="workbooks", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    name = fields.CharField(max_length=200)
    spend_limit = fields.BigIntField(null=True)  # R11, units; None = no limit
    spent = fields.BigIntField(default=0)  # units counted since the limit was set
    spend_epoch = fields.IntField(default=0)  # bumped each time a limit is set anew
    limit_reached_headroom = fields.BigIntField(null=True)  # R34, as on the workspace
    created_at = fields.DatetimeField()

    class Meta:
        table = "workbook"
