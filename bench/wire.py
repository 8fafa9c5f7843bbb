"""A lean HTTP/1.1 keep-alive client for load generation on the server's own machine.

The load generator shares the cores with the server it measures. httpx spends about a
millisecond of CPU on each request (building it, its connection pool, its response object),
which on a 2-core machine is CPU the server does not get, and on a sequential client is latency
the server did not cause. This client writes a request as one buffer on an idle connection and
reads the status, the headers it needs and the body: a few tens of microseconds. Only what the
benchmarks send is supported: POST with a JSON body, answers with Content-Length or chunked.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any
from urllib.parse import urlsplit

_Pair = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class WireError(RuntimeError):
    pass


class Wire:
    """Keep-alive connections to one server, each lent to one request at a time."""

    def __init__(self, base: str) -> None:
        parts = urlsplit(base)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self._idle: list[_Pair] = []

    async def post(self, path: str, body: bytes, headers: dict[str, str]) -> tuple[int, bytes]:
        lines = [f"POST {path} HTTP/1.1", f"Host: {self.host}:{self.port}"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        lines += [f"Content-Length: {len(body)}", "", ""]
        request = "\r\n".join(lines).encode() + body
        while self._idle:
            # The server closes keep-alive connections idle for a few seconds: a reused one
            # that answers nothing at all is dropped, and the request sent on another.
            try:
                return await self._exchange(self._idle.pop(), request)
            except _Stale:
                continue
        pair = await asyncio.open_connection(self.host, self.port)
        return await self._exchange(pair, request)

    async def _exchange(self, pair: _Pair, request: bytes) -> tuple[int, bytes]:
        reader, writer = pair
        try:
            writer.write(request)
            status, answer, keep = await _read(reader)
        except BaseException:
            writer.close()
            raise
        if keep:
            self._idle.append(pair)
        else:
            writer.close()
        return status, answer

    async def graphql(self, query: str, variables: dict[str, Any], key: str) -> Any:
        """The `data` of a GraphQL answer; its errors raised."""
        body = json.dumps({"query": query, "variables": variables}).encode()
        headers = {"Content-Type": "application/json", "Authorization": f"Bearer {key}"}
        status, answer = await self.post("/graphql", body, headers)
        parsed = json.loads(answer)
        if status != 200 or parsed.get("errors"):
            raise WireError(f"HTTP {status}: {answer[:300]!r}")
        return parsed["data"]

    async def close(self) -> None:
        for _, writer in self._idle:
            writer.close()
        self._idle.clear()


class _Stale(WireError):
    """The connection was closed before any byte of an answer."""


async def _read(reader: asyncio.StreamReader) -> tuple[int, bytes, bool]:
    """(status, body, whether the connection stays open) of one answer."""
    try:
        status_line = await reader.readline()
    except ConnectionError as error:
        raise _Stale(repr(error)) from error
    if not status_line:
        raise _Stale("the server closed the connection")
    status = int(status_line.split()[1])
    length, chunked, keep = None, False, True
    while (line := await reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.partition(b":")
        name = name.strip().lower()
        if name == b"content-length":
            length = int(value)
        elif name == b"transfer-encoding":
            chunked = b"chunked" in value.lower()
        elif name == b"connection":
            keep = b"close" not in value.lower()
    if chunked:
        return status, await _chunks(reader), keep
    if length is None:
        return status, await reader.read(), False
    return status, await reader.readexactly(length), keep


async def _chunks(reader: asyncio.StreamReader) -> bytes:
    parts = []
    while size := int((await reader.readline()).split(b";")[0], 16):
        parts.append(await reader.readexactly(size))
        await reader.readexactly(2)
    await reader.readline()  # the empty trailer
    return b"".join(parts)
