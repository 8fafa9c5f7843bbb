"""The directory of a server's metric samples (prometheus-client's multiprocess mode): made at
start, removed when the server stops, and, for a server killed before it could remove its own,
removed by the next server to start on the machine.

Whether a directory is still in use is told by a lock, not a process id: every process of the
server (the supervisor and each worker) holds a shared `flock` on the directory's lock file for
as long as it lives, and the kernel lets go of it when the process dies however it dies. A
directory is abandoned when an exclusive lock on its file can be had: no process holds it, so
workers left running by a killed supervisor keep theirs, across containers sharing a /tmp too
(where process ids mean nothing)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

PREFIX = "tally-metrics-"  # then mkdtemp's random part
LOCK = ".in-use"  # held (shared) by every process of the server using the directory
_held: list[int] = []  # the lock files' descriptors, open for the life of the process


@contextlib.contextmanager
def removed_when_stopped(directory: str | None) -> Iterator[None]:
    """The server's own metrics directory (the samples of a server that has stopped) removed
    when it stops: on return, on an exception, and when uvicorn, having shut down on SIGTERM
    or SIGINT, raises that signal again to exit by it: it restores the handlers it found, so
    this one runs, then the one before it, and the exit status stays the signal's."""
    if directory is None:
        yield
        return
    previous: dict[int, Any] = {
        sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)
    }

    def remove_then_stop(signum: int, frame: FrameType | None) -> None:
        shutil.rmtree(directory, ignore_errors=True)
        signal.signal(signum, previous[signum])
        signal.raise_signal(signum)

    for sig in previous:
        signal.signal(sig, remove_then_stop)
    try:
        yield
    finally:
        shutil.rmtree(directory, ignore_errors=True)
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def metrics_directory() -> str | None:
    """/metrics sums every worker's samples through files in one directory (prometheus-client's
    multiprocess mode): a fresh one for this server unless PROMETHEUS_MULTIPROC_DIR names one.
    Set before a worker imports prometheus_client, which reads it then. Returns the directory
    made here, which the server removes when it stops."""
    if "prometheus_client" in sys.modules:
        raise RuntimeError("prometheus_client was imported before its directory was chosen")
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if directory:
        for stale in Path(directory).glob("*.db"):  # samples of an earlier run
            stale.unlink()
        return None
    remove_abandoned(Path(tempfile.gettempdir()))
    made = tempfile.mkdtemp(prefix=PREFIX)
    hold(made)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made


def hold(directory: str) -> None:
    """Mark `directory` in use by this process until it exits. The first holder makes the lock
    file under another name and renames it into place already locked, so no sweep ever finds
    it unlocked in between."""
    lock = os.path.join(directory, LOCK)
    try:
        fd = os.open(lock, os.O_RDONLY)
    except FileNotFoundError:
        making = os.path.join(directory, f"{LOCK}.{os.getpid()}")
        fd = os.open(making, os.O_RDONLY | os.O_CREAT, 0o600)
        fcntl.flock(fd, fcntl.LOCK_SH)
        os.rename(making, lock)
    else:
        fcntl.flock(fd, fcntl.LOCK_SH)
    _held.append(fd)


def hold_own() -> None:
    """In a worker: hold the directory its server made (PROMETHEUS_MULTIPROC_DIR, inherited,
    with the lock file the server made); an operator's own directory has none and is left
    as it is."""
    directory = os.environ.get("PROMETHEUS_MULTIPROC_DIR", "")
    if directory and os.path.exists(os.path.join(directory, LOCK)):
        hold(directory)


def remove_abandoned(scratch: Path) -> list[Path]:
    """Remove this user's directories in `scratch` that no process holds any more (servers
    killed outright: SIGKILL, the OOM killer). One without a lock file (an older server's, or
    one being made) is left alone. Returns what was removed."""
    removed = []
    for directory in scratch.glob(f"{PREFIX}*"):
        try:
            if directory.is_symlink() or directory.stat().st_uid != os.getuid():
                continue
            fd = os.open(directory / LOCK, os.O_RDONLY)
        except OSError:  # not a directory, no lock file, not ours to read
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
        except BlockingIOError:
            pass  # in use
        finally:
            os.close(fd)
    return removed
