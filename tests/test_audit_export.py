"""GET /api/audit/export and `signoff audit verify` through a real server, on SQLite and
PostgreSQL: an export verifies, page by page and as CSV; a history row changed behind Signoff's
back, a page left out, a file cut short are each named; refusals are problems that change nothing.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import itertools
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

from signoff.cli.audit import report
from signoff.cli.main import main
from signoff.client import SignoffClient
from signoff.engine import Store, upgrade
from signoff.engine.audit import Checker, read
from signoff.engine.audit.chain import GENESIS
from tests.helpers import (
    TOKENS,
    LiveServer,
    assert_problem,
    auth,
    downgrade,
    eventually,
    serve,
    unchanged,
)

NDJSON = "application/x-ndjson"


async def _transitions(live: LiveServer, runs: int = 3) -> list[str]:
    """`runs` runs, each created, paused, resumed and cancelled: four entries apiece."""
    ids = []
    for i in range(runs):
        made = await live.client.post(
            "/api/runs", json={"definition": "approval", "input": {"n": i}, "ref_id": f"r{i}"}
        )
        run_id = made.json()["id"]
        for control in ("pause", "resume", "cancel"):
            sent = await live.client.post(f"/api/runs/{run_id}/{control}")
            assert sent.status_code == 200, sent.text
        ids.append(run_id)
    return ids


async def _export(live: LiveServer, **params: Any) -> tuple[bytes, dict[str, str]]:
    response = await live.client.get("/api/audit/export", params=params)
    assert response.status_code == 200, response.text
    return response.content, dict(response.headers)


def _lines(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(line) for line in body.splitlines()]


async def _verify(*args: str | Path) -> tuple[int, str, str]:
    """`signoff audit verify …` in this process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()

    def call() -> int:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            return main(["audit", "verify", *map(str, args)])

    status = await asyncio.to_thread(call)
    return status, out.getvalue(), err.getvalue()


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    """The installed command, as a user runs it."""
    return subprocess.run(
        [sys.executable, "-m", "signoff", *map(str, args)],
        capture_output=True, text=True, timeout=60, check=False, stdin=subprocess.DEVNULL,
        env={**os.environ, "COLUMNS": "200"},
    )  # fmt: skip


async def test_an_export_verifies_and_names_its_head(
    live_server: LiveServer, tmp_path: Path
) -> None:
    live = live_server
    await _transitions(live)
    body, headers = await _export(live)
    assert headers["content-type"] == NDJSON
    assert headers["x-signoff-chain-start"] == "0"
    lines = _lines(body)
    assert [line["type"] for line in (lines[0], lines[-1])] == ["chain", "end"]
    assert lines[0]["started_seq"] == 0 and lines[0]["since_seq"] == 0
    entries = lines[1:-1]
    assert len(entries) == 12 and {e["type"] for e in entries} == {"entry"}
    assert entries[0]["prev_hash"] == GENESIS
    assert all(b["prev_hash"] == a["hash"] for a, b in itertools.pairwise(entries))
    head = entries[-1]
    assert lines[-1] == {
        "type": "end", "entries": 12, "last_seq": head["seq"], "head": head["hash"], "more": False
    }  # fmt: skip
    # The stored run view is derived, and left out; the entry's own fields are all there.
    assert "run" not in head and head["event"] == "cancel" and head["lifecycle"]["to"]
    exported = tmp_path / "audit.ndjson"
    exported.write_bytes(body)
    status, out, err = await _verify(exported)
    assert (status, err) == (0, "")
    assert "ok: 12 chained entries checked" in out
    assert f"head: seq {head['seq']} hash {head['hash']}" in out
    assert "the chain starts at the first entry" in out
    # --url fetches the same, page by page (5 entries a request here).
    done = await asyncio.to_thread(_cli, "audit", "verify", "--url", live.url, "--page-size", "5")
    assert done.returncode == 0, done.stderr
    assert "ok: 12 chained entries checked in 3 pages" in done.stdout
    assert f"head: seq {head['seq']} hash {head['hash']}" in done.stdout


