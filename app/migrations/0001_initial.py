from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    initial = True

    operations = [
        ops.CreateModel(
            name="AiModel",
            fields=[
                (
                    "code",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("input_units_per_1k", fields.BigIntField()),
                ("output_units_per_1k", fields.BigIntField()),
            ],
            options={"table": "ai_model", "app": "tally", "pk_attr": "code"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="BillingSetting",
            fields=[
                (
                    "key",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=64),
                ),
                ("value", fields.CharField(max_length=255)),
            ],
            options={"table": "billing_setting", "app": "tally", "pk_attr": "key"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Plan",
            fields=[
                (
                    "code",
                    fields.CharField(primary_key=True, unique=True, db_index=True, max_length=32),
                ),
                ("name", fields.CharField(max_length=100)),
                ("rank", fields.IntField()),
                ("intervals", fields.CharField(max_length=64)),
                ("monthly_actions", fields.IntField()),
                ("base_fee_cents", fields.BigIntField()),
                ("bill_credits", fields.BooleanField(default=True)),
                ("features", fields.CharField(default="", max_length=255)),
            ],
            options={"table": "plan", "app": "tally", "pk_attr": "code"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="PlanTier",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                (
                    "plan",
                    fields.ForeignKeyField(
                        "tally.Plan",
                        source_field="plan_id",
                        db_constraint=True,
                        to_field="code",
                        related_name="tiers",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("monthly_credits", fields.IntField()),
            ],
            options={
                "table": "plan_tier",
                "app": "tally",
                "unique_together": (("plan", "monthly_credits"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Price",
            fields=[
                (
                    "id",
                    fields.IntField(generated=True, primary_key=True, unique=True, db_index=True),
                ),
                ("provider", fields.CharField(max_length=64)),
                ("data_type", fields.CharField(max_length=64)),
                ("kind", fields.CharField(max_length=32)),
                ("credits_units", fields.BigIntField()),
            ],
            options={
                "table": "price",
                "app": "tally",
                "unique_together": (("provider", "data_type"),),
                "pk_attr": "id",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Workspace",
            fields=[
                (
                    "id",
                    fields.UUIDField(primary_key=True, default=uuid4, unique=True, db_index=True),
                ),
                ("name", fields.CharField(max_length=200)),
                ("plan_code", fields.CharField(max_length=32)),
                ("credit_tier", fields.IntField(null=True)),
                ("billing_interval", fields.CharField(max_length=16)),
                ("status", fields.CharField(max_length=16)),
                ("anchor_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("period_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("period_end", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("actions_period_end", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "trial_ends_at",
                    fields.DatetimeField(null=True, auto_now=False, auto_now_add=False),
                ),
                ("actions_capacity", fields.IntField()),
                ("actions_used", fields.IntField(default=0)),
                ("credit_balance", fields.BigIntField()),
                ("monthly_credits", fields.BigIntField()),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "workspace", "app": "tally", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="ApiKey",
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
                        related_name="api_keys",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("name", fields.CharField(max_length=200)),
                ("role", fields.CharField(max_length=16)),
                ("key_hash", fields.CharField(unique=True, max_length=64)),
                ("prefix", fields.CharField(max_length=16)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("revoked_at", fields.DatetimeField(null=True, auto_now=False, auto_now_add=False)),
            ],
            options={"table": "api_key", "app": "tally", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="IdempotencyRecord",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "workspace",
                    fields.ForeignKeyField(
                        "tally.Workspace",
                        source_field="workspace_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="idempotency_records",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("key", fields.CharField(max_length=255)),
                ("operation", fields.CharField(max_length=32)),
                ("request_hash", fields.CharField(max_length=64)),
                ("result_id", fields.CharField(max_length=64)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "idempotency_record",
                "app": "tally",
                "unique_together": (("workspace", "key"),),
                "pk_attr": "id",
                "table_description": "Claims a client key for one request, in the same transaction as its effect.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="LedgerEntry",
            fields=[
                (
                    "id",
                    fields.BigIntField(
                        generated=True, primary_key=True, unique=True, db_index=True
                    ),
                ),
                (
                    "workspace",
                    fields.ForeignKeyField(
                        "tally.Workspace",
                        source_field="workspace_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="ledger",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("entry_type", fields.CharField(max_length=32)),
                ("meter", fields.CharField(max_length=16)),
                ("amount", fields.BigIntField()),
                ("balance_after", fields.BigIntField()),
                ("workbook_id", fields.UUIDField(null=True)),
                ("charge_id", fields.UUIDField(null=True)),
                ("refund_id", fields.UUIDField(null=True)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "ledger_entry",
                "app": "tally",
                "indexes": [
                    Index(fields=["workspace_id", "id"]),
                    Index(fields=["workspace_id", "workbook_id", "id"]),
                ],
                "pk_attr": "id",
                "table_description": "An append-only change to one meter, with the balance after it (R24).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Workbook",
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
                        related_name="workbooks",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("name", fields.CharField(max_length=200)),
                ("spend_limit", fields.BigIntField(null=True)),
                ("spent", fields.BigIntField(default=0)),
                ("spend_epoch", fields.IntField(default=0)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "workbook", "app": "tally", "pk_attr": "id"},
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Charge",
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
                        related_name="charges",
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
                        related_name="charges",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("table_id", fields.CharField(null=True, max_length=200)),
                ("kind", fields.CharField(max_length=32)),
                ("provider", fields.CharField(null=True, max_length=64)),
                ("data_type", fields.CharField(null=True, max_length=64)),
                ("model", fields.CharField(null=True, max_length=64)),
                ("input_tokens", fields.BigIntField(default=0)),
                ("output_tokens", fields.BigIntField(default=0)),
                ("own_api_key", fields.BooleanField(default=False)),
                ("results", fields.IntField()),
                ("actions", fields.IntField()),
                ("credits", fields.BigIntField()),
                ("refunded_results", fields.IntField(default=0)),
                ("refunded_credits", fields.BigIntField(default=0)),
                ("spend_epoch", fields.IntField(null=True)),
                ("idempotency_key", fields.CharField(max_length=255)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "charge",
                "app": "tally",
                "indexes": [
                    Index(fields=["workspace_id", "created_at"]),
                    Index(fields=["workbook_id", "table_id"]),
                ],
                "pk_attr": "id",
                "table_description": "One recorded usage report: what it cost on both meters, and what was refunded.",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Refund",
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
                        related_name="refunds",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                (
                    "charge",
                    fields.ForeignKeyField(
                        "tally.Charge",
                        source_field="charge_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="refunds",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("results", fields.IntField()),
                ("credits", fields.BigIntField()),
                ("reason", fields.CharField(null=True, max_length=500)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={"table": "refund", "app": "tally", "pk_attr": "id"},
            bases=["Model"],
        ),
    ]
