"""Slow clients against the real `tally serve` (SQLite), with a short TALLY_HEADER_TIMEOUT.

Silent and half-sent connections are closed at the header deadline; normal requests keep being
answered at once while hundreds of connections trickle their headers; and, where nginx is
installed, deploy/nginx.conf proxies to it and caps slow uploads per client.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS
from tests.e2e.test_server import OPERATOR, Server, free_port

pytestmark = pytest.mark.e2e
HEADER_TIMEOUT = 3.0  # seconds: TALLY_HEADER_TIMEOUT of the server under test
SLACK = 1.5  # what a busy machine may add before the server's timer fires
TRICKLERS = 200
NGINX_CONF = Path(__file__).parents[2] / "deploy" / "nginx.conf"
PLANS = {"query": "{ plans { code } }"}


@pytest.fixture(scope="module")
def server(tmp_path_factory) -> Iterator[Server]:
    if "sqlite" not in BACKENDS:
        pytest.skip("SQLite leg not selected")
    with pytest.MonkeyPatch.context() as env:
        env.setenv("TALLY_HEADER_TIMEOUT", f"{HEADER_TIMEOUT:g}")
        served = Server("", tmp_path_factory.mktemp("slow-clients"))
    yield served
    served.stop()


class Connection:
    """A raw client connection that notes when the server closed it and what it said."""

    def __init__(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, opened: float
    ) -> None:
        self.reader, self.writer = reader, writer
        self.opened = opened  # before connecting: no lifetime is measured short
        self.closed = asyncio.get_running_loop().create_task(self._until_closed())

    @classmethod
    async def open(cls, port: int) -> Connection:
        opened = time.monotonic()
        return cls(*await asyncio.open_connection("127.0.0.1", port), opened)

    async def _until_closed(self) -> tuple[bytes, float]:
        """What the server said, and when it closed (time.monotonic)."""
        data = await asyncio.wait_for(self.reader.read(), timeout=HEADER_TIMEOUT * 4)
        return data, time.monotonic()

    async def lifetime(self, since: float | None = None) -> tuple[bytes, float]:
        """What the server said, and how long after `since` (default: opening) it closed."""
        data, closed_at = await self.closed
        return data, closed_at - (self.opened if since is None else since)

    async def trickle(self, data: bytes, every: float) -> None:
        for byte in data:
            if self.closed.done():
                return
            self.writer.write(bytes([byte]))
            await asyncio.sleep(every)

    def close(self) -> None:
        self.writer.close()


def assert_closed_at_deadline(elapsed: float, what: str) -> None:
    assert HEADER_TIMEOUT - 0.05 <= elapsed <= HEADER_TIMEOUT + SLACK, (what, elapsed)


async def test_silent_and_half_sent_connections_are_closed_at_the_header_deadline(server):
    silent, line, headers, reused = [await Connection.open(server.port) for _ in range(4)]
    line.writer.write(b"GET /healt")
    headers.writer.write(b"POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Ty")
    reused.writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n")
    idle_since = time.monotonic()  # about when it was answered: the deadline restarts
    await asyncio.sleep(0.5)  # idle, uvicorn's keep-alive timer running
    reused.writer.write(b"GET /healthz HTTP/1.1\r\nHo")  # which this stops; the deadline not
    figures = {}
    for name, conn in [("silent", silent), ("line", line), ("headers", headers)]:
        data, figures[name] = await conn.lifetime()
        assert data.startswith(b"HTTP/1.1 408") if name != "silent" else data == b"", name
    data, figures["reused"] = await reused.lifetime(since=idle_since)
    assert data.startswith(b"HTTP/1.1 200") and b"HTTP/1.1 408" in data
    for name, elapsed in figures.items():
        assert_closed_at_deadline(elapsed, name)
    for conn in (silent, line, headers, reused):
        conn.close()
    print(f"\nheader deadline {HEADER_TIMEOUT:g} s; closed after (s): {figures}")


async def normal_request(client: httpx.AsyncClient, n: int) -> float:
    started = time.monotonic()
    if n % 2:
        response = await client.get("/healthz")
    else:
        auth = {"Authorization": f"Bearer {OPERATOR}"}
        response = await client.post("/graphql", json=PLANS, headers=auth)
        assert response.json()["data"]["plans"], response.text
    assert response.status_code == 200, response.text
    return time.monotonic() - started


async def test_normal_requests_are_answered_while_hundreds_of_connections_trickle(server):
    tricklers = await asyncio.gather(*(Connection.open(server.port) for _ in range(TRICKLERS)))
    slowloris = b"X-Slow: " + b"a" * 100  # after a request line and Host sent at once
    for conn in tricklers:
        conn.writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n")
    senders = [asyncio.create_task(conn.trickle(slowloris, every=1.0)) for conn in tricklers]
    latencies: list[float] = []
    fresh = httpx.Limits(max_keepalive_connections=0)  # a new connection for every request
    async with httpx.AsyncClient(base_url=server.base, timeout=5, limits=fresh) as client:
        while not any(conn.closed.done() for conn in tricklers):
            latencies.append(await normal_request(client, len(latencies)))
            await asyncio.sleep(0.05)
    closes = [await conn.lifetime() for conn in tricklers]
    await asyncio.gather(*senders)
    for conn in tricklers:
        conn.close()
    assert len(latencies) >= 20, latencies  # all answered while every trickler was still open
    assert max(latencies) < 1.0, latencies
    assert all(data.startswith(b"HTTP/1.1 408") for data, _ in closes)
    for _, elapsed in closes:
        assert_closed_at_deadline(elapsed, "trickler")
    print(
        f"\n{TRICKLERS} tricklers: {len(latencies)} normal requests answered, latency"
        f" median {sorted(latencies)[len(latencies) // 2] * 1000:.1f} ms,"
        f" max {max(latencies) * 1000:.1f} ms; tricklers closed after"
        f" {min(e for _, e in closes):.2f}-{max(e for _, e in closes):.2f} s"
    )


# --- deploy/nginx.conf in front of the real server -------------------------------------------


class Nginx:
    """deploy/nginx.conf, pointed at a local server and port instead of compose's `api`."""

    def __init__(self, upstream_port: int, workdir: Path) -> None:
        self.port = free_port()
        conf = NGINX_CONF.read_text()
        for old, new in [
            ("server api:8000;", f"server 127.0.0.1:{upstream_port};"),
            ("listen 80;", f"listen 127.0.0.1:{self.port};"),
            ("http {", f"http {{\n    client_body_temp_path {workdir}/body;"),
        ]:
            assert conf.count(old) == 1, old
            conf = conf.replace(old, new)
        (workdir / "nginx.conf").write_text(conf)
        main = f"daemon off; pid {workdir}/nginx.pid; user root;"  # user: ignored unless root
        self.log = open(workdir / "nginx.log", "w")  # noqa: SIM115
        self.process = subprocess.Popen(
            ["nginx", "-e", "stderr", "-p", str(workdir), "-c", "nginx.conf", "-g", main],
            stdout=self.log,
            stderr=subprocess.STDOUT,
        )
        self._wait_until_listening(workdir)

    def _wait_until_listening(self, workdir: Path) -> None:
        for _ in range(100):
            if self.process.poll() is not None:
                raise AssertionError((workdir / "nginx.log").read_text())
            try:
                httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1)
                return
            except httpx.HTTPError:
                time.sleep(0.1)
        raise AssertionError("nginx did not listen in 10 s")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)
        self.log.close()


