"""Hand-written operations with drawn variables, beside the generated documents.

A generated document rarely gets every field of an input right at once (a provider with its
data type, a range of days in order), so most stop at validation. These keep the shape right
and draw the values, valid-looking or hostile, so the fuzz reaches the rules behind: charges,
refunds, runs, holds, limits, history, estimates, plan changes, the ledger's cursors.
"""

from __future__ import annotations

import base64
import json
import uuid
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from graphql import value_from_ast_untyped
from hypothesis import strategies as st

from tests.fuzz.strategies import (
    EDGE_DATETIMES,
    HOSTILE_DECIMALS,
    NON_ASCII_DECIMALS,
    VALID_DECIMALS,
    Request,
    Vocabulary,
    datetimes,
    decimals,
    encode,
    ints,
    strings,
    weighted,
)

PRICED = (
    ("linkedin", "profile"), ("hunter", "email"), ("zerobounce", "email_validation"),
    ("apollo", "phone"), ("clearbit", "company"), ("hunter", "phone"), ("acme", "email"),
)  # fmt: skip
KINDS = (
    "ENRICHMENT", "AI", "SIGNAL", "EMAIL_SEND", "SLACK_POST", "NOTION_BRIEF", "SEQUENCER_LEAD",
    "SEQUENCER_EXPORT", "CRM_EXPORT", "WAREHOUSE_EXPORT", "HTTP_API_CALL", "ADS_AUDIENCE_EXPORT",
    "SOURCING", "CRM_IMPORT", "WAREHOUSE_IMPORT", "WEBHOOK_IMPORT", "FORMULA", "MANUAL_ENTRY",
    "SCULPTOR", "AUDIENCE_CREATE", "CSV_EXPORT", "TELEPATHY",
)  # fmt: skip
DIMENSIONS = ("DAY", "CYCLE", "WORKBOOK", "TABLE", "PROVIDER", "KIND")
PLANS = ("free", "launch", "growth", "enterprise", "platinum", "")
TIERS = (None, 100, 2500, 5000, 10000, 6000, 12000, 50000, 100000, 250000, 0, -1, 7)

RECORD = """mutation($i: RecordUsageInput!) { recordUsage(input: $i) { __typename
  ... on Charge { id actions dataCredits results workbookId tableId refundedResults }
  ... on Refusal { code message } } }"""
BATCH = """mutation($i: RecordUsageBatchInput!) { recordUsageBatch(input: $i) {
  charged refused actions dataCredits
  results { __typename ... on Charge { id workbookId } ... on Refusal { code message } } } }"""
REFUND = """mutation($i: RefundInput!) { refundCharge(input: $i) { __typename
  ... on Refund { id chargeId results dataCredits } ... on Refusal { code message } } }"""
TOP_UP = """mutation($i: TopUpInput!) { purchaseTopUp(input: $i) { __typename
  ... on TopUp { id credits price } ... on Refusal { code message } } }"""
LIMIT = """mutation($w: ID!, $l: Decimal) { setWorkbookSpendLimit(workbookId: $w, limit: $l) {
  __typename ... on Workbook { id spendLimit spent } ... on Refusal { code message } } }"""
START_RUN = """mutation($i: StartRunInput!) { startRun(input: $i) {
  id workbookId status budget held spent holdExpiresAt } }"""
END_RUN = """mutation($r: ID!) { stopRun(runId: $r) { id status held spent endedAt } }"""
HISTORY = """query($f: DateTime!, $t: DateTime!, $g: [UsageDimension!]!, $w: ID, $tb: String) {
  usageHistory(from: $f, to: $t, groupBy: $g, workbookId: $w, tableId: $tb) {
    day cycleStart workbookId workbookName tableId provider kind actions dataCredits results } }"""
ESTIMATE = """query($i: EstimateInput!) { estimateCost(input: $i) { actions dataCredits
  options { provider results dataCredits }
  coverage { covered refusal dataCreditsAvailable workbookLimitRemaining } } }"""
CHANGE_PLAN = """mutation($i: ChangePlanInput!) { changePlan(input: $i) { __typename
  ... on Workspace { id plan { code } creditTier billingInterval pendingChange { effectiveAt } }
  ... on Refusal { code message } } }"""
BILLING = """query($f: DateTime, $t: DateTime) { billingCharges(from: $f, to: $t) {
  id kind amount credits periodStart } }"""
LEDGER = """query($f: Int, $a: String, $w: ID) { ledger(first: $f, after: $a, workbookId: $w) {
  edges { cursor node { id entryType amount balanceAfter workbookId chargeId } }
  pageInfo { hasNextPage endCursor } } }"""
CREATE_WORKSPACE = """mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) {
  workspace { id plan { code } creditTier billingInterval status trialEndsAt } } }"""


