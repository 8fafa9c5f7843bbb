"""API keys: generated secrets stored as SHA-256 hashes, resolved to a principal."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from app.db import connection, fetch_one
from app.errors import Forbidden, Unauthenticated
from app.kinds import Role
from app.requests import OPERATOR, Actor

KEY_PREFIX = "tly_"
MAX_TOKEN_LENGTH = 512


@dataclass(frozen=True)
class Principal:
    """Who is calling: the operator, or a key of one workspace with a role."""

    workspace_id: uuid.UUID | None = None
    role: Role | None = None
    key_id: uuid.UUID | None = None
    operator: bool = False
    key_name: str | None = None

    @property
    def actor(self) -> Actor:
        """Who changes what this principal changes, for the audit log (R39)."""
        return OPERATOR if self.operator else Actor(self.key_name or "", self.key_id)

    def require_workspace(self) -> uuid.UUID:
        if self.workspace_id is None:
            raise Forbidden("the operator key belongs to no workspace; use a workspace API key")
        return self.workspace_id

    def require_admin(self) -> uuid.UUID:
        workspace_id = self.require_workspace()
        if self.role is not Role.ADMIN:
            raise Forbidden("this operation needs an ADMIN key; this key is a MEMBER key")
        return workspace_id

    def require_operator(self) -> None:
        if not self.operator:
            raise Forbidden("this operation needs the operator key")


def new_secret() -> str:
    return KEY_PREFIX + secrets.token_urlsafe(32)


def hash_secret(secret: str) -> str:
    # Secrets are 256 random bits, so a fast hash is enough (no dictionary to guess from).
    return hashlib.sha256(secret.encode()).hexdigest()


# A key's lookup, spelled once: `authenticate` sends it alone, and a request's first domain
# read may carry it along (`Bearer`) to save the round trip. key_hash is unique.
KEY_COLUMNS = (
    "k.id AS key_id, k.workspace_id AS key_workspace_id, k.role AS key_role, k.name AS key_name"
)


def key_matches(param: int) -> str:
    """The condition on `api_key k` that `$param`, a secret's hash, names a live key."""
    return f"k.key_hash = ${param} AND k.revoked_at IS NULL"


def key_hash_of(token: str | None, operator_key: str | None) -> str | None:
    """The hash a token is looked up by; None for the operator's key, which is no row.
    No token, or one too long to be a key, is refused before anything is read."""
    if not token:
        raise Unauthenticated("missing API key: send Authorization: Bearer <api key>")
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("malformed API key")
    if operator_key and hmac.compare_digest(token.encode(), operator_key.encode()):
        return None
    return hash_secret(token)


def principal_of(row: Mapping[str, Any] | None) -> Principal:
    """The principal of a row read with KEY_COLUMNS; no row: the key is unknown or revoked."""
    if row is None:
        raise Unauthenticated("unknown or revoked API key")
    return Principal(
        workspace_id=uuid.UUID(str(row["key_workspace_id"])),
        role=Role(row["key_role"]),
        key_id=uuid.UUID(str(row["key_id"])),
        key_name=row["key_name"],
    )


async def look_up(key_hash: str) -> Principal:
    # Plain SQL, not the ORM's query builder: every request authenticates, and that builder
    # cost about 200 µs of CPU a read more.
    query = f"SELECT {KEY_COLUMNS} FROM api_key k WHERE {key_matches(1)}"
    return principal_of(await fetch_one(connection(), query, key_hash))


async def authenticate(token: str | None, operator_key: str | None) -> Principal:
    key_hash = key_hash_of(token, operator_key)
    return Principal(operator=True) if key_hash is None else await look_up(key_hash)


@dataclass(frozen=True)
class Bearer:
    """A workspace key not looked up yet. The domain read a request starts with anyway may
    check it in the same statement (KEY_COLUMNS, `key_matches`) and hand the principal to
    `accepted`; a path that must know the caller first calls `principal()`."""

    key_hash: str
    accepted: Callable[[Principal], object]  # what it returns is not used

    async def principal(self) -> Principal:
        principal = await look_up(self.key_hash)
        self.accepted(principal)
        return principal