@pytest.fixture(scope="module")
def nginx(server, tmp_path_factory) -> Iterator[Nginx]:
    if shutil.which("nginx") is None:
        pytest.skip("nginx is not installed (apt-get install nginx-light)")
    proxy = Nginx(server.port, tmp_path_factory.mktemp("nginx"))
    yield proxy
    proxy.stop()


async def status_line(port: int, request: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(request)
    try:
        return await asyncio.wait_for(reader.readline(), timeout=5)
    finally:
        writer.close()


async def test_nginx_proxies_graphql_and_passes_websocket_upgrades(nginx):
    base = f"http://127.0.0.1:{nginx.port}"
    async with httpx.AsyncClient(base_url=base, timeout=5) as client:
        auth = {"Authorization": f"Bearer {OPERATOR}"}
        for _ in range(3):  # over nginx's kept-alive upstream connection
            response = await client.post("/graphql", json=PLANS, headers=auth)
            assert response.status_code == 200 and response.json()["data"]["plans"]
    upgrade = (
        b"GET /graphql HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
    )
    # uvicorn saw a WebSocket and Tally accepted it (subscriptions); a plain GET would get
    # GraphiQL.
    assert (await status_line(nginx.port, upgrade)).startswith(b"HTTP/1.1 101")


async def test_nginx_refuses_big_bodies_and_caps_slow_uploads_per_client(nginx):
    big = b"POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Length: 1048577\r\n\r\n"
    assert (await status_line(nginx.port, big)).startswith(b"HTTP/1.1 413")
    slow = b"POST /graphql HTTP/1.1\r\nHost: t\r\nContent-Length: 10\r\n\r\n"  # body never sent
    uploads = [await Connection.open(nginx.port) for _ in range(32)]
    for conn in uploads:
        conn.writer.write(slow)
    await asyncio.sleep(0.3)
    try:
        assert (await status_line(nginx.port, slow + b"0123456789")).startswith(b"HTTP/1.1 429")
    finally:
        for conn in uploads:
            conn.close()
