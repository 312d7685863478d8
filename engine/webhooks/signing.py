"""Signatures as the Standard Webhooks specification says (https://www.standardwebhooks.com).

A subscription's secret is `whsec_` and the base64 of a random key. Each attempt is sent with
`webhook-id` (the message id, the same on every attempt, so receivers drop repeats),
`webhook-timestamp` (this attempt's Unix time, so receivers refuse old replays) and
`webhook-signature: v1,<base64 of HMAC-SHA256 over "<id>.<timestamp>.<body>">`. The few lines
are ours; tests verify them with the specification's reference library (`standardwebhooks`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PREFIX = "whsec_"
KEY_BYTES = 32


def new_secret() -> str:
    """A fresh signing secret."""
    return PREFIX + base64.b64encode(secrets.token_bytes(KEY_BYTES)).decode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `webhook-signature` header's value."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    signed = f"{msg_id}.{timestamp}.".encode() + body
    digest = hmac.new(key, signed, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


def headers(secret: str, msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """The three headers of one signed attempt."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signature(secret, msg_id, timestamp, body),
    }
