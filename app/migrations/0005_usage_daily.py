"""Daily usage rollups (R24): usage history reads these instead of every charge.

Rows are kept in the charge and refund transactions from now on. Usage recorded before this
migration is summed into them here, by the same rules (app/history.py): the UTC day, the stored
cycle, AI under its model, own-key charges without Data Credits, refunds on their own day with
negative credits only.
"""

from tortoise import fields, migrations
from tortoise.fields.base import OnDelete
from tortoise.migrations import operations as ops


def _day(dialect: str, column: str) -> str:
    return f"({column} AT TIME ZONE 'UTC')::date" if dialect == "postgres" else f"date({column})"


def backfill_select(dialect: str) -> str:
    """Every charge and refund so far, summed into rollup rows."""
    provider = "COALESCE(CASE WHEN c.kind = 'AI' THEN c.model ELSE c.provider END, '')"
    return f"""
SELECT workspace_id, day, period_start, workbook_id, table_id, provider, kind,
       SUM(actions) AS actions, SUM(credits) AS credits, SUM(results) AS results
  FROM (SELECT c.workspace_id, {_day(dialect, "c.created_at")} AS day,
               COALESCE(c.period_start, w.period_start) AS period_start, c.workbook_id,
               COALESCE(c.table_id, '') AS table_id, {provider} AS provider, c.kind,
               c.actions, CASE WHEN c.own_api_key THEN 0 ELSE c.credits END AS credits,
               c.results
          FROM charge c JOIN workspace w ON w.id = c.workspace_id
        UNION ALL
        SELECT r.workspace_id, {_day(dialect, "r.created_at")},
               COALESCE(r.period_start, w.period_start), c.workbook_id,
               COALESCE(c.table_id, ''), {provider}, c.kind, 0, -r.credits, 0
          FROM refund r JOIN charge c ON c.id = r.charge_id
          JOIN workspace w ON w.id = r.workspace_id) AS d
 GROUP BY workspace_id, day, period_start, workbook_id, table_id, provider, kind
HAVING SUM(actions) <> 0 OR SUM(credits) <> 0 OR SUM(results) <> 0
"""


async def backfill(apps, schema_editor) -> None:
    client = schema_editor.client
    await client.execute_script(
        "INSERT INTO usage_daily (workspace_id, day, period_start, workbook_id, table_id,"
        " provider, kind, actions, credits, results)" + backfill_select(client.capabilities.dialect)
    )


class Migration(migrations.Migration):
    dependencies = [("tally", "0004_runs")]

    initial = False

    operations = [
        ops.CreateModel(
            name="UsageDaily",
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
                        related_name="usage_daily",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("day", fields.DateField()),
                ("period_start", fields.DatetimeField(auto_now=False, auto_now_add=False)),
                (
                    "workbook",
                    fields.ForeignKeyField(
                        "tally.Workbook",
                        source_field="workbook_id",
                        db_constraint=True,
                        to_field="id",
                        related_name="usage_daily",
                        on_delete=OnDelete.RESTRICT,
                    ),
                ),
                ("table_id", fields.CharField(default="", max_length=200)),
                ("provider", fields.CharField(default="", max_length=64)),
                ("kind", fields.CharField(max_length=32)),
                ("actions", fields.BigIntField(default=0)),
                ("credits", fields.BigIntField(default=0)),
                ("results", fields.BigIntField(default=0)),
            ],
            options={
                "table": "usage_daily",
                "app": "tally",
                "unique_together": (
                    (
                        "workspace",
                        "day",
                        "period_start",
                        "workbook",
                        "table_id",
                        "provider",
                        "kind",
                    ),
                ),
                "pk_attr": "id",
                "table_description": "Usage summed per UTC day, stored cycle, workbook, table, provider and kind (R24).",
            },
            bases=["Model"],
        ),
        ops.RunPython(backfill),
    ]
