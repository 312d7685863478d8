"""Input checks every request passes before its handler: what no schema can say per field."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote_to_bytes

import msgspec
from litestar import Request
from litestar.exceptions import ClientException

MAX_DEPTH = 32  # nesting of JSON objects and arrays in a body
JSON_TYPES = ("application/json", "application/problem+json")
FORM = "application/x-www-form-urlencoded"
LINK_PATH = "/links/"  # signoff.api.links


class InputRejected(ClientException):
    """400: the request holds something no endpoint accepts."""

    status_code = 400
    problem_type = "bad-request"


class BodyUnstorable(ClientException):
    """422: well-formed JSON that the server will not store (NUL characters, deep nesting)."""

    status_code = 422
    problem_type = "body-unstorable"


class NotJson(ClientException):
    """415: a request body must be JSON, so that no cross-site form or text/plain POST (which a
    browser sends without asking) can create or decide anything."""

    status_code = 415
    problem_type = "unsupported-media-type"


async def guard_request(request: Request[Any, Any, Any]) -> None:
    """Refuse NUL characters in the URL (PostgreSQL cannot store them; uvicorn's parser already
    refuses them in headers), bodies that are not JSON, invalid UTF-8 and over-deep JSON."""
    scope = request.scope
    if b"\x00" in unquote_to_bytes(scope["raw_path"]) or b"\x00" in unquote_to_bytes(
        scope["query_string"]
    ):
        raise InputRejected("The URL contains a NUL character.")
    if request.method not in ("POST", "PUT", "PATCH"):
        return
    body = await request.body()
    if not body:
        return
    media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if media_type == FORM and scope["path"].startswith(LINK_PATH):
        return  # an approval link's own page: the signed link in the path is the authority
    if media_type not in JSON_TYPES:
        raise NotJson(
            f"The body must be JSON, sent with Content-Type: application/json "
            f"(not {media_type or 'no Content-Type'})."
        )
    try:
        value = msgspec.json.decode(body)
    except RecursionError:
        raise BodyUnstorable(f"The JSON body is nested deeper than {MAX_DEPTH} levels.") from None
    except UnicodeDecodeError:
        raise InputRejected("The JSON body is not valid UTF-8.") from None
    except msgspec.DecodeError:
        return  # the handler's own decoder reports where the JSON is malformed
    _check(value, 0)


def _check(value: Any, depth: int) -> None:
    if depth > MAX_DEPTH:
        raise BodyUnstorable(f"The JSON body is nested deeper than {MAX_DEPTH} levels.")
    if isinstance(value, str):
        if "\x00" in value:
            raise BodyUnstorable("The JSON body contains a NUL character (\\u0000).")
    elif isinstance(value, dict):
        for key, item in value.items():
            _check(key, depth + 1)
            _check(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check(item, depth + 1)
