"""Every snippet of the README's "Write your own workflow" runs: the pack in leave.py serves
with --app and decides and books a leave request; content_review.yaml is deployed with
`signoff definitions add` and decides a run; the receiver's check verifies a real signature;
the entry-point table is what the example package declares."""

from __future__ import annotations

import os
import re
import sys
import textwrap
import tomllib
from pathlib import Path
from typing import Any

import httpx

from signoff.engine.documents.http_job import sign
from tests.helpers import EXAMPLE, eventually, run_ok, signoff_serve

README = (Path(__file__).parents[1] / "README.md").read_text()
SECTION = README.split("<!-- own-workflow:begin -->")[1].split("<!-- own-workflow:end -->")[0]
TOKENS = (
    "otto:operator:o,lena:approver@leads:l,ed:approver@editors:e,eve:approver@editors:e2,"
    "root:admin:r"
)


def blocks(language: str) -> list[str]:
    found = re.findall(rf"```{language}\n(.*?)```", SECTION, re.S)
    return [textwrap.dedent(b) for b in found]


def named(language: str, name: str) -> str:
    """The block whose first line is `# <name>`."""
    (found,) = [b for b in blocks(language) if b.startswith(f"# {name}\n")]
    return found


def bearer(secret: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {secret}"}


async def test_the_code_snippet_serves_with_app_and_books_a_leave(tmp_path: Path) -> None:
    (tmp_path / "leave.py").write_text(named("python", "leave.py"))
    env = {
        "PYTHONPATH": str(tmp_path),
        "SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'leave.db'}",
        "SIGNOFF_TOKENS": TOKENS,
    }
    command: list[str | Path] = [sys.executable, "-m", "signoff"]
    async with (
        signoff_serve(command, tmp_path, env, "--app", "leave:pack") as (url, _),
        httpx.AsyncClient(base_url=url) as client,
    ):
        body = {"definition": "leave_request", "input": {"employee": "Ada", "days": 3}}
        bad = await client.post(
            "/api/runs", json={**body, "input": {"days": "x"}}, headers=bearer("o")
        )
        assert bad.status_code == 422
        run_id = (await client.post("/api/runs", json=body, headers=bearer("o"))).json()["id"]
        events = f"/api/runs/{run_id}/events"
        await client.post(events, json={"event": "submit"}, headers=bearer("o"))
        outsider = await client.post(events, json={"event": "approve"}, headers=bearer("e"))
        assert outsider.status_code == 403  # an editor is not a lead
        approved = await client.post(events, json={"event": "approve"}, headers=bearer("l"))
        assert approved.status_code == 200, approved.text

        async def booked() -> bool:
            view = (await client.get(f"/api/runs/{run_id}", headers=bearer("o"))).json()
            return bool(view["state"] == "booked")

        await eventually(booked)
    paths = run_ok(
        sys.executable, "-m", "signoff", "paths", "leave_request", "--app", "leave:pack",
        env={**_env(), "PYTHONPATH": str(tmp_path)},
    )  # fmt: skip
    assert "team_review --approve--> booking --booked_in_hr--> booked" in paths


async def test_the_document_snippet_deploys_with_the_cli_and_decides_a_run(
    tmp_path: Path,
) -> None:
    (tmp_path / "content_review.yaml").write_text(named("yaml", "content_review.yaml"))
    env = {"SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'doc.db'}", "SIGNOFF_TOKENS": TOKENS}
    command: list[str | Path] = [sys.executable, "-m", "signoff"]
    async with (
        signoff_serve(command, tmp_path, env) as (url, _),
        httpx.AsyncClient(base_url=url) as client,
    ):
        cli = [sys.executable, "-m", "signoff", "definitions"]
        added = run_ok(*cli, "add", "content_review.yaml", "--url", url, "--token", "r",
                       cwd=tmp_path, env=_env())  # fmt: skip
        assert added.strip() == "content_review deployed as version 1"
        listed = run_ok(*cli, "list", "--url", url, "--token", "r", env=_env())
        assert "content_review\tv1\tyaml" in listed
        body: dict[str, Any] = {
            "definition": "content_review",
            "input": {"title": "T", "words": 9000},
        }
        run_id = (await client.post("/api/runs", json=body, headers=bearer("o"))).json()["id"]
        events = f"/api/runs/{run_id}/events"
        await client.post(events, json={"event": "submit"}, headers=bearer("o"))
        first = await client.post(events, json={"event": "approve"}, headers=bearer("e"))
        assert first.json()["state"] == "review"  # 9,000 words: a second editor
        second = await client.post(events, json={"event": "approve"}, headers=bearer("e2"))
        assert second.json()["state"] == "published", second.text
        jobs = (await client.get(f"{events[:-7]}/jobs", headers=bearer("o"))).json()["items"]
        assert [(j["kind"], j["status"]) for j in jobs] == [("timer", "cancelled")]
        retired = run_ok(*cli, "retire", "content_review", "1", "--url", url, "--token", "r",
                         env=_env())  # fmt: skip
        assert retired.strip() == "content_review v1 retired"


def test_the_receivers_check_verifies_a_signoff_signature() -> None:
    (snippet,) = [b for b in blocks("python") if "def verified" in b]
    scope: dict[str, Any] = {}
    exec(compile(snippet, "README", "exec"), scope)
    body = b'{"run_id": "r"}'
    header = sign("shh", 1_700_000_000, body)
    assert scope["verified"](header, body, b"shh")
    assert not scope["verified"](header, body + b" ", b"shh")


def test_the_entry_point_table_is_the_examples() -> None:
    (table,) = blocks("toml")
    declared = tomllib.loads(table)["project"]["entry-points"]["signoff.definitions"]
    example = tomllib.loads((EXAMPLE / "pyproject.toml").read_text())
    assert set(declared) == {"leave"}
    assert example["project"]["entry-points"]["signoff.definitions"] == {
        "expense_report": "expense_report:pack"
    }


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")}
