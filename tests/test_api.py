"""The HTTP API through the real uvicorn server (SPEC §3), on SQLite and PostgreSQL."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from itertools import pairwise
from typing import Any

import pytest

from tests.helpers import (
    Json,
    LiveServer,
    all_runs,
    assert_problem,
    create,
    eventually,
    get_run,
    history,
    unchanged,
)

RUN_FIELDS = {
    "id", "definition", "definition_version", "version", "ref_id", "ref_type", "input", "state",
    "configuration", "lifecycle", "context", "allowed_events", "created_at", "updated_at",
    "definition_loaded",  # issue 14: false for a run whose definition this server lacks
    "tasks",  # issue 15: the run's open tasks
    "replay_of",  # issue 16: the run this one replays
}  # fmt: skip
HISTORY_FIELDS = {
    "seq", "run_id", "at", "actor", "event", "data", "reason", "business", "lifecycle", "run",
}  # fmt: skip
JSON = {"content-type": "application/json"}
FRESH_ALLOWED = ["process", "pause", "cancel"]


async def events_of(live: LiveServer, run_id: str) -> list[str]:
    return [entry["event"] for entry in await history(live, run_id)]


async def send(live: LiveServer, run_id: str, action: str, **kw: Any) -> Json:
    """POST /api/runs/{id}/{action}: expects 200 and an ETag of the new version."""
    response = await live.client.post(f"/api/runs/{run_id}/{action}", **kw)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{response.json()["version"]}"'
    return dict(response.json())


async def reach(live: LiveServer, run_id: str, state: str) -> Json:
    """Wait for the embedded worker to take the run to `state`."""

    async def there() -> bool:
        return bool((await get_run(live, run_id))["state"] == state)

    await eventually(there)
    return await get_run(live, run_id)


async def waiting_run(live: LiveServer) -> Json:
    run = await create(live)
    await send(live, run["id"], "process")
    return await reach(live, run["id"], "waiting_for_approval")


def has(view: Json, **expected: Any) -> None:
    assert {key: view[key] for key in expected} == expected


def assert_utc(value: str) -> None:
    assert datetime.fromisoformat(value.replace("Z", "+00:00")).utcoffset() == timedelta(0)


# --- success paths -------------------------------------------------------------------------------


async def test_create_returns_the_full_run_view(live_server: LiveServer) -> None:
    body = {"definition": "approval", "input": {"output": 0.9}, "ref_id": "r1", "ref_type": "doc"}
    response = await live_server.client.post("/api/runs", json=body)
    assert response.status_code == 201
    run = response.json()
    assert set(run) == RUN_FIELDS
    assert response.headers["location"] == f"/api/runs/{run['id']}"
    assert response.headers["etag"] == '"1"'
    has(run, definition="approval", version=1, ref_id="r1", ref_type="doc", input=body["input"])
    has(run, state="unprocessed", configuration=["unprocessed"], lifecycle="queued")
    assert run["allowed_events"] == FRESH_ALLOWED
    assert isinstance(run["definition_version"], int) and isinstance(run["context"], dict)
    assert_utc(run["created_at"])
    assert_utc(run["updated_at"])
    # GET of one run is the same view, and also lists the runs replaying it (issue 16).
    assert await get_run(live_server, run["id"]) == {**run, "replays": []}


async def test_events_endpoint_with_matching_if_match(live_server: LiveServer) -> None:
    run = await create(live_server)
    kw = {"json": {"event": "process"}, "headers": {"if-match": '"1"'}}
    processed = await send(live_server, run["id"], "events", **kw)
    has(processed, state="sending_to_queue", lifecycle="running", version=2)
    assert (await get_run(live_server, run["id"]))["version"] >= 2  # get_run checks the ETag


async def test_list_filters_newest_first(live_server: LiveServer) -> None:
    a = await create(live_server, ref_id="a", ref_type="invoice")
    b = await create(live_server, ref_id="b", ref_type="order")
    c = await waiting_run(live_server)
    cases: list[tuple[Json, list[Json]]] = [
        ({}, [c, b, a]),
        ({"definition": "approval"}, [c, b, a]),
        ({"definition": "other"}, []),
        ({"state": "waiting_for_approval"}, [c]),
        ({"lifecycle": "queued"}, [b, a]),
        ({"ref_id": "a"}, [a]),
        ({"ref_type": "order"}, [b]),
        ({"state": "unprocessed", "ref_type": "invoice"}, [a]),
    ]
    for params, expected in cases:
        page = (await live_server.client.get("/api/runs", params=params)).json()
        assert [r["id"] for r in page["items"]] == [r["id"] for r in expected], params
        assert page["next_cursor"] is None
        assert all(set(r) == RUN_FIELDS for r in page["items"])


async def test_list_pages_with_cursor(live_server: LiveServer) -> None:
    ids = [(await create(live_server))["id"] for _ in range(5)]
    seen: list[str] = []
    params: Json = {"limit": 2}
    for _ in range(3):
        page = (await live_server.client.get("/api/runs", params=params)).json()
        seen += [r["id"] for r in page["items"]]
        params["cursor"] = page["next_cursor"]
    assert seen == ids[::-1]
    assert params["cursor"] is None


async def test_decision_shortcuts(live_server: LiveServer) -> None:
    run = await waiting_run(live_server)
    rejected = await send(live_server, run["id"], "reject", json={"reason": "redo it"})
    has(rejected, state="sending_to_queue", lifecycle="running")
    assert rejected["context"]["decisions"][0]["reason"] == "redo it"
    await reach(live_server, run["id"], "waiting_for_approval")
    approved = await send(live_server, run["id"], "approve")
    has(approved, state="finished", lifecycle="completed", allowed_events=[])


async def test_retry_shortcut(live_server: LiveServer) -> None:
    run = await create(live_server, input={"output": 0.1})
    await send(live_server, run["id"], "process")
    errored = await reach(live_server, run["id"], "error")
    assert errored["lifecycle"] == "errored" and "retry" in errored["allowed_events"]
    has(await send(live_server, run["id"], "retry"), state="sending_to_queue", lifecycle="running")


async def test_lifecycle_shortcuts(live_server: LiveServer) -> None:
    run = await create(live_server)
    paused = await send(live_server, run["id"], "pause")
    assert paused["lifecycle"] == "paused" and "resume" in paused["allowed_events"]
    resumed = await send(live_server, run["id"], "resume")
    has(resumed, lifecycle="queued", allowed_events=FRESH_ALLOWED)
    has(await send(live_server, run["id"], "cancel"), lifecycle="cancelled", allowed_events=[])


async def test_definitions_health_and_openapi(live_server: LiveServer) -> None:
    client = live_server.client
    listing = (await client.get("/api/definitions")).json()
    assert "approval" in [d["name"] for d in listing["items"]]
    assert {s["id"] for s in listing["lifecycle"]["states"]} >= {"queued", "paused", "cancelled"}
    approval = (await client.get("/api/definitions/approval")).json()
    assert approval["name"] == "approval"
    internal = {e["name"] for e in approval["events"] if e["internal"]}
    assert internal == {"processed", "failed", "expire"}
    health = await client.get("/healthz")
    assert (health.status_code, health.json()["status"]) == (200, "ok")
    paths = {p.rstrip("/") for p in (await client.get("/schema/openapi.json")).json()["paths"]}
    assert {"/api/runs", "/api/runs/{run_id}", "/api/runs/{run_id}/history"} <= paths


async def test_full_round_trip_and_history(live_server: LiveServer) -> None:
    run = await waiting_run(live_server)
    assert run["context"]["output"] == 0.9
    done = await send(live_server, run["id"], "approve", json={"reason": "fine"})
    has(done, state="finished", lifecycle="completed", allowed_events=[])
    items = await history(live_server, run["id"])
    assert [e["event"] for e in items] == ["create", "process", "processed", "approve"]
    assert all(set(e) == HISTORY_FIELDS for e in items)
    assert [e["seq"] for e in items] == sorted({e["seq"] for e in items})
    assert [e["run"]["version"] for e in items] == [1, 2, 3, 4]
    assert {e["run_id"] for e in items} == {run["id"]}
    has(items[-1], run=done, reason="fine", event="approve")
    assert items[0]["business"] == {"from": [], "to": ["unprocessed"]}
    assert items[-1]["business"] == {"from": ["waiting_for_approval"], "to": ["finished"]}
    assert "waiting" in items[-1]["lifecycle"]["from"]
    assert items[-1]["lifecycle"]["to"] == ["completed"]
    for before, after in pairwise(items):
        assert after["business"]["from"] == before["business"]["to"]
        assert after["lifecycle"]["from"] == before["lifecycle"]["to"]
    for entry in items:
        assert_utc(entry["at"])


# --- errors: problem+json, and nothing changes ---------------------------------------------------


def bad(suffix: str, statuses: tuple[int, ...], name: str, **request_kw: Any) -> Any:
    return pytest.param(suffix, request_kw, statuses, id=name)


BIG = "x" * 100_000  # over Settings.max_body_bytes (64 KiB)
DEEP: Any = 1
for _ in range(33):
    DEEP = {"d": DEEP}
EV, PROCESS = "/{id}/events", "/{id}/process"
BAD_REQUESTS = [
    bad("", (400,), "create-bad-json", content=b'{"definition": ', headers=JSON),
    bad("", (400,), "create-unknown-field", json={"definition": "approval", "x": 1}),
    bad("", (400, 422), "create-wrong-type", json={"definition": 5}),
    bad("", (400, 422), "input-wrong-type", json={"definition": "approval", "input": [1]}),
    bad("", (422,), "unknown-definition", json={"definition": "nope"}),
    bad("", (413,), "create-too-big", json={"definition": "approval", "input": {"pad": BIG}}),
    bad(EV, (400,), "event-bad-json", content=b"{", headers=JSON),
    bad(EV, (400,), "event-unknown-field", json={"event": "process", "x": 1}),
    bad(EV, (400, 422), "event-wrong-type", json={"event": ["process"]}),
    bad(EV, (422,), "unknown-event", json={"event": "explode"}),
    bad(EV, (413,), "event-too-big", json={"event": "process", "reason": BIG}),
    bad(EV, (422,), "internal-processed", json={"event": "processed", "data": {"output": 1}}),
    bad(EV, (422,), "internal-failed", json={"event": "failed", "data": {"error": "x"}}),
    bad(EV, (422,), "internal-expire", json={"event": "expire"}),
    bad(PROCESS, (400, 422), "shortcut-wrong-type", json={"reason": 3}),
    bad(PROCESS, (400,), "shortcut-unknown-field", json={"why": "x"}),
    bad(PROCESS, (412,), "if-match-stale", headers={"if-match": '"7"'}),
    bad(PROCESS, (400, 422), "if-match-garbage", headers={"if-match": "abc"}),
    # Limits (README "Security"): string lengths, input size and depth, event data size.
    bad(PROCESS, (400,), "reason-too-long", json={"reason": "r" * 2001}),
    bad("", (400,), "ref-id-too-long", json={"definition": "approval", "ref_id": "r" * 201}),
    bad("", (400,), "ref-type-too-long", json={"definition": "approval", "ref_type": "t" * 101}),
    bad(
        "",
        (422,),
        "input-too-large",
        json={"definition": "approval", "input": {"pad": "x" * 40_000}},
    ),
    bad("", (422,), "input-too-deep", json={"definition": "approval", "input": DEEP}),
    bad(EV, (422,), "data-too-large", json={"event": "process", "data": {"pad": "x" * 40_000}}),
    bad(EV, (400,), "event-name-too-long", json={"event": "e" * 101}),
]


@pytest.mark.parametrize(("suffix", "request_kw", "statuses"), BAD_REQUESTS)
async def test_bad_requests_change_nothing(
    live_server: LiveServer, suffix: str, request_kw: Json, statuses: tuple[int, ...]
) -> None:
    run = await create(live_server)
    url = "/api/runs" + suffix.format(id=run["id"])
    async with unchanged(live_server, run["id"]):
        assert_problem(await live_server.client.post(url, **request_kw), *statuses)


async def test_conflicts_list_allowed_events(live_server: LiveServer) -> None:
    run = await create(live_server)
    url = f"/api/runs/{run['id']}"
    async with unchanged(live_server, run["id"]):
        body = assert_problem(await live_server.client.post(f"{url}/approve"), 409)
        assert body["allowed_events"] == FRESH_ALLOWED
    await send(live_server, run["id"], "pause")
    async with unchanged(live_server, run["id"]):
        body = assert_problem(await live_server.client.post(f"{url}/process"), 409)
        assert "resume" in body["allowed_events"] and "process" not in body["allowed_events"]
    await send(live_server, run["id"], "cancel")
    for action in ("process", "resume", "pause", "cancel"):
        async with unchanged(live_server, run["id"]):
            body = assert_problem(await live_server.client.post(f"{url}/{action}"), 409)
            assert body["allowed_events"] == []


async def test_reject_needs_a_reason(live_server: LiveServer) -> None:
    run = await waiting_run(live_server)
    url = f"/api/runs/{run['id']}"
    requests: list[tuple[str, dict[str, Any]]] = [
        ("reject", {}),
        ("reject", {"json": {"reason": "  "}}),
        ("reject", {"json": {"reason": None}}),
        ("events", {"json": {"event": "reject"}}),
    ]
    for path, kw in requests:
        async with unchanged(live_server, run["id"]):
            assert_problem(await live_server.client.post(f"{url}/{path}", **kw), 422)


async def test_unknown_run_and_definition_are_404(live_server: LiveServer) -> None:
    run = await create(live_server)
    missing, client = "/api/runs/00000000-0000-7000-8000-000000000000", live_server.client
    async with unchanged(live_server, run["id"]):
        assert_problem(await client.get(missing), 404)
        assert_problem(await client.get(f"{missing}/history"), 404)
        assert_problem(await client.post(f"{missing}/events", json={"event": "process"}), 404)
        assert_problem(await client.post(f"{missing}/approve"), 404)
        assert_problem(await client.get("/api/definitions/nope"), 404)


@pytest.mark.parametrize("params", [{"limit": 0}, {"limit": 1000}, {"cursor": "garbage!"}])
async def test_bad_list_parameters_are_400(live_server: LiveServer, params: Json) -> None:
    response = await live_server.client.get("/api/runs", params=params)
    assert_problem(response, 400)


DEEP_JSON = b'{"definition": "approval", "input": {"a": ' + b"[" * 1000 + b"]" * 1000 + b"}}"
NUL = "a\u0000b"
# PostgreSQL cannot store NUL: a body holding one is well-formed but unstorable (422); a URL
# holding one is malformed (400).
AWKWARD = [
    pytest.param("POST", "", 422, {"content": DEEP_JSON, "headers": JSON}, id="deep-json"),
    pytest.param(
        "POST", "", 422, {"json": {"definition": "approval", "ref_id": NUL}}, id="nul-ref"
    ),
    pytest.param(
        "POST", "", 422, {"json": {"definition": "approval", "input": {"k": NUL}}}, id="nul-in"
    ),
    pytest.param("POST", "/{id}/pause", 422, {"json": {"reason": NUL}}, id="nul-reason"),
    pytest.param("GET", "", 400, {"params": {"ref_type": NUL}}, id="nul-filter"),
    pytest.param("GET", "/a%00b", 400, {}, id="nul-run-id"),
]


@pytest.mark.parametrize(("method", "suffix", "status", "request_kw"), AWKWARD)
async def test_nul_characters_and_deep_json_are_refused(
    live_server: LiveServer, method: str, suffix: str, status: int, request_kw: Json
) -> None:
    """SPEC §2: bad input gets a clear error, never a 500, on SQLite and PostgreSQL alike."""
    run = await create(live_server)
    url = "/api/runs" + suffix.format(id=run["id"])
    async with unchanged(live_server, run["id"]):
        assert_problem(await live_server.client.request(method, url, **request_kw), status)


# --- Idempotency-Key -----------------------------------------------------------------------------


async def test_idempotent_create(live_server: LiveServer) -> None:
    client, key = live_server.client, {"idempotency-key": "create-1"}
    body = {"definition": "approval", "input": {"output": 0.9}}
    first = await client.post("/api/runs", json=body, headers=key)
    again = await client.post("/api/runs", json=body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.content == first.content
    assert "idempotent-replayed" not in first.headers
    assert again.headers["idempotent-replayed"] == "true"
    assert again.headers["location"] == first.headers["location"]
    async with unchanged(live_server, first.json()["id"]):
        assert len(await all_runs(live_server)) == 1
        other = await client.post("/api/runs", json={**body, "ref_id": "x"}, headers=key)
        assert_problem(other, 422)


async def test_idempotent_event(live_server: LiveServer) -> None:
    run = await create(live_server)
    client, key = live_server.client, {"idempotency-key": "event-1"}
    url = f"/api/runs/{run['id']}/events"
    first = await client.post(url, json={"event": "pause"}, headers=key)
    assert first.status_code == 200
    async with unchanged(live_server, run["id"]):
        again = await client.post(url, json={"event": "pause"}, headers=key)
        assert (again.status_code, again.content) == (200, first.content)
        assert again.headers["idempotent-replayed"] == "true"
        assert_problem(await client.post(url, json={"event": "cancel"}, headers=key), 422)
    assert await events_of(live_server, run["id"]) == ["create", "pause"]


async def test_concurrent_repeats_replay_the_first_response(live_server: LiveServer) -> None:
    """SPEC §2: a repeated Idempotency-Key returns the first response, even when it races."""
    run = await create(live_server)
    url, key = f"/api/runs/{run['id']}/process", {"idempotency-key": "race"}
    responses = await asyncio.gather(*(live_server.client.post(url, headers=key) for _ in range(5)))
    assert [r.status_code for r in responses] == [200] * 5, [r.text for r in responses]
    assert len({r.content for r in responses}) == 1
    assert (await events_of(live_server, run["id"])).count("process") == 1
