"""Charges, refunds, the append-only ledger and idempotency records (R13, R22, R24)."""

from __future__ import annotations

import uuid
from typing import TYPE_CHECKING

from tortoise import fields
from tortoise.models import Model

if TYPE_CHECKING:
    from app.models.workspace import Workbook, Workspace


# On PostgreSQL a charge's workspace, workbook and run, and the workspace of a ledger entry and
# of an idempotency record, are checked once per statement by triggers, not by foreign keys
# (migration 0006): a later migration must not add those constraints back.
class Charge(Model):
    """One recorded usage report: what it cost on both meters, and what was refunded."""

    id = fields.UUIDField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="charges", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    workbook: fields.ForeignKeyRelation[Workbook] = fields.ForeignKeyField(
        "tally.Workbook", related_name="charges", on_delete=fields.RESTRICT
    )
    workbook_id: uuid.UUID
    table_id = fields.CharField(max_length=200, null=True)
    kind = fields.CharField(max_length=32)
    provider = fields.CharField(max_length=64, null=True)
    data_type = fields.CharField(max_length=64, null=True)
    model = fields.CharField(max_length=64, null=True)
    input_tokens = fields.BigIntField(default=0)
    output_tokens = fields.BigIntField(default=0)
    own_api_key = fields.BooleanField(default=False)
    results = fields.IntField()
    actions = fields.IntField()
    credits = fields.BigIntField()
    refunded_results = fields.IntField(default=0)
    refunded_credits = fields.BigIntField(default=0)
    spend_epoch = fields.IntField(null=True)  # the workbook limit epoch it counted in, if any
    idempotency_key = fields.CharField(max_length=255)
    created_at = fields.DatetimeField()
    run: fields.ForeignKeyNullableRelation[Run] = fields.ForeignKeyField(
        "tally.Run", related_name="run_charges", null=True, on_delete=fields.RESTRICT
    )
    run_id: uuid.UUID | None
    sent_at = fields.DatetimeField(null=True)  # when the request was sent, for runs (R23)
    period_start = fields.DatetimeField(null=True)  # the stored cycle it counted in (R33)

    class Meta:
        table = "charge"
        indexes = (("workspace_id", "created_at"), ("workbook_id", "table_id"))


class Refund(Model):
    id = fields.UUIDField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="refunds", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    charge: fields.ForeignKeyRelation[Charge] = fields.ForeignKeyField(
        "tally.Charge", related_name="refunds", on_delete=fields.RESTRICT
    )
    charge_id: uuid.UUID
    results = fields.IntField()
    credits = fields.BigIntField()
    reason = fields.CharField(max_length=500, null=True)
    created_at = fields.DatetimeField()
    period_start = fields.DatetimeField(null=True)  # the stored cycle it was refunded in

    class Meta:
        table = "refund"


class LedgerEntry(Model):
    """An append-only change to one meter, with the balance after it (R24).

    For DATA_CREDITS the balance is the workspace credit balance in units, for ACTIONS it is
    the Actions remaining in the current month.
    """

    id = fields.BigIntField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="ledger", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    entry_type = fields.CharField(max_length=32)
    meter = fields.CharField(max_length=16)
    amount = fields.BigIntField()
    balance_after = fields.BigIntField()
    workbook_id = fields.UUIDField(null=True)
    charge_id = fields.UUIDField(null=True)
    refund_id = fields.UUIDField(null=True)
    created_at = fields.DatetimeField()
    run_id = fields.UUIDField(null=True)  # holds, settles and releases name their run

    class Meta:
        table = "ledger_entry"
        # (workspace, meter, created_at, id): a meter's balance at an instant is one lookup,
        # the last entry at or before it (R38, app/history/balance.py).
        indexes = (
            ("workspace_id", "id"),
            ("workspace_id", "workbook_id", "id"),
            ("workspace_id", "meter", "created_at", "id"),
        )


class IdempotencyRecord(Model):
    """Claims a client key for one request, in the same transaction as its effect."""

    id = fields.BigIntField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="idempotency_records", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    key = fields.CharField(max_length=255)
    operation = fields.CharField(max_length=32)
    request_hash = fields.CharField(max_length=64)
    result_id = fields.CharField(max_length=64)
    created_at = fields.DatetimeField()

    class Meta:
        table = "idempotency_record"
        unique_together = (("workspace", "key"),)


class Run(Model):
    """An enrichment or AI run in one workbook: its budget, hold and spend (R6, R23).

    `hold` is what is still set aside for it (part of the workspace credits_held).
    """

    id = fields.UUIDField(primary_key=True)
    workspace: fields.ForeignKeyRelation[Workspace] = fields.ForeignKeyField(
        "tally.Workspace", related_name="runs", on_delete=fields.RESTRICT
    )
    workspace_id: uuid.UUID
    workbook: fields.ForeignKeyRelation[Workbook] = fields.ForeignKeyField(
        "tally.Workbook", related_name="runs", on_delete=fields.RESTRICT
    )
    workbook_id: uuid.UUID
    table_id = fields.CharField(max_length=200, null=True)
    name = fields.CharField(max_length=200, null=True)
    status = fields.CharField(max_length=16)
    budget = fields.BigIntField(null=True)  # Data Credit units; None = no budget
    spent = fields.BigIntField(default=0)  # Data Credit units charged, net of refunds
    actions = fields.BigIntField(default=0)
    results = fields.BigIntField(default=0)
    charge_count = fields.IntField(default=0)
    hold = fields.BigIntField(default=0)  # units still held
    hold_placed = fields.BigIntField(default=0)  # units held at the start
    hold_ttl_seconds = fields.IntField(default=3600)
    hold_expires_at = fields.DatetimeField(null=True)  # set while hold > 0
    budget_exhausted_headroom = fields.BigIntField(null=True)  # R34, as on the workspace
    idempotency_key = fields.CharField(max_length=255)
    created_at = fields.DatetimeField()
    last_charge_at = fields.DatetimeField(null=True)
    ended_at = fields.DatetimeField(null=True)  # stopped or finished

    class Meta:
        table = "run"
        indexes = (("workspace_id", "created_at"), ("hold_expires_at",))
