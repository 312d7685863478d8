"""Approval links: signed, expiring, single-use URLs that let a person decide a task from a
message, as themselves and with the same checks as the API.

Opening a link (GET) shows a confirmation page and changes nothing: mail scanners open links.
Confirming it (POST) sends the decision for the person the link names, with the roles and
groups their tokens give them now, only while the run is at the version the link was made
for (so a link dies once the run moves on), and records the link's use in the decision's own
transaction as an idempotency key (so a second use is refused, never applied twice).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import html
import secrets
import time
from typing import Any

import msgspec
from litestar import Request, Response, get, post
from litestar.di import NamedDependency
from litestar.params import FromPath

from signoff.api.auth import Tokens
from signoff.api.errors import problem_of
from signoff.api.guard import LINK_PATH
from signoff.engine import (
    Definition,
    EngineError,
    IdempotencyKey,
    Runtime,
    Settings,
    TaskView,
    errors,
)
from signoff.engine.tasks.task import offered_to

MAX_TOKEN = 2048


class Link(msgspec.Struct, frozen=True):
    """What a link lets its person do: `e` on run `r` at version `v`, in task `s`, as `a`,
    until `x` (unix seconds); `n` makes it unique."""

    r: str
    v: int
    s: str
    e: str
    a: str
    x: int
    n: str


class Signer:
    """Makes and checks links with the key every process sharing the tokens derives."""

    def __init__(self, tokens: Tokens, settings: Settings) -> None:
        self.tokens = tokens
        self.base = (settings.public_url or f"http://{settings.host}:{settings.port}").rstrip("/")
        self.ttl_s = settings.link_ttl_s
        self.separation_of_duties = settings.separation_of_duties

    def token(self, link: Link) -> str:
        body = msgspec.json.encode(link)
        return _b64(body) + "." + _b64(self._mac(body))

    def verify(self, token: str) -> Link:
        """The link a token holds; InvalidLinkError if it was altered or not made here."""
        try:
            body_text, mac_text = token.split(".")
            body, mac = _unb64(body_text), _unb64(mac_text)
        except ValueError:
            raise errors.InvalidLinkError() from None
        if not hmac.compare_digest(self._mac(body), mac):
            raise errors.InvalidLinkError()
        return msgspec.json.decode(body, type=Link)

    def links(self, spec: Definition, run: dict[str, Any], task: TaskView) -> list[dict[str, Any]]:
        """A link per person who may decide the task now and decision its state takes."""
        events = _decisions(spec, run["configuration"])
        expires = int(time.time() + self.ttl_s)
        found = []
        for person in self._deciders(task, run["created_by"]):
            for event in events:
                link = Link(
                    run["id"], run["version"], task.slot, event, person, expires,
                    secrets.token_urlsafe(12),
                )  # fmt: skip
                url = f"{self.base}{LINK_PATH}{self.token(link)}"
                found.append({"actor": person, "event": event, "url": url, "expires_at": expires})
        return found

    def _deciders(self, task: TaskView, created_by: str) -> list[str]:
        if task.assignee is not None:
            return [task.assignee]
        found = []
        for p in self.tokens.people():
            if "approver" not in p.roles or p.actor in task.voters:
                continue
            if self.separation_of_duties and p.actor == created_by:
                continue
            if offered_to(task, p.actor, p.groups):
                found.append(p.actor)
        return found

    def _mac(self, body: bytes) -> bytes:
        return hmac.new(self.tokens.link_key, b"link\0" + body, hashlib.sha256).digest()


def _decisions(spec: Definition, configuration: list[str]) -> list[str]:
    states = spec.chart.states_map
    found: list[str] = []
    for state in configuration:
        for transition in states[state].transitions:
            for event in transition.events:
                name = str(event.id) if hasattr(event, "id") else str(event)
                if name in spec.decision_events and name not in found:
                    found.append(name)
    return found


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    try:
        return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except Exception as exc:
        raise ValueError("not base64") from exc


def signer_of(request: Request[Any, Any, Any]) -> Signer:
    signer: Signer | None = request.app.state.get("signer")
    if signer is None:  # an open server makes no links: it knows nobody to make them for
        raise errors.InvalidLinkError("This server makes no approval links (no tokens are set).")
    return signer


@get(LINK_PATH + "{token:str}", include_in_schema=False)
async def open_link(
    request: Request[Any, Any, Any], token: FromPath[str], runtime: NamedDependency[Runtime]
) -> Response[str]:
    """The confirmation page; changes nothing."""
    try:
        link = _live(signer_of(request), token)
        view = await runtime.queries.get(link.r)
        if view.version != link.v:
            raise errors.LinkExpiredError("The run has moved on since this link was made.")
    except EngineError as exc:
        return _page_for(exc)
    ref = f" ({view.ref_type or 'ref'} {view.ref_id})" if view.ref_id else ""
    body = f"""<h1>{_e(link.e.capitalize())}?</h1>
