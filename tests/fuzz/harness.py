"""Schema fuzzing shared by tests/fuzz and bench/fuzz.py: two workspaces, four callers, the
checks every answer must pass, and a runner that draws cases with hypothesis.

Workspace A is the callers' own; workspace B, with distinctive names, is the other tenant. Its
ids are fed to A's callers, and no id, name or secret of B may come back to them. The checks
(API.md, "Error codes" and "HTTP, health and operations"): POST /graphql answers 200, 400 or
413, never 500; the body is a JSON object; every error carries a code from API.md; B stays
invisible and unchanged; a caller without a key gets no data, a member no admin-only data.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import json
import logging
import re
import traceback
import uuid
from collections.abc import Coroutine, Iterator, Sequence
from enum import StrEnum
from pathlib import Path
from typing import Any, TypeVar

import httpx
from graphql import GraphQLSchema, build_schema
from hypothesis import HealthCheck, Phase, Verbosity, example, given, settings
from hypothesis import seed as hypothesis_seed
from hypothesis import strategies as st

from tests.fuzz.operations import cross_tenant_requests, operations, scalar_probes
from tests.fuzz.strategies import (
    NO_KEY_HEADERS,
    NON_ASCII_DECIMALS,
    Request,
    Vocabulary,
    documents,
    envelopes,
    graphql_request,
    weighted,
)

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
ALLOWED_STATUSES = frozenset({200, 400, 413})
# API.md "Error codes", and the three "HTTP, health and operations" adds.
ALLOWED_CODES = frozenset({
    "ACTIONS_EXHAUSTED", "INSUFFICIENT_DATA_CREDITS", "WORKBOOK_SPEND_LIMIT_REACHED",
    "RUN_BUDGET_EXCEEDED", "ACTIONS_NOT_PURCHASABLE", "TOP_UP_EXCEEDS_ROLLOVER_LIMIT",
    "PLAN_FEATURE_UNAVAILABLE", "RUN_STOPPED", "IDEMPOTENCY_KEY_REUSED", "ALREADY_REFUNDED",
    "NOT_FOUND", "FORBIDDEN", "UNAUTHENTICATED", "INVALID_INPUT",
    "BAD_REQUEST", "PAYLOAD_TOO_LARGE", "SERVICE_UNAVAILABLE",
})  # fmt: skip
# Scalar values the generator sends that no reading of API.md allows: non-ASCII digits, NaN,
# and (below) timestamps without a zone. Only the Decimal and DateTime strategies draw them.
NEVER_VALID = (*NON_ASCII_DECIMALS, "NaN", "Infinity", "-Infinity",
               "٢٠٢٥-01-01T00:00:00Z", "２０２５-01-01T00:00:00Z")  # fmt: skip
NAIVE_INSTANT = re.compile(r'"\d{4}-\d\d-\d\dT\d\d:\d\d(?::\d\d(?:\.\d+)?)?"')
# API.md "Who may call what" (fields not in the schema yet simply never appear).
OPERATOR_ONLY = frozenset({"createWorkspace", "operatorReport"})
ADMIN_ONLY = OPERATOR_ONLY | {
    "apiKeys", "createApiKey", "revokeApiKey", "setWorkbookSpendLimit", "purchaseTopUp",
    "changePlan", "withdrawPendingChange", "cancelSubscription", "refundCharge",
    "webhookEndpoints", "webhookDeliveries", "auditLog", "setAlert", "deleteAlert",
    "createWebhookEndpoint", "updateWebhookEndpoint", "deleteWebhookEndpoint",
    "rotateWebhookSecret", "resendEvent", "sendTestEvent", "setAutoTopUp",
}  # fmt: skip


class Caller(StrEnum):
    ADMIN_A = "admin key of A"
    MEMBER_A = "member key of A"
    OPERATOR = "operator key"
    NO_KEY = "no key"


# -- the two workspaces ----------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Tenant:
    workspace_id: str
    name: str
    admin_key: str
    member_key: str
    workbook_id: str
    workbook_name: str
    charge_id: str
    run_id: str
    run_name: str
    table_id: str
    top_up_id: str | None
    api_key_ids: tuple[str, ...]
    idempotency_keys: tuple[str, ...]

    def row_ids(self) -> dict[str, str]:
        """Ids a lookup argument may name, by kind (not A's own keys: revoking them would end
        the fuzz)."""
        found = {"workbook": self.workbook_id, "charge": self.charge_id, "run": self.run_id}
        return found | ({"top-up": self.top_up_id} if self.top_up_id else {})

    def markers(self) -> dict[str, str]:
        """What names this tenant in a response: ids, names, secrets."""
        found = {
            "workspace id": self.workspace_id, "workspace name": self.name,
            "admin key": self.admin_key, "member key": self.member_key,
            "workbook id": self.workbook_id, "workbook name": self.workbook_name,
            "charge id": self.charge_id, "run id": self.run_id, "run name": self.run_name,
            "table id": self.table_id, "top-up id": self.top_up_id or "",
        }  # fmt: skip
        found.update({f"API key id {i}": key_id for i, key_id in enumerate(self.api_key_ids)})
        return {what: value for what, value in found.items() if value}


@dataclasses.dataclass(frozen=True)
class World:
    a: Tenant
    b: Tenant
    operator_key: str

    def authorization(self, caller: Caller) -> str | None:
        keys = {
            Caller.ADMIN_A: self.a.admin_key,
            Caller.MEMBER_A: self.a.member_key,
            Caller.OPERATOR: self.operator_key,
        }
        return f"Bearer {keys[caller]}" if caller in keys else None

    def vocabulary(self, caller: Caller) -> Vocabulary:
        """The operator may refund any workspace's charge, so it gets only A's ids: B must stay
        unchanged. Everyone else gets both, to probe cross-tenant lookups and writes."""
        others: dict[str, str] = {}
        if caller is not Caller.OPERATOR:
            keys = {f"API key {i}": key_id for i, key_id in enumerate(self.b.api_key_ids)}
            others = self.b.row_ids() | keys | {"workspace": self.b.workspace_id}
        strings = [*self.a.idempotency_keys, *self.b.idempotency_keys]
        return Vocabulary(own_ids=self.a.row_ids(), other_ids=others, strings=strings)


class SetupError(RuntimeError):
    pass


async def gql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], key: str
) -> dict[str, Any]:
    response = await client.post(
        "/graphql",
        json={"query": query, "variables": variables},
        headers={"Authorization": f"Bearer {key}"},
    )
    body = response.json()
    if response.status_code != 200 or body.get("errors"):
        raise SetupError(f"{query.split('(')[0]}: {response.status_code} {response.text[:500]}")
    return body["data"]


async def _make_tenant(client: httpx.AsyncClient, operator_key: str, tag: str, plan: str) -> Tenant:
    """A workspace with a member key, a workbook, a charge in a table, a run and a top-up."""
    suffix = uuid.uuid4().hex[:10]
    name = f"{tag} Holdings {suffix}"
    created = await gql(
        client,
        "mutation($i: CreateWorkspaceInput!) { createWorkspace(input: $i) {"
        " adminKey workspace { id } } }",
        {"i": {"name": name, "plan": plan}},
        operator_key,
    )
    admin = created["createWorkspace"]["adminKey"]
    workspace_id = created["createWorkspace"]["workspace"]["id"]
    member = await gql(
        client,
        "mutation($n: String!) { createApiKey(name: $n, role: MEMBER) { secret } }",
        {"n": f"{tag}-member-{suffix}"},
        admin,
    )
    workbook_name = f"{tag.lower()}-workbook-{suffix}"
    workbook = await gql(
        client,
        "mutation($n: String!) { createWorkbook(name: $n) { id } }",
        {"n": workbook_name},
        admin,
    )
    workbook_id = workbook["createWorkbook"]["id"]
    table_id, keys = f"{tag.lower()}-table-{suffix}", (f"{tag}-usage-1", f"{tag}-run-1")
    charge = await gql(
        client,
        "mutation($i: RecordUsageInput!) { recordUsage(input: $i) {"
        " __typename ... on Charge { id } ... on Refusal { code } } }",
        {
            "i": {"workbookId": workbook_id, "kind": "ENRICHMENT", "provider": "hunter",
                  "dataType": "email", "results": 10, "tableId": table_id,
                  "idempotencyKey": keys[0]}
        },
        admin,
    )  # fmt: skip
    run_name = f"{tag.lower()}-run-{suffix}"
    run = await gql(
        client,
        "mutation($i: StartRunInput!) { startRun(input: $i) { id } }",
        {"i": {"workbookId": workbook_id, "name": run_name, "budget": "50", "hold": "5",
               "idempotencyKey": keys[1]}},
        admin,
    )  # fmt: skip
    top_up = await gql(
        client,
        "mutation($i: TopUpInput!) { purchaseTopUp(input: $i) {"
        " __typename ... on TopUp { id } ... on Refusal { code } } }",
        {"i": {"credits": "10", "idempotencyKey": f"{tag}-top-up-1"}},
        admin,
    )
    api_keys = await gql(client, "{ apiKeys { id } }", {}, admin)
    return Tenant(
        workspace_id=workspace_id,
        name=name,
        admin_key=admin,
        member_key=member["createApiKey"]["secret"],
        workbook_id=workbook_id,
        workbook_name=workbook_name,
        charge_id=charge["recordUsage"]["id"],
        run_id=run["startRun"]["id"],
        run_name=run_name,
        table_id=table_id,
        top_up_id=top_up["purchaseTopUp"].get("id"),
        api_key_ids=tuple(k["id"] for k in api_keys["apiKeys"]),
        idempotency_keys=(*keys, f"{tag}-top-up-1"),
    )


async def build_world(client: httpx.AsyncClient, operator_key: str) -> World:
    # A on enterprise: spend limits and large balances let generated charges go through.
    a = await _make_tenant(client, operator_key, "Fuzzaco", "enterprise")
    b = await _make_tenant(client, operator_key, "Quokka", "launch")
    return World(a=a, b=b, operator_key=operator_key)


TENANT_STATE = """query($c: ID!, $r: ID!) {
  workspace { id name status plan { code } creditTier billingInterval
    dataCredits { balance cap } actions { used capacity }
    workbooks { id name spendLimit spent } }
  apiKeys { id name role revokedAt }
  charge(id: $c) { id results refundedResults refundedDataCredits }
  run(id: $r) { id status spent held budget }
}"""


async def tenant_state(client: httpx.AsyncClient, tenant: Tenant) -> dict[str, Any]:
    """What a fuzz run as another tenant must leave as it was."""
    variables = {"c": tenant.charge_id, "r": tenant.run_id}
    return await gql(client, TENANT_STATE, variables, tenant.admin_key)


# -- one case, one answer --------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Case:
    caller: Caller
    request: Request
    authorization: str | None


@dataclasses.dataclass(frozen=True)
class Outcome:
    status: int  # 0: no answer in time
    text: str
    causes: tuple[str, ...] = ()  # exceptions the server logged or raised while answering


class _Exceptions(logging.Handler):
    """Collects the exceptions Tally logs (graphql_schema.errors.log_errors) per request."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.seen: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.exc_info and record.exc_info[1] is not None:
            self.seen.append(describe_exception(record.exc_info[1]))


