"""Definition endpoints: the registered charts and the shared lifecycle machine."""

from __future__ import annotations

import msgspec
from litestar import Controller, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath

from signoff.api.auth import requires
from signoff.engine import (
    ChartInfo,
    DefinitionNotFoundError,
    Registry,
    Runtime,
    describe,
    describe_lifecycle,
)


class DefinitionList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ChartInfo]
    lifecycle: ChartInfo


class DefinitionController(Controller):
    path = "/api/definitions"
    tags = ("definitions",)
    guards = (requires("viewer"),)

    @get("/")
    async def list_definitions(self, runtime: NamedDependency[Runtime]) -> DefinitionList:
        """Every registered definition, and the lifecycle machine every run shares."""
        registry = runtime.registry
        return DefinitionList(
            items=[describe(d, _versions(registry, d.name)) for d in registry.definitions.values()],
            lifecycle=describe_lifecycle(registry.lifecycle),
        )

    @get("/{name:str}")
    async def get_definition(
        self, name: FromPath[str], runtime: NamedDependency[Runtime]
    ) -> ChartInfo:
        """One definition: its states (with what each means to the runtime), events, transitions."""
        try:
            return describe(runtime.registry.get(name), _versions(runtime.registry, name))
        except DefinitionNotFoundError as exc:  # in a path, an unknown name is a missing resource
            raise NotFoundException(exc.message) from exc


def _versions(registry: Registry, name: str) -> list[int]:
    return [d.version for d in registry.versions(name)]
