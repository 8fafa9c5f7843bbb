from uuid import uuid4

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.indexes import Index
from tortoise.migrations import operations as ops

# Money and renewal records are history: never updated or deleted (R24), amounts never negative.
APPEND_ONLY = ("billing_charge", "renewal")


def _guards(dialect: str) -> list[str]:
    if dialect == "postgres":
        return [
            'ALTER TABLE "billing_charge" ADD CONSTRAINT "billing_charge_amount_nonneg"'
            " CHECK (amount_cents >= 0)",
            *(
                f"""CREATE TRIGGER {t}_append_only BEFORE UPDATE OR DELETE ON {t}
                    FOR EACH ROW EXECUTE FUNCTION tally_append_only()"""
                for t in APPEND_ONLY
            ),
        ]
    return [
        """CREATE TRIGGER billing_charge_amount_nonneg BEFORE INSERT ON billing_charge
           FOR EACH ROW WHEN NEW.amount_cents < 0
           BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: billing_charge_amount_nonneg'); END""",
        *(
            f"""CREATE TRIGGER {t}_no_{op.lower()} BEFORE {op} ON {t}
                BEGIN SELECT RAISE(ABORT, '{t} is append-only'); END"""
            for t in APPEND_ONLY
            for op in ("UPDATE", "DELETE")
        ),
    ]


async def add_guards(apps, schema_editor) -> None:
    client = schema_editor.client
    for statement in _guards(client.capabilities.dialect):
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("tally", "0002_meter_guards")]

    initial = False

    operations = [
        ops.CreateModel(
            name="BillingCharge",
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
                        related_name="billing_charges",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("kind", fields.CharField(max_length=16)),
                ("period_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("plan_code", fields.CharField(max_length=32)),
                ("credit_tier", fields.IntField(null=True)),
                ("billing_interval", fields.CharField(max_length=16)),
                ("credits", fields.BigIntField(default=0)),
                ("amount_cents", fields.BigIntField()),
                ("description", fields.CharField(max_length=300)),
                ("idempotency_key", fields.CharField(null=True, max_length=255)),
                ("created_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "billing_charge",
                "app": "tally",
                "indexes": [Index(fields=["workspace_id", "created_at"])],
                "pk_attr": "id",
                "table_description": "Money owed for one cycle: a plan fee, an upgrade proration or a top-up (R19, R20).",
            },
            bases=["Model"],
        ),
        ops.CreateModel(
            name="Renewal",
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
                        related_name="renewals",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("period_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                ("kind", fields.CharField(max_length=16)),
                ("plan_code", fields.CharField(max_length=32)),
                ("credit_tier", fields.IntField(null=True)),
                ("billing_interval", fields.CharField(max_length=16)),
                ("credits_before", fields.BigIntField()),
                ("credits_expired", fields.BigIntField(default=0)),
                ("credits_granted", fields.BigIntField(default=0)),
                ("credits_capped", fields.BigIntField(default=0)),
                ("credits_after", fields.BigIntField()),
                ("actions_capacity", fields.IntField()),
                ("processed_at", fields.DatetimeField(auto_now=False, auto_now_add=False)),
            ],
            options={
                "table": "renewal",
                "app": "tally",
                "unique_together": (("workspace", "period_start"),),
                "pk_attr": "id",
                "table_description": "One period opened for one workspace. Unique per (workspace, period start), so no",
            },
            bases=["Model"],
        ),
        ops.AddField(
            model_name="Workspace",
            name="pending_credit_tier",
            field=fields.IntField(null=True),
        ),
        ops.AddField(
            model_name="Workspace",
            name="pending_interval",
            field=fields.CharField(null=True, max_length=16),
        ),
        ops.AddField(
            model_name="Workspace",
            name="pending_plan_code",
            field=fields.CharField(null=True, max_length=32),
        ),
        ops.AddIndex(
            model_name="Workspace",
            index=Index(fields=["actions_period_end"]),
        ),
        ops.RunPython(add_guards),
    ]
