"""A graphql-transport-ws client for tests and benches: a few messages over `websockets`."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

PROTOCOL = "graphql-transport-ws"
WORKSPACE_UPDATED = """subscription { workspaceUpdated {
  id actions { used } dataCredits { balance available } } }"""
EVENTS = """subscription($t: [String!]) { events(types: $t) { id type data } }"""


def ws_url(base: str) -> str:
    """The socket's URL for a server's http://host:port base."""
    return base.replace("http://", "ws://", 1) + "/graphql"


class Closed(Exception):
    def __init__(self, code: int | None, reason: str) -> None:
        super().__init__(f"closed {code} {reason!r}")
        self.code = code
        self.reason = reason


class LiveSocket:
    """One connection; `message` answers the server's pings and returns everything else."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.pings = 0

    @classmethod
    async def open(
        cls, base: str, params: dict[str, Any] | None, *, max_queue: int = 16
    ) -> LiveSocket:
        socket = await connect(
            ws_url(base),
            subprotocols=[PROTOCOL],
            proxy=None,
            max_queue=max_queue,  # type: ignore[list-item]
        )
        live = cls(socket)
        await live.send({"type": "connection_init", "payload": params or {}})
        return live

    @classmethod
    async def with_key(cls, base: str, key: str, *, max_queue: int = 16) -> LiveSocket:
        live = await cls.open(base, {"Authorization": f"Bearer {key}"}, max_queue=max_queue)
        ack = await live.message(5)
        assert ack == {"type": "connection_ack"}, ack
        return live

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(json.dumps(message))

    async def subscribe(self, op: str, query: str, variables: dict | None = None) -> None:
        payload = {"query": query, "variables": variables or {}}
        await self.send({"id": op, "type": "subscribe", "payload": payload})

    async def complete(self, op: str) -> None:
        await self.send({"id": op, "type": "complete"})

    async def message(self, within: float = 5.0) -> dict[str, Any]:
        """The next message that is not a ping; Closed when the server closed the socket."""
        async with asyncio.timeout(within):
            while True:
                try:
                    text = await self.socket.recv()
                except ConnectionClosed as closed:
                    frame = closed.rcvd
                    code, reason = (frame.code, frame.reason) if frame else (None, "")
                    raise Closed(code, reason) from None
                message: dict[str, Any] = json.loads(text)
                if message.get("type") == "ping":
                    self.pings += 1
                    await self.send({"type": "pong"})
                    continue
                return message

    async def data(self, op: str, within: float = 5.0) -> dict[str, Any]:
        """The payload data of operation `op`'s next `next` message."""
        message = await self.message(within)
        assert message.get("id") == op and message["type"] == "next", message
        assert "errors" not in message["payload"], message
        data: dict[str, Any] = message["payload"]["data"]
        return data

    async def quiet(self, seconds: float) -> list[dict[str, Any]]:
        """Every message within `seconds` (none is expected, usually)."""
        got: list[dict[str, Any]] = []
        try:
            while True:
                got.append(await self.message(seconds))
        except TimeoutError:
            return got

    async def close(self) -> None:
        await self.socket.close()
