"""deploy/grafana/tally.json and deploy/prometheus/: every metric and label their expressions
name is one Tally exposes, and the alerts fire when they should (promtool, when installed)."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

import app.metrics
from app.errors import ErrorCode
from app.webhooks.rules import DeliveryStatus
from jobs.registry import JOBS

ROOT = Path(__file__).parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
DASHBOARD = ROOT / "deploy" / "grafana" / "tally.json"
SUFFIXES = {"counter": ("_total",), "gauge": ("",), "histogram": ("_bucket", "_sum", "_count")}
# Label values that come from a closed set in the code, so an expression can only match these.
VALUES = {
    "job": set(JOBS),
    "outcome": {"charged", "refused", "ok", "failed"},
    "status": {s.value for s in DeliveryStatus},
    "code": {c.value for c in ErrorCode} | {""},
    "state": {"in_use", "idle"},
}
SELECTOR = re.compile(r"\b([a-zA-Z_:][\w:]*)\s*(?:\{([^}]*)\})?\s*(?=\[|\)|$|\s|\{|[=<>!]|or\b)")
MATCHER = re.compile(r'(\w+)\s*(=~|!~|!=|=)\s*"([^"]*)"')
GROUPING = re.compile(r"\b(?:by|without)\s*\(([^)]*)\)")


def exposed() -> dict[str, set[str]]:
    """Each sample name Tally's registry can expose, with the labels it carries."""
    names: dict[str, set[str]] = {}
    for metric in vars(app.metrics).values():
        if isinstance(metric, MetricWrapperBase):
            for suffix in SUFFIXES[metric._type]:
                labels = set(metric._labelnames) | ({"le"} if suffix == "_bucket" else set())
                names[metric._name + suffix] = labels
    return names


def scrape_jobs() -> set[str]:
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    return {job["job_name"] for job in config["scrape_configs"]}


def alert_rules() -> list[dict]:
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def dashboard_panels() -> list[dict]:
    return [p for p in json.loads(DASHBOARD.read_text())["panels"] if p["type"] != "row"]


def dashboard_expressions() -> list[str]:
    return [target["expr"] for panel in dashboard_panels() for target in panel["targets"]]


def check_expression(expr: str, metrics: dict[str, set[str]]) -> list[str]:
    """What in `expr` Tally does not expose: unknown metrics, labels or label values."""
    problems = []
    used: set[str] = set()
    for name, matchers in SELECTOR.findall(expr.replace("$__rate_interval", "5m")):
        if name == "up":
            labels = {"job", "instance"}
            for label, _, value in MATCHER.findall(matchers):
                if label == "job" and value not in scrape_jobs():
                    problems.append(f"up{{job={value!r}}}: no such scrape job")
        elif name.startswith("tally_"):
            if name not in metrics:
                problems.append(f"{name}: not a metric Tally exposes")
                continue
            labels = metrics[name]
            for label, op, value in MATCHER.findall(matchers):
                if label not in labels:
                    problems.append(f"{name}: no label {label}")
                elif op == "=" and label in VALUES and value not in VALUES[label]:
                    problems.append(f"{name}{{{label}={value!r}}}: never a value of {label}")
        else:
            continue
        used |= labels | {"job", "instance"}  # the scrape adds both
    for grouping in GROUPING.findall(expr):
        for label in filter(None, (part.strip() for part in grouping.split(","))):
            if label not in used:
                problems.append(f"by ({label}): no metric of {expr!r} has it")
    if not any(name.startswith("tally_") or name == "up" for name, _ in SELECTOR.findall(expr)):
        problems.append(f"{expr!r} names no metric")
    return problems


def test_the_checker_catches_a_wrong_name_label_or_value():
    metrics = exposed()
    assert "tally_usage_reports_total" in metrics
    assert "tally_http_request_duration_seconds_bucket" in metrics
    assert check_expression('sum(rate(tally_usage_report_total{outcome="refused"}[5m]))', metrics)
    assert check_expression('rate(tally_usage_reports_total{result="refused"}[5m])', metrics)
    assert check_expression('tally_job_runs_total{job="renewal"}', metrics)
    assert check_expression("sum by (workspace) (tally_live_subscriptions)", metrics)
    assert check_expression('up{job="tally"} == 0', metrics)
    assert not check_expression('sum by (job) (tally_job_runs_total{job="renewals"})', metrics)


