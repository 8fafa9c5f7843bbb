"""A batch's input objects are built exactly as strawberry's generic conversion builds
them. `RecordUsageBatchInput` and `RecordUsageInput` carry their own `from_input` (speed);
with those taken away, strawberry converts the same values field by field, and the two must
give equal objects of the same types."""

from __future__ import annotations

import random
from datetime import UTC, datetime
from typing import Any

import pytest
from strawberry.types.arguments import convert_argument

from app.kinds import UsageKind
from graphql_schema.schema import schema
from graphql_schema.types.run import RecordUsageBatchInput
from graphql_schema.types.usage import RecordUsageInput

CONVERTER = schema.schema_converter
OPTIONAL = {
    "tableId": ["t-1", None],
    "provider": ["linkedin", None],
    "dataType": ["profile", None],
    "runId": ["0b7f6c52-6c1e-4c38-9d3e-4a1c7d1e2f30", None],
    "ownApiKey": [True, False, None],
    "sentAt": [datetime(2026, 12, 2, 9, 30, tzinfo=UTC), None],
    "model": ["small", None],
    "inputTokens": [0, 1200, None],
    "outputTokens": [5, None],
}


def _item(rng: random.Random, n: int) -> dict[str, Any]:
    """An item as graphql-core hands it over: the enum already the domain's member."""
    item: dict[str, Any] = {
        "workbookId": f"wb-{n % 3}",
        "kind": rng.choice(list(UsageKind)),
        "results": rng.randint(1, 5),
        "idempotencyKey": f"k-{n}",
    }
    for name, choices in OPTIONAL.items():
        if rng.random() < 0.6:
            item[name] = rng.choice(choices)
    return item


def _convert(value: dict[str, Any]) -> Any:
    return convert_argument(
        value, RecordUsageBatchInput, CONVERTER.scalar_registry, CONVERTER.config
    )


@pytest.fixture
def generic():
    """Strawberry's own conversion, the fast `from_input`s taken away for the duration."""
    definitions = [c.__strawberry_definition__ for c in (RecordUsageBatchInput, RecordUsageInput)]
    saved = [d.from_input for d in definitions]

    def run(value: dict[str, Any]) -> Any:
        for d in definitions:
            d.from_input = None
        try:
            return _convert(value)
        finally:
            for d, f in zip(definitions, saved, strict=True):
                d.from_input = f

    return run


def test_batch_inputs_are_strawberrys_own(generic):
    for cls in (RecordUsageBatchInput, RecordUsageInput):
        assert cls.__strawberry_definition__.from_input is not None  # the fast path is on
    rng = random.Random(20261202)
    for size in (1, 2, 7, 1000):
        value = {"items": [_item(rng, n) for n in range(size)]}
        fast, plain = _convert(value), generic(value)
        assert type(fast) is type(plain) is RecordUsageBatchInput
        assert [type(i) for i in fast.items] == [RecordUsageInput] * size
        assert fast == plain
        assert [type(i.kind) for i in fast.items] == [type(i.kind) for i in plain.items]


def test_the_batch_input_has_only_its_items():
    """`_batch_from_input` builds the batch from `items` alone: a field added to
    RecordUsageBatchInput must be added there too, or it would be silently dropped."""
    fields = RecordUsageBatchInput.__strawberry_definition__.fields
    assert [f.python_name for f in fields] == ["items"]
