"""tally.serving.held_headers: a response's headers and its first body chunk in one write.

Counted at the socket's transport under a real uvicorn server in this process: one write a
response with the headers held, two with uvicorn's own writes; the bytes that reach the client
are the same either way (test_header_deadline compares Tally's answers byte for byte, both
ways); headers of a response whose body comes later are not held past the loop iteration.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from tally.serving import PLAIN, http_protocol
from tally.serving.header_deadline import HeaderDeadlineProtocol
from tally.serving.held_headers import HeldTransport
from tests.serving.test_header_deadline import comparable, echo, exchange, get, post, serving

WRITES: list[bytes] = []  # what reached the socket's transport, write by write


class Recording:
    """The socket's transport, recording each write."""

    def __init__(self, transport: asyncio.Transport) -> None:
        self._transport = transport

    def write(self, data: bytes) -> None:
        WRITES.append(bytes(data))
        self._transport.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._transport, name)


class RecordedHeld(HeaderDeadlineProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Recording(transport))  # type: ignore[arg-type]


class RecordedPlain(HttpToolsProtocol):
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(Recording(transport))  # type: ignore[arg-type]


REQUESTS = [
    post(b'{"hello": 1}', close=False),
    get(b"/?0.2", close=False),  # answered after 0.2 s
    b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\n",
    post(b"x" * 70_000),
]


async def written(protocol: type[asyncio.Protocol]) -> tuple[list[bytes], bytes]:
    WRITES.clear()
    async with serving(echo, protocol) as port:
        received = await exchange(port, REQUESTS)
    return list(WRITES), received


@pytest.fixture(autouse=True)
def fast_paths_on(monkeypatch):
    monkeypatch.setenv("TALLY_FAST_PATHS", "on")


async def test_one_write_a_response_instead_of_two_and_the_same_bytes():
    held, held_received = await written(RecordedHeld)
    plain, plain_received = await written(RecordedPlain)
    # uvicorn: headers, body, headers, body, the HEAD's headers (no body), headers, body.
    assert len(plain) == 7
    assert [w[:9] for w in (plain[0], plain[2], plain[4], plain[5])] == [b"HTTP/1.1 "] * 4
    # Held: each response's headers and body in one write; the HEAD's headers alone.
    expected = [plain[0] + plain[1], plain[2] + plain[3], plain[4], plain[5] + plain[6]]
    assert [comparable(w) for w in held] == [comparable(w) for w in expected]
    assert comparable(held_received) == comparable(plain_received)
    assert comparable(b"".join(held)) == comparable(held_received)
    assert held_received.count(b"HTTP/1.1 200") == 4 and held_received.endswith(b"x" * 70_000)


async def late_body(scope: dict, receive: Any, send: Any) -> None:
    """Starts its response, then sends the body 0.5 s later."""
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await asyncio.sleep(0.5)
    await send({"type": "http.response.body", "body": b"late"})


async def test_headers_of_a_body_that_comes_later_are_not_held_for_it():
    async with serving(late_body, HeaderDeadlineProtocol) as port:
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        writer.write(get(b"/"))
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=0.4)
        assert head.startswith(b"HTTP/1.1 200") and b"transfer-encoding: chunked" in head
        assert await asyncio.wait_for(reader.read(), timeout=5) == b"4\r\nlate\r\n0\r\n\r\n"
        writer.close()


async def test_fast_paths_off_writes_as_uvicorn_does(monkeypatch):
    monkeypatch.setenv("TALLY_FAST_PATHS", "off")
    held, _ = await written(RecordedHeld)
    plain, _ = await written(RecordedPlain)
    assert [comparable(w) for w in held] == [comparable(w) for w in plain]


def test_the_protocol_is_used_while_either_of_its_changes_is_on(monkeypatch):
    monkeypatch.setenv("TALLY_HEADER_TIMEOUT", "0")
    assert http_protocol() is HeaderDeadlineProtocol  # held headers, no deadline
    monkeypatch.setenv("TALLY_FAST_PATHS", "off")
    assert http_protocol() == PLAIN
    monkeypatch.setenv("TALLY_FAST_PATHS", " OFF ")  # as app.config reads the switch
    assert http_protocol() == PLAIN
    monkeypatch.setenv("TALLY_HEADER_TIMEOUT", "5")
    assert http_protocol() is HeaderDeadlineProtocol  # a deadline, uvicorn's writes


# --- the transport alone -----------------------------------------------------------------------


class Sink:
    def __init__(self) -> None:
        self.calls: list[tuple[str, bytes]] = []

    def write(self, data: bytes) -> None:
        self.calls.append(("write", bytes(data)))

    def close(self) -> None:
        self.calls.append(("close", b""))

    def write_eof(self) -> None:
        self.calls.append(("eof", b""))

    def abort(self) -> None:
        self.calls.append(("abort", b""))

    def is_closing(self) -> bool:
        return False


@pytest.mark.parametrize(
    ("steps", "expected"),
    [
        (["w:a", "w:b"], [("write", b"a"), ("write", b"b")]),
        (["hold", "w:head", "w:body", "w:more"], [("write", b"headbody"), ("write", b"more")]),
        (["hold", "w:head", "close"], [("write", b"head"), ("close", b"")]),
        (["hold", "w:head", "eof"], [("write", b"head"), ("eof", b"")]),
        (["hold", "w:head", "abort", "release"], [("abort", b"")]),
        (["hold", "w:head", "lines:b,c"], [("write", b"headbc")]),
        (["hold", "unhold", "w:a", "w:b"], [("write", b"a"), ("write", b"b")]),
        (["hold", "w:head", "release", "w:body"], [("write", b"head"), ("write", b"body")]),
    ],
)
async def test_held_transport(steps, expected):
    sink = Sink()
    held = HeldTransport(sink, asyncio.get_running_loop())  # type: ignore[arg-type]
    for step in steps:
        name, _, arg = step.partition(":")
        if name == "w":
            held.write(arg.encode())
        elif name == "lines":
            held.writelines([part.encode() for part in arg.split(",")])
        elif name == "eof":
            held.write_eof()
        else:
            getattr(held, name)()
    assert sink.calls == expected
    assert held.is_closing() is False  # the rest is the transport's own


async def test_a_held_write_goes_out_at_the_end_of_the_loop_iteration():
    sink = Sink()
    held = HeldTransport(sink, asyncio.get_running_loop())  # type: ignore[arg-type]
    held.hold()
    held.write(b"head")
    assert sink.calls == []
    await asyncio.sleep(0)
    assert sink.calls == [("write", b"head")]
    held.write(b"body")
    assert sink.calls == [("write", b"head"), ("write", b"body")]
