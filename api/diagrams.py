"""Diagram endpoints: a definition's chart, and a run's chart with its active states lit."""

from __future__ import annotations

from typing import Annotated

from litestar import Controller, Response, get
from litestar.di import NamedDependency
from litestar.exceptions import NotFoundException
from litestar.params import FromPath, QueryParameter

from signoff.api.auth import requires
from signoff.engine import DefinitionNotFoundError, Runtime, drawing

FormatQuery = Annotated[
    drawing.Format, QueryParameter(name="format", description="svg, dot or mermaid")
]


class DiagramController(Controller):
    tags = ("diagrams",)
    guards = (requires("viewer"),)

    @get("/api/definitions/{name:str}/diagram", media_type="image/svg+xml")
    async def definition_diagram(
        self, name: FromPath[str], runtime: NamedDependency[Runtime], fmt: FormatQuery = "svg"
    ) -> Response[bytes]:
        """The chart of a definition."""
        try:
            chart = runtime.registry.get(name).chart
        except DefinitionNotFoundError as exc:
            raise NotFoundException(exc.message) from exc
        return Response(await drawing.render(chart, fmt), media_type=drawing.MEDIA_TYPES[fmt])

    @get("/api/runs/{run_id:str}/diagram", media_type="image/svg+xml")
    async def run_diagram(
        self, run_id: FromPath[str], runtime: NamedDependency[Runtime], fmt: FormatQuery = "svg"
    ) -> Response[bytes]:
        """The run's chart with its active states lit."""
        run = await runtime.queries.get(run_id)
        spec = runtime.registry.find(run.definition, run.definition_version)
        if spec is None:
            raise NotFoundException(
                f"{run.definition} v{run.definition_version} is not loaded by this server, so "
                "it has no chart to draw."
            )
        machine = drawing.lit(spec.chart, run.configuration)
        return Response(
            await drawing.render(machine, fmt),
            media_type=drawing.MEDIA_TYPES[fmt],
            headers={"ETag": f'"{run.version}"'},
        )
