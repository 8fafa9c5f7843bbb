"""Starting and stopping the database, the same way for the server, the scheduler and the CLI:
migrations applied (one process at a time), the ORM opened, the catalogs seeded."""

from __future__ import annotations

from app.catalog import load_catalog
from app.catalog.store import seed_catalog
from app.config import Settings
from app.db import close_database, open_database

__all__ = ["close_database", "start_database"]


async def start_database(settings: Settings) -> None:
    await open_database(settings.database_url)
    await seed_catalog(load_catalog(settings.catalog_path))
