"""Errors the domain raises, each with a stable code from API.md.

`Refused` is an outcome of a rule (returned to clients as a `Refusal`); the others are request
errors (returned as GraphQL errors with `extensions.code`).
"""

from __future__ import annotations

from enum import StrEnum


class ErrorCode(StrEnum):
    ACTIONS_EXHAUSTED = "ACTIONS_EXHAUSTED"
    INSUFFICIENT_DATA_CREDITS = "INSUFFICIENT_DATA_CREDITS"
    WORKBOOK_SPEND_LIMIT_REACHED = "WORKBOOK_SPEND_LIMIT_REACHED"
    RUN_BUDGET_EXCEEDED = "RUN_BUDGET_EXCEEDED"
    ACTIONS_NOT_PURCHASABLE = "ACTIONS_NOT_PURCHASABLE"
    TOP_UP_EXCEEDS_ROLLOVER_LIMIT = "TOP_UP_EXCEEDS_ROLLOVER_LIMIT"
    PLAN_FEATURE_UNAVAILABLE = "PLAN_FEATURE_UNAVAILABLE"
    RUN_STOPPED = "RUN_STOPPED"
    IDEMPOTENCY_KEY_REUSED = "IDEMPOTENCY_KEY_REUSED"
    ALREADY_REFUNDED = "ALREADY_REFUNDED"
    NOT_FOUND = "NOT_FOUND"
    FORBIDDEN = "FORBIDDEN"
    UNAUTHENTICATED = "UNAUTHENTICATED"
    INVALID_INPUT = "INVALID_INPUT"
    QUOTA_EXCEEDED = "QUOTA_EXCEEDED"  # a per-workspace cap (workbooks) is reached
    BAD_REQUEST = "BAD_REQUEST"  # the request as a whole is malformed or too costly
    PAYLOAD_TOO_LARGE = "PAYLOAD_TOO_LARGE"
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"  # the database is unreachable; retry


class DomainError(Exception):
    code: ErrorCode

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Refused(DomainError):
    """A rule said no. Nothing changed; the request may be retried once the cause is gone."""

    def __init__(self, code: ErrorCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class InvalidInput(DomainError):
    code = ErrorCode.INVALID_INPUT


class NotFound(DomainError):
    code = ErrorCode.NOT_FOUND


class Forbidden(DomainError):
    code = ErrorCode.FORBIDDEN


class Unauthenticated(DomainError):
    code = ErrorCode.UNAUTHENTICATED


class QuotaExceeded(DomainError):
    code = ErrorCode.QUOTA_EXCEEDED


class BadRequest(DomainError):
    code = ErrorCode.BAD_REQUEST
