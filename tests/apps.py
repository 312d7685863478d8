"""Targets for --app in the tests: each form it takes, and two that fail."""

from __future__ import annotations

from typing import Any

from expense_report import pack as expense_pack

from signoff import Pack, Registry, Settings
from signoff.machines.lifecycle import Lifecycle

PACK = expense_pack(Settings())
REGISTRY = Registry.of_packs([PACK], Lifecycle)


def registry(settings: Settings) -> Registry:
    """A factory of a Registry."""
    return Registry.of_packs([expense_pack(settings)], Lifecycle)


def broken(settings: Settings) -> Registry:
    raise RuntimeError("no payment service configured")


def wrong(settings: Settings) -> Any:
    return {}


def versions(settings: Settings) -> Registry:
    """Two versions of the example's definition (v2 adds nothing but its number)."""
    import dataclasses

    v1 = PACK.definitions[0]
    v2 = dataclasses.replace(v1, version=2)
    return Registry.of_packs([Pack("expense_report", [v1, v2], PACK.jobs)], Lifecycle)