_exceptions = _Exceptions()


@contextlib.contextmanager
def capturing_exceptions() -> Iterator[None]:
    logger = logging.getLogger("tally")
    logger.addHandler(_exceptions)
    try:
        yield
    finally:
        logger.removeHandler(_exceptions)


def describe_exception(error: BaseException) -> str:
    """`Type: message` and the deepest frame in Tally's code, which names the cause."""
    frames = [
        f
        for f in traceback.extract_tb(error.__traceback__)
        if f.filename.startswith(str(ROOT)) and "/.venv/" not in f.filename
    ]
    where = ""
    if frames:
        last = frames[-1]
        where = f" at {Path(last.filename).relative_to(ROOT)}:{last.lineno} in {last.name}"
    return f"{type(error).__name__}: {str(error)[:160]}{where}"


async def send(client: httpx.AsyncClient, case: Case) -> Outcome:
    headers = {"content-type": case.request.content_type}
    if case.authorization is not None:
        headers["authorization"] = case.authorization
    _exceptions.seen.clear()
    try:
        response = await client.post("/graphql", content=case.request.body, headers=headers)
    except Exception as error:  # httpx's ASGI transport re-raises what the app let escape: a 500
        cause = describe_exception(error)
        return Outcome(500, f"(unhandled) {cause}", (*_exceptions.seen, cause))
    return Outcome(response.status_code, response.text, tuple(_exceptions.seen))


