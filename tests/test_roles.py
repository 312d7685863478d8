"""Which role sends which event comes from the Definition, for any chart: its decision events need
an approver, every other event an operator; the definition says so to clients too."""

from __future__ import annotations

from typing import Any

from statemachine import State, StateChart

from signoff.engine import Definition, Registry, RunModel, StateKind
from signoff.machines.lifecycle import Lifecycle
from signoff.machines.registry import build_registry
from tests.helpers import TOKENS, assert_problem, auth, serve, snapshot


class Memo(StateChart[RunModel]):
    """Draft → Review → Signed: `sign` is the decision, `submit` is not."""

    allow_event_without_transition = False
    catch_errors_as_events = False

    draft = State(initial=True)
    review = State()
    signed = State(final=True)

    submit = draft.to(review)
    sign = review.to(signed)


MEMO = Definition(
    name="memo",
    version=1,
    chart=Memo,
    kinds={"review": StateKind.WAIT, "signed": StateKind.SUCCESS},
    approval_events=frozenset({"sign"}),
    decision_events=frozenset({"sign"}),
)


def registry() -> Registry:
    shipped = build_registry(0.0)
    return Registry.of([*shipped.definitions.values(), MEMO], Lifecycle, shipped.jobs)


async def test_a_custom_decision_needs_an_approver_and_the_rest_an_operator(
    database_url: str,
) -> None:
    async with serve(database_url, registry=registry(), tokens=TOKENS) as live:
        client = live.client
        described = (await client.get("/api/definitions/memo", headers=auth("viewer"))).json()
        roles = {e["name"]: e["role"] for e in described["events"]}
        assert roles == {"submit": "operator", "sign": "approver"}

        made = await client.post("/api/runs", json={"definition": "memo"}, headers=auth("operator"))
        run_id = made.json()["id"]

        async def send(event: str, role: str) -> Any:
            body = {"event": event}
            return await client.post(f"/api/runs/{run_id}/events", json=body, headers=auth(role))

        before = await snapshot(live, run_id)
        assert_problem(await send("submit", "approver"), 403)  # not a decision: an operator's
        assert await snapshot(live, run_id) == before
        assert (await send("submit", "operator")).json()["state"] == "review"

        before = await snapshot(live, run_id)
        refused = assert_problem(await send("sign", "operator"), 403)
        assert "lacks the approver role" in refused["detail"]
        assert await snapshot(live, run_id) == before
        assert (await send("sign", "approver")).json()["state"] == "signed"
