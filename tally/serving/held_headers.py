"""A response's status line and headers sent with its first body chunk: one write, not two.

uvicorn 0.54's httptools protocol writes the headers as soon as the app sends
`http.response.start` and the body with `http.response.body`: two sends, two TCP segments and,
on a client that reads the headers first, two wake-ups, for every answer of a few hundred
bytes. Here the connection's transport holds the headers until the body's first chunk (or the
end of the current loop iteration, for an app that starts a response and waits before its
body) and writes both at once. What reaches the client is byte for byte the same.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]


class HeldTransport:
    """`transport`, but for a write made while `hold()` is in force: that one waits for the
    next write (sent together with it), a close, or the end of the loop iteration."""

    __slots__ = ("_held", "_holding", "_loop", "_transport")

    def __init__(self, transport: asyncio.Transport, loop: asyncio.AbstractEventLoop) -> None:
        self._transport = transport
        self._loop = loop
        self._holding = False
        self._held: bytes | None = None

    def hold(self) -> None:
        self._holding = True

    def unhold(self) -> None:
        """Hold no later write: the one that was to be held never came."""
        self._holding = False

    def release(self) -> None:
        """Stop holding; whatever is held goes out now."""
        self._holding = False
        held, self._held = self._held, None
        if held is not None:
            self._transport.write(held)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self._holding:
            self._holding = False
            self._held = bytes(data)
            self._loop.call_soon(self.release)  # never later than this loop iteration
            return
        if self._held is not None:
            data, self._held = self._held + bytes(data), None
        self._transport.write(data)

    def writelines(self, chunks: Any) -> None:
        self.write(b"".join(chunks))

    def close(self) -> None:
        self.release()
        self._transport.close()

    def abort(self) -> None:
        self._held = None  # an abort sends nothing more
        self._transport.abort()

    def write_eof(self) -> None:
        self.release()
        self._transport.write_eof()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


def holding_send(transport: HeldTransport, send: Send) -> Send:
    """`send` for one request, holding the transport while it writes `http.response.start`."""

    async def held_send(message: Message) -> None:
        if message["type"] != "http.response.start":
            await send(message)
            return
        transport.hold()
        try:
            await send(message)
        finally:
            transport.unhold()  # a send that raised before writing leaves nothing held after it

    return held_send
