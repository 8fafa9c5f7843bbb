"""The fast paths are fenced: one install(), an off switch, a version check, and a verify mode
in which the whole suite's answers are computed both ways and compared (tests/conftest.py)."""

import logging

import pytest

from graphql_schema import perf
from graphql_schema.documents import DEFAULT_MAX_TOKENS
from graphql_schema.perf.output import FastOutputExecutionContext
from graphql_schema.perf.verify import MISMATCHES, VerifiedExecutionContext
from graphql_schema.schema import schema_for
from tests.conftest import FAST_PATHS


def test_install_gives_the_context_of_each_mode():
    assert perf.install("off") is None
    assert perf.install("on") is FastOutputExecutionContext
    assert perf.install("verify") is VerifiedExecutionContext


def test_the_fast_paths_refuse_other_library_versions(monkeypatch, caplog):
    monkeypatch.setattr(
        perf, "version", lambda name: "3.4.0" if name == "graphql-core" else "0.341.2"
    )
    with caplog.at_level(logging.WARNING, logger="tally"):
        assert perf.install("on") is None
    assert "found graphql-core 3.4.0; answers are graphql-core's own" in caplog.text


def test_the_suite_runs_in_verify_mode():
    assert FAST_PATHS == "verify"
    served = schema_for(True, DEFAULT_MAX_TOKENS, FAST_PATHS)
    assert served.execution_context_class is VerifiedExecutionContext


async def test_verify_mode_catches_a_fast_path_that_answers_differently(api, monkeypatch):
    original = FastOutputExecutionContext._complete_plain

    def wrong(self, plan, source):
        answer = original(self, plan, source)
        return {key: ("wrong" if key == "code" else value) for key, value in answer.items()}

    monkeypatch.setattr(FastOutputExecutionContext, "_complete_plain", wrong)
    try:
        body = await api.raw("{ plans { code name } }", key=api.operator_key)
        assert body["errors"][0]["extensions"]["code"] == "INTERNAL_SERVER_ERROR"
        assert MISMATCHES[0].startswith(
            "fast path differs from graphql-core on an object of Plan at plans.0: "
            "{'code': 'wrong', 'name': 'Free'} != {'code': 'free'"
        )
    finally:
        MISMATCHES.clear()  # seen and expected here: not a failure of the suite
    monkeypatch.undo()
    assert (await api.gql("{ plans { code } }", key=api.operator_key))["plans"][0] == {
        "code": "free"
    }


@pytest.mark.parametrize("mode", ["on", "off", "verify"])
def test_the_off_switch_is_a_setting(monkeypatch, mode):
    from app.config import Settings

    monkeypatch.setenv("TALLY_FAST_PATHS", mode.upper())
    assert Settings.from_env().fast_paths == mode
