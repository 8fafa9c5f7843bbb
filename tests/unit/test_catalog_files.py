"""R40: the catalog file format written back (`tally catalog show`) reads as it was, and the
catalog the tables held before versions (migration 0010) is the seeded one."""

import importlib

from app.catalog import load_catalog
from app.catalog.files import dump_catalog, parse_catalog_text
from app.db import connection

DEFAULT = load_catalog()


def test_r40_what_show_prints_parses_to_the_same_catalog():
    text = dump_catalog(DEFAULT)
    assert parse_catalog_text(text) == DEFAULT
    assert dump_catalog(parse_catalog_text(text)) == text
    odd = parse_catalog_text(
        text.replace('name = "Launch"', 'name = "Launch \\"2\\"\\tΩ"').replace(
            'base_fee_usd = "85"', 'base_fee_usd = "85.5"'
        )
    )
    assert parse_catalog_text(dump_catalog(odd)) == odd
    assert next(p for p in odd.plans if p.code == "launch").base_fee_cents == 8550


async def test_r40_the_tables_before_versions_become_the_first_version(database):
    migration = importlib.import_module("app.migrations.0010_catalog_versions")
    legacy = await migration.legacy_catalog(connection())
    assert (legacy.billing, legacy.plans) == (DEFAULT.billing, DEFAULT.plans)
    assert set(legacy.prices) == set(DEFAULT.prices) and len(legacy.prices) == 5
    assert set(legacy.ai_models) == set(DEFAULT.ai_models) and len(legacy.ai_models) == 2