<p><strong>{_e(link.a)}</strong>, you are about to <strong>{_e(link.e)}</strong>
{_e(view.definition)} run <code>{_e(view.id)}</code>{_e(ref)}, waiting in
<strong>{_e(view.state)}</strong>.</p>
<form method="post">
<label>Reason <textarea name="reason" maxlength="2000" rows="3"></textarea></label>
<button type="submit">Confirm: {_e(link.e)}</button>
</form>"""
    return _page(200, f"{link.e} — Signoff", body)


@post(LINK_PATH + "{token:str}", include_in_schema=False, status_code=200)
async def use_link(
    request: Request[Any, Any, Any], token: FromPath[str], runtime: NamedDependency[Runtime]
) -> Response[str]:
    """Decide as the link's person (a form post from the confirmation page)."""
    link: Link | None = None
    try:
        signer = signer_of(request)
        link = _live(signer, token)
        person = signer.tokens.person(link.a)
        if person is None or not ({"approver", "admin"} & person.roles):
            raise errors.InvalidLinkError(f"{link.a} can no longer decide with this server.")
        form = await request.form()
        reason = str(form.get("reason") or "").strip()[:2000] or None
        view = await runtime.queries.get(link.r)
        spec = runtime.registry.find(view.definition, view.definition_version)
        data = {"region": link.s} if spec is not None and spec.regions else None
        used = IdempotencyKey(key=f"link:{link.n}", actor=link.a, route="link", request_hash=link.n)
        outcome = await runtime.dispatcher.dispatch(
            link.r,
            link.e,
            actor=link.a,
            data=data,
            reason=reason,
            if_match=[link.v],
            idem=used,
            roles=person.roles,
            groups=None if "admin" in person.roles else person.groups,
        )
        if outcome.replayed:
            raise errors.LinkExpiredError("This link was already used.")
    except EngineError as exc:
        if await _moved_on(runtime, exc, link):
            exc = errors.LinkExpiredError("The run has moved on since this link was made.")
        return _page_for(exc)
    view = outcome.view()
    body = f"""<h1>Done</h1><p>{_e(link.a)}: <strong>{_e(link.e)}</strong> on
{_e(view.definition)} run <code>{_e(view.id)}</code>; it is now in
<strong>{_e(view.state)}</strong>.</p>"""
    return _page(200, "Done — Signoff", body)


async def _moved_on(runtime: Runtime, exc: EngineError, link: Link | None) -> bool:
    """Whether a refusal is because the run is no longer at the link's version (what a
    later state refuses, the link never offered)."""
    if link is None or isinstance(exc, errors.LinkExpiredError | errors.InvalidLinkError):
        return False
    if isinstance(exc, errors.PreconditionFailedError):
        return True
    try:
        return (await runtime.queries.get(link.r)).version != link.v
    except EngineError:
        return False


def _live(signer: Signer, token: str) -> Link:
    if len(token) > MAX_TOKEN:
        raise errors.InvalidLinkError()
    link = signer.verify(token)
    if link.x < time.time():
        raise errors.LinkExpiredError("This link has expired.")
    return link


def _page_for(exc: EngineError) -> Response[str]:
    status, problem = problem_of(exc)
    body = f"<h1>{_e(problem['title'])}</h1><p>{_e(problem['detail'])}</p>"
    return _page(status, "Signoff", body)


def _page(status: int, title: str, body: str) -> Response[str]:
    page = f"""<!doctype html><html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="robots" content="noindex"><title>{_e(title)}</title>
<link rel="stylesheet" href="/static/link.css"></head><body><main>{body}</main></body></html>"""
    # same-origin, not the API's no-referrer: under no-referrer a browser posts the form with
    # `Origin: null`, which the origin check (rightly) refuses; the page links nowhere else.
    headers = {"Referrer-Policy": "same-origin", "Cache-Control": "no-store"}
    return Response(
        page, status_code=status, media_type="text/html; charset=utf-8", headers=headers
    )


def _e(text: str) -> str:
    return html.escape(text, quote=True)
