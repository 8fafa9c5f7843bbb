"""`tally_moved()`: how the one-statement charge (app.usage.optimistic) gives up when the rows
it read have changed since. It raises SQLSTATE 40001 (serialization_failure), so the
statement's writes, its idempotency claim included, roll back with it and the charge is made
again under row locks. PostgreSQL only: SQLite charges under its write lock."""

from tortoise import migrations
from tortoise.migrations import operations as ops

PG_MOVED = """CREATE FUNCTION tally_moved() RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
   BEGIN RAISE EXCEPTION 'the rows of a charge moved since they were read'
   USING ERRCODE = 'serialization_failure'; END $$"""


async def add_moved(apps, schema_editor) -> None:
    client = schema_editor.client
    if client.capabilities.dialect == "postgres":
        await client.execute_script(PG_MOVED)


class Migration(migrations.Migration):
    dependencies = [("tally", "0012_live_until")]

    initial = False

    operations = [ops.RunPython(add_moved)]
