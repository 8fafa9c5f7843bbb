"""A serving process moves its start-up objects out of the collector's sight and collects the
young generation every 50,000 allocations, not every 700 (graphql_schema.gc_tuning)."""

import gc
from collections.abc import Iterator

import pytest

from app.config import Settings
from graphql_schema.asgi import create_app
from graphql_schema.gc_tuning import YOUNG_THRESHOLD, tune_gc


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
