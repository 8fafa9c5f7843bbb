"""JSON in and out of the GraphQL endpoint, with orjson where it gives what the standard library
gives, and the standard library for the rest.

A 1,000-item batch is about 150 kB of request and 250 kB of answer: `json.loads` and
`json.dumps` took a few milliseconds of each batch, orjson a tenth of that. What orjson refuses
(NaN and Infinity, a lone surrogate, nesting past 1,024 levels, an answer's integer past 64
bits) takes the standard library's path, and so does a body with a run of 19 digits, because
orjson would read an integer past 64 bits as a float. So every body reads as it did, errors
included (tests/unit/test_json_codec.py), but one: orjson reads nesting up to 1,024 levels
where `json.loads`, on the server's stack, gave up at about 950 (a 400). Such a body now
reaches GraphQL, which refuses a variable nested that deep (INVALID_INPUT, graphql-core's
limit is 200) and ignores one the operation does not declare (tests/api/test_http_edges.py).

An answer is text (a WebSocket message must be a text frame); orjson writes non-ASCII as UTF-8
where `json.dumps` wrote \\u escapes, the same JSON, and would write a NaN or an infinite
float as null, which no answer holds: graphql-core refuses to serialize a non-finite Float.
"""

from __future__ import annotations

import json
import re
from typing import Any

import orjson

_LONG_NUMBER = re.compile(r"[0-9]{19}")  # 2**63 has 19 digits


def loads(text: str) -> Any:
    if _LONG_NUMBER.search(text) is None:
        try:
            return orjson.loads(text)
        except orjson.JSONDecodeError:
            pass
    return json.loads(text)  # reads what orjson does not, or raises as it always did


def dumps(value: object) -> str:
    try:
        return orjson.dumps(value).decode()
    except TypeError:  # orjson.JSONEncodeError is one
        return json.dumps(value, separators=(",", ":"))
