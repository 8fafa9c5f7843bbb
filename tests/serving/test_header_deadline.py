"""tally.serving: the header deadline on a real uvicorn server in this process.

Tally's own requests are answered byte for byte the same with the subclass as without it; the
deadline closes slow or silent connections and nothing else; the fence falls back to uvicorn's
plain protocol when it is switched off or meets another uvicorn.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

import pytest
import uvicorn
from uvicorn.protocols.http.auto import AutoHTTPProtocol
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
from uvicorn.server import ServerState
from websockets.asyncio.client import connect

import tally.serving
from graphql_schema.asgi import create_app
from tally.serving import http_protocol
from tally.serving.header_deadline import HeaderDeadlineProtocol
from tests.conftest import OPERATOR_KEY

DEADLINE = 0.5  # seconds, for the timeout tests
SLACK = 1.0  # what a busy machine may add before a timer fires


class FastDeadline(HeaderDeadlineProtocol):
    header_timeout = DEADLINE


@contextlib.asynccontextmanager
async def serving(app: Any, http: type[asyncio.Protocol] | str) -> AsyncIterator[int]:
    """A uvicorn server in this event loop on a free port; yields the port."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    config = uvicorn.Config(app, http=http, lifespan="off", log_config=None, access_log=False)
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        await started(server)
        yield sock.getsockname()[1]
    finally:
        server.should_exit = True
        await task
        sock.close()


async def started(server: uvicorn.Server) -> None:
    for _ in range(1000):
        if server.started:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("uvicorn did not start in 10 s")


