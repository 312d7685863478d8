"""Who am I, and a short-lived token for EventSource (which cannot send headers)."""

from __future__ import annotations

from typing import Any

import msgspec
from litestar import Controller, Request, get, post

from signoff.api.auth import STREAM_TOKEN_TTL_S, Tokens, principal_of, requires


class Me(msgspec.Struct, frozen=True, kw_only=True):
    actor: str
    roles: list[str]
    groups: list[str]
    open: bool


class StreamToken(msgspec.Struct, frozen=True, kw_only=True):
    token: str
    expires_in: int


class IdentityController(Controller):
    path = "/api"
    tags = ("access",)
    guards = (requires("viewer"),)

    @get("/me")
    async def me(self, request: Request[Any, Any, Any]) -> Me:
        """The caller's actor name and roles (every role when the server runs open)."""
        principal = principal_of(request)
        tokens: Tokens = request.app.state.tokens
        return Me(
            actor=principal.actor,
            roles=sorted(principal.roles),
            groups=sorted(principal.groups),
            open=tokens.open,
        )

    @post("/stream-tokens", status_code=201)
    async def stream_token(self, request: Request[Any, Any, Any]) -> StreamToken:
        """A signed token for `?token=` on the stream endpoints, valid to open a stream for
        five minutes (an open stream stays open)."""
        tokens: Tokens = request.app.state.tokens
        token = tokens.stream_token(principal_of(request))
        return StreamToken(token=token, expires_in=STREAM_TOKEN_TTL_S)
