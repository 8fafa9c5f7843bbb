"""References on the tables a charge writes are checked once per statement, not once per row.

A batch of 1,000 charges inserts 1,000 charges, 2,000 ledger entries and 1,000 idempotency
records. On PostgreSQL each of their foreign keys ran a locking lookup of the parent per row:
6,000 lookups, about half the time of those inserts (EXPLAIN ANALYZE: 55 ms against 28 ms
without them; docs/architecture.md). The references stay enforced by the database:

- an AFTER INSERT statement trigger per table looks up each distinct parent id of the inserted
  rows (a transition table) and raises foreign_key_violation, as the foreign key did, when one
  is missing;
- the references of a stored row never change (a row trigger refuses it; ledger entries are
  append-only already);
- workspaces, workbooks and runs are never deleted, truncated or given another id (R21: data
  is never deleted), so a parent that existed when its child was inserted exists for good. The
  foreign key's RESTRICT guarded only that.

SQLite keeps its foreign keys (it has no statement triggers, and batches are not its job); it
gets the same refusal to delete a parent, so both databases answer alike.

The models still declare these foreign keys (the ORM's relations need them); on PostgreSQL
the constraints themselves are gone from here on, and no later migration may add them back.
A data-only dump (`pg_dump --data-only`) no longer loads workbooks and runs before the charges
that name them: restore it with `--disable-triggers`, or restore a whole dump (its triggers are
created after its data).
"""

from tortoise import migrations
from tortoise.migrations import operations as ops

# table: (column, parent table) pairs, each formerly a foreign key "<table>_<column>_fkey".
REFERENCES = {
    "charge": [("workspace_id", "workspace"), ("workbook_id", "workbook"), ("run_id", "run")],
    "ledger_entry": [("workspace_id", "workspace")],
    "idempotency_record": [("workspace_id", "workspace")],
}
PARENTS = ("workspace", "workbook", "run")


def _check_function(table: str, references: list[tuple[str, str]], schema: str) -> str:
    # One static query per reference, so PL/pgSQL keeps its plan for the session. The parent
    # is named with its schema, as a foreign key holds it: a session's search_path, or a
    # temporary table of the same name, must not decide what it means.
    checks = "\n".join(
        f"""  IF EXISTS (SELECT 1 FROM (SELECT DISTINCT {column} AS ref FROM new_rows) n
              WHERE n.ref IS NOT NULL
                AND NOT EXISTS (SELECT 1 FROM {schema}.{parent} p WHERE p.id = n.ref)) THEN
    RAISE foreign_key_violation USING MESSAGE =
      '{table}.{column} refers to a {parent} that does not exist';
  END IF;"""
        for column, parent in references
    )
    return f"""CREATE FUNCTION {table}_references_exist() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
{checks}
  RETURN NULL;
END $$"""


def _immutable_references(table: str, references: list[tuple[str, str]]) -> str:
    changed = " OR ".join(f"OLD.{column} IS DISTINCT FROM NEW.{column}" for column, _ in references)
    return f"""CREATE TRIGGER {table}_references_fixed BEFORE UPDATE ON {table}
FOR EACH ROW WHEN ({changed}) EXECUTE FUNCTION tally_references_fixed()"""


PG_COMMON = [
    """CREATE FUNCTION tally_never_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE restrict_violation USING MESSAGE = TG_TABLE_NAME || ' rows are never deleted';
       END $$""",
    """CREATE FUNCTION tally_references_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE restrict_violation USING MESSAGE = TG_TABLE_NAME || ' references never change';
       END $$""",
    """CREATE FUNCTION tally_id_fixed() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE restrict_violation USING MESSAGE = TG_TABLE_NAME || ' ids never change';
       END $$""",
]


def postgres_statements(schema: str) -> list[str]:
    """`schema`: the quoted schema the tables live in."""
    statements = list(PG_COMMON)
    for table, references in REFERENCES.items():
        statements += [
            f'ALTER TABLE {table} DROP CONSTRAINT "{table}_{column}_fkey"'
            for column, _ in references
        ]
        statements += [
            _check_function(table, references, schema),
            f"""CREATE TRIGGER {table}_references AFTER INSERT ON {table}
                REFERENCING NEW TABLE AS new_rows
                FOR EACH STATEMENT EXECUTE FUNCTION {table}_references_exist()""",
        ]
        if table != "ledger_entry":  # append-only already: no UPDATE at all
            statements.append(_immutable_references(table, references))
    for parent in PARENTS:
        statements += [
            f"""CREATE TRIGGER {parent}_never_deleted BEFORE DELETE ON {parent}
                FOR EACH ROW EXECUTE FUNCTION tally_never_deleted()""",
            f"""CREATE TRIGGER {parent}_never_truncated BEFORE TRUNCATE ON {parent}
                FOR EACH STATEMENT EXECUTE FUNCTION tally_never_deleted()""",
            f"""CREATE TRIGGER {parent}_id_fixed BEFORE UPDATE ON {parent}
                FOR EACH ROW WHEN (OLD.id IS DISTINCT FROM NEW.id)
                EXECUTE FUNCTION tally_id_fixed()""",
        ]
    return statements


def sqlite_statements() -> list[str]:
    """SQLite's foreign keys already check inserts; the rest matches PostgreSQL."""
    statements = []
    for parent in PARENTS:
        statements += [
            f"""CREATE TRIGGER {parent}_never_deleted BEFORE DELETE ON {parent}
                BEGIN SELECT RAISE(ABORT, '{parent} rows are never deleted'); END""",
            f"""CREATE TRIGGER {parent}_id_fixed BEFORE UPDATE OF id ON {parent}
                FOR EACH ROW WHEN OLD.id IS NOT NEW.id
                BEGIN SELECT RAISE(ABORT, '{parent} ids never change'); END""",
        ]
    for table, references in REFERENCES.items():
        if table == "ledger_entry":
            continue
        columns = ", ".join(column for column, _ in references)
        changed = " OR ".join(f"OLD.{column} IS NOT NEW.{column}" for column, _ in references)
        statements.append(
            f"""CREATE TRIGGER {table}_references_fixed BEFORE UPDATE OF {columns} ON {table}
                FOR EACH ROW WHEN {changed}
                BEGIN SELECT RAISE(ABORT, '{table} references never change'); END"""
        )
    return statements


async def check_per_statement(apps, schema_editor) -> None:
    client = schema_editor.client
    dialect = client.capabilities.dialect
    if dialect == "postgres":
        rows = await client.execute_query_dict("SELECT quote_ident(current_schema()) AS name")
        statements = postgres_statements(rows[0]["name"])
    else:
        statements = sqlite_statements()
    for statement in statements:
        await client.execute_script(statement)


class Migration(migrations.Migration):
    dependencies = [("tally", "0005_usage_daily")]

    operations = [ops.RunPython(check_per_statement)]