@pytest.mark.parametrize("column", ["data", "actor", "reason", "at", "version"])
async def test_a_row_changed_behind_signoffs_back_is_named(
    live_server: LiveServer, tmp_path: Path, column: str
) -> None:
    live = live_server
    await _transitions(live)
    entries = _lines((await _export(live))[0])[1:-1]
    target = entries[6]["seq"]
    changed = {
        "data": 'data = \'{"approved_by": "mallory"}\'',
        "actor": "actor = 'mallory'",
        "reason": "reason = 'nothing to see'",
        "at": "at = at + INTERVAL '1 second'"
        if live.runtime.store.engine.dialect.name == "postgresql"
        else "at = datetime(at, '+1 second')",
        "version": "version = version + 100",
    }[column]
    async with live.runtime.store.engine.begin() as conn:
        await conn.execute(text(f"UPDATE history SET {changed} WHERE seq = :s"), {"s": target})
    exported = tmp_path / "audit.ndjson"
    exported.write_bytes((await _export(live))[0])
    done = await asyncio.to_thread(_cli, "audit", "verify", exported)
    assert done.returncode == 1, done.stdout
    assert f"the audit chain breaks at seq {target}: its hash does not match its content" in (
        done.stderr
    )
    assert "(6 entries before it matched)" in done.stderr
    assert done.stdout == ""


async def test_pages_verify_across_and_a_page_that_does_not_follow_is_named(
    live_server: LiveServer, tmp_path: Path
) -> None:
    live = live_server
    await _transitions(live)
    pages: list[Path] = []
    since = 0
    while True:
        body, _headers = await _export(live, since_seq=since, limit=5)
        page = tmp_path / f"page{len(pages)}.ndjson"
        page.write_bytes(body)
        pages.append(page)
        end = _lines(body)[-1]
        if not end["more"]:
            break
        since = end["last_seq"]
    assert len(pages) == 3  # 5 + 5 + 2 entries
    status, out, _ = await _verify(*pages)
    assert status == 0 and "ok: 12 chained entries checked in 3 pages" in out
    # The second page alone starts mid-chain: its first link is taken on trust, and said so.
    first_of_second = _lines(pages[1].read_bytes())[1]
    status, out, _ = await _verify(pages[1])
    assert status == 0
    assert f"links to {first_of_second['prev_hash']}, taken on trust" in out
    # Left out, or out of order: the first entry of the page that does not follow is named.
    first_of_third = _lines(pages[2].read_bytes())[1]["seq"]
    status, _, err = await _verify(pages[0], pages[2])
    assert status == 1
    assert f"breaks at seq {first_of_third}: " in err and "does not follow" in err
    status, _, err = await _verify(pages[1], pages[0])
    assert status == 1 and "does not follow" in err
    # A page cut short (its end line lost) is not taken for a whole one.
    cut = tmp_path / "cut.ndjson"
    cut.write_bytes(b"\n".join(pages[0].read_bytes().splitlines()[:-1]) + b"\n")
    status, _, err = await _verify(cut, pages[1])
    assert status == 1 and "cut short" in err
    # An entry removed from the middle: the one after it no longer links.
    lines = pages[0].read_bytes().splitlines()
    gone = tmp_path / "gone.ndjson"
    gone.write_bytes(b"\n".join(lines[:3] + lines[4:]) + b"\n")
    status, _, err = await _verify(gone)
    after = json.loads(lines[4])["seq"]
    assert status == 1
    assert f"breaks at seq {after}: its prev_hash is not the previous entry's hash" in err


