"""Idempotent requests (R13): a client key claimed in the same transaction as the effect.

The claim is the first write of the transaction, so a concurrent retry of the same key waits on
the unique index until the first finishes: if that one committed, the retry replays its result;
if it was refused (rolled back, leaving no trace), the retry proceeds on its own.
"""

from __future__ import annotations

import functools
import hashlib
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import fields
from datetime import UTC, datetime
from typing import Any, TypeVar

from tortoise.backends.base.client import BaseDBAsyncClient
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from app.errors import ErrorCode, Refused
from app.models import IdempotencyRecord

T = TypeVar("T")


class _KeyTaken(Exception):
    pass


def _canonical(value: Any) -> str:
    """One spelling per value: an instant in UTC, whatever offset the client wrote."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    return str(value)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...] | None:
    """A dataclass's field names; None for any other type. Cached per type: `is_dataclass`
    on every value was a fifth of a batch's domain time."""
    if isinstance(cls, type) and hasattr(cls, "__dataclass_fields__"):
        return tuple(f.name for f in fields(cls))
    return None


def _encodable(value: Any) -> Any:
    """What the encoder cannot write itself: a dataclass as the dict of its fields (as
    `dataclasses.asdict` gives, without its deep copies), anything else canonically spelled.
    The JSON is the one fingerprints were always taken of, so those recorded before match."""
    cls: type = type(value)  # `type`, which mypy knows is hashable; `type[Any]` it does not
    names = _field_names(cls)
    if names is not None:
        return {name: getattr(value, name) for name in names}
    return _canonical(value)


def request_hash(operation: str, request: Any) -> str:
    """A fingerprint of what was asked (parsed, not as typed), so a reused key with another
    request is caught and a true retry is not."""
    cls: type = type(request)
    body = _encodable(request) if _field_names(cls) is not None else dict(request)
    body.pop("idempotency_key", None)
    text = _encode({"operation": operation, "request": body})
    return hashlib.sha256(text.encode()).hexdigest()


# Nested dataclasses reach `_encodable` from the C encoder, so no Python walk of the request
# precedes it.
_ENCODER = json.JSONEncoder(sort_keys=True, default=_encodable)


def _one_encoder() -> Callable[[Any], str]:
    """`_ENCODER.encode`, with the stdlib's C encoder built once instead of on every call
    (half of the 6 µs a fingerprint took). The same arguments `JSONEncoder.iterencode` passes
    for `_ENCODER`, but no circular-reference markers: a request is a tree of dataclasses, and
    a cycle would still end in an error (RecursionError instead of ValueError)."""
    make = getattr(json.encoder, "c_make_encoder", None)  # not in typeshed
    if make is None:  # an interpreter without the C accelerator
        return _ENCODER.encode
    e = _ENCODER
    assert e.ensure_ascii and e.indent is None
    iterencode = make(
        None,  # markers
        e.default,
        json.encoder.encode_basestring_ascii,
        e.indent,
        e.key_separator,
        e.item_separator,
        e.sort_keys,
        e.skipkeys,
        e.allow_nan,
    )
    return lambda value: "".join(iterencode(value, 0))


_encode = _one_encoder()


async def _claim(
    conn: BaseDBAsyncClient,
    workspace_id: uuid.UUID,
    key: str,
    operation: str,
    fingerprint: str,
    result_id: uuid.UUID,
    now: datetime,
) -> None:
    try:
        await IdempotencyRecord.create(
            using_db=conn,
            workspace_id=workspace_id,
            key=key,
            operation=operation,
            request_hash=fingerprint,
            result_id=str(result_id),
            created_at=now,
        )
    except IntegrityError:
        raise _KeyTaken from None


async def _first_result_id(
    workspace_id: uuid.UUID, key: str, operation: str, fingerprint: str
) -> str:
    record = await IdempotencyRecord.get(workspace_id=workspace_id, key=key)
    if record.operation != operation or record.request_hash != fingerprint:
        raise key_reused(key)
    return record.result_id


def key_reused(key: str) -> Refused:
    return Refused(
        ErrorCode.IDEMPOTENCY_KEY_REUSED,
        f"idempotency key {key!r} was already used for a different request",
    )


async def replay_recorded(
    workspace_id: uuid.UUID,
    key: str,
    operation: str,
    request: Any,
    replay: Callable[[str], Awaitable[T]],
) -> T | None:
    """The first result of this exact request under `key`, or None when there is none."""
    record = await IdempotencyRecord.get_or_none(workspace_id=workspace_id, key=key)
    if record is None:
        return None
    if record.operation != operation or record.request_hash != request_hash(operation, request):
        return None
    return await replay(record.result_id)


async def run_once(
    *,
    workspace_id: uuid.UUID,
    key: str,
    operation: str,
    request: Any,
    now: datetime,
    effect: Callable[[BaseDBAsyncClient, uuid.UUID], Awaitable[T]],
    replay: Callable[[str], Awaitable[T]],
) -> T:
    """Run `effect` in one transaction under the client's key, or replay the first result.

    `effect` gets the transaction and the id its result must have (recorded with the key).
    """
    fingerprint = request_hash(operation, request)
    result_id = uuid.uuid4()
    try:
        async with in_transaction() as conn:
            await _claim(conn, workspace_id, key, operation, fingerprint, result_id, now)
            return await effect(conn, result_id)
    except _KeyTaken:
        pass
    return await replay(await _first_result_id(workspace_id, key, operation, fingerprint))