async def exchange(port: int, chunks: list[bytes], pause: float = 0.05) -> bytes:
    """Send the chunks (pausing between them), then read until the server closes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for chunk in chunks:
        writer.write(chunk)
        await writer.drain()
        await asyncio.sleep(pause)
    try:
        return await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()


async def read_until_closed(reader: asyncio.StreamReader) -> tuple[bytes, float]:
    """What the server sent until it closed, and how long that took."""
    started = time.monotonic()
    data = await asyncio.wait_for(reader.read(), timeout=DEADLINE + 5)
    return data, time.monotonic() - started


# --- the same answers with and without the subclass ------------------------------------------

OP = f"Authorization: Bearer {OPERATOR_KEY}\r\n".encode()
PLANS = b'{"query": "{ plans { code } }"}'


def post(body: bytes, *, extra: bytes = b"", close: bool = True) -> bytes:
    head = b"POST /graphql HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\n" + extra
    head += b"content-length: %d\r\n" % len(body)
    return head + (b"connection: close\r\n" if close else b"") + b"\r\n" + body


def get(path: bytes, *, extra: bytes = b"", close: bool = True) -> bytes:
    head = b"GET " + path + b" HTTP/1.1\r\nHost: t\r\n" + extra
    return head + (b"connection: close\r\n" if close else b"") + b"\r\n"


def chunked(body: bytes) -> bytes:
    head = b"POST /graphql HTTP/1.1\r\nHost: t\r\ncontent-type: application/json\r\n" + OP
    head += b"transfer-encoding: chunked\r\nconnection: close\r\n\r\n"
    half = len(body) // 2
    parts = [body[:half], body[half:]]
    return head + b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in parts) + b"0\r\n\r\n"


WEBSOCKET = (
    b"GET /graphql HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
    b"Sec-WebSocket-Protocol: graphql-transport-ws\r\n\r\n"
)

SCENARIOS: dict[str, tuple[list[bytes], bytes]] = {  # what is sent, how the answer starts
    "health": ([get(b"/healthz")], b"HTTP/1.1 200"),
    "plans": ([post(PLANS, extra=OP)], b"HTTP/1.1 200"),
    "unauthenticated": ([post(PLANS)], b"HTTP/1.1 200"),
    "not found": ([get(b"/nowhere")], b"HTTP/1.1 404"),
    "graphiql": ([get(b"/graphql", extra=b"Accept: text/html\r\n")], b"HTTP/1.1 200"),
    "head": ([b"HEAD /healthz HTTP/1.1\r\nHost: t\r\nconnection: close\r\n\r\n"], b"HTTP/1.1"),
    "http/1.0": ([b"GET /healthz HTTP/1.0\r\n\r\n"], b"HTTP/1.1 200"),
    "chunked body": ([chunked(PLANS)], b"HTTP/1.1 200"),
    "expect 100": ([post(PLANS, extra=OP + b"Expect: 100-continue\r\n")], b"HTTP/1.1 100"),
    "pipelined": (
        [get(b"/healthz", close=False) + post(PLANS, extra=OP, close=False) + get(b"/x")],
        b"HTTP/1.1 200",
    ),
    "keep-alive": (
        [get(b"/healthz", close=False), post(PLANS, extra=OP, close=False), get(b"/healthz")],
        b"HTTP/1.1 200",
    ),
    "request in pieces": (
        [b"POST /graphql HTTP/1.1\r\nHo", b"st: t\r\n" + OP, post(PLANS).split(b"\r\n", 2)[2]],
        b"HTTP/1.1 200",
    ),
    "malformed": ([b"NOT HTTP AT ALL\r\n\r\n"], b"HTTP/1.1 400"),
    "bad header": ([b"GET /healthz HTTP/1.1\r\nHost t\r\n\r\n"], b"HTTP/1.1 400"),
}


def comparable(response: bytes) -> bytes:
    """The response without what differs on every request: the date and the request id."""
    response = re.sub(rb"(?im)^date: [^\r]*\r\n", b"date: -\r\n", response)
    return re.sub(rb"(?im)^x-request-id: [^\r]*\r\n", b"x-request-id: -\r\n", response)


async def answers(app: Any, http: type[asyncio.Protocol] | str) -> dict[str, bytes]:
    async with serving(app, http) as port:
        found = {name: await exchange(port, sent) for name, (sent, _) in SCENARIOS.items()}
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(WEBSOCKET)
        found["websocket"] = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=5)
        writer.close()
    return {name: comparable(answer) for name, answer in found.items()}


async def test_tally_answers_the_same_with_and_without_the_header_deadline(settings):
    assert AutoHTTPProtocol is HttpToolsProtocol  # so the plain leg is what the subclass extends
    app = create_app(settings, manage_database=False)
    plain = await answers(app, tally.serving.PLAIN)
    deadline = await answers(app, HeaderDeadlineProtocol)
    assert deadline == plain
    for name, (_, start) in SCENARIOS.items():
        assert plain[name].startswith(start), (name, plain[name][:200])
    assert b'"code":"free"' in plain["plans"].replace(b" ", b"")
    assert plain["pipelined"].count(b"HTTP/1.1 ") == 3
    assert plain["keep-alive"].count(b"HTTP/1.1 200") == 3
    # The upgrade reaches the app either way, which accepts it (subscriptions).
    assert plain["websocket"].startswith(b"HTTP/1.1 101")


# --- the deadline itself ---------------------------------------------------------------------


async def echo(scope: dict, receive: Any, send: Any) -> None:
    """Answers with the request body after `?sleep` seconds; echoes WebSocket messages."""
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (message := await receive())["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": message["text"]})
        return
    body, more = b"", True
    while more:
        message = await receive()
        body, more = body + message.get("body", b""), message.get("more_body", False)
    await asyncio.sleep(float(scope["query_string"] or 0))
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@pytest.fixture
async def port() -> AsyncIterator[int]:
    async with serving(echo, FastDeadline) as bound:
        yield bound


def assert_closed_at_deadline(elapsed: float) -> None:
    assert DEADLINE - 0.05 <= elapsed <= DEADLINE + SLACK, elapsed


async def test_a_silent_connection_is_closed_at_the_deadline_without_a_word(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    data, elapsed = await read_until_closed(reader)
    writer.close()
    assert data == b""
    assert_closed_at_deadline(elapsed)


@pytest.mark.parametrize(
    "partial", [b"GET /heal", b"POST / HTTP/1.1\r\nHost: t\r\nContent-Le"], ids=["line", "headers"]
)
async def test_a_half_sent_request_gets_a_408_at_the_deadline(port, partial):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(partial)
    data, elapsed = await read_until_closed(reader)
    writer.close()
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert data.endswith(b"connection: close\r\n\r\nRequest header timeout")
    assert_closed_at_deadline(elapsed)


async def trickle(writer: asyncio.StreamWriter, data: bytes, every: float) -> None:
    for byte in data:
        writer.write(bytes([byte]))
        await asyncio.sleep(every)


async def test_a_byte_at_a_time_does_not_move_the_deadline(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    slowloris = b"GET /healthz HTTP/1.1\r\nHost: t\r\nX-Slow: " + b"a" * 100
    sender = asyncio.create_task(trickle(writer, slowloris, DEADLINE / 10))
    data, elapsed = await read_until_closed(reader)
    sender.cancel()
    writer.close()
    assert data.startswith(b"HTTP/1.1 408")
    assert_closed_at_deadline(elapsed)


async def test_headers_sent_slowly_within_the_deadline_are_answered(port):
    pieces = [b"POST /?0 HTTP/1.1\r\n", b"Host: t\r\n", b"content-length: 2\r\n", b"\r\nok"]
    answer = await exchange(port, pieces, pause=DEADLINE / 5)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\nok")


async def test_the_deadline_restarts_when_the_connection_goes_idle(port):
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(b"GET /?0 HTTP/1.1\r\nHost: t\r\n\r\n")
    assert (await reader.readuntil(b"\r\n\r\n")).startswith(b"HTTP/1.1 200")
    idle_since = time.monotonic()
    await asyncio.sleep(DEADLINE * 0.6)
    writer.write(b"GET /?0 HTTP/1.1\r\nHo")  # uvicorn's keep-alive timer stops here; ours not
    data, _ = await read_until_closed(reader)
    writer.close()
    assert data.startswith(b"HTTP/1.1 408")
    assert_closed_at_deadline(time.monotonic() - idle_since)


async def test_a_handler_slower_than_the_deadline_is_not_cut_short(port):
    answer = await exchange(port, [b"GET /?%g HTTP/1.1\r\nHost: t\r\n\r\n" % (DEADLINE * 2)])
    assert answer.startswith(b"HTTP/1.1 200")


async def test_a_body_slower_than_the_deadline_is_left_to_the_app(port):
    head = b"POST /?0 HTTP/1.1\r\nHost: t\r\ncontent-length: 4\r\nconnection: close\r\n\r\n"
    answer = await exchange(port, [head, b"sl", b"ow"], pause=DEADLINE * 0.8)
    assert answer.startswith(b"HTTP/1.1 200") and answer.endswith(b"\r\n\r\nslow")


async def test_pipelined_requests_are_all_answered(port):
    """The deadline stays off while queued requests run, the last one longer than it."""
    sleeps = [0.1, 0.1, DEADLINE * 1.5]
    requests = [b"GET /?%g HTTP/1.1\r\nHost: t\r\n\r\n" % s for s in sleeps]
    requests[-1] = requests[-1].replace(b"\r\n\r\n", b"\r\nconnection: close\r\n\r\n")
    answer = await exchange(port, [b"".join(requests)])
    assert answer.count(b"HTTP/1.1 200") == 3, answer


async def test_an_open_websocket_outlives_the_deadline(port):
    async with connect(f"ws://127.0.0.1:{port}/") as websocket:
        await asyncio.sleep(DEADLINE * 2)
        await websocket.send("still here")
        assert await websocket.recv() == "still here"


# --- the fence: off switch, version check, settings ------------------------------------------


def test_it_is_installed_on_the_uvicorn_it_was_written_for(monkeypatch):
    monkeypatch.delenv("TALLY_HEADER_TIMEOUT", raising=False)
    assert http_protocol() is HeaderDeadlineProtocol
    monkeypatch.setenv("TALLY_HEADER_TIMEOUT", "2.5")
    assert http_protocol() is HeaderDeadlineProtocol


def test_zero_switches_it_off(monkeypatch, caplog):
    monkeypatch.setenv("TALLY_HEADER_TIMEOUT", "0")
    monkeypatch.setenv("TALLY_FAST_PATHS", "off")  # else the protocol stays, for held headers
    assert http_protocol() == "auto"
    assert not caplog.records


async def test_zero_arms_no_deadline_when_the_protocol_stays(monkeypatch):
    monkeypatch.setenv("TALLY_HEADER_TIMEOUT", "0")
    monkeypatch.setenv("TALLY_FAST_PATHS", "on")
    config = uvicorn.Config(echo, http=HeaderDeadlineProtocol, log_config=None)
    protocol = HeaderDeadlineProtocol(config, server_state=ServerState(), app_state={})
    assert (protocol._timeout, protocol._hold) == (0.0, True)
    protocol._arm()
    assert protocol._deadline is None
    async with serving(echo, HeaderDeadlineProtocol) as bound:
        assert (await exchange(bound, [get(b"/")])).startswith(b"HTTP/1.1 200")


@pytest.mark.parametrize("found", ["0.55.0", "0.53.2", "1.0.0"])
def test_another_uvicorn_gets_the_plain_protocol_and_one_warning(monkeypatch, caplog, found):
    monkeypatch.delenv("TALLY_HEADER_TIMEOUT", raising=False)
    monkeypatch.setattr(tally.serving, "version", lambda name: found)
    with caplog.at_level(logging.WARNING, logger="tally"):
        assert http_protocol() == "auto"
    assert [r.levelname for r in caplog.records] == ["WARNING"]
    assert f"written for uvicorn 0.54.x, found {found}" in caplog.records[0].getMessage()
    assert "\n" not in caplog.records[0].getMessage()


@pytest.mark.parametrize("value", ["abc", "-1", "nan", "inf", "30s"])
def test_a_bad_setting_stops_the_server_from_starting(monkeypatch, value):
    monkeypatch.setenv("TALLY_HEADER_TIMEOUT", value)
    with pytest.raises(ValueError, match="TALLY_HEADER_TIMEOUT must be seconds"):
        http_protocol()


async def test_each_connection_reads_the_deadline_from_the_environment(monkeypatch):
    """Workers started by --workers N are spawned: they inherit the environment, not state."""
    monkeypatch.setenv("TALLY_HEADER_TIMEOUT", "7")
    config = uvicorn.Config(echo, http=HeaderDeadlineProtocol, log_config=None)
    protocol = HeaderDeadlineProtocol(config, server_state=ServerState(), app_state={})
    assert protocol._timeout == 7.0
