"""Creating and changing webhook subscriptions: what makes one valid.

A subscription names an http(s) URL without credentials in it (the list shows URLs to every
admin; a receiver checks the signature instead), notification types from NOTIFICATION_TYPES
(none: all), definitions by name (none: all; a name not deployed yet is allowed, its runs
will match) and how many attempts a delivery gets.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

from signoff.engine.errors import InvalidWebhookError
from signoff.engine.ids import uuid7
from signoff.engine.storage.store import Store
from signoff.engine.webhooks import store as subscriptions
from signoff.engine.webhooks.signing import new_secret
from signoff.engine.webhooks.store import Subscription
from signoff.engine.webhooks.types import NOTIFICATION_TYPES

MAX_URL = 2000
_NAME = re.compile(r"[A-Za-z0-9_.\-]{1,100}")
MAX_ATTEMPTS = 50
HostCheck = Callable[[str], bool]


def check(sub: Subscription, allowed: HostCheck) -> None:
    """Raise InvalidWebhookError, naming what is wrong, unless `sub` may be stored."""
    parts = urlsplit(sub.url)
    if len(sub.url) > MAX_URL or parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidWebhookError(
            f"The URL must be an http or https URL with a host, up to {MAX_URL} characters."
        )
    if parts.username is not None or parts.password is not None:
        raise InvalidWebhookError("The URL may not hold credentials; receivers check signatures.")
    if not allowed(sub.url):
        raise InvalidWebhookError(
            f"{parts.hostname} is not in SIGNOFF_HTTP_ALLOWED_HOSTS, so it cannot be called."
        )
    unknown = sorted(set(sub.events) - set(NOTIFICATION_TYPES))
    if unknown:
        raise InvalidWebhookError(
            f"Unknown notification type(s) {', '.join(unknown)}; known: "
            f"{', '.join(NOTIFICATION_TYPES)}."
        )
    bad = [name for name in sub.definitions if not _NAME.fullmatch(name)]
    if bad:
        raise InvalidWebhookError(
            f"{bad[0][:100]!r} is not a definition name (letters, digits, _ . -; up to 100)."
        )
    if not 1 <= sub.max_attempts <= MAX_ATTEMPTS:
        raise InvalidWebhookError(f"max_attempts must be 1 to {MAX_ATTEMPTS}.")


async def create(
    store: Store,
    url: str,
    *,
    actor: str,
    now: datetime,
    allowed: HostCheck,
    events: Sequence[str] = (),
    definitions: Sequence[str] = (),
    description: str = "",
    max_attempts: int = 8,
    active: bool = True,
) -> Subscription:
    """A new subscription with a new secret (shown to its creator once)."""
    sub = Subscription(
        id=uuid7(),
        url=url,
        secret=new_secret(),
        definitions=list(dict.fromkeys(definitions)),
        events=list(dict.fromkeys(events)),
        active=active,
        description=description,
        max_attempts=max_attempts,
        created_by=actor,
        created_at=now,
        updated_at=now,
    )
    check(sub, allowed)
    await subscriptions.add(store, sub)
    return sub


async def change(
    store: Store, webhook_id: str, changes: dict[str, Any], now: datetime, allowed: HostCheck
) -> Subscription:
    """Apply `changes` to a subscription if the result is valid; nothing changes otherwise."""
    for name in ("events", "definitions"):
        if name in changes:
            changes = {**changes, name: list(dict.fromkeys(changes[name]))}
    return await subscriptions.update(
        store, webhook_id, changes, now, lambda sub: check(sub, allowed)
    )
