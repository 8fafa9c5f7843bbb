"""API keys: generated secrets stored as SHA-256 hashes, resolved to a principal."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass

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


async def authenticate(token: str | None, operator_key: str | None) -> Principal:
    if not token:
        raise Unauthenticated("missing API key: send Authorization: Bearer <api key>")
    if len(token) > MAX_TOKEN_LENGTH:
        raise Unauthenticated("malformed API key")
    if operator_key and hmac.compare_digest(token.encode(), operator_key.encode()):
        return Principal(operator=True)
    # Plain SQL, not the ORM's query builder: every request authenticates, and that builder
    # cost about 200 µs of CPU a read more. key_hash is unique.
    key = await fetch_one(
        connection(),
        "SELECT id, workspace_id, role, name FROM api_key"
        " WHERE key_hash = $1 AND revoked_at IS NULL",
        hash_secret(token),
    )
    if key is None:
        raise Unauthenticated("unknown or revoked API key")
    return Principal(
        workspace_id=uuid.UUID(str(key["workspace_id"])),
        role=Role(key["role"]),
        key_id=uuid.UUID(str(key["id"])),
        key_name=key["name"],
    )
