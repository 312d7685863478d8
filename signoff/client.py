"""An async Python client for the HTTP API, returning the engine's own view types.

    async with SignoffClient("http://127.0.0.1:8000", token="…") as signoff:
        run = await signoff.create("approval", input={"output": 0.9})
        await signoff.process(run.id)
        async for entry in signoff.follow(run_id=run.id):
            ...

`follow()` reconnects by itself after a dropped stream or a restarted server, resuming with
Last-Event-ID, so it yields every entry once, in order. Refusals raise ApiError with the
server's RFC 9457 problem fields.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import httpx
import msgspec
from httpx_sse import aconnect_sse

from signoff.engine import (
    BulkLine,
    BulkOutcome,
    BulkPreview,
    ChartInfo,
    DryRun,
    EngineError,
    EventRecord,
    HistoryEntry,
    HistoryPage,
    Permissions,
    RunDetail,
    RunPage,
    RunView,
    Stats,
    TaskPage,
)
from signoff.engine.audit.formats import Line as AuditLine
from signoff.engine.audit.formats import ndjson_line
from signoff.engine.webhooks.views import (
    CreatedWebhook,
    DeliveryPage,
    Redelivered,
    WebhookList,
    WebhookView,
)

log = logging.getLogger("signoff.client")


class ApiError(EngineError):
    """The server refused the request."""

    def __init__(self, status: int, problem: Mapping[str, Any]) -> None:
        self.status = status
        self.problem = dict(problem)
        # One line, however the server (or a proxy's HTML error page) broke its text.
        title = " ".join(str(problem.get("title") or f"HTTP {status}").split())
        detail = " ".join(str(problem.get("detail") or "").split())
        super().__init__(f"{status} {title}: {detail}" if detail else f"{status} {title}")


class _Definitions(msgspec.Struct):
    items: list[ChartInfo]


class SignoffClient:
    """One HTTP connection pool to a Signoff server; use as an async context manager."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        self.http = httpx.AsyncClient(
            base_url=base_url, headers=headers, timeout=timeout, transport=transport
        )

    async def __aenter__(self) -> SignoffClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self.http.aclose()

    # Runs ---------------------------------------------------------------------------------

    async def create(
        self,
        definition: str,
        *,
        input: Mapping[str, Any] | None = None,
        ref_id: str | None = None,
        ref_type: str | None = None,
        idempotency_key: str | None = None,
    ) -> RunView:
        body = {"definition": definition, "input": dict(input or {})}
        if ref_id is not None:
            body["ref_id"] = ref_id
        if ref_type is not None:
            body["ref_type"] = ref_type
        return await self._run("POST", "/api/runs", body, idempotency_key=idempotency_key)

    async def get(self, run_id: str) -> RunDetail:
        """One run, with the ids of the runs that replay it (`replays`)."""
        response = await self._request("GET", f"/api/runs/{run_id}")
        return msgspec.json.decode(response.content, type=RunDetail)

    async def replay(
        self, run_id: str, *, same_version: bool = False, idempotency_key: str | None = None
    ) -> RunView:
        """A new run with the run's definition, input and ref (`replay_of` names the
        original): on the newest version, or `same_version` on the original's."""
        path = f"/api/runs/{run_id}/replay" + ("?same_version=true" if same_version else "")
        return await self._run("POST", path, idempotency_key=idempotency_key)

    async def send_event(
        self,
        name: str,
        *,
        id: str,
        data: Mapping[str, Any] | None = None,
        ref_type: str | None = None,
        ref_id: str | None = None,
    ) -> EventRecord:
        """Send an external event (POST /api/events): the runs it started and the runs it
        was delivered to, each with its outcome. A repeat of `id` answers the first."""
        body: dict[str, Any] = {"id": id, "name": name, "data": dict(data or {})}
        if ref_type is not None:
            body["ref_type"] = ref_type
        if ref_id is not None:
            body["ref_id"] = ref_id
        response = await self._request("POST", "/api/events", json=body)
        return msgspec.json.decode(response.content, type=EventRecord)

    async def list(
        self,
        *,
        definition: str | None = None,
        state: str | None = None,
        lifecycle: str | None = None,
        ref_id: str | None = None,
        ref_type: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> RunPage:
        """One page of runs, newest first; pass `next_cursor` back for the next one."""
        params = {
            "definition": definition,
            "state": state,
            "lifecycle": lifecycle,
            "ref_id": ref_id,
            "ref_type": ref_type,
            "limit": limit,
            "cursor": cursor,
        }
        response = await self._request(
            "GET", "/api/runs", params={k: v for k, v in params.items() if v is not None}
        )
        return msgspec.json.decode(response.content, type=RunPage)

    async def all(self, **filters: Any) -> AsyncIterator[RunView]:
        """Every run matching `filters` (as for `list`), page after page."""
        cursor: str | None = None
        while True:
            page = await self.list(**filters, cursor=cursor)
            for run in page.items:
                yield run
            if page.next_cursor is None:
                return
            cursor = page.next_cursor

    async def history(self, run_id: str) -> builtins.list[HistoryEntry]:
        response = await self._request("GET", f"/api/runs/{run_id}/history")
        return msgspec.json.decode(response.content, type=HistoryPage).items

    # Events -------------------------------------------------------------------------------

    async def send(
        self,
        run_id: str,
        event: str,
        *,
        data: Mapping[str, Any] | None = None,
        reason: str | None = None,
        if_match: int | None = None,
        idempotency_key: str | None = None,
    ) -> RunView:
        body: dict[str, Any] = {"event": event}
        if data is not None:
            body["data"] = dict(data)
        if reason is not None:
            body["reason"] = reason
        return await self._run(
            "POST",
            f"/api/runs/{run_id}/events",
            body,
            if_match=if_match,
            idempotency_key=idempotency_key,
        )

    async def approve(
        self, run_id: str, *, reason: str | None = None, region: str | None = None, **kw: Any
    ) -> RunView:
        """Approve; `region` names the approval region (e.g. `finance` on a purchase order)."""
        return await self._decide(run_id, "approve", reason, region=region, **kw)

    async def reject(
        self, run_id: str, *, reason: str, region: str | None = None, **kw: Any
    ) -> RunView:
        return await self._decide(run_id, "reject", reason, region=region, **kw)

    async def process(self, run_id: str, **kw: Any) -> RunView:
        return await self._decide(run_id, "process", None, **kw)

    async def _decide(
        self,
        run_id: str,
        event: str,
        reason: str | None,
        *,
        region: str | None = None,
        if_match: int | None = None,
        idempotency_key: str | None = None,
    ) -> RunView:
        body = {"reason": reason} if reason is not None else {}
        if region is not None:
            body["region"] = region
        return await self._run(
            "POST",
            f"/api/runs/{run_id}/{event}",
            body,
            if_match=if_match,
            idempotency_key=idempotency_key,
        )

    # The live feed ------------------------------------------------------------------------

    async def follow(
        self,
        *,
        run_id: str | None = None,
        definition: str | None = None,
        after: int | None = None,
        retry_s: float = 0.5,
        max_retry_s: float = 10.0,
    ) -> AsyncIterator[HistoryEntry]:
        """History entries as they are committed: one run's (from its start, unless `after`),
        or every run's (of one `definition`, if given; from now, unless `after`).

        A dropped connection or a server restart is retried with backoff and resumed with
        Last-Event-ID: no entry is skipped or repeated. Refusals (401, 403, 404) raise.
        """
        path = f"/api/runs/{run_id}/stream" if run_id else "/api/stream"
        params = {"definition": definition} if definition and not run_id else {}
        last = after
        delay = retry_s
        while True:
            headers = {"Accept": "text/event-stream"}
            if last is not None:
                headers["Last-Event-ID"] = str(last)
            try:
                async with aconnect_sse(
                    self.http, "GET", path, params=params, headers=headers, timeout=None
                ) as source:
                    if source.response.status_code >= 400:
                        await source.response.aread()
                        raise _error(source.response)
                    delay = retry_s
                    async for message in source.aiter_sse():
                        if message.event != "transition":
                            continue
                        entry = msgspec.json.decode(message.data, type=HistoryEntry)
                        if last is not None and entry.seq <= last:
                            continue
                        last = entry.seq
                        yield entry
            except (httpx.TransportError, httpx.RemoteProtocolError) as exc:
                log.info("feed connection lost (%s); resuming after seq %s", exc, last)
            await asyncio.sleep(delay)
            delay = min(delay * 2, max_retry_s)

    # Definitions ---------------------------------------------------------------------------

    async def definitions(self) -> builtins.list[ChartInfo]:
        """Every definition the server runs (newest version of each)."""
        response = await self._request("GET", "/api/definitions")
        return msgspec.json.decode(response.content, type=_Definitions).items

    async def deploy(self, document: str, format: str) -> tuple[ChartInfo, bool]:
        """Deploy a chart document (admin): the definition, and whether a new version was
        stored (False: it was the newest version already). ApiError 422 lists `reasons`."""
        body = {"format": format, "document": document}
        response = await self._request("POST", "/api/definitions", json=body)
        return msgspec.json.decode(response.content, type=ChartInfo), response.status_code == 201

    async def retire(self, name: str, version: int) -> bool:
        """Retire a deployed version (admin); False if it already was."""
        path = f"/api/definitions/{name}/versions/{version}/retire"
        return bool((await self._request("POST", path)).json()["retired"])

    async def delete_definition(self, name: str, version: int) -> None:
        """Delete a retired version no run uses (admin)."""
        await self._request("DELETE", f"/api/definitions/{name}/versions/{version}")

    async def stats(
        self, name: str, *, since: date | str | None = None, until: date | str | None = None
    ) -> Stats:
        """A definition's stats from `since` to `until` (UTC days; default the last 30): time
        in each state, SLA breaches, decisions per approver, finished runs per day."""
        params = {k: str(v) for k, v in (("since", since), ("until", until)) if v is not None}
        response = await self._request("GET", f"/api/definitions/{name}/stats", params=params)
        return msgspec.json.decode(response.content, type=Stats)

    # Webhooks (admin) ----------------------------------------------------------------------

    async def add_webhook(
        self,
        url: str,
        *,
        events: Sequence[str] = (),
        definitions: Sequence[str] = (),
        description: str = "",
        max_attempts: int = 8,
        active: bool = True,
    ) -> CreatedWebhook:
        """Subscribe `url` to notifications (empty filters: all); the answer holds the signing
        secret, which the server shows only this once."""
        body = {
            "url": url,
            "events": list(events),
            "definitions": list(definitions),
            "description": description,
            "max_attempts": max_attempts,
            "active": active,
        }
        response = await self._request("POST", "/api/webhooks", json=body)
        return msgspec.json.decode(response.content, type=CreatedWebhook)

    async def webhooks(self) -> builtins.list[WebhookView]:
        response = await self._request("GET", "/api/webhooks")
        return msgspec.json.decode(response.content, type=WebhookList).items

    async def webhook(self, webhook_id: str) -> WebhookView:
        response = await self._request("GET", f"/api/webhooks/{webhook_id}")
        return msgspec.json.decode(response.content, type=WebhookView)

    async def update_webhook(self, webhook_id: str, **changes: Any) -> WebhookView:
        """Change a subscription: `url`, `events`, `definitions`, `description`,
        `max_attempts`, `active`."""
        response = await self._request("PATCH", f"/api/webhooks/{webhook_id}", json=changes)
        return msgspec.json.decode(response.content, type=WebhookView)

    async def remove_webhook(self, webhook_id: str) -> None:
        """Delete a subscription and its delivery log."""
        await self._request("DELETE", f"/api/webhooks/{webhook_id}")

    async def deliveries(
        self,
        webhook_id: str,
        *,
        status: str | None = None,
        limit: int = 50,
        cursor: str | None = None,
    ) -> DeliveryPage:
        """A page of a subscription's delivery log, newest first (`status`: ready, running,
        done or dead); pass `next_cursor` back for the next one."""
        params: dict[str, Any] = {"limit": limit}
        if status is not None:
            params["status"] = status
        if cursor is not None:
            params["cursor"] = cursor
        path = f"/api/webhooks/{webhook_id}/deliveries"
        response = await self._request("GET", path, params=params)
        return msgspec.json.decode(response.content, type=DeliveryPage)

    async def redeliver(self, webhook_id: str, delivery_id: int | None = None) -> int:
        """Send a dead (or done) delivery again, or with no `delivery_id` every dead one of
        the subscription; how many went back to the queue."""
        path = f"/api/webhooks/{webhook_id}/deliveries"
        path += f"/{delivery_id}/redeliver" if delivery_id is not None else "/redeliver"
        response = await self._request("POST", path)
        return msgspec.json.decode(response.content, type=Redelivered).redelivered

    # Tasks ----------------------------------------------------------------------------------

    async def tasks(self, **filters: Any) -> TaskPage:
        """What the caller may decide now (filters: definition, ref_type, ref_id, due_before,
        sort="due"|"age", limit, offset), with counts."""
        params = {k: v for k, v in filters.items() if v is not None}
        response = await self._request("GET", "/api/tasks", params=params)
        return msgspec.json.decode(response.content, type=TaskPage)

    async def claim(self, run_id: str, slot: str | None = None) -> RunView:
        """Claim the run's task (in `slot` if it has several): then only you decide it."""
        return await self._task(run_id, "claim", slot=slot)

    async def release(self, run_id: str, slot: str | None = None) -> RunView:
        return await self._task(run_id, "release", slot=slot)

    async def reassign(self, run_id: str, to: str, slot: str | None = None) -> RunView:
        """Give the run's task to `to` (operators)."""
        return await self._task(run_id, "reassign", slot=slot, to=to)

    async def delegate(self, run_id: str, to: str, slot: str | None = None) -> RunView:
        """Hand your claimed task to `to`, who then decides on your behalf (`acting_for`)."""
        return await self._task(run_id, "delegate", slot=slot, to=to)

    async def decide_many(
        self, event: str, run_ids: Sequence[str], *, reason: str | None = None
    ) -> BulkOutcome:
        """One decision for several runs, each in its own transaction; each run's result."""
        body = {"event": event, "runs": [{"run_id": r} for r in run_ids], "reason": reason}
        response = await self._request("POST", "/api/tasks/decisions", json=body)
        return msgspec.json.decode(response.content, type=BulkOutcome)

    async def permissions(self, run_id: str) -> Permissions:
        """Every event of the run with whether you may send it now, and why not."""
        response = await self._request("GET", f"/api/runs/{run_id}/permissions")
        return msgspec.json.decode(response.content, type=Permissions)

    async def dry_run(
        self, run_id: str, event: str, data: Mapping[str, Any] | None = None,
        reason: str | None = None,
    ) -> DryRun:  # fmt: skip
        """What sending `event` would do; nothing is committed."""
        body = {"event": event, "data": dict(data or {}), "reason": reason}
        path = f"/api/runs/{run_id}/events"
        response = await self._request("POST", path, params={"dry_run": "true"}, json=body)
        return msgspec.json.decode(response.content, type=DryRun)

    # Bulk actions ---------------------------------------------------------------------------

    async def bulk_preview(self, action: str, **filter: Any) -> BulkPreview:
        """How many runs `action` would take by `filter` (definition, state, lifecycle,
        ref_type, ref_id, created_before, created_after); nothing changes."""
        body = {"action": action, "filter": _filter(filter), "dry_run": True}
        response = await self._request("POST", "/api/runs/bulk", json=body)
        return msgspec.json.decode(response.content, type=BulkPreview)

    async def bulk(
        self,
        action: str,
        *,
        to_version: int | None = None,
        same_version: bool = False,
        reason: str | None = None,
        idempotency_key: str | None = None,
        **filter: Any,
    ) -> AsyncIterator[BulkLine]:
        """Apply `action` to every run `filter` matches, yielding the server's lines as they
        land: BulkStarted, a BulkRunResult per run, BulkSummary. Repeat with the same
        `idempotency_key` to finish a bulk action a dropped connection interrupted."""
        body: dict[str, Any] = {"action": action, "filter": _filter(filter)}
        if to_version is not None:
            body["to_version"] = to_version
        if same_version:
            body["same_version"] = True
        if reason is not None:
            body["reason"] = reason
        headers = {} if idempotency_key is None else {"Idempotency-Key": idempotency_key}
        async with self.http.stream("POST", "/api/runs/bulk", json=body, headers=headers) as r:
            if r.status_code >= 400:
                await r.aread()
                raise _error(r)
            async for line in r.aiter_lines():
                if line:
                    yield _BULK_LINE.decode(line)

    # Audit trail ------------------------------------------------------------------------

    async def audit_export(
        self, *, since_seq: int = 0, limit: int | None = None, format: str = "ndjson"
    ) -> AsyncIterator[bytes]:
        """The hash-chained history export as the server sends it (ndjson or csv), in
        chunks, to save to a file; `signoff.verify_audit` (or `signoff audit verify`) checks it."""
        params = _export_params(since_seq, limit, format)
        async with self.http.stream("GET", "/api/audit/export", params=params) as r:
            if r.status_code >= 400:
                await r.aread()
                raise _error(r)
            async for chunk in r.aiter_bytes():
                yield chunk

    async def audit_lines(
        self, *, since_seq: int = 0, limit: int | None = None
    ) -> AsyncIterator[AuditLine]:
        """One export's lines, read: an AuditChainLine, the entries (dicts), an AuditEndLine
        (whose `more` says to ask again with `since_seq=last_seq`)."""
        params = _export_params(since_seq, limit, "ndjson")
        async with self.http.stream("GET", "/api/audit/export", params=params) as r:
            if r.status_code >= 400:
                await r.aread()
                raise _error(r)
            number = 0
            async for text in r.aiter_lines():
                number += 1
                if text:
                    yield ndjson_line(text, f"the export after seq {since_seq}, line {number}")

    async def _task(self, run_id: str, action: str, **body: str | None) -> RunView:
        sent = {k: v for k, v in body.items() if v is not None}
        return await self._run("POST", f"/api/runs/{run_id}/tasks/{action}", sent or None)

    # Plumbing -----------------------------------------------------------------------------

    async def _run(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        if_match: int | None = None,
        idempotency_key: str | None = None,
    ) -> RunView:
        headers = {}
        if if_match is not None:
            headers["If-Match"] = f'"{if_match}"'
        if idempotency_key is not None:
            headers["Idempotency-Key"] = idempotency_key
        response = await self._request(method, path, json=body, headers=headers)
        return msgspec.json.decode(response.content, type=RunView)

    async def _request(self, method: str, path: str, **kw: Any) -> httpx.Response:
        response = await self.http.request(method, path, **kw)
        if response.status_code >= 400:
            raise _error(response)
        return response


_BULK_LINE: msgspec.json.Decoder[BulkLine] = msgspec.json.Decoder(BulkLine)


def _export_params(since_seq: int, limit: int | None, format: str) -> dict[str, Any]:
    params: dict[str, Any] = {"since_seq": since_seq, "format": format}
    if limit is not None:
        params["limit"] = limit
    return params


def _filter(filter: Mapping[str, Any]) -> dict[str, Any]:
    """A bulk filter's criteria as JSON: times as RFC 3339, unset ones left out."""
    return {
        k: v.isoformat() if isinstance(v, datetime) else v
        for k, v in filter.items()
        if v is not None
    }


def _error(response: httpx.Response) -> ApiError:
    try:
        problem = response.json()
    except ValueError:
        problem = {"title": response.reason_phrase, "detail": response.text[:200]}
    if not isinstance(problem, dict):
        problem = {"detail": str(problem)}
    return ApiError(response.status_code, problem)
