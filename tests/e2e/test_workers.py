"""`tally serve --workers 2` (tally.serving.workers): each process accepts on its own socket, so
connections opened together are spread over both; a process that dies is replaced; SIGTERM stops
them all; a port already taken is refused. PostgreSQL (several processes need it)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.conftest import BACKENDS, PG_SERVER
from tests.e2e.test_server import Server

pytestmark = pytest.mark.e2e


@pytest.fixture
def two_workers(tmp_path) -> Iterator[Server]:
    if "postgres" not in BACKENDS:
        pytest.skip("PostgreSQL leg not selected")
    name = f"tally_workers_{uuid.uuid4().hex[:8]}"
    server = Server(f"{PG_SERVER}/{name}", tmp_path, workers=2)
    server.url = f"{PG_SERVER}/{name}"  # type: ignore[attr-defined]
    # /healthz answers once one process listens; the tests start once both do.
    deadline = time.monotonic() + 60
    while "2 server processes on one port" not in Path(server.log.name).read_text():
        assert time.monotonic() < deadline, Path(server.log.name).read_text()
        time.sleep(0.1)
    yield server
    server.stop()
    subprocess.run(["dropdb", "-h", "127.0.0.1", "-U", "postgres", "--force", name], check=True)


def children(pid: int) -> set[int]:
    found = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(stat[1]) == pid:
                found.add(int(entry.name))
    return found


def workers_of(server: Server) -> set[int]:
    """The server processes: the supervisor's children but multiprocessing's own helper."""
    return {pid for pid in children(server.process.pid) if "spawn_main" in _cmdline(pid)}


def _cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return ""


def established(port: int) -> dict[int, int]:
    """Socket inode -> client port of each established connection to `port` (server side)."""
    found = {}
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            local, remote, state, inode = fields[1], fields[2], fields[3], int(fields[9])
            if state == "01" and int(local.rsplit(":", 1)[1], 16) == port:
                found[inode] = int(remote.rsplit(":", 1)[1], 16)
    return found


def connections_by_worker(server: Server) -> dict[int, int]:
    sockets = established(server.port)
    counts = {}
    for pid in workers_of(server):
        inodes = set()
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            target = os.readlink(fd) if fd.is_symlink() else ""
            if target.startswith("socket:["):
                inodes.add(int(target[8:-1]))
        counts[pid] = len(inodes & sockets.keys())
    return counts


def open_kept_alive(port: int, count: int) -> list[socket.socket]:
    """`count` connections opened at once, each having had one answer and kept alive."""

    def one(_: int) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", port), timeout=10)
        sock.sendall(b"GET /healthz/live HTTP/1.1\r\nHost: x\r\n\r\n")
        assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        return sock

    with ThreadPoolExecutor(count) as pool:
        return list(pool.map(one, range(count)))


def test_connections_opened_together_are_spread_over_the_workers(two_workers):
    assert len(workers_of(two_workers)) == 2
    sockets = open_kept_alive(two_workers.port, 40)
    try:
        counts = connections_by_worker(two_workers)
        assert sum(counts.values()) == 40, counts
        # Balanced by the kernel's hash of each connection: fewer than 5 of 40 on a process
        # has a chance under 1e-7. With one shared socket, all 40 went to one process.
        assert min(counts.values()) >= 5, counts
    finally:
        for sock in sockets:
            sock.close()


def test_a_worker_that_dies_is_replaced(two_workers):
    before = workers_of(two_workers)
    victim = min(before)
    os.kill(victim, signal.SIGKILL)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        now = workers_of(two_workers)
        if len(now) == 2 and victim not in now:
            break
        time.sleep(0.2)
    else:
        raise AssertionError(f"no replacement for {victim}: {workers_of(two_workers)}")
    successor = (now - before).pop()
    for _ in range(20):  # every connection, whichever process takes it, is answered
        assert httpx.get(f"{two_workers.base}/healthz/ready", timeout=5).status_code == 200
    # The successor serves its share (it once died at start, the supervisor having dropped
    # the flag it was to set, and was replaced again and again).
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        sockets = open_kept_alive(two_workers.port, 40)
        try:
            counts = connections_by_worker(two_workers)
        finally:
            for sock in sockets:
                sock.close()
        if counts.get(successor, 0) >= 5:
            break
        time.sleep(0.5)  # still starting: its socket is bound once it is ready
    else:
        raise AssertionError(f"the successor {successor} took no connections: {counts}")
    assert workers_of(two_workers) == now
    log = Path(two_workers.log.name).read_text()
    assert log.count("starting another") == 1 and "exited (-9); starting another" in log


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGQUIT])
def test_a_stop_signal_stops_every_worker(two_workers, signum):
    workers = workers_of(two_workers)
    metrics = {metrics_directory(pid) for pid in workers}
    assert len(metrics) == 1 and Path(next(iter(metrics))).is_dir()  # one, the server's own
    two_workers.process.send_signal(signum)
    assert two_workers.process.wait(timeout=40) == 0
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    assert "Traceback" not in Path(two_workers.log.name).read_text()
    assert not Path(next(iter(metrics))).exists()  # the samples left with the server


def metrics_directory(pid: int) -> str:
    """PROMETHEUS_MULTIPROC_DIR as a worker was started with it (the supervisor made it)."""
    environ = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    found = [v for v in environ if v.startswith(b"PROMETHEUS_MULTIPROC_DIR=")]
    assert len(found) == 1, f"worker {pid} has no metrics directory"
    return found[0].split(b"=", 1)[1].decode()


def test_sighup_replaces_the_workers_one_by_one(two_workers):
    before = workers_of(two_workers)
    two_workers.process.send_signal(signal.SIGHUP)
    answered = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # answered all along
        assert httpx.get(f"{two_workers.base}/healthz/ready", timeout=5).status_code == 200
        answered += 1
        now = workers_of(two_workers)
        if len(now) == 2 and not now & before:
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"not replaced: {before} -> {workers_of(two_workers)}")
    assert answered > 1 and two_workers.process.poll() is None


def serve_refused(url: str, workdir: Path, *options: str) -> subprocess.CompletedProcess[str]:
    """`tally serve --workers 2` with these options, expected to exit at once."""
    return subprocess.run(
        [sys.executable, "-m", "tally", "serve", *options, "--workers", "2"],
        cwd=workdir,
        env={**os.environ, "TALLY_DATABASE_URL": url},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_an_address_it_cannot_listen_on_is_refused_before_anything_starts(tmp_path):
    refused = serve_refused(f"{PG_SERVER}/tally_never_created", tmp_path, "--host", "192.0.2.1")
    assert refused.returncode == 1
    assert "cannot listen on 192.0.2.1:8000" in refused.stderr  # TEST-NET-1: not this machine's


def test_a_port_in_use_is_refused(two_workers, tmp_path):
    second = serve_refused(two_workers.url, tmp_path, "--port", str(two_workers.port))
    assert second.returncode == 1
    assert f"127.0.0.1:{two_workers.port} is already in use" in second.stderr
