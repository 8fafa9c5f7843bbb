"""uvicorn 0.54's HttpToolsProtocol with a deadline for each request's line and headers, and
each response's headers held for its first body chunk (tally.serving.held_headers).

The deadline is armed when the connection opens and again whenever it goes idle waiting for the
next request; it is cancelled when a request's headers are complete, so neither a slow handler
nor a slow body (bounded in the app) is cut short. When it fires, a client that had begun a
request gets a 408; one that sent nothing is closed without a word, as uvicorn's own keep-alive
timeout does, so a client reusing an idle connection never reads a 408 meant for no request.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tally.serving.held_headers import HeldTransport, holding_send
from tally.serving.settings import header_timeout, hold_headers

log = logging.getLogger("tally")

TIMEOUT_BODY = b"Request header timeout"


class HeaderDeadlineProtocol(HttpToolsProtocol):
    header_timeout: float | None = None  # seconds; None: read TALLY_HEADER_TIMEOUT

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Read per connection: spawned workers (--workers N) inherit the environment, not state.
        fixed = self.header_timeout
        self._timeout = header_timeout(os.environ) if fixed is None else fixed
        self._hold = hold_headers()
        self._deadline: asyncio.TimerHandle | None = None
        self._request_begun = False

    # uvicorn's own signature: asyncio's BaseProtocol declares a BaseTransport.
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        if self._hold:
            transport = HeldTransport(transport, self.loop)  # type: ignore[assignment]
        super().connection_made(transport)
        self._arm()

    def _start_asgi_task(self, cycle: Any, app: Any) -> None:
        if isinstance(self.transport, HeldTransport):
            cycle.send = holding_send(self.transport, cycle.send)
        super()._start_asgi_task(cycle, app)

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._request_begun = True

    def on_headers_complete(self) -> None:
        self._disarm()
        self._request_begun = False
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # uvicorn arms its keep-alive timer exactly when the connection goes idle (no pipelined
        # request queued, transport open), so the next request's deadline starts with it.
        if self.timeout_keep_alive_task is not None:
            self._arm()

    def _arm(self) -> None:
        self._disarm()
        if self._timeout > 0:
            self._deadline = self.loop.call_later(self._timeout, self._expire)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _expire(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        log.debug("closing %s: request headers not complete in %g s", self.client, self._timeout)
        if self._request_begun:
            self.transport.write(self._timeout_response())
        self.transport.close()

    def _timeout_response(self) -> bytes:
        lines = [b"HTTP/1.1 408 Request Timeout"]
        lines += [name + b": " + value for name, value in self.server_state.default_headers]
        lines += [
            b"content-type: text/plain; charset=utf-8",
            b"content-length: " + str(len(TIMEOUT_BODY)).encode("ascii"),
            b"connection: close",
        ]
        return b"\r\n".join(lines) + b"\r\n\r\n" + TIMEOUT_BODY
