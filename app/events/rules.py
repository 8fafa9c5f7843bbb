"""Which events a change fires (R34, R35). Pure: states in, events and new states out.

The "reached / exhausted / depleted" events fire once: when a change brings a headroom to zero
(available Data Credits, remaining Actions, a workbook's limit less its spend, a run's budget
less its spend) or a request is refused for it, whichever comes first. The headroom it fired
at is kept; the event re-arms only once the condition has cleared, that is when the headroom
has grown past both that and zero (a grant, a top-up, a refund, a renewal, a raised limit). So
a thousand refused charges are one event.

An alert (R35) fires when the meter crosses to the wrong side of its threshold while armed,
and re-arms once the meter is back on the safe side.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from app.kinds import Meter
from app.units import credits_text

CREDITS_DEPLETED = "credits.depleted"
ACTIONS_EXHAUSTED = "actions.exhausted"
LIMIT_REACHED = "workbook.spend_limit_reached"
BUDGET_EXHAUSTED = "run.budget_exhausted"
CREDITS_THRESHOLD = "credits.threshold_crossed"
ACTIONS_THRESHOLD = "actions.threshold_crossed"


@dataclass(frozen=True)
class NewEvent:
    type: str
    data: dict[str, Any]  # without workspaceId: emit adds it


@dataclass(frozen=True)
class Once:
    """A once-per-crossing event's state: the headroom now, and the headroom it fired at
    (None while armed)."""

    headroom: int
    fired_at: int | None


def once(state: Once, refused: bool) -> tuple[bool, int | None]:
    """(whether it fires now, the new `fired_at`)."""
    fired_at = state.fired_at
    if fired_at is not None and state.headroom > max(fired_at, 0):
        fired_at = None  # the condition cleared: armed again
    if fired_at is None and (refused or state.headroom <= 0):
        return True, state.headroom
    return False, fired_at


@dataclass(frozen=True)
class AlertState:
    id: uuid.UUID
    meter: Meter
    threshold: int  # Data Credit units, or a percent of Actions capacity
    armed: bool


@dataclass(frozen=True)
class Meters:
    available: int  # Data Credit units
    used: int  # Actions this month
    capacity: int


def crossed(alert: AlertState, meters: Meters) -> bool:
    """Whether the meter is on the wrong side of the alert's threshold."""
    if alert.meter is Meter.DATA_CREDITS:
        return meters.available < alert.threshold
    return meters.used * 100 >= alert.threshold * meters.capacity


def alert_armed_when_set(meter: Meter, threshold: int, meters: Meters) -> bool:
    """R35: an alert set on the wrong side is not fired; it arms once the meter is back."""
    return not crossed(AlertState(uuid.uuid4(), meter, threshold, True), meters)


@dataclass
class Outcome:
    events: list[NewEvent] = field(default_factory=list)
    # alert id -> armed, for alerts whose state changes
    alerts: dict[uuid.UUID, bool] = field(default_factory=dict)


def alert_events(alerts: list[AlertState], meters: Meters, outcome: Outcome) -> None:
    for alert in alerts:
        wrong_side = crossed(alert, meters)
        if alert.armed and wrong_side:
            outcome.alerts[alert.id] = False
            outcome.events.append(_threshold_event(alert, meters))
        elif not alert.armed and not wrong_side:
            outcome.alerts[alert.id] = True


def _threshold_event(alert: AlertState, meters: Meters) -> NewEvent:
    if alert.meter is Meter.DATA_CREDITS:
        return NewEvent(
            CREDITS_THRESHOLD,
            {
                "alertId": str(alert.id),
                "threshold": credits_text(alert.threshold),
                "available": credits_text(meters.available),
            },
        )
    return NewEvent(
        ACTIONS_THRESHOLD,
        {
            "alertId": str(alert.id),
            "threshold": str(alert.threshold),
            "used": meters.used,
            "capacity": meters.capacity,
        },
    )


def depleted(meters: Meters) -> NewEvent:
    return NewEvent(CREDITS_DEPLETED, {"available": credits_text(meters.available)})


def exhausted(meters: Meters) -> NewEvent:
    return NewEvent(ACTIONS_EXHAUSTED, {"used": meters.used, "capacity": meters.capacity})


LimitEvent = Callable[[uuid.UUID, int, int], NewEvent]


def limit_reached(workbook_id: uuid.UUID, limit: int, spent: int) -> NewEvent:
    data = {
        "workbookId": str(workbook_id),
        "limit": credits_text(limit),
        "spent": credits_text(spent),
    }
    return NewEvent(LIMIT_REACHED, data)


def budget_exhausted(run_id: uuid.UUID, budget: int, spent: int) -> NewEvent:
    data = {
        "runId": str(run_id),
        "budget": credits_text(budget),
        "spent": credits_text(spent),
    }
    return NewEvent(BUDGET_EXHAUSTED, data)
