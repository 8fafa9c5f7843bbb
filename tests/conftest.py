"""Every database test runs twice: on SQLite and on PostgreSQL (the `database` parameter).

Each leg gets a fresh database built by the real migrations. Tests isolate themselves by
creating their own workspaces, as tenants do.
"""

from __future__ import annotations

import compileall
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import time_machine
from tortoise.backends.base.executor import EXECUTOR_CACHE

from app import held
from app.catalog import load_catalog
from app.catalog.store import seed_catalog
from app.config import Settings
from app.db import close_database, connection, open_database
from graphql_schema.asgi import create_app
from tests.helpers import Api

ROOT = Path(__file__).resolve().parent.parent

PG_SERVER = os.environ.get("TALLY_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")
# Every GraphQL answer of the suite, in process and in the servers it starts, is computed by
# the fast paths and by graphql-core both, and compared (graphql_schema.perf.verify).
FAST_PATHS = os.environ.setdefault("TALLY_FAST_PATHS", "verify")
BACKENDS = os.environ.get("TALLY_TEST_DATABASES", "sqlite,postgres").split(",")
OPERATOR_KEY = "tly_op_test-operator-key"


def pytest_configure(config: pytest.Config) -> None:
    """The project's bytecode written once: where PYTHONDONTWRITEBYTECODE is set (as on this
    workplace's machines) every server and CLI process the suite starts (a hundred and more)
    would otherwise compile it from source again, about a second of CPU each."""
    for package in ("app", "graphql_schema", "jobs", "tally"):
        compileall.compile_dir(ROOT / package, quiet=1)


def pytest_sessionfinish(session: pytest.Session) -> None:
    from tests.templates import drop_templates

    drop_templates()


@dataclass(frozen=True)
class Database:
    backend: str
    url: str

    @property
    def is_postgres(self) -> bool:
        return self.backend == "postgres"


async def drop_postgres_database(name: str) -> None:
    conn = await asyncpg.connect(f"{PG_SERVER.replace('postgres://', 'postgresql://')}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session", params=BACKENDS)
async def database(request, tmp_path_factory) -> AsyncIterator[Database]:
    if request.param == "sqlite":
        db = Database("sqlite", f"sqlite://{tmp_path_factory.mktemp('sqlite')}/tally.sqlite3")
        name = None
    else:
        name = f"tally_test_{uuid.uuid4().hex[:10]}"
        db = Database("postgres", f"{PG_SERVER}/{name}")
    # Tortoise caches compiled INSERTs per table, not per dialect: start each leg clean.
    EXECUTOR_CACHE.clear()
    held.enabled = held.wanted(FAST_PATHS)  # as app.startup sets it for the served app
    await open_database(db.url)
    await seed_catalog(load_catalog())
    if db.is_postgres:
        _no_second_connection_while_held(connection())
    try:
        yield db
    finally:
        await close_database()
        if name is not None:
            await drop_postgres_database(name)


def _no_second_connection_while_held(client: Any) -> None:
    """The ORM's statements take a pooled connection each: one asked for by a task that
    holds one (app.held) could wait for ever on a dry pool. Every such request fails here."""
    original = client.acquire_connection

    def acquire_connection() -> Any:
        hold = held.held_for(client)
        if hold is not None and hold.connection is not None:
            raise AssertionError("a pooled connection asked for while this task holds one")
        return original()

    client.acquire_connection = acquire_connection


@pytest.fixture(scope="session")
def settings(database: Database) -> Settings:
    return Settings(database_url=database.url, operator_key=OPERATOR_KEY, fast_paths=FAST_PATHS)


@pytest.fixture(scope="session")
async def api(settings: Settings) -> AsyncIterator[Api]:
    app = create_app(settings, manage_database=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://tally.test") as client:
        yield Api(client, OPERATOR_KEY)


@pytest.fixture(scope="session", autouse=True)
def fast_paths_agree_with_graphql_core() -> Iterator[None]:
    yield
    from graphql_schema.perf.verify import MISMATCHES

    assert MISMATCHES == [], MISMATCHES


@pytest.fixture
def postgres_only(database: Database) -> None:
    if not database.is_postgres:
        pytest.skip("concurrency is proven on PostgreSQL; SQLite serializes every transaction")


@pytest.fixture
def clock() -> Iterator[time_machine.Traveller]:
    """The wall clock the API reads, stopped at 2025-01-31 10:00 UTC until moved (`move_to`).

    Domain code takes `now` as an argument; this moves the clock the adapters read it from.
    """
    with time_machine.travel(datetime(2025, 1, 31, 10, 0, tzinfo=UTC), tick=False) as traveller:
        yield traveller
