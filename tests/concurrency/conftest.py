"""Fixtures the concurrency tests share."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest

from app.usage import charging


@pytest.fixture
def gate(monkeypatch) -> Iterator[asyncio.Event]:
    """Holds the first transaction open until set, so the charges after it queue."""
    opened = asyncio.Event()
    original = charging.transact
    first = True

    async def gated(workspace_id, items, now, one_by_one=False):
        nonlocal first
        if first:
            first = False
            await opened.wait()
        await original(workspace_id, items, now, one_by_one)

    monkeypatch.setattr(charging, "transact", gated)
    yield opened