# -- the checks ------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Failure:
    check: str
    detail: str
    case: Case
    outcome: Outcome

    @property
    def cause(self) -> str:
        return self.outcome.causes[-1] if self.outcome.causes else ""

    def signature(self) -> tuple[str, str, str]:
        # Exception messages hold ids and values: group by type and place only.
        return self.check, self.detail, re.sub(r":.*? at ", " at ", self.cause)

    def render(self, limit: int = 400) -> str:
        response = self.outcome.text
        if len(response) > limit:
            response = f"{response[:limit]}… ({len(self.outcome.text):,} chars)"
        lines = [
            f"[{self.check}] {self.detail}",
            f"  caller:   {self.case.caller} (Authorization: {self.case.authorization!r:.60})",
            f"  request:  {self.case.request.label}: {self.case.request.text(limit)}",
            f"  response: HTTP {self.outcome.status} {response}",
        ]
        lines += [f"  cause:    {c}" for c in self.outcome.causes]
        return printable("\n".join(lines))


def printable(text: str) -> str:
    """Control characters and lone surrogates escaped, so a report stays text."""
    return "".join(c if c.isprintable() or c == "\n" else repr(c)[1:-1] for c in text)


def _fold(text: str) -> str:
    """Ids compare case- and dash-insensitively (uuid.UUID reads "ABCD…" and "abcd…" alike)."""
    return text.lower().replace("-", "")