def test_every_alert_names_only_what_tally_exposes():
    metrics = exposed()
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= {
        "TallySchedulerDown",
        "TallyRenewalsNotRunning",
        "TallyWebhookDeliveriesFailing",
        "TallyRefusalSpike",
        "TallyDatabaseDown",
        "TallyApiDown",
        "TallyVerifyFoundDifferences",
    }
    problems = [p for rule in rules for p in check_expression(rule["expr"], metrics)]
    assert problems == []
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning"}
        assert rule["annotations"]["summary"]


def test_every_dashboard_panel_names_only_what_tally_exposes():
    dashboard = json.loads(DASHBOARD.read_text())
    variables = dashboard["templating"]["list"]
    assert [(v["name"], v["type"], v["query"]) for v in variables] == [
        ("datasource", "datasource", "prometheus")
    ]
    panels = dashboard_panels()
    assert len({p["id"] for p in dashboard["panels"]}) == len(dashboard["panels"])
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, panel["title"]
        assert panel["targets"], panel["title"]
    metrics = exposed()
    problems = [p for expr in dashboard_expressions() for p in check_expression(expr, metrics)]
    assert problems == []
    shown = {name for expr in dashboard_expressions() for name in re.findall(r"tally_\w+", expr)}
    # Every metric Tally exposes has a panel (a histogram through its buckets).
    assert {name for name in metrics if not name.endswith(("_sum", "_count"))} == shown


