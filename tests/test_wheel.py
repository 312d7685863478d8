"""The built wheel, installed in a fresh virtualenv beside a project that has its own `api` and
`engine` packages: `signoff serve` runs there, creates and approves a run, and the project's
packages stay its own. (The virtualenv also holds the example pack, `wheel_venv`.)"""

from __future__ import annotations

import os
import signal
import subprocess
import textwrap
import time
from pathlib import Path

import httpx
import pytest

from tests.helpers import free_socket, run_ok


@pytest.mark.slow
def test_the_wheel_serves_beside_a_project_with_its_own_api_and_engine(
    tmp_path: Path, wheel_venv: Path
) -> None:
    project = tmp_path / "project"
    for package in ("api", "engine"):
        (project / package).mkdir(parents=True)
        (project / package / "__init__.py").write_text(f"WHO = 'the project {package}'\n")
    (project / "check.py").write_text(
        textwrap.dedent(
            """
            import api, engine, signoff
            import signoff.engine, signoff.api
            assert api.WHO == "the project api" and engine.WHO == "the project engine"
            assert "site-packages" in signoff.engine.__file__, signoff.engine.__file__
            print(sorted(signoff.__all__)[:3])
            """
        )
    )
    venv = wheel_venv
    assert "ApiError" in run_ok(venv / "bin" / "python", "check.py", cwd=project)

    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SIGNOFF_")},
        "SIGNOFF_PORT": str(port),
        "SIGNOFF_FAILURE_RATE": "0",
    }
    server = subprocess.Popen(
        [venv / "bin" / "signoff", "serve"],
        cwd=project,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        with httpx.Client(base_url=url, timeout=10) as client:
            deadline = time.monotonic() + 60
            while True:
                try:
                    if client.get("/healthz").status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert server.poll() is None, server.stderr.read() if server.stderr else ""
                assert time.monotonic() < deadline, "signoff serve did not start"
                time.sleep(0.1)
            run = client.post(
                "/api/runs", json={"definition": "approval", "input": {"output": 0.9}}
            )
            assert run.status_code == 201, run.text
            run_id = run.json()["id"]
            assert client.post(f"/api/runs/{run_id}/process").status_code == 200
            while (state := client.get(f"/api/runs/{run_id}").json()["state"]) != (
                "waiting_for_approval"
            ):
                assert state == "sending_to_queue", state
                assert time.monotonic() < deadline, "the job did not run"
                time.sleep(0.05)
            approved = client.post(f"/api/runs/{run_id}/approve", json={"reason": "ok"})
            assert approved.status_code == 200, approved.text
            assert approved.json()["state"] == "finished"
    finally:
        server.send_signal(signal.SIGTERM)
        server.wait(timeout=30)
    assert (project / "signoff.db").exists()
