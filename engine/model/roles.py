"""Who may do what: the roles a caller holds, and the role an event needs."""

from __future__ import annotations

from enum import StrEnum


class Role(StrEnum):
    VIEWER = "viewer"  # reads runs, definitions and streams
    OPERATOR = "operator"  # creates runs, sends every event that is not a decision
    APPROVER = "approver"  # sends decision events (approve, reject, …)
    ADMIN = "admin"  # everything