async def test_csv_verifies_and_names_a_changed_cell(
    live_server: LiveServer, tmp_path: Path
) -> None:
    live = live_server
    await _transitions(live)
    body, headers = await _export(live, format="csv")
    assert headers["content-type"].startswith("text/csv")
    rows = body.decode().splitlines()
    assert rows[0].startswith("type,seq,run_id,version,at,actor,event,data,reason,")
    assert rows[1].startswith("chain,") and rows[-1].startswith("end,")
    exported = tmp_path / "audit.csv"
    exported.write_bytes(body)
    status, out, _ = await _verify(exported)
    assert status == 0 and "ok: 12 chained entries checked" in out
    # CSV and NDJSON pages mix, in order.
    first, _ = await _export(live, limit=4, format="csv")
    rest, _ = await _export(live, since_seq=_lines((await _export(live, limit=4))[0])[-1][
        "last_seq"])  # fmt: skip
    (tmp_path / "a.csv").write_bytes(first)
    (tmp_path / "b.ndjson").write_bytes(rest)
    status, out, _ = await _verify(tmp_path / "a.csv", tmp_path / "b.ndjson")
    assert status == 0 and "ok: 12 chained entries checked in 2 pages" in out
    # `signoff audit export` writes the same.
    saved = tmp_path / "saved.csv"
    done = await asyncio.to_thread(
        _cli, "audit", "export", "--url", live.url, "--format", "csv", "--out", saved
    )
    assert done.returncode == 0, done.stderr
    assert saved.read_bytes() == body
    # A cell edited in the file is named by its seq.
    entry = rows[4].split(",")
    edited = [*rows[:4], ",".join([*entry[:5], "mallory", *entry[6:]]), *rows[5:]]
    exported.write_text("\n".join(edited) + "\n")
    status, _, err = await _verify(exported)
    assert status == 1 and f"breaks at seq {entry[1]}: its hash does not match" in err


async def test_event_data_survives_both_formats(live_server: LiveServer, tmp_path: Path) -> None:
    live = live_server
    made = await live.client.post("/api/runs", json={"definition": "approval"})
    run_id = made.json()["id"]
    data = {"note": 'a,b "quoted"\nline é', "n": 1e16, "x": 1.5, "list": [1, None, True]}
    await live.runtime.dispatcher.dispatch(run_id, "pause", actor="ops", reason="")
    await live.runtime.dispatcher.dispatch(run_id, "resume", actor="ops", data=data)
    for fmt in ("ndjson", "csv"):
        exported = tmp_path / f"audit.{fmt}"
        exported.write_bytes((await _export(live, format=fmt))[0])
        status, out, err = await _verify(exported)
        assert status == 0, err
        assert "ok: 3 chained entries checked" in out


async def test_refusals_are_problems_and_change_nothing(database_url: str) -> None:
    async with serve(database_url, tokens=TOKENS) as live:
        live.client.headers.update(auth("admin"))
        run_id = (await _transitions(live, runs=1))[0]
        async with unchanged(live, run_id):
            for params in (
                {"since_seq": "-1"},
                {"since_seq": "abc"},
                {"since_seq": str(2**53 + 1)},
                {"limit": "0"},
                {"limit": "many"},
                {"format": "xml"},
            ):
                refused = await live.client.get("/api/audit/export", params=params)
                body = assert_problem(refused, 400)
                assert next(iter(params)) in body["detail"], body
            for who in (None, "bad"):
                refused = await live.client.get("/api/audit/export", headers=_only(auth(who)))
                assert_problem(refused, 401)
        # A viewer may export: it reads nothing a viewer cannot read run by run.
        viewer = await live.client.get("/api/audit/export", headers=auth("viewer"))
        assert viewer.status_code == 200 and len(_lines(viewer.content)) == 6
        # The command says a refusal in one line, and fails.
        done = await asyncio.to_thread(
            _cli, "audit", "verify", "--url", live.url, "--token", "not-a-secret"
        )
        assert done.returncode == 1 and "401 Unauthorized" in done.stderr
        assert done.stderr.count("\n") == 1


def _only(headers: dict[str, str]) -> dict[str, str]:
    # The client's default Authorization is replaced (or, with {}, blanked out).
    return headers or {"Authorization": ""}


