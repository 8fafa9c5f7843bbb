"""Standard Webhooks signatures (R36): `whsec_` secrets, the body, and the three headers."""

from __future__ import annotations

import base64
import json
import secrets
from datetime import datetime
from typing import Any

from standardwebhooks import Webhook

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def body(event_type: str, created_at: datetime, data: dict[str, Any]) -> bytes:
    """`{type, timestamp, data}`; the timestamp is when the event happened."""
    message = {"type": event_type, "timestamp": created_at.isoformat(), "data": data}
    return json.dumps(message, separators=(",", ":")).encode()


def headers(
    signing_secrets: list[str], message_id: str, sent_at: datetime, payload: bytes
) -> dict[str, str]:
    """webhook-id (the event's id), webhook-timestamp (unix seconds of this attempt), and one
    `v1,` signature per secret, space separated (two while a rotation overlaps)."""
    signatures = [Webhook(s).sign(message_id, sent_at, payload) for s in signing_secrets]
    return {
        "webhook-id": message_id,
        "webhook-timestamp": str(int(sent_at.timestamp())),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
        "user-agent": "Tally-Webhooks/1",
    }


def signing_secrets(
    secret: str, previous: str | None, previous_until: datetime | None, now: datetime
) -> list[str]:
    """The current secret, and the previous one while its 24 hours last."""
    if previous and previous_until is not None and now < previous_until:
        return [secret, previous]
    return [secret]
