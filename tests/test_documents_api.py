"""Chart documents through a real server (SQLite and PostgreSQL): deployed by an admin as
append-only versions, refused with every reason and nothing stored, run end to end (input
schema, groups, a signed HTTP job), retired and deleted by the rules, picked up by every process
without a restart, and hostile ones refused while the server stays healthy."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from signoff import Runtime
from signoff.machines.registry import build_registry
from tests.helpers import (
    TOKENS,
    LiveServer,
    assert_problem,
    auth,
    drain,
    eventually,
    serve,
    settings_for,
    unchanged,
)
from tests.payments import payment_service
from tests.test_documents import HOSTILE, edited

ADMIN = auth("admin")


def document(url: str = "http://127.0.0.1:9/payments", description: str | None = None) -> str:
    """The example claim document with its payment URL (and description) replaced."""

    def change(doc: dict[str, Any]) -> None:
        doc["signoff"]["jobs"]["paying"]["url"] = url
        if description is not None:
            doc["description"] = description

    return edited(change)


async def deploy(live: LiveServer, text: str, fmt: str = "yaml", **headers: str) -> Any:
    return await live.client.post(
        "/api/definitions", json={"format": fmt, "document": text}, headers=headers or ADMIN
    )


async def test_versions_are_appended_by_admins_and_a_refused_document_stores_nothing(
    database_url: str,
) -> None:
    async with serve(database_url, tokens=TOKENS) as live:
        text = document()
        for role in ("viewer", "operator", "approver"):
            assert_problem(await deploy(live, text, **auth(role)), 403)
        first = await deploy(live, text)
        assert first.status_code == 201, first.text
        assert first.headers["location"] == "/api/definitions/expense_claim"
        assert (first.json()["version"], first.json()["source"]) == (1, "yaml")
        again = await deploy(live, text)  # the same document: nothing new is stored
        assert (again.status_code, again.json()["version"]) == (200, 1)
        second = await deploy(live, document(description="v2"))
        assert (second.status_code, second.json()["versions"]) == (201, [1, 2])

        stored = await live.client.get(
            "/api/definitions/expense_claim/versions/1/document", headers=auth("viewer")
        )
        assert stored.json()["hash"] == hashlib.sha256(text.encode()).hexdigest()
        assert stored.json()["document"] == text

        before = (await live.client.get("/api/definitions", headers=ADMIN)).json()
        refused = await deploy(live, edited(lambda d: d["signoff"]["deciders"].clear()))
        problem = assert_problem(refused, 422)
        assert problem["type"] == "urn:signoff:problem:document-rejected"
        assert {
            "wait state 'manager_review' has nobody to decide",
            "wait state 'finance_review' has nobody to decide",
        } <= {r.split(":")[0] for r in problem["reasons"]}
        assert (await live.client.get("/api/definitions", headers=ADMIN)).json() == before
        # A code definition's name belongs to its pack.
        clash = await deploy(live, edited(lambda d: d.update(name="approval")))
        assert "definition from code" in assert_problem(clash, 422)["reasons"][0]


async def test_a_document_runs_like_a_code_chart(
    database_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SIGNOFF_SECRET_PAYMENTS", "shh")
    tokens = TOKENS + (
        ",mia:approver@managers:mia-secret,fay:approver@finance:fay-secret,"
        "finn:approver@finance:finn-secret"
    )
    async with (
        payment_service(fail_every=2) as payments,
        serve(database_url, tokens=tokens) as live,
    ):
        live.client.headers.update(auth("viewer"))
        text = document(payments.url)
        text = text.replace("timeout_s: 10", "timeout_s: 10\n      secret: payments")
        assert (await deploy(live, text)).status_code == 201

        def who(name: str) -> dict[str, str]:
            return {"Authorization": f"Bearer {name}-secret"}

        bad = await live.client.post(
            "/api/runs",
            json={"definition": "expense_claim", "input": {"amount": -3, "payee": "Ann"}},
            headers=auth("operator"),
        )
        assert "at $.amount" in assert_problem(bad, 422)["detail"]
        created = await live.client.post(
            "/api/runs",
            json={"definition": "expense_claim", "input": {"amount": 9000, "payee": "Ann"}},
            headers=auth("operator"),
        )
        run_id = created.json()["id"]

        async def send(name: str, event: str, **body: Any) -> Any:
            return await live.client.post(
                f"/api/runs/{run_id}/events", json={"event": event, **body}, headers=who(name)
            )

        assert (await send("o", "submit")).status_code == 200
        async with unchanged(live, run_id):
            assert_problem(await send("fay", "approve"), 403)  # finance, in the manager's step
            no_reason = assert_problem(await send("mia", "reject"), 422)
            assert no_reason["detail"] == "reject needs a reason."
        assert (await send("mia", "approve")).json()["state"] == "finance_review"
        assert (await send("fay", "approve")).json()["state"] == "finance_review"  # 9,000: 2
        async with unchanged(live, run_id):
            assert_problem(await send("fay", "approve"), 409)  # counted once
        assert (await send("finn", "approve")).json()["state"] == "paying"

        async def paid() -> bool:
            view = (await live.client.get(f"/api/runs/{run_id}")).json()
            return bool(view["state"] == "paid")

        await eventually(paid)
        view = (await live.client.get(f"/api/runs/{run_id}")).json()
        assert view["context"]["paying"] == {"payment_id": "pay-1"}  # the answer's JSON
        # Signed as the document said, with the secret only the deployment holds.
        for headers, body in zip(payments.headers, payments.bodies, strict=True):
            t, v1 = dict(p.split("=") for p in headers["signoff-signature"].split(",")).values()
            expected = hmac.new(b"shh", f"{t}.".encode() + body, hashlib.sha256).hexdigest()
            assert v1 == expected
        assert len(payments.requests) == 2  # the first answer was a 503: retried
        jobs = (await live.client.get(f"/api/runs/{run_id}/jobs")).json()["items"]
        assert [a["result"] for a in jobs[0]["attempt_log"]] == ["failed", "succeeded"]


@pytest.mark.parametrize(
    ("answer", "delay_s", "error"),
    [
        (b"<html>ok</html>", 0.0, "the answer is not JSON"),
        (b"[1, 2]", 0.0, "the answer is JSON but not an object"),
        (b"x" * 40_000, 0.0, "the answer is over 32768 bytes"),
        (b"{}", 3.0, "did not answer in time (ReadTimeout)"),
    ],
)
async def test_a_receivers_bad_answer_fails_the_job_cleanly(
    database_url: str, answer: bytes, delay_s: float, error: str
) -> None:
    async with (
        payment_service(answer=answer, delay_s=delay_s) as receiver,
        serve(database_url) as live,
    ):
        text = document(receiver.url).replace("timeout_s: 10", "timeout_s: 0.2")
        text = text.replace("max_attempts: 6", "max_attempts: 2")
        assert (await deploy(live, text)).status_code == 201
        created = await live.client.post(
            "/api/runs",
            json={"definition": "expense_claim", "input": {"amount": 10, "payee": "Bo"}},
        )
        run_id = created.json()["id"]
        for event in ("submit", "approve", "approve"):
            await live.client.post(f"/api/runs/{run_id}/events", json={"event": event})

        async def failed() -> bool:
            view = (await live.client.get(f"/api/runs/{run_id}")).json()
            return bool(view["state"] == "payment_failed")

        await eventually(failed)
        view = (await live.client.get(f"/api/runs/{run_id}")).json()
        assert error in view["context"]["last_error"]
        assert (await live.client.get("/healthz")).status_code == 200


async def test_new_runs_take_the_newest_version_not_retired_and_versions_in_use_stay(
    database_url: str,
) -> None:
    async with serve(database_url) as live:
        c = live.client

        async def create() -> Any:
            body = {"definition": "expense_claim", "input": {"amount": 10, "payee": "Bo"}}
            return await c.post("/api/runs", json=body)

        await deploy(live, document())
        on_v1 = (await create()).json()
        await deploy(live, document(description="second"))
        on_v2 = (await create()).json()
        assert (on_v1["definition_version"], on_v2["definition_version"]) == (1, 2)
        # The older run goes on on its own version.
        moved = await c.post(f"/api/runs/{on_v1['id']}/events", json={"event": "submit"})
        assert (moved.json()["state"], moved.json()["definition_version"]) == ("manager_review", 1)

        retire = "/api/definitions/expense_claim/versions/{}/retire"
        assert (await c.post(retire.format(2))).json()["retired"] is True
        assert (await c.post(retire.format(2))).json()["retired"] is False
        assert (await create()).json()["definition_version"] == 1
        listed = (await c.get("/api/definitions/expense_claim")).json()
        assert (listed["version"], listed["retired"]) == (1, [2])
        assert (await c.post(retire.format(1))).status_code == 200
        refused = assert_problem(await create(), 409)
        assert refused["type"] == "urn:signoff:problem:definition-retired"

        in_use = await c.delete("/api/definitions/expense_claim/versions/2")
        assert assert_problem(in_use, 409)["type"] == "urn:signoff:problem:definition-in-use"
        assert_problem(await c.delete("/api/definitions/expense_claim/versions/9"), 404)
        # A version past the database's integers is a bad request, not a server error.
        assert_problem(await c.post(retire.format(2**40)), 400)
        assert_problem(await c.delete(f"/api/definitions/expense_claim/versions/{2**40}"), 400)
        # A retired version no run uses can go.
        await deploy(live, document(description="third"))
        await c.post(retire.format(3))
        assert (await c.delete("/api/definitions/expense_claim/versions/3")).status_code == 204
        assert (await c.get("/api/definitions/expense_claim")).json()["versions"] == [1, 2]


async def test_every_process_picks_up_a_new_document_without_a_restart(
    database_url: str,
) -> None:
    # On PostgreSQL the other process hears of it at once (NOTIFY): it does not look by itself
    # for a minute. On SQLite looking is how it learns, every 4 poll intervals.
    poll = 15.0 if database_url.startswith("postgresql") else 0.05
    other = Runtime(settings_for(database_url, poll_interval_s=poll), build_registry(0.0))
    await other.start()
    try:
        async with serve(database_url) as live:
            assert (await deploy(live, document())).status_code == 201

            async def loaded() -> bool:
                return other.registry.find("expense_claim", 1) is not None

            await eventually(loaded)
            run = await other.dispatcher.create(
                "expense_claim", actor="sam", input={"amount": 5, "payee": "Al"}
            )
            await other.dispatcher.dispatch(run.run_id, "submit", actor="sam")
            view = (await live.client.get(f"/api/runs/{run.run_id}")).json()
            assert view["state"] == "manager_review"
    finally:
        await other.stop()


@pytest.mark.parametrize(
    "case",
    [
        "script in SCXML",
        "external data src",
        "huge",
        "deep JSON",
        "YAML aliases",
        "XML entities",
        "eventless loop",
    ],
)
async def test_hostile_documents_get_422_store_nothing_and_the_server_stays_healthy(
    database_url: str, case: str
) -> None:
    fmt, text, says = HOSTILE[case]
    async with serve(database_url) as live:
        refused = await deploy(live, text, fmt)
        problem = assert_problem(refused, 422)
        assert any(says in r for r in problem["reasons"]), problem
        assert live.runtime.catalog.stored == []
        assert (await live.client.get("/api/definitions")).status_code == 200
        assert (await live.client.get("/healthz")).status_code == 200


TIMED = """
name: cooling_off
signoff:
  kinds: {waiting: wait, cooling: work, done: success, late: failure}
  deciders: {waiting: "*"}
  decisions: [approve]
  timers:
    waiting: [{deadline: due_at, event: overdue}]
  jobs:
    cooling: {kind: delay, after: 2h, event: cooled}
