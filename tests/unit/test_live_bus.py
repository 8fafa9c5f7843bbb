"""The in-process hub of live updates (app.events.bus): tenancy, merging, caps, payloads."""

from __future__ import annotations

import asyncio
import sys
import uuid

import pytest

from app.errors import QuotaExceeded
from app.events.bus import EVERYTHING, Change, Hub, parse, payload

CAP = 10


async def test_a_change_wakes_its_workspace_and_no_other():
    # given
    hub = Hub()
    mine, other = uuid.uuid4(), uuid.uuid4()
    with (
        hub.subscribe(mine, uuid.uuid4(), Change.STATE, CAP) as watching,
        hub.subscribe(other, uuid.uuid4(), Change.STATE, CAP) as elsewhere,
    ):
        # when
        hub.publish(mine, Change.STATE)

        # then
        assert await watching.wait(1) is Change.STATE
        assert await elsewhere.wait(0.05) is Change.NONE


async def test_changes_merge_while_a_subscriber_is_busy_and_hold_no_more_memory():
    # given: a subscriber that does not read for a while
    hub = Hub()
    workspace = uuid.uuid4()
    with hub.subscribe(workspace, None, Change.STATE | Change.EVENTS, CAP) as slow:
        size = sys.getsizeof(slow._pending)

        # when: ten thousand changes arrive meanwhile
        for n in range(10_000):
            hub.publish(workspace, Change.STATE if n % 2 else Change.EVENTS)

        # then: one wake-up says both kinds happened; nothing was queued
        assert sys.getsizeof(slow._pending) == size
        assert await slow.wait(1) == Change.STATE | Change.EVENTS
        assert await slow.wait(0.05) is Change.NONE


async def test_a_subscriber_is_woken_only_by_what_it_wants():
    hub = Hub()
    workspace = uuid.uuid4()
    with hub.subscribe(workspace, None, Change.EVENTS | Change.KEYS, CAP) as events:
        hub.publish(workspace, Change.STATE)
        assert await events.wait(0.05) is Change.NONE
        hub.publish(workspace, Change.STATE | Change.KEYS)
        assert await events.wait(1) is Change.KEYS


async def test_a_waiting_subscriber_wakes_at_once():
    hub = Hub()
    workspace = uuid.uuid4()
    with hub.subscribe(workspace, None, Change.STATE, CAP) as subscriber:
        waiting = asyncio.create_task(subscriber.wait(5))
        await asyncio.sleep(0.01)
        hub.publish(workspace, Change.STATE)
        assert await asyncio.wait_for(waiting, 1) is Change.STATE


async def test_publish_everywhere_wakes_every_subscriber():
    hub = Hub()
    with (
        hub.subscribe(uuid.uuid4(), None, Change.STATE, CAP) as one,
        hub.subscribe(uuid.uuid4(), None, Change.EVENTS, CAP) as two,
    ):
        hub.publish_everywhere()
        assert await one.wait(1) is Change.STATE
        assert await two.wait(1) is Change.EVENTS


def test_a_key_holds_at_most_its_cap_and_gets_its_slots_back():
    # given
    hub = Hub()
    key, other_key = uuid.uuid4(), uuid.uuid4()
    workspace = uuid.uuid4()

    # when: the key fills its cap
    with (
        hub.subscribe(workspace, key, Change.STATE, 2),
        hub.subscribe(workspace, key, Change.STATE, 2),
    ):
        # then: a third is refused, another key is not
        with pytest.raises(QuotaExceeded), hub.subscribe(workspace, key, Change.STATE, 2):
            pass
        with hub.subscribe(workspace, other_key, Change.STATE, 2):
            assert hub.held_by(key) == 2
            assert hub.count() == 3

    # then: ended subscriptions give their slots back, and leave nothing behind
    assert hub.held_by(key) == 0
    assert hub.count() == 0
    assert hub._workspaces == {} and not hub._keys
    with hub.subscribe(workspace, key, Change.STATE, 2):
        pass


def test_payloads_round_trip_and_anything_else_is_ignored():
    workspace = uuid.uuid4()
    for change in (Change.STATE, Change.EVENTS, Change.KEYS, EVERYTHING):
        assert parse(payload(workspace, change)) == (workspace, change)
    for junk in ("", "x", f"{workspace}", f"{workspace}:", f"{workspace}:-1", "nope:1",
                 f"{workspace}:999", f"{workspace}:1:2"):  # fmt: skip
        assert parse(junk) is None, junk
    assert len(payload(workspace, EVERYTHING)) < 64  # far under NOTIFY's 8,000 bytes
