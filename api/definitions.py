"""Definition endpoints: the charts a server runs, the lifecycle machine, and chart documents
deployed, retired and deleted at run time (admin)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

import msgspec
from litestar import Controller, Request, Response, delete, get, post
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, JSONBody, PathParameter

from signoff.api.auth import principal_of, requires
from signoff.api.schemas import DeployDefinition
from signoff.engine import (
    ChartInfo,
    Definition,
    DefinitionNotFoundError,
    Registry,
    Runtime,
    describe,
    describe_lifecycle,
)

# A stored version's number (the database's integer).
Version = Annotated[int, PathParameter(ge=1, le=2**31 - 1)]
# A document's request may be larger than other bodies (SIGNOFF_MAX_DOCUMENT_BYTES, at most
# 512 KiB, bounds the document itself).
DOCUMENT_BODY_LIMIT = 1024 * 1024 + 4096


class DefinitionList(msgspec.Struct, frozen=True, kw_only=True):
    items: list[ChartInfo]
    lifecycle: ChartInfo


class StoredVersion(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: int
    format: str
    hash: str
    document: str
    created_by: str
    created_at: datetime
    retired_at: datetime | None


class Retired(msgspec.Struct, frozen=True, kw_only=True):
    name: str
    version: int
    retired: bool  # it was retired by this request (False: it already was)


class DefinitionController(Controller):
    path = "/api/definitions"
    tags = ("definitions",)
    guards = (requires("viewer"),)

    @get("/")
    async def list_definitions(self, runtime: NamedDependency[Runtime]) -> DefinitionList:
        """Every definition this server runs (from code and deployed documents, retired ones
        too), and the lifecycle machine every run shares."""
        registry = runtime.registry
        return DefinitionList(
            items=[_describe(registry, name) for name in _names(registry)],
            lifecycle=describe_lifecycle(registry.lifecycle),
        )

    @get("/{name:str}")
    async def get_definition(
        self, name: FromPath[str], runtime: NamedDependency[Runtime]
    ) -> ChartInfo:
        """One definition (its newest version): states and what each means to the runtime,
        events, transitions, the input's JSON Schema, its versions."""
        if not runtime.registry.versions(name):
            raise NotFoundException(DefinitionNotFoundError(name).message)
        return _describe(runtime.registry, name)

    @post("/", guards=[requires("admin")], request_max_body_size=DOCUMENT_BODY_LIMIT)
    async def deploy(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[DeployDefinition],
        runtime: NamedDependency[Runtime],
    ) -> Response[ChartInfo]:
        """Deploy a chart document (YAML, JSON or SCXML with its `signoff` section) as the next
        version of its name: 201; the same document as the newest version: 200, nothing
        stored. A document that cannot run is a 422 listing every reason (`reasons`)."""
        actor = principal_of(request).actor
        now = runtime.dispatcher.clock()
        deployed = await runtime.catalog.deploy(data.document, data.format, actor, now)
        name = deployed.definition.name
        return Response(
            _describe(runtime.registry, name, deployed.definition),
            status_code=201 if deployed.created else 200,
            headers={"Location": f"/api/definitions/{name}"},
        )

    @get("/{name:str}/versions/{version:int}/document")
    async def document(
        self, name: FromPath[str], version: Version, runtime: NamedDependency[Runtime]
    ) -> StoredVersion:
        """A deployed version's document, as it was deployed."""
        for row in runtime.catalog.stored:
            if (row.name, row.version) == (name, version):
                return msgspec.convert(row, StoredVersion, from_attributes=True)
        raise NotFoundException(f"No deployed document is version {version} of {name!r}.")

    @post("/{name:str}/versions/{version:int}/retire", guards=[requires("admin")], status_code=200)
    async def retire(
        self, name: FromPath[str], version: Version, runtime: NamedDependency[Runtime]
    ) -> Retired:
        """Retire a deployed version: it starts no new runs (new runs take the newest version
        that is not retired); its runs go on."""
        changed = await runtime.catalog.retire(name, version, runtime.dispatcher.clock())
        return Retired(name=name, version=version, retired=changed)

    @delete("/{name:str}/versions/{version:int}", guards=[requires("admin")], status_code=204)
    async def delete_version(
        self, name: FromPath[str], version: Version, runtime: NamedDependency[Runtime]
    ) -> None:
        """Delete a retired version that no run uses (else 409)."""
        await runtime.catalog.delete(name, version)


def _names(registry: Registry) -> list[str]:
    names = dict.fromkeys(registry.definitions)
    names.update(dict.fromkeys(d.name for d in registry.older))
    return list(names)


def _describe(registry: Registry, name: str, definition: Definition | None = None) -> ChartInfo:
    versions = registry.versions(name)
    shown = definition or registry.definitions.get(name) or versions[-1]
    retired = [d.version for d in versions if (name, d.version) in registry.retired]
    return describe(shown, [d.version for d in versions], retired)
