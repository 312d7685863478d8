"""External events a definition answers to: triggers that start runs, and wait states that
receive an event for the runs it correlates with (POST /api/events)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from signoff.engine.model import expressions

# What a trigger's condition and input mapping may name: the event's data.
TRIGGER_NAMES = frozenset({"data"})
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,99}$")


@dataclass(frozen=True)
class Trigger:
    """Starts a run when an external event named `event` arrives and `when` (a condition over
    its `data`, in the language of document guards) holds. The run's input is the event's
    data, or, with `input`, field → expression over `data`; its ref is the event's."""

    event: str
    when: str | None = None
    input: Mapping[str, str] | None = None

    def problems(self) -> list[str]:
        found = []
        for where, text in self._expressions():
            found += [f"{where} {p}" for p in expressions.problems(text, TRIGGER_NAMES)]
        return found

    def matches(self, data: Mapping[str, Any]) -> bool:
        """Whether `when` holds for this data (a condition that cannot read it does not)."""
        if self.when is None:
            return True
        try:
            return bool(expressions.evaluate(self.when, {"data": data}))
        except (LookupError, TypeError, ValueError, ArithmeticError):
            return False

    def input_of(self, data: Mapping[str, Any]) -> dict[str, Any]:
        """The input of the run it starts (LookupError, TypeError… if `input` cannot read
        this data)."""
        if self.input is None:
            return dict(data)
        return {k: expressions.evaluate(v, {"data": data}) for k, v in self.input.items()}

    def _expressions(self) -> list[tuple[str, str]]:
        found = [] if self.when is None else [(f"trigger {self.event!r}: when", self.when)]
        for key, text in (self.input or {}).items():
            found.append((f"trigger {self.event!r}: input {key!r}", text))
        return found


@dataclass(frozen=True)
class Receive:
    """What a wait state does with an external event: it sends the chart's `event` with the
    external event's data to each run it correlates with. By default those are the runs
    whose ref (ref_type and ref_id) equals the event's; with `correlate`, a key, the waiting
    runs whose context (else input) holds the same value under that key as the event's data."""

    event: str
    correlate: str | None = None

    def problems(self) -> list[str]:
        if self.correlate is not None and not _KEY.match(self.correlate):
            return [f"correlate {self.correlate!r} is not a key (letters, digits, _)"]
        return []

    def correlates(self, held: Any, data: Mapping[str, Any]) -> bool:
        """Whether a run holding `held` under the key (from its context, else its input;
        None: neither holds it) correlates with an event carrying `data`."""
        key = self.correlate
        if key is None or data.get(key) is None:
            return False
        return same_value(held, data[key])


# Incoming events, by name: per wait state, what it does with each.
Receives = Mapping[str, Mapping[str, Receive]]


def same_value(a: Any, b: Any) -> bool:
    """JSON equality: 1 is not True, "1" is not 1."""
    return bool(a == b) and (type(a) is type(b) or _numbers(a, b))


def _numbers(a: Any, b: Any) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in (a, b))