def _root_fields(body: dict[str, Any]) -> dict[str, Any]:
    data = body.get("data")
    return data if isinstance(data, dict) else {}


def check_status(outcome: Outcome) -> list[tuple[str, str]]:
    if outcome.status == 0:
        return [("status", outcome.text)]
    if outcome.status not in ALLOWED_STATUSES:
        return [("status", f"HTTP {outcome.status}")]
    return []


def parse_body(outcome: Outcome) -> tuple[dict[str, Any] | None, list[tuple[str, str]]]:
    if outcome.status == 0 or outcome.text.startswith("(unhandled)"):
        return None, []  # nothing was answered: the status check says so
    try:
        body = json.loads(outcome.text)
    except ValueError:
        return None, [("json", f"HTTP {outcome.status} body is not JSON")]
    if not isinstance(body, dict):
        return None, [("json", f"HTTP {outcome.status} body is not a JSON object")]
    if outcome.status != 200 and not body.get("errors"):
        return body, [("json", f"HTTP {outcome.status} without errors")]
    return body, []


def _codes(body: dict[str, Any]) -> list[Any]:
    """Each error's extensions.code (None where it has none)."""
    errors = body.get("errors")
    return [
        (e.get("extensions") or {}).get("code") if isinstance(e, dict) else None
        for e in (errors if isinstance(errors, list) else [])
    ]


def check_codes(body: dict[str, Any]) -> list[tuple[str, str]]:
    found = []
    errors = body.get("errors") or []
    if not isinstance(errors, list):
        return [("code", "errors is not a list")]
    for error in errors:
        extensions = error.get("extensions") if isinstance(error, dict) else None
        code = extensions.get("code") if isinstance(extensions, dict) else None
        path = error.get("path") if isinstance(error, dict) else None
        where = path[0] if isinstance(path, list) and path else "document"
        if code is None:
            found.append(("code", f"error without a code at {where}"))
        elif code not in ALLOWED_CODES:
            found.append(("code", f"{code} at {where}"))
    return found


def check_leaks(world: World, case: Case, body: dict[str, Any]) -> list[tuple[str, str]]:
    """B in A's data is a leak; in an error message only when the request did not name it
    (a NOT_FOUND message may echo the id asked for)."""
    sent = _fold(case.request.body.decode("utf-8", "replace"))
    data = _fold(json.dumps(body.get("data"), ensure_ascii=False))
    errors = _fold(json.dumps(body.get("errors"), ensure_ascii=False))
    found = []
    for what, value in world.b.markers().items():
        marker = _fold(value)
        if marker in data:
            found.append(("leak", f"B's {what} in data"))
        elif marker in errors and marker not in sent:
            found.append(("leak", f"B's {what} in an error"))
    return found


def check_access(caller: Caller, body: dict[str, Any]) -> list[tuple[str, str]]:
    fields = {
        name
        for name, value in _root_fields(body).items()
        if value is not None and not name.startswith("__")  # the schema itself is public
    }
    if caller is Caller.NO_KEY:
        return [("access", f"{name} answered without a key") for name in sorted(fields)]
    denied: frozenset[str] = {Caller.MEMBER_A: ADMIN_ONLY, Caller.ADMIN_A: OPERATOR_ONLY}.get(
        caller, frozenset()
    )
    return [("access", f"{name} answered to the {caller}") for name in sorted(fields & denied)]


