"""A chart's structural hash: what a stored snapshot needs to mean the same thing again.

It covers the states (ids, nesting, initial/final/parallel/history), the transitions (source,
events, targets, guard and validator names) and what the definition says the states mean, and
nothing else: renaming a Python method body or a docstring does not change it; adding, removing
or rewiring a state or transition does. Snapshots record it beside the definition's name and
version, so a run is never restored into a chart that changed under the same version.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import msgspec
from statemachine import StateChart


def structural_hash(chart: type[StateChart[Any]], kinds: Mapping[str, Any] | None = None) -> str:
    states = []
    for state in chart.states_map.values():
        transitions = sorted(
            [
                sorted(str(e) for e in t.events),
                [target.id for target in t.targets],
                [str(c) for c in t.cond],
                [str(v) for v in t.validators],
                bool(t.internal),
            ]
            for t in state.transitions
        )
        states.append(
            [
                state.id,
                state.parent.id if state.parent else None,
                bool(state.initial),
                bool(state.final),
                bool(getattr(state, "parallel", False)),
                type(state).__name__,
                transitions,
            ]
        )
    meaning = sorted((k, getattr(v, "value", str(v))) for k, v in (kinds or {}).items())
    blob = msgspec.json.encode([sorted(states, key=str), meaning])
    return hashlib.sha256(blob).hexdigest()[:16]
