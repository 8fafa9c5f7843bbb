"""A serving, scheduling or job-running process moves its start-up objects out of the
collector's sight and collects the young generation every 50,000 allocations, not every 700
(app.collector)."""

import gc
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


async def test_tally_jobs_run_tunes_gc_when_it_starts(restored_gc, tmp_path):
    from datetime import UTC, datetime

    from tally.cli import _run_jobs

    settings = Settings(database_url=f"sqlite://{tmp_path / 'jobs.sqlite3'}", scheduler=False)
    assert gc.get_threshold()[0] == 700
    assert await _run_jobs(settings, [], datetime.now(UTC), 100) == 0
    assert gc.get_threshold()[0] == YOUNG_THRESHOLD
    assert gc.get_freeze_count() > 1_000