def check_contract(request: Request, outcome: Outcome, body: dict | None) -> list[tuple[str, str]]:
    if request.expect is None:
        return []
    status, code = request.expect
    codes = sorted({str(c) for c in _codes(body or {})})
    if outcome.status != status or codes != [code]:
        errors = " ".join(map(str, codes)) or (
            "without a code" if outcome.status != 200 else "data"
        )
        got = f"HTTP {outcome.status} {errors}"
        return [("contract", f"{request.label}: expected HTTP {status} {code}, got {got}")]
    return []


def _sent_text(request: Request) -> list[str]:
    """The query and the variables as the server reads them (JSON escapes undone)."""
    try:
        payload = json.loads(request.body)
    except ValueError:
        return []
    if not isinstance(payload, dict):
        return []
    return [str(payload.get("query")), json.dumps(payload.get("variables"), ensure_ascii=False)]


def check_refused(
    request: Request, outcome: Outcome, body: dict[str, Any]
) -> list[tuple[str, str]]:
    """A request carrying a value API.md rules out (a Decimal is a decimal string in ASCII
    digits, a timestamp carries a zone) cannot be answered without an error."""
    if outcome.status != 200 or body.get("errors"):
        return []
    found = set()
    for text in _sent_text(request):
        found |= {f'"{value}" accepted' for value in NEVER_VALID if f'"{value}"' in text}
        if NAIVE_INSTANT.search(text):
            found.add("a timestamp without a zone accepted")
    return [("accepted", detail) for detail in sorted(found)]


def check(world: World, case: Case, outcome: Outcome) -> list[Failure]:
    found = check_status(outcome)
    body, problems = parse_body(outcome)
    found += problems
    if body is not None:
        found += check_codes(body)
        found += check_access(case.caller, body)
        found += check_refused(case.request, outcome, body)
        if case.caller is not Caller.OPERATOR:
            found += check_leaks(world, case, body)
    found += check_contract(case.request, outcome, body)
    return [Failure(name, detail, case, outcome) for name, detail in found]


# -- running many --------------------------------------------------------------------------


def answer_kind(outcome: Outcome) -> str:
    """What kind of answer, for statistics: "HTTP 200 NOT_FOUND", "HTTP 200 data"."""
    try:
        body = json.loads(outcome.text)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return f"HTTP {outcome.status} (not a JSON object)"
    codes = sorted({str(code) for code in _codes(body)})
    return f"HTTP {outcome.status} {' '.join(codes) or 'data'}"


@dataclasses.dataclass
class Report:
    cases: int = 0
    failures: list[Failure] = dataclasses.field(default_factory=list)
    failed_cases: int = 0
    answers: collections.Counter[str] = dataclasses.field(default_factory=collections.Counter)
    b_changes: list[str] = dataclasses.field(default_factory=list)  # set by the caller

    def add(self, outcome: Outcome, failures: list[Failure]) -> None:
        self.cases += 1
        self.failed_cases += bool(failures)
        self.failures += failures
        self.answers[answer_kind(outcome)] += 1

    def groups(self) -> dict[tuple[str, str, str], list[Failure]]:
        grouped: dict[tuple[str, str, str], list[Failure]] = collections.defaultdict(list)
        for failure in self.failures:
            grouped[failure.signature()].append(failure)
        return dict(sorted(grouped.items()))

    def summary(self, limit: int = 400) -> str:
        """Each distinct failure once, with its shortest request."""
        lines = [f"{self.cases} cases, {self.failed_cases} failed ({len(self.failures)} checks)"]
        for (check_name, detail, cause), failures in self.groups().items():
            shortest = min(failures, key=lambda f: len(f.case.request.body))
            callers = ", ".join(sorted({str(f.case.caller) for f in failures}))
            lines.append(f"\n== {len(failures)}× [{check_name}] {detail} — {callers}")
            if cause:
                lines.append(f"   cause: {cause}")
            lines.append(shortest.render(limit))
        return "\n".join(lines)


def schema_of_app() -> GraphQLSchema:
    """The schema the code serves now (not a possibly stale schema.graphql)."""
    from graphql_schema.export import render_sdl

    return build_schema(render_sdl())


