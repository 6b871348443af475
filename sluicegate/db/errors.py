"""Driver errors translated at the store boundary.

Every SQL store wraps its database calls in `translate_errors`, so that nothing from
SQLAlchemy, asyncpg, aiosqlite or the socket layer escapes a store:

    StoreUnavailable        the database cannot be reached or cannot run the statement
     +-- StoreRejected      the database is up but refused these rows (bad data, a
                            constraint); retrying the same rows will not help

The two answer differently when they reach a client: an outage is a 503
`store_unavailable` (try again later), a refusal a 400 `store_rejected` (the values sent
cannot be stored, e.g. a NUL in PostgreSQL text or an integer past the column's range;
sending them again will not help). Handlers validate what they can first; this keeps
what slips through from blaming the database.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import exc as sa_exc

from sluicegate.errors import StoreUnavailable

# SQLSTATE classes that blame the data, not the server: 22 data exception, 23 integrity
_REJECTING_SQLSTATE_CLASSES = ("22", "23")
_UNIQUE_VIOLATION = "23505"
_SQLITE_UNIQUE_CODES = (1555, 2067)  # SQLITE_CONSTRAINT_PRIMARYKEY, SQLITE_CONSTRAINT_UNIQUE


class StoreRejected(StoreUnavailable):
    """The store is reachable but refused the values it was given: the caller's data."""

    status = 400
    error_type = "invalid_request_error"
    code = "store_rejected"


@asynccontextmanager
async def translate_errors(operation: str) -> AsyncIterator[None]:
    """Re-raise driver and network errors from the block as the gateway's own."""
    try:
        yield
    except (sa_exc.DataError, sa_exc.IntegrityError) as exc:
        raise StoreRejected(f"{operation}: {_reason(exc)}") from exc
    except sa_exc.DBAPIError as exc:
        if _sqlstate(exc).startswith(_REJECTING_SQLSTATE_CLASSES):
            raise StoreRejected(f"{operation}: {_reason(exc)}") from exc
        raise StoreUnavailable(f"{operation}: {_reason(exc)}") from exc
    except (sa_exc.StatementError, OverflowError) as exc:  # a value that cannot be bound
        raise StoreRejected(f"{operation}: {_reason(exc)}") from exc
    except (sa_exc.SQLAlchemyError, OSError) as exc:
        raise StoreUnavailable(f"{operation}: {_reason(exc)}") from exc


def is_unique_violation(exc: sa_exc.IntegrityError) -> bool:
    """Whether the database refused the rows because a primary key or unique index
    already holds their value (PostgreSQL 23505; SQLite's PRIMARYKEY / UNIQUE constraint
    codes), as opposed to another integrity error such as a NOT NULL column."""
    if _sqlstate(exc) == _UNIQUE_VIOLATION:
        return True
    code = getattr(exc.orig, "sqlite_errorcode", None)
    if code is not None:
        return code in _SQLITE_UNIQUE_CODES
    return "UNIQUE constraint failed" in str(exc.orig)  # an SQLite without error codes


def _sqlstate(exc: sa_exc.DBAPIError) -> str:
    return str(getattr(exc.orig, "sqlstate", None) or getattr(exc.orig, "pgcode", None) or "")


def _reason(exc: BaseException) -> str:
    orig = getattr(exc, "orig", None)
    text = str(orig if orig is not None else exc).strip().splitlines()
    return f"{type(orig or exc).__name__}: {text[0] if text else ''}"
