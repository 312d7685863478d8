"""The only file that knows HTTP status codes: engine errors → RFC 9457 problem+json."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from litestar import Request, Response
from litestar.exceptions import HTTPException, ValidationException

from signoff.engine import errors

log = logging.getLogger("signoff.api")

PROBLEM = "application/problem+json"

# Most specific first: the first matching class decides the status.
STATUS: list[tuple[type[errors.EngineError], int]] = [
    (errors.DefinitionNotFoundError, 422),
    (errors.NotFoundError, 404),
    (errors.InvalidCursorError, 400),
    (errors.InvalidRequestError, 422),
    (errors.PreconditionFailedError, 412),
    (errors.ForbiddenError, 403),
    (errors.ConflictError, 409),
    (errors.LeaseLostError, 409),
    (errors.SnapshotError, 500),
    (errors.StorageUnavailableError, 503),
]

TITLES = {
    400: "Bad request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not found",
    405: "Method not allowed",
    408: "Request timeout",
    409: "Conflict",
    412: "Precondition failed",
    413: "Request body too large",
    415: "Unsupported media type",
    422: "Unprocessable request",
    500: "Internal server error",
    503: "Service unavailable",
}
# The problem type of an HTTP-level refusal that no engine error names more precisely.
KINDS = {
    400: "bad-request",
    401: "unauthorized",
    403: "forbidden",
    404: "not-found",
    405: "method-not-allowed",
    408: "request-timeout",
    409: "conflict",
    412: "precondition-failed",
    413: "body-too-large",
    415: "unsupported-media-type",
    422: "unprocessable",
    500: "internal-error",
    503: "service-unavailable",
}


def problem(
    status: int,
    detail: str,
    *,
    kind: str | None = None,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> Response[dict[str, Any]]:
    body: dict[str, Any] = {
        "type": f"urn:signoff:problem:{kind or KINDS.get(status, 'error')}",
        "title": TITLES.get(status, "Error"),
        "status": status,
        "detail": detail,
        **extra,
    }
    return Response(body, status_code=status, media_type=PROBLEM, headers=headers)


def _slug(exc: Exception) -> str:
    name = type(exc).__name__.removesuffix("Error")
    return "".join(f"-{c.lower()}" if c.isupper() else c for c in name).lstrip("-")


def problem_of(exc: errors.EngineError) -> tuple[int, dict[str, Any]]:
    """An engine error's status and problem body (where one request reports several
    outcomes, as a bulk decision does)."""
    response = engine_error(None, exc)
    return int(response.status_code or 500), dict(response.content)


def engine_error(request: Request[Any, Any, Any] | None, exc: errors.EngineError) -> Response[Any]:
    status = next((code for cls, code in STATUS if isinstance(exc, cls)), 500)
    extra: dict[str, Any] = {}
    reasons = getattr(exc, "reasons", None)
    if reasons is not None:
        extra["reasons"] = reasons
    allowed = getattr(exc, "allowed_events", None)
    if allowed is not None:
        extra["allowed_events"] = allowed
    headers = None
    where = "" if request is None else f"{request.method} {request.url.path}"
    if isinstance(exc, errors.StorageUnavailableError):
        headers = {"Retry-After": str(exc.retry_after_s)}
        log.warning("storage unavailable on %s: %s", where, exc.__cause__ or exc)
    elif status >= 500:
        log.error("engine error on %s", where, exc_info=exc)
    return problem(status, exc.message, kind=_slug(exc), headers=headers, **extra)


def http_error(request: Request[Any, Any, Any], exc: HTTPException) -> Response[Any]:
    extra: dict[str, Any] = {}
    detail = str(exc.detail)
    if isinstance(exc, ValidationException) and isinstance(exc.extra, list) and exc.extra:
        named = (_named(request, e) if isinstance(e, dict) else e for e in exc.extra)
        errors_ = [e for e in named if e is not None] or list(exc.extra)
        extra["errors"] = errors_
        detail = "; ".join(
            f"{e.get('source', 'request')} {e.get('key', '')}: {e.get('message', '')}"
            if isinstance(e, dict)
            else str(e)
            for e in errors_
        )
    if exc.status_code == 413:
        detail = "The request body is larger than this server accepts."
    kind = getattr(exc, "problem_type", None)
    return problem(exc.status_code, detail, kind=kind, headers=exc.headers, **extra)


def _named(request: Request[Any, Any, Any], error: dict[str, Any]) -> dict[str, Any] | None:
    """A validation error that names the parameter as the client sent it (`format`, `state`,
    `If-Match`), not as the handler's argument is called."""
    key = error.get("key")
    handler = request.scope.get("route_handler")
    field = handler.parsed_fn_signature.parameters.get(key) if handler and key else None
    spec = field.kwarg_definition if field is not None else None
    alias = (
        getattr(spec, "query", None) or getattr(spec, "header", None) or getattr(spec, "name", None)
    )
    source = error.get("source")
    error = {**error, "source": getattr(source, "value", source)}
    if error["source"] == "body" and key == "data":
        if request.headers.get("content-length", "0") == "0":
            return None  # Litestar adds this beside another parameter's error when no body came
        return {**error, "key": "body", "message": "the request body is missing or not valid"}
    if str(error.get("message", "")).startswith("Expected `str` matching regex"):
        error["message"] = "does not have the expected form"
    return {**error, "key": alias} if alias else error


def unexpected_error(request: Request[Any, Any, Any], exc: Exception) -> Response[Any]:
    log.error("unhandled error on %s %s", request.method, request.url.path, exc_info=exc)
    return problem(500, "The server failed to handle this request; it was logged.")


HANDLERS: dict[int | type[Exception], Callable[[Request[Any, Any, Any], Any], Response[Any]]] = {
    errors.EngineError: engine_error,
    HTTPException: http_error,
    Exception: unexpected_error,
}
