"""What a web page on another site, or a stolen stream token, can make the server do: nothing.

Stream tokens open streams only; bodies must be JSON; Host and Origin must be the server's own
(DNS rebinding, cross-site POSTs); /metrics needs a token when tokens are set. Through a real
server on SQLite and PostgreSQL, and every refusal leaves the run as it was."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.helpers import (
    TOKENS,
    LiveServer,
    assert_problem,
    auth,
    create,
    eventually,
    free_socket,
    new_run,
    serve,
    snapshot,
    unchanged,
)


@pytest.fixture
async def secured(database_url: str) -> AsyncIterator[LiveServer]:
    async with serve(database_url, tokens=TOKENS) as live:
        yield live


async def stream_token(live: LiveServer, role: str = "admin") -> str:
    issued = await live.client.post("/api/stream-tokens", headers=auth(role))
    assert issued.status_code == 201, issued.text
    return str(issued.json()["token"])


async def test_a_stream_token_opens_streams_and_nothing_else(secured: LiveServer) -> None:
    run = await new_run(secured)
    token = await stream_token(secured)  # issued to an admin: still only a stream reader
    for path in ("/api/stream", f"/api/runs/{run['id']}/stream"):
        async with secured.client.stream("GET", path, params={"token": token}) as response:
            assert response.status_code == 200
    before = await snapshot(secured, run["id"])
    for method, path, body in [
        ("GET", f"/api/runs/{run['id']}", None),
        ("GET", "/api/runs", None),
        ("POST", f"/api/runs/{run['id']}/process", None),
        ("POST", f"/api/runs/{run['id']}/events", {"event": "cancel"}),
        ("POST", "/api/runs", {"definition": "approval"}),
        ("POST", "/api/stream-tokens", None),  # it cannot mint its own successor
    ]:
        response = await secured.client.request(method, path, params={"token": token}, json=body)
        assert_problem(response, 401)
    assert await snapshot(secured, run["id"]) == before


async def test_metrics_need_a_viewer_token_when_tokens_are_set(secured: LiveServer) -> None:
    assert_problem(await secured.client.get("/metrics"), 401)
    assert_problem(await secured.client.get("/metrics", headers=auth("bad")), 401)
    token = await stream_token(secured)
    assert_problem(await secured.client.get("/metrics", params={"token": token}), 401)
    scraped = await secured.client.get("/metrics", headers=auth("viewer"))
    assert scraped.status_code == 200 and "signoff_runs" in scraped.text


async def test_metrics_can_be_made_public(database_url: str) -> None:
    async with serve(database_url, tokens=TOKENS, metrics_public=True) as live:
        scraped = await live.client.get("/metrics")
        assert scraped.status_code == 200 and "signoff_runs" in scraped.text
        assert_problem(await live.client.get("/api/runs"), 401)  # only metrics opened up


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data", None]
)
async def test_a_body_must_be_json(live_server: LiveServer, content_type: str | None) -> None:
    """A page on any site can send these three without a CORS preflight."""
    run = await create(live_server)
    headers = {"content-type": content_type} if content_type else {}
    client = live_server.client
    async with unchanged(live_server, run["id"]):
        for path, body in [
            ("/api/runs", b'{"definition": "approval"}'),
            (f"/api/runs/{run['id']}/process", b"{}"),
            (f"/api/runs/{run['id']}/events", b'{"event": "cancel"}'),
        ]:
            request = client.build_request("POST", path, content=body, headers=headers)
            if content_type is None:
                request.headers.pop("content-type", None)
            assert_problem(await client.send(request), 415)
    # A shortcut with no body at all needs no Content-Type.
    assert (await client.post(f"/api/runs/{run['id']}/process")).status_code == 200


async def test_an_empty_if_match_is_a_bad_request(live_server: LiveServer) -> None:
    run = await create(live_server)
    async with unchanged(live_server, run["id"]):
        for value in ("",):
            response = await live_server.client.post(
                f"/api/runs/{run['id']}/process", headers={"If-Match": value}
            )
            body = assert_problem(response, 400)
            assert body["errors"][0]["key"] == "If-Match"


@pytest.mark.parametrize("host", ["attacker.example", "attacker.example:8000", "127.0.0.1.nip.io"])
async def test_foreign_host_names_are_refused(live_server: LiveServer, host: str) -> None:
    """DNS rebinding: a page on attacker.example whose name now points at 127.0.0.1."""
    run = await create(live_server)
    client = live_server.client
    async with unchanged(live_server, run["id"]):
        for method, path in [
            ("GET", "/"),
            ("GET", f"/api/runs/{run['id']}"),
            ("POST", "/api/runs"),
        ]:
            response = await client.request(
                method, path, headers={"Host": host}, json={"definition": "approval"}
            )
            body = assert_problem(response, 400)
            assert body["type"] == "urn:signoff:problem:host-not-allowed"
    port = live_server.url.rsplit(":", 1)[1]
    for own in (f"localhost:{port}", f"127.0.0.1:{port}", "127.0.0.2"):
        assert (await client.get("/api/runs", headers={"Host": own})).status_code == 200
    # A health probe addresses the process by whatever name or IP it has.
    assert (await client.get("/healthz", headers={"Host": host})).status_code == 200


async def test_allowed_hosts_adds_names(database_url: str) -> None:
    async with serve(database_url, allowed_hosts="signoff.internal,*.corp.example") as live:
        for host in ("signoff.internal", "api.corp.example:443", "localhost"):
            assert (await live.client.get("/api/runs", headers={"Host": host})).status_code == 200
        assert_problem(
            await live.client.get("/api/runs", headers={"Host": "corp.example.evil"}), 400
        )


async def test_writes_from_a_foreign_origin_are_refused(live_server: LiveServer) -> None:
    run = await create(live_server)
    client = live_server.client
    own = live_server.url  # http://127.0.0.1:<port>
    async with unchanged(live_server, run["id"]):
        for origin in ("http://attacker.example", "null", own.replace("127.0.0.1", "localhost")):
            for path, body in [
                ("/api/runs", {"definition": "approval"}),
                (f"/api/runs/{run['id']}/events", {"event": "cancel"}),
            ]:
                response = await client.post(path, json=body, headers={"Origin": origin})
                assert assert_problem(response, 403)["type"].endswith("origin-not-allowed")
    # Reading is not refused (the browser's same-origin policy keeps the answer from the page).
    assert (
        await client.get("/api/runs", headers={"Origin": "http://x.example"})
    ).status_code == 200
    # The monitor's own pages send their own origin.
    created = await client.post(
        "/api/runs", json={"definition": "approval"}, headers={"Origin": own}
    )
    assert created.status_code == 201


async def test_cors_origins_may_write(database_url: str) -> None:
    async with serve(database_url, cors_origins="https://app.example.com") as live:
        headers = {"Origin": "https://app.example.com"}
        created = await live.client.post(
            "/api/runs", json={"definition": "approval"}, headers=headers
        )
        assert created.status_code == 201
        assert created.headers["access-control-allow-origin"] == "https://app.example.com"
        other = await live.client.post(
            "/api/runs", json={"definition": "approval"}, headers={"Origin": "https://b.example"}
        )
        assert_problem(other, 403)


async def test_a_cross_site_form_cannot_create_a_run(live_server: LiveServer) -> None:
    """The attack of point 6 end to end: a form POST from another site, text/plain JSON."""
    before = (await live_server.client.get("/api/runs")).json()
    async with httpx.AsyncClient(base_url=live_server.url) as browser:
        response = await browser.post(
            "/api/runs",
            content=b'{"definition": "approval"}',
            headers={"Content-Type": "text/plain", "Origin": "http://attacker.example"},
        )
    assert response.status_code in (403, 415)
    assert (await live_server.client.get("/api/runs")).json() == before


async def test_a_workers_metrics_port_needs_a_token_too(pg_database_url: str) -> None:
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {**os.environ, "SIGNOFF_DATABASE_URL": pg_database_url, "SIGNOFF_TOKENS": TOKENS}
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signoff", "worker", "--metrics-port", str(port), env=env,
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:

            async def listening() -> bool:
                try:
                    await client.get("/metrics")
                except httpx.TransportError:
                    return False
                return True

            await eventually(listening, timeout=30)
            refused = await client.get("/metrics", headers=auth("bad"))
            assert refused.status_code == 401
            assert refused.json()["type"] == "urn:signoff:problem:unauthorized"
            assert (await client.get("/metrics")).status_code == 401
            scraped = await client.get("/metrics", headers=auth("viewer"))
            assert scraped.status_code == 200 and "signoff_job_attempts" in scraped.text
    finally:
        proc.terminate()
        await proc.wait()
