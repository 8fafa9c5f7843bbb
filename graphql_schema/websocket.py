"""Subscriptions over graphql-transport-ws on /graphql: strawberry's handler, with what Tally adds.

- The key: connection_init's payload carries {"Authorization": "Bearer <key>"}, checked with the
  same `authenticate` as HTTP. No key, a wrong or revoked one, or the operator's (it has no
  workspace) closes the socket with 4403 before anything is sent; a database that does not
  answer closes it with 1013 (try again later), so a client does not take it for a bad key.
- Only subscriptions: queries and mutations go to POST /graphql, where their limits, logs and
  metrics are (an `error` message says so).
- Errors leave with their code, as over HTTP (graphql_schema.errors): unexpected ones are
  logged and masked. An operation refused before its first result (a bad argument, the key's
  subscription cap) gets the protocol's `error` message, not a `next`.
- Keep-alive: a connection that sent nothing for TALLY_WS_PING_INTERVAL seconds gets a `ping`
  message (strawberry's handler only answers the client's pings), which keeps proxies from
  timing it out and lets a browser client notice a dead connection; uvicorn's WebSocket
  protocol pings still catch a peer that is gone.
- Once the socket is closed from Tally's side (a revoked key), nothing more is sent on it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator, Mapping
from typing import Any, cast

from graphql import GraphQLError
from starlette.websockets import WebSocketState
from strawberry.asgi import ASGIWebSocketAdapter
from strawberry.exceptions import ConnectionRejectionError
from strawberry.http.exceptions import WebSocketDisconnected
from strawberry.schema.exceptions import InvalidOperationTypeError
from strawberry.subscriptions.protocols.graphql_transport_ws.handlers import (
    BaseGraphQLTransportWSHandler,
)
from strawberry.subscriptions.protocols.graphql_transport_ws.types import Message
from strawberry.types.execution import ExecutionResult, PreExecutionError
from strawberry.types.graphql import OperationType
from strawberry.utils.aio import aclosing

from app.config import Settings
from app.db import is_unavailable
from app.errors import ErrorCode, Forbidden, Unauthenticated
from graphql_schema.context import Context
from graphql_schema.errors import UNAVAILABLE_MESSAGE, client_error, forget_tracebacks, log_errors

TRY_AGAIN_LATER = 1013
ONLY_SUBSCRIPTIONS = (
    "only subscriptions are served over the WebSocket; send queries and mutations to POST /graphql"
)


async def accept_key(context: Context) -> None:
    """connection_init's key, or ConnectionRejectionError (strawberry closes with 4403)."""
    try:
        principal = await context.principal()
        principal.require_workspace()
    except (Unauthenticated, Forbidden):
        raise ConnectionRejectionError() from None
    except Exception as error:
        if not is_unavailable(error):
            raise
        await context.close_socket(TRY_AGAIN_LATER, UNAVAILABLE_MESSAGE)
        raise ConnectionRejectionError() from None


def _coded(result: ExecutionResult, first: bool) -> ExecutionResult:
    errors = result.errors or []
    if isinstance(result, PreExecutionError) and _closes(errors[0]):
        return result  # strawberry closes the socket with 4400 and the reason
    if any(isinstance(e.original_error, InvalidOperationTypeError) for e in errors):
        refused = GraphQLError(ONLY_SUBSCRIPTIONS, extensions={"code": ErrorCode.BAD_REQUEST.value})
        return PreExecutionError(data=None, errors=[refused], extensions=result.extensions)
    log_errors(errors)
    coded = [client_error(e) for e in errors]
    forget_tracebacks(errors)
    if first and result.data is None:  # refused before it started: the protocol's `error`
        return PreExecutionError(data=None, errors=coded, extensions=result.extensions)
    return ExecutionResult(data=result.data, errors=coded, extensions=result.extensions)


def _closes(error: GraphQLError) -> bool:
    return BaseGraphQLTransportWSHandler._get_pre_execution_close_reason(error) is not None


async def _coded_stream(source: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    async with aclosing(source):
        first = True
        async for result in source:
            if isinstance(result, ExecutionResult) and result.errors:
                result = _coded(result, first)
            first = False
            yield result


class _SubscriptionsOnly:
    """The schema, as the handler sees it: subscriptions only, errors coded."""

    def __init__(self, schema: Any) -> None:
        self._schema = schema

    async def stream(self, query: str | None, **kwargs: Any) -> AsyncGenerator[Any, None]:
        source = await self._schema.stream(
            query, allowed_operation_types=(OperationType.SUBSCRIPTION,), **kwargs
        )
        return _coded_stream(source)


class LiveSocketAdapter(ASGIWebSocketAdapter):
    """Sends nothing once the socket is closed, and closes it once."""

    async def send_json(self, message: Mapping[str, object]) -> None:
        if self.ws.application_state == WebSocketState.CONNECTED:
            await super().send_json(message)

    async def close(self, code: int, reason: str) -> None:
        if self.ws.application_state == WebSocketState.CONNECTED:
            await super().close(code, reason)


class LiveSocketHandler(BaseGraphQLTransportWSHandler[Context, None]):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.schema = cast(Any, _SubscriptionsOnly(self.schema))
        settings: Settings = cast(Any, self.view).settings
        self.ping_interval = settings.ws_ping_interval
        self._loop = asyncio.get_running_loop()
        self._sent_at = self._loop.time()
        self._pinger: asyncio.Task[None] | None = None

    def on_request_accepted(self) -> None:
        super().on_request_accepted()
        self._pinger = asyncio.create_task(self._ping_while_idle())

    async def shutdown(self) -> None:
        if self._pinger is not None:
            self._pinger.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._pinger
        await super().shutdown()

    async def send_message(self, message: Message) -> None:
        self._sent_at = self._loop.time()
        await super().send_message(message)

    async def _ping_while_idle(self) -> None:
        with contextlib.suppress(WebSocketDisconnected):
            while True:
                idle = self._loop.time() - self._sent_at
                if idle < self.ping_interval:
                    await asyncio.sleep(self.ping_interval - idle)
                elif self.connection_acknowledged:
                    await self.send_message({"type": "ping"})
                else:  # connection_init's own timeout handles a client that never sends it
                    await asyncio.sleep(self.ping_interval)
