"""Access control (SPEC §4) through a real server: the role matrix, actors, separation of duties,
stream tokens, open mode, and what refusals leave unchanged."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from signoff.api.auth import Tokens
from tests.helpers import TOKENS, LiveServer, auth, cli_serve, eventually, new_run, serve, snapshot

ROLE_OF = {"viewer": "viewer", "operator": "operator", "approver": "approver", "admin": "admin"}


@pytest.fixture
async def secured(database_url: str) -> AsyncIterator[LiveServer]:
    async with serve(database_url, tokens=TOKENS) as live:
        yield live


# (method, path, body, role needed); {id} is a run waiting for approval.
ROUTES: list[tuple[str, str, Any, str]] = [
    ("GET", "/api/runs", None, "viewer"),
    ("GET", "/api/runs/{id}", None, "viewer"),
    ("GET", "/api/runs/{id}/history", None, "viewer"),
    ("GET", "/api/runs/{id}/diagram?format=mermaid", None, "viewer"),
    ("GET", "/api/definitions", None, "viewer"),
    ("GET", "/api/definitions/approval", None, "viewer"),
    ("GET", "/api/definitions/approval/diagram?format=dot", None, "viewer"),
    ("GET", "/api/me", None, "viewer"),
    ("POST", "/api/stream-tokens", None, "viewer"),
    ("POST", "/api/runs", {"definition": "approval"}, "operator"),
    ("POST", "/api/runs/{id}/process", None, "operator"),
    ("POST", "/api/runs/{id}/retry", None, "operator"),
    ("POST", "/api/runs/{id}/pause", None, "operator"),
    ("POST", "/api/runs/{id}/resume", None, "operator"),
    ("POST", "/api/runs/{id}/cancel", None, "operator"),
    ("POST", "/api/runs/{id}/events", {"event": "pause"}, "operator"),
    ("POST", "/api/runs/{id}/approve", {"reason": "ok"}, "approver"),
    ("POST", "/api/runs/{id}/reject", {"reason": "no"}, "approver"),
    ("POST", "/api/runs/{id}/events", {"event": "approve"}, "approver"),
]


def allowed(caller: str, needed: str) -> bool:
    return caller == "admin" or caller == needed or needed == "viewer"


@pytest.mark.parametrize("caller", [None, "bad", "viewer", "operator", "approver", "admin"])
async def test_role_matrix(secured: LiveServer, caller: str | None) -> None:
    for method, template, body, needed in ROUTES:
        run = await new_run(secured)
        url = template.format(id=run["id"])
        before = await snapshot(secured, run["id"])
        response = await secured.client.request(method, url, json=body, headers=auth(caller))
        where = f"{caller} {method} {url}: {response.status_code} {response.text[:200]}"
        if caller in (None, "bad"):
            assert response.status_code == 401, where
            assert response.headers["www-authenticate"].startswith("Bearer")
        elif not allowed(caller, needed):
            assert response.status_code == 403, where
        else:
            assert response.status_code not in (401, 403), where
            continue
        assert response.headers["content-type"] == "application/problem+json", where
        assert await snapshot(secured, run["id"]) == before, where


async def test_streams_need_a_token_too(secured: LiveServer) -> None:
    assert (await secured.client.get("/api/stream")).status_code == 401
    run = await new_run(secured)
    assert (await secured.client.get(f"/api/runs/{run['id']}/stream")).status_code == 401
    assert (await secured.client.get("/api/stream?token=forged.token")).status_code == 401
    assert (await secured.client.get("/healthz")).status_code == 200  # public
    assert (await secured.client.get("/")).status_code == 200  # the page asks for a token


async def test_signed_stream_token_opens_a_stream_as_its_actor(secured: LiveServer) -> None:
    issued = await secured.client.post("/api/stream-tokens", headers=auth("viewer"))
    assert issued.status_code == 201
    token = issued.json()["token"]
    async with secured.client.stream("GET", f"/api/stream?token={token}") as response:
        assert response.status_code == 200
    tokens = Tokens(TOKENS)
    vera = tokens.authenticate("v-secret")
    assert vera is not None
    assert tokens.verify_stream_token(tokens.stream_token(vera)) == vera
    assert tokens.verify_stream_token(tokens.stream_token(vera, ttl_s=-1)) is None  # expired
    assert Tokens("x:viewer:other").verify_stream_token(tokens.stream_token(vera)) is None


async def test_history_records_the_actor_of_each_token(secured: LiveServer) -> None:
    run = await new_run(secured, "operator")
    client = secured.client
    await client.post(f"/api/runs/{run['id']}/process", headers=auth("operator"))

    async def waiting() -> bool:
        view = (await client.get(f"/api/runs/{run['id']}", headers=auth("viewer"))).json()
        return bool(view["state"] == "waiting_for_approval")

    await eventually(waiting)
    await client.post(f"/api/runs/{run['id']}/approve", headers=auth("approver"))
    history = (await client.get(f"/api/runs/{run['id']}/history", headers=auth("viewer"))).json()
    assert [(e["event"], e["actor"]) for e in history["items"]] == [
        ("create", "otto"),
        ("process", "otto"),
        ("processed", "worker"),
        ("approve", "anna"),
    ]
    me = (await client.get("/api/me", headers=auth("approver"))).json()
    assert me == {"actor": "anna", "roles": ["approver"], "groups": [], "open": False}


async def test_separation_of_duties(database_url: str) -> None:
    tokens = "both:operator+approver:b-secret,anna:approver:a-secret"
    async with serve(database_url, tokens=tokens, separation_of_duties=True) as live:
        client, mine = live.client, {"Authorization": "Bearer b-secret"}
        run = (
            await client.post(
                "/api/runs", json={"definition": "approval", "input": {"output": 0.9}}, headers=mine
            )
        ).json()
        await client.post(f"/api/runs/{run['id']}/process", headers=mine)

        async def waiting() -> bool:
            view = (await client.get(f"/api/runs/{run['id']}", headers=mine)).json()
            return bool(view["state"] == "waiting_for_approval")

        await eventually(waiting)
        before = (await client.get(f"/api/runs/{run['id']}/history", headers=mine)).json()
        refused = await client.post(f"/api/runs/{run['id']}/approve", headers=mine)
        assert refused.status_code == 403
        assert "created a run" in refused.json()["detail"]
        after = (await client.get(f"/api/runs/{run['id']}", headers=mine)).json()
        assert "decisions" not in after["context"]
        assert (await client.get(f"/api/runs/{run['id']}/history", headers=mine)).json() == before
        approved = await client.post(
            f"/api/runs/{run['id']}/approve", headers={"Authorization": "Bearer a-secret"}
        )
        assert approved.json()["state"] == "finished"


async def test_open_mode_says_so(live_server: LiveServer) -> None:
    me = (await live_server.client.get("/api/me")).json()
    assert me == {
        "actor": "anonymous",
        "roles": ["admin", "approver", "operator", "viewer"],
        "groups": [],
        "open": True,
    }


def test_bad_token_configuration_is_refused() -> None:
    for spec in ("alice:viewer", "alice:boss:secret", ":viewer:s"):
        with pytest.raises(ValueError):
            Tokens(spec)
    assert Tokens("alice:approver@finance+viewer:s").authenticate("s") is not None


async def test_open_mode_refuses_a_public_address(tmp_path: Any) -> None:
    db = {"SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'o.db'}"}
    code, output = await cli_serve(db, "--host", "0.0.0.0")
    assert code == 2
    assert "refusing to serve without SIGNOFF_TOKENS" in output


async def test_secrets_never_reach_the_logs(tmp_path: Any) -> None:
    env = {
        "SIGNOFF_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'l.db'}",
        "SIGNOFF_TOKENS": "alice:admin:s3cret-value",
    }
    _code, output = await cli_serve(env)
    assert "GET /api/runs" in output  # the access log ran
    assert "token=***" in output
    assert "s3cret-value" not in output and "wrong-guess" not in output
    token = Tokens("alice:admin:s3cret-value")
    assert token.stream_token(token.authenticate("s3cret-value"))[:20] not in output  # type: ignore[arg-type]