def test_prometheus_keeps_the_job_label_of_tallys_job_metrics():
    """tally_job_runs_total{job=...} would become exported_job without honor_labels."""
    config = yaml.safe_load((PROMETHEUS / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]
    assert [job.get("honor_labels") for job in config["scrape_configs"]] == [True, True]


def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        pytest.skip("promtool is not installed (apt-get install prometheus)")
    return found


def test_promtool_accepts_the_rules_the_config_and_the_dashboards_queries(tmp_path):
    tool = promtool()
    for command in (["check", "rules", "alerts.yml"], ["check", "config", "prometheus.yml"]):
        checked = subprocess.run(
            [tool, *command], cwd=PROMETHEUS, capture_output=True, text=True, timeout=60
        )
        assert checked.returncode == 0, checked.stdout + checked.stderr
    # The dashboard's queries, as recording rules, so promtool parses each one.
    rules = [
        {"record": f"dashboard:query{n}", "expr": expr.replace("$__rate_interval", "5m")}
        for n, expr in enumerate(dashboard_expressions())
    ]
    (tmp_path / "dashboard.yml").write_text(
        yaml.safe_dump({"groups": [{"name": "d", "rules": rules}]})
    )
    checked = subprocess.run(
        [tool, "check", "rules", str(tmp_path / "dashboard.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr


# Series as Tally exposes them; one sample a minute.
REFUSED = 'tally_usage_reports_total{{outcome="refused", code="{}"}}'
ALERT_TESTS = [
    {
        "interval": "1m",
        "input_series": [
            {  # a clean renewals run every minute for 10 minutes, then none
                "series": 'tally_job_last_success_timestamp_seconds{job="renewals"}',
                "values": "0+60x10 600x30",
            },
            {"series": 'up{job="tally-scheduler", instance="s:9464"}', "values": "1x40"},
            {
                "series": 'tally_database_up{job="tally-api", instance="a:8000"}',
                "values": "1x5 0x10 1x25",
            },
            {"series": 'tally_verify_differences{job="tally-scheduler"}', "values": "0x20 3x20"},
        ],
        "alert_rule_test": [
            {"eval_time": "15m", "alertname": "TallyRenewalsNotRunning", "exp_alerts": []},
            {"eval_time": "25m", "alertname": "TallyRenewalsNotRunning", "exp_alerts": []},
            {
                "eval_time": "27m",  # 10 minutes late from 21m, for 5 minutes
                "alertname": "TallyRenewalsNotRunning",
                "exp_alerts": [{"exp_labels": {"severity": "critical"}}],
            },
            {"eval_time": "20m", "alertname": "TallySchedulerDown", "exp_alerts": []},
            {"eval_time": "5m", "alertname": "TallyDatabaseDown", "exp_alerts": []},
            {
                "eval_time": "9m",
                "alertname": "TallyDatabaseDown",
                "exp_alerts": [
                    {
                        "exp_labels": {
                            "severity": "critical",
                            "job": "tally-api",
                            "instance": "a:8000",
                        }
                    }
                ],
            },
            {"eval_time": "30m", "alertname": "TallyDatabaseDown", "exp_alerts": []},
            {"eval_time": "19m", "alertname": "TallyVerifyFoundDifferences", "exp_alerts": []},
            {
                "eval_time": "21m",
                "alertname": "TallyVerifyFoundDifferences",
                "exp_alerts": [{"exp_labels": {"severity": "critical"}}],
            },
        ],
    },
    {  # nothing scraped from the scheduler at all
        "interval": "1m",
        "input_series": [{"series": 'up{job="tally-api", instance="a:8000"}', "values": "1x20"}],
        "alert_rule_test": [
            {
                "eval_time": "10m",
                "alertname": "TallySchedulerDown",
                "exp_alerts": [{"exp_labels": {"severity": "critical", "job": "tally-scheduler"}}],
            },
            {
                "eval_time": "10m",
                "alertname": "TallyRenewalsNotRunning",
                "exp_alerts": [{"exp_labels": {"severity": "critical", "job": "renewals"}}],
            },
            {"eval_time": "10m", "alertname": "TallyApiDown", "exp_alerts": []},
        ],
    },
    {  # refusals: steady for a day, then ten times as many, then a code never seen before
        "interval": "1m",
        "input_series": [
            {
                "series": REFUSED.format("INSUFFICIENT_DATA_CREDITS"),
                "values": "0+6x1440 8640+60x60",
            },
            {
                "series": REFUSED.format("ACTIONS_EXHAUSTED"),
                "values": "0x1440 0+120x60",
            },
            {
                "series": 'tally_webhook_deliveries_total{status="FAILED"}',
                "values": "0x1440 0x30 1x29",
            },
        ],
        "alert_rule_test": [
            {"eval_time": "1430m", "alertname": "TallyRefusalSpike", "exp_alerts": []},
            {
                "eval_time": "1470m",
                "alertname": "TallyRefusalSpike",
                "exp_alerts": [
                    {"exp_labels": {"severity": "warning", "code": "ACTIONS_EXHAUSTED"}},
                    {"exp_labels": {"severity": "warning", "code": "INSUFFICIENT_DATA_CREDITS"}},
                ],
            },
            {"eval_time": "1460m", "alertname": "TallyWebhookDeliveriesFailing", "exp_alerts": []},
            {
                "eval_time": "1475m",
                "alertname": "TallyWebhookDeliveriesFailing",
                "exp_alerts": [{"exp_labels": {"severity": "warning"}}],
            },
        ],
    },
]


def test_the_alerts_fire_when_they_should_and_only_then(tmp_path):
    tool = promtool()
    # Without annotations, which promtool would otherwise compare word for word.
    groups = yaml.safe_load((PROMETHEUS / "alerts.yml").read_text())
    for rule in (r for group in groups["groups"] for r in group["rules"]):
        rule.pop("annotations")
    (tmp_path / "alerts.yml").write_text(yaml.safe_dump(groups))
    tests = {
        "rule_files": [str(tmp_path / "alerts.yml")],
        "evaluation_interval": "1m",
        "tests": ALERT_TESTS,
    }
    (tmp_path / "alerts_test.yml").write_text(yaml.safe_dump(tests))
    checked = subprocess.run(
        [tool, "test", "rules", str(tmp_path / "alerts_test.yml")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert checked.returncode == 0, checked.stdout + checked.stderr
