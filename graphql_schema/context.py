"""The request context: settings, the request's clock reading, and the caller (lazily)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime

import strawberry
from starlette.requests import Request

from app.clock import utcnow
from app.config import Settings
from app.errors import Unauthenticated
from app.requests import set_actor
from app.workspaces.auth import Principal, authenticate
from graphql_schema.loaders import Loaders
from graphql_schema.request_context import note


@dataclass
class Context:
    request: Request | None
    settings: Settings
    now: datetime = field(default_factory=utcnow)
    loaders: Loaders = field(default_factory=Loaders)
    _principal: Principal | None = None

    def _bearer(self) -> str | None:
        if self.request is None:
            return None
        headers = self.request.headers.getlist("authorization")
        if len(headers) > 1:  # which one a proxy or a framework reads is anyone's guess
            raise Unauthenticated(f"send one Authorization header; this request has {len(headers)}")
        scheme, _, token = (headers[0] if headers else "").partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None

    async def principal(self) -> Principal:
        if self._principal is None:
            self._principal = await authenticate(self._bearer(), self.settings.operator_key)
            workspace = self._principal.workspace_id
            note(workspace_id=None if workspace is None else str(workspace))
        set_actor(self._principal.actor)  # in the calling task, for the audit log (R39)
        return self._principal

    async def workspace_id(self) -> uuid.UUID:
        return (await self.principal()).require_workspace()

    async def admin_workspace_id(self) -> uuid.UUID:
        return (await self.principal()).require_admin()


Info = strawberry.Info[Context, None]
