"""A run's input against its definition's JSON Schema (chart documents declare one)."""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Any

import jsonschema
import msgspec


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
