"""The notifications a webhook subscription may ask for, and the job kind that delivers them."""

from __future__ import annotations

from typing import Final, Literal, get_args

# A delivery is a row in `jobs` of this kind: one per notification and subscription, written in
# the transaction of the transition that caused it (the transactional outbox).
from signoff.engine.storage.jobs import WEBHOOK_KIND

__all__ = ["NOTIFICATION_TYPES", "WEBHOOK_KIND", "NotificationType"]

NotificationType = Literal[
    "transition",
    "task.created",
    "task.claimed",
    "task.released",
    "task.reassigned",
    "task.delegated",
    "task.reminder",
    "task.escalated",
    "task.decided",
    "task.closed",
]
# Every type, in the order above; a subscription's `events` filter names some of them.
NOTIFICATION_TYPES: Final[tuple[str, ...]] = get_args(NotificationType)
