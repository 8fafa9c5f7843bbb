"""A serving, scheduling or job-running process moves its start-up objects out of the
collector's sight and collects the young generation every 50,000 allocations, not every 700
(app.collector)."""

import gc
import json
import subprocess
import sys
import textwrap
from collections.abc import Iterator

import pytest

from app.collector import YOUNG_THRESHOLD, tune_gc
from app.config import Settings
from graphql_schema.asgi import create_app


@pytest.fixture
def restored_gc() -> Iterator[None]:
    threshold = gc.get_threshold()
    gc.unfreeze()
    gc.set_threshold(700, *threshold[1:])
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_tune_gc_freezes_what_exists_and_raises_the_young_threshold(restored_gc):
    older = gc.get_threshold()[1:]
    tune_gc()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, *older)
    assert YOUNG_THRESHOLD == 50_000
    assert gc.get_freeze_count() > 1_000  # modules, functions, the schema


async def test_the_served_app_tunes_gc_when_it_starts(restored_gc):
    settings = Settings(database_url="sqlite://:memory:", scheduler=False)
    app = create_app(settings, manage_database=False)
    assert gc.get_threshold()[0] == 700
    async with app.router.lifespan_context(app):
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD


def test_tally_jobs_run_tunes_gc_when_it_starts(tmp_path):
    # In a child process: the job runner opens the ORM on its own database, as the CLI does.
    child = textwrap.dedent(f"""
        import asyncio, gc, json
        from datetime import UTC, datetime
        from app.config import Settings
        from tally.cli import _run_jobs

        settings = Settings(database_url="sqlite://{tmp_path / "jobs.sqlite3"}", scheduler=False)
        before = gc.get_threshold()[0]
        failed = asyncio.run(_run_jobs(settings, [], datetime.now(UTC), 100))
        print(json.dumps([before, failed, gc.get_threshold()[0], gc.get_freeze_count()]))
    """)
    done = subprocess.run(
        [sys.executable, "-c", child], capture_output=True, text=True, timeout=120, check=True
    )
    before, failed, threshold, frozen = json.loads(done.stdout.strip().splitlines()[-1])
    assert (before, failed, threshold) == (700, 0, YOUNG_THRESHOLD)
    assert frozen > 1_000
