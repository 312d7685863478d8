"""The first minute of `signoff serve` and `signoff worker`: every mistake in the configuration
stops them at once with one line that names the problem (never a secret) and exit status 2,
before migrations, workers or the port; the database URLs people copy work as given."""

from __future__ import annotations

import asyncio
import os
import struct
import sys
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from signoff.engine.settings import Settings
from tests.helpers import cli_serve, free_socket, pg_url

SECRET = "hunter2-secret"


async def signoff(*args: str, env: dict[str, str]) -> tuple[int, str]:
    """Run the CLI to its end (it must end by itself); exit code and everything it printed."""
    closed = free_socket()  # a free port, so that no server already on 8000 gets in the way
    port = str(closed.getsockname()[1])
    closed.close()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "signoff",
        *args,
        env={**os.environ, "SIGNOFF_PORT": port, **env},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
    )
    async with asyncio.timeout(60):
        output = (await proc.communicate())[0].decode()
    assert proc.returncode is not None
    return proc.returncode, output


def one_line(output: str) -> str:
    """The CLI's message: one line, no traceback."""
    lines = [line for line in output.splitlines() if line.strip()]
    assert len(lines) == 1 and "Traceback" not in output, output
    assert lines[0].startswith("signoff: ")
    return lines[0]


@pytest.mark.parametrize(
    ("tokens", "says"),
    [
        (" ", "SIGNOFF_TOKENS is set but holds no token"),
        (",", "SIGNOFF_TOKENS entry 1 is empty"),
        (f"anna:approver:{SECRET},", "SIGNOFF_TOKENS entry 2 is empty"),
        (f"anna:approver:{SECRET},bob:viewer", "SIGNOFF_TOKENS entry 2 is not actor:role"),
        (f"anna:boss:{SECRET}", "SIGNOFF_TOKENS entry 1 (anna) has unknown role 'boss'"),
        (f"a:viewer:{SECRET},b:viewer:{SECRET}", "entry 2 has the same secret as entry 1"),
        (f":viewer:{SECRET}", "SIGNOFF_TOKENS entry 1 is not actor:role"),
    ],
)
@pytest.mark.parametrize("command", ["serve", "worker"])
async def test_a_malformed_token_list_stops_the_server(
    tmp_path: Path, tokens: str, says: str, command: str
) -> None:
    db = tmp_path / "t.db"
    env = {"SIGNOFF_TOKENS": tokens, "SIGNOFF_DATABASE_URL": f"sqlite:///{db}"}
    code, output = await signoff(command, env=env)
    assert code == 2
    assert says in one_line(output)
    assert SECRET not in output
    assert not db.exists()  # it stopped before the database was touched


@pytest.mark.parametrize(
    ("variable", "value", "says"),
    [
        ("SIGNOFF_PORT", "eighty", "SIGNOFF_PORT must be a port number (1 to 65535)"),
        ("SIGNOFF_PORT", "70000", "SIGNOFF_PORT must be a port number (1 to 65535)"),
        ("SIGNOFF_FAILURE_RATE", "1.5", "SIGNOFF_FAILURE_RATE must be between 0 and 1"),
        ("SIGNOFF_FAILURE_RATE", "often", "SIGNOFF_FAILURE_RATE must be between 0 and 1"),
        ("SIGNOFF_SEPARATION_OF_DUTIES", "yes", "SIGNOFF_SEPARATION_OF_DUTIES must be 1 or 0"),
        ("SIGNOFF_POOL_SIZE", "0", "SIGNOFF_POOL_SIZE must be a whole number of 1 or more"),
        ("SIGNOFF_LEASE_S", "-3", "SIGNOFF_LEASE_S must be a number of seconds above 0"),
        ("SIGNOFF_SEND_TIMEOUT_S", "0", "SIGNOFF_SEND_TIMEOUT_S must be a number of seconds"),
        *(
            ("SIGNOFF_TASK_COUNT_LIMIT", bad, "SIGNOFF_TASK_COUNT_LIMIT must be a whole number")
            for bad in ("0", "-5", "many")
        ),
        ("SIGNOFF_CORS_ORIGINS", "app.example.com", "SIGNOFF_CORS_ORIGINS holds 'app.example.com'"),
        (
            "SIGNOFF_DATABASE_URL",
            "mysql://db/signoff",
            "SIGNOFF_DATABASE_URL has the scheme 'mysql'",
        ),
        ("SIGNOFF_DATABASE_URL", "not a url", "SIGNOFF_DATABASE_URL is not a database URL"),
        ("SIGNOFF_DATABASE_URL", "sqlite://", "SIGNOFF_DATABASE_URL names no SQLite file"),
    ],
)
async def test_a_bad_setting_is_named_by_its_variable(
    tmp_path: Path, variable: str, value: str, says: str
) -> None:
    env = {"SIGNOFF_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}", variable: value}
    code, output = await signoff("serve", env=env)
    assert code == 2
    assert says in one_line(output)


