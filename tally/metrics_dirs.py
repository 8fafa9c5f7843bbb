"""The directory of a server's metric samples (prometheus-client's multiprocess mode): made at
start, removed when the server stops, and, for a server killed before it could remove its own,
removed by the next server to start on the machine."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from types import FrameType
from typing import Any

PREFIX = "tally-metrics-"  # then the server's process id, a dash, mkdtemp's random part


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
    made = tempfile.mkdtemp(prefix=f"{PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = made
    return made


def remove_abandoned(scratch: Path) -> list[Path]:
    """Remove the directories that servers killed outright (SIGKILL, the OOM killer) left in
    `scratch`: those whose name carries a process id no longer running. One whose process
    is alive, or whose id was given to another process since, stays (a directory is small;
    removing a running server's would lose its samples). Returns what was removed."""
    removed = []
    for directory in scratch.glob(f"{PREFIX}*-*"):
        pid = directory.name[len(PREFIX) :].partition("-")[0]
        if pid.isdigit() and directory.is_dir() and not _running(int(pid)):
            shutil.rmtree(directory, ignore_errors=True)
            removed.append(directory)
    return removed


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True
