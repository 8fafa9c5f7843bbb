"""Own-key savings in usage history (R5, R40): a partial index of the own-key charges by
workspace and instant, so `ownKeyResults` and `ownKeySavings` read those charges only, however
many others a range holds (app.history.own_keys). Written by hand: tortoise's models cannot say
"partial". On PostgreSQL the build holds back writes to `charge` while it runs."""

from tortoise import migrations
from tortoise.migrations import operations as ops

INDEX = (
    "CREATE INDEX IF NOT EXISTS charge_own_key_idx ON charge (workspace_id, created_at)"
    " WHERE own_api_key"
)


async def own_key_index(apps, schema_editor) -> None:
    await schema_editor.client.execute_script(INDEX)


class Migration(migrations.Migration):
    dependencies = [("tally", "0010_catalog_versions")]

    initial = False

    operations = [ops.RunPython(own_key_index)]
