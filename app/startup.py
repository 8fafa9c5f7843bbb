"""Starting and stopping the database, the same way for the server, the scheduler and the CLI:
migrations applied (one process at a time), the ORM opened, the catalogs seeded."""

from __future__ import annotations

import logging
from urllib.parse import parse_qsl, urlsplit

from app import held
from app.catalog import load_catalog
from app.catalog.store import seed_catalog
from app.config import Settings
from app.db import close_database, open_database
from app.usage import coalesced, group_commit, optimistic

__all__ = ["close_database", "start_database"]

log = logging.getLogger("tally.startup")


def _pooled_per_transaction(url: str) -> bool:
    """`?statement_cache_size=0`: what a URL through pgbouncer's transaction mode needs."""
    return dict(parse_qsl(urlsplit(url).query)).get("statement_cache_size") == "0"


async def start_database(settings: Settings) -> None:
    if _pooled_per_transaction(settings.database_url) and settings.direct_database_url is None:
        log.warning(
            "TALLY_DATABASE_URL turns asyncpg's statement cache off (pgbouncer?) but"
            " TALLY_DIRECT_DATABASE_URL is not set: behind transaction pooling, migrations"
            " and live updates (LISTEN) need a direct connection to PostgreSQL"
        )
    group_commit.enabled = settings.group_commit
    optimistic.enabled = settings.optimistic_charges
    coalesced.enabled = settings.coalesce_charges
    held.enabled = held.wanted(settings.fast_paths)
    await open_database(settings.database_url, settings.direct_url)
    await seed_catalog(load_catalog(settings.catalog_path))