def requests(schema: GraphQLSchema, vocabulary: Vocabulary) -> st.SearchStrategy[Request]:
    """Six in ten a generated document (half of them with variables), three a hand-written
    operation with drawn variables, one a hostile envelope."""
    generated = st.builds(
        lambda document, as_variables: graphql_request(schema, document, as_variables),
        documents(schema, vocabulary),
        st.booleans(),
    )
    return weighted((6, generated), (3, operations(vocabulary)), (1, st.sampled_from(envelopes())))


def cases(world: World, callers: list[Caller], schema: GraphQLSchema) -> st.SearchStrategy[Case]:
    def for_caller(caller: Caller) -> st.SearchStrategy[Case]:
        authorization = (
            st.sampled_from(NO_KEY_HEADERS)
            if caller is Caller.NO_KEY
            else st.just(world.authorization(caller))
        )
        return st.builds(
            Case, st.just(caller), requests(schema, world.vocabulary(caller)), authorization
        )

    by_caller = {caller: for_caller(caller) for caller in callers}
    return st.sampled_from(callers).flatmap(by_caller.__getitem__)


def cross_tenant_cases(world: World, caller: Caller) -> list[Case]:
    """A's key naming B's rows (operations.cross_tenant_requests)."""
    requests = cross_tenant_requests(
        own=world.a.row_ids(),
        other={**world.b.row_ids(), "key": world.b.api_key_ids[-1]},
        other_keys=world.b.idempotency_keys,
        member=caller is Caller.MEMBER_A,
    )
    return [Case(caller, request, world.authorization(caller)) for request in requests]


def explicit_cases(world: World, callers: Sequence[Caller]) -> list[Case]:
    """Sent before the drawn ones, so every run checks them, not only a lucky draw: every
    hostile envelope for each caller; B's rows named by A's keys; and for A's admin (who
    reaches every argument) every listed hostile Decimal and DateTime in a request otherwise
    valid."""
    cases = [
        Case(caller, request, world.authorization(caller))
        for caller in callers
        for request in envelopes()
    ]
    for caller in (Caller.ADMIN_A, Caller.MEMBER_A):
        cases += cross_tenant_cases(world, caller) if caller in callers else []
    if Caller.ADMIN_A in callers:
        authorization = world.authorization(Caller.ADMIN_A)
        probes = scalar_probes(world.a.row_ids(), uuid.uuid4().hex[:8])
        cases += [Case(Caller.ADMIN_A, probe, authorization) for probe in probes]
    return cases


def _wait(
    loop: asyncio.AbstractEventLoop, call: Coroutine[Any, Any, T], timeout: float
) -> T | None:
    future = asyncio.run_coroutine_threadsafe(call, loop)
    try:
        return future.result(timeout)
    except TimeoutError:
        future.cancel()
        return None


def run_cases(
    loop: asyncio.AbstractEventLoop,
    client: httpx.AsyncClient,
    world: World,
    strategy: st.SearchStrategy[Case],
    max_examples: int,
    seed: int | None = None,
    explicit: Sequence[Case] = (),
    timeout: float = 30.0,
) -> Report:
    """Send the `explicit` cases, then draw and send `max_examples` more. Blocking: call it in
    a thread while `loop` (the one the app and database run on) keeps running, since
    hypothesis's @given is synchronous.

    Failures are collected, not raised, so one run reports every distinct one; without a seed
    the draw is derandomized (the same cases on every run)."""
    report = Report()

    @settings(
        max_examples=max_examples,
        derandomize=seed is None,
        database=None,  # nothing written into the repository
        deadline=None,
        suppress_health_check=list(HealthCheck),  # slow I/O and big bodies are the point
        phases=(Phase.explicit, Phase.generate),  # nothing fails inside, so nothing to shrink
        verbosity=Verbosity.quiet,
    )
    @given(case=strategy)
    def one(case: Case) -> None:
        outcome = _wait(loop, send(client, case), timeout) or Outcome(
            0, f"no answer within {timeout:g} s"
        )
        report.add(outcome, check(world, case, outcome))

    for case in explicit:
        one = example(case=case)(one)
    if seed is not None:
        one = hypothesis_seed(seed)(one)
    with capturing_exceptions():
        one()
    return report


def compare_states(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """What changed in B while others were fuzzing: every top-level field that differs."""
    changed = sorted(
        name for name in set(before) | set(after) if before.get(name) != after.get(name)
    )
    return [
        f"B's {name} changed: {json.dumps(before.get(name))[:300]}"
        f" -> {json.dumps(after.get(name))[:300]}"
        for name in changed
    ]
