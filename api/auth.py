"""Access control: bearer tokens with roles (SIGNOFF_TOKENS), and signed stream tokens.

SIGNOFF_TOKENS = comma-separated `actor:role[+role…]:secret`; a role may name a group
(`approver@finance`). Roles: viewer (read, streams), operator (create, process, pause, resume,
cancel, retry), approver (approve, reject), admin (all). Every role can read. With no tokens the
server runs open: every caller is `anonymous` with every role.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from dataclasses import dataclass, field
from typing import Any

from litestar.connection import ASGIConnection
from litestar.exceptions import NotAuthorizedException, PermissionDeniedException
from litestar.handlers.base import BaseRouteHandler

from signoff.engine import Role

ROLES = tuple(str(r) for r in Role)
STREAM_TOKEN_TTL_S = 300
STREAM_SCOPE = "stream"
_SCOPE_KEY = "signoff_principal"


@dataclass(frozen=True)
class Principal:
    actor: str
    roles: frozenset[str]
    groups: frozenset[str] = field(default_factory=frozenset)

    def has(self, role: str) -> bool:
        return "admin" in self.roles or role in self.roles or role == "viewer"

    @property
    def decides_in(self) -> frozenset[str] | None:
        """The approver groups this principal decides for; None: every group (admin)."""
        return None if "admin" in self.roles else self.groups


ANONYMOUS = Principal("anonymous", frozenset(ROLES))  # an open server: admin, so every group


class TokenSpecError(ValueError):
    """SIGNOFF_TOKENS is malformed; the message names the entry by position, never its secret."""


def parse_tokens(spec: str) -> list[tuple[bytes, Principal]]:
    """The entries of a SIGNOFF_TOKENS value, as (SHA-256 of the secret, principal).

    A value that is set must hold at least one well-formed entry: a list that parses to
    nothing (`' '`, `','`) would otherwise leave the server open without a word.
    """
    if not spec.strip():
        if spec:
            raise TokenSpecError("SIGNOFF_TOKENS is set but holds no token; unset it to run open")
        return []
    entries: list[tuple[bytes, Principal]] = []
    for position, item in enumerate((part.strip() for part in spec.split(",")), start=1):
        where = f"SIGNOFF_TOKENS entry {position}"
        if not item:
            raise TokenSpecError(f"{where} is empty (a stray comma?)")
        actor, sep, rest = item.partition(":")
        roles_text, sep2, secret = rest.partition(":")
        if not (sep and sep2 and actor and roles_text and secret):
            raise TokenSpecError(f"{where} is not actor:role[+role…]:secret")
        roles, groups = set(), set()
        for role in roles_text.split("+"):
            name, _, group = role.partition("@")
            if name not in ROLES:
                raise TokenSpecError(
                    f"{where} ({actor}) has unknown role {name!r}; roles: {', '.join(ROLES)}"
                )
            roles.add(name)
            if group:
                groups.add(group)
        digest = hashlib.sha256(secret.encode()).digest()
        for other, (known, _) in enumerate(entries, start=1):
            if hmac.compare_digest(known, digest):
                raise TokenSpecError(f"{where} has the same secret as entry {other}")
        entries.append((digest, Principal(actor, frozenset(roles), frozenset(groups))))
    return entries


class Tokens:
    """The configured tokens; secrets are kept only as SHA-256 digests."""

    def __init__(self, spec: str) -> None:
        self._entries = parse_tokens(spec)
        # Stream tokens are signed with a key every process sharing this configuration derives.
        self._key = hashlib.sha256(b"signoff-stream-token\0" + spec.encode()).digest()
        # Approval links are signed with a key of their own, derived the same way.
        self.link_key = hashlib.sha256(b"signoff-approval-link\0" + spec.encode()).digest()

    @property
    def open(self) -> bool:
        return not self._entries

    def person(self, actor: str) -> Principal | None:
        """What `actor` may do with their tokens (all of them together); None if no token
        names them."""
        held = [p for _, p in self._entries if p.actor == actor]
        if not held:
            return None
        roles = frozenset().union(*(p.roles for p in held))
        return Principal(actor, roles, frozenset().union(*(p.groups for p in held)))

    def people(self) -> list[Principal]:
        """Everyone a token names, each once."""
        found = [self.person(a) for a in sorted({p.actor for _, p in self._entries})]
        return [p for p in found if p is not None]

    def authenticate(self, secret: str) -> Principal | None:
        """The principal whose secret this is; compares against every entry in constant time."""
        digest = hashlib.sha256(secret.encode()).digest()
        found = None
        for known, principal in self._entries:
            if hmac.compare_digest(known, digest):
                found = principal
        return found

    def stream_token(self, principal: Principal, ttl_s: int = STREAM_TOKEN_TTL_S) -> str:
        """A short-lived token that opens streams as `principal` (EventSource sends no headers).

        It names its scope, so that no other kind of signed token could pass for it."""
        expires = int(time.time()) + ttl_s
        body = f"{STREAM_SCOPE}\0{expires}\0{principal.actor}".encode()
        mac = hmac.new(self._key, body, hashlib.sha256).digest()
        return _b64(body) + "." + _b64(mac)

    def verify_stream_token(self, token: str) -> Principal | None:
        """The stream reader a token names, if this server signed it and it has not expired.

        The reader may only read: a stream token is a viewer, whatever its issuer could do."""
        try:
            body_text, mac_text = token.split(".")
            body, mac = _unb64(body_text), _unb64(mac_text)
        except ValueError:
            return None
        expected = hmac.new(self._key, body, hashlib.sha256).digest()
        if not hmac.compare_digest(expected, mac):
            return None
        try:
            scope, expires, actor = body.decode().split("\0")
            if scope != STREAM_SCOPE or int(expires) < time.time():
                return None
        except ValueError:  # signed by us, but not a stream token of this shape
            return None
        return Principal(actor, frozenset({"viewer"}))


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except Exception as exc:
        raise ValueError("not base64") from exc


def principal_of(connection: ASGIConnection[Any, Any, Any, Any]) -> Principal:
    """Who is calling: set by the `requires` guard that ran for this route."""
    found = connection.scope.get(_SCOPE_KEY)
    return found if isinstance(found, Principal) else ANONYMOUS


def authenticate(
    connection: ASGIConnection[Any, Any, Any, Any], tokens: Tokens, *, stream: bool = False
) -> Principal:
    """The caller, from its bearer token; on a stream route (`stream`) a `?token=` from
    POST /api/stream-tokens also serves, and nowhere else."""
    if tokens.open:
        return ANONYMOUS
    header = connection.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    principal = None
    if scheme.lower() == "bearer" and secret:
        principal = tokens.authenticate(secret.strip())
    elif stream and not header and (signed := connection.query_params.get("token")):
        principal = tokens.verify_stream_token(signed)
    if principal is None:
        raise NotAuthorizedException(
            "A valid token is required: send Authorization: Bearer <secret>.",
            headers={"WWW-Authenticate": 'Bearer realm="signoff"'},
        )
    return principal


def requires(role: str, *, stream: bool = False) -> Any:
    """A route guard: authenticate the caller and demand `role` (admin passes every guard).
    `stream` routes also accept a signed stream token as `?token=`."""

    # async, though it never awaits: Litestar runs a sync guard on a worker thread.
    async def guard(connection: ASGIConnection[Any, Any, Any, Any], _: BaseRouteHandler) -> None:
        tokens: Tokens = connection.app.state.tokens
        principal = authenticate(connection, tokens, stream=stream)
        connection.scope[_SCOPE_KEY] = principal  # type: ignore[literal-required]
        if not principal.has(role):
            raise PermissionDeniedException(f"{principal.actor} lacks the {role} role.")

    return guard
