"""`tally serve --workers N`: N server processes, each accepting on its own listening socket.

uvicorn's `--workers` shares one listening socket between its processes, and uvloop accepts
every connection waiting on a socket at once: a burst of new connections (a proxy's upstream
pool, a load generator) all land on whichever process woke first, and stay there for as long
as they are kept alive. Measured here: ten connections opened together went ten to one process
and none to the other in every trial, so one process ran at a full core while the other idled
(bench/README.md). Here each process binds its own socket with SO_REUSEPORT, and the kernel
spreads new connections across the processes by their addresses.

This supervisor does what uvicorn's does for `tally serve`: it starts the processes (spawned,
each running uvicorn's public `Server.run(sockets=...)`), stops them on SIGINT, SIGTERM or
SIGQUIT (each finishes its requests), replaces them one by one on SIGHUP, starts another in place
of one that dies (backing off while they die young), and exits with uvicorn's startup-failure
status if a process fails to start; the address is checked before anything starts. Not kept
from uvicorn's: its health-check ping of hung processes, and TTIN/TTOU to change their number.
Linux only (SO_REUSEPORT's balancing).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import socket
import sys
import time
from dataclasses import dataclass, field
from multiprocessing.synchronize import Event
from typing import Any

import uvicorn

from tally import metrics_dirs

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
    return sock


def port_in_use(host: str, port: int) -> bool:
    """Whether something already listens there (asked before the processes bind)."""
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def check_address(host: str, port: int) -> str | None:
    """Why the processes could not listen on host:port (None when they can), found before
    anything starts: taken by another server, not this machine's, not allowed."""
    if port_in_use(host, port):
        return f"{host}:{port} is already in use"
    try:
        listening_socket(host, port).close()
    except OSError as error:  # EACCES, EADDRNOTAVAIL, a name that does not resolve
        return f"cannot listen on {host}:{port}: {error}"
    return None


class _Server(uvicorn.Server):
    """uvicorn's server, telling the supervisor once it listens."""

    def __init__(self, config: uvicorn.Config, ready: Event) -> None:
        super().__init__(config)
        self._ready = ready

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets)
        if self.started:
            self._ready.set()


def _run_one(options: dict[str, Any], ready: Event, log_format: str) -> None:
    """One server process: its own socket, uvicorn's server on it."""
    from app.logs import configure_logging
    from tally.serving import http_protocol

    configure_logging(log_format)  # before anything here logs
    metrics_dirs.hold_own()  # the server's metrics directory in use while this process lives
    try:
        sock = listening_socket(options["host"], options["port"])
        config = uvicorn.Config(**options, http=http_protocol())
        with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C reaches the whole group
            _Server(config, ready).run(sockets=[sock])
    except Exception:
        log.exception("server process %s could not run", os.getpid())
    sys.exit(0 if ready.is_set() else STARTUP_FAILURE)


@dataclass
class _Slot:
    """One server process and its ready flag, kept referenced while the process lives: a flag
    collected in the supervisor before the child unpickles it makes the child fail at start."""

    process: multiprocessing.process.BaseProcess
    ready: Event
    started: float = field(default_factory=time.monotonic)
    delay: float = RESTART_MIN  # before its successor starts, if it dies
    restart_at: float | None = None


class Supervisor:
    """Signals only append to a list, read by the loop (a handler that took a lock could
    deadlock with the loop holding it): SIGINT, SIGTERM and SIGQUIT stop every process, SIGHUP
    replaces them one by one (each successor ready before its predecessor stops), as uvicorn's
    supervisor does."""

    def __init__(self, options: dict[str, Any], workers: int, log_format: str = "text") -> None:
        self.options, self.workers, self.log_format = options, workers, log_format
        self.context = multiprocessing.get_context("spawn")
        self.signals: list[int] = []

    @property
    def stopping(self) -> bool:
        return any(signum != signal.SIGHUP for signum in self.signals)

    def _start(self) -> _Slot:
        ready = self.context.Event()
        process = self.context.Process(target=_run_one, args=(self.options, ready, self.log_format))
        process.start()
        return _Slot(process, ready)

    def run(self) -> int:
        for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGQUIT, signal.SIGHUP):
            signal.signal(signum, lambda signum, _: self.signals.append(signum))
        slots: list[_Slot] = []
        try:
            slots.extend(self._start() for _ in range(self.workers))
            if not all(self._ready(slot) for slot in slots):
                if self.stopping:
                    return 0
                log.error("a server process did not start; stopping the others")
                return STARTUP_FAILURE
            log.info("%d server processes on one port (SO_REUSEPORT)", len(slots))
            while not self.stopping:
                time.sleep(0.25)
                if signal.SIGHUP in self.signals:
                    self.signals.remove(signal.SIGHUP)
                    self._replace_all(slots)
                self._tend(slots)
            return 0
        finally:
            _stop(slots)

    def _ready(self, slot: _Slot) -> bool:
        """Whether the process started listening; False once it exited or a stop was asked."""
        deadline = time.monotonic() + READY_TIMEOUT
        while time.monotonic() < deadline and not self.stopping:
            if slot.ready.wait(0.2):
                return True
            if not slot.process.is_alive():
                return slot.ready.is_set()
        return False

    def _tend(self, slots: list[_Slot]) -> None:
        """A dead process's successor, started after its back-off (the others tended meanwhile)."""
        now = time.monotonic()
        for index, slot in enumerate(slots):
            if slot.process.is_alive() or self.stopping:
                continue
            if slot.restart_at is None:
                slot.delay = restart_delay(slot.delay, now - slot.started)
                slot.restart_at = now + slot.delay
                log.warning(
                    "server process %s exited (%s); starting another in %.1f s",
                    slot.process.pid,
                    slot.process.exitcode,
                    slot.delay,
                )
                _forget_metrics(slot.process.pid)
            elif now >= slot.restart_at:
                successor = self._start()
                successor.delay = slot.delay
                slots[index] = successor

    def _replace_all(self, slots: list[_Slot]) -> None:
        log.info("SIGHUP: replacing the server processes one by one")
        for index, slot in enumerate(slots):
            successor = self._start()
            if not self._ready(successor):
                log.error("a replacement did not start; keeping process %s", slot.process.pid)
                _stop([successor])
                continue
            slots[index] = successor
            _stop([slot])


def _stop(slots: list[_Slot]) -> None:
    """SIGTERM to each (uvicorn finishes the requests in flight), then at most STOP_TIMEOUT
    seconds for all of them together before SIGKILL."""
    for slot in slots:
        if slot.process.is_alive() and slot.process.pid is not None:
            os.kill(slot.process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_TIMEOUT
    for slot in slots:
        slot.process.join(max(0.0, deadline - time.monotonic()))
        if slot.process.is_alive():
            slot.process.kill()
            slot.process.join()


def restart_delay(previous: float, lived: float) -> float:
    """Seconds before starting a dead process's successor: doubled each time one dies young
    (one that keeps failing at start is started again less and less often), back to the
    least after one that lived."""
    return RESTART_MIN if lived > RESTART_MAX else min(previous * 2, RESTART_MAX)


def _forget_metrics(pid: int | None) -> None:
    """A dead process's live gauges leave /metrics (prometheus-client's multiprocess mode)."""
    if pid is None or not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return
    from prometheus_client import multiprocess

    multiprocess.mark_process_dead(pid)
