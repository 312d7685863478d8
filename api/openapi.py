"""Finishes the generated OpenAPI document: every error as problem+json, closed request bodies,
the diagram endpoints' other content types. One place, instead of decorating every route."""

from __future__ import annotations

from litestar.openapi.spec import (
    Example,
    OpenAPI,
    OpenAPIMediaType,
    OpenAPIResponse,
    OpenAPIType,
    Operation,
    Parameter,
    Reference,
    RequestBody,
    Schema,
)

from signoff.api.errors import PROBLEM, TITLES
from signoff.engine import CONTROL_EVENTS, Registry, event_names

CLOSED_BODIES = (
    "CreateRun",
    "SendEvent",
    "Decision",
    "DeployDefinition",
    "CreateWebhook",
    "UpdateWebhook",
    "TaskAction",
    "BulkDecision",
    "BulkItem",
    "BulkRuns",
    "RunsFilter",
    "PostEvent",
)
PROBLEM_SCHEMA = Schema(
    type=OpenAPIType.OBJECT,
    required=["type", "title", "status", "detail"],
    properties={
        "type": Schema(type=OpenAPIType.STRING),
        "title": Schema(type=OpenAPIType.STRING),
        "status": Schema(type=OpenAPIType.INTEGER),
        "detail": Schema(type=OpenAPIType.STRING),
        "allowed_events": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING)),
        "errors": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.OBJECT)),
        "reasons": Schema(type=OpenAPIType.ARRAY, items=Schema(type=OpenAPIType.STRING)),
    },
    description="RFC 9457 problem details",
)
# Every route may also meet a storage outage (503 storage-unavailable).
READ_ERRORS = (400, 401, 403, 404, 422, 503)
WRITE_ERRORS = (400, 401, 403, 404, 409, 412, 413, 415, 422, 503)
DELETE_ERRORS = (400, 401, 403, 404, 409, 503)
DIAGRAM_TYPES = ("image/svg+xml", "text/vnd.graphviz; charset=utf-8", "text/plain; charset=utf-8")


def finish(document: OpenAPI, registry: Registry) -> OpenAPI:
    components = document.components
    schemas = components.schemas if components.schemas is not None else {}
    schemas["Problem"] = PROBLEM_SCHEMA
    components.schemas = schemas
    for name in CLOSED_BODIES:
        if name in schemas:
            schemas[name].additional_properties = False
    # The names the server knows, so that a client (or a fuzzer) can tell valid from not.
    _enum(schemas, "CreateRun", "definition", sorted(registry.definitions))
    events = {
        e
        for d in registry.definitions.values()
        for e in event_names(d.chart)
        if e not in d.internal_events
    }
    _enum(schemas, "SendEvent", "event", sorted(events | set(CONTROL_EVENTS)))
    for path, item in (document.paths or {}).items():
        for method in ("get", "post", "patch", "delete"):
            operation: Operation | None = getattr(item, method)
            if operation is None:
                continue
            _headers_are_strings(operation)
            _optional_bodies(operation)
            if path == "/healthz":
                _errors(operation, (503,))
            elif path.startswith("/api"):
                writes = {"post": WRITE_ERRORS, "patch": WRITE_ERRORS, "delete": DELETE_ERRORS}
                statuses = writes.get(method, READ_ERRORS)
                _errors(operation, statuses)
            if path.endswith("/diagram"):
                _diagram_types(operation)
            if path == "/api/runs/bulk":
                _ndjson(operation)
            if path == "/api/audit/export":
                _audit_types(operation)
    return document


def _enum(schemas: dict[str, Schema], name: str, field: str, values: list[str]) -> None:
    properties = schemas[name].properties if name in schemas else None
    target = properties.get(field) if properties else None
    if isinstance(target, Schema):
        target.enum = list(values)


def _headers_are_strings(operation: Operation) -> None:
    # An optional header is absent, never JSON null: keep only its string schema.
    for parameter in operation.parameters or []:
        if isinstance(parameter, Parameter) and parameter.param_in == "header":
            schema = parameter.schema
            if isinstance(schema, Schema) and schema.one_of:
                # Litestar puts the constraints beside the oneOf; keep them on the string.
                examples = [
                    e.value for e in (parameter.examples or {}).values() if isinstance(e, Example)
                ]
                parameter.schema = Schema(
                    type=OpenAPIType.STRING,
                    pattern=schema.pattern,
                    max_length=schema.max_length,
                    min_length=schema.min_length,
                    # In the schema too, where fuzzers look for a value the pattern accepts.
                    examples=examples or None,
                )


def _optional_bodies(operation: Operation) -> None:
    # A body that may be null may also be absent (the shortcuts take `{reason?, region?}`).
    body = operation.request_body
    if isinstance(body, RequestBody) and body.content:
        schemas = [m.schema for m in body.content.values()]
        if all(isinstance(s, Schema) and _nullable(s) for s in schemas):
            body.required = False


def _nullable(schema: Schema) -> bool:
    return any(isinstance(o, Schema) and o.type == OpenAPIType.NULL for o in schema.one_of or [])


def _errors(operation: Operation, statuses: tuple[int, ...]) -> None:
    responses = operation.responses if operation.responses is not None else {}
    problem = {PROBLEM: OpenAPIMediaType(schema=Reference("#/components/schemas/Problem"))}
    for status in statuses:
        responses[str(status)] = OpenAPIResponse(description=TITLES[status], content=problem)
    operation.responses = responses


def _diagram_types(operation: Operation) -> None:
    ok = (operation.responses or {}).get("200")
    if isinstance(ok, OpenAPIResponse):
        ok.content = {
            t: OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)) for t in DIAGRAM_TYPES
        }


def _ndjson(operation: Operation) -> None:
    # A bulk action (not a dry run) streams a line per run.
    ok = (operation.responses or {}).get("200")
    if isinstance(ok, OpenAPIResponse):
        ok.content = {
            **(ok.content or {}),
            "application/x-ndjson": OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING)),
        }


def _audit_types(operation: Operation) -> None:
    # The export is NDJSON, or CSV with ?format=csv.
    ok = (operation.responses or {}).get("200")
    if isinstance(ok, OpenAPIResponse):
        text = OpenAPIMediaType(schema=Schema(type=OpenAPIType.STRING))
        ok.content = {"application/x-ndjson": text, "text/csv; charset=utf-8": text}
