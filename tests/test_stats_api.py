"""GET /api/definitions/{name}/stats and the time-in-state histogram of /metrics, through a real
server on SQLite and PostgreSQL; refusals are problems and change nothing."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from signoff import ApiError, SignoffClient, Stats
from tests.helpers import (
    BEARER,
    TOKENS,
    LiveServer,
    assert_problem,
    auth,
    eventually,
    new_run,
    serve,
    snapshot,
)

T0 = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
STATS = "/api/definitions/approval/stats"


@pytest.fixture
async def live(database_url: str) -> AsyncIterator[LiveServer]:
    async with serve(database_url, tokens=TOKENS) as server:
        yield server


def set_clock(live: LiveServer, at: datetime) -> None:
    live.runtime.dispatcher.clock = lambda: at


async def approved_late(live: LiveServer) -> str:
    """A run created and processed at T0 (the embedded worker answers at once), approved by
    anna 25 hours later: past the approval chart's one-day SLA."""
    set_clock(live, T0)
    run_id = str((await new_run(live))["id"])
    process = await live.client.post(f"/api/runs/{run_id}/process", headers=auth("operator"))
    assert process.status_code == 200, process.text

    async def waiting() -> bool:
        run = await live.client.get(f"/api/runs/{run_id}", headers=auth("viewer"))
        return bool(run.json()["state"] == "waiting_for_approval")

    await eventually(waiting)
    set_clock(live, T0 + timedelta(hours=25))
    approve = await live.client.post(f"/api/runs/{run_id}/approve", headers=auth("approver"))
    assert approve.status_code == 200, approve.text
    return run_id


async def get_stats(live: LiveServer, **params: str) -> dict[str, Any]:
    response = await live.client.get(STATS, params=params, headers=auth("viewer"))
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    return dict(response.json())


async def test_the_stats_of_a_late_approval(live: LiveServer) -> None:
    await approved_late(live)
    got = await get_stats(live, since="2026-03-01", until="2026-03-04")
    assert (got["definition"], got["since"], got["until"]) == (
        "approval",
        "2026-03-01",
        "2026-03-04",
    )
    states = {s["state"]: s for s in got["states"]}
    waiting = states["waiting_for_approval"]
    assert {k: waiting[k] for k in ("entered", "stays", "now", "sla_s", "breaches")} == {
        "entered": 1,
        "stays": 1,
        "now": 0,
        "sla_s": 86400,
        "breaches": 1,
    }
    assert abs(waiting["p50_s"] - 25 * 3600) <= 0.09 * 25 * 3600
    assert states["finished"]["entered"] == 1
    assert got["approvers"] == [
        {"actor": "anna", "decisions": 1, "p50_s": waiting["p50_s"], "p90_s": waiting["p50_s"]}
    ]
    days = {d["day"]: d for d in got["days"]}
    assert list(days) == ["2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04"]
    assert days["2026-03-03"] == {"day": "2026-03-03", "finished": 1, "outcomes": {"completed": 1}}
    assert days["2026-03-02"]["finished"] == 0
    assert got["finished"] == {"completed": 1}
    # The day after: nothing entered, stayed or finished, and nothing is there now.
    later = await get_stats(live, since="2026-03-04", until="2026-03-04")
    assert all(s["entered"] == s["stays"] == s["now"] == 0 for s in later["states"])


async def test_the_client_reads_the_stats(live: LiveServer) -> None:
    await approved_late(live)
    async with SignoffClient(live.url, BEARER["viewer"]) as client:
        got = await client.stats("approval", since=date(2026, 3, 3), until="2026-03-03")
        assert isinstance(got, Stats)
        assert [(a.actor, a.decisions) for a in got.approvers] == [("anna", 1)]
        with pytest.raises(ApiError) as refused:
            await client.stats("approval", since="2026-03-04", until="2026-03-03")
        assert refused.value.status == 422


async def test_metrics_histogram_of_time_in_state(live: LiveServer) -> None:
    await approved_late(live)
    response = await live.client.get("/metrics", headers=auth("viewer"))
    assert response.status_code == 200
    samples = histogram(response.text, "signoff_time_in_state_seconds")
    waiting = {"definition": "approval", "state": "waiting_for_approval"}
    # 25 hours in waiting_for_approval: above one day, within two.
    assert samples[("bucket", frozenset({**waiting, "le": "86400.0"}.items()))] == 0
    assert samples[("bucket", frozenset({**waiting, "le": "172800.0"}.items()))] == 1
    assert samples[("sum", frozenset(waiting.items()))] == 25 * 3600
    processed = {"definition": "approval", "state": "unprocessed", "le": "1.0"}
    assert samples[("bucket", frozenset(processed.items()))] == 1  # the clock stood still
    sending = {"definition": "approval", "state": "sending_to_queue"}
    assert samples[("count", frozenset(sending.items()))] == 1
    assert not any(dict(labels).get("state") == "finished" for _, labels in samples)


def histogram(text: str, name: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """A histogram's samples in Prometheus text: (bucket|count|sum, labels) → value."""
    found = {}
    for part, labels, value in re.findall(rf"^{name}_(\w+)\{{([^}}]*)\}} (\S+)$", text, re.M):
        pairs = frozenset(re.findall(r'(\w+)="([^"]*)"', labels))
        found[(part, pairs)] = float(value)
    return found


@pytest.mark.parametrize(
    ("params", "status", "kind"),
    [
        ({"since": "yesterday"}, 400, "bad-request"),
        ({"until": "2026-03-01T10:00:00"}, 400, "bad-request"),  # no UTC offset
        ({"since": "2026-02-30"}, 422, "invalid-period"),
        ({"since": "2026-03-05", "until": "2026-03-04"}, 422, "invalid-period"),
        ({"since": "2000-01-01", "until": "2026-01-01"}, 422, "invalid-period"),
    ],
)
async def test_a_bad_period_is_a_problem_and_changes_nothing(
    live: LiveServer, params: dict[str, str], status: int, kind: str
) -> None:
    run_id = str((await new_run(live))["id"])
    before = await snapshot(live, run_id)
    response = await live.client.get(STATS, params=params, headers=auth("viewer"))
    body = assert_problem(response, status)
    assert body["type"] == f"urn:signoff:problem:{kind}"
    assert await snapshot(live, run_id) == before


async def test_who_may_read_the_stats(live: LiveServer) -> None:
    run_id = str((await new_run(live))["id"])
    before = await snapshot(live, run_id)
    unknown = await live.client.get("/api/definitions/nope/stats", headers=auth("viewer"))
    assert "nope" in assert_problem(unknown, 404)["detail"]
    assert_problem(await live.client.get(STATS), 401)
    assert_problem(await live.client.get(STATS, headers=auth("bad")), 401)
    for role in ("viewer", "operator", "approver", "admin"):
        assert (await live.client.get(STATS, headers=auth(role))).status_code == 200
    assert await snapshot(live, run_id) == before
