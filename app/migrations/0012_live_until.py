"""Live updates only for watched workspaces (app.events.bus.LEASE): a charge notifies while
workspace.live_until lies ahead, which each subscriber's process keeps renewed. A nullable
column: PostgreSQL adds it without rewriting the table."""

from tortoise import fields, migrations
from tortoise.migrations import operations as ops


class Migration(migrations.Migration):
    dependencies = [("tally", "0011_own_key_charges")]

    initial = False

    operations = [
        ops.AddField(
            model_name="Workspace",
            name="live_until",
            field=fields.DatetimeField(null=True),
        ),
    ]
