"""Which definitions a process runs: --app / SIGNOFF_APP, installed packs, SIGNOFF_PACKS."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

from signoff import AppLoadError, Definition, Pack, Registry, Runtime, Settings
from signoff.apps import load_registry
from signoff.machines.lifecycle import Lifecycle
from signoff.machines.registry import DEFINITIONS
from tests.helpers import EXAMPLE, signoff_serve

pytestmark = pytest.mark.usefixtures("example_on_path")


def signoff(*args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """`python -m signoff …` with the example package importable (not installed)."""
    path = os.pathsep.join(filter(None, [str(EXAMPLE), env.pop("PYTHONPATH", "")]))
    return subprocess.run(
        [sys.executable, "-m", "signoff", *args],
        env={**os.environ, "PYTHONPATH": path, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_by_default_every_installed_pack_is_loaded_signoffs_own_among_them() -> None:
    registry = load_registry(Settings())
    assert {"approval", "purchase_order"} <= set(registry.definitions)
    assert {"approval", "purchase_order"} <= set(registry.jobs)


def test_signoff_packs_names_the_packs_to_load() -> None:
    assert set(load_registry(Settings(packs="signoff")).definitions) == {
        "approval",
        "purchase_order",
    }
    with pytest.raises(AppLoadError, match=r"SIGNOFF_PACKS names nope.*installed: .*signoff"):
        load_registry(Settings(packs="signoff,nope"))


@pytest.mark.parametrize(
    "target",
    ["expense_report:pack", "tests.apps:REGISTRY", "tests.apps:PACK", "tests.apps:registry"],
)
def test_app_names_a_pack_factory_a_registry_or_a_pack(target: str) -> None:
    registry = load_registry(Settings(app=target))
    assert set(registry.definitions) == {"expense_report"}  # the app alone: no installed packs
    assert registry.get("expense_report").deciders["finance_review"] == "finance"


@pytest.mark.parametrize(
    ("target", "says"),
    [
        ("expense_report", "takes MODULE:ATTR"),
        ("no_such_module:pack", "no module named 'no_such_module'"),
        ("expense_report:nothing", "has no attribute 'nothing'"),
        ("expense_report:DEFAULT_PAYMENT_URL", "is a str; it must be a Registry, a Pack"),
        ("tests.apps:broken", "RuntimeError: no payment service configured"),
        ("tests.apps:wrong", "returned dict, not a Registry or a Pack"),
    ],
)
def test_a_bad_app_is_refused_with_what_is_wrong(target: str, says: str) -> None:
    with pytest.raises(AppLoadError, match=says.replace("(", r"\(")):
        load_registry(Settings(app=target))


def test_a_definition_two_packs_provide_is_refused_naming_both() -> None:
    one = Pack("one", DEFINITIONS[:1])
    two = Pack("two", DEFINITIONS[:1])
    with pytest.raises(ValueError, match="definition 'approval' comes from two packs, 'one' and"):
        Registry.of_packs([one, two], Lifecycle)


@pytest.mark.parametrize("kind", ["timer", "http"])
def test_a_pack_may_not_take_signoffs_own_job_kinds(kind: str) -> None:
    from signoff import JobKind

    async def handler(ctx: Any) -> Any:
        raise AssertionError

    mine = Pack("mine", [], [JobKind(kind, handler, "failed")])
    with pytest.raises(ValueError, match=f"the job kind '{kind}', which is Signoff's own"):
        Registry.of_packs([mine], Lifecycle)


def test_deciders_must_name_wait_states() -> None:
    base = DEFINITIONS[0]
    with pytest.raises(ValueError, match="has no state"):
        Definition("x", 1, base.chart, base.kinds, deciders={"nowhere": "g"})
    with pytest.raises(ValueError, match="not wait states"):
        Definition("x", 1, base.chart, base.kinds, deciders={"finished": "g"})


def test_paths_and_diagrams_see_the_app(tmp_path: Path) -> None:
    done = signoff("paths", "expense_report", "--app", "expense_report:pack")
    assert done.returncode == 0, done.stderr
    assert "finance_review --approve(actor='finn')--> paying" in done.stdout
    done = signoff("diagrams", "--out", str(tmp_path), "--app", "expense_report:pack")
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "expense_report.svg").read_text().startswith("<")
    assert not (tmp_path / "approval.svg").exists()
    # SIGNOFF_APP says the same as --app.
    done = signoff("paths", "expense_report", SIGNOFF_APP="expense_report:pack")
    assert done.returncode == 0, done.stderr


def test_a_bad_app_stops_the_command_with_exit_2_and_the_reason() -> None:
    done = signoff("paths", "expense_report", "--app", "expense_report:nothing")
    assert done.returncode == 2
    assert "has no attribute 'nothing'" in done.stderr and "Traceback" not in done.stderr


def test_an_installed_packs_entry_point_needs_no_flag(tmp_path: Path) -> None:
    """A distribution on the path whose metadata lists an entry point in the group
    `signoff.definitions` contributes its pack to every command, with no flag."""
    dist = tmp_path / "signoff_expense_report-0.1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: signoff-expense-report\nVersion: 0.1.0\n"
    )
    (dist / "entry_points.txt").write_text(
        "[signoff.definitions]\nexpense_report = expense_report:pack\n"
    )
    done = signoff("paths", "expense_report", PYTHONPATH=str(tmp_path))
    assert done.returncode == 0, done.stderr
    done = signoff("paths", "approval", PYTHONPATH=str(tmp_path))
    assert done.returncode == 0, done.stderr  # Signoff's own pack is loaded beside it
    # SIGNOFF_PACKS leaves Signoff's own pack out.
    done = signoff("paths", "approval", PYTHONPATH=str(tmp_path), SIGNOFF_PACKS="expense_report")
    assert done.returncode == 2 and "approval" in done.stderr


@pytest.mark.parametrize("how", ["--app", "SIGNOFF_APP"])
async def test_a_server_started_with_the_app_serves_and_decides_its_runs(
    how: str, tmp_path: Path
) -> None:
    env = {"SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 'app.db'}", "PYTHONPATH": str(EXAMPLE)}
    args: list[str] = []
    if how == "--app":
        args = ["--app", "expense_report:pack"]
    else:
        env["SIGNOFF_APP"] = "expense_report:pack"
    command: list[str | Path] = [sys.executable, "-m", "signoff"]
    async with (
        signoff_serve(command, tmp_path, env, *args) as (url, log),
        httpx.AsyncClient(base_url=url) as client,
    ):
        assert any("definitions: expense_report v1; job handlers: pay_expense" in x for x in log)
        body = {"definition": "expense_report", "input": {"amount": 40, "payee": "Bo"}}
        run_id = (await client.post("/api/runs", json=body)).json()["id"]
        for event in ("submit", "approve"):
            sent = await client.post(f"/api/runs/{run_id}/events", json={"event": event})
            assert sent.status_code == 200, sent.text
        assert sent.json()["state"] == "finance_review"
        other = await client.post("/api/runs", json={"definition": "approval"})
        assert other.status_code == 422  # the app alone: Signoff's own pack is not loaded


async def test_migrate_runs_sees_the_app(tmp_path: Path) -> None:
    from tests.apps import REGISTRY
    from tests.helpers import settings_for

    url = f"sqlite+aiosqlite:///{tmp_path / 'm.db'}"
    rt = Runtime(settings_for(url), REGISTRY)  # v1 only, as deployed before
    await rt.start()
    try:
        run = await rt.dispatcher.create(
            "expense_report", actor="sam", input={"amount": 5, "payee": "Al"}
        )
    finally:
        await rt.stop()
    done = signoff(
        "migrate-runs", "expense_report", "--to", "2", "--app", "tests.apps:versions",
        SIGNOFF_DATABASE_URL=url,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "moved 1 run(s) of expense_report to version 2" in done.stdout
    rt = Runtime(settings_for(url), load_registry(Settings(app="tests.apps:versions")))
    await rt.start()
    try:
        assert (await rt.queries.get(run.run_id)).definition_version == 2
    finally:
        await rt.stop()
