"""R13: a request's fingerprint is stored with its key, so it must not change between versions.

`request_hash` skips `dataclasses.asdict` for speed; these cases hold it to the JSON `asdict`
gives and pin one digest recorded before that change.
"""

from __future__ import annotations

import hashlib
import json
import random
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from app.idempotency import _ENCODER, _encode, request_hash
from app.kinds import UsageKind
from app.usage.charging import UsageReport
from app.usage.costs import Usage

WORKBOOK = "5b0c6c1e-0d7a-4c1e-9b51-2f3c4d5e6f70"
RUN = "0e9a4c55-1f6b-4a7e-8a2b-3c4d5e6f7a81"
SENT = datetime(2026, 11, 25, 13, 0, 0, 123456, tzinfo=timezone(timedelta(hours=1)))


@dataclass(frozen=True)
class _Nested:
    names: list[str]
    pairs: tuple[int, ...]
    extra: dict[str, Any]


def _reference(operation: str, request: Any) -> str:
    body = asdict(request)
    body.pop("idempotency_key", None)

    def canonical(value: Any) -> str:
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat()
        return str(value)

    text = json.dumps({"operation": operation, "request": body}, sort_keys=True, default=canonical)
    return hashlib.sha256(text.encode()).hexdigest()


AI_REPORT = UsageReport(
    workbook_id=WORKBOOK,
    usage=Usage(UsageKind.AI, 3, model="small", input_tokens=1200, output_tokens=80),
    idempotency_key="k-1",
    table_id="t1",
    run_id=RUN,
    sent_at=SENT,
)
CASES = [
    AI_REPORT,
    UsageReport(WORKBOOK, Usage(UsageKind.ENRICHMENT, 1, "linkedin", "profile"), "k-2"),
    UsageReport(WORKBOOK, Usage(UsageKind.CRM_EXPORT, 7, own_api_key=True), "k-3", table_id=""),
    _Nested(["a", "b"], (1, 2), {"when": SENT, "inner": {"x": None}}),
    # Dataclasses inside a dict and a list: asdict turns them into dicts too.
    _Nested([], (), {"usage": Usage(UsageKind.AI, 2, model="m"), "all": [AI_REPORT.usage]}),
    # Everything else JSON spells in more than one way.
    _Nested(
        ["é😀", 'q"\\\n\t\x01', "", "\u2028"],
        (0, -1, 2**70, True, False),
        {
            "floats": [1.5, -0.0, 1e300, float("nan"), float("inf"), float("-inf")],
            "z": Decimal("12.50"),
            "a": UsageKind.SIGNAL,
            "b": None,
            "nested": {"2": [], "10": {}, "1": [[()]]},
        },
    ),
]


@pytest.mark.parametrize("request_", CASES, ids=lambda c: type(c).__name__)
def test_r13_fingerprint_is_the_json_asdict_gives(request_: Any) -> None:
    assert request_hash("recordUsage", request_) == _reference("recordUsage", request_)


def test_r13_fingerprint_recorded_before_still_matches() -> None:
    # Computed by the asdict-based version (commit 81d92f7) for AI_REPORT.
    expected = "394548b6adde86b11f2afb4c2fb84145000d69c8531f663c471fd5a4d66de5fb"
    assert request_hash("recordUsage", AI_REPORT) == expected


def test_r13_fingerprint_ignores_the_key_and_sees_every_field() -> None:
    other_key = UsageReport(**{**AI_REPORT.__dict__, "idempotency_key": "another"})
    assert request_hash("recordUsage", other_key) == request_hash("recordUsage", AI_REPORT)
    later = UsageReport(**{**AI_REPORT.__dict__, "sent_at": SENT + timedelta(microseconds=1)})
    assert request_hash("recordUsage", later) != request_hash("recordUsage", AI_REPORT)
    same_instant = UsageReport(**{**AI_REPORT.__dict__, "sent_at": SENT.astimezone(UTC)})
    assert request_hash("recordUsage", same_instant) == request_hash("recordUsage", AI_REPORT)


def test_r13_the_encoder_built_once_writes_what_json_encoder_writes() -> None:
    """`request_hash` encodes with the stdlib's C encoder built once: the same text as a
    `JSONEncoder` with the same settings, for every case above, its parts and random trees."""
    rng = random.Random(20261202)
    atoms = [None, True, False, 0, -7, 2**65, 1.25, float("nan"), "a", "ü\n", UsageKind.AI, SENT]

    def tree(depth: int) -> Any:
        if depth == 0 or rng.random() < 0.3:
            return rng.choice(atoms)
        if rng.random() < 0.5:
            return [tree(depth - 1) for _ in range(rng.randint(0, 4))]
        return {rng.choice("abcxyz") + str(n): tree(depth - 1) for n in range(rng.randint(0, 4))}

    values = [*CASES, *(c.__dict__ for c in CASES), *(tree(4) for _ in range(300))]
    for value in values:
        assert _encode(value) == _ENCODER.encode(value)
