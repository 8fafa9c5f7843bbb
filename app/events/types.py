"""The events that are not once-per-crossing (R34), built from what a service knows: their
`data` as API.md lists it, amounts as strings, instants in ISO 8601."""

from __future__ import annotations

import functools
import uuid
from datetime import datetime, timedelta

from app.events.rules import NewEvent
from app.units import cents_to_usd, credits_text

PLAN_CHANGED = "subscription.plan_changed"
RENEWED = "subscription.renewed"
TRIAL_ENDED = "subscription.trial_ended"
RUN_ENDED = "run.ended"
TOPUP_PURCHASED = "topup.purchased"
ENDPOINT_DISABLED = "webhook.endpoint_disabled"
TEST_PING = "test.ping"
# Every type a client may subscribe to or filter on (API.md).
ALL_TYPES = (
    "credits.threshold_crossed",
    "credits.depleted",
    "actions.threshold_crossed",
    "actions.exhausted",
    "workbook.spend_limit_reached",
    "run.budget_exhausted",
    RUN_ENDED,
    RENEWED,
    PLAN_CHANGED,
    "subscription.trial_ending",
    TRIAL_ENDED,
    TOPUP_PURCHASED,
    ENDPOINT_DISABLED,
    TEST_PING,
)


def plan_changed(
    from_plan: str,
    to_plan: str,
    credit_tier: int | None,
    effective_at: datetime,
    immediate: bool,
) -> NewEvent:
    return NewEvent(
        PLAN_CHANGED,
        {
            "fromPlan": from_plan,
            "toPlan": to_plan,
            "creditTier": credit_tier,
            "effectiveAt": effective_at.isoformat(),
            "immediate": immediate,
        },
    )


def _instant(at: datetime) -> str:
    """A sweep announces thousands of renewals of a few distinct periods: each spelled once.
    Keyed by the offset too: equal instants in two zones are equal keys, spelled differently."""
    return _spelled(at, at.utcoffset())


@functools.lru_cache(maxsize=1024)
def _spelled(at: datetime, _offset: timedelta | None) -> str:
    return at.isoformat()


def renewed(
    period_start: datetime, period_end: datetime, granted: int, rolled_over: int, expired: int
) -> NewEvent:
    return NewEvent(
        RENEWED,
        {
            "periodStart": _instant(period_start),
            "periodEnd": _instant(period_end),
            "granted": credits_text(granted),
            "rolledOver": credits_text(rolled_over),
            "expired": credits_text(expired),
        },
    )


def trial_ended(plan: str) -> NewEvent:
    return NewEvent(TRIAL_ENDED, {"plan": plan})


def run_ended(run_id: uuid.UUID, status: str, spent: int, released: int) -> NewEvent:
    return NewEvent(
        RUN_ENDED,
        {
            "runId": str(run_id),
            "status": status,
            "spent": credits_text(spent),
            "released": credits_text(released),
        },
    )


def topup_purchased(topup_id: uuid.UUID, credits: int, price_cents: int, auto: bool) -> NewEvent:
    return NewEvent(
        TOPUP_PURCHASED,
        {
            "topUpId": str(topup_id),
            "credits": credits_text(credits),
            "price": str(cents_to_usd(price_cents)),
            "auto": auto,
        },
    )
