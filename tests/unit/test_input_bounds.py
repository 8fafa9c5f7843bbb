"""Pure input checks: instants (zone and range) and R23's bounds on `sentAt`."""

from datetime import UTC, datetime, timedelta, timezone

import pytest

from app.errors import InvalidInput
from app.usage.rules import check_sent_at
from app.validation import instant, parse_instant

NOW = datetime(2025, 1, 31, 10, 0, tzinfo=UTC)
STARTED = datetime(2025, 1, 31, 9, 0, tzinfo=UTC)
PLUS_5 = timezone(timedelta(hours=5))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (datetime(2025, 1, 1, 5, 0, tzinfo=PLUS_5), datetime(2025, 1, 1, 0, 0, tzinfo=UTC)),
        (datetime(1970, 1, 1, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC)),
        (datetime(2199, 12, 31, 23, 59, tzinfo=UTC), datetime(2199, 12, 31, 23, 59, tzinfo=UTC)),
        (datetime(2025, 1, 1), "needs a time zone"),
        (datetime(1969, 12, 31, 23, 59, tzinfo=UTC), "must lie between 1970 and 2199"),
        (datetime(2200, 1, 1, tzinfo=UTC), "must lie between 1970 and 2199"),
        (datetime(1, 1, 1, tzinfo=PLUS_5), "must lie between"),  # astimezone would overflow
        (datetime(9999, 12, 31, 23, tzinfo=timezone(-timedelta(hours=5))), "must lie between"),
    ],
)
def test_instant_needs_a_zone_and_a_sane_year(value, expected):
    if isinstance(expected, datetime):
        assert instant(value, "at") == expected
        assert instant(value, "at").tzinfo is UTC
    else:
        with pytest.raises(InvalidInput, match=expected):
            instant(value, "at")


@pytest.mark.parametrize(
    ("text", "reason"),
    [("yesterday", "is not an ISO 8601 instant"), ("2025-02-30T00:00Z", "is not an ISO 8601")],
)
def test_parse_instant_names_the_field(text, reason):
    with pytest.raises(InvalidInput, match=f"^from {reason}"):
        parse_instant(text, "from")


@pytest.mark.parametrize(
    ("sent_at", "started", "error"),
    [
        (STARTED, STARTED, None),  # the run's own start
        (NOW + timedelta(minutes=5), STARTED, None),  # a client's clock a little fast
        (NOW + timedelta(minutes=5, microseconds=1), STARTED, "more than 5 minutes past"),
        (STARTED - timedelta(microseconds=1), STARTED, "before the run started"),
        (datetime(2000, 1, 1, tzinfo=UTC), STARTED, "before the run started"),
        (datetime(2000, 1, 1, tzinfo=UTC), None, None),  # no run: nothing to be before
        (NOW + timedelta(hours=1), None, "more than 5 minutes past"),
    ],
)
def test_r23_sent_at_lies_between_the_runs_start_and_five_minutes_past_now(sent_at, started, error):
    if error is None:
        check_sent_at(sent_at, started, NOW)
    else:
        with pytest.raises(InvalidInput, match=error):
            check_sent_at(sent_at, started, NOW)
