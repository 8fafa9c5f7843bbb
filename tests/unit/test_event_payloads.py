"""An event's stored JSON (app.events.store.payload, orjson) is the text the standard library
gives for the same data, compact: every constructor, and the renewal's over any amounts and
dates."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given, settings
from hypothesis import strategies as st

from app.events import rules, types
from app.events.rules import AlertState, Meters, NewEvent
from app.events.store import payload
from app.kinds import Meter

WORKSPACE = uuid.UUID("5b0c6c1e-0d7a-4c1e-9b51-2f3c4d5e6f70")
OTHER = uuid.UUID("0e9a4c55-1f6b-4a7e-8a2b-3c4d5e6f7a81")
AT = datetime(2025, 2, 15, 10, 30, 0, 123456, tzinfo=UTC)
METERS = Meters(-12_345, 15_000, 15_000)


def stdlib(event: NewEvent) -> str:
    return json.dumps({"workspaceId": str(WORKSPACE), **event.data}, separators=(",", ":"))


EVENTS = [
    types.plan_changed("launch", "growth", 5000, AT, True),
    types.plan_changed("growth", "free", None, AT, False),
    types.renewed(AT, AT + timedelta(days=28), 25_000_000, 1, -10_001),
    types.trial_ended("growth"),
    types.run_ended(OTHER, "COMPLETED", 123_456, 0),
    types.topup_purchased(OTHER, 10_000_000, 52_000, True),
    rules.depleted(METERS),
    rules.exhausted(METERS),
    rules.limit_reached(OTHER, 1_000_000, 1_000_001),
    rules.budget_exhausted(OTHER, 5, 7),
    *[rules._threshold_event(AlertState(OTHER, m, 3000, True), METERS) for m in Meter],
]


def test_r34_every_event_is_stored_as_the_standard_library_spells_it():
    for event in EVENTS:
        assert payload(WORKSPACE, event) == stdlib(event), event.type


@given(
    st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-5))])),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.integers(min_value=-(10**15), max_value=10**15),
    st.integers(min_value=0, max_value=10**15),
)
@settings(max_examples=500, deadline=None)
def test_r34_a_renewal_is_stored_as_the_standard_library_spells_it(start, granted, kept, gone):
    event = types.renewed(start, start + timedelta(days=31), granted, kept, gone)
    assert payload(WORKSPACE, event) == stdlib(event)


def test_r34_a_renewals_instants_are_spelled_in_their_own_zone_however_often_seen():
    """The renewal's instants are spelled once each and remembered: an equal instant in
    another zone is an equal key, and must still be spelled with its own offset."""
    utc = datetime(2026, 3, 15, 10, tzinfo=UTC)
    east = utc.astimezone(timezone(timedelta(hours=2)))
    assert utc == east
    for start in (utc, east, utc, east):
        data = types.renewed(start, start + timedelta(days=31), 1, 0, 0).data
        assert data["periodStart"] == start.isoformat()
        assert data["periodEnd"] == (start + timedelta(days=31)).isoformat()
    assert types.renewed(east, east, 1, 0, 0).data["periodStart"] == "2026-03-15T12:00:00+02:00"
