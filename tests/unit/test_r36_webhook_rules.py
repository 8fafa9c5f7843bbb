"""R36's rules without a database: retry schedule, verdicts, URLs, signatures, addresses."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from standardwebhooks import Webhook, WebhookVerificationError

from app.config import Settings
from app.errors import InvalidInput
from app.webhooks import rules, signing
from app.webhooks.addresses import Refused, resolve
from app.webhooks.rules import AttemptResult, Verdict

NOW = datetime(2025, 1, 31, 10, 0, tzinfo=UTC)


def test_r36_retries_follow_the_schedule_within_10_percent_then_stop():
    rng = random.Random(7)
    for attempt, delay in enumerate(rules.RETRY_SCHEDULE, start=1):
        waits = [
            (rules.next_attempt_at(attempt, rules.RETRY_SCHEDULE, NOW, rng) - NOW).total_seconds()
            for _ in range(200)
        ]
        assert delay * 0.9 <= min(waits) < delay * 0.95, attempt
        assert delay * 1.05 < max(waits) <= delay * 1.1, attempt
    assert rules.RETRY_SCHEDULE == (5, 300, 1800, 7200, 18000, 36000, 36000)
    assert rules.next_attempt_at(8, rules.RETRY_SCHEDULE, NOW, rng) is None  # 8 attempts in all
    assert rules.next_attempt_at(2, (1.0,), NOW, rng) is None


@pytest.mark.parametrize(
    ("status", "error", "verdict"),
    [
        (200, None, Verdict.SUCCEEDED),
        (204, None, Verdict.SUCCEEDED),
        (299, None, Verdict.SUCCEEDED),
        (410, "answered 410", Verdict.GONE),
        (302, "answered 302: redirects are not followed", Verdict.FAILED),
        (404, "answered 404", Verdict.FAILED),
        (500, "answered 500", Verdict.FAILED),
        (None, "no answer within 10 s", Verdict.FAILED),
        (None, "refused: 10.0.0.1 is not public", Verdict.FAILED),
    ],
)
def test_r36_what_an_answer_means(status, error, verdict):
    if status is not None:
        assert rules.status_error(status) == error
    assert AttemptResult(status, error, 5).verdict is verdict


def test_r36_a_lease_outlasts_the_attempt():
    assert rules.lease_seconds(10) == 30
    assert rules.lease_seconds(1) > 1


def test_r36_five_days_of_failures():
    assert not rules.failing_too_long(None, NOW)
    assert not rules.failing_too_long(NOW - timedelta(days=5) + timedelta(seconds=1), NOW)
    assert rules.failing_too_long(NOW - timedelta(days=5), NOW)


@pytest.mark.parametrize(
    ("url", "allow_private", "ok"),
    [
        ("https://hooks.example.com/tally?x=1", False, True),
        ("https://hooks.example.com:8443/", False, True),
        ("https://8.8.8.8/", False, True),
        ("http://hooks.example.com/", False, False),
        ("http://hooks.example.com/", True, True),
        ("https://192.168.1.1/", False, False),
        ("https://192.168.1.1/", True, True),
        ("http://localhost:8000/", True, True),
        ("https://LOCALHOST./", False, False),
        ("https://[fd00::1]/", False, False),
        ("https://169.254.169.254/latest/meta-data", False, False),
        ("gopher://hooks.example.com/", True, False),
        ("https:///path", False, False),
        ("https://a:b@hooks.example.com/", False, False),
        ("https://hooks.example.com/\n", False, False),
        ("https://hooks.example.com:port/", False, False),
    ],
)
def test_r36_endpoint_urls(url, allow_private, ok):
    if ok:
        assert rules.check_url(url, allow_private) == url
    else:
        with pytest.raises(InvalidInput):
            rules.check_url(url, allow_private)


def test_r36_event_types_are_stored_in_api_order():
    assert rules.event_types(None) == rules.event_types([]) == ""
    stored = rules.event_types(["test.ping", "credits.depleted", "test.ping"])
    assert stored == ",credits.depleted,test.ping,"
    assert rules.event_type_list(stored) == ["credits.depleted", "test.ping"]
    assert rules.event_type_list("") == []
    with pytest.raises(InvalidInput, match=r"unknown event type 'credit\.depleted'"):
        rules.event_types(["credit.depleted"])
    assert len(rules.EVENT_TYPES) == 14


def test_r36_signatures_verify_with_standardwebhooks():
    secret, previous = signing.new_secret(), signing.new_secret()
    assert secret.startswith("whsec_") and secret != previous
    body = signing.body("test.ping", NOW, {"workspaceId": "w"})
    assert body == (
        b'{"type":"test.ping","timestamp":"2025-01-31T10:00:00+00:00","data":{"workspaceId":"w"}}'
    )
    sent_at = datetime.now(UTC)
    headers = signing.headers([secret, previous], "evt-1", sent_at, body)
    assert headers["webhook-id"] == "evt-1"
    assert headers["webhook-timestamp"] == str(int(sent_at.timestamp()))
    assert [s[:3] for s in headers["webhook-signature"].split(" ")] == ["v1,", "v1,"]
    for key in (secret, previous):
        assert Webhook(key).verify(body, headers) == {
            "type": "test.ping",
            "timestamp": "2025-01-31T10:00:00+00:00",
            "data": {"workspaceId": "w"},
        }
    with pytest.raises(WebhookVerificationError):
        Webhook(signing.new_secret()).verify(body, headers)
    with pytest.raises(WebhookVerificationError):
        Webhook(secret).verify(body + b" ", headers)


def test_r36_the_previous_secret_signs_until_its_time():
    until = NOW + timedelta(hours=24)
    assert signing.signing_secrets("a", "b", until, NOW) == ["a", "b"]
    assert signing.signing_secrets("a", "b", until, until) == ["a"]
    assert signing.signing_secrets("a", None, None, NOW) == ["a"]


async def test_r36_addresses_are_checked_at_each_attempt():
    with pytest.raises(Refused, match=r"127\.0\.0\.1, not a public address"):
        await resolve("http://127.0.0.1:9/x", allow_private=False)
    with pytest.raises(Refused, match="not a public address"):
        await resolve("http://localhost:9/x", allow_private=False)
    with pytest.raises(Refused, match="does not resolve"):
        await resolve("https://no-such-host.invalid/", allow_private=True)
    target = await resolve("http://127.0.0.1:9/x?y=1", allow_private=True)
    assert (target.url, target.host_header, target.tls_name) == (
        "http://127.0.0.1:9/x?y=1",
        "127.0.0.1:9",
        "127.0.0.1",
    )
    v6 = await resolve("https://[::1]/", allow_private=True)
    assert (v6.url, v6.host_header) == ("https://[::1]/", "[::1]")


def test_r36_settings_from_the_environment(monkeypatch):
    defaults = Settings.from_env()
    assert (defaults.webhook_delivery, defaults.webhook_allow_private) == (True, False)
    assert (defaults.webhook_timeout, defaults.webhook_retention_days) == (10.0, 30)
    assert defaults.webhook_retry_schedule == rules.RETRY_SCHEDULE
    monkeypatch.setenv("TALLY_WEBHOOK_DELIVERY", "off")
    monkeypatch.setenv("TALLY_WEBHOOK_ALLOW_PRIVATE", "on")
    monkeypatch.setenv("TALLY_WEBHOOK_TIMEOUT", "2.5")
    monkeypatch.setenv("TALLY_WEBHOOK_RETRY_SCHEDULE", "1, 2,0.5")
    monkeypatch.setenv("TALLY_WEBHOOK_RETENTION_DAYS", "7")
    s = Settings.from_env()
    assert (s.webhook_delivery, s.webhook_allow_private, s.webhook_timeout) == (False, True, 2.5)
    assert (s.webhook_retry_schedule, s.webhook_retention_days) == ((1.0, 2.0, 0.5), 7)
    for name, value in [
        ("TALLY_WEBHOOK_RETRY_SCHEDULE", "5,,300"),
        ("TALLY_WEBHOOK_RETRY_SCHEDULE", "-1"),
        ("TALLY_WEBHOOK_TIMEOUT", "0"),
        ("TALLY_WEBHOOK_TIMEOUT", "inf"),
        ("TALLY_WEBHOOK_RETENTION_DAYS", "0"),
    ]:
        monkeypatch.setenv(name, value)
        with pytest.raises(ValueError, match=name):
            Settings.from_env()
        monkeypatch.undo()
