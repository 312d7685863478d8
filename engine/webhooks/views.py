"""What the webhook endpoints answer: subscriptions (the secret only when created), deliveries
with their attempts, redelivery counts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import msgspec

from signoff.engine.webhooks.store import Delivery, Subscription


class WebhookView(msgspec.Struct, frozen=True, kw_only=True):
    id: str
    url: str
    events: list[str]
    definitions: list[str]
    description: str
    max_attempts: int
    active: bool
    created_by: str
    created_at: datetime
    updated_at: datetime


class CreatedWebhook(WebhookView, frozen=True, kw_only=True):
    """A new subscription with its signing secret, shown this once."""

    secret: str


class WebhookList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[WebhookView]


class DeliveryAttempt(msgspec.Struct, frozen=True, kw_only=True):
    """One attempt: `result` is failed, delivered or running."""

    number: int
    started_at: datetime
    ended_at: datetime | None
    result: str
    error: str | None = None


class DeliveryView(msgspec.Struct, frozen=True, kw_only=True):
    id: int
    webhook_id: str
    message_id: str
    type: str
    run_id: str
    status: str
    attempts: int
    max_attempts: int
    next_attempt_at: datetime | None
    last_error: str | None
    response_status: int | None
    created_at: datetime
    updated_at: datetime
    attempt_log: list[DeliveryAttempt]


class DeliveryPage(msgspec.Struct, frozen=True, kw_only=True):
    items: list[DeliveryView]
    next_cursor: str | None


class Redelivered(msgspec.Struct, frozen=True, kw_only=True):
    redelivered: int  # how many deliveries went back to ready


def fields(sub: Subscription) -> dict[str, Any]:
    return {f: getattr(sub, f) for f in WebhookView.__struct_fields__}


def webhook_view(sub: Subscription) -> WebhookView:
    return WebhookView(**fields(sub))


def delivery_view(d: Delivery) -> DeliveryView:
    attempts = [
        DeliveryAttempt(
            number=int(entry["attempt"]),
            started_at=datetime.fromisoformat(entry["started_at"]),
            ended_at=datetime.fromisoformat(entry["ended_at"]),
            result="failed",
            error=entry.get("error"),
        )
        for entry in d.attempt_log
    ]
    if d.status in ("running", "done") and d.claimed_at is not None:
        done = d.status == "done"
        attempts.append(
            DeliveryAttempt(
                number=d.attempts,
                started_at=d.claimed_at,
                ended_at=d.updated_at if done else None,
                result="delivered" if done else "running",
            )
        )
    fields = {f: getattr(d, f) for f in DeliveryView.__struct_fields__ if f != "attempt_log"}
    return DeliveryView(**fields, attempt_log=attempts)
