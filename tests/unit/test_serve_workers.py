"""`tally serve` without --workers: one server process per CPU on PostgreSQL, one on SQLite."""

from __future__ import annotations

import os

import pytest

from tally.cli import default_workers
from tally.serving.workers import restart_delay


def test_default_workers_one_per_cpu_on_postgres() -> None:
    cpus = len(os.sched_getaffinity(0))
    assert default_workers("postgres://postgres@127.0.0.1:5432/tally") == cpus


@pytest.mark.parametrize("url", ["sqlite://tally.sqlite3", "sqlite://:memory:"])
def test_default_workers_one_on_sqlite(url: str) -> None:
    assert default_workers(url) == 1


@pytest.mark.parametrize(
    ("previous", "lived", "expected"),
    [
        (0.25, 0.1, 0.5),  # died at start: doubled
        (8.0, 2.0, 16.0),
        (16.0, 1.0, 30.0),  # capped
        (30.0, 1.0, 30.0),
        (30.0, 31.0, 0.25),  # lived: back to the least
        (0.25, 3600.0, 0.25),
    ],
)
def test_a_process_dying_young_waits_longer_each_time(previous, lived, expected) -> None:
    assert restart_delay(previous, lived) == expected