states:
  waiting:
    initial: true
    transitions:
      - {event: approve, target: cooling}
      - {event: overdue, target: late}
  cooling:
    transitions:
      - {event: cooled, target: done}
  late:
    transitions:
      - {event: reopen, target: waiting}
  done:
    final: true
"""


async def test_a_documents_deadline_and_delay_fire_once_when_due(runtime: Runtime) -> None:
    from datetime import timedelta

    from signoff import InvalidInputError
    from signoff.engine import utcnow

    await runtime.catalog.deploy(TIMED, "yaml", "root", utcnow())
    d = runtime.dispatcher
    due = (utcnow() + timedelta(hours=1)).isoformat()
    late = await d.create("cooling_off", actor="a", input={"due_at": due})
    calm = await d.create("cooling_off", actor="a", input={"due_at": due})
    with pytest.raises(InvalidInputError, match="'due_at' must be an RFC 3339 time"):
        await d.create("cooling_off", actor="a", input={"due_at": "soon"})
    await d.dispatch(calm.run_id, "approve", actor="b")

    async def state(run_id: str) -> str:
        return (await runtime.queries.get(run_id)).state

    assert await drain(runtime, later_s=60) == 0  # neither is due yet
    assert (await state(late.run_id), await state(calm.run_id)) == ("waiting", "cooling")
    assert await drain(runtime, later_s=3700) == 1  # the deadline, an hour on
    assert (await state(late.run_id), await state(calm.run_id)) == ("late", "cooling")
    assert await drain(runtime, later_s=7300) == 1  # the delay, two hours on
    assert await state(calm.run_id) == "done"
    assert await drain(runtime, later_s=90_000) == 0  # each fired once; the rest were cancelled
    jobs = (await runtime.queries.jobs(calm.run_id)).items
    assert [(j.kind, j.status) for j in jobs] == [("timer", "cancelled"), ("timer", "done")]


async def test_a_server_with_allowed_hosts_refuses_a_document_calling_another(
    database_url: str,
) -> None:
    async with serve(database_url, http_allowed_hosts="pay.example.com,*.bank.test") as live:
        refused = assert_problem(await deploy(live, document("http://169.254.169.254/x")), 422)
        assert refused["reasons"] == [
            "job in 'paying': the host of http://169.254.169.254/x is not in "
            "SIGNOFF_HTTP_ALLOWED_HOSTS (pay.example.com, *.bank.test)"
        ]
        assert live.runtime.catalog.stored == []
        assert (await deploy(live, document("https://eu.bank.test/pay"))).status_code == 201
