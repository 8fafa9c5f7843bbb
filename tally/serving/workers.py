"""`tally serve --workers N`: N server processes, each accepting on its own listening socket.

uvicorn's `--workers` shares one listening socket between its processes, and uvloop accepts
every connection waiting on a socket at once: a burst of new connections (a proxy's upstream
pool, a load generator) all land on whichever process woke first, and stay there for as long
as they are kept alive. Measured here: ten connections opened together went ten to one process
and none to the other in every trial, so one process ran at a full core while the other idled
(bench/README.md). Here each process binds its own socket with SO_REUSEPORT, and the kernel
spreads new connections across the processes by their addresses.

This supervisor does what uvicorn's does for `tally serve`: it starts the processes (spawned,
each running uvicorn's public `Server.run(sockets=...)`), stops them on SIGINT or SIGTERM (each
finishes its requests), starts another in place of one that dies, and exits with uvicorn's
startup-failure status if a process fails to start. Linux only (SO_REUSEPORT's balancing).
"""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import socket
import sys
import threading
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from typing import Any

import uvicorn

log = logging.getLogger("tally")

STARTUP_FAILURE = 3  # uvicorn's exit status when a server cannot start
READY_TIMEOUT = 120.0  # seconds a process may take to start (migrations run before, once)
STOP_TIMEOUT = 30.0  # seconds a process may take to finish its requests once told to stop
RESTART_MIN, RESTART_MAX = 0.25, 30.0  # seconds before starting a dead process's successor


def supported() -> bool:
    return sys.platform == "linux" and hasattr(socket, "SO_REUSEPORT")


def listening_socket(host: str, port: int) -> socket.socket:
    """A socket bound to host:port that shares the port with the other processes' sockets."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens there (asked before the processes bind)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class _Server(uvicorn.Server):
    """uvicorn's server, telling the supervisor once it listens."""

    def __init__(self, config: uvicorn.Config, ready: Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._ready.set()


def _run_one(options: dict[str, Any], ready: Event) -> None:
    """One server process: its own socket, uvicorn's server on it."""
    from tally.serving import http_protocol

    sock = listening_socket(options["host"], options["port"])
    config = uvicorn.Config(**options, http=http_protocol())
    _Server(config, ready).run(sockets=[sock])
    sys.exit(0 if ready.is_set() else STARTUP_FAILURE)


@dataclass
class _Slot:
    """One server process and its ready flag, kept referenced while the process lives: a flag
    collected in the supervisor before the child unpickles it makes the child fail at start."""

    process: multiprocessing.process.BaseProcess
    ready: Event
    started: float = field(default_factory=time.monotonic)


class Supervisor:
    def __init__(self, options: dict[str, Any], workers: int) -> None:
        self.options, self.workers = options, workers
        self.context = multiprocessing.get_context("spawn")
        self.stopping = threading.Event()

    def _start(self) -> _Slot:
        ready = self.context.Event()
        process = self.context.Process(target=_run_one, args=(self.options, ready))
        process.start()
        return _Slot(process, ready)

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM):
            signal.signal(signum, lambda *_: self.stopping.set())
        slots = [self._start() for _ in range(self.workers)]
        if not all(_ready(slot.process, slot.ready) for slot in slots):
            log.error("a server process did not start; stopping the others")
            self._stop(slots)
            return STARTUP_FAILURE
        log.info("%d server processes on one port (SO_REUSEPORT)", len(slots))
        delays = [RESTART_MIN] * len(slots)
        while not self.stopping.wait(0.5):
            for index, slot in enumerate(slots):
                if slot.process.is_alive() or self.stopping.is_set():
                    continue
                wait = delays[index] = restart_delay(delays[index], time.monotonic() - slot.started)
                log.warning(
                    "server process %s exited (%s); starting another in %.1f s",
                    slot.process.pid,
                    slot.process.exitcode,
                    wait,
                )
                _forget_metrics(slot.process.pid)
                if not self.stopping.wait(wait):
                    slots[index] = self._start()
        self._stop(slots)
        return 0

    @staticmethod
    def _stop(slots: list[_Slot]) -> None:
        for slot in slots:
            if slot.process.is_alive() and slot.process.pid is not None:
                os.kill(slot.process.pid, signal.SIGTERM)  # uvicorn's graceful shutdown
        for slot in slots:
            slot.process.join(STOP_TIMEOUT)
            if slot.process.is_alive():
                slot.process.kill()
                slot.process.join()


def restart_delay(previous: float, lived: float) -> float:
    """Seconds before starting a dead process's successor: doubled each time one dies young
    (one that keeps failing at start is started again less and less often), back to the
    least after one that lived."""
    return RESTART_MIN if lived > RESTART_MAX else min(previous * 2, RESTART_MAX)


def _ready(process: multiprocessing.process.BaseProcess, ready: Event) -> bool:
    """Whether the process started listening, False as soon as it has exited instead."""
    for _ in range(int(READY_TIMEOUT / 0.2)):
        if ready.wait(0.2):
            return True
        if not process.is_alive():
            return ready.is_set()
    return False


def _forget_metrics(pid: int | None) -> None:
    """A dead process's live gauges leave /metrics (prometheus-client's multiprocess mode)."""
    if pid is None or not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
