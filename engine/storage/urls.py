"""The database URL as users write it: the forms people copy, made into the async driver's URL,
and a first connection that says in one line what is wrong and what to do."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import asyncpg
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

SQLITE = "sqlite+aiosqlite"
POSTGRES = "postgresql+asyncpg"
_DRIVERS = {
    "sqlite": SQLITE,
    SQLITE: SQLITE,
    "postgresql": POSTGRES,
    "postgres": POSTGRES,
    POSTGRES: POSTGRES,
}
_EXAMPLES = "sqlite:///signoff.db or postgresql://user@host/db"
CONNECT_TIMEOUT_S = 5.0


class DatabaseUrlError(ValueError):
    """SIGNOFF_DATABASE_URL is not a database Signoff can use; the message says why."""


def parse(url: str) -> URL:
    try:
        return make_url(url)
    except ArgumentError:
        raise DatabaseUrlError(
            f"SIGNOFF_DATABASE_URL is not a database URL; write it like {_EXAMPLES}"
        ) from None


def async_url(url: str) -> str:
    """`url` with the async driver Signoff uses for its database (aiosqlite, asyncpg)."""
    parsed = parse(url)
    driver = _DRIVERS.get(parsed.drivername)
    if driver is None:
        raise DatabaseUrlError(
            f"SIGNOFF_DATABASE_URL has the scheme {parsed.drivername!r}; Signoff runs on SQLite "
            f"or PostgreSQL: {_EXAMPLES}"
        )
    if driver == SQLITE and parsed.database in (None, "", ":memory:"):
        raise DatabaseUrlError(
            "SIGNOFF_DATABASE_URL names no SQLite file (an in-memory database would not be "
            "shared by the server's connections); write sqlite:///signoff.db"
        )
    return parsed.set(drivername=driver).render_as_string(hide_password=False)


async def check_reachable(url: str) -> None:
    """Open one connection to the database, or raise DatabaseUrlError saying what to do."""
    parsed = parse(async_url(url))
    if parsed.drivername == SQLITE:
        _check_sqlite(Path(parsed.database or ""))
    else:
        await _check_postgres(parsed)


def _check_sqlite(path: Path) -> None:
    if not path.parent.is_dir():
        raise DatabaseUrlError(
            f"cannot create the SQLite file {path}: the directory {path.parent} does not exist"
        )
    try:
        sqlite3.connect(path).close()
    except sqlite3.Error as exc:
        raise DatabaseUrlError(
            f"cannot open the SQLite file {path}: {exc} (check the path and its permissions)"
        ) from None


async def _check_postgres(url: URL) -> None:
    host, port = url.host or "localhost", url.port or 5432
    user, database = url.username or "the current user", url.database or "(default)"
    where = f"PostgreSQL at {host}:{port}"
    dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
    try:
        conn = await asyncpg.connect(dsn, timeout=CONNECT_TIMEOUT_S)
    except asyncpg.InvalidCatalogNameError:
        hint = f"createdb -h {host} -p {port}" + (f" -U {url.username}" if url.username else "")
        raise DatabaseUrlError(
            f"{where} has no database {database!r}: create it with `{hint} {database}`"
        ) from None
    except asyncpg.InvalidPasswordError:
        raise DatabaseUrlError(
            f"{where} refused the password of {user!r}: check the user and password in "
            "SIGNOFF_DATABASE_URL"
        ) from None
    except asyncpg.PostgresError as exc:
        raise DatabaseUrlError(f"{where} refused the connection: {exc}") from None
    except (OSError, TimeoutError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else type(exc).__name__
        raise DatabaseUrlError(
            f"cannot reach {where} ({reason}): is it running, and are the host and port right?"
        ) from None
    await conn.close()
