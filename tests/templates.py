"""Migrated, unseeded databases for the servers and CLI processes the tests start.

Migrating a fresh database costs a process about four seconds of CPU on these machines
(tortoise replays its model state for each migration), and the suite starts dozens of servers.
So the migrations run once per session into a template, and each test's database is a copy:
PostgreSQL's CREATE DATABASE ... TEMPLATE, a file copy for SQLite. The process started on it
still runs the migrations (none pending) and seeds the catalogs, as on any start. A test of
the migrations themselves, or of a first start on nothing, does not use these.
"""

from __future__ import annotations

import asyncio
import functools
import shutil
import subprocess
import sys
import tempfile
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg

from tests.conftest import PG_SERVER

ROOT = Path(__file__).resolve().parent.parent
_created: list[str] = []  # PostgreSQL templates to drop at the session's end


def _migrate(url: str) -> None:
    """The migrations alone (no catalog seeded), in a process of their own: the suite's own
    ORM connections stay untouched."""
    code = "import asyncio, sys; from app.db import migrate_database; "
    code += "asyncio.run(migrate_database(sys.argv[1]))"
    done = subprocess.run(
        [sys.executable, "-c", code, url], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr


@functools.cache
def _sqlite_template() -> Path:
    path = Path(tempfile.mkdtemp(prefix="tally-template-")) / "tally.sqlite3"
    _migrate(f"sqlite://{path}")
    return path


@functools.cache
def _postgres_template() -> str:
    name = f"tally_template_{uuid.uuid4().hex[:10]}"
    _migrate(f"{PG_SERVER}/{name}")
    _created.append(name)
    return name


def migrated(url: str, workdir: Path) -> None:
    """The database a process started in `workdir` with TALLY_DATABASE_URL=`url` opens
    (`""`: the embedded default, a file in `workdir`), made migrated unless it exists."""
    if url.startswith("postgres"):
        asyncio.run(_migrated_postgres(urlsplit(url).path.lstrip("/")))
        return
    path = Path(url.removeprefix("sqlite://") if url else "tally.sqlite3")
    path = path if path.is_absolute() else workdir / path
    if not path.exists():
        shutil.copyfile(_sqlite_template(), path)


async def _migrated_postgres(name: str) -> None:
    """On the test server, whatever host and port the URL reaches it by (a proxy's too)."""
    conn = await asyncpg.connect(f"{PG_SERVER.replace('postgres://', 'postgresql://')}/postgres")
    try:
        if not await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name):
            await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{_postgres_template()}"')
    finally:
        await conn.close()


def drop_templates() -> None:
    for name in _created:
        asyncio.run(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    _created.clear()


async def _admin(statement: str) -> None:
    conn = await asyncpg.connect(f"{PG_SERVER.replace('postgres://', 'postgresql://')}/postgres")
    try:
        await conn.execute(statement)
    finally:
        await conn.close()
