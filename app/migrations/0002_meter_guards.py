"""Guards the database enforces whatever the code does (R12, R24).

Balances and counters never go below zero or past their bounds, and ledger entries are never
updated or deleted. PostgreSQL gets CHECK constraints and a trigger; SQLite, which cannot add a
CHECK to an existing table, gets triggers that abort the statement.
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

# (table, name, condition on the row); {r} is the row prefix SQLite triggers need.
CHECKS = [
    ("workspace", "workspace_balance_nonneg", "{r}credit_balance >= 0"),
    (
        "workspace",
        "workspace_actions_within_capacity",
        "{r}actions_used >= 0 AND {r}actions_used <= {r}actions_capacity",
    ),
    ("workbook", "workbook_spent_nonneg", "{r}spent >= 0"),
    (
        "charge",
        "charge_refunds_within_results",
        "{r}refunded_results >= 0 AND {r}refunded_results <= {r}results",
    ),
]

PG_APPEND_ONLY = [
    """CREATE FUNCTION tally_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION '% is append-only', TG_TABLE_NAME; END $$""",
    """CREATE TRIGGER ledger_entry_append_only BEFORE UPDATE OR DELETE ON ledger_entry
       FOR EACH ROW EXECUTE FUNCTION tally_append_only()""",
]
SQLITE_APPEND_ONLY = [
    f"""CREATE TRIGGER ledger_entry_no_{op.lower()} BEFORE {op} ON ledger_entry
        BEGIN SELECT RAISE(ABORT, 'ledger_entry is append-only'); END"""
    for op in ("UPDATE", "DELETE")
]


def _statements(dialect: str) -> list[str]:
    if dialect == "postgres":
        checks = [
            f'ALTER TABLE "{table}" ADD CONSTRAINT "{name}" CHECK ({cond.format(r="")})'
            for table, name, cond in CHECKS
        ]
        return checks + PG_APPEND_ONLY
    triggers = [
        f"""CREATE TRIGGER "{name}_{op.lower()}" BEFORE {op} ON "{table}" FOR EACH ROW
            WHEN NOT ({cond.format(r="NEW.")})
            BEGIN SELECT RAISE(ABORT, 'CHECK constraint failed: {name}'); END"""
        for table, name, cond in CHECKS
        for op in ("INSERT", "UPDATE")
    ]
    return triggers + SQLITE_APPEND_ONLY


async def add_guards(apps, schema_editor) -> None:
    client = schema_editor.client
    for statement in _statements(client.capabilities.dialect):
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("tally", "0001_initial")]

    operations = [ops.RunPython(add_guards)]
