"""What R36 decides, without a database: which URLs and event types an endpoint may have, what
an attempt's answer means, when the next attempt is due, and when an endpoint is disabled."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from urllib.parse import SplitResult, urlsplit

from app.errors import InvalidInput
from app.events.types import ALL_TYPES

# R36: the delays before each retry (seconds); each ±10%. TALLY_WEBHOOK_RETRY_SCHEDULE replaces it.
RETRY_SCHEDULE: tuple[float, ...] = (5, 300, 1800, 7200, 18000, 36000, 36000)
JITTER = 0.10
DISABLE_AFTER = timedelta(days=5)  # an endpoint whose every delivery failed this long
ROTATION_OVERLAP = timedelta(hours=24)  # the previous secret still signs this long
MAX_ENDPOINTS = 20  # per workspace, deleted ones not counted
MAX_URL = 2_048
MAX_DESCRIPTION = 500
MAX_ERROR = 500  # characters of an attempt's error kept

# API.md's event types (app.events.types): an endpoint subscribes to some of them, or to all.
EVENT_TYPES: tuple[str, ...] = ALL_TYPES


class DeliveryStatus(StrEnum):
    PENDING = "PENDING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"


def check_url(url: str, allow_private: bool) -> str:
    """An endpoint's URL: https with a host (http too when private addresses are allowed),
    at most 2,048 characters. A literal address must be public unless allowed; a name is
    resolved and checked at each delivery (addresses.py)."""
    if len(url) > MAX_URL:
        raise InvalidInput(f"url is {len(url):,} characters long; at most {MAX_URL:,}")
    if not url.isprintable() or " " in url:
        raise InvalidInput("url must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  # raises ValueError for a port that is not a number
    except ValueError as error:
        raise InvalidInput(f"url is not a URL: {error}") from None
    schemes = ("https", "http") if allow_private else ("https",)
    if parts.scheme not in schemes:
        allowed = "https (or http with TALLY_WEBHOOK_ALLOW_PRIVATE=on)"
        raise InvalidInput(f"url must be {allowed}; got {parts.scheme or 'no'} scheme")
    if not parts.hostname:
        raise InvalidInput("url must name a host")
    if parts.username is not None or parts.password is not None:
        raise InvalidInput("url must not carry credentials; the signature authenticates Tally")
    _check_literal_address(parts, allow_private)
    return url


def _check_literal_address(parts: SplitResult, allow_private: bool) -> None:
    host = parts.hostname or ""
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        if host.rstrip(".").lower() == "localhost" and not allow_private:
            raise InvalidInput("url must be a public address; localhost is not") from None
        return
    if not address.is_global and not allow_private:
        raise InvalidInput(f"url must be a public address; {host} is not")


def event_types(types: Iterable[str] | None) -> str:
    """The stored form: "" (every type) or ",a,b," in API.md's order, without repeats."""
    if types is None:
        return ""
    wanted = set(types)
    unknown = sorted(wanted.difference(EVENT_TYPES))
    if unknown:
        raise InvalidInput(
            f"unknown event type {unknown[0][:64]!r}; known: {', '.join(EVENT_TYPES)}"
        )
    if not wanted:
        return ""
    return "," + ",".join(t for t in EVENT_TYPES if t in wanted) + ","


def event_type_list(stored: str) -> list[str]:
    """The types an endpoint subscribes to; empty: every type."""
    return [t for t in stored.split(",") if t]


def description(value: str | None) -> str | None:
    if value is not None and len(value) > MAX_DESCRIPTION:
        raise InvalidInput(
            f"description is {len(value):,} characters long; at most {MAX_DESCRIPTION}"
        )
    return value


class Verdict(StrEnum):
    SUCCEEDED = "SUCCEEDED"  # a 2xx answer
    GONE = "GONE"  # 410: the endpoint is disabled at once
    FAILED = "FAILED"  # anything else: retried on the schedule


@dataclass(frozen=True)
class AttemptResult:
    status: int | None  # the HTTP status, or None when no answer came
    error: str | None  # why it failed, when it did
    duration_ms: int

    @property
    def verdict(self) -> Verdict:
        if self.status is not None and 200 <= self.status < 300 and self.error is None:
            return Verdict.SUCCEEDED
        if self.status == 410:
            return Verdict.GONE
        return Verdict.FAILED


def status_error(status: int) -> str | None:
    """What a non-2xx answer is recorded as."""
    if 200 <= status < 300:
        return None
    if 300 <= status < 400:
        return f"answered {status}: redirects are not followed"
    return f"answered {status}"


def next_attempt_at(
    attempts: int, schedule: Sequence[float], now: datetime, rng: random.Random
) -> datetime | None:
    """After the `attempts`-th attempt failed: when the next one is due, or None when the
    schedule has run out (the delivery is FAILED). Each delay varies by ±10%."""
    if attempts > len(schedule):
        return None
    delay = schedule[attempts - 1] * (1 + rng.uniform(-JITTER, JITTER))
    return now + timedelta(seconds=delay)


def lease_seconds(timeout: float) -> float:
    """How long a claimed delivery is kept from other workers: past the whole attempt (the
    address lookup and the request share `timeout`) and the writing of its outcome. A process
    killed mid-delivery leaves it claimed this long, then it is tried again."""
    return 2 * timeout + 10


def failing_too_long(failing_since: datetime | None, now: datetime) -> bool:
    return failing_since is not None and now - failing_since >= DISABLE_AFTER


def failing_reason(failing_since: datetime) -> str:
    return f"every delivery has failed since {failing_since.isoformat()} (5 days)"


def gone_reason(status: int) -> str:
    return f"the endpoint answered {status} Gone"


def clip(error: str) -> str:
    return error if len(error) <= MAX_ERROR else error[: MAX_ERROR - 1] + "…"