def plain(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    """A value node strategy as the JSON value a client would put in `variables`."""
    return strategy.map(value_from_ast_untyped)


class Values:
    """Drawn variable values, valid-looking more often than not."""

    def __init__(self, vocabulary: Vocabulary) -> None:
        self.workbook = plain(vocabulary.of_kind("workbook"))
        self.charge = plain(vocabulary.of_kind("charge"))
        self.run = plain(vocabulary.of_kind("run"))
        self.decimal = plain(decimals())
        self.datetime = plain(datetimes())
        self.int = plain(ints())
        self.text = plain(strings(vocabulary.strings))
        fresh = st.uuids().map(lambda u: f"fuzz-{u.hex[:12]}")
        self.key = weighted((2, fresh), (2, self.text))  # new, replayed or hostile

    def usage(self) -> st.SearchStrategy[dict[str, Any]]:
        priced = st.sampled_from(PRICED).map(
            lambda p: {"kind": "ENRICHMENT", "provider": p[0], "dataType": p[1]}
        )
        ai = st.fixed_dictionaries(
            {"kind": st.just("AI"), "model": st.sampled_from(["small", "large", "huge"])},
            optional={"inputTokens": self.int, "outputTokens": self.int},
        )
        other = st.sampled_from(KINDS).map(lambda kind: {"kind": kind})
        common = st.fixed_dictionaries(
            {"workbookId": self.workbook, "results": self.int, "idempotencyKey": self.key},
            optional={
                "tableId": self.text,
                "runId": self.run,
                "ownApiKey": st.booleans(),
                "sentAt": self.datetime,
            },
        )
        return st.builds(
            lambda a, b: {**a, **b}, common, weighted((3, priced), (1, ai), (1, other))
        )

    def instant_range(self) -> st.SearchStrategy[tuple[Any, Any]]:
        """Mostly `from` before `to` within 400 days, around the data; sometimes anything."""
        start = st.datetimes(datetime(2024, 1, 1), datetime(2026, 12, 31), timezones=st.just(UTC))
        length = st.timedeltas(timedelta(days=-2), timedelta(days=500))
        ordered = st.builds(lambda s, d: (s.isoformat(), (s + d).isoformat()), start, length)
        return weighted((3, ordered), (1, st.tuples(self.datetime, self.datetime)))

    def cursor(self) -> st.SearchStrategy[str]:
        def encoded(value: object) -> str:
            return base64.urlsafe_b64encode(f"ledger:{value}".encode()).decode()

        numbers = st.sampled_from([1, 0, -1, 2**63 - 1, 2**63, 10**30, "١٢", "", "x", " 5"])
        junk = st.binary().map(lambda raw: base64.urlsafe_b64encode(raw).decode())
        return weighted((2, numbers.map(encoded)), (1, self.text), (1, junk))


def _input(values: dict[str, Any], **optional: Any) -> st.SearchStrategy[dict[str, Any]]:
    return st.fixed_dictionaries(values, optional=optional)


def _request(name: str, query: str) -> Any:
    return lambda variables: Request(
        f"operation {name}", encode({"query": query, "variables": variables})
    )


def operations(vocabulary: Vocabulary) -> st.SearchStrategy[Request]:
    v = Values(vocabulary)
    interval = st.sampled_from(["MONTHLY", "ANNUAL", None, "WEEKLY"])
    drawn = {
        "recordUsage": st.builds(lambda i: {"i": i}, v.usage()),
        "recordUsageBatch": st.builds(
            lambda i: {"i": {"items": i}}, st.lists(v.usage(), max_size=5)
        ),
        "refundCharge": st.builds(
            lambda i: {"i": i},
            _input({"chargeId": v.charge, "idempotencyKey": v.key}, results=v.int, reason=v.text),
        ),
        "purchaseTopUp": st.builds(
            lambda i: {"i": i},
            _input(
                {"credits": v.decimal, "idempotencyKey": v.key},
                meter=st.sampled_from(["DATA_CREDITS", "ACTIONS", "HELD_CREDITS", None]),
            ),
        ),
        "setWorkbookSpendLimit": st.builds(
            lambda w, limit: {"w": w, "l": limit}, v.workbook, st.none() | v.decimal
        ),
        "startRun": st.builds(
            lambda i: {"i": i},
            _input(
                {"workbookId": v.workbook, "idempotencyKey": v.key},
                budget=v.decimal,
                hold=v.decimal,
                holdMinutes=v.int,
                name=v.text,
                tableId=v.text,
            ),
        ),
        "stopRun": st.builds(lambda r: {"r": r}, v.run),
        "usageHistory": st.builds(
            lambda span, g, w, tb: {"f": span[0], "t": span[1], "g": g, "w": w, "tb": tb},
            v.instant_range(),
            st.lists(st.sampled_from(DIMENSIONS), max_size=7),
            st.none() | v.workbook,
            st.none() | v.text,
        ),
        "estimateCost": st.builds(
            lambda one, i: {"i": {**one, **i}},
            v.usage().map(lambda u: {k: u[k] for k in u if k in ESTIMATE_FIELDS}),
            _input({"records": v.int}, hitRate=v.decimal, workbookId=v.workbook),
        ),
        "changePlan": st.builds(
            lambda i: {"i": i},
            _input(
                {"plan": st.sampled_from(PLANS), "idempotencyKey": v.key},
                creditTier=st.sampled_from(TIERS),
                billingInterval=interval,
            ),
        ),
        "billingCharges": st.builds(lambda span: {"f": span[0], "t": span[1]}, v.instant_range()),
        "ledger": st.builds(
            lambda f, a, w: {"f": f, "a": a, "w": w},
            st.none() | v.int,
            st.none() | v.cursor(),
            st.none() | v.workbook,
        ),
        "createWorkspace": st.builds(
            lambda i: {"i": i},
            _input(
                {"name": v.text, "plan": st.sampled_from(PLANS)},
                creditTier=st.sampled_from(TIERS),
                billingInterval=interval,
                trial=st.booleans(),
            ),
        ),
    }
    queries = {
        "recordUsage": RECORD, "recordUsageBatch": BATCH, "refundCharge": REFUND,
        "purchaseTopUp": TOP_UP, "setWorkbookSpendLimit": LIMIT, "startRun": START_RUN,
        "stopRun": END_RUN, "usageHistory": HISTORY, "estimateCost": ESTIMATE,
        "changePlan": CHANGE_PLAN, "billingCharges": BILLING, "ledger": LEDGER,
        "createWorkspace": CREATE_WORKSPACE,
    }  # fmt: skip
    built = {name: s.map(_request(name, queries[name])) for name, s in drawn.items()}
    return st.sampled_from(sorted(built)).flatmap(built.__getitem__)


ESTIMATE_FIELDS = frozenset(
    {"kind", "provider", "dataType", "ownApiKey", "model", "inputTokens", "outputTokens"}
)


# -- probes: every listed hostile scalar, once ------------------------------------------------

# Where a probe puts its value: (operation, its query, variables with "$" where the value goes).
DECIMAL_SITES = (
    ("purchaseTopUp credits", TOP_UP, {"i": {"credits": "$", "idempotencyKey": "@"}}),
    ("setWorkbookSpendLimit limit", LIMIT, {"w": "workbook", "l": "$"}),
    ("startRun budget", START_RUN, {"i": {"workbookId": "workbook", "budget": "$",
                                          "idempotencyKey": "@"}}),
    ("startRun hold", START_RUN, {"i": {"workbookId": "workbook", "hold": "$",
                                        "idempotencyKey": "@"}}),
    ("estimateCost hitRate", ESTIMATE, {"i": {"records": 100, "kind": "ENRICHMENT",
                                              "provider": "hunter", "dataType": "email",
                                              "hitRate": "$"}}),
)  # fmt: skip
DATETIME_SITES = (
    ("usageHistory from", HISTORY, {"f": "$", "t": "2025-02-01T00:00:00Z", "g": ["DAY"]}),
    ("billingCharges to", BILLING, {"f": "2025-01-01T00:00:00Z", "t": "$"}),
    ("recordUsage sentAt", RECORD, {"i": {"workbookId": "workbook", "runId": "run",
                                          "kind": "ENRICHMENT", "provider": "hunter",
                                          "dataType": "email", "results": 1, "sentAt": "$",
                                          "idempotencyKey": "@"}}),
)  # fmt: skip


def _fill(template: Any, value: Any, own: Mapping[str, str], key: str) -> Any:
    """The template with "$" the probed value, "@" a fresh idempotency key, and a row kind
    ("workbook") the caller's own id of that kind."""
    if isinstance(template, dict):
        return {k: _fill(v, value, own, key) for k, v in template.items()}
    if isinstance(template, list):
        return [_fill(v, value, own, key) for v in template]
    if template == "$":
        return value
    if template == "@":
        return key
    return own.get(template, template) if isinstance(template, str) else template


def scalar_probes(own: Mapping[str, str], run: str) -> list[Request]:
    """Each listed Decimal and DateTime value once, in turn at each argument of its type, with
    the rest of the request valid: the brief's "every one answered with a code". `run` makes
    the idempotency keys unique to this call."""
    decimals = [*VALID_DECIMALS[:3], *HOSTILE_DECIMALS, *NON_ASCII_DECIMALS, 12, 12.5, True]
    probes = []
    for values, sites in ((decimals, DECIMAL_SITES), (EDGE_DATETIMES, DATETIME_SITES)):
        for n, value in enumerate(values):
            name, query, template = sites[n % len(sites)]
            variables = _fill(template, value, own, f"probe-{run}-{name}-{n}")
            label = f"probe {name} = {json.dumps(value, ensure_ascii=False)[:40]}"
            probes.append(Request(label, encode({"query": query, "variables": variables})))
    return probes


# -- another tenant's rows, named directly ------------------------------------------------------

# (operation, query, variables, admin only). "B:x" is the other tenant's id of kind x, "A:x" the
# caller's own, "B-key:n" the other tenant's nth idempotency key, "fresh" a new one.
CROSS_TENANT = (
    ("workbook", "query($i: ID!) { workbook(id: $i) { id name } }", {"i": "B:workbook"}, False),
    ("charge", "query($i: ID!) { charge(id: $i) { id results } }", {"i": "B:charge"}, False),
    ("run", "query($i: ID!) { run(id: $i) { id name status } }", {"i": "B:run"}, False),
    ("stopRun", "mutation($i: ID!) { stopRun(runId: $i) { id status } }", {"i": "B:run"}, False),
    ("finishRun", "mutation($i: ID!) { finishRun(runId: $i) { id status } }", {"i": "B:run"},
     False),
    ("recordUsage workbook", RECORD, {"i": {"workbookId": "B:workbook", "kind": "ENRICHMENT",
     "provider": "hunter", "dataType": "email", "results": 1, "idempotencyKey": "fresh"}},
     False),
    ("recordUsage run", RECORD, {"i": {"workbookId": "A:workbook", "runId": "B:run",
     "kind": "ENRICHMENT", "provider": "hunter", "dataType": "email", "results": 1,
     "idempotencyKey": "fresh"}}, False),
    ("startRun", START_RUN, {"i": {"workbookId": "B:workbook", "idempotencyKey": "fresh"}},
     False),
    ("refundCharge", REFUND, {"i": {"chargeId": "B:charge", "idempotencyKey": "fresh"}}, True),
    ("setWorkbookSpendLimit", LIMIT, {"w": "B:workbook", "l": "1"}, True),
    ("revokeApiKey", "mutation($i: ID!) { revokeApiKey(id: $i) { id name } }", {"i": "B:key"},
     True),
)  # fmt: skip
# No rule says which answer these give, only that nothing of B comes back.
CROSS_TENANT_FILTERS = (
    ("ledger", LEDGER, {"w": "B:workbook"}),
    ("usageHistory", HISTORY, {"f": "2024-01-01T00:00:00Z", "t": "2025-01-01T00:00:00Z",
                               "g": ["WORKBOOK", "TABLE"], "w": "B:workbook"}),
    ("estimateCost", ESTIMATE, {"i": {"records": 10, "kind": "ENRICHMENT", "provider": "hunter",
                                      "dataType": "email", "workbookId": "B:workbook"}}),
    ("replayed usage key", RECORD, {"i": {"workbookId": "A:workbook", "kind": "ENRICHMENT",
     "provider": "hunter", "dataType": "email", "results": 10, "tableId": "t",
     "idempotencyKey": "B-key:0"}}),
    ("replayed run key", START_RUN, {"i": {"workbookId": "A:workbook", "budget": "50",
                                           "hold": "5", "idempotencyKey": "B-key:1"}}),
    ("replayed top-up key", TOP_UP, {"i": {"credits": "10", "idempotencyKey": "B-key:2"}}),
)  # fmt: skip


def _resolve(
    template: Any, own: Mapping[str, str], other: Mapping[str, str], other_keys: Sequence[str]
) -> Any:
    if isinstance(template, dict):
        return {k: _resolve(v, own, other, other_keys) for k, v in template.items()}
    if not isinstance(template, str):
        return template
    tenant, _, kind = template.partition(":")
    if tenant == "B-key":
        return other_keys[int(kind)]
    if tenant in ("A", "B") and kind:
        return (own if tenant == "A" else other)[kind]
    return f"cross-{uuid.uuid4().hex[:12]}" if template == "fresh" else template


def cross_tenant_requests(
    own: Mapping[str, str],
    other: Mapping[str, str],
    other_keys: Sequence[str],
    member: bool,
) -> list[Request]:
    """Another tenant's workbook, charge, run and key named by id, and its idempotency keys
    replayed. API.md: NOT_FOUND, never FORBIDDEN, where the caller may call the operation at
    all; a member asking for an admin operation is FORBIDDEN first."""
    requests = []
    for name, query, variables, admin_only in CROSS_TENANT:
        code = "FORBIDDEN" if admin_only and member else "NOT_FOUND"
        body = encode({"query": query, "variables": _resolve(variables, own, other, other_keys)})
        requests.append(Request(f"B's row: {name}", body, expect=(200, code)))
    for name, query, filters in CROSS_TENANT_FILTERS:
        body = encode({"query": query, "variables": _resolve(filters, own, other, other_keys)})
        requests.append(Request(f"B's row: {name}", body))
    return requests
