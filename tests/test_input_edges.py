"""Hostile values in every part of a request but the body's schema: headers, path parameters,
query strings, bytes that are not UTF-8. Each gets a clear 4xx problem and changes nothing;
a fuzz run over every route's headers and path parameters finds no 5xx. Real server, both
databases."""

from __future__ import annotations

import asyncio
import string
from typing import Any
from urllib.parse import quote, urlencode

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.helpers import LiveServer, assert_problem, create, unchanged

MAX_SEQ = 2**63 - 1


async def test_invalid_utf8_in_a_json_body_is_a_400(live_server: LiveServer) -> None:
    run = await create(live_server)
    async with unchanged(live_server, run["id"]):
        for path, body in [
            ("/api/runs", b'{"definition": "appr\xff\xfeoval"}'),
            (f"/api/runs/{run['id']}/events", b'{"event": "cancel", "reason": "\xc3\x28"}'),
        ]:
            response = await live_server.client.post(
                path, content=body, headers={"content-type": "application/json"}
            )
            assert "UTF-8" in assert_problem(response, 400)["detail"]


@pytest.mark.parametrize(
    "value", ["²", "١٢", "-1", "1.5", "0x10", str(MAX_SEQ + 1), "9" * 30, " 7"]
)
async def test_a_bad_last_event_id_is_refused_before_streaming(
    live_server: LiveServer, value: str
) -> None:
    run = await create(live_server)
    client = live_server.client
    for path in ("/api/stream", f"/api/runs/{run['id']}/stream"):
        by_query = await client.get(path, params={"last_event_id": value})
        assert_problem(by_query, 400, 422)
        if value == value.strip():  # a client library refuses to send edge spaces
            by_header = await client.get(path, headers={b"Last-Event-ID": value.encode()})
            assert_problem(by_header, 400, 422)
    async with client.stream("GET", "/api/stream", params={"last_event_id": MAX_SEQ}) as ok:
        assert ok.status_code == 200  # the largest seq there can be is a valid place to resume


async def test_static_file_names_never_reach_the_file_system(live_server: LiveServer) -> None:
    client = live_server.client
    for name in ("a" * 300, "..%2f..%2fetc%2fpasswd", "%2e%2e", "monitor.js%00", "x" * 5000):
        assert_problem(await client.get(f"/static/{name}"), 400, 404)
    served = await client.get("/static/monitor.js")
    assert served.status_code == 200 and "javascript" in served.headers["content-type"]
    icon = await client.get("/favicon.ico")  # what a browser asks for on the API's JSON pages
    assert icon.status_code == 200 and icon.headers["content-type"] == "image/svg+xml"


async def test_a_query_error_names_the_parameter_as_sent(live_server: LiveServer) -> None:
    run = await create(live_server)
    cases: list[tuple[str, dict[str, Any], str]] = [
        (f"/api/runs/{run['id']}/diagram", {"format": "png"}, "format"),
        ("/api/definitions/approval/diagram", {"format": "gif"}, "format"),
        ("/api/runs", {"state": "s" * 101}, "state"),
        ("/api/runs", {"limit": "many"}, "limit"),
    ]
    for path, params, name in cases:
        body = assert_problem(await live_server.client.get(path, params=params), 400)
        assert [e["key"] for e in body["errors"]] == [name], body
        assert name in body["detail"]


async def raw(live: LiveServer, method: str, path: str, headers: list[tuple[bytes, bytes]]) -> int:
    """The status of one request written byte for byte (no client library vets the headers),
    with a JSON body on POST; reads only the status line, so a stream does not hold it up."""
    host, port = live.url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    body = b"{}" if method == "POST" else b""
    lines = [f"{method} {path} HTTP/1.1".encode(), f"Host: {host}:{port}".encode()]
    lines += [name + b": " + value for name, value in headers]
    if body:
        lines += [b"Content-Type: application/json", b"Content-Length: %d" % len(body)]
    writer.write(b"\r\n".join([*lines, b"Connection: close", b"", b""]) + body)
    try:
        status_line = await reader.readline()
    finally:
        writer.close()
    return int(status_line.split()[1])


async def test_bad_header_values_are_refused(live_server: LiveServer) -> None:
    run = await create(live_server)
    url = f"/api/runs/{run['id']}/process"
    async with unchanged(live_server, run["id"]):
        for header in [
            (b"Idempotency-Key", b"key\x00nul"),
            (b"Idempotency-Key", "ключ".encode()),
            (b"Idempotency-Key", b"k" * 256),
            (b"If-Match", b'"1\x00"'),
            (b"If-Match", b"W/"),
            (b"Authorization", b"Bearer \x00"),
        ]:
            status = await raw(live_server, "POST", url, [header])
            assert status == 400, header


# --- fuzzing headers and path parameters ---------------------------------------------------------

HEADER_NAMES = [
    b"Authorization", b"Idempotency-Key", b"If-Match", b"Last-Event-ID", b"Content-Type",
    b"Origin", b"Host", b"Accept", b"Cookie", b"X-Forwarded-For", b"Range", b"Content-Length",
]  # fmt: skip
# Any bytes but CR and LF, which would end the header.
header_value = st.binary(max_size=200).map(lambda b: b.replace(b"\r", b"").replace(b"\n", b""))
path_value = st.one_of(
    st.text(max_size=400),
    st.text(string.digits + "-abcdef", max_size=40),
    st.sampled_from(["..", ".", "%", "%00", "\u202e", "a" * 3000, "00000000-0000-7000-8000-000"]),
)
query_text = st.text(max_size=60)
CASES = 200


def routes(openapi: dict[str, Any]) -> list[tuple[str, str]]:
    return [
        (method.upper(), path)
        for path, item in openapi["paths"].items()
        for method in ("get", "post")
        if method in item
    ]


async def test_fuzzing_headers_and_path_parameters_finds_no_5xx(live_server: LiveServer) -> None:
    run = await create(live_server)
    openapi = (await live_server.client.get("/schema/openapi.json")).json()
    cases: list[tuple[str, str, list[tuple[bytes, bytes]]]] = []

    @settings(max_examples=CASES, deadline=None, database=None, derandomize=True)
    @given(
        route=st.sampled_from(routes(openapi)),
        params=st.lists(path_value, min_size=3, max_size=3),
        headers=st.lists(st.tuples(st.sampled_from(HEADER_NAMES), header_value), max_size=4),
        query=st.dictionaries(query_text, query_text, max_size=3),
    )
    def draw(
        route: tuple[str, str],
        params: list[str],
        headers: list[tuple[bytes, bytes]],
        query: dict[str, str],
    ) -> None:
        method, template = route
        values = iter(params)
        path = "/".join(
            quote(next(values), safe="") if part.startswith("{") else part
            for part in template.split("/")
        )
        if query:
            path += "?" + urlencode(query)
        cases.append((method, path, headers))

    draw()  # Hypothesis draws the cases here; the server is called on the test's own loop
    statuses = []
    for method, path, headers in cases:
        status = await raw(live_server, method, path, headers)
        assert status < 500, f"{status} for {method} {path} {headers}"
        statuses.append(status)
    assert len(statuses) >= CASES and any(400 <= s < 500 for s in statuses)
    assert (await live_server.client.get(f"/api/runs/{run['id']}")).json()["version"] == 1
