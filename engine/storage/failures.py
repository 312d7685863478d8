"""Which driver errors mean that the storage failed, rather than the statement.

A storage failure (a full disk, a read-only or unreachable database, no connection free) may
pass, so the same request may succeed later: the engine answers it with StorageUnavailableError.
Anything else is a conflict or a bug and is raised as it is.
"""

from __future__ import annotations

import sqlite3

import asyncpg
import sqlalchemy.exc

# What a driver raises; `is_storage_failure` decides which of these mean the storage failed.
DRIVER_ERRORS = (
    OSError,  # ConnectionRefusedError, ConnectionResetError, TimeoutError: unreachable
    sqlite3.Error,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    sqlalchemy.exc.SQLAlchemyError,
)
# Two requests raced on one unique key.
INTEGRITY_ERRORS = (sqlite3.IntegrityError, asyncpg.IntegrityConstraintViolationError)
# The disk is full, read-only or failing, or the file cannot be opened (primary result codes;
# SQLite's extended codes carry them in the low byte).
_SQLITE_STORAGE_CODES = frozenset(
    {sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN, sqlite3.SQLITE_IOERR}
)
_STORAGE_ERRORS = (
    OSError,
    asyncpg.PostgresConnectionError,  # class 08: the connection failed or was closed mid-query
    asyncpg.CannotConnectNowError,  # 57P03: starting up or shutting down
    asyncpg.AdminShutdownError,  # 57P01
    asyncpg.CrashShutdownError,  # 57P02
    asyncpg.InsufficientResourcesError,  # class 53: disk full, out of memory, too many connections
    asyncpg.ReadOnlySQLTransactionError,  # 25006: a read-only server (a standby, or set so)
    sqlalchemy.exc.TimeoutError,  # no connection free in the read pool in time
)


def is_storage_failure(exc: BaseException) -> bool:
    """Whether `exc`, or the driver error it wraps, says the storage failed (so the same
    request may succeed later) rather than the statement (a conflict, or a bug)."""
    cause: BaseException | None = exc
    for _ in range(4):  # SQLAlchemy's error → its DBAPI adapter's → the driver's
        if cause is None:
            return False
        if isinstance(cause, sqlite3.Error):
            return getattr(cause, "sqlite_errorcode", 0) & 0xFF in _SQLITE_STORAGE_CODES
        if isinstance(cause, _STORAGE_ERRORS):
            return True
        if isinstance(cause, asyncpg.InterfaceError):
            return "closed" in str(cause)  # "connection is closed", not "another operation…"
        if isinstance(cause, sqlalchemy.exc.DBAPIError) and cause.connection_invalidated:
            return True
        cause = getattr(cause, "orig", None) or cause.__cause__
    return False
