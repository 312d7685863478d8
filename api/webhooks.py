"""Webhook endpoints (admin): subscriptions, their delivery log, and redelivery."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from litestar import Controller, Request, Response, delete, get, patch, post
from litestar.di import NamedDependency
from litestar.params import JSONBody, PathParameter, QueryParameter

from signoff.api.auth import principal_of, requires
from signoff.engine import Runtime
from signoff.engine.webhooks import store, subscriptions
from signoff.engine.webhooks.types import NotificationType
from signoff.engine.webhooks.views import (
    CreatedWebhook,
    DeliveryPage,
    Redelivered,
    WebhookList,
    WebhookView,
    delivery_view,
    fields,
    webhook_view,
)

Url = Annotated[str, msgspec.Meta(min_length=1, max_length=subscriptions.MAX_URL)]
Events = Annotated[list[NotificationType], msgspec.Meta(max_length=20)]
# Each name is checked by the engine (422): the OpenAPI document cannot carry an item's pattern.
Definitions = Annotated[list[str], msgspec.Meta(max_length=100)]
Description = Annotated[str, msgspec.Meta(max_length=500)]
Attempts = Annotated[int, msgspec.Meta(ge=1, le=subscriptions.MAX_ATTEMPTS)]
WebhookId = Annotated[str, PathParameter(max_length=36, pattern=r"^[0-9a-f-]{1,36}$")]
DeliveryId = Annotated[int, PathParameter(ge=1, le=2**53)]  # exact as a JSON number
Status = Literal["ready", "running", "done", "dead"]


class CreateWebhook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """A subscription: where to POST, and which notifications (an empty list: all)."""

    url: Url
    events: Events = []
    definitions: Definitions = []
    description: Description = ""
    max_attempts: Attempts = 8
    active: bool = True


class UpdateWebhook(msgspec.Struct, frozen=True, kw_only=True, forbid_unknown_fields=True):
    """The fields to change; an absent (or null) field stays as it is."""

    url: Url | None = None
    events: Events | None = None
    definitions: Definitions | None = None
    description: Description | None = None
    max_attempts: Attempts | None = None
    active: bool | None = None


class WebhookController(Controller):
    path = "/api/webhooks"
    tags = ("webhooks",)
    guards = (requires("admin"),)

    @post("/", status_code=201)
    async def create_webhook(
        self,
        request: Request[Any, Any, Any],
        data: JSONBody[CreateWebhook],
        runtime: NamedDependency[Runtime],
    ) -> Response[CreatedWebhook]:
        """Subscribe a URL to notifications; the answer holds the signing secret (`whsec_…`),
        shown only here. A URL that is not http(s), or whose host SIGNOFF_HTTP_ALLOWED_HOSTS
        does not list, is a 422."""
        sub = await subscriptions.create(
            runtime.store,
            data.url,
            actor=principal_of(request).actor,
            now=runtime.dispatcher.clock(),
            allowed=_allowed(runtime),
            events=data.events,
            definitions=data.definitions,
            description=data.description,
            max_attempts=data.max_attempts,
            active=data.active,
        )
        created = CreatedWebhook(**fields(sub), secret=sub.secret)
        return Response(created, status_code=201, headers={"Location": f"{self.path}/{sub.id}"})

    @get("/")
    async def list_webhooks(self, runtime: NamedDependency[Runtime]) -> WebhookList:
        """Every subscription, oldest first (secrets are never shown again)."""
        return WebhookList(items=[webhook_view(s) for s in await store.listing(runtime.store)])

    @get("/{webhook_id:str}")
    async def get_webhook(
        self, webhook_id: WebhookId, runtime: NamedDependency[Runtime]
    ) -> WebhookView:
        """One subscription."""
        return webhook_view(await store.get(runtime.store, webhook_id))

    @patch("/{webhook_id:str}")
    async def update_webhook(
        self,
        webhook_id: WebhookId,
        data: JSONBody[UpdateWebhook],
        runtime: NamedDependency[Runtime],
    ) -> WebhookView:
        """Change a subscription's URL, filters, description, attempts, or pause it
        (`active: false`: its deliveries are not made, and go dead to be redelivered)."""
        changes = {k: v for k, v in msgspec.structs.asdict(data).items() if v is not None}
        now = runtime.dispatcher.clock()
        sub = await subscriptions.change(runtime.store, webhook_id, changes, now, _allowed(runtime))
        return webhook_view(sub)

    @delete("/{webhook_id:str}", status_code=204)
    async def delete_webhook(
        self, webhook_id: WebhookId, runtime: NamedDependency[Runtime]
    ) -> None:
        """Delete a subscription with its delivery log; pending deliveries are not made."""
        await store.delete(runtime.store, webhook_id)

    @get("/{webhook_id:str}/deliveries")
    async def deliveries(
        self,
        webhook_id: WebhookId,
        runtime: NamedDependency[Runtime],
        status: Annotated[Status | None, QueryParameter(description="only these")] = None,
        limit: Annotated[int, QueryParameter(ge=1, le=200)] = 50,
        cursor: Annotated[
            str | None,
            QueryParameter(pattern=r"^[0-9]{1,18}$", description="`next_cursor` of a page"),
        ] = None,
    ) -> DeliveryPage:
        """The subscription's delivery log, newest first: each delivery's status (ready,
        running, done, dead), its message id, and every attempt."""
        page, more = await store.deliveries(runtime.store, webhook_id, status, limit, cursor)
        return DeliveryPage(items=[delivery_view(d) for d in page], next_cursor=more)

    @post("/{webhook_id:str}/deliveries/{delivery_id:int}/redeliver", status_code=202)
    async def redeliver(
        self, webhook_id: WebhookId, delivery_id: DeliveryId, runtime: NamedDependency[Runtime]
    ) -> Redelivered:
        """Deliver a dead (or done) delivery again, with its attempts reset and the same
        message id (`webhook-id`); a pending one is a 409."""
        now = runtime.dispatcher.clock()
        await store.redeliver(runtime.store, webhook_id, delivery_id, now)
        _wake(runtime)
        return Redelivered(redelivered=1)

    @post("/{webhook_id:str}/deliveries/redeliver", status_code=202)
    async def redeliver_dead(
        self, webhook_id: WebhookId, runtime: NamedDependency[Runtime]
    ) -> Redelivered:
        """Deliver every dead delivery of the subscription again."""
        count = await store.redeliver_dead(runtime.store, webhook_id, runtime.dispatcher.clock())
        _wake(runtime)
        return Redelivered(redelivered=count)


def _allowed(runtime: Runtime) -> subscriptions.HostCheck:
    return runtime.url_allowed


def _wake(runtime: Runtime) -> None:
    for worker in runtime.workers:
        worker.wake()
