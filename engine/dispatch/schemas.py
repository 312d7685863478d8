"""A run's input, and an event's data, against what its definition declares."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jsonschema
import msgspec

from signoff.engine.errors import InvalidEventDataError
from signoff.engine.model.definition import Definition


def check_event_data(spec: Definition, event: str, data: Mapping[str, Any]) -> None:
    """Refuse data an event does not take (its msgspec type, or its document's JSON Schema),
    naming the field (`at $.amount`). A region is the runtime's, not the event's."""
    if event not in spec.event_types and event not in spec.event_schemas:
        return
    own = {k: v for k, v in data.items() if not (spec.regions and k == "region")}
    schema = spec.event_schemas.get(event)
    if schema is not None:
        problem = first_problem(schema, own)
        if problem is not None:
            raise InvalidEventDataError(f"Invalid data for {event!r}: {problem}")
    kind = spec.event_types.get(event)
    if kind is not None:
        try:
            msgspec.convert(own, kind)
        except msgspec.ValidationError as exc:
            problem, _, where = str(exc).partition(" - at `")
            path = where.rstrip("`") or "$"
            raise InvalidEventDataError(
                f"Invalid data for {event!r}: {problem} (at {path})"
            ) from exc


def first_problem(schema: Mapping[str, Any], value: Any) -> str | None:
    """What is wrong with `value` first, with where (`at $.amount`); None if it fits."""
    error = jsonschema.exceptions.best_match(_validator(_key(schema)).iter_errors(value))
    if error is None:
        return None
    path = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
    return f"{error.message} (at $" + path + ")"


def _key(schema: Mapping[str, Any]) -> str:
    return msgspec.json.encode(schema).decode()


@lru_cache(maxsize=256)
def _validator(schema: str) -> jsonschema.protocols.Validator:
    # Built once per schema: checking an input is then a walk over it.
    return jsonschema.Draft202012Validator(msgspec.json.decode(schema))
