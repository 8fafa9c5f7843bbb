"""The request context: settings, the request's clock reading, and the caller (lazily).

Over a WebSocket (subscriptions) one context serves the whole connection: the key comes from
connection_init's payload ({"Authorization": "Bearer <key>"}), and `refresh` gives each
update a new clock reading and new DataLoaders, so nothing read for one update is served
stale in the next."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import strawberry
from starlette.requests import Request
from starlette.websockets import WebSocket, WebSocketState

from app.clock import utcnow
from app.config import Settings
from app.errors import Unauthenticated
from app.requests import set_actor
from app.workspaces.auth import Bearer, Principal, authenticate, key_hash_of
from graphql_schema.loaders import Loaders
from graphql_schema.request_context import note


@dataclass
class Context:
    request: Request | None
    settings: Settings
    now: datetime = field(default_factory=utcnow)
    loaders: Loaders = field(default_factory=Loaders)
    _principal: Principal | None = None
    websocket: WebSocket | None = None
    # Set by strawberry from connection_init's payload (graphql-transport-ws).
    connection_params: dict[str, Any] | None = None

    def _authorization(self) -> str:
        if self.request is None:
            value = (self.connection_params or {}).get("Authorization")
            return value if isinstance(value, str) else ""
        headers = self.request.headers.getlist("authorization")
        if len(headers) > 1:  # which one a proxy or a framework reads is anyone's guess
            raise Unauthenticated(f"send one Authorization header; this request has {len(headers)}")
        return headers[0] if headers else ""

    def _bearer(self) -> str | None:
        scheme, _, token = self._authorization().partition(" ")
        return token.strip() if scheme.lower() == "bearer" else None

    def refresh(self) -> None:
        """A new clock reading and new DataLoaders (a subscription's next update)."""
        self.now = utcnow()
        self.loaders = Loaders()

    async def close_socket(self, code: int, reason: str) -> None:
        """Close the WebSocket this context serves, unless it is closed already."""
        socket = self.websocket
        if socket is not None and socket.application_state == WebSocketState.CONNECTED:
            await socket.close(code=code, reason=reason)

    async def principal(self) -> Principal:
        if self._principal is None:
            return self._accept(await authenticate(self._bearer(), self.settings.operator_key))
        set_actor(self._principal.actor)  # in the calling task, for the audit log (R39)
        return self._principal

    def _accept(self, principal: Principal) -> Principal:
        """The request's caller from now on: its workspace for the log line, its actor for
        the audit log (R39), set in the calling task."""
        self._principal = principal
        workspace = principal.workspace_id
        note(workspace_id=None if workspace is None else str(workspace))
        set_actor(principal.actor)
        return principal

    async def caller(self) -> uuid.UUID | Bearer:
        """The caller's workspace, as `workspace_id`; or, while its key is yet to be looked
        up, the key itself, for a domain read that checks it on the way (one round trip
        less: `app.workspaces.auth.Bearer`). The operator's key and a missing one are
        answered here, as `workspace_id` answers them."""
        if self._principal is None:
            key_hash = key_hash_of(self._bearer(), self.settings.operator_key)
            if key_hash is not None:
                return Bearer(key_hash, self._accept)
        return await self.workspace_id()

    async def key_still_accepted(self) -> bool:
        """Whether the key this context was opened with is still accepted (not revoked)."""
        try:
            await authenticate(self._bearer(), self.settings.operator_key)
        except Unauthenticated:
            return False
        return True

    async def workspace_id(self) -> uuid.UUID:
        return (await self.principal()).require_workspace()

    async def admin_workspace_id(self) -> uuid.UUID:
        return (await self.principal()).require_admin()


Info = strawberry.Info[Context, None]
