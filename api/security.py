"""Response headers for every route, CORS, and an access log that never shows a token."""

from __future__ import annotations

import logging
import re
from typing import Any

from litestar import Response
from litestar.config.cors import CORSConfig

# The monitor loads only its own files and talks only to this origin; nothing inline runs.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; "
    "form-action 'self'"
)
HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


async def add_security_headers(response: Response[Any]) -> Response[Any]:
    # async, though it never awaits: Litestar runs a sync hook on a worker thread.
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def cors(origins: str) -> CORSConfig | None:
    """CORS for the listed origins (comma-separated); none by default."""
    allowed = [o.strip() for o in origins.split(",") if o.strip()]
    if not allowed:
        return None
    return CORSConfig(
        allow_origins=allowed,
        allow_methods=["GET", "POST"],
        allow_headers=[
            "Authorization",
            "Content-Type",
            "Idempotency-Key",
            "If-Match",
            "Last-Event-ID",
        ],
        expose_headers=["ETag", "Location", "Idempotent-Replayed"],
    )


_TOKEN = re.compile(r"(token=)[^&\s\"]+")


class RedactTokens(logging.Filter):
    """Masks `token=` query values (stream tokens) in uvicorn's access log."""

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(
                _TOKEN.sub(r"\1***", a) if isinstance(a, str) else a for a in record.args
            )
        return True
