"""Checks on client input that raise `InvalidInput` with a message saying what is wrong."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

from app.errors import InvalidInput, NotFound
from app.units import credits_to_units

MAX_IDEMPOTENCY_KEY = 255  # R13
MAX_NAME = 200
MAX_TABLE_ID = 200
MAX_REASON = 500
MAX_RESULTS = 1_000_000  # per usage report
MAX_TOKENS = 100_000_000
MAX_LABEL = 64  # provider, dataType, model, plan codes
MAX_CREDITS = 10**12  # far above any real amount, far below the 64-bit columns
# Instants a client may send: wide enough for any real history and any `--now` replay, narrow
# enough that a year or a 400-day range added to one never leaves what datetime can hold.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2200, 1, 1, tzinfo=UTC)


def text(value: str | None, field: str, limit: int) -> str | None:
    """Free text a client sends: bounded, without NUL (PostgreSQL cannot store it), and
    encodable (JSON's "\\ud800" is a lone surrogate, which no database driver can send)."""
    if value is None:
        return None
    if len(value) > limit:
        raise InvalidInput(f"{field} is {len(value)} characters long; at most {limit}")
    if "\x00" in value:
        raise InvalidInput(f"{field} must not contain NUL characters")
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise InvalidInput(f"{field} must be Unicode text without lone surrogates") from None
    return value


def idempotency_key(key: str) -> str:
    if not key:
        raise InvalidInput("idempotencyKey must not be empty")
    text(key, "idempotencyKey", MAX_IDEMPOTENCY_KEY)
    return key


def name(value: str, field: str = "name") -> str:
    stripped = value.strip()
    if not stripped:
        raise InvalidInput(f"{field} must not be empty")
    text(stripped, field, MAX_NAME)
    return stripped


def label(value: str | None, field: str) -> str | None:
    return text(value, field, MAX_LABEL)


def whole_number(value: int, field: str, low: int, high: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(f"{field} must be a whole number")
    if not low <= value <= high:
        raise InvalidInput(f"{field} must be between {low:,} and {high:,}; got {value:,}")
    return value


def object_id(value: str | uuid.UUID, what: str) -> uuid.UUID:
    """An id that names nothing (malformed included) is NOT_FOUND, as for another tenant's."""
    if isinstance(value, uuid.UUID):
        return value
    try:
        return uuid.UUID(str(value))
    except ValueError:
        raise NotFound(f"{what} {value} not found") from None


def credit_amount(value: Decimal, field: str) -> int:
    """A non-negative Data Credit amount, in units; at most 4 decimal places (R1)."""
    if value < 0:
        raise InvalidInput(f"{field} must not be negative; got {value}")
    if value > MAX_CREDITS:
        raise InvalidInput(f"{field} must be at most {MAX_CREDITS:,} Data Credits; got {value}")
    try:
        return credits_to_units(value)
    except ValueError:
        raise InvalidInput(f"{field} has more than 4 decimal places: {value}") from None


def instant(value: datetime, field: str) -> datetime:
    """An instant a client sends, in UTC: it must carry a zone (a bare time is ambiguous) and
    lie in [EARLIEST, LATEST)."""
    if value.utcoffset() is None:
        raise InvalidInput(
            f"{field} needs a time zone, such as 2025-01-01T00:00Z; got {value.isoformat()}"
        )
    try:
        moment = value.astimezone(UTC)
    except OverflowError:  # year 1 with a positive offset, year 9999 with a negative one
        moment = None
    if moment is None or not EARLIEST <= moment < LATEST:
        years = f"{EARLIEST.year} and {LATEST.year - 1}"
        raise InvalidInput(f"{field} must lie between {years}; got {value.isoformat()}")
    return moment


def parse_instant(value: str, field: str) -> datetime:
    """An ISO 8601 instant written as text (the DateTime scalar, the CSV endpoint's query)."""
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(
            f"{field} is not an ISO 8601 instant: {value!r} (write one such as 2025-01-01T00:00Z)"
        ) from None
    return instant(parsed, field)