async def test_not_an_export_is_a_usage_error(tmp_path: Path) -> None:
    junk = tmp_path / "junk.ndjson"
    junk.write_text('{"type": "chain", "started_seq": 0}\n')
    status, _, err = await _verify(junk)
    assert status == 2 and "junk.ndjson, line 1: not a chain line" in err
    status, _, err = await _verify(tmp_path / "missing.ndjson")
    assert status == 2 and "cannot read" in err


async def test_a_database_migrated_to_0007_says_the_chain_starts_after_its_old_entries(
    database_url: str, tmp_path: Path
) -> None:
    async with serve(database_url) as live:
        await _transitions(live, runs=2)
    db = Store.open(database_url)
    try:
        await downgrade(db, "0006")
        await upgrade(db)  # as `signoff migrate` does: the 8 entries predate the chain
    finally:
        await db.dispose()
    async with serve(database_url) as live:
        await _transitions(live, runs=1)
        body, headers = await _export(live)
        assert headers["x-signoff-chain-start"] == "8"
        lines = _lines(body)
        assert lines[0]["started_seq"] == 8
        assert [e["hash"] is None for e in lines[1:-1]] == [True] * 8 + [False] * 4
        exported = tmp_path / "audit.ndjson"
        exported.write_bytes(body)
        status, out, err = await _verify(exported)
        assert status == 0, err
        assert "ok: 4 chained entries checked" in out
        assert "the chain starts after seq 8: entries up to it were stored before migration " in out
        assert "8 of them here" in out
        # An old entry given a hash, or a new one stripped of its own, is named.
        forged = lines[:]
        forged[3] = {**forged[3], "hash": "f" * 64}
        exported.write_text("".join(json.dumps(line) + "\n" for line in forged))
        status, _, err = await _verify(exported)
        assert status == 1 and "breaks at seq 3: it has a hash, but the chain starts" in err
        # The export after the old entries holds the chain's start, which links to GENESIS.
        later, _ = await _export(live, since_seq=8)
        assert _lines(later)[1]["prev_hash"] == GENESIS


async def test_concurrent_approvals_over_http_chain_in_seq_order(live_server: LiveServer) -> None:
    live = live_server
    async with SignoffClient(live.url) as client:
        ids = [(await client.create("approval", input={"output": 0.9})).id for _ in range(8)]
        await asyncio.gather(*(client.process(run_id) for run_id in ids))

        async def all_waiting() -> bool:
            runs = await asyncio.gather(*(client.get(run_id) for run_id in ids))
            return all(r.state == "waiting_for_approval" for r in runs)

        await eventually(all_waiting, timeout=30)
        await asyncio.gather(*(client.approve(run_id) for run_id in ids))
        body = b"".join([chunk async for chunk in client.audit_export()])
        lines = [line async for line in client.audit_lines(limit=10)]
    assert len(_lines(body)) == 8 * 4 + 2
    path_lines = body.decode().splitlines()
    status, out, err = await _verify_text(path_lines)
    assert status == 0, err
    assert "ok: 32 chained entries checked" in out
    assert len(lines) == 12  # one page: chain, 10 entries, end (`more`)


async def _verify_text(lines: list[str]) -> tuple[int, str, str]:
    checker = Checker()
    checker.feed(read(iter(lines)))
    out, err = io.StringIO(), io.StringIO()
    return report(checker.verdict(), out, err), out.getvalue(), err.getvalue()


async def test_an_entry_renumbered_behind_signoffs_back_is_named(
    live_server: LiveServer, tmp_path: Path
) -> None:
    # The hash binds the seq too: moving the last entry to a later seq keeps the order and every
    # link, and is still caught.
    live = live_server
    await _transitions(live, runs=1)
    last = _lines((await _export(live))[0])[-1]["last_seq"]
    async with live.runtime.store.engine.begin() as conn:
        await conn.execute(text("UPDATE history SET seq = seq + 5 WHERE seq = :s"), {"s": last})
    exported = tmp_path / "audit.ndjson"
    exported.write_bytes((await _export(live))[0])
    status, _, err = await _verify(exported)
    assert status == 1
    assert f"breaks at seq {last + 5}: its hash does not match its content" in err
