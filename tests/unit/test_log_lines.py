"""The log lines both formats write: one line an event, a traceback included, never a local."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
import structlog

from app.logs import configure_logging, get_logger

SECRET = "tly_sk_not_for_logs"


@pytest.fixture
def restored() -> Iterator[None]:
    """configure_logging changes process-wide state: give it back after the test."""
    names = ("", "uvicorn", "uvicorn.error", "uvicorn.access")
    saved = {n: (logging.getLogger(n).handlers[:], logging.getLogger(n).propagate) for n in names}
    level, config = logging.getLogger().level, structlog.get_config()
    yield
    for name, (handlers, propagate) in saved.items():
        logging.getLogger(name).handlers, logging.getLogger(name).propagate = handlers, propagate
    logging.getLogger().setLevel(level)
    structlog.configure(**config)


def _fail(secret: str = SECRET) -> None:
    raise ValueError("the charge failed")


def _lines(capsys: pytest.CaptureFixture[str], fmt: str) -> list[str]:
    configure_logging(fmt)  # after capsys replaced stderr: both writers write there
    get_logger("tally.request").info("request", method="POST", status=200, operation="Charge x")
    try:
        _fail()
    except ValueError:
        logging.getLogger("uvicorn.error").exception("Exception in ASGI application")
        get_logger("tally").exception("job failed", job="renewals")
    return capsys.readouterr().err.splitlines()


def test_text_lines_are_logfmt_with_the_traceback_on_its_line(capsys, restored):
    lines = _lines(capsys, "text")
    assert len(lines) == 3
    assert lines[0].split(" ", 1)[1] == (
        'level=info logger=tally.request event=request method=POST status=200 operation="Charge x"'
    )
    assert lines[0].startswith("timestamp=") and lines[0].split(" ")[0].endswith("Z")
    for line, logger in zip(lines[1:], ("uvicorn.error", "tally"), strict=True):
        assert f"level=error logger={logger} event=" in line
        assert "Traceback (most recent call last):\\n" in line
        assert "ValueError: the charge failed" in line
    assert SECRET not in "\n".join(lines)


def test_json_lines_carry_the_traceback_frames_but_no_locals(capsys, restored):
    records = [json.loads(line) for line in _lines(capsys, "json")]
    assert [(r["logger"], r["level"], r["event"]) for r in records] == [
        ("tally.request", "info", "request"),
        ("uvicorn.error", "error", "Exception in ASGI application"),
        ("tally", "error", "job failed"),
    ]
    first, last = records[0], records[2]
    assert (first["method"], first["status"], last["job"]) == ("POST", 200, "renewals")
    for record in records[1:]:
        (exception,) = record["exception"]
        raised = (exception["exc_type"], exception["exc_value"])
        assert raised == ("ValueError", "the charge failed")
        assert [f["name"] for f in exception["frames"]][-1] == "_fail"
        assert all("locals" not in frame for frame in exception["frames"])
    # A local holding a key (the failing function's argument) is not written anywhere.
    assert SECRET not in json.dumps(records)


def test_a_json_line_never_raises_on_what_orjson_refuses(capsys, restored):
    """A lone surrogate reaches the request line from a client's operationName (bodies orjson
    refuses are read by the standard library's decoder, which keeps it)."""
    configure_logging("json")
    get_logger("tally.request").info("request", operation="\ud800x", big=2**70, keys={1: "a"})
    (line,) = capsys.readouterr().err.splitlines()
    record = json.loads(line)
    assert (record["operation"], record["big"], record["keys"]) == ("\ud800x", 2**70, {"1": "a"})
