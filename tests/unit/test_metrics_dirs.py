"""tally.metrics_dirs: only the directories of servers no longer running are removed."""

from __future__ import annotations

import os
import subprocess
import sys

from tally.metrics_dirs import PREFIX, remove_abandoned


def _gone_pid() -> int:
    """The id of a process that has exited (and been reaped)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def test_only_directories_of_processes_no_longer_running_are_removed(tmp_path):
    gone = _gone_pid()
    dead = tmp_path / f"{PREFIX}{gone}-abc123"
    alive = tmp_path / f"{PREFIX}{os.getpid()}-def456"
    init = tmp_path / f"{PREFIX}1-aaa"  # pid 1 runs, whoever owns it
    legacy = tmp_path / f"{PREFIX}x8f2k1"  # an older server's name: no process id to check
    other = tmp_path / f"not-{PREFIX}{gone}-abc"
    for directory in (dead, alive, init, legacy, other):
        directory.mkdir()
    (dead / "counter_1.db").write_bytes(b"\0" * 16)
    stray = tmp_path / f"{PREFIX}{gone}-file"
    stray.write_text("a file, not a server's directory")

    assert remove_abandoned(tmp_path) == [dead]
    remaining = sorted(p.name for p in tmp_path.iterdir())
    assert remaining == sorted(p.name for p in (alive, init, legacy, other, stray))
    assert remove_abandoned(tmp_path) == []
