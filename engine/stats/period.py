"""The days a stats report covers: counters are kept per UTC day, so a period is whole days."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from signoff.engine.errors import InvalidPeriodError

DEFAULT_DAYS = 30
MAX_DAYS = 3660
_RFC3339 = re.compile(
    r"\d{4}-\d{2}-\d{2}(?:[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?(?:[Zz]|[+-]\d{2}:\d{2}))?"
)


@dataclass(frozen=True)
class Period:
    """From `since` to `until`, both UTC days included."""

    since: date
    until: date

    @property
    def days(self) -> list[date]:
        return [self.since + timedelta(days=i) for i in range((self.until - self.since).days + 1)]

    @classmethod
    def parse(cls, since: str | None, until: str | None, now: datetime) -> Period:
        """The period two query values name: each an RFC 3339 date (`2026-03-02`) or date-time
        (`2026-03-02T09:00:00Z`, taken as its UTC day); by default the 30 days up to today."""
        last = _day("until", until) if until else now.astimezone(UTC).date()
        first = _day("since", since) if since else _back(last, DEFAULT_DAYS - 1)
        if first > last:
            raise InvalidPeriodError(f"since ({first}) is after until ({last}).")
        if (last - first).days + 1 > MAX_DAYS:
            raise InvalidPeriodError(f"The period spans more than {MAX_DAYS} days.")
        return cls(first, last)


def _day(name: str, text: str) -> date:
    try:
        if _RFC3339.fullmatch(text) is None:
            raise ValueError(text)
        if len(text) == 10:
            return date.fromisoformat(text)
        # Python before 3.12 takes at most 6 digits of a second's fraction.
        whole, dot, rest = text.upper().partition(".")
        if dot:
            digits = len(rest) - len(rest.lstrip("0123456789"))
            whole += "." + rest[: min(digits, 6)] + rest[digits:]
        return datetime.fromisoformat(whole).astimezone(UTC).date()
    except (ValueError, OverflowError):  # not a date, or past year 9999 in UTC
        raise InvalidPeriodError(
            f"{name} {text[:40]!r} is not an RFC 3339 date (2026-03-02) or date-time "
            "(2026-03-02T09:00:00Z)."
        ) from None


def _back(day: date, days: int) -> date:
    return day - timedelta(days=min(days, (day - date.min).days))
