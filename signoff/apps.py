"""Which definitions a process runs: your app (`--app`, SIGNOFF_APP) or the installed packs.

`--app mypkg.workflows:registry` names, in the import-string style of uvicorn, a `Registry`, a
`Pack`, or a factory that takes the `Settings` and returns either. Without it, every installed
distribution's entry points in the group `signoff.definitions` are loaded (each a Pack, or a
factory of one), Signoff's own pack `signoff` among them; SIGNOFF_PACKS picks some by name.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from importlib.metadata import EntryPoint, entry_points
from typing import Any

from signoff.engine import Pack, Registry, Settings
from signoff.engine.errors import AppLoadError
from signoff.machines.lifecycle import Lifecycle

GROUP = "signoff.definitions"


def load_registry(settings: Settings) -> Registry:
    """The registry this process runs, from SIGNOFF_APP or else the installed packs."""
    if settings.app:
        return registry_of(import_target(settings.app), settings, settings.app)
    return Registry.of_packs(installed_packs(settings), Lifecycle)


def import_target(spec: str) -> Any:
    """The object `module.path:attr.path` names."""
    module_name, colon, attr = spec.partition(":")
    if not colon or not module_name or not attr:
        raise AppLoadError(f"--app takes MODULE:ATTR (like mypkg.workflows:registry), not {spec!r}")
    try:
        target: Any = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise AppLoadError(
                f"cannot import {module_name!r} for --app {spec}: no module named {exc.name!r} "
                "(is it installed, or on PYTHONPATH?)"
            ) from exc
        raise AppLoadError(f"importing {module_name!r} for --app {spec} failed: {exc}") from exc
    for name in attr.split("."):
        try:
            target = getattr(target, name)
        except AttributeError:
            raise AppLoadError(f"--app {spec}: {module_name!r} has no attribute {attr!r}") from None
    return target


def registry_of(target: Any, settings: Settings, source: str) -> Registry:
    """A Registry from what `source` named: a Registry, a Pack, or a factory of either."""
    if isinstance(target, Registry):
        return target
    if isinstance(target, Pack):
        return Registry.of_packs([target], Lifecycle)
    if callable(target):
        made = _call(target, settings, source)
        if isinstance(made, Registry | Pack):
            return registry_of(made, settings, source)
        raise AppLoadError(f"{source} returned {type(made).__name__}, not a Registry or a Pack")
    raise AppLoadError(
        f"{source} is a {type(target).__name__}; it must be a Registry, a Pack, or a factory "
        "taking the Settings and returning one"
    )


def installed_packs(settings: Settings) -> list[Pack]:
    """The packs of the installed distributions (SIGNOFF_PACKS: only those named)."""
    found = {ep.name: ep for ep in entry_points(group=GROUP)}
    wanted = [n.strip() for n in settings.packs.split(",") if n.strip()]
    missing = [n for n in wanted if n not in found]
    if missing:
        raise AppLoadError(
            f"SIGNOFF_PACKS names {', '.join(missing)}, which no installed distribution "
            f"provides (installed: {', '.join(sorted(found)) or 'none'})"
        )
    return [_pack(found[name], settings) for name in (wanted or sorted(found))]


def _pack(ep: EntryPoint, settings: Settings) -> Pack:
    source = f"the pack {ep.name!r} ({ep.value})"
    try:
        target = ep.load()
    except Exception as exc:
        raise AppLoadError(f"loading {source} failed: {exc}") from exc
    made = _call(target, settings, source) if callable(target) else target
    if not isinstance(made, Pack):
        raise AppLoadError(f"{source} gave a {type(made).__name__}, not a Pack")
    return made


def _call(factory: Callable[[Settings], Any], settings: Settings, source: str) -> Any:
    try:
        return factory(settings)
    except AppLoadError:
        raise
    except Exception as exc:
        raise AppLoadError(f"{source} failed: {type(exc).__name__}: {exc}") from exc
