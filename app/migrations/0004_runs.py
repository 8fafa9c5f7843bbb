"""Runs with budgets and holds (R6, R23), and the cycle each charge and refund counted in.

The database guards the new invariants whatever the code does: held credits are part of the
balance (available = balance - held >= 0), a run never spends past its budget (R12).
"""

from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

from app import schema_guards as guards

CHECKS = [
    (
        "workspace",
        "workspace_held_within_balance",
        "{r}credits_held >= 0 AND {r}credits_held <= {r}credit_balance",
    ),
    (
        "run",
        "run_within_budget",
        "{r}spent >= 0 AND {r}hold >= 0 AND ({r}budget IS NULL OR {r}spent <= {r}budget)",
    ),
]
# Rows written before this migration: the cycle they were recorded in is not known exactly;
# the workspace's cycle at migration time is the best guess (history groups by it, R24).
BACKFILL = [
    "UPDATE charge SET period_start = (SELECT period_start FROM workspace"
    " WHERE workspace.id = charge.workspace_id)",
    "UPDATE refund SET period_start = (SELECT period_start FROM workspace"
    " WHERE workspace.id = refund.workspace_id)",
]


async def add_guards(apps, schema_editor) -> None:
    client = schema_editor.client
    for statement in guards.statements(client.capabilities.dialect, CHECKS) + BACKFILL:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("tally", "0003_cycles")]

    initial = False

    operations = [
        ops.CreateModel(
            name="Run",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                (
                    "workspace",
                    fields.ForeignKeyField(
                        "tally.Workspace",
                        source_field="workspace_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="runs",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "workbook",
                    fields.ForeignKeyField(
                        "tally.Workbook",
                        source_field="workbook_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="runs",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("table_id", fields.CharField(null=True, max_length=200)),
                ("name", fields.CharField(null=True, max_length=200)),
                ("status", fields.CharField(max_length=16)),
                ("budget", fields.BigIntField(null=True)),
                ("spent", fields.BigIntField(default=0)),
                ("actions", fields.BigIntField(default=0)),
                ("results", fields.BigIntField(default=0)),
                ("charge_count", fields.IntField(default=0)),
                ("hold", fields.BigIntField(default=0)),
                ("hold_placed", fields.BigIntField(default=0)),
                ("hold_ttl_seconds", fields.IntField(default=3600)),
                (
                    "hold_expires_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("idempotency_key", fields.CharField(max_length=255)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "last_charge_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("ended_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "run",
                "app": "tally",
                "indexes": [
                    Index(fields=["workspace_id", "created_at"]),
                    Index(fields=["hold_expires_at"]),
                ],
                "pk_attr": "id",
                "table_description": "An enrichment or AI run in one workbook: its budget, hold and spend (R6, R23).",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Charge",
            name="period_start",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Charge",
            name="run",
            field=fields.ForeignKeyField(
                "tally.Run",
                source_field="run_id",
                null=True,
                db_constraint=True,
                to_field="id",
                related_name="run_charges",
                on_delete=OnDelete.RESTRICT,
            ),
        ),
        ops.AddField(
            model_name="Charge",
            name="sent_at",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Refund",
            name="period_start",
            field=fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
        ),
        ops.AddField(
            model_name="Workspace",
            name="credits_held",
            field=fields.BigIntField(default=0, db_default=0),
        ),
        ops.AddField(
            model_name="LedgerEntry",
            name="run_id",
            field=fields.UUIDField(null=True),
        ),
        ops.RunPython(add_guards),
    ]