@pytest.mark.slow
async def test_an_unreachable_database_is_one_line(tmp_path: Path) -> None:
    closed = free_socket()  # a port nothing listens on
    port = closed.getsockname()[1]
    closed.close()
    cases = {
        f"postgresql://postgres@127.0.0.1:{port}/signoff": f"cannot reach PostgreSQL at "
        f"127.0.0.1:{port} (Connection refused): is it running",
        "postgres://postgres@no-such-host.invalid/signoff": "cannot reach PostgreSQL at "
        "no-such-host.invalid:5432",
        f"sqlite:///{tmp_path}/missing/dir/s.db": "the directory "
        f"{tmp_path}/missing/dir does not exist",
    }
    for url, says in cases.items():
        for command in ("serve", "worker", "migrate"):
            code, output = await signoff(command, env={"SIGNOFF_DATABASE_URL": url})
            assert code == 2, output
            assert says in one_line(output)


async def test_a_database_that_does_not_exist_says_how_to_create_it() -> None:
    url = pg_url("signoff_never_created")
    plain = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    code, output = await signoff("serve", env={"SIGNOFF_DATABASE_URL": plain})
    assert code == 2
    line = one_line(output)
    assert "has no database 'signoff_never_created'" in line
    assert "`createdb -h 127.0.0.1 -p 5432 -U postgres signoff_never_created`" in line


async def test_a_port_in_use_is_reported_before_anything_starts(tmp_path: Path) -> None:
    taken = free_socket()
    taken.listen()
    port = taken.getsockname()[1]
    db = tmp_path / "p.db"
    try:
        code, output = await signoff(
            "serve", "--port", str(port), env={"SIGNOFF_DATABASE_URL": f"sqlite:///{db}"}
        )
    finally:
        taken.close()
    assert code == 2
    assert f"port {port} on 127.0.0.1 is already in use" in one_line(output)
    assert not db.exists()  # no migration ran


def test_the_database_urls_people_copy_get_the_async_driver() -> None:
    assert (
        Settings(database_url="postgresql://u@h/db").database_url == "postgresql+asyncpg://u@h/db"
    )
    assert Settings(database_url="postgres://u:p@h:5/db").database_url == (
        "postgresql+asyncpg://u:p@h:5/db"
    )
    assert Settings(database_url="sqlite:///f.db").database_url == "sqlite+aiosqlite:///f.db"
    assert Settings.from_env({"SIGNOFF_DATABASE_URL": "sqlite:////abs/f.db"}).database_url == (
        "sqlite+aiosqlite:////abs/f.db"
    )


@pytest.mark.parametrize("form", ["postgresql", "postgres", "sqlite"])
async def test_serve_runs_on_a_url_as_given(
    form: str, pg_database_url: str, tmp_path: Path
) -> None:
    if form == "sqlite":
        url = f"sqlite:///{tmp_path / 'plain.db'}"
    else:
        url = make_url(pg_database_url).set(drivername=form).render_as_string(hide_password=False)
    code, output = await cli_serve({"SIGNOFF_DATABASE_URL": url})
    assert "Application startup complete" in output, output
    assert code is not None and code != 2  # it served until the test stopped it


async def test_serve_creates_and_decides_on_a_plain_postgresql_url(
    empty_pg_database_url: str,
) -> None:
    """Not only starts: on a database just created, the server makes the schema, and a run is
    created and processed through the server on that URL."""
    url = (
        make_url(empty_pg_database_url)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )
    sock = free_socket()
    port = sock.getsockname()[1]
    sock.close()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "signoff", "serve", "--port", str(port),
        env={**os.environ, "SIGNOFF_DATABASE_URL": url, "SIGNOFF_FAILURE_RATE": "0"},
        stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.DEVNULL,
    )  # fmt: skip
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            for _ in range(200):
                try:
                    await client.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.05)
            run = (await client.post("/api/runs", json={"definition": "approval"})).json()
            processed = await client.post(f"/api/runs/{run['id']}/process")
            assert processed.status_code == 200 and processed.json()["version"] == 2
    finally:
        proc.terminate()
        await proc.wait()


async def test_a_wrong_password_says_so() -> None:
    """PostgreSQL here trusts every local login, so a server that speaks just enough of the
    protocol refuses the password the way PostgreSQL does (SQLSTATE 28P01)."""

    async def refuse(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        length, code = struct.unpack("!ii", await reader.readexactly(8))
        if code == 80877103:  # SSLRequest: no TLS here, then the startup message follows
            writer.write(b"N")
            (length,) = struct.unpack("!i", await reader.readexactly(4))
            await reader.readexactly(length - 4)
        else:
            await reader.readexactly(length - 8)
        fields = b'SFATAL\0VFATAL\0C28P01\0Mpassword authentication failed for user "app"\0\0'
        writer.write(b"E" + struct.pack("!i", len(fields) + 4) + fields)
        await writer.drain()
        writer.close()

    fake = await asyncio.start_server(refuse, "127.0.0.1", 0)
    port = fake.sockets[0].getsockname()[1]
    try:
        url = f"postgresql://app:wrong@127.0.0.1:{port}/signoff"
        code, output = await signoff("serve", env={"SIGNOFF_DATABASE_URL": url})
    finally:
        fake.close()
    assert code == 2
    line = one_line(output)
    assert f"PostgreSQL at 127.0.0.1:{port} refused the password of 'app'" in line
    assert "wrong" not in line  # the password itself is never printed
