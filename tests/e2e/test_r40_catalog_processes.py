"""R40 across processes: two `tally serve` workers on one PostgreSQL charge without pause while
a third process, `tally catalog apply`, changes a price from now on. Every charge is priced by
the catalog in force at the instant it was recorded, whichever worker recorded it: before the
new version's instant at the old price, from it on at the new one, none in between."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from datetime import datetime

import httpx
import pytest

from app.catalog import load_catalog
from app.catalog.files import dump_catalog
from tests.conftest import BACKENDS, PG_SERVER, drop_postgres_database
from tests.e2e.test_server import OPERATOR, Server

pytestmark = pytest.mark.e2e

LINKEDIN = {"kind": "ENRICHMENT", "provider": "linkedin", "dataType": "profile", "results": 1}
RECORD = """mutation($i: RecordUsageInput!) { recordUsage(input: $i) {
  __typename ... on Charge { dataCredits createdAt } ... on Refusal { code } } }"""


@pytest.fixture
def two_workers(tmp_path) -> Iterator[tuple[Server, str]]:
    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL leg not selected")
    url = f"{PG_SERVER}/tally_e2e_{uuid.uuid4().hex[:10]}"
    server = Server(url, tmp_path, workers=2)
    yield server, url
    server.stop()
    asyncio.run(drop_postgres_database(url.rsplit("/", 1)[1]))


def test_r40_charges_in_two_workers_meet_an_apply_from_a_third_process(two_workers, tmp_path):
    server, url = two_workers
    default = dump_catalog(load_catalog())
    old = 'data_type = "profile"\nkind = "ENRICHMENT"\ncredits = "0.5"'
    assert default.count(old) == 1
    new_file = tmp_path / "catalog.toml"
    new_file.write_text(default.replace(old, old.replace('"0.5"', '"0.75"')))
    env = {**os.environ, "TALLY_DATABASE_URL": url, "TALLY_OPERATOR_KEY": OPERATOR}

    async def run() -> tuple[datetime, list[dict]]:
        async with httpx.AsyncClient(base_url=server.base, timeout=30) as client:

            async def call(query, variables=None, key=OPERATOR):
                response = await client.post(
                    "/graphql",
                    json={"query": query, "variables": variables or {}},
                    headers={"Authorization": f"Bearer {key}"},
                )
                return response.json()["data"]

            made = await call(
                'mutation { createWorkspace(input: {name: "R40", plan: "growth"}) { adminKey } }'
            )
            key = made["createWorkspace"]["adminKey"]
            wb = (await call('mutation { createWorkbook(name: "W") { id } }', key=key))[
                "createWorkbook"
            ]["id"]
            charges: list[dict] = []
            done = asyncio.Event()

            async def stream(name: str) -> None:
                n = 0
                while not done.is_set():
                    n += 1
                    item = {**LINKEDIN, "workbookId": wb, "idempotencyKey": f"{name}{n}"}
                    answer = (await call(RECORD, {"i": item}, key))["recordUsage"]
                    assert answer["__typename"] == "Charge", answer
                    charges.append(answer)

            streams = [asyncio.create_task(stream(f"s{i}-")) for i in range(4)]
            await asyncio.sleep(0.5)
            applied = await asyncio.create_subprocess_exec(
                sys.executable, "-m", "tally", "catalog", "apply", str(new_file),
                env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            )  # fmt: skip
            out, err = await applied.communicate()
            assert applied.returncode == 0, err.decode()
            await asyncio.sleep(0.5)
            done.set()
            await asyncio.gather(*streams)
            # "catalog version N in force from <instant> (applied ...)"
            instant = datetime.fromisoformat(out.decode().split(" in force from ")[1].split()[0])
            return instant, charges

    instant, charges = asyncio.run(run())
    before = [c for c in charges if datetime.fromisoformat(c["createdAt"]) < instant]
    after = [c for c in charges if datetime.fromisoformat(c["createdAt"]) >= instant]
    print(f"{len(before)} charges before the instant, {len(after)} from it on")
    assert len(before) > 10 and len(after) > 10, (len(before), len(after))
    assert {c["dataCredits"] for c in before} == {"0.5"}
    assert {c["dataCredits"] for c in after} == {"0.75"}
