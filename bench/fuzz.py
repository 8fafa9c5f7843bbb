"""Fuzz the GraphQL schema with any number of cases and print how many failed.

    .venv/bin/python bench/fuzz.py [--cases 2000] [--database sqlite|postgres] [--seed S]
                                   [--callers admin,member,operator,none] [--no-explicit]
                                   [--limit CHARS] [--stats]

The same generation and checks as tests/fuzz (tests/fuzz/harness.py), sent to the in-process
app as the admin and a member key of workspace A, the operator key and no key. First the fixed
cases: every hostile HTTP envelope a caller, B's rows named by A's keys, and every listed
hostile Decimal and DateTime as A's admin. Then `--cases` drawn ones: documents from
hypothesis-graphql with valid-looking and hostile scalars (half with the arguments as
variables), hand-written operations with drawn variables, hostile envelopes, with A's and B's
ids fed into ID arguments. Each answer must be 200/400/413 with a JSON object body, every error
must carry a code from API.md, nothing of B may reach A's keys or no key, a member gets no
admin-only data, a value API.md rules out is not accepted, and B is unchanged at the end.

Starts a fresh SQLite file or PostgreSQL database (TALLY_TEST_POSTGRES, default
postgres://postgres@127.0.0.1:5432; dropped at the end). Without --seed the draw is the
derandomized one CI uses; with it, another. Prints each failure with its request and response
(shortened to --limit characters), then each distinct failure once with its shortest request,
then the counts. Exits 1 on any failure.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path

import asyncpg
import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from app.catalog import load_catalog  # noqa: E402  (after the path, for `python bench/fuzz.py`)
from app.catalog.store import seed_catalog  # noqa: E402
from app.config import Settings  # noqa: E402
from app.db import close_database, open_database  # noqa: E402
from graphql_schema.asgi import create_app  # noqa: E402
from tests.fuzz.harness import (  # noqa: E402
    Caller,
    Report,
    build_world,
    cases,
    compare_states,
    explicit_cases,
    run_cases,
    schema_of_app,
    tenant_state,
)

OPERATOR_KEY = "tly_op_fuzz-operator-key"
PG_SERVER = os.environ.get("TALLY_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432")
CALLERS = {
    "admin": Caller.ADMIN_A,
    "member": Caller.MEMBER_A,
    "operator": Caller.OPERATOR,
    "none": Caller.NO_KEY,
}


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--database", choices=["sqlite", "postgres"], default="sqlite")
    parser.add_argument("--seed", type=int, default=None, help="default: derandomized, as CI")
    parser.add_argument("--callers", default=",".join(CALLERS), help="of " + ",".join(CALLERS))
    parser.add_argument("--limit", type=int, default=400, help="characters a request/response")
    parser.add_argument("--stats", action="store_true", help="print the answers' status/codes")
    parser.add_argument(
        "--no-explicit",
        action="store_true",
        help="skip the fixed cases sent first (each hostile envelope a caller, each listed"
        " hostile Decimal and DateTime as A's admin)",
    )
    return parser.parse_args()


async def drop_postgres(name: str) -> None:
    conn = await asyncpg.connect(f"{PG_SERVER.replace('postgres://', 'postgresql://')}/postgres")
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


def database_url(kind: str) -> tuple[str, str | None]:
    """The URL, and the PostgreSQL database to drop afterwards."""
    if kind == "sqlite":
        return f"sqlite://{tempfile.mkdtemp(prefix='tally-fuzz-')}/tally.sqlite3", None
    name = f"tally_fuzz_{uuid.uuid4().hex[:10]}"
    return f"{PG_SERVER}/{name}", name


def answer_stats(report: Report) -> str:
    """How the answers were distributed: is the fuzz reaching past validation?"""
    return "\n".join(f"  {count:6}  {key}" for key, count in report.answers.most_common())


async def fuzz(args: argparse.Namespace) -> tuple[Report, int]:
    callers = [CALLERS[name.strip()] for name in args.callers.split(",")]
    url, postgres_name = database_url(args.database)
    await open_database(url)
    try:
        await seed_catalog(load_catalog())
        app = create_app(
            Settings(database_url=url, operator_key=OPERATOR_KEY), manage_database=False
        )
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://tally.test") as client:
            world = await build_world(client, OPERATOR_KEY)
            before = await tenant_state(client, world.b)
            strategy = cases(world, callers, schema_of_app())
            loop = asyncio.get_running_loop()
            explicit = [] if args.no_explicit else explicit_cases(world, callers)
            report = await asyncio.to_thread(
                run_cases, loop, client, world, strategy, args.cases, args.seed, explicit
            )
            report.b_changes = compare_states(before, await tenant_state(client, world.b))
            return report, len(explicit)
    finally:
        await close_database()
        if postgres_name is not None:
            await drop_postgres(postgres_name)


def main() -> int:
    args = arguments()
    # Tally logs each unexpected exception with its traceback; the harness records them.
    logging.getLogger("tally").propagate = False
    started = time.perf_counter()
    report, explicit = asyncio.run(fuzz(args))
    seconds = time.perf_counter() - started
    for failure in report.failures:
        print(failure.render(args.limit), end="\n\n")
    print(report.summary(args.limit))
    for change in report.b_changes:
        print(change)
    if args.stats:
        print("\nanswers (status, codes):\n" + answer_stats(report))
    draw = f"seed {args.seed}" if args.seed is not None else "derandomized"
    print(
        f"\n{args.database}, {draw}: {report.cases} cases ({explicit} fixed, the rest drawn),"
        f" {report.failed_cases} failed"
        f" ({len(report.failures)} failed checks, {len(report.groups())} distinct),"
        f" B {'changed' if report.b_changes else 'unchanged'}, {seconds:.1f} s"
    )
    return 1 if report.failures or report.b_changes else 0


if __name__ == "__main__":
    sys.exit(main())
