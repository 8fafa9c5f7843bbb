"""R33: on SQLite, a second process writing the same file never fails a request.

A transaction that read before it wrote (setWorkbookSpendLimit, the end of stopRun) met
"database is locked" whenever another process committed in between, and the client got
INTERNAL_SERVER_ERROR: 446 of 808 spend-limit calls with `serve --workers 2`."""

import sqlite3
import threading
import time

import pytest
from typer.testing import CliRunner

from tally.cli import cli


def _writer(path: str, stop: threading.Event, workbook_id: str, commits: list[int]) -> None:
    """Another process's short write transactions, back to back, as a job's would be."""
    conn = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        while not stop.is_set():
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("UPDATE workbook SET name = name WHERE id = ?", (workbook_id,))
            time.sleep(0.002)
            conn.execute("COMMIT")
            commits.append(1)
            time.sleep(0.001)
    finally:
        conn.close()


async def test_r33_requests_beside_another_writer_on_sqlite_never_fail(api, database):
    if database.is_postgres:
        pytest.skip("SQLite's file lock; PostgreSQL locks rows")
    t = await api.create_workspace("enterprise")
    other = await api.create_workbook(t.admin_key, "written by the other process")
    books = [await api.create_workbook(t.admin_key, f"wb{n}") for n in range(4)]
    stop, commits = threading.Event(), []
    path = database.url.removeprefix("sqlite://")
    thread = threading.Thread(target=_writer, args=(path, stop, other, commits))
    thread.start()
    try:
        for n in range(60):
            limit = await api.set_limit(t.admin_key, books[n % 4], str(100 + n))
            assert limit["spendLimit"] == str(100 + n), limit
            run = await api.start_run(t.admin_key, books[n % 4])
            ended = await api.end_run(t.admin_key, run["id"])
            assert ended["status"] == "STOPPED"
    finally:
        stop.set()
        thread.join()
    assert len(commits) > 50  # the other writer really did commit between the requests


def test_r33_serve_refuses_several_workers_on_sqlite(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("TALLY_DATABASE_URL", f"sqlite://{tmp_path}/tally.sqlite3")
    monkeypatch.setenv("TALLY_OPERATOR_KEY", "tly_op_x")
    result = CliRunner().invoke(cli, ["serve", "--workers", "2"])
    assert result.exit_code == 2
    assert "--workers 2 needs PostgreSQL" in result.output
    assert not (tmp_path / "tally.sqlite3").exists()  # refused before anything started
