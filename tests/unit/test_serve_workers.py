"""`tally serve` without --workers: one server process per CPU on PostgreSQL, one on SQLite."""

from __future__ import annotations

import os

import pytest

from tally.cli import default_workers


def test_default_workers_one_per_cpu_on_postgres() -> None:
    cpus = len(os.sched_getaffinity(0))
    assert default_workers("postgres://postgres@127.0.0.1:5432/tally") == cpus


@pytest.mark.parametrize("url", ["sqlite://tally.sqlite3", "sqlite://:memory:"])
def test_default_workers_one_on_sqlite(url: str) -> None:
    assert default_workers(url) == 1
